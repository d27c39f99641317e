"""Cost of graph extrapolation at Fashion-MNIST size: the paper's GCN before and after issue 10, and the
extrapolators that cost a few sparse products, against the cost of the subset training they serve.

Variants (`--variants`, each in a fresh subprocess so that `ru_maxrss` is its own):

| variant        | what                                                                                     |
|----------------|------------------------------------------------------------------------------------------|
| gcn_before     | paper GCN (512-256-1, 25 epochs, 128-root minibatches, fanout 10,10), `fast=False`: the  |
|                | implementation before issue 10 (every layer over the whole sampled subgraph, torch       |
|                | dropout, a full-graph prediction after every epoch)                                      |
| gcn_after      | the same model and schedule, `fast=True`: trimmed layers, PCG64-bit dropout masks,       |
|                | model selection on the validation rows only                                              |
| gcn_fullbatch  | the paper-size GCN trained full-batch (one step an epoch on all train seeds, 200 epochs) |
| gcn_cpu        | the CPU sweep's GCN (hidden 128-64, 10 epochs, minibatch), fast                          |
| gcn_steps      | `--steps` paper-size minibatch steps, before and after alternating on the same sampled   |
|                | subgraphs in one process: the before/after ratio least disturbed by other load           |
| knn            | the paper's kNN (Eq. 6, k=10)                                                            |
| propagate, sgc, cs | the graph extrapolators of 07_propagation with their defaults (graph built inside, counted)  |
| sign, mlp      | 07_sign: propagated features [X, ÂX, Â²X, Â³X] + an early-stopped MLP on the seeds;      |
|                | the same MLP without the graph                                                           |

The GCN variants are too slow to run to the end here (gcn_before: ~15 min of one core), so
they run `--probe-epochs` epochs and the total is **extrapolated**: graph + epochs × (train
seconds per epoch) + selection passes × (seconds per pass) + the final prediction. All GCN
variants share one exact kNN graph (k=10, symmetric, exp(−d)), built once here and timed
once. The other variants run to the end.

Clock: `--clock cpu` (default) times with the process's CPU time, which for a one-thread run
equals the wall time of an otherwise idle core and is what to compare on a shared machine;
`--clock wall` uses `time.perf_counter`. Run with `OMP_NUM_THREADS=1` to measure the
one-thread cost that `--subset-seconds` (default 146 s = 20 epochs × 7.3 s, 20 epochs of the
small CNN on a 12k Fashion-MNIST subset at one thread) refers to; the table divides every
total by it.

Data: random clustered data of Fashion-MNIST's training size (60,000 × 128, 10 Gaussian
clusters labelled by cluster; score = distance to the own centre + noise; 20% seeds), or
the arrays of a run folder (`--embeddings E.npy --labels y.npy --scores s.npy --seed-idx
i.npy`; `--scores` holds the m seed scores or all n). Correlations on synthetic data say
nothing about quality (see bench/extrapolators_fashion_mnist.md); those of probe runs even
less (a few epochs).

Quality on real runs (`--runs DIR`): for every finished `DIR/score_subset/<hash>` whose score
has a finished `DIR/ground_truth/<hash>` (subset seed s is compared with ground-truth seed
1000 + s mod 2 when that exists, as in fashion_mnist_evidence.yaml, else the lowest), every
variant is fitted to the end (no probe; default variants knn, gcn_cpu, propagate, sgc, cs)
and scored by `scoreextra.metrics.extrapolation_correlations` on the non-seeds; `--md`
writes the table (mean ± std over subset seeds) with the command line. Run folders are only
read.

    OMP_NUM_THREADS=1 nice .venv/bin/python bench/gnn_cost.py [--n 60000 --probe-epochs 1 --steps 30 --subset-seconds 146]
    OMP_NUM_THREADS=1 nice .venv/bin/python bench/gnn_cost.py --runs runs/fm_evidence --md bench/extrapolators_fashion_mnist.md
"""
import argparse, json, platform, resource, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

GCN = {  # variant -> GNNExtrapolator keyword arguments (k=10 throughout)
    "gcn_before": dict(mode="minibatch", fast=False),
    "gcn_after": dict(mode="minibatch"),
    "gcn_fullbatch": dict(mode="fullbatch"),
    "gcn_cpu": dict(mode="minibatch", hidden=(128, 64), epochs=10),
}
OTHERS = ("knn", "propagate", "sgc", "cs", "sign", "mlp")
STEPS = "gcn_steps"


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


