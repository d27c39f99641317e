"""Pruned accuracy of candidate extrapolated scores on a validation split carved from the TRAINING data (issue 26).

The protocol that chooses extrapolators and their settings without the test set: 10,000 training images
(stratified, seed 0) are carved out as the validation split; each candidate's kept set is the top share of its
scores among the other 50,000 (the paper's exact top-k); the Fashion-MNIST final recipe (convnet, flip only,
Adam one-cycle 4e-3, 10 epochs; `recipes.final_training`) is trained on it and measured on the carved split.
Random pruning of the same 50,000 at the same rate and seed is the reference, and gains are paired by seed.
The scoring subsets saw some carved images (they are training images), the final models never do.

    OMP_NUM_THREADS=1 python bench/extrapolator_val.py --rates 0.9 --sizes 0.1 --seeds 0 1 2 [--only NAME ...] [--limit N]
writes bench/extrapolator_val_fashion_mnist.{csv,md}; finished rows are kept (it resumes). The candidates are
those of bench/extrapolator_screen.py (their scores cached under $SCOREEXTRA_CACHE, default /tmp/scoreextra_cache).
"""
import argparse, os, time, sys
from pathlib import Path
import numpy as np, pandas as pd, torch
sys.path.insert(0, str(Path(__file__).parent))
import extrapolator_screen as screen
from scoreextra.core import seed_everything
from scoreextra.runfolder import RunFolder
from scoreextra.data import load_dataset, stratified_subsample
from scoreextra.models import get_model
from scoreextra.prune import select
from scoreextra.recipes import final_training
from scoreextra.supervised import subset_embeddings
from scoreextra.train import fit, evaluate
from scoreextra.reporting import verdict

OUT = Path("bench/extrapolator_val_fashion_mnist")
CACHE = Path(os.environ.get("SCOREEXTRA_CACHE", "/tmp/scoreextra_cache"))
N_VAL = 10_000
torch.set_num_threads(1)

def scores_for(size, seed, name, cands, labels):
    "The candidate's (n,) scores for the DU subset (size, seed), cached."
    f = CACHE/f"du_{size}_{seed}_{name.replace(' ', '_').replace('=', '')}.npy"
    if f.exists(): return np.load(f)
    (path, cfg), = screen.find("score_subset", score="du", seed_size=size, seed=seed, schedule="steps_per_epoch")
    if name == "random": return None
    if name == "gnn paper-size (committed)":
        hits = [p for p, c in screen.find("extrapolate", extrapolator="gnn") if c["subset"] == cfg and c.get("params", {}).get("hidden") == [512, 256]]
        s = np.load(hits[0]/"scores.npy")
    else:
        emb = np.ascontiguousarray(subset_embeddings(RunFolder(screen.ROOT, "score_subset", cfg, create=False)), np.float32)
        s = np.asarray(cands[name](emb, labels, np.load(path/"seed_idx.npy"), np.load(path/"seed_scores.npy")), np.float64)
    CACHE.mkdir(parents=True, exist_ok=True); np.save(f, s)
    return s

def mixed(kept, scores, rest, f, seed):
    "As many as `kept`: its best-scored (1 − f) share, and the remaining f drawn at random from the rest of `rest`."
    n_rand = int(round(f * len(kept)))
    top = kept[np.argsort(-scores[kept], kind="stable")[:len(kept) - n_rand]]
    others = np.setdiff1d(rest, top)
    return np.concatenate([top, np.random.default_rng(seed + 7).choice(others, n_rand, replace=False)])

