"""The random-transformers study's claims (the paper's findings) and checks (our invariants).

Every difference, ratio or trend holds only when its 95% bootstrap interval (recorded in the
metrics as `...ci_lo` / `...ci_hi`) lies on the claimed side of the null; the statements say
which interval and over what it was resampled. Accuracy levels (">= 0.90") read the median over
seeds.
"""

from __future__ import annotations

from typing import Any

from lmlab.stats import get_metric
from lmlab.studies.random_transformers.config import ALGO_TASKS, RandomTransformersConfig
from lmlab.studies.random_transformers.summary import SATURATED
from lmlab.study import Check, Claim

__all__ = ["checks", "claims"]

MEMORIZATION_RATIO = 3.0  # the tiny threshold; the paper measures about 7x (2.9 vs 0.4 bits)


def _ci(m: dict[str, Any], prefix: str) -> tuple[float | None, float | None]:
    return get_metric(m, f"{prefix}.ci_lo"), get_metric(m, f"{prefix}.ci_hi")


def _iv(value: float | None, lo: float | None, hi: float | None, fmt: str = ".3f") -> str:
    return "n/a" if value is None else \
        f"{value:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]" if lo is not None and hi is not None else \
        f"{value:{fmt}} [no interval]"


def claims(c: RandomTransformersConfig, m: dict[str, Any]) -> list[Claim]:
    """The paper's claims, each computed from the metrics (None: this preset cannot test it)."""
    g = c.grid
    wide, narrow = max(g.widths), min(g.widths)
    out: list[Claim] = []

    def acc(task: str, mode: str, w: int) -> float | None:
        return get_metric(m, f"{task}.{mode}.d{w}.acc")

    # Width: random wide >> random narrow (paired bootstrap over seeds).
    pw, pn = acc("parens", "random", wide), acc("parens", "random", narrow)
    d = get_metric(m, "parens.random.width_gain.diff")
    lo, hi = _ci(m, "parens.random.width_gain")
    out.append(Claim.check(
        "parens-width",
        f"parentheses (<= {c.parens.pairs} pairs): random d={wide} >= 0.90 (median over seeds), "
        f"and random d={wide} minus random d={narrow} above 5 points (95% bootstrap interval "
        "over seeds, paired)",
        "Table 1: random 1024 = 100%, random 16 = 87.3%",
        None if pw is None or pn is None else
        f"{pw:.3f} vs {pn:.3f}; difference {_iv(d, lo, hi)} (majority "
        f"{m.get('parens.majority.acc', float('nan')):.3f})",
        None if pw is None or lo is None or narrow == wide else pw >= 0.90 and lo > 0.05))
    mw, mn = acc("modadd", "random", wide), acc("modadd", "random", narrow)
    d5 = get_metric(m, "modadd.random.width_gain_5x.diff")
    lo5, hi5 = _ci(m, "modadd.random.width_gain_5x")
    modadd_statement = (
        f"modular addition (p={c.modadd.p}): random d={wide} >= 0.90 (median over seeds) and "
        f">= 5x random d={narrow} (95% bootstrap interval of d={wide} - 5 x d={narrow} over "
        "seeds above 0)")
    if "modadd" not in c.tasks:
        out.append(Claim.untestable(
            "modadd-width", modadd_statement, "Table 1: random 1024 = 100%, random 16 = 1.3%",
            "modular addition is not run in this preset (at tiny size its random models leave "
            "0 on validation only after ~5,000 steps, beyond the 10-minute budget: see the "
            "preset notes; add it with --set tasks=modadd,needle,decimal,parens)"))
    else:
        out.append(Claim.check(
            "modadd-width", modadd_statement, "Table 1: random 1024 = 100%, random 16 = 1.3%",
            None if mw is None or mn is None else f"{mw:.3f} vs {mn:.3f}; d{wide} - 5 x "
            f"d{narrow} {_iv(d5, lo5, hi5)}",
            None if mw is None or lo5 is None or narrow == wide else mw >= 0.90 and lo5 > 0))
    for task, thr, paper in (("needle", 0.90, "Table 1: 100% at width 1024"),
                             ("decimal", 0.80, "Table 1: 100% at width 1024")):
        a, f = acc(task, "random", wide), acc(task, "full", wide)
        shown = None if a is None else round(a, 4) if f is None else \
            f"{a:.3f} (fully trained: {f:.3f})"
        out.append(Claim.check(
            f"{task}-random",
            f"{task}: random d={wide} reaches >= {thr:.2f} test accuracy (median over seeds)",
            paper, shown, None if a is None else a >= thr))
    # Random close to fully trained (non-inferiority: the interval's lower end above -5 points).
    rows = []
    for t in ALGO_TASKS:
        d = get_metric(m, f"{t}.random_minus_full.d{wide}.diff")
        lo, hi = _ci(m, f"{t}.random_minus_full.d{wide}")
        if d is not None and lo is not None:
            rows.append((t, d, lo, hi))
    out.append(Claim.check(
        "random-vs-full",
        f"random d={wide} within 5 points of fully trained d={wide} on every algorithmic task "
        "(95% bootstrap interval over seeds of random - full above -0.05)",
        "Table 1: both 100% at width 1024",
        "; ".join(f"{t} {_iv(d, lo, hi)}" for t, d, lo, hi in rows) or None,
        all(lo > -0.05 for _, _, lo, _ in rows) if rows else None))
    out.extend(_width(c, m))
    out.append(_memorization(c, m))
    # Subspace concentration (block-bootstrap interval over test sequences, per layer).
    gap = get_metric(m, f"subspace.random.d{wide}.min_gap")
    gap_lo = get_metric(m, f"subspace.random.d{wide}.min_gap_ci_lo")
    out.append(Claim.check(
        "subspace",
        f"in random d={wide} models the top-10 principal components explain at least 0.10 more "
        "of the variance than the top-10 neurons, at every layer (the lowest 95% interval end "
        "over layers and tasks above 0.10; block bootstrap over test sequences)",
        "Tables 4-5: variance concentrates in a few PCs not aligned with neurons",
        None if gap is None else f"smallest gap {gap:.3f}, smallest interval end "
        f"{gap_lo if gap_lo is None else round(gap_lo, 3)}",
        None if gap_lo is None or wide <= 10 else gap_lo > 0.10))
    out.append(_imitation(c, m))
    out.append(_lm_width(c, m))
    # Ablations and the LSTM need the paper's grid.
    if g.ablation_modes:
        fails = {mode: min(acc(t, mode, wide) or 0.0 for t in c.tasks) for mode in g.ablation_modes}
        out.append(Claim.check(
            "ablations", "every partial ablation (U only, E only, E_token+U) fails (< 0.9, "
            "median over seeds) on some task", "Table 2",
            "; ".join(f"{k} min {v:.3f}" for k, v in fails.items()),
            all(v < 0.9 for v in fails.values())))
    else:
        out.append(Claim.untestable("ablations", "every partial ablation fails on some task",
                                    "Table 2", "ablation modes not run in this preset"))
    return out


