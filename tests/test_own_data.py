"""Issue 13, own data: the five numbered problems of the issue as tests, the README's own-data example run from the shell
and from Python, on small real data (scikit-learn's generators and digits; seconds per test on one thread)."""
import json, os, re, subprocess, sys, textwrap, warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from scoreextra.data import Dataset, as_dataset, dataset_fingerprint, load_dataset, register_dataset
from scoreextra.own_data import ScoreResult, extrapolate, extrapolate_scores
from scoreextra.pipeline import ConfigError, run, subset_config
from scoreextra.subset_scoring import SeedScoreWarning
from scoreextra.stages import run_stage

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def tab(seed=0, n=600):
    "A tabular set the package never saw: float64 features, 3 classes."
    from sklearn.datasets import make_classification
    return make_classification(n_samples=n, n_features=16, n_informative=8, n_classes=3, random_state=seed)


FAST = dict(seed_size=0.25, extrapolators=["knn"], prune_rates=[0.5], ground_truth=False, baselines=[], score_epochs=12,
            final_epochs=2, batch_size=64)


def configs(root, stage):
    return [json.loads(p.read_text())["config"] for p in sorted((Path(root) / stage).glob("*/config.json"))]


# ---------------------------------------------------------------- 1. stale results keyed by a name
def test_other_data_under_the_same_name_never_shares_results(tmp_path):
    r0 = run(tab(0), "du", runs_root=tmp_path, **FAST)
    r1 = run(tab(1), "du", runs_root=tmp_path, **FAST)          # registered under the same name, "own"
    subs = configs(tmp_path, "score_subset")
    assert [c["dataset"] for c in subs] == ["own", "own"] and subs[0]["fingerprint"] != subs[1]["fingerprint"]
    assert not np.array_equal(r0.scores["knn k=10"], r1.scores["knn k=10"])
    again = run(tab(0), "du", runs_root=tmp_path, **FAST)        # the same data again: its folders, its scores
    np.testing.assert_array_equal(again.scores["knn k=10"], r0.scores["knn k=10"])
    assert len(configs(tmp_path, "score_subset")) == 2


def test_a_stage_refuses_data_that_changed_since_its_config(tmp_path):
    register_dataset(tab(0), name="drift")
    cfg = subset_config("drift", "du", 0.25, epochs=12, model="mlp")
    register_dataset(tab(1), name="drift")
    with pytest.raises(ValueError, match="holds other data"): run_stage("score_subset", cfg, tmp_path)
    assert subset_config("drift", "du", 0.25, epochs=12, model="mlp")["fingerprint"] == dataset_fingerprint("drift") != cfg["fingerprint"]


def test_built_in_configs_carry_no_fingerprint():
    assert "fingerprint" not in subset_config("digits", "du", 0.2) and dataset_fingerprint("digits") is None


# ---------------------------------------------------------------- 2. unreliable seed scores speak up
def test_a_subset_model_that_has_not_learned_warns_with_the_fix():
    with pytest.warns(SeedScoreWarning, match=r"still learning.*--score-epochs"):
        res = extrapolate_scores(tab(0), "du", epochs=12, lr=1e-5)
    assert res.diagnostics.train_acc < 0.9 and len(res.diagnostics.loss_curve) == 12
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeedScoreWarning)          # the documented fix: a usable learning rate, no warning
        fixed = extrapolate_scores(tab(0), "du", epochs=12, lr=3e-3, reliability=True)
    assert fixed.diagnostics.train_acc >= 0.9 and -1 <= fixed.diagnostics.reliability <= 1 and "reliability" in fixed.seconds