def shrunk(s, size, seed, lam):
    "Non-seed scores pulled towards the seeds' mean score by the factor `lam` (1: unchanged; 0: every seed ranked by its measured score first)."
    (path, _), = screen.find("score_subset", score="du", seed_size=size, seed=seed, schedule="steps_per_epoch")
    idx = np.load(path/"seed_idx.npy")
    rest = np.ones(len(s), bool); rest[idx] = False
    out, mu = s.copy(), s[idx].mean()
    out[rest] = mu + lam * (s[rest] - mu)
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", type=float, nargs="+", default=[0.9])
    ap.add_argument("--sizes", type=float, nargs="+", default=[0.1])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="+")
    ap.add_argument("--mix", type=float, nargs="*", default=[], help="also each candidate with this share of its kept set drawn at random")
    ap.add_argument("--shrink", type=float, nargs="*", default=[], help="also each candidate with its non-seed scores shrunk by this factor")
    ap.add_argument("--limit", type=int, default=10**9, help="final trainings at most, then stop (rerun to continue)")
    a = ap.parse_args()
    ds = load_dataset("fashion_mnist")
    labels = np.asarray(ds.y)
    val = stratified_subsample(labels, N_VAL, seed=0)
    rest = np.setdiff1d(np.arange(len(ds)), val)
    ft = final_training("fashion_mnist")
    cands = screen.candidates()
    names = ["random"] + [n for n in list(cands) + ["gnn paper-size (committed)"] if not a.only or n in a.only]
    names += [f"{n} | shrink={f}" for n in names[1:] for f in a.shrink] + [f"{n} | mix={f}" for n in names[1:] for f in a.mix]
    csv = OUT.with_suffix(".csv")
    rows = pd.read_csv(csv).to_dict("records") if csv.exists() else []
    have = {(r["prune_rate"], r["seed_size"], r["seed"], r["extrapolator"]) for r in rows}
    done = 0
    for rate in a.rates:
        for seed in a.seeds:
            for size in a.sizes:
                for name in names:
                    key = (rate, 0.0 if name == "random" else size, seed, name)
                    if key in have or done >= a.limit: continue
                    if name == "gnn paper-size (committed)" and size != 0.2: continue
                    base, _, mix = name.partition(" | mix=")
                    base, _, shrink = base.partition(" | shrink=")
                    s = scores_for(size, seed, base, cands, labels)
                    if shrink: s = shrunk(s, size, seed, float(shrink))
                    kept = rest[select(np.zeros(len(rest)) if s is None else s[rest], 1 - rate, labels=labels[rest],
                                       strategy="random" if s is None else "top", min_class_share=0.0, seed=seed, warn=False)]
                    if mix: kept = mixed(kept, s, rest, float(mix), seed)
                    t0 = time.process_time()
                    seed_everything(seed)
                    model = get_model(ft["model"], ds.num_classes, ds.in_shape, **ft["model_kw"])
                    tr = fit(model, ds, kept, epochs=ft["epochs"], batch_size=ft["batch_size"], seed=seed, verbose=False, progress=False, **ft["recipe"])
                    acc = evaluate(tr.model, ds, val)
                    rows.append(dict(prune_rate=rate, seed_size=key[1], seed=seed, extrapolator=name, val_acc=acc,
                                     n_kept=len(kept), cpu_s=round(time.process_time() - t0, 1), threads=torch.get_num_threads()))
                    have.add(key); done += 1
                    print(rows[-1], flush=True)
                    pd.DataFrame(rows).to_csv(csv, index=False)
    write_md(pd.DataFrame(rows))

def write_md(df):
    "Gain over random pruning on the carved validation split, paired by seed, with the verdict rule of the reports."
    rnd = df[df.extrapolator == "random"].set_index(["prune_rate", "seed"]).val_acc
    out = []
    for (rate, size, name), g in df[df.extrapolator != "random"].groupby(["prune_rate", "seed_size", "extrapolator"]):
        gains = [100 * (r.val_acc - rnd.get((rate, r.seed), np.nan)) for r in g.itertuples()]
        gains = [x for x in gains if np.isfinite(x)]
        out.append(dict(prune_rate=rate, subset=f"{size:.0%}", extrapolator=name, n=len(gains), val_acc=g.val_acc.mean(),
                        gain_pt=np.mean(gains) if gains else np.nan, gain_sd=np.std(gains, ddof=1) if len(gains) > 1 else np.nan,
                        verdict=verdict(gains) if gains else ""))
    t = pd.DataFrame(out).sort_values(["prune_rate", "subset", "gain_pt"], ascending=[True, True, False])
    OUT.with_suffix(".md").write_text(
        "# Candidate extrapolators, pruned accuracy on a validation split carved from the training data\n\n"
        "bench/extrapolator_val.py: 10,000 training images (stratified, seed 0) carved out; the top share of each DU "
        "score among the other 50,000 trained with the Fashion-MNIST final recipe (10 epochs) and measured on the "
        "carved split; gain over random pruning of the same 50,000 in accuracy points, paired by seed (subset seed = "
        "training seed); verdict as in the reports (beats: mean > std of the per-seed gains; loses: mean < −std). "
        "No test accuracy is used. One OpenMP thread per job.\n\n" + t.to_markdown(index=False, floatfmt=".3f") + "\n")

if __name__ == "__main__": main()
