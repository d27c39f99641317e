"""kNN score extrapolation at scale, and exact vs IVF vs HNSW search.

Two modes:

- `extrapolate` (default): `knn_extrapolate(method="auto")` over n clustered embeddings of d dims
  stored as a float32 .npy memmap, with 10% of them as seeds. The data are generated chunk by
  chunk into a temporary folder; the extrapolation runs in a fresh subprocess that reports its
  wall and CPU seconds and its peak RSS (`ru_maxrss`, compared with the embeddings' size), the
  method and parameters `auto` chose and the recall@k it measured against exact search on its
  1,000-query sample. Afterwards (not timed) 1,000 other non-seed samples are scored from their
  exact neighbours as an independent check of the scores.
- `methods`: the non-seed samples are the queries and the seeds the base (n queries against
  m = n/10 base vectors); build and search seconds (wall and CPU) and recall@k of exact, IVF over
  `--nprobe` values and HNSW over `--ef-search` values, all measured in one run.

    nice python bench/knn_scale.py --n 100000 --d 128 --threads 1      # quick check
    python bench/knn_scale.py --n 1000000 --d 512 --threads 2 --md bench/knn_scale_1m.md
    nice python bench/knn_scale.py --mode methods --n 90000 --d 512 --clusters 100 --threads 1

Writes JSON to bench/results/ (git-ignored) and prints a table; `--md` also writes a markdown table.
"""
from __future__ import annotations
import argparse, json, os, platform, resource, shlex, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def clustered(n:int, centres:np.ndarray, spread:float, g:np.random.Generator, out=None, chunk:int=1 << 16) -> np.ndarray:
    "n float32 points around randomly chosen `centres`, gaussian noise of std `spread`, written chunk by chunk into `out`."
    out = np.empty((n, centres.shape[1]), np.float32) if out is None else out
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        out[s:e] = centres[g.integers(0, len(centres), e - s)] + spread * g.standard_normal((e - s, centres.shape[1]), np.float32)
    return out


def env(threads:int|None, load:tuple) -> dict:
    import faiss
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    return {"faiss": faiss.__version__, "faiss_threads": threads or faiss.omp_get_max_threads(), "numpy": np.__version__,
            "python": sys.version.split()[0], "cpu": cpu, "cores": os.cpu_count(), "loadavg_at_start": load,
            "loadavg_at_end": os.getloadavg()}


def rss_gb() -> float:
    "Peak RSS of this process in GiB: ru_maxrss (Linux: KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

def hwm_gb() -> float:
    "Peak RSS of this process's memory map (VmHWM) in GiB: unlike ru_maxrss, it starts afresh at exec."
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 2**20


# ---------------------------------------------------------------- extrapolate

def argv_of(a) -> list[str]:
    "The options the generating and extrapolating subprocesses need."
    opts = ["--n", a.n, "--d", a.d, "--seed-frac", a.seed_frac, "--clusters", a.clusters, "--spread", a.spread,
            "--k", a.k, "--method", a.method, "--seed", a.seed] + (["--threads", a.threads] if a.threads else [])
    return list(map(str, opts))

def make_data(a, folder:Path) -> None:
    "Embeddings memmap, seed indices and scores in `folder`; the generator holds one chunk at a time."
    from numpy.lib.format import open_memmap
    g = np.random.default_rng(a.seed)
    centres = g.normal(0, 1, (a.clusters, a.d)).astype(np.float32)
    emb = open_memmap(folder / "emb.npy", "w+", np.float32, (a.n, a.d))
    clustered(a.n, centres, a.spread, g, out=emb)
    emb.flush()
    m = max(a.k + 1, round(a.seed_frac * a.n))
    seeds = np.sort(g.choice(a.n, m, replace=False))
    u = g.normal(size=a.d).astype(np.float32); u /= np.linalg.norm(u)
    scores = np.concatenate([emb[seeds[s:s + 65536]] @ u for s in range(0, m, 65536)]).astype(np.float64)  # a smooth score
    del emb
    np.save(folder / "seeds.npy", seeds); np.save(folder / "scores.npy", scores)