def run_sets(root):
    "[(label, subset folder, ground-truth folder, subset config)] of the finished subset runs with a ground truth."
    done = lambda d: json.loads((d / "meta.json").read_text()).get("status") == "done" if (d / "meta.json").exists() else False
    cfg = lambda d: json.loads((d / "config.json").read_text())["config"]
    gts = {}
    for d in sorted(Path(root, "ground_truth").glob("*/")):
        if done(d) and (d / "scores.npy").exists(): gts.setdefault(cfg(d)["score"], {})[cfg(d)["seed"]] = d
    out = []
    for d in sorted(Path(root, "score_subset").glob("*/")):
        if not (done(d) and (d / "embeddings.npy").exists()): continue
        c = cfg(d)
        if c["score"] not in gts: continue
        g = gts[c["score"]]
        gt = g.get(1000 + c["seed"] % 2, g[min(g)])
        label = f"{c['score']} seed_size={c['seed_size']} {c.get('schedule', 'paper')} seed={c['seed']}"
        out.append((label, d, gt, c))
    return out


def load_run(folder, gt_folder):
    "(embeddings, labels, seed_idx, seed_scores, ground truth, description) of a subset run folder."
    from scoreextra.data import load_dataset
    c = json.loads((Path(folder) / "config.json").read_text())["config"]
    emb = np.load(Path(folder) / "embeddings.npy", mmap_mode="r")
    idx, s = np.load(Path(folder) / "seed_idx.npy").astype(np.int64), np.load(Path(folder) / "seed_scores.npy")
    lab = np.asarray(load_dataset(c["dataset"]).y)
    return emb, lab, idx, s, np.load(Path(gt_folder) / "scores.npy"), f"run {folder}"


def passes(epochs, every):
    "Number of model-selection passes of a fit: every `every` epochs and after the last."
    return sum((e + 1) % every == 0 or e == epochs - 1 for e in range(epochs))


def gcn_worker(a, name, emb, lab, idx, s, graph):
    "Probe fit of a GCN variant; seconds extrapolated to its full number of epochs."
    from scoreextra.gnn import GNNExtrapolator
    target = GNNExtrapolator(10, **GCN[name])
    e = target.epochs if a.run_folder else min(a.probe_epochs, target.epochs)     # real runs: the whole fit
    probe = GNNExtrapolator(10, **{**GCN[name], "epochs": e, "eval_every": 1 if e < target.epochs else None, "seed": 0})
    probe.fit(emb, lab, idx, s, graph=graph)
    sec, run = probe.seconds, passes(e, probe.eval_every)
    graph_s = sec["graph"] if graph is None else a.graph_seconds
    est = (graph_s + target.epochs * sec["train"] / e
           + passes(target.epochs, target.eval_every) * sec["select"] / run + sec["predict"])
    return probe, dict(epochs_run=e, epochs=target.epochs, train_s_per_epoch=sec["train"] / e,
                       select_s_per_pass=sec["select"] / run, predict_s=sec["predict"],
                       graph_s=graph_s, total_s=est, extrapolated=e < target.epochs)


def step_worker(a, emb, lab, idx, s, graph):
    "Median seconds of paper-size training steps, before and after, alternating on the same batches and subgraphs."
    import torch, torch.nn.functional as F
    from scoreextra.gnn import GCN, NeighborSampler, gcn_adjacency_from_edges, node_features
    x, y = torch.from_numpy(node_features(emb, lab)), torch.zeros(len(emb))
    y[torch.from_numpy(idx)] = torch.from_numpy(np.asarray(s)).float()
    torch.manual_seed(0)
    models = {"after": GCN(x.shape[1], mask_rng=np.random.default_rng(3)), "before": GCN(x.shape[1])}
    opts = {k: torch.optim.Adam(m.parameters(), 1e-3) for k, m in models.items()}
    sampler, r, ts, sizes = NeighborSampler(graph, (10, 10), seed=1), np.random.default_rng(0), {"after": [], "before": []}, []
    for _ in range(a.steps):
        b = r.choice(idx, 128, replace=False)
        t0 = time.perf_counter()
        nodes, t, so, w = sampler.sample(b)              # the sampler is the same code in both: timed once, added to both
        t_sample = time.perf_counter() - t0
        sizes.append(len(nodes))
        for k, m in models.items():
            t0 = time.perf_counter()
            sub = gcn_adjacency_from_edges(*(torch.from_numpy(v) for v in (t, so, w)), len(nodes))
            xs = x[torch.from_numpy(nodes)]
            out = m(xs, sub, rows=torch.arange(len(b))) if k == "after" else m.forward_reference(xs, sub)[:len(b)]
            loss = F.mse_loss(out, y[torch.from_numpy(b)])
            opts[k].zero_grad(); loss.backward(); opts[k].step()
            ts[k].append(time.perf_counter() - t0 + t_sample)
    med = {k: float(np.median(v)) for k, v in ts.items()}
    return dict(step_before_s=med["before"], step_after_s=med["after"], steps=a.steps, nodes_median=float(np.median(sizes)))


