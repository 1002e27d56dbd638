"""The ttt-arc study's claims (the paper's findings) and checks (preconditions of this run).

Each difference claim reads the paired-bootstrap interval `summary.summarize_scores` wrote.
"""

from __future__ import annotations

from typing import Any

from lmlab.stats import get_metric
from lmlab.studies.ttt_arc.config import TTTArcConfig
from lmlab.study import Check, Claim

__all__ = ["checks", "claims"]


def _interval(m: dict[str, Any], key: str) -> str | None:
    v, lo, hi = get_metric(m, key), get_metric(m, f"{key}.ci_lo"), get_metric(m, f"{key}.ci_hi")
    return None if v is None or lo is None or hi is None else f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def claims(config: TTTArcConfig, m: dict[str, Any]) -> list[Claim]:
    """The paper's claims, each computed from the metrics (None: not measured by this run)."""
    out: list[Claim] = []
    n = int(m.get("n_tasks", 0))

    def diff_claim(cid: str, a: str, b: str, statement: str, paper: str, strict_ci: bool
                   ) -> Claim:
        key = f"diff.{a}-{b}"
        v, lo = get_metric(m, key), get_metric(m, f"{key}.ci_lo")
        measured = _interval(m, key)
        if v is None or lo is None:
            return Claim.untestable(cid, statement, paper, f"{a} or {b} not run")
        return Claim.check(cid, statement, paper, f"{measured} over {n} tasks",
                           lo > 0 if strict_ci else v > 0)

    out.append(diff_claim(
        "ttt-beats-icl", "ttt_vote", "icl",
        "TTT + voting (d) beats in-context only (a) on held-out tasks; the 95% CI of (d)-(a) "
        "excludes 0", "Fig. 1/Table: up to 6x the fine-tuned model's accuracy (1B); 53% with 8B",
        strict_ci=True))
    out.append(diff_claim(
        "ttt-identity-beats-icl", "ttt", "icl",
        "per-task TTT alone (c) beats in-context only (a), one identity query each; the 95% CI "
        "of (c)-(a) excludes 0", "Sec. 5: TTT is the largest single gain", strict_ci=True))
    out.append(diff_claim(
        "voting-adds", "ttt_vote", "ttt",
        "augmented inference with hierarchical voting adds to TTT: (d)-(c) > 0",
        "Sec. 6: augmented inference and voting improve over a single identity query",
        strict_ci=False))
    out.append(diff_claim(
        "voting-adds-icl", "icl_vote", "icl",
        "augmented inference with hierarchical voting helps without TTT too: (b)-(a) > 0",
        "Sec. 6", strict_ci=False))
    out.append(diff_claim(
        "ablation-shared-adapter", "ttt_vote", "shared_vote",
        "one adapter shared by all tasks is worse than per-task adapters: (d)-(shared) > 0",
        "Fig. 4 ablation: shared TTT loses accuracy against per-task TTT", strict_ci=False))
    out.append(diff_claim(
        "ablation-no-transforms", "ttt_vote", "notf_vote",
        "TTT without the transforms (leave-one-out tasks only) is worse: (d)-(no transforms) > 0",
        "Fig. 4 ablation: removing the transformations costs accuracy", strict_ci=False))
    return out


def checks(config: TTTArcConfig, m: dict[str, Any]) -> list[Check]:
    """Preconditions: the base model leaves TTT room to help (neither useless nor perfect)."""
    out: list[Check] = []
    a = get_metric(m, "acc.icl")
    out.append(Check.check(
        "icl-headroom", "in-context accuracy on the held-out tasks is above 0 and below 1 "
        "(the base model is neither useless nor already perfect, so TTT has room)",
        "setup: the paper fine-tunes before TTT", None if a is None else round(a, 4),
        None if a is None else 0 < a < 1))
    return out
