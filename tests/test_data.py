"End-to-end checks of scoreextra.data and scoreextra.readers on small files written in each dataset's real release format."
import gzip, hashlib, os, pickle, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scoreextra import readers as R
from scoreextra.data import (DATASETS, Dataset, DatasetFileError, DatasetNotFoundError, BatchLoader, augment_batch,
                             data_root, load_dataset, take_rows, to_tensor)

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch): monkeypatch.delenv("SCOREEXTRA_DATA", raising=False)


# ---------------------------------------------------------------- writers (the real formats)
def write_idx(path, arr, magic):
    "MNIST idx: big-endian magic, one uint32 per dimension, raw uint8; gzipped when the name ends in .gz."
    raw = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + np.asarray(arr, np.uint8).tobytes()
    with (gzip.open if str(path).endswith(".gz") else open)(path, "wb") as f: f.write(raw)

def write_py2_pickle(path, obj):
    "A protocol-2 pickle that names numpy.core.multiarray, like the Python 2 CIFAR release files."
    b = pickle.dumps(obj, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    Path(path).write_bytes(b)

def planar(imgs_nhwc):
    "NHWC uint8 → (N, 3·H·W) channel-planar rows, as in the CIFAR / ImageNet64 files."
    return np.ascontiguousarray(imgs_nhwc.transpose(0, 3, 1, 2)).reshape(len(imgs_nhwc), -1)

def rand_imgs(n, hw, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, hw, hw, 3), dtype=np.uint8)

def assert_clear(excinfo, path, *words):
    msg = str(excinfo.value)
    assert str(path) in msg, msg
    assert "expected:" in msg and "get it from:" in msg, msg
    for w in words: assert w in msg, (w, msg)


