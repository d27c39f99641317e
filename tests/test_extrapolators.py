"""Issue 26: the decoupled extrapolators and the seed-first merge, through the stages a sweep runs."""
import numpy as np
import pytest

from scoreextra.knn import SEED_SHRINK, merge
from scoreextra.stages import run_stage
from scoreextra.supervised import extrapolate_config, subset_config


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cfg = subset_config("digits", "du", 0.2, seed=0, epochs=11)
    return root, cfg, run_stage("score_subset", cfg, root)


def test_a_shrink_merge_records_its_factor_and_pulls_the_non_seeds_to_the_seed_mean(subset):
    root, sub, folder = subset
    cfg = extrapolate_config(sub, "knn", 10, merge="shrink")
    assert cfg["shrink"] == SEED_SHRINK                                  # recorded: a later default cannot change the folder
    f = run_stage("extrapolate", cfg, root)
    idx, seed_scores = folder.load("seed_idx.npy"), folder.load("seed_scores.npy")
    raw, scores = f.load("raw_scores.npy"), f.load("scores.npy")
    rest = np.setdiff1d(np.arange(len(raw)), idx)
    np.testing.assert_array_equal(scores[idx], seed_scores)
    mu = seed_scores.mean()
    np.testing.assert_allclose(scores[rest], mu + SEED_SHRINK * (raw[rest] - mu))
    assert np.ptp(scores[rest]) < 0.3 * np.ptp(raw[rest])              # compressed: the seeds lead the top of the ranking
    half = run_stage("extrapolate", extrapolate_config(sub, "knn", 10, merge="shrink", shrink=0.5), root)
    assert half.path != f.path                                           # another factor is another run folder
    np.testing.assert_allclose(half.load("scores.npy")[rest], mu + 0.5 * (raw[rest] - mu))
    assert "shrink" not in extrapolate_config(sub, "knn", 10)           # raw merges keep their config (and hash)


def test_top_of_a_shrunk_merge_holds_more_seeds():
    r = np.random.default_rng(0)
    n, idx = 1000, np.arange(0, 1000, 5)                                 # 20% seeds
    truth = r.normal(size=n)
    smooth = 0.5 * truth + 0.1 * r.normal(size=n)                        # an extrapolation: narrower than the measured scores
    share = lambda s: np.isin(np.argsort(-s)[:100], idx).mean()
    raw, shrunk = merge(idx, truth[idx], smooth), merge(idx, truth[idx], smooth, "shrink", shrink=0.25)
    assert share(shrunk) > share(raw) + 0.2


@pytest.mark.parametrize("name", ["sign", "mlp"])
def test_sign_and_mlp_run_as_a_stage(subset, name):
    root, sub, folder = subset
    f = run_stage("extrapolate", extrapolate_config(sub, name, 10, seed=1), root)
    idx, seed_scores = folder.load("seed_idx.npy"), folder.load("seed_scores.npy")
    s = f.load("scores.npy")
    assert np.isfinite(s).all() and len(s) == 1437                      # the digits train split
    np.testing.assert_array_equal(s[idx], seed_scores)
    assert np.std(np.delete(s, idx)) > 0                                 # a prediction, not a constant


def test_shrink_zero_says_that_the_non_seeds_tie():
    idx = np.arange(0, 10, 2)
    with pytest.warns(UserWarning, match="dataset order, a random fill only if the data is shuffled"):
        out = merge(idx, np.arange(5.0), np.linspace(0, 1, 10), "shrink", shrink=0.0)
    assert np.all(np.delete(out, idx) == 2.0)                           # every non-seed at the seed mean
