"""The ttt-arc study's claims (the paper's findings) and checks (preconditions of this run).

Every claim is a difference between two conditions that make the same number of attempts; it is
decided at pass@2 (the paper's metric) and holds only when the paired-bootstrap 95% interval over
tasks (`summary.summarize_scores`) lies above 0. The pass@1 difference is shown beside it.
`ttt-2x-icl` is decided on (d) - 2 (a), so it holds only when (d) is at least twice (a) with
that interval above 0 (and with (a) = 0 it says no more than `ttt-beats-icl`).
"""

from __future__ import annotations

from typing import Any

from lmlab.stats import get_metric
from lmlab.studies.ttt_arc.config import TTTArcConfig
from lmlab.study import Check, Claim

__all__ = ["DIFF_CLAIMS", "NOT_RUN", "SCALED_CLAIMS", "checks", "claims"]

# id, a, b, statement, the paper's finding
DIFF_CLAIMS: tuple[tuple[str, str, str, str, str], ...] = (
    ("ttt-beats-icl", "ttt_vote", "icl",
     "TTT + augmented voting (d) beats plain in-context inference (a), both two attempts",
     "Fig. 1: TTT with augmented inference is up to 6x the fine-tuned model's accuracy (1B)"),
    ("ttt-beats-icl-same-inference", "ttt_vote", "icl_vote",
     "TTT beats in-context with the same augmented voting inference: (d) - (b)",
     "Sec. 5: TTT is the largest single gain, over the same inference pipeline"),
    ("ttt-identity-beats-icl", "ttt", "icl",
     "TTT beats in-context with the same identity inference: (c) - (a)",
     "Sec. 5: TTT is the largest single gain"),
    ("voting-adds", "ttt_vote", "ttt",
     "augmented inference with hierarchical voting adds to TTT: (d) - (c), two attempts each",
     "Sec. 6: augmented inference and voting improve over identity inference"),
    ("voting-adds-icl", "icl_vote", "icl",
     "augmented inference with hierarchical voting helps without TTT too: (b) - (a)",
     "Sec. 6"),
    ("ablation-shared-adapter", "ttt_vote", "shared_vote",
     "one adapter shared by all tasks is worse than per-task adapters: (d) - (shared + voting)",
     "Fig. 4 ablation: shared TTT loses accuracy against per-task TTT"),
    ("ablation-no-transforms", "ttt_vote", "notf_vote",
     "TTT without the transforms (leave-one-out tasks only) is worse: (d) - (no transforms "
     "+ voting)", "Fig. 4 ablation: removing the transformations costs accuracy"),
    ("ablation-no-similar", "ttt_vote", "nosim_ttt_vote",
     "pre-training on similar tasks matters: (d) from the base pre-trained on single families "
     "and the training compositions minus (d) from a base of the same recipe pre-trained on "
     "single families alone (no composition), same tasks and seeds",
     "Sec. 4: fine-tuning the model on similar tasks first (re-arc) is the first of the three "
     "components TTT needs"),
)
# claims of a - 2b ("a is at least twice b"): id, a, b, statement, the paper's finding
SCALED_CLAIMS: tuple[tuple[str, str, str, str, str], ...] = (
    ("ttt-2x-icl", "ttt_vote", "icl",
     "TTT + augmented voting (d) is at least twice plain in-context inference (a): (d) - 2 (a)",
     "Fig. 1: TTT is up to 6x the fine-tuned model's accuracy (1B)"),
)
# why a claim was not run, by the condition that is missing
NOT_RUN = {"nosim_ttt_vote": "not run in this preset: ablate.no_similar costs a second "
           "pre-training (the `small` preset runs it)"}


def _interval(m: dict[str, Any], key: str) -> tuple[float, float, float] | None:
    v, lo, hi = (get_metric(m, f"{key}.{s}") for s in ("mean", "ci_lo", "ci_hi"))
    return None if v is None or lo is None or hi is None else (v, lo, hi)


def _fmt(iv: tuple[float, float, float]) -> str:
    return f"{iv[0]:+.3f} [{iv[1]:+.3f}, {iv[2]:+.3f}]"


def claims(config: TTTArcConfig, m: dict[str, Any]) -> list[Claim]:
    """The paper's claims, each computed from the metrics (untestable: a condition not run)."""
    n = int(get_metric(m, "tasks.n", 0) or 0)
    out: list[Claim] = []
    rows = [(cid, a, b, f"{a}_vs_{b}", statement, paper)
            for cid, a, b, statement, paper in DIFF_CLAIMS]
    rows += [(cid, a, b, f"{a}_vs_2x_{b}", statement, paper)
             for cid, a, b, statement, paper in SCALED_CLAIMS]
    for cid, a, b, diff, statement, paper in rows:
        full = (f"{statement}; holds when the 95% paired-bootstrap interval of the pass@2 "
                f"difference over tasks lies above 0")
        p2, p1 = _interval(m, f"diff.{diff}.pass2"), _interval(m, f"diff.{diff}.pass1")
        if p2 is None:
            out.append(Claim.untestable(cid, full, paper,
                                        NOT_RUN.get(b, f"{a} or {b} not run")))
            continue
        measured = f"pass@2 {_fmt(p2)}" + (f", pass@1 {_fmt(p1)}" if p1 else "") + \
            f" over {n} tasks"
        out.append(Claim.check(cid, full, paper, measured, p2[1] > 0))
    return out


def checks(config: TTTArcConfig, m: dict[str, Any]) -> list[Check]:
    """Preconditions and invariants of this run."""
    out: list[Check] = []
    a = _interval(m, "heldout.icl.pass2")
    out.append(Check.check(
        "icl-headroom", "the base model solves some held-out tasks in context and leaves TTT "
        "room: in-context accuracy (a) at pass@2 lies in [0.05, 0.5] and its 95% interval over "
        "tasks excludes 0", "setup: the paper fine-tunes before TTT (its 1B model is not at 0)",
        None if a is None else _fmt(a).replace("+", ""), None if a is None else
        0.05 <= a[0] <= 0.5 and a[1] > 0))
    d = get_metric(m, "adapter.initial_digests")
    out.append(Check.check(
        "adapter-reset", "every task's TTT starts from the same adapter weights (one initial "
        "digest over all tasks)", "setup: per-task TTT from one initialization",
        None if d is None else int(d), None if d is None else d == 1))
    return out
