"End-to-end and bad-input checks for seed sampling, kNN search/extrapolation, merge and correlation metrics."
import numpy as np
import pytest
from scipy import stats

from scoreextra.faiss_search import KNNIndex, knn_search, recall_at_k
from scoreextra.knn import EXTRAPOLATORS, KNNExtrapolator, KNNLabelExtrapolator, KNNStackExtrapolator, knn_extrapolate, merge
from scoreextra.metrics import correlation_table, kendall, pearson, spearman
from scoreextra.sampling import SAMPLERS, sample_subset, zcore_scores


def brute_knn(base, queries, k):
    "Reference: all pairwise Euclidean distances in float64, rows sorted by (distance, index)."
    d = np.sqrt(((queries[:, None, :].astype(np.float64) - base[None].astype(np.float64)) ** 2).sum(-1))
    order = np.lexsort((np.broadcast_to(np.arange(len(base)), d.shape), d))[:, :k]
    return np.take_along_axis(d, order, 1), order


def clustered(n, d=16, clusters=50, seed=0):
    g = np.random.default_rng(seed)
    centres = g.normal(0, 5, (clusters, d))
    return (centres[g.integers(0, clusters, n)] + g.normal(0, 1, (n, d))).astype(np.float32)


# ---------------------------------------------------------------- knn_extrapolate

def test_knn_extrapolate_hand_computed():
    # 1-D embeddings, seeds at x = 0, 4, 10 with scores 1, 2, 4; k = 2
    x = np.array([[0.], [1.], [2.], [4.], [7.5], [10.]], np.float32)
    seeds, scores = np.array([0, 3, 5]), np.array([1., 2., 4.])
    w = lambda d: np.exp(-d)
    exp1 = (w(1) * 1 + w(3) * 2) / (w(1) + w(3))          # x=1: seeds at distance 1 (score 1) and 3 (score 2)
    exp2 = (1 + 2) / 2                                     # x=2: both nearest seeds at distance 2
    exp4 = (w(3.5) * 2 + w(2.5) * 4) / (w(3.5) + w(2.5))  # x=7.5: distance 3.5 to x=4, 2.5 to x=10
    out = knn_extrapolate(x, seeds, scores, k=2)
    np.testing.assert_allclose(out, [1., exp1, exp2, 2., exp4, 4.], rtol=1e-12)
    assert out.dtype == np.float64
    # seed order does not matter; seeds keep their scores exactly
    perm = np.array([2, 0, 1])
    np.testing.assert_array_equal(knn_extrapolate(x, seeds[perm], scores[perm], k=2), out)
    np.testing.assert_allclose(knn_extrapolate(x, seeds, scores, k=2, weighted=False)[[1, 4]], [1.5, 3.0])


def test_knn_extrapolate_matches_brute_force_and_streams():
    g = np.random.default_rng(1)
    e = g.normal(size=(400, 6)).astype(np.float32)
    seeds = np.sort(g.choice(400, 60, replace=False))
    s = g.normal(size=60)
    rest = np.setdiff1d(np.arange(400), seeds)
    d, i = brute_knn(e[seeds], e[rest], 7)
    w = np.exp(-d)
    expected = np.empty(400); expected[seeds] = s; expected[rest] = (w * s[i]).sum(1) / w.sum(1)
    np.testing.assert_allclose(knn_extrapolate(e, seeds, s, k=7, chunk=33), expected, rtol=1e-6, atol=1e-7)
    # a memmap and a torch tensor give the same result as the in-memory array
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(knn_extrapolate(torch.from_numpy(e), seeds, s, k=7), expected, rtol=1e-6, atol=1e-7)


def test_knn_extrapolate_memmap(tmp_path):
    g = np.random.default_rng(2)
    e = g.normal(size=(300, 4)).astype(np.float32)
    np.save(tmp_path / "e.npy", e)
    mm = np.load(tmp_path / "e.npy", mmap_mode="r")
    seeds, s = np.arange(0, 300, 5), g.normal(size=60)
    np.testing.assert_array_equal(knn_extrapolate(mm, seeds, s, k=3, chunk=50), knn_extrapolate(e, seeds, s, k=3))


def test_knn_extrapolate_far_points_no_underflow():
    # distances of thousands: exp(-d) underflows to 0/0 in the paper's form; the shifted form does not
    x = np.array([[0.], [4000.], [9000.], [20000.]], np.float32)
    out = knn_extrapolate(x, [0, 2], [1., 3.], k=2)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[[1, 3]], [1., 3.])      # the nearer seed takes all the weight