def other_worker(a, name, emb, lab, idx, s):
    "A cheap extrapolator, run to the end (its own graph included)."
    from scoreextra.knn import EXTRAPOLATORS
    import scoreextra.gnn, scoreextra.propagation, scoreextra.sign  # noqa: F401 -- register gnn, propagate, sgc, cs, sign and mlp
    t0 = time.perf_counter()
    ex = EXTRAPOLATORS.get(name)(10, **({"seed": 0} if name != "knn" else {})).fit(emb, lab, idx, s)
    ex.predict()
    total = time.perf_counter() - t0
    sec = getattr(ex, "seconds", {})
    return ex, dict(epochs_run=None, epochs=None, graph_s=sec.get("graph", 0.0), total_s=total, extrapolated=False,
                    chosen=repr(ex))


def worker(a):
    "One variant in this process; prints one JSON line."
    if a.clock == "cpu": time.perf_counter = time.process_time   # every `seconds` below becomes CPU time
    import torch
    from scipy.stats import spearmanr
    from scoreextra.core import peak_memory_mb
    from scoreextra.csrgraph import CSRGraph
    from scoreextra.metrics import extrapolation_correlations
    emb, lab, idx, s, full, desc = load_run(a.run_folder, a.gt_folder) if a.run_folder else load(a)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    w0 = time.time()
    if a.worker == STEPS:
        g = np.load(a.graph)
        row = step_worker(a, emb, lab, idx, s, CSRGraph(g["indptr"], g["indices"], g["weights"], int(g["n"])))
        row.update(variant=STEPS, data=desc, m=len(idx), clock=a.clock, torch_threads=torch.get_num_threads())
        print("RESULT " + json.dumps(row), flush=True)
        return
    if a.worker in GCN:
        graph = None
        if a.graph and Path(a.graph).exists():
            g = np.load(a.graph)
            graph = CSRGraph(g["indptr"], g["indices"], g["weights"], int(g["n"]))
        ex, row = gcn_worker(a, a.worker, emb, lab, idx, s, graph)
    else: ex, row = other_worker(a, a.worker, emb, lab, idx, s)
    pred = ex.predict()
    rest = np.setdiff1d(np.arange(len(emb)), idx)
    row.update(variant=a.worker, data=desc, n=len(emb), dim=int(emb.shape[1]), m=len(idx), clock=a.clock,
               wall_s=time.time() - w0, rss_after_data_mb=round(rss0, 1), **peak_memory_mb(),
               torch_threads=torch.get_num_threads(),
               pearson_rest=None if full is None else float(np.corrcoef(pred[rest], full[rest])[0, 1]),
               spearman_rest=None if full is None else float(spearmanr(pred[rest], full[rest])[0]))
    if full is not None: row.update(extrapolation_correlations(pred, full, idx, s))
    print("RESULT " + json.dumps(row), flush=True)


def build_graph(a, path):
    "The GCN variants' shared exact kNN graph, saved to `path`; its seconds on the chosen clock."
    from scoreextra.csrgraph import knn_graph
    emb = load(a)[0]
    clock = time.process_time if a.clock == "cpu" else time.perf_counter
    t0 = clock()
    g = knn_graph(emb, 10)
    sec = clock() - t0
    np.savez(path, indptr=g.indptr, indices=g.indices, weights=g.weights, n=g.n)
    return sec