# the accuracy the widest random models of the width sweep must reach, per task (issue #22)
WIDTH_LEVELS = {"needle": 0.90, "decimal": 0.80}
WIDTH_MARGIN = 0.10  # random within 10 points of fully trained at the sweep's widest width


def _width(c: RandomTransformersConfig, m: dict[str, Any]) -> list[Claim]:
    """The width sweep's claims (issue #22): per task, accuracy rises with width (Spearman over
    every (width, seed) model, interval above 0) and the widest width reaches the paper-sized
    level (the interval of the median over seeds at or above it); and random within 10 points
    of fully trained at the widest width. "Not run" where the preset has no sweep."""
    wc = c.width
    wide = max(wc.widths) if wc.widths else 0
    widths = ", ".join(map(str, sorted(wc.widths)))
    budget = f"{wc.steps} steps x {wc.batch} fresh sequences per model"
    out: list[Claim] = []
    skip = ("the width sweep is not run in this preset (it is on in `small` and `gpu`; "
            "--set width.enabled=true adds it)")
    rows = []
    for task, level in WIDTH_LEVELS.items():
        trend_statement = (
            f"{task}: random-mode test accuracy rises with width ({widths}; {budget}): "
            f"Spearman's rho over every (width, seed) model, {wc.seeds} seeds, with its 95% "
            "bootstrap interval above 0")
        level_statement = (
            f"{task}: random d={wide} reaches >= {level:.2f} test accuracy (95% bootstrap "
            f"interval of the median over {wc.seeds} seeds at or above {level:.2f}; {budget})")
        trend_paper = "Table 1 / Sec. 4: random wide >> random narrow (16 vs 1024)"
        level_paper = "Table 1: 100% at width 1024"
        if not wc.enabled or task not in wc.tasks:
            out.append(Claim.untestable(f"width-trend-{task}", trend_statement, trend_paper, skip))
            out.append(Claim.untestable(f"width-wide-{task}", level_statement, level_paper, skip))
            continue
        rho = get_metric(m, f"width.{task}.random.trend.spearman")
        lo, hi = _ci(m, f"width.{task}.random.trend")
        accs = [get_metric(m, f"width.{task}.random.d{w}.acc") for w in sorted(wc.widths)]
        out.append(Claim.check(
            f"width-trend-{task}", trend_statement, trend_paper,
            None if rho is None else f"rho {_iv(rho, lo, hi, '.2f')}; median accuracy "
            + " -> ".join("n/a" if a is None else f"{a:.3f}" for a in accs),
            None if lo is None or len(wc.widths) < 2 else lo > 0))
        a = get_metric(m, f"width.{task}.random.d{wide}.acc")
        alo, ahi = _ci(m, f"width.{task}.random.d{wide}")
        out.append(Claim.check(
            f"width-wide-{task}", level_statement, level_paper,
            None if a is None else f"{_iv(a, alo, ahi)} (gap "
            f"{get_metric(m, f'width.{task}.random.d{wide}.gap') or float('nan'):.1f})",
            None if alo is None else alo >= level))
        d = get_metric(m, f"width.{task}.random_minus_full.d{wide}.diff")
        dlo, dhi = _ci(m, f"width.{task}.random_minus_full.d{wide}")
        if d is not None and dlo is not None:
            rows.append((task, d, dlo, dhi))
    statement = (f"random d={wide} within {WIDTH_MARGIN * 100:.0f} points of fully trained "
                 f"d={wide} on {' and '.join(WIDTH_LEVELS)} ({budget}; 95% bootstrap interval "
                 f"of random - full, resampling {wc.seeds} random and {wc.baseline_seeds} "
                 f"fully trained seeds independently, above -{WIDTH_MARGIN:.2f})")
    paper = "Table 1: both 100% at width 1024"
    if not wc.enabled or not set(WIDTH_LEVELS) & set(wc.tasks):
        out.append(Claim.untestable("width-random-vs-full", statement, paper, skip))
    else:
        tested = [t for t in WIDTH_LEVELS if t in wc.tasks]
        out.append(Claim.check(
            "width-random-vs-full", statement, paper,
            "; ".join(f"{t} {_iv(d, lo, hi)}" for t, d, lo, hi in rows) or None,
            all(lo > -WIDTH_MARGIN for _, _, lo, _ in rows) if len(rows) == len(tested)
            else None))
    return out