@pytest.mark.parametrize("bad, match", [
    (dict(seed_scores=[1., 2.]), "length 3"),
    (dict(seed_scores=[1., np.nan, 2.]), "NaN"),
    (dict(seed_idx=[0, 0, 1]), "duplicate"),
    (dict(seed_idx=[0, 1, 10]), r"\[0, 10\)"),
    (dict(seed_idx=[0, -1, 2]), r"\[0, 10\)"),
    (dict(k=4), "larger than the number of seed samples"),
    (dict(k=0), "k must be >= 1"),
    (dict(seed_idx=[], seed_scores=[]), "empty"),
])
def test_knn_extrapolate_bad_inputs(bad, match):
    args = dict(embeddings=np.random.default_rng(0).normal(size=(10, 3)), seed_idx=[0, 4, 7], seed_scores=[1., 2., 3.], k=2) | bad
    with pytest.raises((ValueError, IndexError, TypeError), match=match):
        knn_extrapolate(**args)


def test_knn_extrapolate_nan_embeddings():
    e = np.random.default_rng(0).normal(size=(10, 3))
    e[6, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"): knn_extrapolate(e, [0, 4, 7], [1., 2., 3.], k=2)   # in a query
    with pytest.raises(ValueError, match="NaN"): knn_extrapolate(e, [0, 6, 7], [1., 2., 3.], k=2)   # in a seed


# ---------------------------------------------------------------- search

def test_knn_search_exact_equals_brute_force():
    g = np.random.default_rng(3)
    base, q = g.normal(size=(500, 12)).astype(np.float32), g.normal(size=(120, 12)).astype(np.float32)
    d, i = knn_search(base, q, 10, chunk=50)
    bd, bi = brute_knn(base, q, 10)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-5)
    assert d.dtype == np.float32 and i.dtype == np.int64 and d.shape == i.shape == (120, 10)


def test_knn_search_ties_smaller_index_first():
    # integer grid with many duplicate points: lots of exactly equal distances
    g = np.random.default_rng(4)
    base = g.integers(0, 4, (200, 2)).astype(np.float32)
    q = g.integers(0, 4, (60, 2)).astype(np.float32)
    d, i = knn_search(base, q, 12)
    bd, bi = brute_knn(base, q, 12)
    np.testing.assert_array_equal(i, bi)
    # within each run of equal distances the indices increase
    same = np.diff(d, axis=1) == 0
    assert (np.diff(i, axis=1)[same] > 0).all() and same.any()


def test_exclude_self():
    g = np.random.default_rng(5)
    x = g.normal(size=(100, 5)).astype(np.float32)
    d, i = knn_search(x, x, 4, exclude_self=True)
    assert not (i == np.arange(100)[:, None]).any()
    bd, bi = brute_knn(x, x, 5)
    np.testing.assert_array_equal(i, bi[:, 1:])     # self is the unique nearest at distance 0


@pytest.mark.parametrize("method, kw", [("ivf", {}), ("hnsw", {})])
def test_approximate_recall(method, kw):
    base, q = clustered(5000), clustered(500, seed=1)
    _, exact = knn_search(base, q, 10)
    d, approx = knn_search(base, q, 10, method, **kw)
    assert recall_at_k(approx, exact) >= 0.9
    assert (np.diff(d, axis=1) >= 0).all()
    # distances are the true distances of the returned pairs, whatever the index
    true = np.linalg.norm(base[approx].astype(np.float64) - q[:, None, :], axis=-1)
    np.testing.assert_allclose(d, true, rtol=1e-5)


def test_recall_at_k():
    exact = np.array([[0, 1, 2], [3, 4, 5]])
    assert recall_at_k(exact, exact) == 1.0
    assert recall_at_k(np.array([[2, 0, 9], [9, 8, 7]]), exact) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="same"): recall_at_k(exact[:, :2], exact)


def test_knn_index_bad_inputs():
    x = np.zeros((10, 3), np.float32)
    with pytest.raises(ValueError, match="method"): KNNIndex(x, "lsh")
    with pytest.raises(ValueError, match="shape"): KNNIndex(x).search(np.zeros((2, 4), np.float32), 1)
    with pytest.raises(ValueError, match="larger than"): KNNIndex(x).search(x, 11)
    with pytest.raises(ValueError, match="exclude_self"): knn_search(x, x[:3], 1, exclude_self=True)


