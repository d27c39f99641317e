"""Training-step throughput (images/s): the small `cnn` on Fashion-MNIST and `resnet18` on 32×32 data, batch 256.

Two numbers per model:
- `step`: fwd + bwd + optimiser step on batches already on the device (the model's own cost);
- `fit` (cnn only): the whole `scoreextra.train.fit` loop over a subset, i.e. the step plus the
  seeded loader, on-device augmentation and bookkeeping; `fit/step` is the loop's efficiency.

Two ratios, each measured in one run with the settings interleaved (process CPU time on a CPU):
- `final_setting`: the Fashion-MNIST final-training setting (`convnet`, channels-last) against the
  present default (`cnn`, NCHW), whole `fit` epochs on the same images;
- `augment_layout` (3-channel 32×32, `convnet` channels-last): `augment_batch` keeping the channels-last
  layout (now) against returning NCHW (before), which made every step convert back.

Usage: `python bench/train_throughput.py [--device cuda] [--threads 1]`. Prints a table and writes
bench/results/train_throughput.json. On a 2-core CPU it takes about 3-5 minutes.
"""
import argparse, os, platform, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from scoreextra.core import get_device, save_json, seed_everything
from scoreextra.data import Dataset, augment_batch, load_dataset, to_tensor
from scoreextra.models import get_model, n_params
from scoreextra.train import fit


def _sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def step_throughput(model, batches, device, warmup):
    "Images/s of fwd+bwd+Adam step over `batches` [(x, y)] on `device`, after `warmup` untimed steps."
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    def step(x, y):
        opt.zero_grad(set_to_none=True); F.cross_entropy(model(x), y).backward(); opt.step()
    for x, y in batches[:warmup]: step(x, y)
    _sync(device); t0 = time.perf_counter()
    for x, y in batches[warmup:]: step(x, y)
    _sync(device); dt = time.perf_counter() - t0
    n = sum(len(y) for _, y in batches[warmup:])
    return {"images": n, "seconds": round(dt, 3), "images_per_s": round(n / dt, 1)}


def _cpu_seconds(fn, cuda):
    "Seconds of `fn()`: process CPU time on a CPU (robust to other jobs on a shared box), wall time on CUDA."
    clock = time.perf_counter if cuda else time.process_time
    t0 = clock(); fn(); return clock() - t0


def interleaved_ratio(runs:dict, repeats:int, cuda:bool) -> dict:
    "Run each named callable `repeats` times, interleaved; median seconds per name."
    secs = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items(): secs[k].append(_cpu_seconds(fn, cuda))
    return {k: float(np.median(v)) for k, v in secs.items()}


