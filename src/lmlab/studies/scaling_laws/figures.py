"""Figures: ARE heatmaps with iso-FLOP contours (the paper's Fig. 1) and the others the data allow.

`heatmap` draws one grid of ARE (percent, 0-35% colour scale as in the paper) over two axes of
the protocol, e.g. the fraction of training used x the number of models fitted. For each
threshold (15%, 10%, 5%) it marks, as the paper does, the cheapest cell that reaches it reliably:
per row, the first cell below the threshold whose row is below it in more than 75% of the
remaining cells, then the one of those with the least training compute; a step line through
each row's last cell of at most that compute is the iso-FLOP contour.

Every function returns a matplotlib Figure (Agg backend), which the study saves in the run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from lmlab.plotting import pyplot
from lmlab.studies.scaling_laws.data import CheckpointTable
from lmlab.studies.scaling_laws.protocol import CellResult

plt = pyplot()  # the Agg backend, chosen in one place (lmlab.plotting)

__all__ = [
    "CONTOURS",
    "Grid",
    "cheapest_reliable_cell",
    "figure1",
    "fit_curves",
    "grid",
    "heatmap",
    "params_scatter",
    "variant_heatmaps",
]

CONTOURS = (0.15, 0.10, 0.05)
VMAX = 0.35


class Grid:
    """ARE values (R, C) and training compute (R, C) over labelled rows and columns."""

    def __init__(self, rows: list[Any], cols: list[Any], values: np.ndarray, compute: np.ndarray,
                 row_label: str, col_label: str) -> None:
        self.rows, self.cols = rows, cols
        self.values, self.compute = values, compute
        self.row_label, self.col_label = row_label, col_label


def grid(cells: Sequence[CellResult], row: Callable[[CellResult], Any],
         col: Callable[[CellResult], Any], row_label: str, col_label: str,
         reduce: Callable[[list[float]], float] = lambda v: float(np.median(v))) -> Grid:
    """Cells grouped by (row(c), col(c)); several cells in a group (families) are `reduce`d."""
    vals: dict[tuple[Any, Any], list[float]] = defaultdict(list)
    comp: dict[tuple[Any, Any], list[float]] = defaultdict(list)
    for c in cells:
        key = (row(c), col(c))
        vals[key].append(c.are if np.isfinite(c.are) else np.nan)
        comp[key].append(c.compute)
    rows = sorted({k[0] for k in vals})
    cols = sorted({k[1] for k in vals})
    v = np.full((len(rows), len(cols)), np.nan)
    f = np.full((len(rows), len(cols)), np.nan)
    for (r, c), xs in vals.items():
        finite = [x for x in xs if np.isfinite(x)]
        if finite:
            v[rows.index(r), cols.index(c)] = reduce(finite)
        f[rows.index(r), cols.index(c)] = float(np.median(comp[(r, c)]))
    return Grid(rows, cols, v, f, row_label, col_label)


def cheapest_reliable_cell(values: np.ndarray, compute: np.ndarray, threshold: float,
                           consistency: float = 0.75) -> tuple[int, int] | None:
    """The paper's marker cell for `threshold` (see the module docstring), or None."""
    below = np.nan_to_num(values, nan=np.inf) < threshold
    candidates = []
    for r in range(below.shape[0]):
        for c in range(below.shape[1]):
            if below[r, c] and below[r, c:].mean() > consistency:
                candidates.append((r, c))
                break
    finite = [(r, c) for r, c in candidates if np.isfinite(compute[r, c])]
    if not finite:
        return None
    return min(finite, key=lambda rc: compute[rc])


