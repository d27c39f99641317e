"Scores: hand-computed values of the pure functions, recorders vs the full history, resume, memory, bad input, bench scripts."
import inspect
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from scoreextra.data import load_dataset
from scoreextra.models import get_model
from scoreextra.scores import aum, dynamic_uncertainty, el2n, forgetting_events, tdds
from scoreextra.streaming import AUMRecorder, DURecorder, ForgettingRecorder, TDDSRecorder, clean_logits, true_class_prob
from scoreextra.subset_scoring import SCORES, score_full, score_subset
from scoreextra.train import Callback, fit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# ---------------------------------------------------------------- signatures
def test_signatures_are_the_contract():
    sig = inspect.signature(dynamic_uncertainty)
    assert list(sig.parameters) == ["p_true", "window", "mode"]
    assert (sig.parameters["window"].default, sig.parameters["mode"].default) == (10, "original")
    sig = inspect.signature(tdds)
    assert list(sig.parameters) == ["logits", "window", "decay"]
    assert (sig.parameters["window"].default, sig.parameters["decay"].default) == (10, 0.9)


# ---------------------------------------------------------------- DU by hand
P = np.array([[0.10, 0.50],
              [0.30, 0.55],
              [0.90, 0.20],
              [0.40, 0.60]])      # (E=4, n=2)


def test_du_original_by_hand():
    # window=2, original: windows (epochs 0,1) and (1,2); epoch 3 unused; ddof=1
    w0, w1 = P[[0, 1]], P[[1, 2]]
    sd = lambda w: np.sqrt(((w - w.mean(0)) ** 2).sum(0) / (len(w) - 1))
    expected = (sd(w0) + sd(w1)) / 2
    np.testing.assert_allclose(dynamic_uncertainty(P, window=2), expected, rtol=1e-12)
    # changing the last epoch must not change the original score
    P2 = P.copy(); P2[3] = [0.0, 1.0]
    np.testing.assert_allclose(dynamic_uncertainty(P2, window=2), expected, rtol=1e-12)


def test_du_paper_code_by_hand():
    # window=2, paper_code: history[i+2:i+4] for i in range(E-J-1)=range(1): one window (epochs 2,3); ddof=0
    w = P[[2, 3]]
    expected = np.sqrt(((w - w.mean(0)) ** 2).mean(0))
    np.testing.assert_allclose(dynamic_uncertainty(P, window=2, mode="paper_code"), expected, rtol=1e-12)
    assert np.allclose(expected, [0.25, 0.2])


def test_du_matches_explicit_loops_on_random_history():
    p = np.random.default_rng(0).random((14, 7))
    J, E = 10, 14
    orig = np.mean([np.std(p[k:k + J], axis=0, ddof=1) for k in range(E - J)], axis=0)
    paper = np.mean([np.std(p[i + 2:i + 2 + J], axis=0, ddof=0) for i in range(E - J - 1)], axis=0)
    np.testing.assert_allclose(dynamic_uncertainty(p), orig, rtol=1e-12)
    np.testing.assert_allclose(dynamic_uncertainty(p, mode="paper_code"), paper, rtol=1e-12)
    assert dynamic_uncertainty(p).dtype == np.float64


# ---------------------------------------------------------------- TDDS by hand
def _tdds_loops(logits, W, beta):
    "Independent transcription of the official importance_evaluation.py (float64)."
    T = logits.shape[0]
    p = np.exp(logits - logits.max(-1, keepdims=True)); p /= p.sum(-1, keepdims=True)
    total = np.zeros(logits.shape[1])
    for k in range(T - W + 1):
        d = []
        for j in range(W - 1):
            a, b = p[k + j], p[k + j + 1]
            d.append(np.abs(b * (np.log(b + 1e-8) - np.log(a + 1e-8))).sum(1))
        d = np.array(d)
        total += np.linalg.norm(d - d.sum(0) / (W - 1), axis=0) * beta * (1 - beta) ** (T - W - k)
    return total


