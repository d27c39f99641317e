"TURTLE on real small data and synthetic blobs: cluster accuracy, recording, determinism, unsupervised DU, bad input."
import numpy as np
import pytest
import torch
import torch.nn as nn

from scoreextra.data import load_dataset
from scoreextra.turtle import (TurtleResult, cluster_accuracy, embed_with, pca_whitened_pixels, turtle, turtle_du)

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


def test_blobs_are_recovered_and_history_is_a_distribution(blob_run):
    z, y, res = blob_run
    assert cluster_accuracy(y, res.labels) > 0.95
    assert res.history.shape == (40, len(z), 3) and res.history.dtype == np.float32
    np.testing.assert_allclose(res.history.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(res.probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(res.labels, res.probs.argmax(1))
    assert [r["epoch"] for r in res.log] == list(range(40))


def test_same_seed_same_run_other_seed_other_run(blob_run):
    z, _, res = blob_run
    again = turtle([z], 3, epochs=40, seed=1, **FAST)
    np.testing.assert_array_equal(again.history, res.history)
    np.testing.assert_array_equal(again.probs, res.probs)
    other = turtle([z], 3, epochs=40, seed=2, **FAST)
    assert not np.array_equal(other.history, res.history)


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
    np.testing.assert_allclose(res.history[0], expect, atol=1e-6)
    assert not np.allclose(res.probs, expect, atol=1e-6)   # the outer step changed the encoder


def test_batches_cover_every_sample_once_per_epoch():
    "Several batches per epoch: each epoch row is filled for every sample (no NaN left from np.empty)."
    z, _ = blobs(n_per=40)
    res = turtle([z], 3, epochs=3, batch_size=32, seed=0)
    assert np.isfinite(res.history).all()
    np.testing.assert_allclose(res.history.sum(-1), 1.0, atol=1e-5)


def test_two_spaces_and_subset_and_memmap(tmp_path):
    z, y = blobs()
    z2 = z @ np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    idx = np.random.default_rng(0).choice(len(z), 60, replace=False)
    res = turtle([z, z2], 3, epochs=5, idx=idx, record_dir=tmp_path, seed=0)
    assert isinstance(res.history, np.memmap) and res.history.shape == (5, 60, 3)
    np.testing.assert_array_equal(res.idx, np.sort(idx))
    assert res.labels.shape == (len(z),) and res.probs.shape == (len(z), 3)
    assert (tmp_path / "turtle_history.npy").exists()
    ram = turtle([z, z2], 3, epochs=5, idx=idx, seed=0)
    np.testing.assert_array_equal(np.asarray(res.history), ram.history)
    np.testing.assert_allclose(res.predict([z, z2]), res.probs, atol=1e-6)


def test_turtle_du_by_hand():
    E, m, C, J = 6, 3, 4, 3
    g = np.random.default_rng(0)
    h = g.dirichlet(np.ones(C), size=(E, m)).astype(np.float32)
    labels = np.array([2, 0, 3])
    res = TurtleResult(labels=labels, probs=np.eye(C, dtype=np.float32)[labels], idx=np.arange(m), history=h)
    expect = []
    for i in range(m):
        p = [float(h[e, i, labels[i]]) for e in range(E)]
        windows = [np.std(p[k:k + J]) for k in range(E - J)]   # np.std is ddof 0; the last epoch is never used
        expect.append(sum(windows) / len(windows))
    np.testing.assert_allclose(turtle_du(res, window=J), expect, rtol=1e-6)


def test_turtle_du_two_pass_equals_one_pass(blob_run):
    z, _, res = blob_run
    second = turtle([z], 3, epochs=40, seed=1, record_at=res.labels, **FAST)
    assert second.history.shape == (40, len(z))
    np.testing.assert_allclose(turtle_du(second), turtle_du(res), rtol=1e-6)
    wrong = TurtleResult(second.labels, second.probs, second.idx, second.history, record_at=(second.labels + 1) % 3)
    with pytest.raises(ValueError, match="differ"):
        turtle_du(wrong)


def test_turtle_du_needs_enough_epochs(blob_run):
    z, _, _ = blob_run
    short = turtle([z], 3, epochs=5, seed=0)
    with pytest.raises(ValueError, match="epochs"):
        turtle_du(short, window=10)


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
    (lambda z: turtle_du(turtle([z], 3, epochs=1, record=False)), "record=True"),
    (lambda z: cluster_accuracy([0, 1], [0]), "same length"),
    (lambda z: pca_whitened_pixels(z, dim=0), "dim must be"),
])
def test_bad_inputs(bad, match):
    z, _ = blobs(n_per=5)
    with pytest.raises((ValueError, IndexError, TypeError), match=match):
        bad(z)
