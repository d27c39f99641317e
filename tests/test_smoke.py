"""Smoke mode: every config of experiments/configs runs end to end on CPU in miniature (`scoreextra sweep CONFIG --smoke`):
the config's own models, scores, recipes and paradigm on stand-in files of its dataset in the real on-disk format, read by
the real loaders; sweep, every stage, report. The GPU-sized configs (ResNet-50 at 64 px, WRN-28-10 TRADES) are `slow`; one
supervised, one unsupervised and one adversarial config run in the default set. A broken GPU-only branch fails loudly."""
import contextlib, io
from pathlib import Path

import pytest

from scoreextra.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "experiments" / "configs").glob("*.yaml"))
# the default set, each well under a minute on one thread: supervised (Fashion-MNIST idx files, every extrapolator kind), unsupervised
# (TURTLE on a DINOv2-sized feature file), adversarial (PGD-AT); every other config is `-m slow`
DEFAULT = {"fashion_mnist.yaml", "cifar10_unsupervised.yaml", "fashion_mnist_adversarial.yaml"}


def _smoke(config:Path, runs:Path) -> tuple[int, str, str]:
    "(exit status, stdout, stderr) of `scoreextra sweep CONFIG --smoke --runs RUNS`."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["sweep", str(config), "--smoke", "--runs", str(runs), "--device", "cpu"])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("config", [c if c.name in DEFAULT else pytest.param(c, marks=pytest.mark.slow) for c in CONFIGS],
                         ids=lambda c: c.stem)
def test_smoke_runs_every_config(config, tmp_path, monkeypatch):
    monkeypatch.setenv("SCOREEXTRA_DATA", str(tmp_path / "not_here"))   # the smoke run must bring its own data
    code, out, err = _smoke(config, tmp_path)
    assert code == 0, out[-3000:] + err[-3000:]
    assert "failed: 0" in out and " 0 done, running" in out, out[-2000:]
    folders = [p for p in (tmp_path / "runs").glob("*/*") if p.is_dir()]
    assert folders and all((p / "meta.json").exists() for p in folders)
    assert list((tmp_path / "report").glob("*.md")), "the report wrote no table"
    import os
    assert os.environ["SCOREEXTRA_DATA"] == str(tmp_path / "not_here")   # the data root is given back


def test_smoke_fails_on_a_wrong_model_name(tmp_path):
    "A typo in a GPU-only config is refused before any job runs, naming the value."
    bad = tmp_path / "imagenet64.yaml"
    bad.write_text((ROOT / "experiments/configs/imagenet64.yaml").read_text() + "model: resnet18x\n")
    code, out, err = _smoke(bad, tmp_path / "smoke")
    assert code == 2 and "unknown model 'resnet18x'" in err, err


def test_smoke_fails_on_a_broken_gpu_only_branch(tmp_path):
    "A value only the GPU run would read (the WRN's activation of the synthetic-CIFAR TRADES recipe) fails the smoke run."
    src = (ROOT / "experiments/configs/synthetic_cifar10_adversarial.yaml").read_text()
    assert "activation: swish" in src
    bad = tmp_path / "synthetic_cifar10_adversarial.yaml"
    bad.write_text(src.replace("activation: swish", "activation: swsh"))
    code, out, err = _smoke(bad, tmp_path / "smoke")
    assert code == 1 and "FAILED" in out and "swsh" in out, out[-2000:]
    assert not list((tmp_path / "smoke" / "report").glob("*.md"))   # no report from a failed sweep
