"""How many of the kept samples are seeds, for every extrapolated DU score of the Fashion-MNIST evidence (issue 26).

Seeds keep their measured scores in the merged ranking; extrapolated scores are averages, narrower than measured
ones, so the top of a raw merge is rich in seeds — how rich depends on how much the extrapolator compresses.
This table puts that share beside the gain over random pruning the evidence report measured on the test set
(reports/fashion_mnist_evidence/gain_over_random.csv): it describes the committed results, it chooses nothing.

    python bench/seed_share.py     # reads runs/fm_evidence, writes bench/seed_share_fashion_mnist.md
"""
import json
from pathlib import Path
import numpy as np, pandas as pd

ROOT, REPORT, OUT = Path("runs/fm_evidence"), Path("reports/fashion_mnist_evidence"), Path("bench/seed_share_fashion_mnist.md")
RATES = (0.5, 0.7, 0.8, 0.9)

def configs(stage):
    for f in sorted((ROOT/stage).glob("*/config.json")): yield f.parent, json.loads(f.read_text())["config"]

def method_name(c) -> str:
    "The evidence report's method label (e.g. 'gnn k=10 epochs=25 hidden=[512, 256] (steps_per_epoch)')."
    params = " ".join(f"{k}={v}" for k, v in sorted(c["params"].items()))
    sched = c["subset"].get("schedule", "paper")
    return f"{c['extrapolator']} k={c['k']}" + (f" {params}" if params else "") + (f" ({sched})" if sched != "paper" else "")

def main():
    seeds = {json.dumps(c, sort_keys=True): np.load(p/"seed_idx.npy") for p, c in configs("score_subset")}
    rows = []
    for p, c in configs("extrapolate"):
        if c["subset"]["score"] != "du" or c["merge"] != "raw": continue
        idx, s = seeds[json.dumps(c["subset"], sort_keys=True)], np.load(p/"scores.npy")
        is_seed = np.zeros(len(s), bool); is_seed[idx] = True
        for rate in RATES:
            top = np.argsort(-s, kind="stable")[:int(round((1 - rate) * len(s)))]
            rows.append(dict(method=method_name(c), subset=f"{c['subset']['seed_size']:.0%}", seed=c["subset"]["seed"],
                             rate=rate, seed_share=is_seed[top].mean()))
    df = pd.DataFrame(rows).groupby(["method", "subset", "rate"]).seed_share.mean().unstack("rate")
    gains = pd.read_csv(REPORT/"gain_over_random.csv")
    gains = gains[(gains.budget == "epochs") & (gains.score == "du")].set_index(["method", "subset"])
    out = []
    for (m, sub), r in df.iterrows():
        row = {"method": m, "subset": sub}
        for rate in RATES:
            g = gains[f"prune {rate:.0%}"].get((m, sub), "") if (m, sub) in gains.index else ""
            row[f"{rate:.0%} pruned: seeds in kept"] = f"{r[rate]:.2f}"
            row[f"{rate:.0%} pruned: gain (test)"] = str(g).replace(" (n=3)", "") if isinstance(g, str) else ""
        out.append(row)
    t = pd.DataFrame(out)
    t = t[t[[c for c in t if "gain" in c]].apply(lambda r: any(r), axis=1)]     # methods the evidence pruned with
    OUT.write_text(
        "# Seeds among the kept samples, and the gain over random pruning (Fashion-MNIST DU, raw merge)\n\n"
        "bench/seed_share.py: share of the kept samples that are seeds (their scores measured, not extrapolated), "
        "mean over the three subset seeds; seeds are 10% or 20% of the data, so a share of 0.2 at 20% means the "
        "seeds are not preferred. Gain: the evidence report's gain over random pruning on the test set, pt, mean ± "
        "std over three seeds (descriptive; nothing is chosen on it).\n\n" + t.to_markdown(index=False) + "\n")
    print(OUT.read_text())

if __name__ == "__main__": main()
