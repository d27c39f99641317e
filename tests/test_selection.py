"""Issue 30, safe by default: the coverage guard, the strategy `auto` chooses and the warnings that name the danger,
on constructed data where the paper's top-k starves classes (seconds per test on one thread)."""
import json, warnings
from pathlib import Path

import numpy as np
import pytest

import scoreextra.supervised as sup
from scoreextra.prune import (AUTO_TOP_FROM, MIN_CLASS_SHARE, SelectionWarning, auto_strategy, choose_by_proxy, class_floors,
                              guard_coverage, select, warn_selection)
from scoreextra.pipeline import run


def starving(n_per=200, classes=("cat", "dog", "eel", "fox")):
    "Labels of `classes` (strings) and scores whose top 10% all fall in the first class."
    y = np.repeat(np.array(classes), n_per)
    s = np.where(y == classes[0], 5.0, 0.0) + np.random.default_rng(0).random(len(y))
    return s, y


def test_guard_lifts_every_class_to_its_floor_and_keeps_the_size():
    s, y = starving()
    top = select(s, 0.1, labels=y, min_class_share=0, warn=False)
    assert set(y[top]) == {"cat"}                                    # the paper's exact top-k: three classes gone
    kept = select(s, 0.1, labels=y, warn=False)                       # the default with labels: guarded
    counts = {c: int((y[kept] == c).sum()) for c in np.unique(y)}
    floor = int(MIN_CLASS_SHARE * 80 * 200 / 800)                      # 0.1 of what random pruning keeps (20)
    assert len(kept) == 80 and all(counts[c] >= floor for c in ("dog", "eel", "fox")) and counts["cat"] == 80 - 3 * floor
    for c in ("dog", "eel", "fox"):                                   # each class's best-scored samples came in
        i = np.flatnonzero(y == c)
        np.testing.assert_array_equal(np.sort(kept[y[kept] == c]), np.sort(i[np.argsort(-s[i])[:floor]]))
    cats = kept[y[kept] == "cat"]                                    # the lowest-scored cats went out
    assert s[cats].min() >= np.sort(s[top])[3 * floor]


def test_guard_never_asks_more_than_a_class_has_and_is_idempotent():
    y = np.r_[np.zeros(990, int), np.ones(10, int)]
    s = np.r_[np.linspace(1, 2, 990), np.zeros(10)]
    assert class_floors(np.bincount(y), 500, 1.0).tolist() == [495, 5]
    g = guard_coverage(np.argsort(-s)[:500], s, y, 1.0)
    assert len(g) == 500 and (y[g] == 1).sum() == 5
    np.testing.assert_array_equal(guard_coverage(g, s, y, 1.0), g)
    with pytest.raises(ValueError, match="min_share must be in"): guard_coverage(g, s, y, 1.5)


def test_top_k_on_a_small_kept_set_warns_naming_the_starved_classes():
    s, y = starving()
    with pytest.warns(SelectionWarning) as rec:
        select(s, 0.1, labels=y, min_class_share=0)
    msgs = [str(w.message) for w in rec]
    assert any("starves 3 class(es): 'dog' 0 (random keeps ~20)" in m for m in msgs)
    assert any(f"top-k keeps 20 samples per class; below {AUTO_TOP_FROM}" in m for m in msgs)
    with warnings.catch_warnings():                                  # guarded and CCS: nothing to warn about
        warnings.simplefilter("error")
        select(s, 0.1, labels=y, strategy="ccs", class_balanced=True)
        assert warn_selection(select(s, 0.5, labels=y, strategy="random", warn=False), y, "random") == []


def test_auto_rule_switches_at_the_stated_count():
    spec, why = auto_strategy(AUTO_TOP_FROM * 10, 10)
    assert spec == {"strategy": "top"} and f">= {AUTO_TOP_FROM}" in why
    spec, why = auto_strategy(AUTO_TOP_FROM * 10 - 1, 10)
    assert spec == {"strategy": "random"} and f"< {AUTO_TOP_FROM}" in why
    s, y = starving()
    kept = select(s, 0.1, labels=y, strategy="auto", warn=False)            # 20 per class: random pruning itself
    np.testing.assert_array_equal(kept, select(s, 0.1, labels=y, strategy="random", warn=False))
    big = np.repeat(np.arange(2), 2000)
    top = select(np.arange(4000.0), 0.5, labels=big, strategy="auto", warn=False)   # 1,000 per class: guarded top-k
    assert (big[top] == 0).sum() == int(MIN_CLASS_SHARE * 2000 * 2000 / 4000)


def blobs(n=900, seed=0):
    "Three overlapping Gaussian classes in 8-D: a model needs samples of every class."
    g = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    x = g.normal(0, 1.0, (n, 8)) + 1.2 * np.eye(3, 8)[y]
    return x.astype(np.float32), y


FAST = dict(seed_size=0.3, extrapolators=["knn"], ground_truth=False, baselines=["random"], score_epochs=12,
            final_epochs=4, batch_size=64, no_pruning=False)   # no all-data row: these tests look at the pruned sets


def kept_and_choice(root: Path):
    out = {}
    for p in sorted((root / "prune_train").glob("*/config.json")):
        cfg = json.loads(p.read_text())["config"]
        sel = p.parent / "selection.json"
        out[cfg["source"]["stage"], cfg.get("selection", {}).get("strategy", "top")] = (
            np.load(p.parent / "kept_idx.npy"), json.loads(sel.read_text()) if sel.exists() else None)
    return out