def report(rows, a):
    "Fixed-width table, and the before/after summary."
    steps = [r for r in rows if r["variant"] == STEPS]
    rows = [r for r in rows if r["variant"] != STEPS]
    print(f"\n{rows[0]['data']}; m={rows[0]['m']} seeds, k=10, clock {a.clock}, {rows[0]['torch_threads']} torch threads")
    print(f"{'variant':>14} {'epochs':>9} {'graph s':>8} {'train s/ep':>10} {'select s':>9} {'predict s':>9} "
          f"{'total s':>8} {'/ subset':>8} {'peak MB':>8} {'pearson':>8} {'spearman':>8}")
    f = lambda v, p=2: "-" if v is None else f"{v:.{p}f}"
    for r in rows:
        ep = "-" if r["epochs"] is None else f"{r['epochs_run']}/{r['epochs']}"
        print(f"{r['variant']:>14} {ep:>9} {r['graph_s']:8.1f} {f(r.get('train_s_per_epoch')):>10} "
              f"{f(r.get('select_s_per_pass')):>9} {f(r.get('predict_s')):>9} {r['total_s']:8.1f}"
              f"{'*' if r['extrapolated'] else ' '}{r['total_s'] / a.subset_seconds:7.3f} {r['peak_rss_mb']:8.0f} "
              f"{f(r['pearson_rest'], 3):>8} {f(r['spearman_rest'], 3):>8}")
    print(f"* extrapolated from the epochs run; '/ subset' = total / {a.subset_seconds:g} s of subset training")
    by = {r["variant"]: r for r in rows}
    if "gcn_before" in by and "gcn_after" in by:
        b, af = by["gcn_before"]["total_s"], by["gcn_after"]["total_s"]
        print(f"paper-size GCN: before {b:.0f} s ({b / a.subset_seconds:.2f}× subset training), "
              f"after {af:.0f} s ({af / a.subset_seconds:.2f}×), {b / af:.1f}× faster")
    for r in steps:
        print(f"paper-size training step, interleaved ({r['steps']} steps, median {r['nodes_median']:.0f} sampled nodes): "
              f"before {1000 * r['step_before_s']:.0f} ms, after {1000 * r['step_after_s']:.0f} ms, "
              f"{r['step_before_s'] / r['step_after_s']:.1f}× faster")


