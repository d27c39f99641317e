"End-to-end pipeline, sweep, report and CLI on scikit-learn digits (real data, short trainings)."
import json, os, shutil, subprocess, sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from scoreextra.core import load_json, save_json
from scoreextra.runfolder import ConfigMismatch
from scoreextra.pipeline import (ConfigError, expand_config, report, run_stage, subset_config, sweep,
                                 extrapolate_config, prune_config)

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
TINY = dict(name="tiny", dataset="digits", scores=["du"], seed_sizes=[0.2], seeds=[0, 1], score_epochs=12,
            ground_truth={"seeds": [1000]}, extrapolators=[{"name": "knn", "k": [10]}],
            prune={"rates": [0.5], "extrapolators": [{"name": "knn", "k": 10}], "baselines": ["random"]}, final_epochs=2)


def _statuses(root):
    return {p.parent.parent.name + "/" + p.parent.name: load_json(p)["status"] for p in Path(root).glob("*/*/meta.json")}


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """The TINY sweep, run once for the module as an interrupted sweep is rerun: 4 jobs, then the rest. The first test
    checks the two goes; the others report on the folders or start from a copy of them (its jobs are theirs too)."""
    root = tmp_path_factory.mktemp("tiny") / "runs"
    first = sweep(TINY, runs_root=root, limit=4, log=lambda *a: None)
    done_after_first = {k for k, v in _statuses(root).items() if v == "done"}
    mtimes = {k: (root / k / "meta.json").stat().st_mtime_ns for k in done_after_first}
    second = sweep(TINY, runs_root=root, log=lambda *a: None)
    return SimpleNamespace(root=root, first=first, mtimes=mtimes, second=second)


def _copy(runs, to, stages=("ground_truth", "score_subset", "baseline")):
    """A copy of TINY's finished ground truth, subset and baseline folders under `to`: a test adds to it without touching
    what other tests read; its extrapolations and final trainings are its own."""
    for stage in stages: shutil.copytree(runs.root / stage, to / stage)
    return to


def test_interrupted_sweep_reruns_only_missing_jobs(tiny_runs):
    jobs, root = expand_config(TINY), tiny_runs.root
    assert tiny_runs.first["ran"] == 4 and tiny_runs.first["done_before"] == 0
    second = tiny_runs.second
    assert second["done_before"] == 4 and second["ran"] == len(jobs) - 4 and not second["failed"]
    # the four finished runs were not touched again
    assert len(tiny_runs.mtimes) == 4
    assert all((root / k / "meta.json").stat().st_mtime_ns == t for k, t in tiny_runs.mtimes.items())
    assert set(_statuses(root).values()) == {"done"} and len(_statuses(root)) == len(jobs)
    third = sweep(TINY, runs_root=root, log=lambda *a: None)
    assert third["ran"] == 0 and third["done_before"] == len(jobs)


def test_report_writes_tables_and_figures(tiny_runs, tmp_path):
    res = report(tiny_runs.root, tmp_path / "rep")
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"correlations.md", "correlations.csv", "accuracy.md", "ledger.md", "fig2_pruning_curves.png",
            "fig3_time_vs_accuracy.png", "fig4_correlation_vs_accuracy.png", "fig5_score_distributions.png"} <= names
    corr = res["correlations"]
    assert corr.seeds.iloc[0] == 2 and np.isfinite(corr.pearson.iloc[0])   # two subset seeds aggregated
    acc = res["accuracy"]
    assert set(acc.method) == {"knn k=10", "original", "random"}
    assert ((acc.acc > 0) & (acc.acc <= 1)).all()


def test_config_mismatch_refuses_and_keeps_files(tmp_path):
    cfg = subset_config("digits", "du", 0.2, 0, epochs=12)
    f = run_stage("score_subset", cfg, tmp_path)
    before = {p.name: p.read_bytes() for p in f.path.iterdir() if p.is_file()}
    stored = load_json(f.path / "config.json"); stored["config"]["epochs"] = 99
    save_json(f.path / "config.json", stored)          # a folder whose config differs from the request
    with pytest.raises(ConfigMismatch, match="different config"):
        run_stage("score_subset", cfg, tmp_path)
    after = {p.name: p.read_bytes() for p in f.path.iterdir() if p.is_file()}
    assert before.keys() == after.keys() and all(before[k] == after[k] for k in before if k != "config.json")


@pytest.mark.parametrize("change, msg", [
    ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
    ({"scores": ["du", "dux"]}, "unknown score 'dux'"),
    ({"extrapolators": [{"name": "svm", "k": [3]}]}, "unknown extrapolator"),
    ({"prune": {"rates": [0.5, 1.0]}}, "prune_rate must be in [0.0, 1.0), got 1.0"),
    ({"prune": {"rates": [-0.1]}}, "prune_rate must be in [0.0, 1.0), got -0.1"),
    ({"seed_sizes": [1.5]}, "seed_size must be a fraction in (0, 1) or an int count >= 1, got 1.5"),
    ({"learning_rate": 3}, "unknown key(s) ['learning_rate']"),
])
def test_bad_config_is_a_clear_error_and_writes_nothing(tmp_path, change, msg):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, **change}))
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        sweep(path, runs_root=tmp_path / "runs", log=lambda *a: None)
    assert not (tmp_path / "runs").exists()