def child(a) -> None:
    "Runs in a fresh process: the timed extrapolation, then the untimed check; writes result.json."
    from scoreextra.faiss_search import KNNIndex
    from scoreextra.knn import knn_extrapolate
    folder = Path(a.child)
    rss_imports = rss_gb()
    e = np.load(folder / "emb.npy", mmap_mode="r")
    seeds, scores = np.load(folder / "seeds.npy"), np.load(folder / "scores.npy")
    t0, c0 = time.perf_counter(), time.process_time()
    out, info = knn_extrapolate(e, seeds, scores, a.k, method=a.method, threads=a.threads, seed=a.seed, return_info=True)
    wall, cpu, peak = time.perf_counter() - t0, time.process_time() - c0, rss_gb()
    mask = np.ones(len(e), bool); mask[seeds] = False
    check = np.sort(np.random.default_rng(a.seed + 1).choice(np.flatnonzero(mask), min(1000, int(mask.sum())), replace=False))
    d, i = KNNIndex(e[seeds], "exact", threads=a.threads).search(e[check], a.k, dtype=np.float64)
    w = np.exp(-(d - d.min(1, keepdims=True)))
    ref = (w * scores[i]).sum(1) / w.sum(1)
    res = {"wall_s": wall, "cpu_s": cpu, "peak_rss_gb": peak, "peak_vmhwm_gb": hwm_gb(), "rss_after_imports_gb": rss_imports,
           "m": len(seeds), "info": info,
           "check": {"samples": len(check), "seed": a.seed + 1,
                     "same_score_frac": float(np.isclose(out[check], ref, rtol=1e-9, atol=0).mean()),
                     "max_abs_diff": float(np.abs(out[check] - ref).max()),
                     "pearson": float(np.corrcoef(out[check], ref)[0, 1])}}
    (folder / "result.json").write_text(json.dumps(res))


def extrapolate(a) -> dict:
    load = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="knn_scale_", dir=a.tmp))
    # generation and extrapolation each run in a fresh process: Linux carries ru_maxrss over fork and exec,
    # so a parent that had written the memmap would hand its peak on to the measured child
    run = lambda *opts: subprocess.run([sys.executable, __file__, *opts, str(tmp), *argv_of(a)], check=True)
    try:
        t = time.perf_counter()
        run("--generate")
        gen_s = time.perf_counter() - t
        emb_gb = a.n * a.d * 4 / 2**30
        print(f"data: n={a.n:,} d={a.d} ({emb_gb:.2f} GiB float32 memmap), {a.clusters} clusters, generated in {gen_s:.1f} s", flush=True)
        run("--child")
        r = json.loads((tmp / "result.json").read_text())
    finally: shutil.rmtree(tmp, ignore_errors=True)
    info = r.pop("info")
    res = {"mode": "extrapolate", "command": "python " + " ".join(map(shlex.quote, sys.argv)),
           "config": {k: v for k, v in vars(a).items() if k not in ("out", "md", "child", "generate", "tmp")} | {"m": r["m"]},
           "embeddings_gb": emb_gb, "generate_s": gen_s, **r, "rss_over_embeddings": r["peak_rss_gb"] / emb_gb,
           "search": info, "env": env(a.threads, load)}
    print(f"\n{'wall s':>8}{'CPU s':>8}{'peak RSS GiB':>14}{'× emb':>7}{'recall@' + str(a.k):>11}  method, params")
    print(f"{r['wall_s']:>8.1f}{r['cpu_s']:>8.1f}{r['peak_rss_gb']:>14.2f}{res['rss_over_embeddings']:>7.2f}"
          f"{info.get('recall', float('nan')):>11.4f}  {info.get('method')}, {info.get('params')}")
    print(f"check on {r['check']['samples']} other non-seeds: {r['check']['same_score_frac']:.3f} same score as exact kNN, "
          f"Pearson {r['check']['pearson']:.5f}")
    if a.md: write_md(a.md, res)
    return res


def write_md(path, r:dict) -> None:
    i, c, e = r["search"], r["config"], r["env"]
    trace = ", ".join(f"{t.get('nprobe', t.get('ef_search'))}: {t['recall']:.4f}" for t in i.get("widen_trace", []))
    rows = [("command", f"`{r['command']}`"),
            ("data", f"n = {c['n']:,} × d = {c['d']} float32 memmap ({r['embeddings_gb']:.2f} GiB), {c['clusters']} gaussian "
                     f"clusters (spread {c['spread']}), seeds m = {c['m']:,}, k = {c['k']}; generated in {r['generate_s']:.0f} s "
                     f"(not timed below)"),
            ("machine", f"{e['cpu']}, {e['cores']} cores, 1-min load average {e['loadavg_at_start'][0]:.2f} at the start, "
                        f"{e['loadavg_at_end'][0]:.2f} at the end (other jobs share the cores); "
                        f"faiss {e['faiss']}, numpy {e['numpy']}"),
            ("faiss threads", str(i.get("threads"))),
            ("wall seconds", f"{r['wall_s']:.1f}"),
            ("CPU seconds (all threads)", f"{r['cpu_s']:.1f}"),
            ("peak RSS (ru_maxrss)", f"{r['peak_rss_gb']:.2f} GiB = {r['rss_over_embeddings']:.2f} × the embeddings "
                                     f"(VmHWM {r['peak_vmhwm_gb']:.2f} GiB; {r['rss_after_imports_gb']:.2f} GiB after imports, "
                                     f"before any data; both count the memmap pages read, which are file-backed)"),
            ("method chosen by auto", f"{i.get('method')} {i.get('params')}"),
            (f"recall@{i.get('recall_k')} vs exact", f"{i.get('recall')} on {i.get('recall_sample')} sampled queries "
                                                     f"(target {i.get('target_recall')})"),
            ("nprobe: recall while widening", trace or "-"),
            ("independent check", f"{r['check']['samples']} other non-seeds scored from exact neighbours: "
                                  f"{r['check']['same_score_frac']:.3f} get the same score, Pearson {r['check']['pearson']:.5f}")]
    text = "# kNN extrapolation at scale\n\n| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    Path(path).write_text(text)
    print(f"wrote {path}")