# ---------------------------------------------------------------- method="auto", threads, memory

def test_auto_is_exact_below_the_work_threshold():
    base = clustered(400, d=8)
    work = 50 * 400 * 8
    assert KNNIndex(base, "auto", n_queries=50, exact_below=work + 1).method == "exact"
    assert KNNIndex(base, "auto", n_queries=50, exact_below=work).method == "ivf"
    e = clustered(3000)
    seeds, s = np.arange(0, 3000, 7), np.random.default_rng(0).normal(size=len(range(0, 3000, 7)))
    out, info = knn_extrapolate(e, seeds, s, return_info=True)           # the default is auto
    np.testing.assert_array_equal(out, knn_extrapolate(e, seeds, s, method="exact"))
    assert info["method"] == "exact" and info["requested"] == "auto" and info["recall"] == 1.0
    assert KNNExtrapolator().method == "auto"


def test_auto_approximate_on_a_memmap_is_deterministic(tmp_path):
    import json
    e = clustered(6000, d=32, clusters=60)
    np.save(tmp_path / "e.npy", e)
    mm = np.load(tmp_path / "e.npy", mmap_mode="r")
    seeds = np.sort(np.random.default_rng(1).choice(6000, 600, replace=False))
    s = np.random.default_rng(2).normal(size=600)
    a, info = knn_extrapolate(mm, seeds, s, exact_below=0, return_info=True, recall_sample=300)
    b = knn_extrapolate(mm, seeds, s, exact_below=0, recall_sample=300)
    np.testing.assert_array_equal(a, b)
    assert info["method"] == "ivf" and info["recall"] >= 0.95 and info["recall_sample"] == 300
    assert info["params"]["nprobe"] == info["widen_trace"][-1]["nprobe"]
    json.dumps(info)                                                       # ready for meta.json
    np.testing.assert_array_equal(a[seeds], s)
    exact = knn_extrapolate(e, seeds, s, method="exact")
    assert np.corrcoef(a, exact)[0, 1] > 0.99


def test_tune_unreachable_target_warns_and_keeps_widest():
    base, q = clustered(2000), clustered(300, seed=1)
    ix = KNNIndex(base, "ivf", nprobe=1)
    with pytest.warns(UserWarning, match="target"): r = ix.tune(q, 10, target=1.5, max_widen=3)
    assert ix.nprobe == 8 and len(ix.info["widen_trace"]) == 4 and r == ix.info["recall"]
    with pytest.raises(RuntimeError, match="call tune"): KNNIndex(base, "auto", exact_below=0).search(q, 3)


def test_ivf_cells_smaller_than_k_are_probed_wider():
    # 40 cells of ~10 points, k = 10 needs 18 candidates: nprobe=1 alone would return -1 entries
    base, q = clustered(400, d=8, clusters=40), clustered(100, d=8, clusters=40, seed=1)
    d, i = knn_search(base, q, 10, "ivf", nlist=40, nprobe=1)
    assert (i >= 0).all() and (np.diff(d, axis=1) >= 0).all()
    true = np.linalg.norm(base[i].astype(np.float64) - q[:, None, :], axis=-1)
    np.testing.assert_allclose(d, true, rtol=1e-5)


def test_threads_are_set_for_the_call_and_restored():
    import faiss
    before = faiss.omp_get_max_threads()
    e = clustered(1000)
    _, info = knn_extrapolate(e, np.arange(0, 1000, 5), np.ones(200), threads=before + 1, return_info=True)
    assert info["threads"] == before + 1 and faiss.omp_get_max_threads() == before
    bad = e[:20].copy(); bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"): knn_search(e, bad, 2, threads=before + 2)
    assert faiss.omp_get_max_threads() == before                           # also after an error
    with pytest.raises(ValueError, match="threads must be"): knn_search(e, e[:5], 2, threads=0)


def test_stack_search_info_with_leave_one_out():
    x, y = clustered(2000), np.arange(2000) % 3
    seeds = np.arange(0, 2000, 4)
    ex = KNNStackExtrapolator(k=5, exact_below=0).fit(x, y, seeds, x[seeds, 0].astype(np.float64))
    ex.predict()
    assert set(ex.search_info) == {"seeds", "label 0", "label 1", "label 2"}
    assert all(v["method"] == "ivf" and v["recall"] >= 0.95 for v in ex.search_info.values())


