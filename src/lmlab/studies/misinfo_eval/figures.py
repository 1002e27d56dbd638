"""Figures of a scored response table: accuracy per condition and gain over control."""

from __future__ import annotations

from typing import Any

from lmlab.plotting import pyplot
from lmlab.studies.misinfo_eval.conditions import CONDITIONS


def accuracy_figure(m: dict[str, Any], title: str):
    """Two panels: accuracy per condition and absolute gain over control, with 95% intervals."""
    plt = pyplot()
    conds = [c for c in CONDITIONS if f"accuracy.{c}.mean" in m]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, ylabel in ((axes[0], "accuracy", "accuracy"),
                            (axes[1], "gain_abs", "gain over control (points)")):
        cs = [c for c in conds if f"{key}.{c}.mean" in m]
        vals = [m[f"{key}.{c}.mean"] for c in cs]
        lo = [v - m[f"{key}.{c}.ci_lo"] for c, v in zip(cs, vals, strict=True)]
        hi = [m[f"{key}.{c}.ci_hi"] - v for c, v in zip(cs, vals, strict=True)]
        ax.bar(range(len(cs)), vals, yerr=[lo, hi], capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(cs)), cs, rotation=30, ha="right")
        ax.set_ylabel(ylabel)
        ax.axhline(0, color="black", lw=0.8)
    axes[0].set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