def test_tdds_single_window_by_hand():
    # T = W = 3, one sample, two classes: d0, d1 written out; R = sqrt((d0-m)^2 + (d1-m)^2), weight beta
    probs = np.array([[0.5, 0.5], [0.8, 0.2], [0.6, 0.4]])
    d0 = abs(0.8 * np.log((0.8 + 1e-8) / (0.5 + 1e-8))) + abs(0.2 * np.log((0.2 + 1e-8) / (0.5 + 1e-8)))
    d1 = abs(0.6 * np.log((0.6 + 1e-8) / (0.8 + 1e-8))) + abs(0.4 * np.log((0.4 + 1e-8) / (0.2 + 1e-8)))
    expected = 0.9 * abs(d0 - d1) / np.sqrt(2)
    got = tdds(np.log(probs)[:, None, :], window=3, decay=0.9)
    np.testing.assert_allclose(got, [expected], rtol=1e-10)


def test_tdds_matches_official_loops_several_windows():
    z = np.random.default_rng(1).normal(size=(7, 5, 4)).astype(np.float32)
    for W, beta in [(3, 0.9), (4, 0.5), (7, 0.9), (3, 0.3)]:
        np.testing.assert_allclose(tdds(z, window=W, decay=beta), _tdds_loops(z.astype(np.float64), W, beta),
                                   rtol=1e-10, atol=1e-14)
    # W = 2: one change per window, zero spread for every sample by definition; refused instead of returning zeros
    np.testing.assert_array_equal(_tdds_loops(z.astype(np.float64), 2, 0.3), 0.0)
    with pytest.raises(ValueError, match="window must be an int >= 3, got 2"): tdds(z, window=2)


def test_tdds_abs_is_per_class_not_abs_kl():
    # two epochs where the signed KL terms cancel partly: per-class |.| must be larger than |sum|
    a, b = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    z = np.log(np.stack([a, b, a]))[:, None, :]
    d_pc = np.abs(b * np.log((b + 1e-8) / (a + 1e-8))).sum()
    d_2 = np.abs(a * np.log((a + 1e-8) / (b + 1e-8))).sum()
    np.testing.assert_allclose(tdds(z, window=3, decay=1.0), [abs(d_pc - d_2) / np.sqrt(2)], rtol=1e-10)


# ---------------------------------------------------------------- the other scores
def test_el2n_forgetting_aum_by_hand():
    z = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    np.testing.assert_allclose(el2n(z, [1, 2]), [np.sqrt(0.7**2 + 0.8**2 + 0.1**2), np.sqrt(0.1**2 + 0.3**2 + 0.4**2)])
    c = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(forgetting_events(c), [2, np.inf, 1])
    np.testing.assert_array_equal(forgetting_events(c, mode="paper_code"), [2, 0, 1])
    logits = np.array([[[2., 0., 1.]], [[0., 3., 1.]]])   # y=0: margins 1, -3 → AUM -1 → returned +1
    np.testing.assert_allclose(aum(logits, [0]), [1.0])


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("fn, arg, msg", [
    (lambda a: dynamic_uncertainty(a, window=2), np.array([[0.1, np.nan], [0.2, 0.3], [0.3, 0.3]]), "NaN/inf"),
    (lambda a: dynamic_uncertainty(a, window=2), np.array([[0.1, np.inf], [0.2, 0.3], [0.3, 0.3]]), "first inf at (0, 1)"),
    (lambda a: dynamic_uncertainty(a), np.zeros(5), "p_true must be 2-D"),
    (lambda a: dynamic_uncertainty(a, window=10), np.full((10, 3), 0.5), "needs at least window+1 = 11 epochs for window=10, got 10"),
    (lambda a: dynamic_uncertainty(a, window=10, mode="paper_code"), np.full((11, 3), 0.5), "window+2 = 12 epochs"),
    (lambda a: dynamic_uncertainty(a, window=2), np.array([[0.1, 1.5], [0.2, -0.1], [0.3, 0.3]]), "in [0, 1], got [1.5, -0.1]"),
    (lambda a: dynamic_uncertainty(a, window=1), np.full((5, 3), 0.5), "window must be an int >= 2, got 1"),
    (lambda a: tdds(a, window=10), np.zeros((9, 2, 3)), "at least window = 10 trajectory epochs, got 9"),
    (lambda a: tdds(a), np.zeros((10, 3)), "logits must be 3-D"),
    (lambda a: tdds(a, window=3), np.array([[[0., np.nan]], [[0., 1.]]]), "NaN/inf"),
    (lambda a: tdds(a, window=3, decay=0), np.zeros((2, 1, 2)), "decay must be in (0, 1], got 0"),
    (lambda a: aum(a, [0, 5]), np.zeros((2, 2, 3)), "y must lie in [0, 3)"),
    (lambda a: forgetting_events(a), np.array([[0, 2]]), "0/1 or bools, got [2.0]"),
])
def test_bad_input_is_named(fn, arg, msg):
    with pytest.raises((ValueError, IndexError, TypeError)) as e: fn(arg)
    assert msg in str(e.value)


