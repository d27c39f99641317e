"""The report figures read at a glance (STYLE.md): no two series in a panel share a colour, legends name methods
in words, and the score distributions wrap into rows of at most three panels. Real matplotlib figures, drawn from
the method names of the Fashion-MNIST evidence (the report where 14 series had shared 10 colours)."""
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from scoreextra.metrics import plot_corr_vs_acc, plot_pareto, plot_pruning_curves, plot_score_distributions

# (method, subset) as `reporting.collect` names them in the evidence report: 20 series on DU
METHODS = [("gnn k=10 epochs=10 hidden=[128, 64] (steps_per_epoch)", 0.2), ("gnn k=10 epochs=25 hidden=[512, 256] (steps_per_epoch)", 0.2),
           ("gnn k=10 epochs=25 hidden=[512, 256] (steps_per_epoch) [auto]", 0.2), ("knn k=10", 0.2),
           ("knn k=10 (shrink 0.0) (steps_per_epoch)", 0.2), ("knn k=10 (shrink 0.25) (steps_per_epoch)", 0.2),
           ("knn k=10 (shrink 0.25) (steps_per_epoch) [auto]", 0.2), ("knn k=10 (steps_per_epoch)", 0.2),
           ("knn k=10 (steps_per_epoch) [auto]", 0.2), ("original", 0.0), ("original [auto]", 0.0), ("original [ccs]", 0.0),
           ("original [moderate]", 0.0), ("original [top, class_balanced=True]", 0.0), ("random", 0.0), ("ssp", 0.0),
           ("ssp (keep=easy)", 0.0), ("zcore", 0.0), ("no pruning (10 epochs)", 0.0), ("no pruning (20 epochs)", 0.0)]
RATES = [0.1, 0.3, 0.5, 0.7, 0.9]


@pytest.fixture(scope="module")
def acc():
    g = np.random.default_rng(0)
    rows = [dict(score=s, method=m, seed_size=z, prune_rate=0.0 if m.startswith("no pruning") else r,
                 acc=0.92 - 0.04 * r ** 3 - (0.15 * r if m == "ssp (keep=easy)" and r > 0.8 else 0) + g.normal(0, 0.002),
                 acc_std=0.002, total_s=100 + 50 * i, pearson=g.uniform(0.5, 0.8))
            for s in ("du", "tdds") for i, (m, z) in enumerate(METHODS) for r in (RATES[:1] if m.startswith("no pruning") else RATES)]
    yield pd.DataFrame(rows)
    plt.close("all")


def _series(ax):
    "(label, colour) of every series in a panel that has a legend entry: error bars, lines and scatters."
    handles, labels = ax.get_legend_handles_labels()
    colour = lambda h: to_hex(h.lines[0].get_color() if hasattr(h, "lines") else h.get_facecolor()[0] if hasattr(h, "get_facecolor")
                             else h.get_color())
    return [(l, colour(h)) for h, l in zip(handles, labels)]


@pytest.mark.parametrize("draw", [plot_pruning_curves, lambda a: plot_pareto(a, 0.9), lambda a: plot_corr_vs_acc(a, 0.9)],
                         ids=["fig2", "fig3", "fig4"])
def test_no_two_series_in_a_panel_share_a_colour(acc, draw):
    fig = draw(acc)
    for ax in fig.axes:
        s = [(l, c) for l, c in _series(ax) if l != "Pareto front"]   # a line through the methods' points, not a method
        assert len(s) >= 2, ax.get_title()
        assert len({c for _, c in s}) == len(s), (ax.get_title(), s)   # as many colours as series
        assert not any("k=10" in l or "steps_per_epoch" in l or "[" in l for l, _ in s), [l for l, _ in s]   # words, not configs


def test_pruning_curves_split_panels_and_keep_outliers_off_the_axis(acc):
    fig = plot_pruning_curves(acc)
    assert [ax.get_title() for ax in fig.axes] == [f"{s}: {k}" for s in ("DU", "TDDS") for k in
                                                  ("scores extrapolated from a subset", "full-data scores and baselines")]
    full = fig.axes[1]
    low = 100 * acc[(acc.score == "du") & (acc.method == "ssp (keep=easy)")].acc.min()
    assert full.get_ylim()[0] > low and f"{low:.1f}" in [t.get_text() for t in full.texts]
    assert full.get_ylim()[1] - full.get_ylim()[0] < 10   # the rest spread over the panel, not squashed by the outlier


def test_pareto_front_needs_two_points(acc):
    fig = plot_pareto(acc[(acc.score == "du") | (acc.method == "random")], 0.9)
    assert "Pareto front" in [l for l, _ in _series(fig.axes[0])]
    assert [l for l, _ in _series(fig.axes[1])] == ["random"] and "one point" in fig.axes[1].texts[0].get_text()


@pytest.mark.parametrize("n", [1, 4, 5, 10])
def test_score_distributions_wrap_into_rows_of_three(n):
    g = np.random.default_rng(1)
    fig = plot_score_distributions([dict(title=f"panel {i}", truth=g.gamma(2, 1, 500), extrapolated=g.gamma(3, 0.7, 500))
                                    for i in range(n)])
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(shown) == n
    per_row = pd.Series([round(ax.get_position().y0, 3) for ax in shown]).value_counts()
    assert per_row.max() == min(n, 3) and len(per_row) == -(-n // 3)
    dpi = 130   # as `reporting.report` saves it
    assert min(ax.get_position().width * fig.get_figwidth() * dpi for ax in shown) >= 300   # pixels a panel is wide
    plt.close(fig)