def heatmap(g: Grid, title: str = "", ax: Any = None, contours: Sequence[float] = CONTOURS,
            annotate: bool = True, row_fmt: Callable[[Any], str] = str,
            col_fmt: Callable[[Any], str] = str) -> Figure:
    """Draw `g` as an ARE heatmap with the threshold markers and iso-FLOP contours."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(g.cols), 1.2 + 0.45 * len(g.rows)))
    else:
        fig = ax.figure
    im = ax.imshow(100 * g.values, vmin=0, vmax=100 * VMAX, cmap="magma_r", aspect="auto")
    ax.set_xticks(range(len(g.cols)), [col_fmt(c) for c in g.cols], fontsize=7)
    ax.set_yticks(range(len(g.rows)), [row_fmt(r) for r in g.rows], fontsize=7)
    ax.set_xlabel(g.col_label, fontsize=8)
    ax.set_ylabel(g.row_label, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    if annotate:
        for r in range(len(g.rows)):
            for c in range(len(g.cols)):
                v = g.values[r, c]
                if np.isfinite(v):
                    ax.text(c, r, f"{100 * v:.1f}", ha="center", va="center", fontsize=5.5,
                            color="white" if v > 0.6 * VMAX else "black")
    colors = plt.get_cmap("viridis")(np.linspace(0.15, 0.85, len(contours)))
    if len(g.rows) > 1 and np.isfinite(g.compute).any():
        for thr, color in zip(contours, colors, strict=True):
            cell = cheapest_reliable_cell(g.values, g.compute, thr)
            if cell is None:
                continue
            r0, c0 = cell
            ax.plot(c0, r0, marker="*", markersize=9, color=color, markeredgecolor="black",
                    markeredgewidth=0.4, label=f"<{round(100 * thr)}%")
            budget = g.compute[r0, c0]
            xs, ys = [], []
            for r in range(len(g.rows)):
                ok = np.where(np.nan_to_num(g.compute[r], nan=np.inf) <= budget * (1 + 1e-9))[0]
                last = (ok.max() if len(ok) else -1) + 0.5
                xs += [last, last]
                ys += [r - 0.5, r + 0.5]
            ax.plot(xs, ys, color=color, linewidth=1.2)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper right", framealpha=0.8, title="ARE", title_fontsize=6)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="ARE (%)")
    return fig


def _frac(q: float) -> str:
    return f"{round(100 * q)}%"


def _size(n: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


def figure1(cells: Sequence[CellResult], family: str, sizes: dict[str, float]) -> Figure | None:
    """The paper's Fig. 1 for one family: (a) sliding windows, (b) number of models, (c)
    scale-up factor, each over the fraction of training used."""
    fam = [c for c in cells if c.family == family]
    models = [c for c in fam if c.variant == "models"]
    if not models:
        return None
    window = [c for c in fam if c.variant == "window"]
    panels: list[tuple[Grid, str, Callable[[Any], str]]] = []
    if window:
        g = grid(window, lambda c: max(sizes[m] for m in c.models), lambda c: c.fraction,
                 f"largest of {len(window[0].models)} consecutive models", "fraction of training")
        panels.append((g, "(a) sliding window", _size))
    panels.append((grid(models, lambda c: c.n_models, lambda c: c.fraction, "models fitted",
                        "fraction of training"), "(b) number of models", str))
    panels.append((grid(models, lambda c: round(c.scale_up, 1), lambda c: c.fraction,
                        "scale-up factor (N target / N largest fitted)", "fraction of training"),
                   "(c) scale-up factor", lambda s: f"x{s:g}"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 3.6))
    axes = np.atleast_1d(axes)
    for ax, (g, title, fmt) in zip(axes, panels, strict=True):
        heatmap(g, f"{family} {title}", ax=ax, row_fmt=fmt, col_fmt=_frac)
    fig.tight_layout()
    return fig


def variant_heatmaps(cells: Sequence[CellResult], variant: str, title: str) -> Figure | None:
    """One variant's ARE grid, median over families, in the layout the paper uses for it."""
    sel = [c for c in cells if c.variant == variant]
    if not sel:
        return None
    if variant == "last":
        g = grid(sel, lambda c: c.n_models, lambda c: c.start,
                 "models fitted", "fit window starts at (x 70% of training)")
        col_fmt: Callable[[Any], str] = _frac
    elif variant == "one-model":
        # One panel per family (the largest six): the rows of different families have nothing
        # in common, so they are not pooled.
        fams = sorted({c.family for c in sel}, key=lambda f: -sum(c.family == f for c in sel))[:6]
        fig, axes = plt.subplots(1, len(fams), figsize=(6.2 * len(fams), 3.4), squeeze=False)
        for ax, fam in zip(axes[0], sorted(fams), strict=True):
            g = grid([c for c in sel if c.family == fam], lambda c: c.scale_up,
                     lambda c: c.fraction, "the one model (x scale-up to the target)",
                     "fraction of training")
            heatmap(g, f"{fam}: {title}", ax=ax, row_fmt=lambda s: f"x{s:.3g}", col_fmt=_frac)
        fig.tight_layout()
        return fig
    else:
        g = grid(sel, lambda c: c.n_models, lambda c: c.fraction, "models fitted",
                 "fraction of training")
        col_fmt = _frac
    return heatmap(g, title, col_fmt=col_fmt)


def params_scatter(params: dict[str, np.ndarray]) -> Figure | None:
    """Fitted (A, α) and (B, β) across families: the near-linear relations behind the PCA claim."""
    if len(params) < 2:
        return None
    p = np.array(list(params.values()))  # (F, 5): a, b, e, alpha, beta
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, (i, j, xl, yl) in zip(axes, ((0, 3, "a = log A", "α"), (1, 4, "b = log B", "β")),
                                  strict=True):
        ax.scatter(p[:, i], p[:, j], s=14)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    axes[0].set_title("fitted parameters, one point per family", fontsize=9)
    fig.tight_layout()
    return fig


def fit_curves(table: CheckpointTable, predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
               title: str) -> Figure:
    """Loss against tokens for each model (points) with the fitted law (lines)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    models = table.models()
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(models)))
    for m, color in zip(models, colors, strict=True):
        sel = table.model == m.name
        d = table.tokens[sel]
        ax.scatter(d, table.loss[sel], s=4, color=color, alpha=0.5)
        grid_d = np.geomspace(d.min(), d.max(), 100)
        ax.plot(grid_d, predict(np.full_like(grid_d, m.num_params), grid_d), color=color,
                label=f"{m.name} ({_size(m.num_params)})", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("tokens")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig
