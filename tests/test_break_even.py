"""`run` over several seeds (issue 25.2) and whether pruning pays (25.4): the verdict rule in run's tables and the
break-even arithmetic on constructed numbers, bad seeds refused in one line before any training, the ground truths
shared as in the evidence configs, and one small multi-seed run on digits."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoreextra.runfolder import run_status
from scoreextra.metrics import break_even, trainings_to_break_even
from scoreextra.pipeline import VERDICT_RULE, ConfigError, RunResult, expand_config, ledger, run, run_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
RUN_DEFAULTS = dict(seed_size=0.2, extrapolators=("knn",), k=10, prune_rates=(0.5,), ground_truth=True, baselines=("random",),
                    sampler="random", merge="raw", where="train", schedule="steps_per_epoch", model=None, score_epochs=None,
                    final_epochs=None, batch_size=None, selection="top")


def made(accs:dict, *, full_acc=0.95, full_s=100.0, kept_s=50.0, one_off_s=200.0) -> RunResult:
    "A RunResult from constructed final trainings at 50% pruned: method -> test accuracy per seed (random among them)."
    rows = [dict(method="no pruning", prune_rate=0.0, seed=s, test_acc=full_acc, final_training=full_s, total=full_s)
            for s in range(len(accs["random"]))]
    rows += [dict(method=m, prune_rate=0.5, seed=s, test_acc=a, final_training=kept_s, total=kept_s + (0 if m == "random" else one_off_s))
             for m, acc in accs.items() for s, a in enumerate(acc)]
    return RunResult(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {}, np.arange(0), Path("."), trainings=pd.DataFrame(rows))


def test_the_verdict_rule_in_runs_table():
    "Beats random when the mean paired gain exceeds the std of the per-seed gains, loses below minus it, ties otherwise."
    rnd = [0.90, 0.91, 0.92]
    res = made({"random": rnd,
                "beats": [0.910, 0.922, 0.928],     # gains +1.0, +1.2, +0.8: mean 1.0 > std 0.2
                "ties": [0.901, 0.908, 0.924],      # +0.1, -0.2, +0.4: mean 0.1 < std 0.31
                "loses": [0.890, 0.899, 0.911],     # -1.0, -1.1, -0.9
                "unpaired_worse": [0.905, 0.905, 0.905]})   # mean above random's at seed 0, below at 1-2: paired gains +0.5, -0.5, -1.5
    g = res.gains().set_index("method")
    assert g.verdict.to_dict() == {"beats": "beats random", "ties": "ties (within the seed spread)", "loses": "loses",
                                   "unpaired_worse": "ties (within the seed spread)"}
    assert g.loc["beats", "gain"] == pytest.approx(1.0) and g.loc["beats", "gain_std"] == pytest.approx(0.2)
    assert g.loc["unpaired_worse", "gain"] == pytest.approx(-0.5) and g.loc["unpaired_worse", "gain_std"] == pytest.approx(1.0)
    v = res.verdicts()
    assert v.loc["beats", "prune 50%"] == "+1.00 ± 0.20: beats random" and v.loc["loses", "prune 50%"] == "-1.00 ± 0.10: loses"
    assert "random" not in v.index and "no pruning" not in v.index
    assert list(res.accuracy_table().index) == ["no pruning", "random", "beats", "ties", "loses", "unpaired_worse"]
    assert res.accuracy_table().loc["beats", "prune 50%"] == "0.9200 ± 0.0092"
    assert res.accuracy_table().loc["no pruning", "prune 0%"] == "0.9500 ± 0.0000"


def test_a_gain_just_inside_the_spread_ties_and_one_seed_has_no_verdict():
    g = made({"random": [0.90, 0.90, 0.90], "edge": [0.9099, 0.9000, 0.9000]}).gains().set_index("method")
    assert g.loc["edge", "verdict"] == "ties (within the seed spread)"    # mean 0.33 < std 0.57
    one = made({"random": [0.90], "m": [0.93]})
    assert one.gains().verdict.iloc[0].startswith("one seed (+3.00 pt)") and one.verdicts().iloc[0, 0] == "+3.00 (one seed)"


def test_break_even_arithmetic_on_constructed_numbers():
    assert trainings_to_break_even(200, 50, 100) == 5            # 200 + 5*50 = 450 < 500; at R = 4: 400 = 400, not below
    assert trainings_to_break_even(199, 50, 100) == 4
    assert trainings_to_break_even(0, 1, 100) == 1               # random pruning: no one-off cost
    assert trainings_to_break_even(5, 100, 100) == np.inf and trainings_to_break_even(5, 120, 100) == np.inf
    np.testing.assert_array_equal(trainings_to_break_even([200, 0, 10], [50, 1, 100], 100), [5, 1, np.inf])
    res = made({"random": [0.90, 0.91, 0.92], "score": [0.91, 0.922, 0.928]}, full_acc=0.95, full_s=100, kept_s=50, one_off_s=200)
    b = res.break_even().set_index("method")
    assert b.loc["score", "break_even_R"] == 5 and b.loc["random", "break_even_R"] == 1
    assert b.loc["score", "one_off_s"] == 200 and b.loc["score", "per_training_s"] == 50 and b.loc["random", "one_off_s"] == 0
    assert b.loc["score", "acc_given_up_pt"] == pytest.approx(100 * (0.95 - 0.92))
    assert b.loc["score", "gain_over_random_pt"] == pytest.approx(1.0) and b.loc["random", "gain_over_random_pt"] == 0
    assert b.loc["score", "compute_R1"] == pytest.approx(2.5) and b.loc["score", "compute_R100"] == pytest.approx(0.52)
    with pytest.raises(ValueError, match="full_s must be seconds > 0, got nan"):
        break_even(b.reset_index(), full_s=float("nan"), full_acc=0.9)


def test_break_even_needs_the_no_pruning_run():
    res = made({"random": [0.9, 0.91], "score": [0.92, 0.93]})
    res.trainings = res.trainings[res.trainings.method != "no pruning"]
    assert res.break_even().empty and not res.gains().empty


BAD_SEEDS = [(dict(seeds=[]), "run: seeds must name at least one seed, got []"),
             (dict(seeds=()), "run: seeds must name at least one seed, got ()"),
             (dict(seeds=[0, 1, 1]), "run: seeds [0, 1, 1] repeat 1; give each seed once"),
             (dict(seeds=[2, 2, 3, 3]), "run: seeds [2, 2, 3, 3] repeat 2, 3; give each seed once"),
             (dict(seeds=[0, 1.5]), "run: seeds must be ints >= 0, got 1.5 in [0, 1.5]"),
             (dict(seeds=[0, "1"]), "run: seeds must be ints >= 0, got '1' in [0, '1']"),
             (dict(seeds=[True, 1]), "run: seeds must be ints >= 0, got True in [True, 1]"),
             (dict(seeds=[-1]), "run: seeds must be ints >= 0, got -1 in [-1]"),
             (dict(seeds="012"), "run: seeds must be a list of ints >= 0, got '012'"),
             (dict(seeds=3), "run: seeds must be a list of ints >= 0, got 3"),
             (dict(seed=1.0), "run: seed must be an int >= 0, got 1.0"),
             (dict(seed=0, seeds=[1, 2]), "run: pass seed= (one seed) or seeds= (several), not both; got seed=0 and seeds=[1, 2]")]


@pytest.mark.parametrize("bad, msg", BAD_SEEDS, ids=[repr(b) for b, _ in BAD_SEEDS])
def test_bad_seeds_are_refused_in_one_line_before_any_training(bad, msg, tmp_path):
    with pytest.raises(ConfigError) as e:
        run((np.zeros((2, 2)), np.zeros(2)), "du", runs_root=tmp_path / "runs", **bad)   # refused before the data is looked at
    assert str(e.value) == msg and "\n" not in str(e.value)
    assert not (tmp_path / "runs").exists()


def test_numpy_seeds_are_ints_and_one_seed_keeps_its_old_jobs():
    assert run_config("digits", "du", seeds=np.arange(3), **RUN_DEFAULTS)["seeds"] == [0, 1, 2]
    old = run_config("digits", "du", seed=2, **RUN_DEFAULTS)
    assert old == run_config("digits", "du", seeds=[2], **RUN_DEFAULTS)
    assert old["seeds"] == [2] and old["ground_truth"] == {"seeds": [1002]} and "no_pruning" not in old["prune"]


def _gt_seed_of(jobs, seed) -> set:
    return {j.config["source"]["config"]["seed"] for j in jobs if j.stage == "prune_train" and j.config["seed"] == seed
            and j.config["source"]["stage"] == "ground_truth"}


def test_several_seeds_share_the_ground_truths_as_the_evidence_configs_do():
    "Subset seed s is compared with full-data seed 1000 + (s mod 2)."
    jobs = expand_config(validate_config(run_config("digits", "du", seeds=[0, 1, 2, 5], no_pruning=True, **RUN_DEFAULTS), "run"))
    assert sorted(j.config["seed"] for j in jobs if j.stage == "ground_truth") == [1000, 1001]
    assert {s: _gt_seed_of(jobs, s) for s in (0, 1, 2, 5)} == {0: {1000}, 1: {1001}, 2: {1000}, 5: {1001}}
    odd = expand_config(validate_config(run_config("digits", "du", seeds=[1, 3], **RUN_DEFAULTS), "run"))
    assert [j.config["seed"] for j in odd if j.stage == "ground_truth"] == [1001] and _gt_seed_of(odd, 3) == {1001}
    no_pruning = [j for j in jobs if j.stage == "prune_train" and j.config["prune_rate"] == 0]
    assert sorted(j.config["seed"] for j in no_pruning) == [0, 1, 2, 5]


def test_the_evidence_settings_find_the_committed_run_folders():
    "`run(fashion_mnist, seeds=(0, 1, 2))` with the paper-size GCN and top-k trains nothing: every job is a committed folder."
    if not (ROOT / "runs" / "fm_evidence" / "prune_train").is_dir(): pytest.skip("no evidence run folders here")
    gcn = {"name": "gnn", "k": 10, "params": {"hidden": [512, 256], "epochs": 25}}
    cfg = run_config("fashion_mnist", "du", seeds=(0, 1, 2), no_pruning=True,
                     **{**RUN_DEFAULTS, "extrapolators": [gcn], "prune_rates": (0.5, 0.9)})
    jobs = expand_config(validate_config(cfg, "run"))
    assert len(jobs) == 3 + 3 + 2 + 3 + 3 * (2 * 3 + 1)        # subsets, GCN fits, 2 ground truths, random, final trainings
    assert {run_status(ROOT / "runs" / "fm_evidence", j.stage, j.config) for j in jobs} == {"done"}


def test_a_run_over_three_seeds_on_digits(tmp_path, capsys):
    # schedule "paper": the subset trainings take their own few steps, not a full-data epoch's (the default, which run()
    # on own data in test_own_data takes); what is checked here is the bookkeeping over seeds
    kw = dict(seed_size=0.2, extrapolators=[("knn", 10)], prune_rates=[0.5], score_epochs=11, final_epochs=1, selection="top",
              schedule="paper",
              runs_root=tmp_path)
    res = run("digits", "du", seeds=(0, 1, 2), **kw)
    t = res.trainings
    assert res.seeds == [0, 1, 2] and sorted(res.by_seed) == [0, 1, 2]
    assert t.groupby("method").seed.apply(sorted).to_dict() == {m: [0, 1, 2] for m in ("no pruning", "knn k=10", "ground truth", "random")}
    assert list(res.accuracy.index) == ["no pruning", "knn k=10", "ground truth", "random"]
    acc = t.set_index(["method", "prune_rate", "seed"]).test_acc.sort_index()
    assert res.accuracy.loc["knn k=10", "prune 50%"] == pytest.approx(acc["knn k=10", 0.5].mean())
    assert res.accuracy.loc["no pruning", "prune 0%"] == pytest.approx(acc["no pruning", 0.0].mean())
    gains = 100 * (acc["knn k=10", 0.5] - acc["random", 0.5])
    g = res.gains().set_index("method")
    assert g.loc["knn k=10", "gain"] == pytest.approx(gains.mean()) and g.loc["knn k=10", "gain_std"] == pytest.approx(gains.std())
    # the ledger's seconds of each final training, its chain counted: the one-off cost is all of it but the final training
    cfg = json.loads(next(p for p in (tmp_path / "prune_train").glob("*/config.json")
                          if json.loads(p.read_text())["config"]["source"]["stage"] == "extrapolate"
                          and json.loads(p.read_text())["config"]["seed"] == 1).read_text())["config"]
    led = ledger("prune_train", cfg, tmp_path)
    row = t[(t.method == "knn k=10") & (t.seed == 1)].iloc[0]
    assert row.total == led["total"] and row.final_training == led["final_training"] and led["subset_training"] > 0
    b = res.break_even().set_index("method")
    full_s = t[t.method == "no pruning"].final_training.mean()
    one_off = (t[t.method == "knn k=10"].total - t[t.method == "knn k=10"].final_training).mean()
    assert b.loc["knn k=10", "one_off_s"] == pytest.approx(one_off) and b.loc["random", "break_even_R"] == 1
    assert b.loc["knn k=10", "break_even_R"] == trainings_to_break_even(one_off, b.loc["knn k=10", "per_training_s"], full_s)
    res.show()
    out = capsys.readouterr().out
    assert "mean ± std over seeds 0, 1, 2" in out and f"Verdict: {VERDICT_RULE}." in out and "Does pruning pay?" in out
    # the correlations: each seed against its own ground truth, averaged
    assert {"pearson", "pearson_std"} <= set(res.correlations.columns)
    # no_pruning=False: the same folders, no reference row, no break-even
    before = {p.name for p in (tmp_path / "prune_train").iterdir()}
    res2 = run("digits", "du", seeds=(0, 1, 2), no_pruning=False, **kw)
    assert {p.name for p in (tmp_path / "prune_train").iterdir()} == before
    assert "no pruning" not in res2.accuracy.index and res2.break_even().empty
    assert res2.accuracy.loc["knn k=10", "prune 50%"] == res.accuracy.loc["knn k=10", "prune 50%"]


# ---------------------------------------------------------------- the command line: --seeds and --no-full-training (issue 25.2)
CLI_BAD_SEEDS = [(["--seeds"], "argument --seeds: expected at least one argument"),
                 (["--seeds", "0", "0"], "run: seeds [0, 0] repeat 0; give each seed once"),
                 (["--seeds", "0", "x"], "argument --seeds: expected a whole number >= 0, got 'x'"),
                 (["--seeds", "0", "1.5"], "argument --seeds: expected a whole number >= 0, got '1.5'"),
                 (["--seeds", "0", "-1"], "argument --seeds: must be >= 0, got -1"),
                 (["--seed", "0", "--seeds", "1", "2"], "argument --seeds: not allowed with argument --seed")]


def _main(argv) -> tuple[int, str]:
    import contextlib, io
    from scoreextra.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): code = main(argv)
    return code, err.getvalue()


@pytest.mark.parametrize("args, msg", CLI_BAD_SEEDS, ids=[" ".join(a) for a, _ in CLI_BAD_SEEDS])
def test_the_run_command_refuses_bad_seeds_in_one_line_before_any_training(tmp_path, monkeypatch, args, msg):
    import scoreextra.train
    def started(self): raise AssertionError("training started before the seeds were checked")
    monkeypatch.setattr(scoreextra.train.Trainer, "run", started)
    assert _main(["run", "--runs", str(tmp_path / "runs"), *args]) == (2, f"scoreextra run: error: {msg}\n")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, given", [([], {}), (["--seed", "3"], {"seed": 3}),
                                         (["--seeds", "0", "1", "2", "--no-full-training"], {"seeds": [0, 1, 2], "no_pruning": False})])
def test_the_run_command_passes_seeds_and_the_no_pruning_switch_on_and_nothing_it_was_not_given(tmp_path, monkeypatch, args, given):
    "Unset, --seed, --seeds and --no-full-training reach run() as given; run's own defaults (seed 0, no_pruning=True) are not repeated."
    import scoreextra.pipeline
    seen = {}
    def fake_run(*a, **kw): seen.update(kw); raise ValueError("stopped here")
    monkeypatch.setattr(scoreextra.pipeline, "run", fake_run)
    assert _main(["run", "--runs", str(tmp_path / "runs"), *args]) == (2, "scoreextra run: error: stopped here\n")
    assert {k: seen[k] for k in ("seed", "seeds", "no_pruning") if k in seen} == given