# ---------------------------------------------------------------- recorders without a trainer
def _fake_trainer(idx, epochs=3, C=3):
    model = torch.nn.Linear(2, C)
    return SimpleNamespace(idx=np.asarray(idx), n=100, epochs=epochs, epoch=0, model=model,
                           ds=SimpleNamespace(num_classes=C))


def _batch(idx, C=3):
    idx = torch.as_tensor(idx)
    return SimpleNamespace(idx=idx, logits=torch.zeros(len(idx), C), y=torch.zeros(len(idx), dtype=torch.long),
                           x_clean=torch.zeros(len(idx), 2))


@pytest.mark.parametrize("make", [lambda: DURecorder(window=2), lambda: TDDSRecorder(window=3), ForgettingRecorder, AUMRecorder])
def test_recorders_enforce_exactly_once(make):
    tr = _fake_trainer([3, 7, 9])
    rec = make(); rec.before_fit(tr); rec.before_epoch(tr)
    rec.after_batch(tr, _batch([7, 3]))
    with pytest.raises(RuntimeError, match=r"\[7\] recorded twice in epoch 0"): rec.after_batch(tr, _batch([7]))
    with pytest.raises(IndexError, match=r"dataset index \[5\] is not among the 3 trained"): rec.after_batch(tr, _batch([5]))
    with pytest.raises(IndexError, match=r"\[150\]"): rec.after_batch(tr, _batch([150]))
    with pytest.raises(RuntimeError, match=r"1 trained index\(es\) not recorded in epoch 0, e.g. \[9\]"): rec.after_epoch(tr)
    rec2 = make(); rec2.before_fit(tr); rec2.before_epoch(tr)
    with pytest.raises(RuntimeError, match="recorded twice"): rec2.after_batch(tr, _batch([9, 9]))


def test_scores_before_any_recording_is_an_error():
    with pytest.raises(RuntimeError, match="recorded nothing yet"): DURecorder().scores()
    tr = _fake_trainer([0, 1])
    rec = DURecorder(window=2); rec.before_fit(tr)
    for e in range(2):
        tr.epoch = e; rec.before_epoch(tr); rec.after_batch(tr, _batch([0, 1])); rec.after_epoch(tr)
    with pytest.raises(ValueError, match="at least window\\+1 = 3 epochs for window=2, got 2"): rec.scores()
    tr.epoch = 2; rec.before_epoch(tr); rec.after_batch(tr, _batch([0]))
    with pytest.raises(RuntimeError, match="an epoch is being recorded"): rec.scores()


def test_clean_forward_restores_every_module_mode():
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 3))
    model.train(); model[2].eval()                      # a mixed state, as with a frozen layer
    modes = [m.training for m in model.modules()]
    bn_mean = model[1].running_mean.clone()
    seen = []
    model[1].register_forward_hook(lambda m, i, o: seen.append(m.training))
    out = _batch([0, 1, 2, 3]); out.x_clean = torch.randn(4, 2)
    z = clean_logits(SimpleNamespace(model=model), out)
    assert seen == [False]                              # the extra forward ran in eval mode
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(model[1].running_mean, bn_mean)  # eval mode: BN running stats untouched
    model.eval(); assert torch.allclose(z, model(out.x_clean))


def test_memory_formula_equals_real_buffers():
    n, C, W = 1_000_000, 100, 10
    rec = TDDSRecorder(window=W); rec.allocate(np.arange(n), C)
    assert rec.nbytes() == TDDSRecorder.memory_bytes(n, C, W) == n * (4 * C + 8 * (W - 1) + 17)
    assert sum(a.nbytes for a in vars(rec).values() if isinstance(a, np.ndarray)) == rec.nbytes()   # nothing hidden
    assert rec.nbytes() < 10 * n * C * 4 / 8          # far below T=10 epochs of float32 logits (4 GB)
    du = DURecorder(window=W); du.allocate(np.arange(n), C)
    assert du.nbytes() == DURecorder.memory_bytes(n, W) == n * (4 * W + 17)
    assert sum(a.nbytes for a in vars(du).values() if isinstance(a, np.ndarray)) == du.nbytes()


