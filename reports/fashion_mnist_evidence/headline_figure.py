"""Fig. 1 of the Fashion-MNIST evidence: gain over random pruning against the prune rate (DU, fixed epochs).

Reads only the committed `gain_over_random.csv` of this folder (written by `report.ipynb`), so it runs in a
second without the run folders: `python reports/fashion_mnist_evidence/headline_figure.py`. `report.ipynb`
calls `draw_headline` right after it writes that CSV.
"""
import re, sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

HERE = Path(__file__).resolve().parent
# (method in gain_over_random.csv, subset) -> the name a reader sees; at most six series, the paper's pipeline last
SERIES = {
    ("original", "—"): "full-data DU (no extrapolation)",
    ("knn k=10 (shrink 0.25) (steps_per_epoch)", "20%"): "kNN, seeds first (run's default), 20% subset",
    ("knn k=10 (shrink 0.25) (steps_per_epoch)", "10%"): "kNN, seeds first, 10% subset",
    ("gnn k=10 epochs=25 hidden=[512, 256] (steps_per_epoch)", "20%"): "GCN (paper size), 20% subset",
    ("knn k=10 (steps_per_epoch)", "20%"): "kNN, raw merge (the paper's), 20% subset",
}
# Okabe-Ito: distinct for colour-blind readers and in greyscale with the markers
STYLE = [("#000000", "s"), ("#D55E00", "o"), ("#0072B2", "^"), ("#009E73", "v"), ("#CC79A7", "D")]
CELL = re.compile(r"([+-−]?\d+\.\d+)(?: ± (\d+\.\d+))? \(n=(\d+)\)")


def parse_cell(s):
    "'+0.23 ± 0.10 (n=3)' -> (0.23, 0.10, 3); an empty cell -> None."
    if not isinstance(s, str) or not s.strip(): return None
    m = CELL.fullmatch(s.strip())
    if m is None: raise ValueError(f"a gain cell must read '+m ± s (n=k)', got {s!r}")
    return float(m[1].replace("−", "-")), float(m[2] or "nan"), int(m[3])


def headline_gains(csv=HERE / "gain_over_random.csv", score="du", budget="epochs"):
    "Long table (series, prune_rate, mean, std, n) of the series in `SERIES`, in its order."
    g = pd.read_csv(csv, dtype=str)
    g = g[(g.score == score) & (g.budget == budget)]
    rows = []
    for (method, subset), name in SERIES.items():
        hit = g[(g.method == method) & (g.subset == subset)]
        if len(hit) != 1: raise ValueError(f"expected one row for {method!r}, {subset} in {csv}, found {len(hit)}")
        for col in (c for c in g.columns if c.startswith("prune ")):
            v = parse_cell(hit.iloc[0][col])
            if v: rows.append(dict(series=name, prune_rate=float(col[6:-1]) / 100, mean=v[0], std=v[1], n=v[2]))
    return pd.DataFrame(rows)


def draw_headline(out=HERE, csv=None):
    "Draw fig1_gain_over_random.png into `out` from its gain_over_random.csv; returns the file's path."
    out = Path(out)
    d = headline_gains(csv or out / "gain_over_random.csv")
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    ax.axhline(0, color="0.45", lw=1.2, zorder=1)
    ax.text(0.01, -0.03, "random pruning", color="0.35", fontsize=9, ha="left", va="top",
            transform=ax.get_yaxis_transform())
    names = list(SERIES.values())
    for i, (name, (colour, marker)) in enumerate(zip(names, STYLE)):
        s = d[d.series == name].sort_values("prune_rate")
        x = 100 * s.prune_rate + (i - (len(names) - 1) / 2) * 0.9   # dodge so the error bars do not overlap
        ax.errorbar(x, s["mean"], yerr=s["std"], color=colour, marker=marker, ms=5.5, lw=1.6, capsize=3,
                    label=name, zorder=3, ls="--" if "raw merge" in name else "-")
    ax.set_xticks([10, 20, 30, 50, 70, 80, 90]); ax.set_xlim(5, 95)
    ax.set_xlabel("prune rate (% of the 60,000 training images removed)")
    ax.set_ylabel("test accuracy minus random pruning's (points)")
    ax.set_title("Fashion-MNIST, Dynamic Uncertainty: gain over random pruning (3 seeds, mean ± std)", fontsize=11)
    ax.grid(axis="y", color="0.9"); ax.set_axisbelow(True)
    ax.legend(loc="lower left", fontsize=9, frameon=False)
    fig.tight_layout()
    path = out / "fig1_gain_over_random.png"
    fig.savefig(path, dpi=120); plt.close(fig)
    return path


if __name__ == "__main__":
    print(draw_headline(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))
