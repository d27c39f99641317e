"""Smoke mode: every config of experiments/configs runs end to end on CPU in miniature (`scoreextra sweep CONFIG --smoke`):
the config's own models, scores, recipes and paradigm on stand-in files of its dataset in the real on-disk format, read by
the real loaders; sweep, every stage, report. One supervised, one unsupervised and one adversarial config run in the
default set, the others are `slow`; the GPU-sized ones (ResNet-50 at 64 px, WRN-28-10 TRADES) also `gpu_sized`. A broken GPU-only branch fails loudly."""
import contextlib, io
from pathlib import Path

import pytest

from scoreextra.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "experiments" / "configs").glob("*.yaml"))
# the default set, each well under a minute on one thread: supervised (Fashion-MNIST idx files, every extrapolator kind), unsupervised
# (TURTLE on a DINOv2-sized feature file), adversarial (PGD-AT); every other config is `-m slow`
DEFAULT = {"fashion_mnist.yaml", "cifar10_unsupervised.yaml", "fashion_mnist_adversarial.yaml"}
# The GPU-sized configs take minutes each on a CPU (measured on 2 cores: cifar10_adversarial 7 min, places365 5 min,
# imagenet64 3.6 min; these nine 31 min in all), too long for the slow set CI runs after `make test`: they are
# `gpu_sized` as well as `slow`, and `make test-slow` leaves them out (`pytest -m gpu_sized` runs them).
GPU_SIZED = {"cifar10.yaml", "cifar10_adversarial.yaml", "imagenet64.yaml", "places365.yaml", "places365_sampler_stratified.yaml",
             "places365_sampler_zcore.yaml", "synthetic_cifar100_du.yaml", "synthetic_cifar100_tdds.yaml",
             "synthetic_cifar10_adversarial.yaml"}


def _marks(config:Path) -> list:
    if config.name in DEFAULT: return []
    marks = [pytest.mark.slow] + ([pytest.mark.gpu_sized] if config.name in GPU_SIZED else [])
    return marks


def _smoke(config:Path, runs:Path) -> tuple[int, str, str]:
    "(exit status, stdout, stderr) of `scoreextra sweep CONFIG --smoke --runs RUNS`."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["sweep", str(config), "--smoke", "--runs", str(runs), "--device", "cpu"])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("config", [pytest.param(c, marks=_marks(c)) for c in CONFIGS], ids=lambda c: c.stem)
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