def test_stage_configs_validate_their_arguments():
    with pytest.raises(KeyError, match="unknown dataset"): subset_config("svhn", "du", 0.2)
    with pytest.raises(ValueError, match="seed_size"): subset_config("digits", "du", 1.5)
    with pytest.raises(ValueError, match="prune_rate must be in"):
        prune_config("baseline", {"dataset": "digits"}, 1.0)
    with pytest.raises(KeyError, match="unknown extrapolator"):
        extrapolate_config(subset_config("digits", "du", 0.2), "kmeans")


@pytest.mark.slow
def test_submitit_local_executor_runs_jobs(tmp_path):
    "The slow set (about a minute on 2 cores: a papermill kernel per job under submitit); `make test-slow` runs it."
    pytest.importorskip("submitit")
    cfg = {**TINY, "seeds": [0], "prune": {"rates": [0.5], "baselines": ["random"]}, "extrapolators": []}
    s = sweep(cfg, runs_root=tmp_path, executor="local", log=lambda *a: None)
    assert s["ran"] == len(expand_config(cfg)) and not s["failed"]
    # papermill ran each stage template: the executed notebook is kept in the run folder
    nbs = list(tmp_path.glob("*/*/notebook.ipynb"))
    assert len(nbs) == s["ran"]
    assert not list(tmp_path.glob("*/*/notebook.partial.ipynb"))


# ~23 s on one thread (30 s in make test): a sweep of TINY in a real `scoreextra` process. Its parts stay in `make test`: 20_cli (nbdev-test) runs
# `scoreextra sweep --smoke` and `scoreextra report` through the same command functions, test_cli_help_lists_commands
# the installed console script, test_checks_before_cost a bad config file and test_faults a missing one.
@pytest.mark.slow
def test_cli_sweep_and_report(tmp_path, capsys):
    "The sweep in a real `scoreextra` process; report and a missing config through the same `main` in this one."
    from scoreextra.cli import main
    cfg = {**TINY, "seeds": [0], "runs_root": str(tmp_path / "runs")}
    path = tmp_path / "c.yaml"; path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(BIN / "scoreextra"), "sweep", str(path)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ran now: 7, failed: 0" in r.stdout
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep")]) == 0, capsys.readouterr().err[-2000:]
    assert (tmp_path / "rep" / "accuracy.md").exists()
    capsys.readouterr()
    assert main(["sweep", str(tmp_path / "missing.yaml")]) != 0 and "missing.yaml does not exist" in capsys.readouterr().err


def test_cli_help_lists_commands():
    r = subprocess.run([str(BIN / "scoreextra"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("run", "sweep", "report", "demo", "converge"): assert cmd in r.stdout


# ~20 CPU s: two `scoreextra run` processes, 40 epochs. Its parts stay in `make test`: SIGTERM in a real process ends in
# one line and marks the stage interrupted (test_cli_signals), a resumed fit is bit-identical (test_train), a killed
# attempt's seconds are kept (test_faults).
@pytest.mark.slow
def test_cli_run_killed_then_rerun_resumes_and_keeps_the_seconds(tmp_path):
    "SIGTERM mid-training: seconds spent are written, the rerun resumes from the checkpoint and finishes."
    import signal, time
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(BIN / "scoreextra"), "run", "--dataset", "digits", "--score", "du", "--extrapolator", "knn:10",
            "--prune-rates", "0.5", "--no-ground-truth", "--baselines", "--score-epochs", "40", "--final-epochs", "2",
            "--runs", str(tmp_path)]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("score_subset/*/ckpt/last.pt")): time.sleep(0.2)
    assert list(tmp_path.glob("score_subset/*/ckpt/last.pt")), "no checkpoint was written"
    p.send_signal(signal.SIGTERM); p.wait(timeout=60)
    assert p.returncode == 143
    meta = load_json(next(tmp_path.glob("score_subset/*/meta.json")))
    assert meta["status"] == "interrupted" and meta["seconds"]["subset_training"] > 0 and meta["attempts"] == 1
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = load_json(next(tmp_path.glob("score_subset/*/meta.json")))
    assert meta["status"] == "done" and meta["attempts"] == 2
    log = load_json(next(tmp_path.glob("score_subset/*/log.json")))
    assert [e["epoch"] for e in log] == list(range(1, 41))    # resumed: every epoch once (1-based), none repeated


def test_report_with_two_ground_truths_selections_budgets_and_regenerated_embeddings(tiny_runs, tmp_path):
    # one subset seed: what is checked is the bookkeeping over ground truths, schedules, selections and budgets
    cfg = {**TINY, "seeds": [0], "ground_truth": {"seeds": [1000, 1001]}, "schedules": ["paper", "steps_per_epoch"],
           "final_model": "convnet", "final_recipe": {"channels_last": True},
           "prune": {**TINY["prune"], "selections": ["top", "ccs"], "budgets": ["epochs", "steps"], "max_epochs": 3,
                     "no_pruning": True, "no_pruning_epochs": [4]}}
    root = _copy(tiny_runs, tmp_path / "runs")     # TINY's ground truth, paper-schedule subsets and baselines
    # subsets and ground truths first; then drop the embeddings: extrapolation recomputes them from model.pt
    sweep({**cfg, "extrapolators": [], "prune": {}}, runs_root=root, log=lambda *a: None)
    emb_files = sorted(f for f in root.glob("score_subset/*/embeddings.npy")           # this config's: seed 0
                       if load_json(f.parent / "config.json")["config"]["seed"] == 0)
    assert len(emb_files) == 2 and all((f.parent / "model.pt").exists() for f in emb_files)
    before = {f: np.load(f) for f in emb_files}
    for f in emb_files: f.unlink()
    s = sweep(cfg, runs_root=root, log=lambda *a: None)
    assert not s["failed"]
    for f, e in before.items(): np.testing.assert_array_equal(np.load(f), e)   # recomputed bit-identically
    res = report(root, tmp_path / "rep")
    gtr = res["gt_reproducibility"]
    assert len(gtr) == 1 and -1 <= gtr.pearson.iloc[0] <= 1
    corr = res["correlations"]
    assert set(corr.schedule) == {"paper", "steps_per_epoch"}
    # the GT-vs-GT ceiling sits next to every extrapolation correlation, and the correlation with the GT mean
    assert corr[["gt_vs_gt_pearson", "pearson_gtmean"]].notna().all().all()
    acc = res["accuracy"]
    assert {"knn k=10", "knn k=10 [ccs]", "original", "original [ccs]", "random", "no pruning (2 epochs)",
            "no pruning (4 epochs)"} <= set(acc.method)
    assert set(acc.budget) == {"epochs", "steps"}
    ep = {(r.budget, r.prune_rate): r.epochs for r in res["prunes"].itertuples() if r.method == "random"}
    assert ep == {("epochs", 0.5): 2, ("steps", 0.5): 3}   # steps: 2 / 0.5 = 4, capped at max_epochs = 3
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"gt_reproducibility.md", "fig2_pruning_curves.png", "fig2_pruning_curves_steps.png"} <= names