def _memorization(c: RandomTransformersConfig, m: dict[str, Any]) -> Claim:
    w = c.memorize.width
    statement = (f"full training stores at least {MEMORIZATION_RATIO:g}x (paper about 7x) the bits "
                 "per trainable parameter of a random transformer (95% paired bootstrap interval "
                 f"over the table's entries above {MEMORIZATION_RATIO:g})")
    paper = "Table 3: about 2.9 vs 0.4 bits/param (about 7x)"
    br = get_metric(m, f"memorize.random.d{w}.bits_per_param")
    bf = get_metric(m, f"memorize.full.d{w}.bits_per_param")
    ar, af = get_metric(m, f"memorize.random.d{w}.acc"), get_metric(m, f"memorize.full.d{w}.acc")
    ratio = get_metric(m, f"memorize.full_over_random.d{w}.ratio")
    lo, hi = _ci(m, f"memorize.full_over_random.d{w}")
    if br is None or bf is None or ar is None or af is None:
        return Claim.untestable("memorization", statement, paper, "memorization not run")
    saturated = max(ar, af) >= SATURATED
    return Claim.check(
        "memorization", statement, paper,
        f"{bf:.3f} vs {br:.3f} bits/param, ratio {_iv(ratio, lo, hi, '.2f')} "
        f"(acc {af:.3f} / {ar:.3f})",
        None if saturated or lo is None else lo > MEMORIZATION_RATIO)


