"""Cost of GNN extrapolation: seconds of GNNExtrapolator.fit + predict, full-batch vs minibatch, and peak memory.

Data: the real embeddings of a run folder when given (`--embeddings E.npy --labels y.npy
--scores s.npy --seed-idx i.npy`; `--scores` is either the m seed scores in `--seed-idx`
order or all n scores, in which case the seeds' entries are used and the Pearson on the
non-seeds is reported too), else random clustered data of Fashion-MNIST's size (70,000 ×
128, 10 Gaussian clusters labelled by cluster; score = distance to the own centre + noise;
20% seeds). The JSON says which (`data`).

Every mode runs in a fresh subprocess so that `ru_maxrss` (peak resident memory) is that
mode's own; `rss_after_data_mb` is the same process's RSS after loading the data and
before `fit`, so the GNN's own footprint is the difference. On CUDA the peak allocated GPU
memory is reported too. Seconds are split as `GNNExtrapolator.seconds`: graph (kNN search +
normalised adjacency), train (optimiser steps), predict (the per-epoch full-graph inference
passes). The lead divides the totals by the subset-training seconds of the same dataset.

    nice .venv/bin/python bench/gnn_cost.py [--n 70000 --k 10 --epochs 25 --modes full minibatch]
"""
import argparse, json, platform, resource, subprocess, sys, time
from pathlib import Path

import numpy as np


def synthetic(n, d=128, classes=10, seed=0):
    "Clustered embeddings, labels = cluster, score = distance to the own centre + noise."
    r = np.random.default_rng(seed)
    lab = r.integers(0, classes, n)
    centres = r.normal(scale=3.0, size=(classes, d))
    emb = (centres[lab] + r.normal(size=(n, d))).astype(np.float32)
    return emb, lab, np.linalg.norm(emb - centres[lab], axis=1) + 0.1 * r.normal(size=n)


def load(a):
    "(embeddings, labels, seed_idx, seed_scores, all_scores or None, description)."
    if a.embeddings:
        emb = np.load(a.embeddings, mmap_mode="r")
        lab = np.load(a.labels) if a.labels else None
        idx = np.load(a.seed_idx).astype(np.int64)
        s = np.load(a.scores).astype(np.float64)
        full = s if len(s) == len(emb) and len(s) != len(idx) else None
        return emb, lab, idx, (s[idx] if full is not None else s), full, f"files: {a.embeddings}"
    emb, lab, score = synthetic(a.n, a.dim)
    idx = np.sort(np.random.default_rng(1).choice(a.n, int(a.seed_frac * a.n), replace=False))
    return emb, lab, idx, score[idx], score, f"synthetic clustered, n={a.n}, d={a.dim}, 10 clusters"


def worker(a):
    "One mode in this process; prints one JSON line."
    import torch
    from scoreextra.core import get_device, peak_memory_mb
    from scoreextra.gnn import GNNExtrapolator
    emb, lab, idx, s, full, desc = load(a)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    ex = GNNExtrapolator(a.k, epochs=a.epochs, mode=a.worker, seed=0, device=a.device).fit(emb, lab, idx, s)
    pred = ex.predict()
    total = time.perf_counter() - t0
    rest = np.setdiff1d(np.arange(len(emb)), idx)
    out = {"mode": a.worker, "data": desc, "n": len(emb), "dim": int(emb.shape[1]), "m": len(idx), "k": a.k,
           "epochs": a.epochs, "nnz": ex.graph_.nnz, "seconds": {**ex.seconds, "total": total},
           "train_seconds_per_epoch": ex.seconds["train"] / a.epochs, "best_epoch": ex.best_epoch,
           "rss_after_data_mb": round(rss0, 1), **peak_memory_mb(), "device": str(get_device(a.device)),
           "torch_threads": torch.get_num_threads(),
           "pearson_rest": None if full is None else float(np.corrcoef(pred[rest], full[rest])[0, 1])}
    print("RESULT " + json.dumps(out), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embeddings"); ap.add_argument("--labels"); ap.add_argument("--scores"); ap.add_argument("--seed-idx")
    ap.add_argument("--n", type=int, default=70_000, help="synthetic data size (Fashion-MNIST: 70,000)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--seed-frac", type=float, default=0.2)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--modes", nargs="+", default=["full", "minibatch"], choices=["full", "minibatch"])
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gnn_cost.json"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.embeddings and not (a.seed_idx and a.scores): ap.error("--embeddings needs --seed-idx and --scores")
    if a.worker: return worker(a)
    rows = []
    for mode in a.modes:
        cmd = [sys.executable, __file__, "--worker", mode] + [x for x in (argv if argv is not None else sys.argv[1:])]
        p = subprocess.run(cmd, capture_output=True, text=True)
        line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
        if p.returncode or not line: sys.exit(f"{mode} run failed:\n{p.stderr[-3000:]}")
        rows.append(json.loads(line[-1][7:]))
        r = rows[-1]
        print(f"{mode} done: {r['seconds']['total']:.1f} s", flush=True)
    print(f"\n{rows[0]['data']}; m={rows[0]['m']} seeds, k={a.k}, {a.epochs} epochs, device {rows[0]['device']}, "
          f"{rows[0]['torch_threads']} torch threads")
    print(f"{'mode':>10} {'graph s':>8} {'train s':>8} {'predict s':>9} {'total s':>8} {'train s/ep':>10} "
          f"{'peak RSS MB':>11} {'RSS data MB':>11} {'peak CUDA MB':>12} {'pearson D_r':>11}")
    for r in rows:
        s = r["seconds"]
        print(f"{r['mode']:>10} {s['graph']:8.1f} {s['train']:8.1f} {s['predict']:9.1f} {s['total']:8.1f} "
              f"{r['train_seconds_per_epoch']:10.2f} {r['peak_rss_mb']:11.0f} {r['rss_after_data_mb']:11.0f} "
              f"{r.get('peak_cuda_mb', float('nan')):12.0f} {r['pearson_rest'] if r['pearson_rest'] is None else round(r['pearson_rest'], 3)!s:>11}")
    res = {"rows": rows, "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
           "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    from scoreextra.core import save_json
    save_json(a.out, res)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
