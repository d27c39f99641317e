"""Exact vs IVF vs HNSW kNN search at the scale of score extrapolation.

The non-seed samples are the queries and the seeds are the base: by default 1,000,000 queries
against 100,000 base vectors of 64 dims drawn around 1,000 gaussian cluster centres. For each
method it measures the index build and search seconds (search includes scoreextra's exact
distance refinement and tie-breaking) and recall@k against the exact search, and reports
speed-ups relative to exact measured in the same run.

    nice python bench/knn_scale.py --n 100000          # quick check (base = n/10)
    python bench/knn_scale.py                          # the full size: minutes on a few cores

Writes bench/results/knn_scale.json and prints a table.
"""
from __future__ import annotations
import argparse, json, platform, sys, time
from pathlib import Path

import faiss
import numpy as np

from scoreextra.core import save_json
from scoreextra.knn import KNNIndex, recall_at_k


def clustered(n:int, centres:np.ndarray, spread:float, g:np.random.Generator, chunk:int=1 << 18) -> np.ndarray:
    "n float32 points around randomly chosen `centres`, gaussian noise of std `spread`, built in chunks."
    out = np.empty((n, centres.shape[1]), np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        out[s:e] = centres[g.integers(0, len(centres), e - s)] + g.normal(0, spread, (e - s, centres.shape[1])).astype(np.float32)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="number of queries (non-seed samples)")
    p.add_argument("--m", type=int, default=None, help="number of base vectors (seeds); default n/10")
    p.add_argument("--d", type=int, default=64, help="dimension")
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--spread", type=float, default=0.5, help="noise std around centres drawn from N(0, 1)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--methods", default="exact,ivf,hnsw")
    p.add_argument("--nprobe", type=int, default=None, help="IVF cells searched (default: scoreextra's)")
    p.add_argument("--ef-search", type=int, default=None, help="HNSW search beam (default: scoreextra's)")
    p.add_argument("--threads", type=int, default=None, help="faiss OpenMP threads (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "knn_scale.json"))
    a = p.parse_args(argv)
    m = a.m or max(a.k + 1, a.n // 10)
    if a.threads: faiss.omp_set_num_threads(a.threads)
    g = np.random.default_rng(a.seed)
    centres = g.normal(0, 1, (a.clusters, a.d)).astype(np.float32)
    t = time.perf_counter()
    base, queries = clustered(m, centres, a.spread, g), clustered(a.n, centres, a.spread, g)
    print(f"data: {a.n:,} queries, {m:,} base, d={a.d}, {a.clusters} clusters ({time.perf_counter() - t:.1f} s); "
          f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads", flush=True)

    methods = a.methods.split(",")
    if "exact" not in methods: methods = ["exact", *methods]      # recall needs the exact answer
    rows, exact_idx = {}, None
    for method in methods:
        kw = {"nprobe": a.nprobe} if method == "ivf" else {"ef_search": a.ef_search} if method == "hnsw" else {}
        t0 = time.perf_counter()
        index = KNNIndex(base, method, seed=a.seed, **kw)
        t1 = time.perf_counter()
        _, idx = index.search(queries, a.k)
        t2 = time.perf_counter()
        if method == "exact": exact_idx = idx
        rows[method] = {"build_s": round(t1 - t0, 3), "search_s": round(t2 - t1, 3),
                        "queries_per_s": round(a.n / (t2 - t1)), "recall_at_k": recall_at_k(idx, exact_idx),
                        "params": {k: getattr(index, k) for k in ("nlist", "nprobe") if hasattr(index, k)}
                                  | ({"M": index.M, "ef_search": index.index.hnsw.efSearch}
                                     if method == "hnsw" else {})}
        print(f"  {method}: done in {t2 - t0:.1f} s", flush=True)
    ex = rows["exact"]["build_s"] + rows["exact"]["search_s"]
    for r in rows.values(): r["speedup_vs_exact"] = round(ex / (r["build_s"] + r["search_s"]), 2)

    print(f"\n{'method':<8}{'build s':>10}{'search s':>10}{'queries/s':>12}{'recall@' + str(a.k):>11}{'speed-up':>10}  params")
    for name, r in rows.items():
        print(f"{name:<8}{r['build_s']:>10.2f}{r['search_s']:>10.2f}{r['queries_per_s']:>12,}{r['recall_at_k']:>11.4f}"
              f"{r['speedup_vs_exact']:>9.1f}x  {r['params']}")
    res = {"config": {k: v for k, v in vars(a).items() if k != "out"} | {"m": m}, "results": rows,
           "env": {"faiss": faiss.__version__, "threads": faiss.omp_get_max_threads(), "numpy": np.__version__,
                   "python": sys.version.split()[0], "machine": platform.machine(), "processor": platform.processor()}}
    save_json(a.out, res)
    print(f"\nwrote {a.out}")
    return res


if __name__ == "__main__":
    main()