def test_selection_options_and_baseline_options_reach_the_stages(tiny_runs, tmp_path):
    "`{strategy: top, class_balanced: true}` keeps every class's share; `{name: ssp, params: {keep: easy}}` is its own baseline."
    from scoreextra.data import load_dataset
    from scoreextra.supervised import baseline_config
    root, y = _copy(tiny_runs, tmp_path / "runs"), load_dataset("digits").y   # TINY's subsets, ground truth, baselines
    src = baseline_config("digits", "random", 0)
    run_stage("baseline", src, root)
    kept = {}
    for sel in ("top", {"strategy": "top", "class_balanced": True}):
        f = run_stage("prune_train", prune_config("baseline", src, 0.9, 0, epochs=1, selection=sel), root)
        kept[str(sel)] = np.bincount(y[f.load("kept_idx.npy")], minlength=10)
    cb = kept[str({"strategy": "top", "class_balanced": True})]
    np.testing.assert_array_equal(cb, np.floor((1 - 0.9) * np.bincount(y) + 0.5))   # each class keeps n_keep of its own samples
    assert cb.max() - cb.min() <= 1 and kept["top"].max() - kept["top"].min() > 1   # balanced, unlike the plain top 10%
    with pytest.raises(ConfigError, match="selection 'top' has no option 'balanced'; it takes \\['class_balanced', 'min_class_share'\\]"):
        expand_config({**TINY, "prune": {**TINY["prune"], "selections": [{"strategy": "top", "balanced": True}]}})
    with pytest.raises(ConfigError, match="class_balanced must be true or false, got 'yes'"):
        expand_config({**TINY, "prune": {**TINY["prune"], "selections": [{"strategy": "ccs", "class_balanced": "yes"}]}})
    # the stage config itself refuses an option its baseline does not take (run(), a hand-written config)
    with pytest.raises(ValueError, match="baseline 'random' has no option 'keep'; it takes \\[\\]"):
        baseline_config("digits", "random", 0, params={"keep": "easy"})
    # SSP keeping the easy samples: its scores are the negated hard ones, and the report names the option
    cfg = {**TINY, "seeds": [0], "prune": {**TINY["prune"], "extrapolators": [], "ground_truth": False,
                                          "baselines": ["ssp", {"name": "ssp", "params": {"keep": "easy"}}]}}
    assert not sweep(cfg, runs_root=root, log=lambda *a: None)["failed"]
    ssp = {json.dumps(c["params"]): np.load(p / "scores.npy") for p in root.glob("baseline/*")
           if (c := load_json(p / "config.json")["config"])["baseline"] == "ssp"}
    np.testing.assert_allclose(ssp['{"keep": "easy"}'], -ssp["{}"], atol=1e-6)
    assert {"ssp", "ssp (keep=easy)"} <= set(report(root, tmp_path / "rep")["accuracy"].method)