def _imitation(c: RandomTransformersConfig, m: dict[str, Any]) -> Claim:
    tws = sorted(c.imitation.teacher_widths)
    rho = get_metric(m, "imitation.random.trend.spearman")
    lo, hi = _ci(m, "imitation.random.trend")
    kls = [get_metric(m, f"imitation.random.t{t}.kl") for t in tws]
    return Claim.check(
        "imitation-kl",
        f"the random student's KL rises with teacher width ({', '.join(map(str, tws))}): "
        f"Spearman's rho over every (width, seed) point, {c.imitation.seeds} seeds, with its 95% "
        "bootstrap interval above 0",
        "Fig. 6: KL rises steeply with target width",
        None if rho is None else f"rho {_iv(rho, lo, hi, '.2f')}; median KL "
        + " -> ".join("n/a" if k is None else f"{k:.4f}" for k in kls),
        None if lo is None or len(tws) < 2 else lo > 0)


def _lm_width(c: RandomTransformersConfig, m: dict[str, Any]) -> Claim:
    corpus = m.get("lm.corpus")
    widths = sorted(c.lm.widths)
    note = " (fallback: TinyStories unreachable)" if get_metric(m, "lm.fallback") else ""
    statement = (f"language modelling ({corpus or c.lm.corpus}{note}): at every width, the fully "
                 "trained model's held-out loss is below the random model's, and the random model "
                 f"improves from d={widths[0] if widths else '?'} to d="
                 f"{widths[-1] if widths else '?'} (95% paired bootstrap intervals over test "
                 "windows above 0)")
    paper = "Fig. 4: random models need far more width (random 512 about trained 32)"
    if not isinstance(corpus, str) or not widths or "full" not in c.lm.modes:
        return Claim.untestable("lm-width", statement, paper,
                                "language modelling of both modes not run")
    gaps = []
    for w in widths:
        d = get_metric(m, f"{corpus}.random_minus_full.d{w}.loss")
        lo, hi = _ci(m, f"{corpus}.random_minus_full.d{w}")
        gaps.append((w, d, lo, hi))
    gain = get_metric(m, f"{corpus}.random.width_gain.loss")
    glo, ghi = _ci(m, f"{corpus}.random.width_gain")
    if any(d is None or lo is None for _, d, lo, _ in gaps):
        return Claim.untestable("lm-width", statement, paper, "a width lacks a mode")
    measured = ("random - full loss (nats): " + "; ".join(
        f"d{w} {_iv(d, lo, hi)}" for w, d, lo, hi in gaps)
        + f"; random d{widths[0]} - d{widths[-1]} {_iv(gain, glo, ghi)}")
    verdict = all(lo is not None and lo > 0 for _, _, lo, _ in gaps) and (
        len(widths) < 2 or (glo is not None and glo > 0))
    return Claim.check("lm-width", statement, paper, measured, verdict)


def checks(c: RandomTransformersConfig, m: dict[str, Any]) -> list[Check]:
    """Invariants of this implementation: the freeze trains exactly the embeddings."""
    out: list[Check] = []
    fi, te = get_metric(m, "freeze.frozen_identical"), get_metric(m, "freeze.trainable_exact")
    out.append(Check.check(
        "freeze", "random mode trains only V*d + P*d + d*V parameters and leaves every other "
        "tensor bit-identical", "Sec. 2 (method)",
        None if fi is None else f"identical={int(fi)} exact_count={int(te or 0)}",
        None if fi is None else bool(fi) and bool(te)))
    return out
