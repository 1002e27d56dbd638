"""Figures of an intruder analysis: the paper's cosine-similarity matrices and counts per layer.

- `cosine_matrices`: for the matrices with the most intruders, |cos| between the tuned matrix's
  top-k left singular vectors (rows) and the base's leading left singular vectors (columns), as in
  the paper's Fig. 2: a fine-tuned matrix without intruders shows a bright near-diagonal, an
  intruder a dark row.
- `counts_per_layer`: intruders per layer, stacked by module kind.
- `epsilon_sweep`: total intruders against the threshold eps.

Every function returns a matplotlib Figure (Agg backend); `write_figures` saves them atomically.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lmlab.plotting import pyplot
from lmlab.studies.intruders.detect import DEFAULT_EPS_SWEEP, IntruderReport, MatrixReport

plt = pyplot()  # the Agg backend, chosen in one place (lmlab.plotting)

__all__ = ["cosine_matrices", "counts_per_layer", "epsilon_sweep", "write_figures"]


def _short(name: str) -> str:
    return name.removesuffix(".weight").removeprefix("model.")


def cosine_matrices(report: IntruderReport, top: int = 4, columns: int = 32) -> Figure:
    """|cos| heatmaps for the `top` matrices with the most intruders (ties: lowest max-|cos|)."""
    mats: list[MatrixReport] = sorted(
        (m for m in report.matrices if m.cos is not None),
        key=lambda m: (-m.count, min(m.max_cos) if m.max_cos else 1.0),
    )[:top]
    n = max(1, len(mats))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 1.0, 3.4), squeeze=False,
                             layout="constrained")
    image = None
    for ax, m in zip(axes[0], mats, strict=False):
        assert m.cos is not None
        c = m.cos[:, :columns].numpy()
        image = ax.imshow(c, vmin=0, vmax=1, cmap="viridis", aspect="auto",
                          interpolation="nearest")
        for j in m.intruders:
            ax.annotate("intruder", (c.shape[1] - 0.5, j), color="white", fontsize=6,
                        ha="right", va="center")
        ax.set_title(f"{_short(m.name)}\n{m.count} intruder(s)", fontsize=8)
        ax.set_xlabel("base singular vector i")
    axes[0][0].set_ylabel("tuned singular vector j")
    for ax in axes[0][len(mats):]:
        ax.axis("off")
    if not mats:
        axes[0][0].text(0.5, 0.5, "no matrices", ha="center", va="center")
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), shrink=0.85, label="|cos(u_t,j, u_0,i)|")
    fig.suptitle(f"tuned vs base left singular vectors (k={report.k}, eps={report.eps})",
                 fontsize=9)
    return fig


def counts_per_layer(report: IntruderReport) -> Figure:
    """Bar chart of intruder counts per layer, stacked by module kind."""
    layers = sorted({m.layer for m in report.matrices if m.layer is not None})
    kinds = sorted({m.kind for m in report.matrices})
    x = np.arange(len(layers))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.25 * len(layers) + 2.5), 3.2))
    bottom = np.zeros(len(layers))
    for kind in kinds:
        h = np.array([sum(m.count for m in report.matrices if m.kind == kind and m.layer == li)
                      for li in layers], dtype=float)
        ax.bar(x, h, bottom=bottom, label=kind, width=0.8)
        bottom += h
    ax.set_xticks(x, [str(li) for li in layers], fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel("intruder dimensions")
    ax.set_title(f"intruders per layer: total {report.total} (k={report.k}, eps={report.eps})",
                 fontsize=9)
    if kinds:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def epsilon_sweep(report: IntruderReport, eps_values: Iterable[float] = DEFAULT_EPS_SWEEP) -> Figure:
    """Total intruders against the threshold eps (from the stored max-|cos| values)."""
    sweep = report.sweep(eps_values)
    fig, ax = plt.subplots(figsize=(4.0, 3.0))
    ax.plot(list(sweep), list(sweep.values()), marker="o")
    ax.axvline(report.eps, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("eps")
    ax.set_ylabel("intruder dimensions")
    ax.set_title("intruders against the threshold", fontsize=9)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def write_figures(report: IntruderReport, out: str | Path) -> list[Path]:
    """Render every figure first, then write them atomically under `out`; returns the paths."""
    from lmlab.runs import atomic_write_bytes

    rendered = {
        "cosine_similarity.png": _png(cosine_matrices(report)),
        "intruders_per_layer.png": _png(counts_per_layer(report)),
        "epsilon_sweep.png": _png(epsilon_sweep(report)),
    }
    paths = []
    for name, data in rendered.items():
        path = Path(out) / name
        atomic_write_bytes(path, data)
        paths.append(path)
    return paths
