"""The paper's evaluation protocol: which checkpoints fit a law, which it must predict, and ARE.

For one family (its models sorted by size, N):

- **target**: the largest model's checkpoints with tokens >= `target_fraction` (0.7) x its last
  checkpoint's tokens;
- **fit set**: the checkpoints of the k chosen smaller models with `min_tokens` (1e10) < tokens
  < q x max, where max is the most tokens any of those k models saw (ColPret's
  `get_model_data`: one max over the set, strict inequalities, so q = 1 leaves out the set's
  very last checkpoint);
- **ARE**: the mean of |L - L̂| / L over the target's checkpoints.

A cell is one (variant, q, model set) fit. The variants (figures of the paper in brackets):

- `models` (Fig. 1b, 2, 3): the k smallest models, k = 2 .. n-1, every q;
- `window` (Fig. 1a): every run of `window` consecutive smaller models, every q;
- `no-cut` (Fig. 5b): `models` without the early-token cut;
- `final-only`: `models` at q = 1 fitted on each model's final checkpoint alone (what a
  scaling study without intermediate checkpoints would see);
- `last` (Fig. 4): `models` fitted only on checkpoints in [s x 0.7 max, 0.7 max) for s in
  `last_starts` ("how much of the end of training is needed");
- `one-model` (Fig. 6): each single model (the target included) with the one-model form (A and α
  borrowed), every q, the target cut at `min_tokens` too;
- `scale-down` (Fig. 8): the order reversed: the smallest model is predicted from the k largest;
- `seeds` (the paper's "several small models can beat one large one", for families trained with
  several seeds): for k = 2 .. n-2, the k smallest models with one seed each, plus either the
  other seeds of the largest of them (cells `more-seeds`) or one seed of the next larger model
  (cells `one-larger`); about the same added compute when sizes grow by ~2x, every q;
- baselines (§5.2), fitting-free, computed on every `models` cell: `best-seen` predicts the
  lowest training loss, `last-seen` the mean of the 5 latest training checkpoints.

The scale-up factor of a cell (Fig. 1c) is N_target / N_largest fitted model. Its compute is the
training FLOPs of the fit set: the sum over its runs (model and seed) of 6 N D, D the last
checkpoint used.
Families whose target never reaches a loss below `max_target_loss` (10) are skipped, and a
family needs at least 3 models (2 for `one-model`).

Cells are independent fits: `evaluate` maps `run_cell` over them with an lmlab executor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmlab.errors import LmlabError
from lmlab.studies.scaling_laws.data import CheckpointTable, ModelInfo

__all__ = [
    "VARIANTS",
    "CellJob",
    "CellResult",
    "ProtocolSettings",
    "are",
    "evaluate",
    "model_counts",
    "plan",
    "run_cell",
    "seed_rows",
    "target_rows",
    "train_rows",
]

VARIANTS = ("models", "window", "no-cut", "final-only", "last", "one-model", "scale-down",
            "seeds")
FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
LAST_STARTS = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class ProtocolSettings:
    """The protocol's knobs; the defaults are the paper's."""

    min_tokens: float = 1e10
    target_fraction: float = 0.7
    fractions: tuple[float, ...] = FRACTIONS
    window: int = 4
    last_starts: tuple[float, ...] = LAST_STARTS
    last_upper: float = 0.7
    max_target_loss: float = 10.0
    form: str = "chinchilla"
    fitter: str = "least-squares"
    borrowed: tuple[float, float] | None = None  # (a, alpha) for one-model; None: the paper's
    variants: tuple[str, ...] = VARIANTS
    one_model_families: tuple[str, ...] | None = None  # None: every family

    def __post_init__(self) -> None:
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad:
            raise LmlabError(f"unknown protocol variant {bad[0]!r}; variants: {', '.join(VARIANTS)}")
        if not all(0 < q <= 1 for q in self.fractions):
            raise LmlabError(f"fractions must lie in (0, 1], got {self.fractions}")
        if not 0 < self.target_fraction <= 1:
            raise LmlabError(f"target_fraction must lie in (0, 1], got {self.target_fraction}")
        if self.window < 2:
            raise LmlabError(f"window must be >= 2, got {self.window}")


# -- selection rules (pure functions of a table) --------------------------------------------------
def are(loss: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute relative error, mean(|L - L̂| / L); NaN when nothing is predicted."""
    loss, predicted = np.asarray(loss, dtype=float), np.asarray(predicted, dtype=float)
    if loss.size == 0 or not np.all(np.isfinite(predicted)):
        return float("nan")
    return float(np.mean(np.abs(loss - predicted) / loss))


def target_rows(table: CheckpointTable, model: str, fraction: float = 0.7,
                min_tokens: float = 0.0) -> np.ndarray:
    """Mask of `model`'s checkpoints with tokens >= fraction x its max (and > min_tokens)."""
    m = table.model == model
    if not m.any():
        return m
    top = table.tokens[m].max()
    return m & (table.tokens >= fraction * top) & (table.tokens > min_tokens)


def train_rows(table: CheckpointTable, models: Iterable[str], fraction: float = 1.0,
               min_tokens: float = 1e10, start: float | None = None) -> np.ndarray:
    """Mask of the fit set: `models`' checkpoints with min_tokens < tokens < fraction x max.

    max is the most tokens any of `models` saw (one max for the set). With `start`, tokens must
    also be >= start x fraction x max (the `last` variant's window).
    """
    m = np.isin(table.model, list(models))
    if not m.any():
        return m
    top = table.tokens[m].max()
    keep = m & (table.tokens > min_tokens) & (table.tokens < fraction * top)
    if start is not None:
        keep &= table.tokens >= start * fraction * top
    return keep


def final_rows(table: CheckpointTable, models: Iterable[str]) -> np.ndarray:
    """Mask of each model's final checkpoint (every seed's)."""
    keep = np.zeros(len(table), dtype=bool)
    for name in models:
        m = table.model == name
        if m.any():
            keep |= m & (table.tokens == table.tokens[m].max())
    return keep