# ---------------------------------------------------------------- root, registry, Dataset
def test_data_root_precedence(monkeypatch, tmp_path):
    assert data_root() == Path.home()/".cache/scoreextra/data"
    monkeypatch.setenv("SCOREEXTRA_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root(tmp_path/"x") == tmp_path/"x"

def test_registry_and_split_errors():
    for name in ["digits", "fashion_mnist", "cifar10", "cifar100", "imagenet64", "places365_64", "synthetic_cifar",
                 "synthetic_cifar100_1m", "synthetic_cifar10_2m"]:
        assert name in DATASETS
    with pytest.raises(KeyError, match="unknown dataset 'cifar11'"): load_dataset("cifar11")
    with pytest.raises(ValueError, match="split must be one of"): load_dataset("digits", "validation")

READS = """
import sys
from scoreextra.data import BUILTIN_DATASETS, DATASETS, READERS, import_function
assert "scoreextra.readers" not in sys.modules, "importing scoreextra.data imported its readers"
assert BUILTIN_DATASETS == {"digits", *READERS}, sorted(BUILTIN_DATASETS)
for name, spec in READERS.items():
    f = import_function(spec)
    assert f.__module__ == "scoreextra.readers" and f.__name__ == "load_" + name, (name, spec)
assert DATASETS.get("cifar10").__doc__ == "`scoreextra.readers:load_cifar10`, imported on the first load."
from scoreextra.readers import FASHION_SIZES      # every Fashion-MNIST subsample is a dataset name too
assert set(FASHION_SIZES) <= set(READERS), sorted(set(FASHION_SIZES) - set(READERS))
"""

def test_a_builtin_name_reaches_its_reader_that_data_never_imports_at_import_time():
    "01_data names the loaders of 01_readers (sorted after it) by `module:function`, imported when first loaded."
    r = subprocess.run([sys.executable, "-c", READS], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr[-2000:]

def test_dataset_validates_arrays():
    x = np.zeros((3, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="integer"): Dataset("t", "train", x, np.array([0., 1., 0.]), ["a", "b"])
    with pytest.raises(ValueError, match="3 rows but y has 2"): Dataset("t", "train", x, [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"\[0, 2\)"): Dataset("t", "train", x, [0, 1, 2], ["a", "b"])
    with pytest.raises(ValueError, match="one value per channel"): Dataset("t", "train", x, [0, 1, 0], ["a", "b"], (0.5,), (0.2,))
    ds = Dataset("t", "train", x, np.array([0, 1, 0], np.int8), ["a", "b"])
    assert ds.y.dtype == np.int64 and ds.in_shape == (3, 4, 4) and ds.mean == (0.0,)*3
    assert "n=3" in repr(ds) and len(repr(ds)) < 200   # never prints the arrays


# ---------------------------------------------------------------- digits
def test_digits_split():
    tr, te = load_dataset("digits"), load_dataset("digits", "test")
    assert (len(tr), len(te)) == (1437, 360)
    assert tr.x.dtype == np.uint8 and tr.x.shape[1:] == (8, 8, 1) and tr.y.dtype == np.int64
    from sklearn.datasets import load_digits
    d = load_digits()
    assert len(tr) + len(te) == len(d.target)
    # the pixels are the sklearn values ×16, clipped: 16 → 255 and every other value a multiple of 16
    vals = set(np.unique(np.concatenate([tr.x.ravel(), te.x.ravel()])).tolist())
    assert vals <= set(range(0, 256, 16)) | {255} and 255 in vals
    # stratified: each class's test share is within one sample of 20%
    for c in range(10):
        n_c = (d.target == c).sum()
        assert abs((te.y == c).sum() - 0.2*n_c) <= 1
    # deterministic
    np.testing.assert_array_equal(load_dataset("digits", "test").x, te.x)
    x = tr.x / 255.0
    np.testing.assert_allclose(tr.mean, [x.mean()], atol=1e-4); np.testing.assert_allclose(tr.std, [x.std()], atol=1e-4)
    assert not tr.augment and tr.augment_kw == dict(pad=0, flip=False)


# ---------------------------------------------------------------- Fashion-MNIST
@pytest.mark.skipif(not FASHION.exists(), reason=f"{FASHION} missing: `apt-get install dataset-fashion-mnist` (real Fashion-MNIST)")
def test_fashion_mnist_real():
    tr, te = load_dataset("fashion_mnist"), load_dataset("fashion_mnist", "test")
    assert tr.x.shape == (60000, 28, 28, 1) and te.x.shape == (10000, 28, 28, 1)
    assert tr.num_classes == 10 and np.bincount(tr.y).tolist() == [6000]*10 and np.bincount(te.y).tolist() == [1000]*10
    assert tr.x.dtype == np.uint8 and tr.info["dir"] == str(FASHION)
    np.testing.assert_allclose(tr.mean[0], (tr.x / 255.0).mean(), atol=1e-4)

def _fashion_dir(tmp_path, gz=True, n_train=6, n_test=4):
    d = tmp_path/"fashion-mnist"; d.mkdir(exist_ok=True)
    ext = ".gz" if gz else ""
    for pre, n in [("train", n_train), ("t10k", n_test)]:
        imgs = np.zeros((n, 28, 28), np.uint8); imgs[n-1, 3, 17] = 211
        write_idx(d/f"{pre}-images-idx3-ubyte{ext}", imgs, 2051)
        write_idx(d/f"{pre}-labels-idx1-ubyte{ext}", np.arange(n) % 10, 2049)
    return d

@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_files(tmp_path, gz):
    _fashion_dir(tmp_path, gz=gz)
    ds = load_dataset("fashion_mnist", "test", root=tmp_path)
    assert ds.x.shape == (4, 28, 28, 1) and ds.x[3, 3, 17, 0] == 211 and ds.x.sum() == 211
    assert ds.y.tolist() == [0, 1, 2, 3] and ds.y.dtype == np.int64
    assert len(load_dataset("fashion_mnist", root=tmp_path)) == 6

def test_fashion_mnist_env_root(tmp_path, monkeypatch):
    _fashion_dir(tmp_path, n_train=7)
    monkeypatch.setenv("SCOREEXTRA_DATA", str(tmp_path))
    assert len(load_dataset("fashion_mnist")) == 7

def test_fashion_mnist_bad_files(tmp_path):
    d = _fashion_dir(tmp_path)
    f = d/"train-images-idx3-ubyte.gz"
    raw = gzip.decompress(f.read_bytes())
    f.write_bytes(gzip.compress(raw[:-100]))                       # truncated payload
    with pytest.raises(DatasetFileError) as e: load_dataset("fashion_mnist", root=tmp_path)
    assert_clear(e, f, "size mismatch", "idx", "fashion-mnist")
    f.write_bytes(f.read_bytes()[:40])                             # truncated gzip stream
    with pytest.raises(DatasetFileError) as e: load_dataset("fashion_mnist", root=tmp_path)
    assert_clear(e, f, "cannot read")
    write_idx(f, np.arange(6), 2049)                               # a label file where the images should be
    with pytest.raises(DatasetFileError) as e: load_dataset("fashion_mnist", root=tmp_path)
    assert_clear(e, f, "bad idx magic number 2049 (want 2051)")
    yf = d/"t10k-labels-idx1-ubyte.gz"
    write_idx(yf, np.arange(3), 2049)                              # 4 images, 3 labels
    with pytest.raises(DatasetFileError) as e: load_dataset("fashion_mnist", "test", root=tmp_path)
    assert_clear(e, yf, "4 images but 3 labels")
    yf.unlink()
    with pytest.raises(FileNotFoundError) as e: load_dataset("fashion_mnist", "test", root=tmp_path)
    assert isinstance(e.value, DatasetNotFoundError)
    assert_clear(e, yf, "missing dataset file", "zalandoresearch")

def test_fashion_mnist_wrong_magic(tmp_path):
    d = _fashion_dir(tmp_path)
    f = d/"t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(f.read_bytes())
    f.write_bytes(gzip.compress((2052).to_bytes(4, "big") + raw[4:]))
    with pytest.raises(DatasetFileError) as e: load_dataset("fashion_mnist", "test", root=tmp_path)
    assert_clear(e, f, "bad idx magic number 2052")


# ---------------------------------------------------------------- CIFAR-10 / CIFAR-100
def write_cifar10(root, n=5):
    d = root/"cifar-10-batches-py"; d.mkdir(parents=True, exist_ok=True)
    imgs = {}
    for k, f in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        x = rand_imgs(n, 32, k); imgs[f] = x
        write_py2_pickle(d/f, {b"batch_label": f"batch {k}".encode(), b"labels": [int(v) for v in (np.arange(n) + k) % 10],
                               b"data": planar(x), b"filenames": [f"img{j}.png".encode() for j in range(n)]})
    write_py2_pickle(d/"batches.meta", {b"label_names": [c.encode() for c in R.CIFAR10_CLASSES], b"num_vis": 3072})
    return d, imgs

def test_cifar10_layout_and_labels(tmp_path):
    d, imgs = write_cifar10(tmp_path)
    tr, te = load_dataset("cifar10", root=tmp_path), load_dataset("cifar10", "test", root=tmp_path)
    assert tr.x.shape == (25, 32, 32, 3) and tr.x.dtype == np.uint8 and te.x.shape == (5, 32, 32, 3)
    # a known pixel, channel by channel: (n=2 of batch 3, h=5, w=30, c) survives planar -> NHWC
    for c in range(3): assert tr.x[2*5 + 2, 5, 30, c] == imgs["data_batch_3"][2, 5, 30, c]
    np.testing.assert_array_equal(tr.x[10:15], imgs["data_batch_3"])
    np.testing.assert_array_equal(te.x, imgs["test_batch"])
    assert tr.y[5:10].tolist() == [1, 2, 3, 4, 5] and tr.y.dtype == np.int64
    assert tr.classes == R.CIFAR10_CLASSES and tr.mean == R.CIFAR10_MEAN and tr.augment and tr.pad == 4

def test_cifar_pickle_with_str_keys(tmp_path):
    d, imgs = write_cifar10(tmp_path)
    x = rand_imgs(3, 32, 9)
    (d/"test_batch").write_bytes(pickle.dumps({"data": planar(x), "labels": [7, 8, 9]}))   # a latin1-style re-save
    te = load_dataset("cifar10", "test", root=tmp_path)
    np.testing.assert_array_equal(te.x, x); assert te.y.tolist() == [7, 8, 9]

def test_cifar10_bad_files(tmp_path):
    d, _ = write_cifar10(tmp_path)
    f = d/"data_batch_4"; f.write_bytes(f.read_bytes()[:500])
    with pytest.raises(DatasetFileError) as e: load_dataset("cifar10", root=tmp_path)
    assert_clear(e, f, "cannot unpickle", "channel-planar", "cifar-10-python.tar.gz")
    write_py2_pickle(f, {b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DatasetFileError) as e: load_dataset("cifar10", root=tmp_path)
    assert_clear(e, f, "(N, 3072)")
    write_py2_pickle(f, {b"data": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(DatasetFileError) as e: load_dataset("cifar10", root=tmp_path)
    assert_clear(e, f, "no key 'labels'")
    write_py2_pickle(f, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})
    with pytest.raises(DatasetFileError) as e: load_dataset("cifar10", root=tmp_path)
    assert "labels must be 0..9" in str(e.value)
    f.unlink()
    with pytest.raises(DatasetNotFoundError) as e: load_dataset("cifar10", root=tmp_path)
    assert_clear(e, f, "missing dataset file")
    # a pickle that would call a function is refused, not run
    (d/"test_batch").write_bytes(pickle.dumps({"data": os.getcwd}))
    with pytest.raises(DatasetFileError, match="refusing to load"): load_dataset("cifar10", "test", root=tmp_path)

def write_cifar100(root, n_train=6, n_test=4):
    d = root/"cifar-100-python"; d.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, (f, n) in enumerate([("train", n_train), ("test", n_test)]):
        x = rand_imgs(n, 32, 10 + k); out[f] = x
        write_py2_pickle(d/f, {b"filenames": [b"a.png"]*n, b"batch_label": b"x", b"fine_labels": [99 - j for j in range(n)],
                               b"coarse_labels": [j % 20 for j in range(n)], b"data": planar(x)})
    write_py2_pickle(d/"meta", {b"fine_label_names": [c.encode() for c in R.CIFAR100_CLASSES],
                                b"coarse_label_names": [f"super{i}".encode() for i in range(20)]})
    return d, out

def test_cifar100(tmp_path):
    d, imgs = write_cifar100(tmp_path)
    tr = load_dataset("cifar100", root=tmp_path)
    np.testing.assert_array_equal(tr.x, imgs["train"]); assert tr.x.flags.c_contiguous
    assert tr.y.tolist() == [99, 98, 97, 96, 95, 94] and tr.info["coarse_y"].tolist() == [0, 1, 2, 3, 4, 5]
    assert tr.num_classes == 100 and tr.classes[99] == "worm" and tr.std == R.CIFAR100_STD
    assert len(load_dataset("cifar100", "test", root=tmp_path)) == 4
    (d/"meta").unlink()
    with pytest.raises(DatasetNotFoundError) as e: load_dataset("cifar100", root=tmp_path)
    assert_clear(e, d/"meta", "fine_labels", "cifar-100-python.tar.gz")


# ---------------------------------------------------------------- ImageNet 64x64
def write_imagenet64(root, sizes=(3,)*10, n_val=4):
    d = root/"imagenet64"; d.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i, n in enumerate(sizes, 1):
        x = rand_imgs(n, 64, 100 + i); y = np.random.default_rng(i).integers(1, 1001, n)
        np.savez(d/f"train_data_batch_{i}.npz", data=planar(x), labels=y.tolist(), mean=np.zeros(12288))
        xs.append(x); ys.append(y)
    xv = rand_imgs(n_val, 64, 0)
    np.savez(d/"val_data.npz", data=planar(xv), labels=np.array([1, 1000, 5, 6][:n_val]))
    return d, np.concatenate(xs), np.concatenate(ys), xv

def test_imagenet64_memmap_layout_labels(tmp_path):
    d, x, y, xv = write_imagenet64(tmp_path, sizes=(2, 3, 1, 2, 2, 2, 2, 2, 2, 4))
    ds = load_dataset("imagenet64", root=tmp_path)
    assert isinstance(ds.x, np.memmap) and ds.x.dtype == np.uint8 and ds.x.shape == (22, 64, 64, 3)
    assert ds.x[7, 60, 1, 2] == x[7, 60, 1, 2]            # known (n,h,w,c) pixel
    np.testing.assert_array_equal(np.asarray(ds.x), x)
    np.testing.assert_array_equal(ds.y, y - 1); assert ds.y.min() >= 0 and ds.y.max() <= 999
    assert (d/"imagenet64_train_x.npy").exists() and not list(d.glob(".*tmp"))
    te = load_dataset("imagenet64", "test", root=tmp_path)
    np.testing.assert_array_equal(np.asarray(te.x), xv); assert te.y.tolist() == [0, 999, 4, 5]
    assert isinstance(te.x, np.memmap) and ds.mean == R.IMAGENET64_MEAN

def test_imagenet64_cache_reuse_and_rebuild(tmp_path):
    d, x, y, _ = write_imagenet64(tmp_path)
    load_dataset("imagenet64", root=tmp_path)
    cache = d/"imagenet64_train_x.npy"; t0 = cache.stat().st_mtime_ns
    load_dataset("imagenet64", root=tmp_path)
    assert cache.stat().st_mtime_ns == t0                  # reused
    x2 = rand_imgs(5, 64, 77)
    np.savez(d/"train_data_batch_10.npz", data=planar(x2), labels=np.ones(5, int))   # the source changed
    ds = load_dataset("imagenet64", root=tmp_path)
    assert len(ds) == 32 and np.array_equal(np.asarray(ds.x[-5:]), x2)

def test_imagenet64_map_clsloc(tmp_path):
    d, *_ = write_imagenet64(tmp_path)
    (d/"map_clsloc.txt").write_text("n02119789 1 kit_fox\nn02100735 2 English_setter\n")
    ds = load_dataset("imagenet64", "test", root=tmp_path)
    assert ds.classes[:3] == ["kit_fox", "English_setter", "2"] and ds.num_classes == 1000

def test_imagenet64_bad_files(tmp_path):
    d, *_ = write_imagenet64(tmp_path)
    f = d/"val_data.npz"
    np.savez(f, data=np.zeros((2, 12288), np.uint8), labels=np.array([0, 1]))       # 0-based: wrong
    with pytest.raises(DatasetFileError) as e: load_dataset("imagenet64", "test", root=tmp_path)
    assert_clear(e, f, "1-based", "channel-planar")
    np.savez(f, data=np.zeros((2, 3072), np.uint8), labels=np.array([1, 2]))        # 32px data
    with pytest.raises(DatasetFileError) as e: load_dataset("imagenet64", "test", root=tmp_path)
    assert_clear(e, f, "12288")
    np.savez(f, images=np.zeros((2, 12288), np.uint8))
    with pytest.raises(DatasetFileError) as e: load_dataset("imagenet64", "test", root=tmp_path)
    assert_clear(e, f, "no key 'labels'")
    f.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetFileError) as e: load_dataset("imagenet64", "test", root=tmp_path)
    assert_clear(e, f, "cannot read npz")
    (d/"train_data_batch_7.npz").unlink()
    with pytest.raises(DatasetNotFoundError) as e: load_dataset("imagenet64", root=tmp_path)
    assert_clear(e, d/"train_data_batch_7.npz", "image-net.org")
    assert not (d/"imagenet64_val_x.npy").exists()         # failed conversions leave no cache behind


# ---------------------------------------------------------------- Places365 (64 px)
def write_places(src):
    from PIL import Image
    for p in ["data_256_standard/a/abbey", "data_256_standard/b/bar", "val_256"]: (src/p).mkdir(parents=True, exist_ok=True)
    (src/"categories_places365.txt").write_text("/a/abbey 0\n/b/bar 1\n")
    # a 160x80 horizontal ramp: R = column index. Shorter side is already 80, so the stored
    # 64x64 centre crop must show columns 48..111.
    ramp = np.zeros((80, 160, 3), np.uint8); ramp[..., 0] = np.arange(160)[None, :]
    Image.fromarray(ramp).save(src/"data_256_standard/a/abbey/00000001.jpg", quality=100)
    # a 256x256 image with a bright 8x8 block at rows 100..107 (a tall one: the crop keeps it)
    sq = np.full((256, 256, 3), 30, np.uint8); sq[120:136, 120:136] = 250
    Image.fromarray(sq).save(src/"data_256_standard/b/bar/00000001.jpg", quality=100)
    Image.fromarray(np.full((200, 100, 3), 90, np.uint8)).save(src/"data_256_standard/b/bar/00000002.jpg", quality=100)
    (src/"places365_train_standard.txt").write_text("/a/abbey/00000001.jpg 0\n/b/bar/00000001.jpg 1\n/b/bar/00000002.jpg 1\n")
    Image.fromarray(np.full((256, 256, 3), 200, np.uint8)).save(src/"val_256/Places365_val_00000001.jpg")
    (src/"places365_val.txt").write_text("Places365_val_00000001.jpg 0\n")

def test_places365_convert_and_load(tmp_path):
    src = tmp_path/"src"; write_places(src)
    out = R.prepare_places365_64(src, tmp_path/"data", block=2)
    assert out == tmp_path/"data/places365_64"
    tr = load_dataset("places365_64", root=tmp_path/"data")
    assert isinstance(tr.x, np.memmap) and tr.x.shape == (3, 64, 64, 3) and tr.y.tolist() == [0, 1, 1]
    assert tr.classes == ["/a/abbey", "/b/bar"] and tr.mean == R.PLACES_MEAN
    r = tr.x[0, :, :, 0].astype(float).mean(0)              # column means of the ramp crop
    assert np.abs(r - np.arange(48, 112)).max() <= 4, r
    # 256 -> 80: the 16px block in the centre becomes 5px, still in the centre of the crop
    bright = np.argwhere(tr.x[1, :, :, 0] > 150)
    assert len(bright) > 0 and 27 <= bright.min() and bright.max() <= 36
    assert np.abs(tr.x[2].astype(int) - 90).max() <= 3     # a tall 100x200 image: a flat 64x64 crop
    te = load_dataset("places365_64", "test", root=tmp_path/"data")
    assert te.y.tolist() == [0] and np.abs(te.x.astype(int) - 200).max() <= 3

def test_places365_workers_match(tmp_path):
    src = tmp_path/"src"; write_places(src)
    R.prepare_places365_64(src, tmp_path/"a", splits=("train",))
    R.prepare_places365_64(src, tmp_path/"b", splits=("train",), workers=2, block=2)
    np.testing.assert_array_equal(np.load(tmp_path/"a/places365_64/train_x.npy"), np.load(tmp_path/"b/places365_64/train_x.npy"))

def test_places365_bad_files(tmp_path):
    src = tmp_path/"src"; write_places(src)
    bad = src/"data_256_standard/b/bar/00000002.jpg"; bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DatasetFileError) as e: R.prepare_places365_64(src, tmp_path/"d")
    assert_clear(e, bad, "cannot decode image", "data_256_standard")
    bad.unlink()
    with pytest.raises(DatasetNotFoundError) as e: R.prepare_places365_64(src, tmp_path/"d")
    assert_clear(e, bad, "missing image")
    assert not (tmp_path/"d/places365_64/train_x.npy").exists()
    with pytest.raises(DatasetNotFoundError) as e: load_dataset("places365_64", root=tmp_path/"empty")
    assert_clear(e, tmp_path/"empty/places365_64/train_x.npy", "prepare_places365_64")
    (src/"places365_val.txt").write_text("Places365_val_00000001.jpg\n")
    with pytest.raises(DatasetFileError, match="line 1 is not"): R.prepare_places365_64(src, tmp_path/"d", splits=("test",))


# ---------------------------------------------------------------- synthetic CIFAR (npz)
def test_synthetic_cifar_train_and_sha(tmp_path):
    (tmp_path/"synthetic").mkdir()
    x = rand_imgs(30, 32, 5); y = np.repeat(np.arange(3), 10).astype(np.int32)   # grouped by class, int32
    f = tmp_path/"synthetic/gen.npz"; np.savez_compressed(f, image=x, label=y)
    ds = load_dataset("synthetic_cifar", root=tmp_path, file="gen.npz")
    assert isinstance(ds.x, np.memmap) and ds.x.shape == (30, 32, 32, 3)
    assert ds.x[17, 31, 0, 1] == x[17, 31, 0, 1]; np.testing.assert_array_equal(np.asarray(ds.x), x)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == y.tolist()
    assert ds.info["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert ds.info["base"] == "cifar10" and ds.classes == R.CIFAR10_CLASSES
    # an absolute path and a separate cache folder work too
    ds2 = load_dataset("synthetic_cifar", file=f, cache_dir=tmp_path/"cache")
    assert (tmp_path/"cache/gen_x.npy").exists() and ds2.info["sha256"] == ds.info["sha256"]

def test_synthetic_cifar100_test_split_is_real_cifar100(tmp_path):
    (tmp_path/"synthetic").mkdir(); _, imgs = write_cifar100(tmp_path)
    np.savez(tmp_path/"synthetic/cifar100_1m.npz", image=rand_imgs(200, 32, 1), label=np.repeat(np.arange(100), 2))
    tr = load_dataset("synthetic_cifar100_1m", root=tmp_path)
    te = load_dataset("synthetic_cifar100_1m", "test", root=tmp_path)
    assert tr.num_classes == te.num_classes == 100 and tr.classes == te.classes
    np.testing.assert_array_equal(te.x, imgs["test"])
    assert tr.mean == te.mean == R.SYNTH_C100_MEAN and te.name == "synthetic_cifar100_1m"
    # the generic loader infers CIFAR-100 from the labels
    assert load_dataset("synthetic_cifar", "test", root=tmp_path, file="cifar100_1m.npz").info["test_from"] == "cifar100"

def test_npz_streaming_in_many_chunks(tmp_path):
    x = rand_imgs(7, 32, 3); f = tmp_path/"a.npz"; np.savez_compressed(f, image=x)
    shape = R.npz_member_to_npy(f, "image", tmp_path/"a.npy", chunk=1000)
    assert shape == x.shape; np.testing.assert_array_equal(np.load(tmp_path/"a.npy"), x)

def test_synthetic_bad_files(tmp_path):
    s = tmp_path/"synthetic"; s.mkdir()
    with pytest.raises(DatasetNotFoundError) as e: load_dataset("synthetic_cifar10_2m", root=tmp_path)
    assert_clear(e, s/"2m_random.npz", "'image' uint8", "DM-Improves-AT")
    f = s/"a.npz"
    np.savez(f, image=rand_imgs(4, 32, 0))
    with pytest.raises(DatasetFileError) as e: load_dataset("synthetic_cifar", root=tmp_path, file="a.npz")
    assert_clear(e, f, "no key 'label'")
    np.savez(f, image=rand_imgs(4, 32, 0).transpose(0, 3, 1, 2), label=np.arange(4))   # NCHW: wrong
    with pytest.raises(DatasetFileError) as e: load_dataset("synthetic_cifar", root=tmp_path, file="a.npz")
    assert_clear(e, f, "(4, 32, 32, 3)")
    np.savez(f, image=rand_imgs(4, 32, 0), label=np.arange(3))
    with pytest.raises(DatasetFileError) as e: load_dataset("synthetic_cifar", root=tmp_path, file="a.npz")
    assert_clear(e, f, "match 'label'")
    np.savez(f, image=rand_imgs(4, 32, 0), label=np.array([0., 1., 2., 3.]))
    with pytest.raises(DatasetFileError) as e: load_dataset("synthetic_cifar", root=tmp_path, file="a.npz")
    assert_clear(e, f, "integers")
    np.savez_compressed(f, image=rand_imgs(40, 32, 0), label=np.arange(40) % 10)
    f.write_bytes(f.read_bytes()[:-3000])                                               # truncated zip
    with pytest.raises(DatasetFileError) as e: load_dataset("synthetic_cifar", root=tmp_path, file="a.npz")
    assert_clear(e, f, "cannot read npz")


# ---------------------------------------------------------------- to_tensor / take_rows
def test_to_tensor_normalises_nchw(tmp_path):
    x = np.zeros((3, 4, 5, 3), np.uint8); x[1, 2, 3] = [255, 51, 0]
    ds = Dataset("t", "train", x, [0, 1, 0], ["a", "b"], (0.5, 0.2, 0.1), (0.5, 0.4, 0.2))
    t = to_tensor(ds, np.array([1, 0]), "cpu")
    assert t.shape == (2, 3, 4, 5) and t.dtype == torch.float32 and t.is_contiguous()
    assert torch.allclose(t[0, :, 2, 3], torch.tensor([(1 - .5)/.5, (.2 - .2)/.4, (0 - .1)/.2]))
    assert torch.allclose(t[1], ((torch.zeros(3) - torch.tensor([.5, .2, .1]))/torch.tensor([.5, .4, .2])).view(3, 1, 1).expand(3, 4, 5))
    assert torch.allclose(t[0, :, 0, 0], t[1, :, 0, 0])

def test_take_rows_memmap_any_order(tmp_path):
    a = np.random.default_rng(0).integers(0, 255, (50, 2, 2, 3), dtype=np.uint8)
    np.save(tmp_path/"a.npy", a); m = np.load(tmp_path/"a.npy", mmap_mode="r")
    idx = np.array([40, 3, 3, 49, 0, 17])
    r = take_rows(m, idx)
    assert type(r) is np.ndarray and not isinstance(r, np.memmap)
    np.testing.assert_array_equal(r, a[idx])


# ---------------------------------------------------------------- augment_batch
def test_augment_identity_and_shape():
    x = torch.randn(8, 3, 6, 5)
    assert torch.equal(augment_batch(x, pad=0, flip=False, generator=torch.Generator()), x)
    assert augment_batch(x, pad=2, generator=torch.Generator()).shape == x.shape
    with pytest.raises(ValueError, match="pad must be"): augment_batch(x, pad=-1, generator=torch.Generator())
    with pytest.raises(ValueError, match="B,C,H,W"): augment_batch(x[0], generator=torch.Generator())

def test_augment_flip_twice_same_state_is_identity():
    x = torch.randn(32, 2, 4, 4)
    once = augment_batch(x, pad=0, flip=True, generator=torch.Generator().manual_seed(5))
    twice = augment_batch(once, pad=0, flip=True, generator=torch.Generator().manual_seed(5))
    assert torch.equal(twice, x)
    flipped = [not torch.equal(o, a) for o, a in zip(once, x)]
    assert 0 < sum(flipped) < 32                              # some flipped, some not
    for o, a, f in zip(once, x, flipped): assert torch.equal(o, a.flip(-1) if f else a)

def test_augment_crops_are_windows_of_padded_input():
    B, C, H, W, p = 64, 3, 5, 6, 2
    x = torch.rand(B, C, H, W) + 1                          # > 0, so padding (fill) is recognisable
    fill = (-1.0, -2.0, -3.0)
    out = augment_batch(x, pad=p, flip=True, generator=torch.Generator().manual_seed(0), fill=fill)
    xp = torch.stack([torch.nn.functional.pad(x[:, c], (p, p, p, p), value=fill[c]) for c in range(C)], 1)
    offsets = set()
    for b in range(B):
        hits = [(i, j, f) for i in range(2*p + 1) for j in range(2*p + 1) for f in (0, 1)
                if torch.equal(out[b], xp[b, :, i:i+H, j:j+W].flip(-1) if f else xp[b, :, i:i+H, j:j+W])]
        assert hits, f"sample {b} is not a (flipped) window of its padded image"
        offsets.add(hits[0])
    assert len(offsets) > 10                                  # offsets and flips really vary per sample
    same = augment_batch(x, pad=p, flip=True, generator=torch.Generator().manual_seed(0), fill=fill)
    other = augment_batch(x, pad=p, flip=True, generator=torch.Generator().manual_seed(1), fill=fill)
    assert torch.equal(out, same) and not torch.equal(out, other)

def test_dataset_augment_kw_pads_black():
    x = np.zeros((64, 8, 8, 3), np.uint8)                    # an all-black batch
    ds = Dataset("t", "train", x, np.zeros(64, int), ["a"], R.CIFAR10_MEAN, R.CIFAR10_STD, augment=True)
    t = to_tensor(ds, np.arange(64), "cpu")
    out = augment_batch(t, **ds.augment_kw, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, t)                             # black padding is indistinguishable from black pixels


# ---------------------------------------------------------------- BatchLoader
def test_batchloader_epochs_and_subset():
    ds = load_dataset("digits")
    sub = np.random.default_rng(0).choice(len(ds), 100, replace=False)
    bl = BatchLoader(ds, sub, batch_size=32, shuffle=True, seed=7, device="cpu")
    assert len(bl) == 4
    def epoch(loader, e):
        loader.set_epoch(e); return [i.numpy() for _, _, i in loader]
    e0 = epoch(bl, 0)
    assert [len(b) for b in e0] == [32, 32, 32, 4]
    seen = np.concatenate(e0); assert sorted(seen.tolist()) == sorted(sub.tolist())
    again = epoch(BatchLoader(ds, sub, batch_size=32, shuffle=True, seed=7, device="cpu"), 0)
    assert all(np.array_equal(a, b) for a, b in zip(e0, again))            # pure function of (seed, epoch)
    assert not np.array_equal(np.concatenate(epoch(bl, 1)), seen)          # another epoch, another order
    assert not np.array_equal(np.concatenate(epoch(BatchLoader(ds, sub, batch_size=32, shuffle=True, seed=8, device="cpu"), 0)), seen)
    assert np.array_equal(np.concatenate(epoch(bl, 0)), seen)              # going back to epoch 0 reproduces it
    for x, y, i in bl:
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and i.dtype == torch.int64
        assert torch.equal(x, to_tensor(ds, i.numpy(), "cpu")) and np.array_equal(y.numpy(), ds.y[i.numpy()])

def test_batchloader_no_shuffle_drop_last_and_bad_idx():
    ds = load_dataset("digits", "test")
    bl = BatchLoader(ds, batch_size=100, device="cpu")
    assert len(bl) == 4 and np.array_equal(np.concatenate([i.numpy() for *_, i in bl]), np.arange(360))
    assert len(BatchLoader(ds, batch_size=100, drop_last=True, device="cpu")) == 3
    assert sum(len(i) for *_, i in BatchLoader(ds, batch_size=100, drop_last=True, device="cpu")) == 300
    with pytest.raises(ValueError, match="duplicate"): BatchLoader(ds, [1, 1], device="cpu")
    with pytest.raises(IndexError, match=r"\[0, 360\)"): BatchLoader(ds, [360], device="cpu")
    with pytest.raises(ValueError, match="batch_size"): BatchLoader(ds, batch_size=0, device="cpu")

def test_batchloader_on_memmap(tmp_path):
    write_imagenet64(tmp_path)
    ds = load_dataset("imagenet64", root=tmp_path)
    bl = BatchLoader(ds, np.arange(3, 30), batch_size=8, shuffle=True, seed=1, device="cpu")
    got = {}
    for x, y, i in bl:
        for xi, yi, ii in zip(x, y, i.tolist()): got[ii] = (xi, int(yi))
    assert sorted(got) == list(range(3, 30))
    ref = to_tensor(Dataset("ref", "train", np.asarray(ds.x).copy(), ds.y, ds.classes, ds.mean, ds.std), np.arange(30), "cpu")
    for ii, (xi, yi) in got.items(): assert torch.equal(xi, ref[ii]) and yi == ds.y[ii]