# ---------------------------------------------------------------- extrapolators

def digits_case():
    "sklearn digits (1,797 × 64 pixels) with a score that depends on position and label: distance to the class mean."
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    mu = np.stack([x[y == c].mean(0) for c in range(10)])
    truth = np.linalg.norm(x - mu[y], axis=1)
    seeds = sample_subset(len(x), 0.2, seed=0)
    return x, y, truth, seeds, np.setdiff1d(np.arange(len(x)), seeds)


def test_extrapolators_on_digits():
    x, y, truth, seeds, rest = digits_case()
    preds = {}
    for name in EXTRAPOLATORS:
        if not name.startswith("knn"): continue
        p = EXTRAPOLATORS.get(name)().fit(x, y, seeds, truth[seeds]).predict()
        np.testing.assert_array_equal(p[seeds], truth[seeds])
        preds[name] = p
    shuffled = knn_extrapolate(x, seeds, np.random.default_rng(0).permutation(truth[seeds]))
    tab = correlation_table(truth, preds | {"shuffled": shuffled}, mask=rest)
    assert (tab.loc[list(preds), "pearson"] > 0.6).all(), tab
    assert abs(tab.loc["shuffled", "pearson"]) < 0.2, tab
    assert tab.loc["knn_stack", "pearson"] > tab.loc["knn", "pearson"], tab


def test_extrapolator_interface_and_validation():
    x, y, truth, seeds, rest = digits_case()
    ex = KNNExtrapolator(k=5)
    assert ex.fit(x, y, seeds, truth[seeds]) is ex
    np.testing.assert_array_equal(ex.predict(), knn_extrapolate(x, seeds, truth[seeds], k=5))
    with pytest.raises(ValueError, match="labels must have length"): KNNExtrapolator().fit(x, y[:-1], seeds, truth[seeds])
    with pytest.raises(ValueError, match="seed_scores must have length"): KNNExtrapolator().fit(x, y, seeds, truth)
    with pytest.raises(ValueError, match="NaN"): KNNExtrapolator().fit(x, y, seeds, np.r_[np.nan, truth[seeds[1:]]])
    with pytest.raises(ValueError, match="larger than"): KNNExtrapolator(k=len(seeds) + 1).fit(x, y, seeds, truth[seeds])
    with pytest.raises(ValueError, match="needs labels"): KNNLabelExtrapolator().fit(x, None, seeds, truth[seeds])
    with pytest.raises(RuntimeError, match="before predict"): KNNExtrapolator().predict()
    with pytest.raises(KeyError, match="expected one of"): EXTRAPOLATORS.get("knnn")


def test_knn_label_uses_same_label_seeds_only():
    # two classes interleaved on a line: the nearest seed is always of the other class
    x = np.arange(8, dtype=np.float32)[:, None]
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    seeds, s = np.array([0, 1, 6, 7]), np.array([10., 20., 30., 40.])
    p = KNNLabelExtrapolator(k=1).fit(x, y, seeds, s).predict()
    np.testing.assert_array_equal(p[[2, 3, 4, 5]], [10., 20., 30., 40.])   # x=2 (label 0): nearest label-0 seed is x=0, ...
    assert KNNExtrapolator(k=1).fit(x, y, seeds, s).predict()[2] == 20.     # plain kNN takes x=1 (label 1)


def test_knn_stack_seed_features_are_leave_one_out():
    g = np.random.default_rng(6)
    x = g.normal(size=(200, 3)).astype(np.float32)
    y = g.integers(0, 3, 200)
    seeds = np.sort(g.choice(200, 50, replace=False)); s = g.normal(size=50)
    ex = KNNStackExtrapolator(k=4).fit(x, y, seeds, s)
    f = ex.features(seeds, True)
    for j in (0, 17, 49):
        others = np.delete(np.arange(50), j)
        d, i = brute_knn(x[seeds[others]], x[seeds[[j]]], 4)
        w = np.exp(-(d - d.min()))
        assert f[j, 0] == pytest.approx(((w * s[others][i]).sum() / w.sum()))
        assert f[j, 3] == pytest.approx(d.mean(), rel=1e-5)
        assert f[j, 2] == pytest.approx((y[seeds[others][i]] == y[seeds[j]]).mean())
    assert ex.predict().shape == (200,) and np.isfinite(ex.predict()).all()