def test_run_and_the_cli_take_recipe_overrides_and_warn(tmp_path):
    with pytest.warns(SeedScoreWarning, match="score-override lr="):
        res = run(tab(0), "du", runs_root=tmp_path / "py", score_overrides={"lr": 1e-5}, **FAST)
    assert res.diagnostics.train_acc < 0.9 and configs(tmp_path / "py", "score_subset")[0]["overrides"] == {"lr": 1e-5}
    rel = run(tab(0), "du", runs_root=tmp_path / "py", score_overrides={"lr": 3e-3}, reliability=True, **FAST)
    assert rel.diagnostics.train_acc >= 0.9 and 0 < rel.diagnostics.reliability <= 1   # the fix: learned, two seeds agree
    x, y = tab(0)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    r = subprocess.run([str(BIN / "scoreextra"), "run", "--data", str(tmp_path / "d.npz"), "--score-override", "lr=1e-5",
                        "--seed-size", "0.25", "--extrapolator", "knn", "--prune-rates", "0.5", "--no-ground-truth", "--baselines",
                        "--score-epochs", "12", "--final-epochs", "2", "--batch-size", "64", "--runs", str(tmp_path / "cli"), "--reliability"],
                       capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "SeedScoreWarning" in r.stderr and "Test accuracy by prune rate" in r.stdout
    assert re.search(r"Subset training: ScoreDiagnostics\(train_acc=0\.\d+ after 12 epochs.*split-half reliability -?\d\.\d{3}\)", r.stdout)
    assert configs(tmp_path / "cli", "score_subset")[0]["overrides"] == {"lr": 1e-5}


# ---------------------------------------------------------------- 3. GNN options reach the extrapolator
def test_gnn_options_pass_through_extrapolate_scores_and_run(tmp_path):
    opts = {"standardize_targets": True, "epochs": 10}
    res = extrapolate_scores(tab(0), "du", epochs=12, extrapolators={"gnn": opts, "knn": {}})
    again = extrapolate(res.embeddings, res.seed_idx, res.seed_scores, method="gnn", labels=as_dataset(tab(0)).y, **opts)
    plain = extrapolate(res.embeddings, res.seed_idx, res.seed_scores, method="gnn", labels=as_dataset(tab(0)).y, epochs=10)
    np.testing.assert_allclose(res.by_extrapolator["gnn"], again, rtol=1e-5)
    assert not np.allclose(res.by_extrapolator["gnn"], plain)   # the option changed the result
    assert list(res.by_extrapolator) == ["gnn", "knn"] and {"extrapolation:gnn", "extrapolation:knn"} <= set(res.seconds)
    out = run(tab(0), "du", runs_root=tmp_path, **{**FAST, "extrapolators": ["gnn"]}, extrapolator_params={"gnn": opts})
    assert [c["params"] for c in configs(tmp_path, "extrapolate")] == [opts]
    with pytest.raises(ValueError, match="no option 'standardise_targets'"):
        extrapolate_scores(tab(0), "du", epochs=12, extrapolators=("gnn", {"standardise_targets": True}))
    assert out.scores["gnn k=10"].shape == (480,)


# ---------------------------------------------------------------- 4. own data and models
class Net(nn.Module):
    "A user's own model with an embed method."
    def __init__(self, d=16, classes=3):
        super().__init__(); self.body, self.head = nn.Sequential(nn.Linear(d, 32), nn.ReLU()), nn.Linear(32, classes)
    def embed(self, x): return self.body(x)
    def forward(self, x): return self.head(self.embed(x))


def test_dataset_takes_what_users_have():
    x = torch.randn(10, 2, 30, dtype=torch.float64)                      # torch float64 signals, string labels
    ds = Dataset("s", "train", x, np.array(list("abcab" * 2)))
    assert ds.x.dtype == np.float32 and ds.in_shape == (2, 30) and ds.classes == ["a", "b", "c"] and ds.y.tolist()[:3] == [0, 1, 2]
    assert Dataset("t", "train", torch.ones(3, 4), torch.tensor([0, 1, 0])).x.dtype == np.float32
    with pytest.raises(ValueError, match=r"\['z'\] are not among classes"): Dataset("t", "train", np.zeros((2, 3)), ["a", "z"], ["a", "b"])
    class Own:                                                            # "your own with x, y, classes"
        x, y, classes = np.random.default_rng(0).normal(size=(40, 5)), np.arange(40) % 2, ["neg", "pos"]
    with pytest.raises(ValueError, match="k=10 is larger than the 8 seed samples"): extrapolate_scores(Own(), "du", epochs=11)
    res = extrapolate_scores(Own(), "du", epochs=11, k=5, warn=False)
    assert res.scores.shape == (40,) and type(res.model).__name__ == "MLP"
    with pytest.raises(KeyError, match="register_dataset registers in this process only"): load_dataset("registered_elsewhere")


def test_run_takes_a_dataset_and_extrapolate_scores_an_own_module(tmp_path):
    ds = as_dataset(tab(0), name="mine")
    res = run(ds, "du", runs_root=tmp_path, **FAST)                 # no "unhashable type: 'Dataset'"
    assert configs(tmp_path, "score_subset")[0]["dataset"] == "mine" and res.scores["knn k=10"].shape == (480,)
    out = extrapolate_scores(ds, "du", epochs=12, model=Net())
    assert isinstance(out, ScoreResult) and out.embeddings.shape == (600, 32) and isinstance(out.model, Net)
    np.testing.assert_array_equal(out.scores[out.seed_idx], out.seed_scores)
    bare = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))   # no embed: a function gives it
    fn = extrapolate_scores(ds, "du", epochs=12, model=bare, embed=lambda m, x: m[1](m[0](x)))
    assert fn.embeddings.shape == (600, 32)
    with pytest.raises(TypeError, match="has no embed\\(x\\) method") as e: extrapolate_scores(ds, "du", model=bare)
    assert len(str(e.value)) < 300                                     # names the class, does not dump the module
    with pytest.raises(ValueError, match="the data has 3 classes"): extrapolate_scores(ds, "du", model=Net(classes=5))


