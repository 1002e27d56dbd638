"""From protocol cells to flat metrics: the numbers the claims are judged on.

Conventions (so that a few exploding fits cannot decide a verdict, and no number is picked
after the fact):

- a *level* is a median ARE over cells (in percent);
- a *comparison* of two variants pairs their cells (same family, models and fraction, both
  fits successful) and reports the share of pairs the first one wins, with its 95% bootstrap
  interval over the pairs (`win_ci_lo`, `win_ci_hi`) and both medians: the first is better
  only when the interval lies above one half;
- "full runs" means q = 1: the smaller models' whole trajectories are available.

Metric names are `<source>.<topic>.<what>`, e.g. `shared.early_cut.win_rate`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmlab.stats import bootstrap_ci, median
from lmlab.studies.scaling_laws.protocol import CellResult

__all__ = ["family_params", "pca_explained", "summarize"]


def _pct(x: float) -> float:
    return round(100.0 * float(x), 3) if np.isfinite(x) else float("nan")


def _key(c: CellResult) -> tuple[str, int, float, float | None]:
    return (c.family, c.n_models, round(c.fraction, 6), c.start)


def _by_variant(cells: Sequence[CellResult], variant: str,
                q: float | None = None) -> dict[tuple[Any, ...], CellResult]:
    return {
        _key(c)[:3]: c for c in cells
        if c.variant == variant and (q is None or abs(c.fraction - q) < 1e-9)
    }


def _compare(a: dict[tuple[Any, ...], CellResult], b: dict[tuple[Any, ...], CellResult]
             ) -> tuple[int, float, float, float]:
    """(pairs, share of pairs where a's ARE is lower, median ARE of a, of b)."""
    keys = [k for k in a if k in b and np.isfinite(a[k].are) and np.isfinite(b[k].are)]
    if not keys:
        return 0, float("nan"), float("nan"), float("nan")
    wins = float(np.mean([a[k].are < b[k].are for k in keys]))
    return len(keys), wins, median([a[k].are for k in keys]), median([b[k].are for k in keys])


def _wins(m: dict[str, Any], key: str, a: dict[tuple[Any, ...], CellResult],
          b: dict[tuple[Any, ...], CellResult]) -> tuple[float, float]:
    """Store `key.{pairs,win_rate,win_ci_lo,win_ci_hi}` for a against b (a wins with the lower
    ARE), the interval a bootstrap over the pairs; return both medians."""
    keys = [k for k in a if k in b and np.isfinite(a[k].are) and np.isfinite(b[k].are)]
    m[f"{key}.pairs"] = len(keys)
    if not keys:
        m[f"{key}.win_rate"] = float("nan")
        return float("nan"), float("nan")
    iv = bootstrap_ci([float(a[k].are < b[k].are) for k in keys])
    m[f"{key}.win_rate"] = round(iv.value, 4)
    m[f"{key}.win_ci_lo"], m[f"{key}.win_ci_hi"] = round(iv.lo, 4), round(iv.hi, 4)
    return median([a[k].are for k in keys]), median([b[k].are for k in keys])


def _model_key(name: str) -> str:
    """A model name as one part of a dotted metric key (`OPT-6.70B` -> `OPT-6p70B`)."""
    return name.replace(".", "p")


def _windows(cells: Sequence[CellResult]
             ) -> tuple[dict[tuple[Any, ...], CellResult], dict[tuple[Any, ...], CellResult]]:
    """Per (family, fraction) with at least two windows: the window nearest the target (the
    smallest scale-up factor) and the farthest."""
    groups: dict[tuple[Any, ...], list[CellResult]] = defaultdict(list)
    for c in cells:
        if c.variant == "window":
            groups[(c.family, round(c.fraction, 6))].append(c)
    near, far = {}, {}
    for k, cs in groups.items():
        if len(cs) >= 2:
            near[k] = min(cs, key=lambda c: c.scale_up)
            far[k] = max(cs, key=lambda c: c.scale_up)
    return near, far


def family_params(cells: Sequence[CellResult]) -> dict[str, np.ndarray]:
    """Per family, the fitted Chinchilla (a, b, e, α, β) of its widest fit: the most models at
    the largest fraction (ColPret's choice for its PCA)."""
    best: dict[str, CellResult] = {}
    for c in cells:
        if c.variant != "models" or not c.success or len(c.theta) != 5:
            continue
        cur = best.get(c.family)
        if cur is None or (c.n_models, c.fraction) > (cur.n_models, cur.fraction):
            best[c.family] = c
    return {f: np.asarray(c.theta) for f, c in sorted(best.items())}


def pca_explained(params: np.ndarray) -> np.ndarray:
    """Cumulative share of variance explained by 1, 2, ... principal components (centred)."""
    params = np.asarray(params, dtype=float)
    sv = np.linalg.svd(params - params.mean(axis=0), compute_uv=False)
    var = sv**2
    return np.cumsum(var) / var.sum() if var.sum() > 0 else np.ones_like(var)


def summarize(cells: Sequence[CellResult], prefix: str,
              one_model_pair: tuple[str, str] | None = None,
              focus_family: str | None = None) -> dict[str, Any]:
    """Metrics of one data source's cells (see the module docstring for the conventions)."""
    p = prefix
    m: dict[str, Any] = {}
    main = [c for c in cells if c.variant == "models"]
    m[f"{p}.families"] = len({c.family for c in main})
    m[f"{p}.cells"] = len(cells)
    m[f"{p}.fits_failed"] = int(sum(not np.isfinite(c.are) for c in cells))
    m[f"{p}.are.median_pct"] = _pct(median([c.are for c in main]))
    full = [c for c in main if abs(c.fraction - 1.0) < 1e-9]
    m[f"{p}.are.full_runs_median_pct"] = _pct(median([c.are for c in full]))

    # Intermediate checkpoints against final losses alone (full runs).
    a, b = _wins(m, f"{p}.intermediate", _by_variant(cells, "models", 1.0),
                 _by_variant(cells, "final-only"))
    m[f"{p}.intermediate.all_checkpoints_pct"] = _pct(a)
    m[f"{p}.intermediate.final_only_pct"] = _pct(b)

    # The early-token cut, over every paired cell.
    a, b = _wins(m, f"{p}.early_cut", _by_variant(cells, "models"), _by_variant(cells, "no-cut"))
    m[f"{p}.early_cut.cut_pct"] = _pct(a)
    m[f"{p}.early_cut.no_cut_pct"] = _pct(b)

    # Models of similar size predict best: the window nearest the target against the farthest.
    near, far = _windows(cells)
    a, b = _wins(m, f"{p}.window", near, far)
    m[f"{p}.window.near_pct"], m[f"{p}.window.far_pct"] = _pct(a), _pct(b)

    # Several seeds of a small model against one larger model (paired by family, k and q).
    more = {(c.family, c.n_models, round(c.fraction, 6)): c for c in cells
            if c.variant == "more-seeds"}
    larger = {(c.family, c.n_models - 1, round(c.fraction, 6)): c for c in cells
              if c.variant == "one-larger"}
    a, b = _wins(m, f"{p}.seeds", more, larger)
    m[f"{p}.seeds.more_seeds_pct"], m[f"{p}.seeds.one_larger_pct"] = _pct(a), _pct(b)
    ratios = [more[k].compute / larger[k].compute for k in more
              if k in larger and larger[k].compute > 0]
    if ratios:
        m[f"{p}.seeds.compute_ratio"] = round(median(ratios), 4)
    if focus_family is not None:
        f = focus_family
        pick = {k: v for k, v in _by_variant(cells, "models", 1.0).items() if k[0] == f}
        _, _, a, b = _compare(pick, _by_variant(cells, "no-cut", 1.0))
        m[f"{p}.early_cut.{f}.full_runs_cut_pct"] = _pct(a)
        m[f"{p}.early_cut.{f}.full_runs_no_cut_pct"] = _pct(b)

    # How many models: ARE at q = 1 by number of models, per family, then the median over
    # families with at least 6 models (so that k = 5 exists with a target left over).
    per_k: dict[int, list[float]] = defaultdict(list)
    per_family_k: dict[str, dict[int, float]] = defaultdict(dict)
    for c in full:
        per_family_k[c.family][c.n_models] = c.are
    for fam_k in per_family_k.values():
        if 5 in fam_k:
            for k, v in fam_k.items():
                per_k[k].append(v)
    for k in sorted(per_k):
        m[f"{p}.models.k{k}_pct"] = _pct(median(per_k[k]))
    if per_k:
        meds = {k: median(v) for k, v in per_k.items()}
        finite = [v for v in meds.values() if np.isfinite(v)]
        m[f"{p}.models.best_pct"] = _pct(min(finite)) if finite else float("nan")
        m[f"{p}.models.families_with_5"] = len(per_k[5])

    # Fitting-free baselines on the same cells as the fits.
    ok = [c for c in main if np.isfinite(c.are)]
    if ok:
        m[f"{p}.baselines.fit_median_pct"] = _pct(median([c.are for c in ok]))
        m[f"{p}.baselines.best_seen_median_pct"] = _pct(median([c.baseline_best for c in ok]))
        m[f"{p}.baselines.last_seen_median_pct"] = _pct(median([c.baseline_last for c in ok]))
        base = [x for c in ok for x in (c.baseline_best, c.baseline_last) if np.isfinite(x)]
        m[f"{p}.baselines.mean_pct"] = _pct(float(np.mean(base)) if base else float("nan"))
        # the fit against each baseline on the same cells (the fit wins with the lower ARE)
        for name, attr in (("best_seen", "baseline_best"), ("last_seen", "baseline_last")):
            pairs = [float(c.are < getattr(c, attr)) for c in ok
                     if np.isfinite(getattr(c, attr))]
            if pairs:
                iv = bootstrap_ci(pairs)
                q = f"{p}.baselines.fit_beats_{name}"
                m[q] = round(iv.value, 4)
                m[f"{q}_ci_lo"], m[f"{q}_ci_hi"] = round(iv.lo, 4), round(iv.hi, 4)

    # Degrees of freedom: PCA of the fitted parameters across families.
    params = family_params(cells)
    m[f"{p}.pca.families"] = len(params)
    if len(params) >= 6:  # 5 parameters: fewer families would explain themselves trivially
        ratio = pca_explained(np.array(list(params.values())))
        m[f"{p}.pca.var3"] = round(float(ratio[2]), 5)

    # One model with borrowed A and α: the target from each single model, full runs.
    for c in cells:
        if c.variant == "one-model" and abs(c.fraction - 1.0) < 1e-9 and c.models[0] != c.target:
            m[f"{p}.one_model.{c.family}.{_model_key(c.models[0])}_pct"] = _pct(c.are)
    if one_model_pair is not None:
        src, tgt = one_model_pair
        hit = [c for c in cells if c.variant == "one-model" and c.models == (src,)
               and c.target == tgt and abs(c.fraction - 1.0) < 1e-9]
        if hit:
            m[f"{p}.one_model.are_pct"] = _pct(hit[0].are)

    # Per family, the widest fit at q = 1 (cut and no cut): the table's headline numbers.
    for fam, fam_k in sorted(per_family_k.items()):
        kmax = max(fam_k)
        m[f"{p}.family.{fam}.are_pct"] = _pct(fam_k[kmax])
    nocut = {(c.family, c.n_models): c.are for c in cells
             if c.variant == "no-cut" and abs(c.fraction - 1.0) < 1e-9}
    for fam, fam_k in sorted(per_family_k.items()):
        kmax = max(fam_k)
        if (fam, kmax) in nocut:
            m[f"{p}.family.{fam}.no_cut_are_pct"] = _pct(nocut[(fam, kmax)])
    return m
