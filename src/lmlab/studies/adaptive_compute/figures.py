"""The study's figures: quality against average budget, routing, and the probe's calibration."""

from __future__ import annotations

from typing import Any

import numpy as np

from lmlab.studies.adaptive_compute.analysis import Analysis

__all__ = ["calibration_figure", "quality_budget_figure", "routing_figure"]

STYLE = {
    "oracle": ("k", "--"), "probe": ("C0", "-"), "perfect": ("C5", ":"), "length": ("C2", "-."),
    "pilot": ("C3", "-."), "random": ("C7", ":"), "uniform": ("C1", "-"),
}


def quality_budget_figure(a: Analysis, title: str, ks: tuple[int, ...]) -> Any:
    """Quality against average samples per query for every method (the paper's main figure)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, c in a.curves.items():
        color, ls = STYLE.get(name, ("C9", "-"))
        if name == "uniform":
            ax.plot(c.budget, c.quality, color=color, ls=ls, marker="o", label="uniform best-of-k")
        else:
            ax.plot(c.budget, c.quality, color=color, ls=ls, label=name)
    for name, c in a.offline.items():
        ax.plot(c.budget, c.quality, "s", color=STYLE.get(name, ("C9", ""))[0], mfc="none",
                label=f"{name}, per-query threshold")
    m = a.metrics
    for k in ks:
        s = m.get(f"alloc.probe.savings_k{k}")
        if s is not None and np.isfinite(s):
            q = a.curves["uniform"].at(k)
            ax.annotate("", xy=((1 - s) * k, q), xytext=(k, q),
                        arrowprops={"arrowstyle": "->", "color": "C0"})
            ax.text((1 - s / 2) * k, q, f"-{100 * s:.0f}%", color="C0", ha="center", va="bottom")
    ax.set_xlabel("average samples per query")
    ax.set_ylabel("quality (best-of-b success)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def routing_figure(a: Analysis, k: int) -> Any:
    """Quality against the fraction routed to the strong procedure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4))
    alpha = a.routing["alpha"]
    for name in ("oracle", "probe", "random"):
        color, ls = STYLE.get(name, ("C9", "-"))
        ax.plot(alpha, a.routing[name], color=color, ls=ls, marker=".", label=name)
    ax.set_xlabel(f"fraction routed to best-of-{k} (cost 1 + alpha*({k}-1) samples)")
    ax.set_ylabel("quality")
    ax.set_title("routing: greedy decoding vs best-of-k sampling")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def calibration_figure(pred: np.ndarray, true: np.ndarray, level: np.ndarray | None) -> Any:
    """The probe's predicted pass rate against the measured one, per test query."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    jitter = np.random.default_rng(0).normal(0, 0.01, len(true))
    sc = ax.scatter(true + jitter, pred, c=level if level is not None else "C0", cmap="viridis", s=14)
    if level is not None:
        fig.colorbar(sc, ax=ax, label="difficulty level")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("measured pass rate (N samples)")
    ax.set_ylabel("probe's predicted pass rate")
    ax.set_title("probe on held-out queries")
    return fig
