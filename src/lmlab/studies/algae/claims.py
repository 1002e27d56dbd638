"""The paper's claims and this implementation's checks, evaluated from a run's metrics."""

from __future__ import annotations

from typing import Any

from lmlab.stats import get_metric
from lmlab.study import Check, Claim

from .config import AlgaeConfig

PAPER = "Peng et al. 2024 (ALGAE), Sec. 5"
NONINFERIORITY = 0.05  # normalised-regret margin for "no worse than"


def _fmt(metrics: dict[str, Any], key: str) -> str:
    v, lo, hi = (get_metric(metrics, f"{key}.{s}") for s in ("mean", "ci_lo", "ci_hi"))
    if v is None:
        return "not measured"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def claims(config: AlgaeConfig, metrics: dict[str, Any]) -> list[Claim]:
    out = []
    key = "few.algae_library_minus_deep.regret"
    hi = get_metric(metrics, f"{key}.ci_hi")
    out.append(Claim.check(
        "few_demos_beats_deep",
        "With few demonstrations (1-3), ALGAE's held-out regret is below deep MaxEnt IRL's "
        "(paired difference over worlds, 95% CI below 0).",
        PAPER, f"ALGAE - deep: {_fmt(metrics, key)}", None if hi is None else hi < 0))
    key = "few.algae_library_minus_all.regret"
    hi = get_metric(metrics, f"{key}.ci_hi")
    out.append(Claim.check(
        "few_demos_no_worse_than_all_features",
        f"With few demonstrations (1-3), ALGAE's regret is no worse than IRL on all library "
        f"features (95% CI of the difference below +{NONINFERIORITY}).",
        PAPER, f"ALGAE - all features: {_fmt(metrics, key)}",
        None if hi is None else hi < NONINFERIORITY))
    n = max(config.demos)
    hit = get_metric(metrics, f"detector.d{n}.hit")
    fa = get_metric(metrics, f"detector.d{n}.false_alarm")
    rates = ", ".join(
        f"{d}: {get_metric(metrics, f'detector.d{d}.hit', float('nan')):.2f}/"
        f"{get_metric(metrics, f'detector.d{d}.false_alarm', float('nan')):.2f}"
        for d in sorted(config.demos))
    out.append(Claim.check(
        "detector_finds_missing_feature",
        f"The missing-feature detector ({config.detector}, threshold from calibration worlds) "
        f"fires in >= 90% of test worlds when a true feature is missing and <= 10% when the "
        f"set is complete, at {n} demonstrations ({config.detector_seeds} worlds).",
        PAPER, f"hit/false alarm by demos: {rates}",
        None if hit is None or fa is None else hit >= 0.9 and fa <= 0.1))
    key = "algae_library.recovery_d3plus"
    lo = get_metric(metrics, f"{key}.ci_lo")
    out.append(Claim.check(
        "recovers_missing_feature",
        "The ALGAE loop recovers the missing true feature (a feature with |corr| >= 0.9 to it "
        "on held-out states) in most worlds with >= 3 demonstrations (95% CI above 0.5); "
        "library proposer, the non-LM ablation.",
        PAPER, f"recovery rate: {_fmt(metrics, key)}", None if lo is None else lo > 0.5))
    if "lm" in config.proposers:
        key = "algae_lm.recovered"
        v = get_metric(metrics, f"{key}.mean")
        lo = get_metric(metrics, f"{key}.ci_lo")
        vc = get_metric(metrics, "lm.valid_code_rate")
        out.append(Claim.check(
            "lm_recovers_missing_feature",
            "With a language model writing the features, the ALGAE loop recovers the missing "
            "true feature in most worlds (95% CI above 0.5).",
            PAPER, f"recovery {_fmt(metrics, key)}; valid-code rate "
                   f"{'n/a' if vc is None else f'{vc:.2f}'}; model {metrics.get('lm.model')}",
            None if v is None or lo is None else lo > 0.5))
    else:
        out.append(Claim.untestable("lm_recovers_missing_feature",
                                    "With a language model writing the features, the loop "
                                    "recovers the missing feature.", PAPER,
                                    "proposers does not include lm"))
    return out


def checks(config: AlgaeConfig, metrics: dict[str, Any]) -> list[Check]:
    out = []
    e = get_metric(metrics, "check.soft_vi_brute_force_err")
    out.append(Check.check("soft_vi_matches_brute_force",
                           "Soft value iteration's log Z and feature expectations equal "
                           "enumeration of every trajectory of tiny MDPs (within 1e-8).",
                           "lmlab", e, None if e is None else e < 1e-8))
    e = get_metric(metrics, "check.gradient_fd_err")
    out.append(Check.check("irl_gradient_matches_finite_differences",
                           "The MaxEnt log-likelihood gradient equals central finite "
                           "differences (within 1e-5).", "lmlab", e,
                           None if e is None else e < 1e-5))
    c = get_metric(metrics, "check.recovery_cos_min")
    out.append(Check.check("weight_recovery_true_features",
                           "From the true features and 20 demonstrations (7x7 rooms), "
                           "cos(theta-hat, theta*) >= 0.95 (min over 3 worlds).", "lmlab", c,
                           None if c is None else c >= 0.95))
    c = get_metric(metrics, "nav.oracle.cos.mean")
    lo = get_metric(metrics, "nav.oracle.cos.ci_lo")
    out.append(Check.check("sampled_partition_recovers_weights",
                           "On the continuous task, MaxEnt IRL with a sampled partition estimate "
                           "recovers the true weights (mean cos, 95% CI above 0.9).", "lmlab",
                           c, None if lo is None else lo > 0.9))
    r = get_metric(metrics, "check.sandbox_refused")
    a = get_metric(metrics, "check.sandbox_attempts")
    out.append(Check.check("sandbox_refuses_escapes",
                           "The sandbox refuses every escape attempt (file, import, socket, "
                           "dunder walk, infinite loop, memory bomb).", "lmlab",
                           None if r is None else f"{r:.0f}/{a:.0f}",
                           None if r is None else r == a))
    it = get_metric(metrics, "algae_library.iterations_max")
    out.append(Check.check("loop_stops_within_budget",
                           f"The loop stops within max_iters = {config.max_iters} iterations.",
                           "lmlab", it, None if it is None else it <= config.max_iters))
    return out
