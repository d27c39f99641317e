"""Issue 26: the decoupled extrapolators and the seed-first merge, through the stages a sweep runs."""
import subprocess, sys

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


# Issue 29 (item 4): one extrapolator interface, no signature read to pass k/seed/device or to check options.
import inspect                                               # noqa: E402 -- the drift check below reads signatures, the code never does

from scoreextra.knn import EXTRAPOLATORS, SEARCH_OPTIONS, Extrapolator  # noqa: E402
from scoreextra.faiss_search import KNNIndex  # noqa: E402
from scoreextra.supervised import make_extrapolator  # noqa: E402

NAMES = sorted(EXTRAPOLATORS)


def test_the_registry_holds_the_ten_extrapolators():
    assert NAMES == ["cs", "gnn", "knn", "knn_ensemble", "knn_label", "knn_stack", "mlp", "propagate", "sgc", "sign"]


@pytest.mark.parametrize("name", NAMES)
def test_every_extrapolator_is_an_extrapolator_built_from_k_seed_and_device(name):
    cls = EXTRAPOLATORS.get(name)
    assert issubclass(cls, Extrapolator) and isinstance(cls.needs_labels, bool)
    ext = cls(7, seed=3, device="cpu")
    assert (ext.seed, ext.device, ext.search_info) == (3, "cpu", {})
    assert ext.k == (10 if name == "knn_ensemble" else 7)      # the ensemble averages its ks (10, 20, 50, 100), not k
    built = make_extrapolator(name, 7, 4, {}, "cpu")
    assert type(built) is cls and (built.seed, built.device) == (4, "cpu")
    assert make_extrapolator(name, 7, 4, {"seed": 5}).seed == 5   # a config's params may set the seed, as before


def _keywords(cls) -> set:
    "The keyword options `cls(...)` takes, read from the constructors along its MRO while they pass **kw on."
    takes = set()
    for c in cls.__mro__:
        if "__init__" not in vars(c) or c is Extrapolator: continue
        ps = inspect.signature(vars(c)["__init__"]).parameters.values()
        takes |= {p.name for p in ps if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in ps): break
        if c.__name__ == "KNNExtrapolator": takes |= set(SEARCH_OPTIONS)   # its **search_kw
    return takes


@pytest.mark.parametrize("name", NAMES)
def test_declared_options_are_what_the_constructor_takes(name):
    cls = EXTRAPOLATORS.get(name)
    assert set(cls.options) == _keywords(cls) - {"k", "seed", "device"}
    assert len(set(cls.options)) == len(cls.options)


def test_the_search_options_are_knnindexs_and_tunes():
    index = set(inspect.signature(KNNIndex).parameters) - {"base", "method", "n_queries", "threads"}
    assert set(SEARCH_OPTIONS) == (index - {"seed"}) | {"search_seed", "recall_sample"}


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_option_is_refused_by_name_with_the_ones_taken(name):
    cls = EXTRAPOLATORS.get(name)
    with pytest.raises(ValueError, match=f"extrapolator '{name}' has no option 'nosuch'; it takes \\[.*'device', .*'k', .*'seed'"):
        make_extrapolator(name, 7, 0, {"nosuch": 1, cls.options[0]: None})
    with pytest.raises((TypeError, ValueError), match="'nosuch'"): cls(7, nosuch=1)   # built directly: Python's or the kNN's refusal
    assert cls.check_options({o: None for o in cls.options}, name) == {o: None for o in cls.options}


def test_the_knn_search_seed_is_its_own_option_not_the_runs_seed():
    assert "seed" not in make_extrapolator("knn", 10, 3, {}).search_kw              # a run's seed leaves the search as it was
    assert make_extrapolator("knn", 10, 3, {"search_seed": 2}).search_kw["seed"] == 2


@pytest.mark.parametrize("name, n, m, msg", [
    ("knn", 100, 5, "k=7 is larger than the 5 seed samples"),
    ("knn_stack", 100, 7, "seed samples minus one"),
    ("gnn", 7, 5, "k=7 must be below the 7 samples of the graph"),
    ("sgc", 7, 5, "k=7 must be below the 7 samples of the graph")])
def test_check_k_is_each_extrapolators_rule(name, n, m, msg):
    with pytest.raises(ValueError, match=msg): make_extrapolator(name, 7, 0, {}).check_k(n, m)
    make_extrapolator(name, 7, 0, {}).check_k(100, 50)
    make_extrapolator("knn_ensemble", 7, 0, {}).check_k(100, 2)                     # clips its ks to the seeds


def test_the_registry_loads_the_built_in_extrapolators_on_its_first_lookup():
    "Issue 29: no module imports gnn, propagation or sign to register them; the registry does, once, when asked."
    code = ("import sys; from scoreextra.knn import EXTRAPOLATORS, BUILTIN_EXTRAPOLATORS as B\n"
            "assert not {f'scoreextra.{m}' for m in B.values()} & set(sys.modules), 'loaded on import'\n"
            "assert EXTRAPOLATORS.get('sgc').__module__ == 'scoreextra.propagation'\n"
            "assert all(EXTRAPOLATORS[n].__module__ == f'scoreextra.{m}' for n, m in B.items())\n"
            "print(sorted(EXTRAPOLATORS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted(EXTRAPOLATORS)) and len(EXTRAPOLATORS) == 10