# ---------------------------------------------------------------- recorders on a real fit
class History(Callback):
    "Full history in dataset order: float32 p_true as the DU ring stores it, float64 p_true, and float32 logits."
    order = 20
    def before_fit(self, tr):
        self.p32 = np.full((tr.epochs, tr.n), np.nan, np.float32); self.p64 = np.full((tr.epochs, tr.n), np.nan)
        self.z = np.full((tr.epochs, tr.n, tr.ds.num_classes), np.nan, np.float32)
        self.zc = self.z.copy(); self.modes = []
    def after_batch(self, tr, out):
        i = out.idx.cpu().numpy(); z = out.logits.cpu().numpy()
        self.modes.append(tr.model.training)             # the clean recorders ran before: mode restored?
        self.p32[tr.epoch, i] = true_class_prob(out.logits, out.y)
        zd = z.astype(np.float64); p = np.exp(zd - zd.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
        self.p64[tr.epoch, i] = p[np.arange(len(i)), out.y.cpu().numpy()]
        self.z[tr.epoch, i] = z; self.zc[tr.epoch, i] = clean_logits(tr, out).cpu().numpy()


def test_streamed_scores_equal_pure_functions_on_full_history(digits):
    sub = np.arange(1, len(digits), 3)
    recs = dict(du=DURecorder(window=4), du_clean=DURecorder(where="clean", window=4),
                du_pc=DURecorder(window=3, mode="paper_code"),
                tdds=TDDSRecorder(window=3), tdds_last=TDDSRecorder(window=3, trajectory_epochs=4, trajectory="last"),
                tdds_clean=TDDSRecorder(window=4, trajectory_epochs=5, where="clean"))
    h = History()
    fit(get_model("cnn", 10, digits.in_shape, seed=0), digits, sub, epochs=6, batch_size=64,
        callbacks=[*recs.values(), h], progress=False, verbose=False)
    assert all(h.modes)                                  # train mode after every clean forward
    p32, p64, z, zc = h.p32[:, sub], h.p64[:, sub], h.z[:, sub], h.zc[:, sub]
    assert np.isfinite(z).all()
    # same stored values: float64 rounding only
    np.testing.assert_allclose(recs["du"].scores(), dynamic_uncertainty(p32, window=4), rtol=1e-9)
    np.testing.assert_allclose(recs["du_pc"].scores(), dynamic_uncertainty(p32, window=3, mode="paper_code"), rtol=1e-9)
    np.testing.assert_allclose(recs["tdds"].scores(), tdds(z, window=3), rtol=1e-9)
    np.testing.assert_allclose(recs["tdds_last"].scores(), tdds(z[2:], window=3), rtol=1e-9)
    np.testing.assert_allclose(recs["tdds_clean"].scores(), tdds(zc[:5], window=4), rtol=1e-9)
    clean_p = torch.softmax(torch.from_numpy(zc), -1).numpy()[:, np.arange(len(sub)), digits.y[sub]]
    np.testing.assert_allclose(recs["du_clean"].scores(), dynamic_uncertainty(clean_p, window=4), rtol=1e-9)
    # against a float64-softmax history: the recorder takes a float32 softmax and keeps float32 in its ring,
    # so the two differ by float32 rounding: within 1e-6 relative (here at most ~4e-7); the atol of one
    # float32 spacing near 1 (6e-8) only guards samples so confident that their std is itself ~1e-7
    np.testing.assert_allclose(recs["du"].scores(), dynamic_uncertainty(p64, window=4), rtol=1e-6, atol=1e-7)
    # clean and train views really differ (otherwise the clean tests above prove nothing)
    assert not np.allclose(recs["du"].scores(), recs["du_clean"].scores())


class Kill(Callback):
    "Interrupts the fit at the 2nd batch of epoch `stop_at` (None: never; kept in every run since fit checks the callbacks)."
    order = 99
    def __init__(self, stop_at=None): self.stop_at = stop_at
    def after_batch(self, tr, out):
        if tr.epoch == self.stop_at and tr.step % len(tr.loader) == 1: raise KeyboardInterrupt


def test_resumed_fit_gives_the_same_recorder_scores(digits, tmp_path):
    sub = np.arange(0, len(digits), 4)
    def run(ckpt=None, stop_at=None):
        recs = [DURecorder(window=2), DURecorder(where="clean", window=2, mode="paper_code"),
                TDDSRecorder(window=3, trajectory_epochs=3, trajectory="last"), ForgettingRecorder(), AUMRecorder()]
        fit(get_model("cnn", 10, digits.in_shape, seed=0), digits, sub, epochs=5, batch_size=64, schedule="cosine",
            optimizer="sgd", lr=0.05, nesterov=True, callbacks=[*recs, Kill(stop_at)], ckpt_dir=ckpt,
            progress=False, verbose=False)
        return [r.scores() for r in recs]
    full = run()
    for stop in (1, 3):   # killed inside the DU window build-up, and inside the TDDS trajectory
        d = tmp_path / f"ck{stop}"
        with pytest.raises(KeyboardInterrupt): run(d, stop_at=stop)
        assert (d / "last.pt").exists()
        for a, b in zip(run(d), full): np.testing.assert_allclose(a, b, rtol=1e-12)


def test_resume_refuses_a_recorder_with_other_settings(digits, tmp_path):
    sub = np.arange(0, len(digits), 4)
    kw = dict(epochs=2, batch_size=128, ckpt_dir=tmp_path, progress=False, verbose=False)
    fit(get_model("mlp", 10, digits.in_shape, seed=0), digits, sub, callbacks=[DURecorder(window=2)], **kw)
    kw["epochs"] = 3
    with pytest.raises(ValueError):   # either fit's config check or the recorder's own one must refuse
        fit(get_model("mlp", 10, digits.in_shape, seed=0), digits, sub, callbacks=[DURecorder(window=3)], **kw)
    rec = DURecorder(window=3)
    st = DURecorder(window=2); st.allocate(sub, 10)
    with pytest.raises(ValueError, match="'window': 2"): rec.load_state_dict(st.state_dict())


# ---------------------------------------------------------------- score_subset / score_full
def test_score_subset_order_recipe_and_registry(digits):
    assert {"du", "tdds", "el2n", "forgetting", "aum"} <= set(SCORES)
    assert SCORES["du"].recipe["optimizer"] == "adam" and SCORES["du"].recipe["weight_decay"] == 1e-4
    t = SCORES["tdds"].recipe
    assert (t["optimizer"], t["nesterov"], t["lr"], t["weight_decay"], t["schedule"]) == ("sgd", True, 1e-3, 5e-4, "cosine")
    assert SCORES["tdds"].settings == dict(window=10, decay=0.9, trajectory_epochs=10, trajectory="last")
    assert SCORES["du"].recipe["epochs"] == 50 == t["epochs"]
    idx = np.random.default_rng(3).permutation(len(digits))[:200]
    s, model, log = score_subset(digits, idx, "tdds", model="mlp", epochs=3, window=3, trajectory_epochs=3, batch_size=64)
    s_sorted, _, _ = score_subset(digits, np.sort(idx), "tdds", model="mlp", epochs=3, window=3, trajectory_epochs=3, batch_size=64)
    assert s.dtype == np.float64 and s.shape == (200,) and len(log) == 3
    np.testing.assert_array_equal(s, s_sorted[np.searchsorted(np.sort(idx), idx)])
    both, _, _ = score_subset(digits, idx, ["tdds", "du"], model="mlp", epochs=3, batch_size=64, du_window=2, tdds_window=3, trajectory_epochs=3)
    np.testing.assert_array_equal(both["tdds"], s)        # same recipe (the first score's) and seed → same run
    with pytest.raises(IndexError, match=r"\[-1\]"): score_subset(digits, [0, -1], "du")
    with pytest.raises(KeyError, match="unknown score 'dux'"): score_subset(digits, idx, "dux")
    with pytest.raises(ValueError, match="trajectory_epochs=10 is longer than the fit.s 3 epochs"):
        score_subset(digits, idx, "tdds", model="mlp", epochs=3)


def test_score_full_covers_every_index(digits):
    s, _, _ = score_full(digits, "du", model="mlp", epochs=3, window=2, batch_size=256)
    assert s.shape == (len(digits),) and np.isfinite(s).all() and (s > 0).any()
