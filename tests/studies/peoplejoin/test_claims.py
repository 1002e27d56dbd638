"""Claims and checks are computed from the metrics: the verdict follows the intervals."""

from __future__ import annotations

from lmlab.studies.peoplejoin.claims import checks, claims


def _metrics(lo: float, hi: float) -> dict:
    m = {}
    for key in ("match", "exec"):
        m[f"diff.reactive_vs_message-none.{key}"] = (lo + hi) / 2
        m[f"diff.reactive_vs_message-none.{key}.ci_lo"] = lo
        m[f"diff.reactive_vs_message-none.{key}.ci_hi"] = hi
    m["recall.message-all.mean"] = 1.0
    m["diff.message-all_vs_reactive.precision"] = -0.3
    m["diff.message-all_vs_reactive.precision.ci_lo"] = -0.5
    m["diff.message-all_vs_reactive.precision.ci_hi"] = hi - 0.5
    return m


def test_claims_follow_intervals():
    held = {c.id: c.holds for c in claims(None, _metrics(0.1, 0.4))}
    assert held["reactive_beats_none.match"] is True and held["reactive_beats_none.exec"] is True
    assert held["message_all_recall_precision"] is True
    assert held["hard_items.match"] is None and held["paper_table"] is None
    held = {c.id: c.holds for c in claims(None, _metrics(-0.1, 0.6))}
    assert held["reactive_beats_none.match"] is False and held["message_all_recall_precision"] is False


def test_checks():
    got = {c.id: c.holds for c in checks(None, {
        "check.oracle.min_precision": 1.0, "check.oracle.min_recall": 0.5, "check.rescore_equal": 1.0,
        "gold.reproduced": 722, "gold.answerable": 780})}
    assert got == {"oracle_people": False, "rescore": True, "gold_sql": True}


def test_judge_check_needs_agreement_on_both_classes():
    """A judge that says 0 to everything agrees with the execution check on every failed
    episode: the check must still fail, because it never agrees on the passes."""
    from lmlab.studies.peoplejoin.claims import checks
    from lmlab.studies.peoplejoin.study import _own_checks

    def rows(pairs):
        return [{"agent": "x", "match": mt, "exec": ex, "precision": 0.0, "recall": 1.0}
                for mt, ex in pairs]

    def verdict(pairs):
        m = _own_checks(rows(pairs), [None] * len(pairs))
        return next(c for c in checks(None, m) if c.id == "judge_agrees_exec").holds

    always_zero = [(0.0, 1.0)] * 4 + [(0.0, 0.0)] * 16  # 80% raw agreement
    assert verdict(always_zero) is False
    assert verdict([(100.0, 1.0)] * 4 + [(0.0, 0.0)] * 15 + [(100.0, 0.0)]) is True
    assert verdict([(0.0, 0.0)] * 5) is None  # no pass to agree on: untestable
