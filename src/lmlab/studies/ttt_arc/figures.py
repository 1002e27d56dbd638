"""The study's figures: accuracy per condition with intervals, per family, TTT time per task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmlab.studies.ttt_arc.summary import CONDITIONS

__all__ = ["save_figures"]

MAIN = ("icl", "icl_vote", "ttt", "ttt_vote")
LABELS = {"icl": "(a) ICL", "icl_vote": "(b) ICL+vote", "ttt": "(c) TTT", "ttt_vote": "(d) TTT+vote",
          "notf": "TTT no-tf", "notf_vote": "no-tf+vote", "shared": "shared", "shared_vote":
          "shared+vote", "ttt_flat": "(d) flat vote"}


def save_figures(m: dict[str, Any], ttt_times: Sequence[float], run: Any) -> None:
    """Write accuracy.png, per_family.png and ttt_time.png into the run's figures folder."""
    from lmlab.plotting import pyplot

    plt = pyplot()

    conds = [c for c in CONDITIONS if f"heldout.{c}.pass2.mean" in m]
    if conds:
        fig, ax = plt.subplots(figsize=(1.2 * len(conds) + 2, 3.4))
        for j, (k, shade) in enumerate((("pass1", 0.55), ("pass2", 1.0))):
            ys = [m.get(f"heldout.{c}.{k}.mean", 0.0) for c in conds]
            err = [[y - m.get(f"heldout.{c}.{k}.ci_lo", y) for c, y in zip(conds, ys, strict=True)],
                   [m.get(f"heldout.{c}.{k}.ci_hi", y) - y for c, y in zip(conds, ys, strict=True)]]
            colours = ["C0" if c in MAIN else "C7" for c in conds]
            ax.bar([i + 0.4 * j - 0.2 for i in range(len(conds))], ys, 0.4, yerr=err, capsize=2,
                   color=colours, alpha=shade, label=f"pass@{k[-1]}")
        if "heldout.ttt_oracle.any.mean" in m:
            ax.axhline(m["heldout.ttt_oracle.any.mean"], color="C3", lw=0.8, ls="--",
                       label="oracle: any of (d)'s predictions")
        ax.set_xticks(range(len(conds)), [LABELS.get(c, c) for c in conds], rotation=30,
                      ha="right", fontsize=8)
        ax.set_ylabel("held-out accuracy (light: pass@1)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        ax.set_title(f"{m.get('tasks.n', 0)} tasks, {m.get('tasks.seeds', 0)} seeds; "
                     "95% bootstrap CI", fontsize=9)
        run.save_figure(fig, "accuracy")
    fams = sorted({k.split(".")[1] for k in m if k.startswith("family.") and k.endswith(".n")})
    main = [c for c in MAIN if f"heldout.{c}.pass2.mean" in m]
    if fams and main:
        fig, ax = plt.subplots(figsize=(1.6 * len(fams) + 2, 3.4))
        w = 0.8 / len(main)
        for i, c in enumerate(main):
            ax.bar([j + i * w for j in range(len(fams))],
                   [m.get(f"family.{f}.{c}.pass2", 0.0) for f in fams], w, label=LABELS[c])
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(fams))], fams, rotation=20,
                      ha="right", fontsize=8)
        ax.set_ylabel("pass@2 accuracy")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        run.save_figure(fig, "per_family")
    if ttt_times:
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.hist(list(ttt_times), bins=min(20, max(3, len(ttt_times) // 3)))
        ax.set_xlabel("per-task TTT training time, CPU seconds")
        ax.set_ylabel("tasks")
        run.save_figure(fig, "ttt_time")
