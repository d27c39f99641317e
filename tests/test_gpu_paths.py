"""What a GPU run needs, proven on CPU where it can be (issue 15, item 2): mixed precision, torch.compile and
data-parallel training (DDP) in `fit`.

- bf16 autocast on CPU gives the scores of a float32 run within a stated tolerance, and the recorders are handed
  float32 logits although the forward ran in bfloat16;
- DDP with the gloo backend and 2 processes started by torchrun gives the scores of a one-process run with the same
  global batch order, on every rank; under `-m slow`, an interrupted DDP run resumes to exactly the uninterrupted
  one, and a damaged checkpoint is set aside once (by rank 0) and every rank starts afresh;
- the CUDA paths (bf16, fp16 with a grad scaler, channels-last + inductor) run under `-m gpu` on a GPU machine
  (bench/device_check.sh) and skip without CUDA.
"""
import os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy.stats import pearsonr, spearmanr

from scoreextra.core import load_torch
from scoreextra.data import load_dataset
from scoreextra.models import get_model
from scoreextra.streaming import DURecorder, TDDSRecorder
from scoreextra.train import Callback, amp_dtype, fit

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "ddp_worker.py"


@pytest.fixture(scope="module")
def digits(): return load_dataset("digits", "train")


class Dtypes(Callback):
    "The dtype of the first Linear layer's output in the training forward, and of the logits callbacks are handed."
    def before_fit(self, tr):
        self.fwd, self.handed = set(), set()
        lin = next(m for m in tr.model.modules() if isinstance(m, nn.Linear))
        lin.register_forward_hook(lambda m, i, o: self.fwd.add(o.dtype))
    def after_batch(self, tr, out): self.handed |= {out.logits.dtype, out.loss.dtype}


def _scores(ds, amp, device="cpu", model="mlp", epochs=6, **kw):
    du, tdds, dt = DURecorder(window=3, where="clean"), TDDSRecorder(window=3), Dtypes()
    tr = fit(get_model(model, ds.num_classes, ds.in_shape, seed=0), ds, epochs=epochs, batch_size=64, callbacks=[du, tdds, dt],
             progress=False, device=device, amp=amp, **kw)
    return du.scores(), tdds.scores(), dt, tr


# measured on this CPU (torch 2.13, MLP 256-256 on digits, 6 epochs, same seed): DU max |diff| 0.0075, mean 0.0006
# (score std 0.049), Pearson 0.9998; TDDS max |diff| 0.053, mean 0.0024 (std 0.086), Pearson 0.998. The bounds leave
# about 2x room; bf16 keeps 8 bits of mantissa, so exact equality is not to be had.
TOL = {"du": dict(max=0.02, mean=0.002, pearson=0.999, spearman=0.998),
       "tdds": dict(max=0.12, mean=0.006, pearson=0.99, spearman=0.99)}


def _check_close(name, a, b):
    t, d = TOL[name], np.abs(a - b)
    assert d.max() <= t["max"] and d.mean() <= t["mean"], (name, d.max(), d.mean())
    assert pearsonr(a, b)[0] >= t["pearson"] and spearmanr(a, b)[0] >= t["spearman"], name


def test_bf16_autocast_scores_match_float32(digits):
    du32, tdds32, dt32, tr32 = _scores(digits, None)
    du16, tdds16, dt16, tr16 = _scores(digits, "bf16")
    assert dt32.fwd == {torch.float32} and dt16.fwd == {torch.bfloat16}   # the bf16 forward really ran in bfloat16
    assert dt16.handed == {torch.float32}                                 # ... and the recorders got float32
    assert not np.array_equal(du32, du16)                                 # so the scores differ, within the tolerance:
    _check_close("du", du32, du16); _check_close("tdds", tdds32, tdds16)
    assert tr16.config["amp"] == "bf16" and next(tr16.model.parameters()).dtype == torch.float32   # weights stay float32