def test_signals_get_the_zoos_1d_model():
    rng = np.random.default_rng(0)
    y = np.repeat(["low", "high"], 150)
    t = np.linspace(0, 1, 64)
    x = np.sin(2 * np.pi * np.where(y == "low", 3, 7)[:, None, None] * t) + 0.5 * rng.normal(size=(300, 2, 64))
    res = extrapolate_scores((x, y), "du", epochs=12)
    assert type(res.model).__name__ == "SignalCNN" and res.scores.shape == (300,)


MODULE = '''
import numpy as np
from sklearn.datasets import make_classification
def load():
    x, y = make_classification(n_samples=400, n_features=12, n_informative=6, n_classes=2, random_state=3)
    return x[:320], y[:320], x[320:], y[320:]
'''


# papermill: ~12 CPU s, two kernels; `slow`. The inline case names the data by module:function, and a papermill kernel
# importing a module it is told of by PYTHONPATH stays in `make test` (test_structure's toy stage).
@pytest.mark.parametrize("executor", ["inline", pytest.param("papermill", marks=pytest.mark.slow)])
def test_a_sweep_names_data_by_module_function(tmp_path, monkeypatch, executor):
    if executor == "papermill": pytest.importorskip("papermill")
    (tmp_path / "mydata_mod.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{ROOT}")          # the papermill kernel imports it by name, nothing registered
    from scoreextra.pipeline import sweep
    cfg = {"name": "mine", "dataset": "mydata_mod:load", "scores": ["du"], "seed_sizes": [0.25], "seeds": [0], "model": "mlp",
           "score_epochs": 12, "batch_size": 64, "extrapolators": [{"name": "knn", "k": [5]}]}
    s = sweep(cfg, runs_root=tmp_path / "runs", executor=executor, log=lambda *a: None)
    assert s["failed"] == [] and s["ran"] == 2, s
    ext = configs(tmp_path / "runs", "extrapolate")[0]
    assert ext["subset"]["dataset"] == "mydata_mod:load" and len(ext["subset"]["fingerprint"]) == 16
    assert np.load(next((tmp_path / "runs" / "extrapolate").glob("*/scores.npy"))).shape == (320,)


