"TURTLE on real small data and synthetic blobs: cluster accuracy, streamed DU recording, determinism, unsupervised DU, bad input."
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from scoreextra.data import load_dataset
from scoreextra.scores import dynamic_uncertainty
from scoreextra.turtle import (TurtleDURecorder, TurtleResult, cluster_accuracy, embed_with, pca_whitened_pixels, turtle, turtle_du)

torch.set_num_threads(1)   # tiny problems: extra threads only add contention on a shared CPU
FAST = dict(inner_lr=0.1, outer_lr=0.01)   # small unit-variance features need larger steps than DINOv2 (see the notebook)


def blobs(n_per=50, d=6, sep=8.0, seed=0):
    g = np.random.default_rng(seed)
    centers = g.normal(size=(3, d)) * sep
    z = np.concatenate([c + g.normal(size=(n_per, d)) for c in centers]).astype(np.float32)
    y = np.repeat(np.arange(3), n_per)
    perm = g.permutation(len(y))
    return z[perm], y[perm]


@pytest.fixture(scope="module")
def blob_run():
    z, y = blobs()
    return z, y, turtle([z], 3, epochs=40, seed=1, **FAST)


def test_cluster_accuracy_permuted_labels_is_one():
    y = np.random.default_rng(0).integers(0, 5, 200)
    perm = np.array([3, 0, 4, 1, 2])
    assert cluster_accuracy(y, perm[y]) == 1.0


def test_cluster_accuracy_known_confusion():
    # counts[pred, true]: the best matching is the anti-diagonal 40 + 30 + 20 out of 100
    counts = np.array([[0, 5, 40], [0, 30, 5], [20, 0, 0]])
    yp, yt = np.nonzero(counts)
    reps = counts[yp, yt]
    y_pred, y_true = np.repeat(yp, reps), np.repeat(yt, reps)
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(0.9)
    # one cluster for everything: only the largest class can be matched
    assert cluster_accuracy(np.array([0, 0, 0, 1, 2]), np.zeros(5, int)) == pytest.approx(3 / 5)


