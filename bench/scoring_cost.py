"""The scoring cost of extrapolated DU against the full-data DU run, measured in one process on CPU time.

Issue 26 asks for extrapolated scoring at <= 0.25 of the full-data scoring run. The evidence report's cost.csv takes
wall-clock seconds of runs made under different loads (read as +-2x); this measures the same work in one run, on
process CPU time, with the evidence's recipes: DU recorded while training the `cnn` (Adam 1e-3, batch 256) on all
60,000 Fashion-MNIST images, against the subset run (`steps_per_epoch`: the same epochs, batch 256 x f, so as many
optimiser steps per epoch on f of the samples) + embedding every image with the subset model + kNN (k=10) extrapolation
with the seeds-first merge. Trials alternate the order (full first, then subsets first). Each training runs `--epochs`
epochs (window 2: the recorders' per-batch work does not depend on the window) and the 20-epoch run of the evidence is
projected as 20 x the per-epoch CPU seconds (+ the embedding and kNN, once). Writes bench/scoring_cost_cpu.md.

    OMP_NUM_THREADS=1 python bench/scoring_cost.py [--epochs 3 --trials 2 --fracs 0.2 0.15 0.1]
"""
import argparse, os, platform, time
from pathlib import Path

import numpy as np
import torch

from scoreextra.data import load_dataset
from scoreextra.knn import KNNExtrapolator, merge
from scoreextra.models import get_model
from scoreextra.sampling import sample_subset
from scoreextra.subset_scoring import score_subset
from scoreextra.supervised import subset_schedule
from scoreextra.train import embed_all

MD = Path(__file__).parent / "scoring_cost_cpu.md"


def cpu(f):
    t = time.process_time(); out = f(); return time.process_time() - t, out


def full_epochs(ds, epochs):
    net = get_model("cnn", ds.num_classes, ds.in_shape, seed=1000)
    return cpu(lambda: score_subset(ds, np.arange(len(ds)), "du", model=net, epochs=epochs, batch_size=256, seed=1000, window=2))[0]


def subset_chain(ds, frac, epochs):
    idx = sample_subset(len(ds), frac, "random", seed=0)
    ep, bs = subset_schedule("steps_per_epoch", epochs, 256, len(idx) / len(ds))
    net = get_model("cnn", ds.num_classes, ds.in_shape, seed=0)
    t_train, (s, net, _) = cpu(lambda: score_subset(ds, idx, "du", model=net, epochs=ep, batch_size=bs, seed=0, window=2))
    t_emb, emb = cpu(lambda: embed_all(net, ds))
    t_knn, _ = cpu(lambda: merge(idx, s, KNNExtrapolator(10).fit(emb, None, idx, s).predict(), how="shrink"))
    return dict(train=t_train, embed=t_emb, knn=t_knn, batch=bs)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3); p.add_argument("--trials", type=int, default=2)
    p.add_argument("--fracs", type=float, nargs="+", default=[0.2, 0.15, 0.1]); p.add_argument("--run-epochs", type=int, default=20)
    a = p.parse_args()
    ds = load_dataset("fashion_mnist")
    full, subs = [], {f: [] for f in a.fracs}
    for t in range(a.trials):
        order = ["full", *a.fracs] if t % 2 == 0 else [*a.fracs, "full"]
        for what in order:
            if what == "full": full.append(full_epochs(ds, a.epochs) / a.epochs)
            else: subs[what].append(subset_chain(ds, what, a.epochs))
            print(what, full[-1] if what == "full" else subs[what][-1], flush=True)
    E, f_ep = a.run_epochs, float(np.median(full))
    rows = []
    for f, rs in subs.items():
        tr, em, kn = (float(np.median([r[k] for r in rs])) for k in ("train", "embed", "knn"))
        sub_ep = tr / a.epochs
        rows.append(f"| {f:.0%} | {rs[0]['batch']} | {sub_ep:.1f} | {sub_ep / f_ep:.3f} | {em:.1f} | {kn:.1f} | "
                    f"{(E * sub_ep + em + kn) / (E * f_ep):.3f} |")
    text = (f"# Scoring cost of extrapolated DU, one process, CPU time\n\n`bench/scoring_cost.py` (docstring: what and why). "
            f"Fashion-MNIST, `cnn`, DU, full run batch 256; subsets with the `steps_per_epoch` schedule. Median of {a.trials} "
            f"trials of {a.epochs} epochs each, alternating order; process CPU seconds, torch threads {torch.get_num_threads()} "
            f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}), {platform.processor() or platform.machine()}, other jobs "
            f"on the second core.\n\nFull-data DU run: **{f_ep:.1f} CPU s per epoch** ({E} epochs: {E * f_ep:.0f} s).\n\n"
            f"| subset | batch | CPU s per epoch | per epoch / full | embedding all 60k, s | kNN + merge, s | "
            f"whole scoring / full ({E} epochs) |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    MD.write_text(text); print(text)
