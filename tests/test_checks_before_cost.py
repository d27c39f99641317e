"""One check before any cost, for every entry point (issue 27.10): what fails only once a job runs — k above the seed
count, a seed size that rounds to 0 seeds, bad score overrides, bad extrapolator options, a missing or wrong-shape
`sampler_embeddings` — is refused in one line naming the value by `sweep` (and `scoreextra sweep`) as by `run` (and
`scoreextra run`), before any training and before any run folder exists."""
import contextlib, io

import numpy as np
import pytest

import scoreextra.train
from scoreextra.pipeline import ConfigError, run, sweep

TINY = dict(name="tiny", dataset="digits", scores=["du"], seed_sizes=[0.2], seeds=[0], score_epochs=11, final_epochs=1,
            extrapolators=[{"name": "knn", "k": [5]}], prune={"rates": [0.5], "extrapolators": [{"name": "knn", "k": 5}]})


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    "Any training that starts fails the test loudly (a check that runs only after training is the defect here)."
    def started(self): raise AssertionError("training started before the config was checked")
    monkeypatch.setattr(scoreextra.train.Trainer, "run", started)


SWEEP_CASES = [
    (dict(seed_sizes=[5]), r"k=5 is larger than the 5 seed|k=10 is larger than the 5 seed", dict(extrapolators=[{"name": "knn", "k": [10]}])),
    (dict(seed_sizes=[0.0001]), r"seed_size=0\.0001 of the 1437 samples of 'digits' rounds to 0", {}),
    (dict(score_overrides={"lr": -1}), r"lr must be > 0, got -1", {}),
    (dict(score_overrides={"nosuch": 1}), r"unknown keyword 'nosuch'", {}),
    (dict(score_overrides={"window": 0}), r"window", {}),
    (dict(extrapolators=[{"name": "knn", "k": [5], "params": {"nosuch": 1}}]), r"knn .*'nosuch'", {}),
    (dict(extrapolators=[{"name": "knn_ensemble", "k": [5], "params": {"ks": "x"}}]), r"knn_ensemble", {}),
]


@pytest.mark.parametrize("change, msg, more", SWEEP_CASES, ids=[str(c) for c, _, _ in SWEEP_CASES])
def test_a_sweep_refuses_what_a_job_would_fail_on_before_any_job(tmp_path, change, msg, more):
    "Was: the job failed once it ran (after its parents trained), reported as a failure, folders left behind."
    cfg = {**TINY, **change, **more}
    with pytest.raises(ConfigError, match=msg) as e: sweep(cfg, runs_root=tmp_path / "runs", log=lambda m: None)
    assert "\n" not in str(e.value) and str(e.value).startswith("config: ")
    assert not (tmp_path / "runs").exists()


def test_sampler_embeddings_missing_or_of_the_wrong_shape_are_named_with_their_path(tmp_path):
    "Was: a missing file failed in the job; a wrong shape failed in the sampler with a message that gave no path."
    gone, small = tmp_path / "gone.npy", tmp_path / "small.npy"
    np.save(small, np.zeros((100, 4), np.float32))
    for path, msg in ((gone, "does not exist"), (small, r"shape \(100, 4\).* 1437 rows")):
        cfg = {**TINY, "sampler": "zcore", "sampler_embeddings": str(path)}
        with pytest.raises(ConfigError, match=msg) as e: sweep(cfg, runs_root=tmp_path / "runs", log=lambda m: None)
        assert str(path) in str(e.value) and "\n" not in str(e.value)
        with pytest.raises(ConfigError, match=msg): sweep(cfg, runs_root=tmp_path / "runs", limit=0, log=lambda m: None)
    assert not (tmp_path / "runs").exists()


def test_the_sweep_command_refuses_in_one_line_naming_the_file(tmp_path):
    from scoreextra.cli import main
    import yaml
    p = tmp_path / "c.yaml"; p.write_text(yaml.safe_dump({**TINY, "seed_sizes": [5], "extrapolators": [{"name": "knn", "k": [10]}]}))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["sweep", str(p), "--runs", str(tmp_path / "runs")]) == 2
    msg = err.getvalue()
    assert msg.count("\n") == 1 and msg.startswith(f"scoreextra sweep: error: {p}: ") and "k=10 is larger than the 5 seed" in msg, msg
    assert not (tmp_path / "runs").exists()


def test_run_refuses_a_seed_size_of_zero_seeds_and_bad_overrides_before_any_folder(tmp_path):
    "Was: refused after the run folder existed (sampling or the first epoch), or only for the kNN extrapolator."
    root = tmp_path / "runs"
    with pytest.raises(ConfigError, match=r"^run: seed_size=0\.0001 of the 1437 samples of 'digits' rounds to 0 samples"):
        run("digits", extrapolators=["gnn"], seed_size=0.0001, runs_root=root)
    with pytest.raises(ConfigError, match=r"^run: .*lr must be > 0, got -1"):
        run("digits", extrapolators=["knn"], score_overrides={"lr": -1}, runs_root=root)
    assert not root.exists()


CLI_CASES = [(["--extrapolator", "gnn:100000"], "k=100000"),
             (["--ext-param", "knn.nosuch=1"], "nosuch"),
             (["--score-override", "lr=-1"], "lr must be > 0, got -1"),
             (["--seed-size", "0.0001"], "seed_size=0.0001")]


@pytest.mark.parametrize("args, msg", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_the_run_command_refuses_before_any_training_or_folder(tmp_path, args, msg):
    "Was: `gnn:100000` and `knn.nosuch=1` failed after the scoring runs had trained; `lr=-1` after its folder existed."
    from scoreextra.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", "--runs", str(tmp_path / "runs"), *args])
    assert code == 2 and err.getvalue().count("\n") == 1 and msg in err.getvalue(), (code, err.getvalue())
    assert err.getvalue().startswith("scoreextra run: error: run: ")
    assert not (tmp_path / "runs").exists()
