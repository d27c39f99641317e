"""Cost of recording DU + TDDS during training: epoch time with the recorders vs without.

Same model (`cnn`), data (a 10k subset of Fashion-MNIST by default), recipe (Adam, batch
256) and seed in every run; only the callbacks differ:

- none:  no recorder
- train: DURecorder + TDDSRecorder reading the training forward (where="train"); target <= 1.05x
- clean: the same reading an extra no-grad eval-mode forward on the clean batch, shared by
         both recorders (where="clean", the official DU); expected about 1.3x

Each configuration trains `--epochs` epochs per trial; trials alternate the order of the
configurations (forward, then reversed) to spread machine noise. On a shared CPU wall-clock
time swings by 10x with the neighbours' load, so the ratio is taken on the process's CPU
time (`time.process_time`, all threads; torch runs `--threads` threads, default 1), the
median over trials; wall-clock medians and minima are reported beside it. The recorders use window 2 so that 2 epochs form a valid TDDS trajectory: the
per-batch work (a gather + softmax, a row write) does not depend on the window, and the
per-epoch window work is O(m * window) numpy, milliseconds here. Writes
bench/results/recording_overhead.json.

    nice .venv/bin/python bench/recording_overhead.py [--n 10000 --epochs 2 --trials 3]
"""
import argparse, platform, time
from pathlib import Path

import numpy as np
import torch

from scoreextra.core import get_device, save_json, seed_everything
from scoreextra.data import load_dataset
from scoreextra.models import get_model
from scoreextra.streaming import DURecorder, TDDSRecorder
from scoreextra.train import fit

CONFIGS = ("none", "train", "clean")


def recorders(config, window):
    if config == "none": return []
    return [DURecorder(where=config, window=window),
            TDDSRecorder(where=config, window=window, trajectory_epochs=None)]


def time_fit(ds, idx, config, *, epochs, window, device, seed=0):
    "(wall seconds, process CPU seconds) per epoch of one fit with the configuration's recorders."
    seed_everything(seed)
    model = get_model("cnn", ds.num_classes, ds.in_shape)
    recs = recorders(config, window)
    if device.type == "cuda": torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    fit(model, ds, idx, epochs=epochs, batch_size=256, optimizer="adam", lr=1e-3, weight_decay=1e-4,
        callbacks=recs, seed=seed, device=device, progress=False)
    if device.type == "cuda": torch.cuda.synchronize()
    wall, cpu = (time.perf_counter() - t0) / epochs, (time.process_time() - c0) / epochs
    for r in recs:
        if isinstance(r, TDDSRecorder): assert np.isfinite(r.scores()).all()   # the recording really happened
    return wall, cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="fashion_mnist")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadiest on a shared machine)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "recording_overhead.json"))
    a = ap.parse_args(argv)
    if a.epochs < 2: ap.error("--epochs must be >= 2 (TDDS needs a trajectory of at least its window, 2)")
    device = get_device(a.device)
    if device.type == "cpu": torch.set_num_threads(a.threads)
    ds = load_dataset(a.dataset, "train")
    idx = np.sort(np.random.default_rng(0).choice(len(ds), size=min(a.n, len(ds)), replace=False))
    time_fit(ds, idx[:512], "clean", epochs=2, window=2, device=device)   # warm-up: kernels, allocator, caches
    wall, cpu = {c: [] for c in CONFIGS}, {c: [] for c in CONFIGS}
    for t in range(a.trials):
        for c in (CONFIGS if t % 2 == 0 else CONFIGS[::-1]):
            w, p = time_fit(ds, idx, c, epochs=a.epochs, window=2, device=device, seed=0)
            wall[c].append(w); cpu[c].append(p)
            print(f"trial {t} {c:>5}: {w:.3f} s/epoch wall, {p:.3f} s/epoch CPU", flush=True)
    # on a GPU the process CPU time says little: compare wall clock there
    key = cpu if device.type == "cpu" else wall
    med = {c: float(np.median(v)) for c, v in key.items()}
    res = {"dataset": a.dataset, "n": len(idx), "epochs": a.epochs, "trials": a.trials, "model": "cnn",
           "device": str(device), "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
           "timer": "process_time" if device.type == "cpu" else "wall",
           "cpu_seconds_per_epoch": cpu, "wall_seconds_per_epoch": wall, "median_seconds_per_epoch": med,
           "ratio_train": med["train"] / med["none"], "ratio_clean": med["clean"] / med["none"],
           "wall_ratio_min_train": min(wall["train"]) / min(wall["none"]),
           "wall_ratio_min_clean": min(wall["clean"]) / min(wall["none"]),
           "target_ratio_train": 1.05, "expected_ratio_clean": 1.3}
    print(f"\n{'config':>6} {'s/epoch':>8} {'ratio':>6}   ({res['timer']}, median of {a.trials})")
    for c in CONFIGS: print(f"{c:>6} {med[c]:8.3f} {med[c] / med['none']:6.3f}")
    save_json(a.out, res)
    print(f"wrote {a.out}")
    return res


if __name__ == "__main__":
    main()