def test_default_config_unchanged_and_amp_resumes_only_in_its_dtype(digits, tmp_path):
    idx, kw = np.arange(200), dict(epochs=1, batch_size=64, progress=False, device="cpu")
    tr = fit(get_model("mlp", 10, digits.in_shape, seed=0), digits, idx, amp="auto", ckpt_dir=tmp_path, **kw)
    # amp='auto' is float32 on a CPU, and the default config holds no new key: checkpoints of earlier runs still resume
    assert not {"amp", "compile", "world_size"} & set(tr.config)
    fit(get_model("mlp", 10, digits.in_shape, seed=0), digits, idx, amp="bf16", ckpt_dir=tmp_path / "b", **kw)
    with pytest.raises(ValueError, match=r"different run.*'amp': \('bf16', None\)"):
        fit(get_model("mlp", 10, digits.in_shape, seed=0), digits, idx, ckpt_dir=tmp_path / "b", **kw)


def test_bad_accelerator_options_are_named(digits):
    m, kw = get_model("mlp", 10, digits.in_shape, seed=0), dict(epochs=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="amp must be one of .* got 'float16'"): fit(m, digits, amp="float16", **kw)
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA device"): fit(m, digits, amp="fp16", **kw)
    with pytest.raises(TypeError, match="compile must be a bool or a torch.compile backend name, got 3"): fit(m, digits, compile=3, **kw)
    with pytest.raises(ValueError, match="distributed must be None, True or False, got 'yes'"): fit(m, digits, distributed="yes", **kw)
    with pytest.raises(ValueError, match="WORLD_SIZE=1"): fit(m, digits, distributed=True, **kw)


def test_compiled_forward_trains_like_eager(digits):
    "torch.compile's graph capture (aot_eager backend: no C++ build, so it runs in seconds here) trains the same numbers."
    kw = dict(epochs=2, batch_size=64, progress=False, device="cpu")
    a = fit(get_model("mlp", 10, digits.in_shape, seed=0), digits, np.arange(300), **kw)
    b = fit(get_model("mlp", 10, digits.in_shape, seed=0), digits, np.arange(300), compile="aot_eager", **kw)
    assert b.config["compile"] == "aot_eager" and b.fwd is not b.model
    assert list(b.model.state_dict()) == list(a.model.state_dict())        # checkpoints hold the plain model's keys
    np.testing.assert_allclose([r["train_loss"] for r in a.log], [r["train_loss"] for r in b.log], rtol=1e-5)


# -- DDP: 2 gloo ranks started by torchrun ----------------------------------------------------------------------------

def _torchrun(out:Path, *args) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(WORKER), str(out), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    "The reference: the worker's run as one process, this one (a fresh interpreter would add seconds of imports only)."
    import importlib.util
    assert "RANK" not in os.environ and "WORLD_SIZE" not in os.environ
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    worker = importlib.util.module_from_spec(spec); spec.loader.exec_module(worker)
    out = tmp_path_factory.mktemp("one")
    worker.main([str(out)])
    return dict(np.load(out / "rank0.npz"))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    r = _torchrun(out)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return [dict(np.load(out / f"rank{k}.npz")) for k in (0, 1)]


