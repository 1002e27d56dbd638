"""The paper's claims and this implementation's checks, each judged from the measured metrics.

A claim holds only when its 95% bootstrap interval over test queries excludes the null.
"""

from __future__ import annotations

from typing import Any

from lmlab.stats import get_metric
from lmlab.study import Check, Claim

__all__ = ["checks", "claims"]


def _iv(m: dict[str, Any], key: str) -> tuple[float | None, float | None, float | None]:
    return get_metric(m, key), get_metric(m, f"{key}.ci_lo"), get_metric(m, f"{key}.ci_hi")


def _fmt(v: float | None, lo: float | None, hi: float | None, pct: bool = True) -> str:
    if v is None:
        return "n/a"
    f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:+.3f}")
    return f"{f(v)} [{f(lo)}, {f(hi)}]" if lo is not None and hi is not None else f(v)


def claims(config: Any, m: dict[str, Any]) -> list[Claim]:
    """The paper's headline findings this run can test."""
    out: list[Claim] = []
    k = max(config.uniform_k)
    v, lo, hi = _iv(m, f"alloc.probe.savings_k{k}")
    ov = get_metric(m, f"alloc.oracle.savings_k{k}")
    stmt = f"adaptive allocation (probe, greedy over the batch) reaches uniform best-of-{k}'s quality with less compute"
    if v is None:
        out.append(Claim.untestable("savings", stmt, "up to 50% less compute", "no savings measured"))
    else:
        out.append(Claim.check(
            "savings", stmt, "up to 50% less compute",
            f"saves {_fmt(v, lo, hi)} of best-of-{k}'s samples; oracle {_fmt(ov, None, None)}",
            lo is not None and lo > 0))
    b = config.fixed_budget
    g, glo, ghi = _iv(m, f"alloc.probe.gain_b{b}")
    rel = get_metric(m, f"alloc.probe.rel_gain_b{b}")
    stmt = f"at a fixed budget of {b} samples per query, adaptive allocation beats uniform best-of-{b}"
    out.append(Claim.check(
        "quality_gain", stmt, "up to +10% quality",
        f"{_fmt(g, glo, ghi, pct=False)} absolute ({_fmt(rel, None, None)} relative); "
        f"oracle {_fmt(get_metric(m, f'alloc.oracle.gain_b{b}'), None, None, pct=False)}",
        None if g is None else glo is not None and glo > 0))
    cb = config.compare_budget
    parts, verdicts = [], []
    for h in ("length", "pilot"):
        d, dlo, dhi = _iv(m, f"compare.probe_vs_{h}.b{cb}")
        parts.append(f"vs {h} {_fmt(d, dlo, dhi, pct=False)}")
        verdicts.append(None if d is None else dlo is not None and dlo > 0)
    stmt = (f"the hidden-state probe allocates better than the heuristic baselines (prompt length; "
            f"agreement of {config.pilot_m} pilot samples) at {cb} samples per query")
    verdict = None if any(x is None for x in verdicts) else all(verdicts)
    out.append(Claim.check("probe_beats_heuristics", stmt, "reviewers' request (no number in the paper)",
                           "; ".join(parts), verdict))
    d, dlo, dhi = _iv(m, "predictor.probe.middle_minus_extreme")
    ex, mid = get_metric(m, "predictor.probe.abs_err.extreme"), get_metric(m, "predictor.probe.abs_err.middle")
    stmt = "the predictor is most accurate at the extremes of difficulty (pass rate near 0 or 1)"
    if d is None:
        out.append(Claim.untestable("extremes", stmt, "good at the extremes, weak in the middle",
                                    "too few test queries at the extremes or in the middle"))
    else:
        out.append(Claim.check(
            "extremes", stmt, "good at the extremes, weak in the middle",
            f"|p_hat - p| {ex:.3f} at the extremes ({int(m['predictor.probe.n_extreme'])} queries) vs "
            f"{mid:.3f} in the middle ({int(m['predictor.probe.n_middle'])}); difference "
            f"{_fmt(d, dlo, dhi, pct=False)}", dlo is not None and dlo > 0))
    r, rlo, rhi = _iv(m, "routing.probe.a0.5.vs_random")
    stmt = (f"routing half the queries to best-of-{config.routing_k} by the predicted gain beats "
            "routing them at random (same cost)")
    if r is None:
        out.append(Claim.untestable("routing", stmt, "routing beats random", "no greedy answers in the table"))
    else:
        out.append(Claim.check(
            "routing", stmt, "routing beats random",
            f"{_fmt(r, rlo, rhi, pct=False)}; oracle routing "
            f"{get_metric(m, 'routing.oracle.a0.5'):.3f} vs random {get_metric(m, 'routing.random.a0.5'):.3f}",
            rlo is not None and rlo > 0))
    return out


def checks(config: Any, m: dict[str, Any]) -> list[Check]:
    """Invariants and preconditions of this run."""
    out: list[Check] = []
    margin = get_metric(m, "check.oracle_margin_min")
    out.append(Check.check(
        "oracle_bounds", "the oracle (greedy on the true marginals) is at or above every other "
        "allocation of the same total at every budget (optimality of greedy under concavity)",
        ">= 0", f"smallest margin {margin:+.2e}" if margin is not None else "n/a",
        None if margin is None else margin >= -1e-9))
    a0, a1 = get_metric(m, "routing.alpha0_minus_weak"), get_metric(m, "routing.alpha1_minus_strong")
    out.append(Check.check(
        "routing_extremes", "routing with alpha = 0 equals weak-only and alpha = 1 strong-only, exactly",
        "0 and 0", f"{a0} and {a1}", None if a0 is None or a1 is None else a0 == 0.0 and a1 == 0.0))
    err = get_metric(m, "offline.calibration_max_rel_err")
    out.append(Check.check(
        "threshold_calibration", "per-query thresholds hit their target mean budget on the calibration "
        "queries within 2%", "<= 2%", f"{100 * err:.2f}%" if err is not None else "n/a",
        None if err is None else err <= 0.02))
    between = get_metric(m, "data.test.frac_p0"), get_metric(m, "data.test.frac_p1")
    if None not in between:
        mid = 1 - between[0] - between[1]  # type: ignore[operator]
        out.append(Check.check(
            "headroom", "the model's test queries span the difficulty range: some never solved, some "
            "always, at least 10% in between", "spread",
            f"p=0: {100 * between[0]:.0f}%, p=1: {100 * between[1]:.0f}%, between: {100 * mid:.0f}%",  # type: ignore[operator]
            mid >= 0.1 and between[0] > 0 and between[1] > 0))  # type: ignore[operator]
    return out
