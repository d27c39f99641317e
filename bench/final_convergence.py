"""Convergence probe of the Fashion-MNIST final-training recipe: no pruning, all 60k, one setting per call.

Issue 16 asks for a final training that is converged (test accuracy changes by < 0.3 pt when the epochs are
doubled) and reaches >= 0.92. Each call trains `--model` with the pipeline's final recipe (`FINAL_RECIPE`:
Adam one-cycle, weight decay 1e-4) plus the given overrides and appends one JSON line to
bench/results/final_convergence.jsonl (setting, epochs, seed, test accuracy, process CPU seconds, threads).
Run E and 2E epochs of a setting side by side (one thread each) and compare; `--table` prints all lines.

Usage:
  OMP_NUM_THREADS=1 python bench/final_convergence.py --epochs 15 --augment flip --lr 0.004
  python bench/final_convergence.py --table
"""
import argparse, dataclasses, json, os, time
from pathlib import Path

import numpy as np
import torch

from scoreextra.core import seed_everything
from scoreextra.data import load_dataset
from scoreextra.readers import FASHION_SIZES
from scoreextra.models import get_model
from scoreextra.pipeline import FINAL_RECIPE
from scoreextra.train import evaluate, fit

OUT = Path(__file__).parent / "results" / "final_convergence.jsonl"
AUGMENTS = {"crop_flip": True, "flip": {"pad": 0, "flip": True}, "none": False}


def validation_split(dataset:str, n_val:int=10_000):
    "For a subsample of Fashion-MNIST's train split: `n_val` other train images (stratified, seed 1), disjoint from it."
    from scoreextra.data import stratified_subsample
    full = load_dataset("fashion_mnist")
    rest = np.setdiff1d(np.arange(len(full)), stratified_subsample(full.y, FASHION_SIZES[dataset]))
    i = rest[stratified_subsample(full.y[rest], n_val, seed=1)]
    return dataclasses.replace(full, x=full.x[i], y=full.y[i], split="test")


def probe(epochs:int, augment:str, lr:float, seed:int, model:str, widths:list|None, batch_size:int,
          dataset:str="fashion_mnist") -> dict:
    ds, test = load_dataset(dataset), load_dataset(dataset, "test")
    val = validation_split(dataset) if dataset != "fashion_mnist" else None
    seed_everything(seed)
    kw = {"widths": widths} if widths else {}
    net = get_model(model, ds.num_classes, ds.in_shape, **kw)
    recipe = {**FINAL_RECIPE, "lr": lr, "channels_last": True, "augment": AUGMENTS[augment]}
    t0 = time.process_time()
    tr = fit(net, ds, epochs=epochs, batch_size=batch_size, seed=seed, progress=False, verbose=False, **recipe)
    cpu = time.process_time() - t0
    return {"model": model, "widths": widths, "augment": augment, "lr": lr, "batch_size": batch_size, "epochs": epochs,
            "seed": seed, "dataset": dataset, "test_acc": round(evaluate(tr.model, test), 4),
            "val_acc": None if val is None else round(evaluate(tr.model, val), 4), "train_cpu_s": round(cpu, 1),
            "threads": torch.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS")}


def table():
    rows = [json.loads(l) for l in OUT.read_text().splitlines() if l.strip()]
    print("| model | widths | augment | lr | epochs | seed | test acc | CPU s | threads |\n|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["model"], str(r["widths"]), r["augment"], r["lr"], r["epochs"], r["seed"])):
        print(f"| {r['model']} | {r['widths'] or 'default'} | {r['augment']} | {r['lr']} | {r['epochs']} | {r['seed']} | "
              f"{r['test_acc']:.4f} | {r['train_cpu_s']:.0f} | {r['threads']} |")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int); p.add_argument("--augment", choices=list(AUGMENTS), default="crop_flip")
    p.add_argument("--lr", type=float, default=0.004); p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="convnet"); p.add_argument("--widths", type=int, nargs="+")
    p.add_argument("--dataset", default="fashion_mnist", choices=["fashion_mnist", *FASHION_SIZES])
    p.add_argument("--batch-size", type=int, default=256); p.add_argument("--table", action="store_true")
    a = p.parse_args()
    if a.table: table(); raise SystemExit
    if not a.epochs or a.epochs < 1: p.error(f"--epochs must be >= 1, got {a.epochs}")
    r = probe(a.epochs, a.augment, a.lr, a.seed, a.model, a.widths, a.batch_size, a.dataset)
    OUT.parent.mkdir(exist_ok=True)
    with open(OUT, "a") as f: f.write(json.dumps(r) + "\n")   # one short line per call: appends do not interleave
    print(json.dumps(r))