def test_ddp_two_ranks_match_one_process(one_process, two_ranks):
    one, (r0, r1) = one_process, two_ranks
    assert int(one["world_size"]) == 1 and int(r0["world_size"]) == int(r0["config_world"]) == 2
    for r in (r0, r1):   # every rank's callbacks saw the whole global batches, in the one-process order, as float32
        np.testing.assert_array_equal(r["order"], one["order"]); assert list(r["dtypes"]) == ["torch.float32"]
    for k in ("du", "tdds", "head", "loss"):   # both ranks hold the same scores and weights ...
        np.testing.assert_array_equal(r0[k], r1[k])
    # ... equal to one process up to float rounding of the split sums: measured DU 7e-8, TDDS 4e-7, weights 6e-8
    np.testing.assert_allclose(r0["du"], one["du"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(r0["tdds"], one["tdds"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(r0["head"], one["head"], rtol=0, atol=1e-5)
    assert not np.array_equal(r0["du"], np.zeros_like(r0["du"]))


@pytest.mark.slow   # ~40 s: two more torchrun launches
def test_ddp_interrupted_run_resumes_to_the_same_scores(two_ranks, tmp_path):
    out, ck = tmp_path / "out", tmp_path / "ckpt"
    r = _torchrun(out, "--ckpt", str(ck), "--stop-epoch", "3")
    assert r.returncode != 0 and not list(out.glob("*.npz"))   # stopped in epoch 4 ...
    assert load_torch(ck / "last.pt")["epochs_done"] == 3   # ... after rank 0 wrote 3 epochs
    r = _torchrun(out, "--ckpt", str(ck))
    assert r.returncode == 0, r.stderr[-3000:]
    for k in (0, 1):
        res = dict(np.load(out / f"rank{k}.npz"))
        for key in ("du", "tdds", "head", "loss"): np.testing.assert_array_equal(res[key], two_ranks[0][key], err_msg=key)
        assert len(res["order"]) == 2 * 700   # the resumed epochs 4 and 5 only


@pytest.mark.slow   # ~20 s: one more torchrun launch
def test_ddp_damaged_checkpoint_is_set_aside_once(two_ranks, tmp_path):
    "Rank 0 reads a checkpoint before the others: a damaged one is moved aside once and every rank starts afresh."
    out, ck = tmp_path / "out", tmp_path / "ckpt"
    ck.mkdir(); (ck / "last.pt").write_bytes(b"half a checkpoint")
    r = _torchrun(out, "--ckpt", str(ck))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (ck / "last.pt.damaged").read_bytes() == b"half a checkpoint" and (ck / "last.pt").exists()
    assert (r.stdout + r.stderr).count("UserWarning: checkpoint") == 1   # one rank warned
    for k in (0, 1):
        res = dict(np.load(out / f"rank{k}.npz"))
        for key in ("du", "tdds", "head"): np.testing.assert_array_equal(res[key], two_ranks[0][key], err_msg=key)


# -- CUDA paths: run on a GPU machine (pytest -m gpu), skipped elsewhere --------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@cuda
def test_cuda_bf16_scores_match_float32(digits):
    assert amp_dtype("auto", "cuda") in (torch.bfloat16, torch.float16)
    du32, tdds32, _, _ = _scores(digits, None, device="cuda")
    du16, tdds16, dt, tr = _scores(digits, "bf16", device="cuda")
    assert dt.fwd == {torch.bfloat16} and dt.handed == {torch.float32} and tr.config["amp"] == "bf16"
    _check_close("du", du32, du16); _check_close("tdds", tdds32, tdds16)


@pytest.mark.gpu
@cuda
def test_cuda_fp16_grad_scaler_checkpoints_and_resumes(digits, tmp_path):
    kw = dict(epochs=3, batch_size=64, progress=False, device="cuda", amp="fp16")
    ref = fit(get_model("cnn", 10, digits.in_shape, seed=0), digits, **kw)
    assert ref.scaler is not None and ref.config["amp"] == "fp16" and ref.log[-1]["train_acc"] > 0.8

    class Stop(Callback):
        def __init__(self, at): self.at = at
        def after_batch(self, tr, out):
            if tr.epoch == self.at: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fit(get_model("cnn", 10, digits.in_shape, seed=0), digits, ckpt_dir=tmp_path, callbacks=[Stop(2)], **kw)
    assert load_torch(tmp_path / "last.pt")["scaler"]["scale"] > 0
    res = fit(get_model("cnn", 10, digits.in_shape, seed=0), digits, ckpt_dir=tmp_path, callbacks=[Stop(-1)], **kw)
    assert res.scaler.state_dict() == ref.scaler.state_dict()   # scale and growth counter went through the checkpoint
    torch.testing.assert_close(res.model.head.weight, ref.model.head.weight, rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
@cuda
def test_cuda_channels_last_compiled_bf16_cnn_trains(digits):
    tr = fit(get_model("cnn", 10, digits.in_shape, seed=0), digits, epochs=3, batch_size=64, progress=False, device="cuda",
             amp="bf16", channels_last=True, compile=True)
    assert tr.config["compile"] is True and tr.config["channels_last"] and tr.log[-1]["train_acc"] > 0.8