def model_counts(n_smaller: int) -> list[int]:
    """How many of the smaller models to fit on: 2 .. n (thinned for large families, as ColPret)."""
    if n_smaller > 60:
        return list(range(2, n_smaller + 1, 10))
    if n_smaller > 20:
        return list(range(2, n_smaller + 1, n_smaller // 5))
    return list(range(2, n_smaller + 1))


# -- cells --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellJob:
    """One fit of the protocol, with its data: what `run_cell` needs, small enough to pickle."""

    family: str
    variant: str
    fraction: float
    models: tuple[str, ...]
    target: str
    form: str
    fitter: str
    train: np.ndarray  # (3, n): N, D, L
    test: np.ndarray  # (3, m)
    n_target: float
    n_largest_train: float
    compute: float
    start: float | None = None
    form_kwargs: tuple[tuple[str, float], ...] = ()
    baselines: bool = False


@dataclass
class CellResult:
    """A cell's outcome: its description, ARE (NaN when the fit failed) and fitted parameters."""

    family: str
    variant: str
    fraction: float
    n_models: int
    models: tuple[str, ...]
    target: str
    scale_up: float
    compute: float
    n_train: int
    n_test: int
    are: float
    success: bool
    theta: tuple[float, ...]
    start: float | None = None
    last_pred: float = float("nan")
    baseline_best: float = float("nan")
    baseline_last: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict)


def run_cell(job: CellJob) -> CellResult:
    """Fit the cell's form to its fit set and score the target (module level: any executor)."""
    from lmlab.studies.scaling_laws.fit import fit as fit_form
    from lmlab.studies.scaling_laws.forms import get_form

    n_tr, d_tr, l_tr = job.train
    n_te, d_te, l_te = job.test
    base = dict(
        family=job.family, variant=job.variant, fraction=job.fraction,
        n_models=len(job.models), models=job.models, target=job.target,
        scale_up=job.n_target / job.n_largest_train, compute=job.compute,
        n_train=len(l_tr), n_test=len(l_te), start=job.start,
    )
    if len(l_tr) == 0 or len(l_te) == 0:
        return CellResult(**base, are=float("nan"), success=False, theta=())
    form = get_form(job.form, **dict(job.form_kwargs))
    result = fit_form(form, n_tr, d_tr, l_tr, job.fitter)
    pred = result.predict(n_te, d_te)
    out = CellResult(**base, are=are(l_te, pred), success=result.success,
                     theta=tuple(float(t) for t in result.theta),
                     last_pred=float(pred[np.argmax(d_te)]) if result.success else float("nan"))
    if job.baselines:
        out.baseline_best = are(l_te, np.full(len(l_te), l_tr.min()))
        latest = np.argsort(d_tr, kind="stable")[-5:]
        out.baseline_last = are(l_te, np.full(len(l_te), l_tr[latest].mean()))
    return out


def _job(table: CheckpointTable, family: str, variant: str, fraction: float,
         models: Sequence[ModelInfo], target: ModelInfo, train_mask: np.ndarray,
         test_mask: np.ndarray, s: ProtocolSettings, *, start: float | None = None,
         form: str | None = None, form_kwargs: dict[str, float] | None = None,
         baselines: bool = False) -> CellJob:
    tr, te = table.where(train_mask), table.where(test_mask)
    compute = 0.0
    for m in models:
        for seed in np.unique(tr.seed[tr.model == m.name]):
            sel = (tr.model == m.name) & (tr.seed == seed)
            compute += 6.0 * m.num_params * float(tr.tokens[sel].max())
    return CellJob(
        family=family, variant=variant, fraction=fraction,
        models=tuple(m.name for m in models), target=target.name,
        form=form or s.form, fitter=s.fitter,
        train=np.stack([tr.num_params, tr.tokens, tr.loss]),
        test=np.stack([te.num_params, te.tokens, te.loss]),
        n_target=target.num_params, n_largest_train=max(m.num_params for m in models),
        compute=compute, start=start,
        form_kwargs=tuple(sorted((form_kwargs or {}).items())), baselines=baselines,
    )


def plan(table: CheckpointTable, settings: ProtocolSettings,
         families: Sequence[str] | None = None) -> list[CellJob]:
    """Every cell of the protocol for `families` (default: every family with >= 2 models)."""
    s = settings
    jobs: list[CellJob] = []
    fams = families if families is not None else table.families(min_models=2)
    for fam in fams:
        ft = table.only_family(fam)
        models = ft.models()
        if len(models) < 2:
            continue
        target = models[-1]
        tmask = target_rows(ft, target.name, s.target_fraction)
        if ft.loss[ft.model == target.name].min() > s.max_target_loss:
            continue
        smaller = models[:-1]
        if "one-model" in s.variants and (s.one_model_families is None
                                          or fam in s.one_model_families):
            kw = {} if s.borrowed is None else {"a": s.borrowed[0], "alpha": s.borrowed[1]}
            tcut = target_rows(ft, target.name, s.target_fraction, s.min_tokens)
            for m in models:
                for q in s.fractions:
                    jobs.append(_job(ft, fam, "one-model", q, [m], target,
                                     train_rows(ft, [m.name], q, s.min_tokens), tcut, s,
                                     form="one-model", form_kwargs=kw))
        if len(models) < 3:
            continue
        for k in model_counts(len(smaller)):
            chosen = smaller[:k]
            names = [m.name for m in chosen]
            for q in s.fractions:
                if "models" in s.variants:
                    jobs.append(_job(ft, fam, "models", q, chosen, target,
                                     train_rows(ft, names, q, s.min_tokens), tmask, s,
                                     baselines=True))
                if "no-cut" in s.variants:
                    jobs.append(_job(ft, fam, "no-cut", q, chosen, target,
                                     train_rows(ft, names, q, 0.0), tmask, s))
            if "final-only" in s.variants:
                jobs.append(_job(ft, fam, "final-only", 1.0, chosen, target,
                                 final_rows(ft, names), tmask, s))
            if "last" in s.variants:
                for st in s.last_starts:
                    jobs.append(_job(ft, fam, "last", s.last_upper, chosen, target,
                                     train_rows(ft, names, s.last_upper, s.min_tokens, start=st),
                                     tmask, s, start=st))
        if "window" in s.variants and len(smaller) > s.window:
            for i in range(len(smaller) - s.window + 1):
                chosen = smaller[i:i + s.window]
                for q in s.fractions:
                    jobs.append(_job(ft, fam, "window", q, chosen, target,
                                     train_rows(ft, [m.name for m in chosen], q, s.min_tokens),
                                     tmask, s))
        if "seeds" in s.variants:
            jobs += _seed_jobs(ft, fam, smaller, target, tmask, s)
        if "scale-down" in s.variants:
            rev = models[::-1]
            small_target, larger = rev[-1], rev[:-1]
            smask = target_rows(ft, small_target.name, s.target_fraction)
            for k in model_counts(len(larger)):
                chosen = larger[:k]
                for q in s.fractions:
                    jobs.append(_job(ft, fam, "scale-down", q, chosen, small_target,
                                     train_rows(ft, [m.name for m in chosen], q, s.min_tokens),
                                     smask, s))
    return jobs


def seed_rows(table: CheckpointTable, runs: Sequence[tuple[str, int]], fraction: float = 1.0,
              min_tokens: float = 1e10) -> np.ndarray:
    """Mask of the fit set of the runs `(model, seed)`: min_tokens < tokens < fraction x max,
    max the most tokens any of those runs saw (`train_rows`, by run instead of by model)."""
    m = np.zeros(len(table), dtype=bool)
    for name, seed in runs:
        m |= (table.model == name) & (table.seed == seed)
    if not m.any():
        return m
    top = table.tokens[m].max()
    return m & (table.tokens > min_tokens) & (table.tokens < fraction * top)


def _seed_jobs(ft: CheckpointTable, fam: str, smaller: Sequence[ModelInfo], target: ModelInfo,
               tmask: np.ndarray, s: ProtocolSettings) -> list[CellJob]:
    """The `seeds` variant's paired cells (see the module docstring)."""
    seeds = {m.name: sorted(int(x) for x in np.unique(ft.seed[ft.model == m.name]))
             for m in smaller}
    jobs: list[CellJob] = []
    for k in range(2, len(smaller)):
        base, largest, nxt = smaller[:k], smaller[k - 1], smaller[k]
        if len(seeds[largest.name]) < 2:
            continue
        one = [(m.name, seeds[m.name][0]) for m in base]
        arms = {"more-seeds": (base, [*one, *((largest.name, x) for x in seeds[largest.name][1:])]),
                "one-larger": ([*base, nxt], [*one, (nxt.name, seeds[nxt.name][0])])}
        for q in s.fractions:
            for variant, (models, runs) in arms.items():
                jobs.append(_job(ft, fam, variant, q, models, target,
                                 seed_rows(ft, runs, q, s.min_tokens), tmask, s))
    return jobs


def evaluate(table: CheckpointTable, settings: ProtocolSettings,
             families: Sequence[str] | None = None, executor: str = "serial") -> list[CellResult]:
    """Plan every cell and run them through the executor called `executor`."""
    from lmlab.executor import map_jobs

    jobs = plan(table, settings, families)
    return map_jobs(run_cell, jobs, executor, progress="scaling-laws: fits",
                    describe=lambda i, r: f"{jobs[i].family} {jobs[i].variant}")