def test_blobs_are_recovered_and_the_recorder_holds_distributions(blob_run):
    z, y, res = blob_run
    assert cluster_accuracy(y, res.labels) > 0.95
    rec = res.recorder
    assert rec.ring.shape == (len(z), 10, 3) and rec.ring.dtype == np.float32 and (rec.epochs, rec.n_windows) == (40, 30)
    np.testing.assert_allclose(rec.ring.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(res.probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(res.labels, res.probs.argmax(1))
    assert [r["epoch"] for r in res.log] == list(range(40))


def test_same_seed_same_run_other_seed_other_run(blob_run):
    z, _, res = blob_run
    again = turtle([z], 3, epochs=40, seed=1, **FAST)
    np.testing.assert_array_equal(again.recorder.total, res.recorder.total)
    np.testing.assert_array_equal(again.probs, res.probs)
    other = turtle([z], 3, epochs=40, seed=2, **FAST)
    assert not np.array_equal(other.recorder.total, res.recorder.total)


def test_global_torch_rng_untouched():
    z, _ = blobs(n_per=10)
    torch.manual_seed(5); a = torch.rand(3)
    torch.manual_seed(5); turtle([z], 3, epochs=2); b = torch.rand(3)
    assert torch.equal(a, b)


def test_first_epoch_records_the_initial_encoder():
    "Recording happens before the outer step: with one batch per epoch, epoch 0 holds l(x) of the untouched heads."
    z, _ = blobs(n_per=20)
    res = turtle([z], 3, epochs=1, seed=3)
    torch.manual_seed(3)   # turtle initialises its heads first under torch.manual_seed(seed)
    head = nn.utils.parametrizations.weight_norm(nn.Linear(z.shape[1], 3))
    with torch.no_grad(): expect = torch.softmax(head(torch.from_numpy(z)), 1).numpy()
    np.testing.assert_allclose(res.recorder.ring[:, 0], expect, atol=1e-6)
    assert not np.allclose(res.probs, expect, atol=1e-6)   # the outer step changed the encoder


def test_batches_cover_every_sample_once_per_epoch():
    "Several batches per epoch: each epoch row is filled for every sample (no NaN left from np.empty)."
    z, _ = blobs(n_per=40)
    res = turtle([z], 3, epochs=3, batch_size=32, seed=0, window=3)
    np.testing.assert_allclose(res.recorder.ring.sum(-1), 1.0, atol=1e-5)   # every row of all 3 epochs written (zeros sum to 0)


def test_two_spaces_and_subset_and_no_files(tmp_path, monkeypatch):
    "A subset run over two spaces records its m rows, labels all n and writes nothing."
    monkeypatch.chdir(tmp_path)
    z, y = blobs()
    z2 = z @ np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    idx = np.random.default_rng(0).choice(len(z), 60, replace=False)
    res = turtle([z, z2], 3, epochs=5, idx=idx, seed=0, window=3)
    assert res.recorder.ring.shape == (60, 3, 3) and list(tmp_path.iterdir()) == []
    np.testing.assert_array_equal(res.idx, np.sort(idx))
    assert res.labels.shape == (len(z),) and res.probs.shape == (len(z), 3)
    np.testing.assert_allclose(res.predict([z, z2]), res.probs, atol=1e-6)


REFERENCE = json.loads((Path(__file__).parent / "turtle_du_reference.json").read_text())


def _reference_inputs():
    g = np.random.default_rng(0)
    z = np.concatenate([c + g.normal(size=(20, 6)) for c in g.normal(size=(3, 6)) * 3]).astype(np.float32)
    z2 = z @ g.normal(size=(6, 4)).astype(np.float32)
    idx = np.sort(g.choice(60, 45, replace=False))
    return {"one_space": dict(spaces=[z]), "two_spaces_subset_batches": dict(spaces=[z, z2], idx=idx, batch_size=16),
            "warm_start": dict(spaces=[z], warm_start=True, batch_size=25)}


@pytest.mark.parametrize("case", sorted(REFERENCE))
def test_streamed_du_equals_the_whole_history_implementation(case):
    "turtle_du of the streamed recorder equals the scores of the former (E, m, C) history implementation (commit a22b221), stored in tests/turtle_du_reference.json."
    kw, ref = _reference_inputs()[case], REFERENCE[case]
    spaces = kw.pop("spaces")
    for J in (3, 10):
        res = turtle(spaces, 3, epochs=14, seed=4, inner_lr=0.1, outer_lr=0.01, window=J, **kw)
        assert res.labels.tolist() == ref["labels"]
        np.testing.assert_allclose(turtle_du(res), ref[f"du{J}"], rtol=1e-9, atol=1e-12)
    two_pass = turtle(spaces, 3, epochs=14, seed=4, inner_lr=0.1, outer_lr=0.01, record_at=res.labels, **kw)
    assert two_pass.recorder.ring.shape == (len(ref["idx"]), 10, 1)
    np.testing.assert_allclose(turtle_du(two_pass), ref["du10_two_pass"], rtol=1e-9, atol=1e-12)


def test_recorder_equals_dynamic_uncertainty_on_the_history():
    "Fed a random (E, m, C) history epoch by epoch, in shuffled batches, the recorder gives DU of l_ŷ (ddof 0) at any ŷ."
    E, m, C, J = 17, 40, 5, 4
    g = np.random.default_rng(3)
    h = g.dirichlet(np.ones(C), size=(E, m)).astype(np.float32)
    rec = TurtleDURecorder(m, C, window=J)
    for e in range(E):
        rec.start_epoch()
        for rows in np.array_split(g.permutation(m), 3): rec.record(rows, h[e, rows])
        rec.end_epoch()
    yhat = g.integers(0, C, m)
    p = h[:, np.arange(m), yhat].astype(np.float64)
    np.testing.assert_allclose(rec.scores(yhat), dynamic_uncertainty(p, window=J) * np.sqrt((J - 1) / J), rtol=1e-12)
    assert TurtleDURecorder.memory_bytes(m, C, J) == rec.ring.nbytes + rec.total.nbytes


def test_turtle_du_by_hand():
    E, m, C, J = 6, 3, 4, 3
    g = np.random.default_rng(0)
    h = g.dirichlet(np.ones(C), size=(E, m)).astype(np.float32)
    labels = np.array([2, 0, 3])
    rec = TurtleDURecorder(m, C, window=J)
    for he in h: rec.start_epoch(); rec.record(np.arange(m), he); rec.end_epoch()
    res = TurtleResult(labels=labels, probs=np.eye(C, dtype=np.float32)[labels], idx=np.arange(m), recorder=rec)
    expect = []
    for i in range(m):
        p = [float(h[e, i, labels[i]]) for e in range(E)]
        windows = [np.std(p[k:k + J]) for k in range(E - J)]   # np.std is ddof 0; the last epoch is never used
        expect.append(sum(windows) / len(windows))
    np.testing.assert_allclose(turtle_du(res, window=J), expect, rtol=1e-6)


def test_turtle_du_two_pass_equals_one_pass(blob_run):
    z, _, res = blob_run
    second = turtle([z], 3, epochs=40, seed=1, record_at=res.labels, **FAST)
    assert second.recorder.ring.shape == (len(z), 10, 1)
    np.testing.assert_allclose(turtle_du(second), turtle_du(res), rtol=1e-6)
    other = turtle([z], 3, epochs=40, seed=1, record_at=(res.labels + 1) % 3, **FAST)
    wrong = TurtleResult(other.labels, other.probs, other.idx, other.recorder, record_at=other.record_at)
    with pytest.raises(ValueError, match="differ"):
        turtle_du(wrong)


def test_turtle_du_needs_enough_epochs(blob_run):
    z, _, _ = blob_run
    short = turtle([z], 3, epochs=5, seed=0)
    with pytest.raises(ValueError, match="epochs"):
        turtle_du(short, window=10)
    with pytest.raises(ValueError, match="rerun turtle with window=5"):
        turtle_du(short, window=5)


def test_digits_pca_turtle_end_to_end():
    ds = load_dataset("digits")
    z = pca_whitened_pixels(ds, dim=16, seed=0)
    res = turtle([z], ds.num_classes, epochs=200, seed=0, y=ds.y, **FAST)
    acc = cluster_accuracy(ds.y, res.labels)
    assert acc > 0.6, acc
    assert res.log[-1]["cluster_acc"] > 0.6
    du = turtle_du(res)
    assert du.shape == (len(ds),) and np.isfinite(du).all() and (du >= 0).all()


def test_embed_with_dataset_order_and_mode_restored():
    ds = load_dataset("digits", "test")
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 3), nn.Dropout(0.9)).train()
    e = embed_with(net, ds, batch_size=50)
    assert e.shape == (len(ds), 3) and net.training
    x = (ds.x.transpose(0, 3, 1, 2) / 255.0 - ds.mean[0]) / ds.std[0]
    with torch.no_grad(): expect = net[1](torch.from_numpy(x.reshape(len(ds), -1).astype(np.float32))).numpy()
    np.testing.assert_allclose(e, expect, atol=1e-5)   # eval mode: dropout off