def markdown(rows, a, argv):
    "Mean ± std over subset seeds per (score, seed size, schedule, variant), then every run; the command line."
    import pandas as pd
    df = pd.DataFrame(rows)
    df["group"] = df["label"].str.replace(r" seed=\d+$", "", regex=True)
    ms = lambda x: f"{x.mean():.3f} ± {x.std(ddof=0):.3f}" if len(x) > 1 else f"{x.mean():.3f}"
    t = df.groupby(["group", "variant"], sort=False).agg(
        runs=("pearson", "size"), pearson=("pearson", ms), spearman=("spearman", ms),
        ceiling_pearson=("ceiling_pearson", ms), seconds=("total_s", lambda x: f"{x.mean():.1f}"),
        per_subset_training=("total_s", lambda x: f"{x.mean() / a.subset_seconds:.3f}")).reset_index()
    lines = ["| runs | variant | n | Pearson D_r | Spearman D_r | ceiling ρ(S_s, S) | seconds | / subset training |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.group} | {r.variant} | {r.runs} | {r.pearson} | {r.spearman} | {r.ceiling_pearson} | {r.seconds} | "
              f"{r.per_subset_training} |" for r in t.itertuples()]
    lines += ["", "Every run:", "", "| run | variant | Pearson | Spearman | seconds | chosen |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['variant']} | {r['pearson']:.3f} | {r['spearman']:.3f} | {r['total_s']:.1f} | "
              f"{r.get('chosen') or ''} |" for r in rows]
    cmd = "OMP_NUM_THREADS=1 nice .venv/bin/python bench/gnn_cost.py " + " ".join(argv)
    return "\n".join(lines), cmd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embeddings"); ap.add_argument("--labels"); ap.add_argument("--scores"); ap.add_argument("--seed-idx")
    ap.add_argument("--n", type=int, default=60_000, help="synthetic data size (Fashion-MNIST train: 60,000)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--seed-frac", type=float, default=0.2)
    ap.add_argument("--variants", nargs="+", choices=[*GCN, STEPS, *OTHERS],
                    help="default: all (synthetic data), knn gcn_cpu propagate sgc cs (--runs)")
    ap.add_argument("--runs", help="a runs root with ground_truth/ and score_subset/ folders: quality on real runs")
    ap.add_argument("--md", help="with --runs: write the table to this markdown file (between the RESULTS markers)")
    ap.add_argument("--probe-epochs", type=int, default=1, help="epochs each GCN variant runs before extrapolating")
    ap.add_argument("--steps", type=int, default=30, help="gcn_steps: interleaved training steps of each")
    ap.add_argument("--subset-seconds", type=float, default=146.0,
                    help="seconds of the subset training the totals are divided by (default: 20 epochs × 7.3 s)")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gnn_cost.json"))
    ap.add_argument("--worker", help=argparse.SUPPRESS); ap.add_argument("--graph", help=argparse.SUPPRESS)
    ap.add_argument("--graph-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--run-folder", help=argparse.SUPPRESS); ap.add_argument("--gt-folder", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.embeddings and not (a.seed_idx and a.scores): ap.error("--embeddings needs --seed-idx and --scores")
    if a.worker: return worker(a)
    args = [x for x in (argv if argv is not None else sys.argv[1:])]
    if a.runs: return main_runs(a, args)
    a.variants = a.variants or [*GCN, STEPS, *OTHERS]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        gpath, gsec = Path(tmp) / "graph.npz", 0.0
        if any(v in GCN or v == STEPS for v in a.variants):
            gsec = build_graph(a, gpath)
            print(f"exact kNN graph for the GCN variants: {gsec:.1f} s", flush=True)
        for v in a.variants:
            cmd = [sys.executable, __file__, "--worker", v, "--graph", str(gpath), "--graph-seconds", str(gsec), *args]
            p = subprocess.run(cmd, capture_output=True, text=True)
            line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            if p.returncode or not line: sys.exit(f"{v} run failed:\n{p.stderr[-3000:]}")
            rows.append(json.loads(line[-1][7:]))
            r = rows[-1]
            print(f"{v} done" + ("" if v == STEPS else f": {r['total_s']:.1f} s{' (extrapolated)' if r['extrapolated'] else ''}"), flush=True)
    report(rows, a)
    res = {"rows": rows, "subset_seconds": a.subset_seconds, "machine": platform.processor() or platform.machine(),
           "python": platform.python_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    from scoreextra.core import save_json
    save_json(a.out, res)
    print(f"wrote {a.out}")


def main_runs(a, args):
    "Quality and seconds of each variant on every finished subset run under `a.runs`."
    variants, rows = a.variants or ["knn", "gcn_cpu", "propagate", "sgc", "cs"], []
    sets = run_sets(a.runs)
    if not sets: sys.exit(f"no finished score_subset run with a finished ground truth under {a.runs}")
    for label, folder, gt, _ in sets:
        for v in variants:
            cmd = [sys.executable, __file__, "--worker", v, "--run-folder", str(folder), "--gt-folder", str(gt), *args]
            p = subprocess.run(cmd, capture_output=True, text=True)
            line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            if p.returncode or not line: sys.exit(f"{v} on {folder} failed:\n{p.stderr[-3000:]}")
            rows.append({**json.loads(line[-1][7:]), "label": label, "folder": str(folder), "gt": str(gt)})
            r = rows[-1]
            print(f"{label:40s} {v:>10} pearson {r['pearson']:.3f} spearman {r['spearman']:.3f} {r['total_s']:6.1f} s", flush=True)
    table, cmd = markdown(rows, a, args)
    print("\n" + table + "\n\n" + cmd)
    if a.md:
        p = Path(a.md)
        text = p.read_text() if p.exists() else "<!-- RESULTS -->\n<!-- /RESULTS -->\n"
        head, rest = text.split("<!-- RESULTS -->", 1)
        tail = rest.split("<!-- /RESULTS -->", 1)[1]
        p.write_text(f"{head}<!-- RESULTS -->\nCommand: `{cmd}` ({time.strftime('%Y-%m-%d')}, clock {a.clock})\n\n"
                     f"{table}\n<!-- /RESULTS -->{tail}")
        print(f"wrote {p}")
    from scoreextra.core import save_json
    save_json(Path(a.out).with_name("extrapolators_runs.json"), {"rows": rows, "subset_seconds": a.subset_seconds})


if __name__ == "__main__":
    main()