def fashion_or_random(n_random=60000):
    "Fashion-MNIST train split, or random 28×28 uint8 images if it is not installed (and say which)."
    try: return load_dataset("fashion_mnist", "train"), "fashion_mnist (train split)"
    except FileNotFoundError as e:
        print(f"Fashion-MNIST not found ({e}); using random 28x28 uint8 images instead")
        r = np.random.default_rng(0)
        ds = Dataset("random28", "train", r.integers(0, 256, (n_random, 28, 28, 1), dtype=np.uint8),
                     r.integers(0, 10, n_random), [str(i) for i in range(10)], (0.5,), (0.25,), augment=True, pad=2)
        return ds, "random 28x28 uint8 (Fashion-MNIST missing)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="default: CUDA when available, else CPU")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--cnn-batches", type=int, default=None, help="timed cnn step batches (default 20 CPU / 200 CUDA)")
    ap.add_argument("--cnn-fit-images", type=int, default=None, help="images in the timed fit epoch (default 10,240 CPU / all CUDA)")
    ap.add_argument("--resnet-batches", type=int, default=None, help="timed resnet18 batches (default 5 CPU / 50 CUDA)")
    ap.add_argument("--final-images", type=int, default=None, help="images per timed fit epoch of the final-setting ratio (default 6,144 CPU / all CUDA)")
    ap.add_argument("--aug-steps", type=int, default=8, help="steps per timed repeat of the augment-layout ratio")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each ratio (median)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_throughput.json"))
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = get_device(a.device); cuda = dev.type == "cuda"; bs = a.batch_size
    if cuda: torch.backends.cudnn.benchmark = True
    seed_everything(0)
    rows, t_all = [], time.perf_counter()

    # cnn on Fashion-MNIST: model step on pre-made batches, then the whole fit loop
    ds, src = fashion_or_random()
    nb = a.cnn_batches or (200 if cuda else 20); warm = 3
    order = np.random.default_rng(0).permutation(len(ds))
    chunks = [np.sort(order[i * bs:(i + 1) * bs]) for i in range(min(nb + warm, len(ds) // bs))]
    uniq = [(to_tensor(ds, c, dev), torch.from_numpy(ds.y[c]).to(dev)) for c in chunks]
    batches = [uniq[i % len(uniq)] for i in range(nb + warm)]
    model = get_model("cnn", ds.num_classes, ds.in_shape, seed=0)
    r = step_throughput(model, batches, dev, warm)
    rows.append({"model": "cnn", "data": src, "mode": "step", "params": n_params(model), **r})
    m = min(a.cnn_fit_images or (len(ds) if cuda else 10_240), len(ds))
    fit(get_model("cnn", ds.num_classes, ds.in_shape, seed=0), ds, order[:4 * bs], epochs=1, batch_size=bs, device=dev,
        progress=False)   # warm-up
    tr = fit(get_model("cnn", ds.num_classes, ds.in_shape, seed=0), ds, order[:m], epochs=1, batch_size=bs, device=dev,
             progress=False)
    secs = tr.log[0]["seconds"]
    rows.append({"model": "cnn", "data": src, "mode": "fit (loader+augment+step)", "params": n_params(model), "images": m,
                 "seconds": secs, "images_per_s": round(m / secs, 1)})
    del batches, uniq

    # the final-training setting on Fashion-MNIST against the present default, whole fit epochs, interleaved
    m2 = min(a.final_images or (len(ds) if cuda else 6_144), len(ds)); reps = a.repeats
    def fit_epoch(name, cl):
        return lambda: fit(get_model(name, ds.num_classes, ds.in_shape, seed=0), ds, order[:m2], epochs=1, batch_size=bs, device=dev,
                           progress=False, channels_last=cl)
    med = interleaved_ratio({"cnn NCHW": fit_epoch("cnn", False), "convnet channels-last": fit_epoch("convnet", True)}, reps, cuda)
    for k, v in med.items():
        rows.append({"model": k.split()[0], "data": src, "mode": f"fit, {k.split(' ', 1)[1]}", "params": n_params(get_model(k.split()[0], 10, ds.in_shape)),
                     "images": m2, "seconds": round(v, 3), "images_per_s": round(m2 / v, 1)})
    final_ratio = med["cnn NCHW"] / med["convnet channels-last"]

    # augment_batch on a 3-channel channels-last batch: keep the layout (now) vs hand back NCHW (before)
    g3 = torch.Generator(device=dev).manual_seed(0)
    x3 = torch.randn(bs, 3, 32, 32, device=dev).contiguous(memory_format=torch.channels_last); y3 = torch.randint(0, 10, (bs,), device=dev)
    net = get_model("convnet", 10, (3, 32, 32), seed=0).to(dev, memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    def steps(to_nchw):
        def go():
            for _ in range(a.aug_steps):
                xa = augment_batch(x3, pad=4, generator=g3)
                if to_nchw: xa = xa.contiguous()   # what augment_batch returned before
                opt.zero_grad(set_to_none=True); F.cross_entropy(net(xa), y3).backward(); opt.step()
            _sync(dev)
        return go
    steps(False)()   # warm-up
    med3 = interleaved_ratio({"keeps channels-last": steps(False), "returns NCHW (before)": steps(True)}, reps, cuda)
    for k, v in med3.items():
        rows.append({"model": "convnet", "data": "random 3x32x32, augment_batch", "mode": f"step, {k}", "params": n_params(net),
                     "images": a.aug_steps * bs, "seconds": round(v, 3), "images_per_s": round(a.aug_steps * bs / v, 1)})
    aug_ratio = med3["returns NCHW (before)"] / med3["keeps channels-last"]

    # resnet18 (CIFAR stem) on random 32x32 data
    nb = a.resnet_batches or (50 if cuda else 5); warm = 1 if not cuda else 5
    g = torch.Generator().manual_seed(0)
    xb = [(torch.randn(bs, 3, 32, 32, generator=g).to(dev), torch.randint(0, 10, (bs,), generator=g).to(dev)) for _ in range(2)]
    batches = [xb[i % 2] for i in range(nb + warm)]
    model = get_model("resnet18", 10, (3, 32, 32), seed=0)
    r = step_throughput(model, batches, dev, warm)
    rows.append({"model": "resnet18", "data": "random 3x32x32", "mode": "step", "params": n_params(model), **r})

    env = {"device": str(dev), "device_name": torch.cuda.get_device_name(dev) if cuda else platform.processor() or platform.machine(),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "load_avg_1min": os.getloadavg()[0], "batch_size": bs, "total_seconds": round(time.perf_counter() - t_all, 1)}
    fit_vs_step = rows[1]["images_per_s"] / rows[0]["images_per_s"]
    print(f"\ntraining throughput on {env['device']} ({env['device_name']}), torch {env['torch']}, "
          f"{env['threads']} threads, load avg {env['load_avg_1min']:.1f}, batch {bs}")
    hdr = f"| {'model':<9}| {'data':<44}| {'mode':<27}| {'images':>7} | {'seconds':>8} | {'images/s':>9} |"
    print(hdr); print("-" * len(hdr))
    for r in rows:
        print(f"| {r['model']:<9}| {r['data']:<44}| {r['mode']:<27}| {r['images']:>7} | {r['seconds']:>8.2f} | {r['images_per_s']:>9.1f} |")
    print(f"cnn fit/step ratio: {fit_vs_step:.2f}; cnn full 60k epoch at the fit rate ≈ {60000 / rows[1]['images_per_s']:.1f} s")
    print(f"final setting (convnet channels-last) vs present (cnn NCHW), whole fit epochs: {final_ratio:.2f}x images/s "
          f"(median of {reps} interleaved, {'wall' if cuda else 'process CPU'} time)")
    print(f"augment_batch keeping channels-last vs returning NCHW (3x32x32): {aug_ratio:.2f}x images/s")
    save_json(a.out, {"env": env, "rows": rows, "cnn_fit_over_step": round(fit_vs_step, 3),
                      "final_setting_speedup": round(final_ratio, 3), "augment_keep_layout_speedup": round(aug_ratio, 3),
                      "timing": "wall" if cuda else "process CPU time", "repeats": reps})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