def test_run_auto_checks_candidates_on_a_carved_split_and_says_why(tmp_path):
    x, y = blobs()
    res = run((x, y), "du", prune_rates=[0.9], runs_root=tmp_path, **FAST)           # selection="auto" by default
    why = res.selections["knn k=10"]["prune 90%"]
    assert set(why["val_acc"]) == {"top", "ccs", "random"} and why["n_val"] == round(0.2 * 720)
    assert why["choice"] == choose_by_proxy({k: why["val_acc"][k] for k in sup.AUTO_CANDIDATES}, why["val_se"])   # saved sorted
    assert "proxy trainings" in why["reason"] and set(why["val_se"]) == {"top", "ccs"}
    assert res.selection_table().loc["knn k=10", "prune 90%"] == why["choice"]
    kept, saved = kept_and_choice(tmp_path)["extrapolate", "auto"]
    assert saved == why
    ds = sup.stage_dataset(json.loads(next((tmp_path / "prune_train").glob("*/config.json")).read_text())["config"])
    spec = dict(sup.AUTO_CANDIDATES[why["choice"]])
    np.testing.assert_array_equal(kept, select(res.scores["knn k=10"], 0.1, labels=ds.y, seed=0, warn=False,
                                               min_class_share=spec.pop("min_class_share", 0.0), **spec))
    assert res.ledger.loc["knn k=10", "selection"] > 2 * res.ledger.loc["random", "selection"]   # the proxies are charged


def test_run_top_is_the_papers_exact_top_k_and_warns(tmp_path):
    x, y = blobs()
    with pytest.warns(SelectionWarning, match="top-k keeps"):
        res = run((x, y), "du", prune_rates=[0.9], runs_root=tmp_path, selection="top", **FAST)
    kept, saved = kept_and_choice(tmp_path)["extrapolate", "top"]
    assert saved is None and not res.selections
    ds = sup.stage_dataset(json.loads(next((tmp_path / "prune_train").glob("*/config.json")).read_text())["config"])
    np.testing.assert_array_equal(kept, np.sort(np.argsort(-res.scores["knn k=10"], kind="stable")[:len(kept)]))
    assert len(kept) == round(0.1 * len(ds))


def test_auto_with_many_kept_per_class_is_guarded_top_without_proxies(tmp_path, monkeypatch):
    monkeypatch.setattr(sup, "PROXY_BELOW", 10)
    x, y = blobs()
    res = run((x, y), "du", prune_rates=[0.5], runs_root=tmp_path, **FAST)
    why = res.selections["knn k=10"]["prune 50%"]
    assert why["choice"] == "top" and "val_acc" not in why and "without proxy trainings" in why["reason"]


def test_auto_that_finds_random_best_warns_and_keeps_the_random_baselines_set(tmp_path, monkeypatch):
    monkeypatch.setattr(sup, "proxy_selection", lambda *a, **k: dict(choice="random", n_val=1, reason="stand-in",
                                                                     val_acc={"top": 0.5, "ccs": 0.6, "random": 0.7}))
    x, y = blobs()
    with pytest.warns(SelectionWarning, match="no score-based selection beat random pruning"):
        res = run((x, y), "du", prune_rates=[0.9], runs_root=tmp_path, **FAST)
    runs = kept_and_choice(tmp_path)
    kept, saved = runs["extrapolate", "auto"]
    assert saved["choice"] == "random"
    np.testing.assert_array_equal(kept, runs["baseline", "top"][0])           # random pruning itself: the same draw
    assert res.accuracy.loc["knn k=10", "prune 90%"] == res.accuracy.loc["random", "prune 90%"]


def test_every_committed_auto_choice_follows_the_current_rule():
    "A changed `choose_by_proxy` must not leave committed run folders that chose by the old rule (their hash has no rule)."
    root = Path(__file__).resolve().parents[1] / "runs"
    checked, stale = 0, []
    for sel in sorted(root.glob("*/prune_train/*/selection.json")):
        why = json.loads(sel.read_text())
        if "val_acc" not in why: continue
        checked += 1
        if why["choice"] != choose_by_proxy({k: why["val_acc"][k] for k in sup.AUTO_CANDIDATES}, why["val_se"]):
            stale.append(f"{sel.parent.relative_to(root)}: chose {why['choice']}")
    assert checked or not list(root.glob("*/prune_train")), "no committed auto run with proxies found"
    assert not stale, f"{len(stale)} run folders decided by another rule (delete and rerun them): {stale}"


def test_the_proxy_check_runs_on_data_with_a_class_of_one_sample():
    "A long-tailed label set (a class with one sample) used to fail the carved split's stratification before any proxy trained."
    from scoreextra.data import register_dataset, load_dataset
    from scoreextra.models import get_model
    from scoreextra.prune import carve_validation, proxy_selection
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(301, 8)).astype(np.float32), np.r_[np.repeat([0, 1, 2], 100), [3]]
    ds = load_dataset(register_dataset((x, y), (x[:20], y[:20]), name="long_tail"))
    assert ds.y.tolist().count(3) == 1
    val = carve_validation(ds.y, 0.2)
    assert 3 not in ds.y[val] and np.bincount(ds.y[val], minlength=4).tolist() == [20, 20, 20, 0]
    trained = []
    def train(kept):
        trained.append(kept)
        return get_model("mlp", ds.num_classes, ds.in_shape, seed=0)
    res = proxy_selection(ds, rng.random(len(ds)), 0.5, train)
    assert res["n_val"] == 60 and res["choice"] in ("top", "ccs", "random") and len(trained) == 3
    assert all(not set(k) & set(val) for k in trained)           # no proxy trains on its validation samples