# ---------------------------------------------------------------- 5. checks before the cost
def test_too_few_epochs_are_refused_before_any_training(tmp_path, monkeypatch, capsys):
    import scoreextra.train, scoreextra.own_data
    def no_training(*a, **k): raise AssertionError("training started before the epochs were checked")
    monkeypatch.setattr(scoreextra.train, "fit", no_training)
    monkeypatch.setattr(scoreextra.own_data, "score_subset", no_training)
    from scoreextra.subset_scoring import score_subset
    digits = load_dataset("digits")
    with pytest.raises(ValueError, match="needs at least window\\+1 = 11 epochs"): score_subset(digits, np.arange(300), "du", epochs=5)
    with pytest.raises(ValueError, match="trajectory_epochs=10 is longer"): score_subset(digits, np.arange(300), "tdds", epochs=5)
    with pytest.raises(ValueError, match="= 11 epochs"): extrapolate_scores(digits, "du", epochs=5)
    with pytest.raises(ConfigError, match="run: .*= 11 epochs.*score_epochs"): run("digits", "du", score_epochs=5, runs_root=tmp_path / "r")
    with pytest.raises(ConfigError, match="k=10 is larger than the 5 seed samples"): run("digits", "du", seed_size=5, runs_root=tmp_path / "r")
    with pytest.raises(ValueError, match="k=10 is larger than the 5 seed samples"): extrapolate_scores(digits, "du", seed_size=5)
    assert not (tmp_path / "r").exists()
    from scoreextra.cli import main      # the command, in this process: training is still patched out
    capsys.readouterr()
    rc, err = main(["run", "--score-epochs", "5", "--runs", str(tmp_path / "c")]), capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "= 11 epochs" in err and not (tmp_path / "c").exists()


# ---------------------------------------------------------------- the README's own-data example
def _readme_blocks():
    text = (ROOT / "README.md").read_text()
    sec = text[text.index("## Your own data"):]
    sec = sec[:sec.index("\n## ", 5)]
    return re.search(r"```python\n(.*?)```", sec, re.S).group(1), re.search(r"```sh\n(.*?)```", sec, re.S).group(1)


