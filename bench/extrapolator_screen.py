"""Screen extrapolators on the Fashion-MNIST evidence's DU subsets (issue 26), from committed run folders.

For every DU subset of runs/fm_evidence (steps_per_epoch schedule, 10% and 20%, seeds 0-2) the subset model's
embeddings are recomputed from its model.pt, each candidate extrapolator is fitted on the seed scores, and we
record: Pearson / Spearman with the full-data ground truth on D_r (the non-seeds; GT seed 1000 + s mod 2), the
CPU seconds of fit + predict (one thread), and what its top-10% kept set (90% pruned) holds: overlap with the
ground truth's top 10%, mean GT-hardness percentile, share from the GT's hardest 5%, largest class / smallest class
relative to random.

Nothing here looks at test accuracy; the pruned-accuracy check of the candidates is bench/extrapolator_val.py.

    OMP_NUM_THREADS=1 python bench/extrapolator_screen.py [--sizes 0.1 0.2] [--seeds 0 1 2] [--only NAME ...]
writes bench/extrapolator_screen_fashion_mnist.{csv,md}; rows already in the csv are kept (it resumes).
"""
import argparse, json, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from scipy.stats import rankdata
from scoreextra.runfolder import RunFolder
from scoreextra.supervised import subset_embeddings
from scoreextra.knn import KNNExtrapolator
from scoreextra.knn import EXTRAPOLATORS
import scoreextra.gnn, scoreextra.propagation, scoreextra.sign  # noqa: F401 -- register gnn, propagate, sgc, cs, sign, mlp
from scoreextra.data import load_dataset

ROOT, OUT = Path("runs/fm_evidence"), Path("bench/extrapolator_screen_fashion_mnist")
torch.set_num_threads(1)

def find(stage, **want):
    "The run folders of `stage` whose config has the wanted values."
    out = []
    for f in sorted((ROOT/stage).glob("*/config.json")):
        c = json.loads(f.read_text())["config"]
        if all(c.get(k) == v for k, v in want.items()): out.append((f.parent, c))
    return out

def candidates():
    "name -> function(emb, labels, seed_idx, seed_scores) -> (n,) scores. Built lazily so that --only is cheap."
    def ext(name, **kw):
        return lambda e, y, i, s: EXTRAPOLATORS.get(name)(**kw).fit(e, y, i, s).predict()
    def knn(k): return lambda e, y, i, s: KNNExtrapolator(k=k, method="exact").fit(e, y, i, s).predict()
    c = {f"knn k={k}": knn(k) for k in (10, 25, 50, 100)}
    c["knn_label k=10"] = ext("knn_label", k=10)
    c["sgc"] = ext("sgc", k=10)
    for name in ("mlp", "sign"):
        if name in EXTRAPOLATORS: c[name] = ext(name, k=10)
    return c

def kept_stats(pred, gt, labels, keep):
    "What the top `keep` of `pred` holds, measured with the ground truth."
    top = np.argsort(-pred, kind="stable")[:keep]
    gt_top = set(np.argsort(-gt, kind="stable")[:keep].tolist())
    pct = rankdata(gt) / len(gt)
    counts = np.bincount(labels[top], minlength=labels.max() + 1) / (np.bincount(labels) * keep / len(labels))
    return dict(overlap_gt_top=len(gt_top.intersection(top.tolist())) / keep, hardness_pct=pct[top].mean(),
                from_hardest_5pct=(pct[top] > 0.95).mean(), largest_class=counts.max(), smallest_class=counts.min())

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="+", default=[0.1, 0.2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="+")
    a = ap.parse_args()
    labels = np.asarray(load_dataset("fashion_mnist").y)
    gts = {c["seed"]: np.load(p/"scores.npy") for p, c in find("ground_truth", score="du")}
    done = pd.read_csv(OUT.with_suffix(".csv")) if OUT.with_suffix(".csv").exists() else pd.DataFrame()
    rows = done.to_dict("records")
    have = {(r["seed_size"], r["seed"], r["extrapolator"]) for r in rows}
    cands = candidates()
    for size in a.sizes:
        for seed in a.seeds:
            (path, cfg), = find("score_subset", score="du", seed_size=size, seed=seed, schedule="steps_per_epoch")
            folder = RunFolder(ROOT, "score_subset", cfg, create=False)
            emb = np.ascontiguousarray(subset_embeddings(folder), np.float32)
            idx, s = np.load(path/"seed_idx.npy"), np.load(path/"seed_scores.npy")
            gt = gts[1000 + seed % 2]
            rest = np.setdiff1d(np.arange(len(gt)), idx)
            todo = {n: f for n, f in cands.items() if (size, seed, n) not in have and (not a.only or n in a.only)}
            # the committed paper-size GCN scores of the evidence (20% only), read, not refitted
            for p, c in find("extrapolate", extrapolator="gnn"):
                if c["subset"] == cfg and c.get("params", {}).get("hidden") == [512, 256] and (size, seed, "gnn paper-size (committed)") not in have:
                    todo["gnn paper-size (committed)"] = lambda *_ , p=p: np.load(p/"scores.npy")
            for name, f in todo.items():
                t0 = time.process_time()
                pred = np.asarray(f(emb, labels, idx, s), np.float64)
                sec = time.process_time() - t0
                r = dict(seed_size=size, seed=seed, extrapolator=name, cpu_s=round(sec, 2),
                         pearson=np.corrcoef(pred[rest], gt[rest])[0, 1],
                         spearman=np.corrcoef(rankdata(pred[rest]), rankdata(gt[rest]))[0, 1],
                         **kept_stats(pred, gt, labels, len(gt) // 10), threads=torch.get_num_threads())
                rows.append(r); print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
                pd.DataFrame(rows).to_csv(OUT.with_suffix(".csv"), index=False)
    df = pd.DataFrame(rows)
    g = df.groupby(["seed_size", "extrapolator"]).agg(
        n=("seed", "size"), pearson=("pearson", "mean"), pearson_sd=("pearson", "std"), spearman=("spearman", "mean"),
        cpu_s=("cpu_s", "mean"), overlap_gt_top=("overlap_gt_top", "mean"), hardness_pct=("hardness_pct", "mean"),
        from_hardest_5pct=("from_hardest_5pct", "mean"), largest_class=("largest_class", "mean"),
        smallest_class=("smallest_class", "mean")).reset_index()
    OUT.with_suffix(".md").write_text(
        "# Extrapolators on the Fashion-MNIST DU subsets (bench/extrapolator_screen.py; mean over subset seeds)\n\n"
        "Pearson/Spearman with the full-data DU on D_r; cpu_s: fit + predict, process CPU seconds, one thread; "
        "kept-set columns: the top 10% (90% pruned) measured with the ground truth (class ratios relative to random "
        "pruning). No test accuracy is used here.\n\n" + g.to_markdown(index=False, floatfmt=".3f") + "\n")

if __name__ == "__main__": main()
