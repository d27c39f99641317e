"""Security (issue 27): a file planted in a runs root is data, never code. A checkpoint that asks to import
anything besides tensors, numpy arrays and plain Python data is refused, naming the file, before it runs."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from scoreextra.core import load_torch, save_torch
from scoreextra.data import load_dataset
from scoreextra.models import get_model
from scoreextra.train import fit


class Payload:
    "Unpickling it calls `fn(*args)`: the stand-in for the code a planted checkpoint would run."
    def __init__(self, fn, *args): self.fn, self.args = fn, args
    def __reduce__(self): return self.fn, self.args


def _payloads(marker):
    return {"os.system": Payload(os.system, f"touch {marker}"),
            "exec": Payload(exec, f"open({str(marker)!r}, 'w').close()"),
            "a class of the caller": Payload(Path.touch, Path(marker))}


@pytest.fixture(scope="module")
def digits(): return load_dataset("digits", "train")


@pytest.mark.parametrize("kind", ["os.system", "exec", "a class of the caller"])
@pytest.mark.parametrize("sidecar", [False, True], ids=["no sha256", "sha256 recomputed by the planter"])
def test_a_planted_checkpoint_never_runs_on_resume(digits, tmp_path, kind, sidecar):
    marker = tmp_path / "pwned"
    ck = tmp_path / "ckpt"
    fake = {"format": 1, "epochs_done": 1, "rng": _payloads(marker)[kind]}
    if sidecar: save_torch(ck / "last.pt", fake, checksum=True)
    else: ck.mkdir(); torch.save(fake, ck / "last.pt")
    model = get_model("cnn", digits.num_classes, digits.in_shape, seed=0)
    with pytest.raises(ValueError) as e:
        fit(model, digits, epochs=1, batch_size=256, device="cpu", progress=False, ckpt_dir=ck)
    assert not marker.exists(), f"the {kind} payload ran"
    assert f"{ck / 'last.pt'}: refused" in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert (ck / "last.pt").exists()                 # left where it was, for its owner to look at


def test_load_torch_reads_tensors_numpy_and_plain_data_and_refuses_code(tmp_path):
    ok = {"w": torch.arange(3.), "a": np.arange(4, dtype=np.uint32), "s": np.float64(0.5),
          "rng": np.random.get_state(), "py": ((1, 2), [3.0, None], {"k": "v"}, {4, 5}, True)}
    save_torch(tmp_path / "ok.pt", ok)
    back = load_torch(tmp_path / "ok.pt")
    assert torch.equal(back["w"], ok["w"]) and back["a"].dtype == np.uint32 and back["s"] == 0.5
    assert back["rng"][0] == "MT19937" and np.array_equal(back["rng"][1], ok["rng"][1])
    assert back["py"] == ok["py"]
    torch.save({"x": Payload(exec, f"open({str(tmp_path / 'pwned')!r}, 'w').close()")}, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as e: load_torch(tmp_path / "bad.pt")
    assert not (tmp_path / "pwned").exists(), "the payload ran"
    msg = str(e.value)
    assert f"{tmp_path / 'bad.pt'}: refused" in msg and "asks to import exec" in msg, msg