# ---------------------------------------------------------------- methods

def methods(a) -> dict:
    from scoreextra.faiss_search import KNNIndex, recall_at_k
    m, load = a.m or max(a.k + 1, a.n // 10), os.getloadavg()
    g = np.random.default_rng(a.seed)
    centres = g.normal(0, 1, (a.clusters, a.d)).astype(np.float32)
    base, queries = clustered(m, centres, a.spread, g), clustered(a.n, centres, a.spread, g)
    print(f"data: {a.n:,} queries, {m:,} base, d={a.d}, {a.clusters} clusters", flush=True)
    runs = [("exact", {})] + [("ivf", {"nprobe": p}) for p in map(int, a.nprobe.split(","))] \
           + [("hnsw", {"ef_search": ef}) for ef in map(int, a.ef_search.split(","))]
    rows, exact_idx, built = [], None, {}
    for method, kw in runs:
        t0, c0 = time.perf_counter(), time.process_time()
        if method not in built: built[method] = (KNNIndex(base, method, seed=a.seed, threads=a.threads, **kw),
                                                 time.perf_counter() - t0, time.process_time() - c0)
        index, build_s, build_cpu = built[method]
        if method == "ivf": index.nprobe = index.index.nprobe = kw["nprobe"]
        if method == "hnsw": index.ef_search = kw["ef_search"]
        t1, c1 = time.perf_counter(), time.process_time()
        _, idx = index.search(queries, a.k)
        if method == "exact": exact_idx = idx
        rows.append({"method": method, "params": index.params, "build_s": build_s, "build_cpu_s": build_cpu,
                     "search_s": time.perf_counter() - t1, "search_cpu_s": time.process_time() - c1,
                     "recall_at_k": recall_at_k(idx, exact_idx)})
        print(f"  {method} {index.params}: done", flush=True)
    ex = rows[0]["build_cpu_s"] + rows[0]["search_cpu_s"]
    print(f"\n{'method':<7}{'params':<28}{'build CPU s':>12}{'search CPU s':>13}{'recall@' + str(a.k):>11}{'CPU vs exact':>13}")
    for r in rows:
        r["cpu_vs_exact"] = (r["build_cpu_s"] + r["search_cpu_s"]) / ex
        print(f"{r['method']:<7}{str(r['params']):<28}{r['build_cpu_s']:>12.1f}{r['search_cpu_s']:>13.1f}"
              f"{r['recall_at_k']:>11.4f}{r['cpu_vs_exact']:>13.2f}")
    return {"mode": "methods", "command": "python " + " ".join(map(shlex.quote, sys.argv)),
            "config": {k: v for k, v in vars(a).items() if k not in ("out", "md", "child", "generate", "tmp")} | {"m": m},
            "results": rows, "env": env(a.threads, load)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["extrapolate", "methods"], default="extrapolate")
    p.add_argument("--n", type=int, default=1_000_000, help="extrapolate: samples; methods: queries")
    p.add_argument("--d", type=int, default=512, help="dimension")
    p.add_argument("--m", type=int, default=None, help="methods: base vectors (default n/10)")
    p.add_argument("--seed-frac", type=float, default=0.1, help="extrapolate: fraction of samples that are seeds")
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--spread", type=float, default=0.5, help="noise std around centres drawn from N(0, 1)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--method", default="auto", help="extrapolate: search method")
    p.add_argument("--nprobe", default="1,2,4,8,16", help="methods: IVF nprobe values")
    p.add_argument("--ef-search", default="16,32,64", help="methods: HNSW ef_search values")
    p.add_argument("--threads", type=int, default=None, help="faiss threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tmp", default=None, help="extrapolate: folder for the temporary memmap (default: the system's)")
    p.add_argument("--out", default=None, help="JSON path (default bench/results/knn_scale_<mode>_n<n>_d<d>.json)")
    p.add_argument("--md", default=None, help="extrapolate: also write a markdown table here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--generate", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.generate: return make_data(a, Path(a.generate))
    if a.child: return child(a)
    res = extrapolate(a) if a.mode == "extrapolate" else methods(a)
    out = Path(a.out or RESULTS / f"knn_scale_{a.mode}_n{a.n}_d{a.d}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main()