# ~22 CPU s: the README's example at its size (2,000 samples, 20 epochs, kNN and GNN) in two fresh processes; `slow`.
# What it calls is checked in `make test`: extrapolate_scores with GNN options (test_gnn_options_pass_through_...),
# `scoreextra run --data FILE.npz` (test_run_and_the_cli_take_recipe_overrides_and_warn), select with labels.
@pytest.mark.slow
def test_readme_own_data_example_runs_from_python_and_the_shell(tmp_path):
    py, sh = _readme_blocks()
    r = subprocess.run([sys.executable, "-c", py], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "400 seeds scored, kept 1000 of 2000" in r.stdout and "ScoreDiagnostics(train_acc=" in r.stdout
    assert (tmp_path / "mydata.npz").exists()
    r = subprocess.run(["bash", "-c", sh], capture_output=True, text=True, cwd=tmp_path, timeout=900,
                       env={**ENV, "PATH": f"{BIN}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Test accuracy by prune rate" in r.stdout and "ground truth" in r.stdout and "Subset training: ScoreDiagnostics(train_acc=" in r.stdout
    gnn = [c for c in configs(tmp_path / "runs" / "mydata", "extrapolate") if c["extrapolator"] == "gnn"]
    assert gnn and gnn[0]["params"] == {"standardize_targets": True}
    assert gnn[0]["subset"]["dataset"] == str(tmp_path / "mydata.npz") and gnn[0]["subset"]["model"] == "mlp"


# ---------------------------------------------------------------- recorders in a hand-written loop
def test_recorders_in_an_own_loop_equal_fits_scores():
    "begin / record per batch / end_epoch in a plain PyTorch loop gives fit's scores for every streaming score."
    import torch.nn.functional as F
    from scoreextra.data import BatchLoader
    from scoreextra.subset_scoring import SCORES
    from scoreextra.train import fit
    digits = load_dataset("digits")
    idx = np.random.default_rng(2).choice(len(digits), 200, replace=False)
    make = lambda: {"du": SCORES["du"].recorder(window=4), "tdds": SCORES["tdds"].recorder(window=4, trajectory_epochs=6),
                    "forgetting": SCORES["forgetting"].recorder(), "aum": SCORES["aum"].recorder()}
    def net():
        torch.manual_seed(0); return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    mine, model = {k: r.begin(idx, 10, 8) for k, r in make().items()}, net()
    opt, loader = torch.optim.Adam(model.parameters(), lr=1e-3), BatchLoader(digits, np.sort(idx), batch_size=32, shuffle=True, seed=0)
    for e in range(8):
        loader.set_epoch(e)
        for x, y, b in loader:
            z = model(x)
            for r in mine.values(): r.record(b, z, y)
            opt.zero_grad(); F.cross_entropy(z, y).backward(); opt.step()
        for r in mine.values(): r.end_epoch()
    ref = make()
    fit(net(), digits, idx, epochs=8, batch_size=32, optimizer="adam", lr=1e-3, callbacks=list(ref.values()), progress=False)
    for k in mine: np.testing.assert_allclose(mine[k].scores(), ref[k].scores(), rtol=1e-5, atol=1e-7, err_msg=k)
    with pytest.raises(RuntimeError, match="not recorded in epoch 0"):
        r = SCORES["du"].recorder(window=2).begin([1, 2, 3], 10, 3); r.record([1, 2], np.zeros((2, 10)), [0, 0]); r.end_epoch()


def test_a_papermill_failure_reads_as_the_kernels_error_without_terminal_colours(tmp_path):
    "Data registered in this process only is unknown to a papermill kernel: the sweep names the job and the kernel's KeyError in plain text."
    pytest.importorskip("papermill")
    from sklearn.datasets import make_classification
    from scoreextra.data import register_dataset
    from scoreextra.pipeline import sweep
    x, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3, random_state=0)
    name = register_dataset((x, y), name="only_in_this_process")
    cfg = {"name": "reg", "dataset": name, "scores": ["du"], "seed_sizes": [0.25], "seeds": [0], "model": "mlp",
           "score_epochs": 12, "batch_size": 64, "extrapolators": [{"name": "knn", "k": [5]}]}
    s = sweep(cfg, runs_root=tmp_path / "runs", executor="papermill", log=lambda *a: None)
    assert s["ran"] == 0 and [k.split("/")[0] for k, _ in s["failed"]] == ["score_subset", "extrapolate"], s
    key, err = s["failed"][0]
    assert f"{key} failed in its notebook" in err and "only_in_this_process" in err and "register_dataset" in err, err
    assert "\x1b" not in err and "\\x1b" not in err and "[0;31m" not in err, err   # no terminal colour codes


def test_extrapolate_scores_speaks_runs_vocabulary_and_old_names_warn():
    "Issue 29.2: `extrapolators`, `merge` and `score_overrides` as in run(); `extrapolator=`/`merge_how=` still work, with a DeprecationWarning."
    import warnings
    from scoreextra.own_data import extrapolate_scores
    new = extrapolate_scores(tab(0), "du", epochs=12, extrapolators=["knn"], merge="raw", score_overrides={"lr": 2e-3})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        old = extrapolate_scores(tab(0), "du", epochs=12, extrapolator=["knn"], merge_how="raw", lr=2e-3)
    dep = [str(x.message) for x in w if issubclass(x.category, DeprecationWarning) and "run()" in str(x.message)]
    assert len(dep) == 2 and any("extrapolator= is now extrapolators=" in m for m in dep) and any("merge_how= is now merge=" in m for m in dep)
    np.testing.assert_array_equal(new.scores, old.scores)
    shrunk = extrapolate_scores(tab(0), "du", epochs=12, score_overrides={"lr": 2e-3})   # the default merge: shrink
    rest = np.setdiff1d(np.arange(len(new.scores)), new.seed_idx)
    assert not np.allclose(shrunk.scores[rest], new.scores[rest]) and np.array_equal(shrunk.scores[new.seed_idx], new.scores[new.seed_idx])