# ---------------------------------------------------------------- merge

def test_merge_raw_and_quantile():
    g = np.random.default_rng(7)
    n, seeds = 100, np.sort(g.choice(100, 30, replace=False))
    s = g.normal(size=30)
    ext = g.normal(0, 0.1, 100)                       # narrower than the seed scores, as extrapolation is
    rest = np.setdiff1d(np.arange(n), seeds)
    raw = merge(seeds, s, ext)
    np.testing.assert_array_equal(raw[seeds], s); np.testing.assert_array_equal(raw[rest], ext[rest])
    np.testing.assert_array_equal(merge(seeds, s, ext[rest], n=n), raw)
    q = merge(seeds, s, ext, "quantile")
    np.testing.assert_array_equal(q[seeds], s)
    np.testing.assert_array_equal(stats.rankdata(q[rest]), stats.rankdata(ext[rest]))
    assert s.min() <= q[rest].min() and q[rest].max() <= s.max()
    assert q[rest].std() > 3 * ext[rest].std()           # spread out onto the seed-score scale
    with pytest.raises(ValueError, match="how"): merge(seeds, s, ext, "rank")
    with pytest.raises(ValueError, match="length"): merge(seeds, s, ext[:50], n=n)


# ---------------------------------------------------------------- sampling

def test_sample_subset_random():
    a = sample_subset(1000, 0.1, seed=5)
    assert len(a) == 100 and a.dtype == np.int64 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, sample_subset(1000, 0.1, seed=5))
    assert not np.array_equal(a, sample_subset(1000, 0.1, seed=6))
    assert len(sample_subset(1000, 250)) == 250 and len(sample_subset(1000, 1000)) == 1000


@pytest.mark.parametrize("size, match", [(1.0, "ambiguous"), (0, "int count >= 1, got 0"), (11, r"\[1, 10\]"),
                                         (True, "got True"), (-0.5, r"\(0, 1\)"), (0.01, "rounds to 0"), ("half", "fraction")])
def test_sample_subset_bad_size(size, match):
    with pytest.raises((ValueError, TypeError), match=match): sample_subset(10, size)


def test_stratified_counts_per_class():
    g = np.random.default_rng(8)
    y = g.choice(7, 1003, p=[.3, .2, .15, .15, .1, .07, .03])
    idx = sample_subset(len(y), 0.2, "stratified", labels=y, seed=1)
    m = round(0.2 * len(y))
    assert len(idx) == m and len(np.unique(idx)) == m and (np.diff(idx) > 0).all()
    counts, sizes = np.bincount(y[idx], minlength=7), np.bincount(y, minlength=7)
    share = sizes * m / len(y)
    assert (np.abs(counts - share) < 1).all()                         # each class within one of its share
    np.testing.assert_array_equal(idx, sample_subset(len(y), 0.2, "stratified", labels=y, seed=1))
    with pytest.raises(ValueError, match="needs labels"): sample_subset(100, 0.2, "stratified")
    with pytest.raises(ValueError, match="length 100"): sample_subset(100, 0.2, "stratified", labels=y)


def test_zcore_sampler_takes_top_scores():
    x = clustered(300, d=4, clusters=5)
    z = zcore_scores(x, n_sample=2000, redund_nn=20, seed=3)
    idx = sample_subset(300, 30, "zcore", embeddings=x, n_sample=2000, redund_nn=20, seed=3)
    assert set(idx) == set(np.argsort(-z, kind="stable")[:30])
    assert set(SAMPLERS) >= {"random", "stratified", "zcore"}


# ---------------------------------------------------------------- metrics

def test_correlations_against_numpy_scipy():
    g = np.random.default_rng(9)
    a, b = g.normal(size=500), g.normal(size=500)
    b = a + b
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], rel=1e-12)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, rel=1e-12)
    assert kendall(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, rel=1e-12)
    m = np.arange(50.)
    assert spearman(m, m ** 3) == pytest.approx(1.0) and kendall(m, m ** 3) == pytest.approx(1.0)
    assert pearson(m, m ** 3) < 0.95
    assert spearman(m, -m) == pytest.approx(-1.0)
    assert np.isnan(spearman(np.ones(5), m[:5]))
    with pytest.raises(ValueError, match="same length"): kendall(m, m[:-1])
