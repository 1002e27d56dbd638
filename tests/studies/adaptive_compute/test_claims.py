"""Claim verdicts follow the intervals: hold above zero, fail across it, untestable when missing."""

from __future__ import annotations

from lmlab.studies.adaptive_compute import STUDY
from lmlab.studies.adaptive_compute.claims import checks, claims


def _metrics(lo: float) -> dict:
    m = {
        "alloc.probe.savings_k8": 0.3, "alloc.probe.savings_k8.ci_lo": lo, "alloc.probe.savings_k8.ci_hi": 0.5,
        "alloc.oracle.savings_k8": 0.6,
        "alloc.probe.gain_b2": 0.05, "alloc.probe.gain_b2.ci_lo": lo, "alloc.probe.gain_b2.ci_hi": 0.1,
        "alloc.probe.rel_gain_b2": 0.08, "alloc.oracle.gain_b2": 0.1,
        "predictor.probe.middle_minus_extreme": 0.2, "predictor.probe.middle_minus_extreme.ci_lo": lo,
        "predictor.probe.middle_minus_extreme.ci_hi": 0.3, "predictor.probe.abs_err.extreme": 0.05,
        "predictor.probe.abs_err.middle": 0.25, "predictor.probe.n_extreme": 30, "predictor.probe.n_middle": 20,
        "routing.probe.a0.5.vs_random": 0.02, "routing.probe.a0.5.vs_random.ci_lo": lo,
        "routing.probe.a0.5.vs_random.ci_hi": 0.04, "routing.oracle.a0.5": 0.7, "routing.random.a0.5": 0.6,
        "check.oracle_margin_min": 0.0, "routing.alpha0_minus_weak": 0.0, "routing.alpha1_minus_strong": 0.0,
        "offline.calibration_max_rel_err": 0.01, "data.test.frac_p0": 0.3, "data.test.frac_p1": 0.4,
    }
    for h in ("length", "pilot"):
        m |= {f"compare.probe_vs_{h}.b3": 0.02, f"compare.probe_vs_{h}.b3.ci_lo": lo,
              f"compare.probe_vs_{h}.b3.ci_hi": 0.05}
    return m


def test_verdicts_follow_intervals():
    c = STUDY.preset("tiny")
    assert all(x.holds is True for x in claims(c, _metrics(0.01)))
    assert all(x.holds is False for x in claims(c, _metrics(-0.01)))
    assert all(x.holds is True for x in checks(c, _metrics(0.01)))


def test_missing_metrics_are_untestable():
    got = {x.id: x.holds for x in claims(STUDY.preset("tiny"), {})}
    assert got["savings"] is None and got["extremes"] is None and got["routing"] is None
    assert got["probe_beats_heuristics"] is None and got["quality_gain"] is None
    bad = _metrics(0.01) | {"routing.alpha0_minus_weak": 1e-9}
    assert {x.id: x.holds for x in checks(STUDY.preset("tiny"), bad)}["routing_extremes"] is False