@pytest.mark.parametrize("bad, match", [
    (lambda z: turtle([z, z[:-1]], 3, epochs=1), "same number of rows"),
    (lambda z: turtle([z], 1, epochs=1), "num_classes"),
    (lambda z: turtle([z], 2.5, epochs=1), "num_classes"),
    (lambda z: turtle([np.where(np.arange(len(z))[:, None] == 3, np.nan, z)], 3, epochs=1), "NaN"),
    (lambda z: turtle([], 3, epochs=1), "at least one"),
    (lambda z: turtle([z[:, 0]], 3, epochs=1), r"\(n, d\)"),
    (lambda z: turtle([z], 3, epochs=0), "epochs"),
    (lambda z: turtle([z], 3, epochs=1, idx=[0, len(z)]), "lie in"),
    (lambda z: turtle_du(turtle([z], 3, epochs=1, window=None)), "window=J"),
    (lambda z: turtle([z], 3, epochs=1, window=1), "window must be"),
    (lambda z: cluster_accuracy([0, 1], [0]), "same length"),
    (lambda z: pca_whitened_pixels(z, dim=0), "dim must be"),
])
def test_bad_inputs(bad, match):
    z, _ = blobs(n_per=5)
    with pytest.raises((ValueError, IndexError, TypeError), match=match):
        bad(z)
