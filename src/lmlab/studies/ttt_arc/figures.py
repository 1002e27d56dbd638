"""The study's figures: accuracy per condition with intervals, per family, TTT time per task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmlab.studies.ttt_arc.summary import CONDITIONS

__all__ = ["save_figures"]

MAIN = ("icl", "icl_vote", "ttt", "ttt_vote")
LABELS = {"icl": "(a) ICL", "icl_vote": "(b) ICL+vote", "ttt": "(c) TTT", "ttt_vote": "(d) TTT+vote",
          "notf": "TTT no-tf", "notf_vote": "no-tf+vote", "shared": "shared", "shared_vote":
          "shared+vote", "ttt_flat": "(d) flat vote", "ttt_oracle": "oracle"}


def save_figures(m: dict[str, Any], ttt_times: Sequence[float], run: Any) -> None:
    """Write accuracy.png, per_family.png and ttt_time.png into the run's figures folder."""
    from lmlab.plotting import pyplot

    plt = pyplot()

    conds = [c for c in CONDITIONS if f"acc.{c}" in m]
    if conds:
        fig, ax = plt.subplots(figsize=(1.0 * len(conds) + 2, 3.4))
        ys = [m[f"acc.{c}"] for c in conds]
        err = [[y - m[f"acc.{c}.ci_lo"] for c, y in zip(conds, ys, strict=True)],
               [m[f"acc.{c}.ci_hi"] - y for c, y in zip(conds, ys, strict=True)]]
        colours = ["C0" if c in MAIN else "C7" for c in conds]
        ax.bar(range(len(conds)), ys, yerr=err, capsize=3, color=colours)
        ax.set_xticks(range(len(conds)), [LABELS.get(c, c) for c in conds], rotation=30,
                      ha="right", fontsize=8)
        ax.set_ylabel("held-out pass@2 accuracy")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{m.get('n_tasks', 0)} tasks, {m.get('n_seeds', 0)} seeds; 95% bootstrap CI",
                     fontsize=9)
        run.save_figure(fig, "accuracy")
    fams = sorted({k.split(".")[1] for k in m if k.startswith("family.") and k.endswith(".n")})
    main = [c for c in MAIN if f"acc.{c}" in m]
    if fams and main:
        fig, ax = plt.subplots(figsize=(1.6 * len(fams) + 2, 3.4))
        w = 0.8 / len(main)
        for i, c in enumerate(main):
            ax.bar([j + i * w for j in range(len(fams))],
                   [m.get(f"family.{f}.{c}", 0.0) for f in fams], w, label=LABELS[c])
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(fams))], fams, rotation=20,
                      ha="right", fontsize=8)
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        run.save_figure(fig, "per_family")
    if ttt_times:
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.hist(list(ttt_times), bins=min(20, max(3, len(ttt_times) // 3)))
        ax.set_xlabel("per-task TTT training time, CPU seconds")
        ax.set_ylabel("tasks")
        run.save_figure(fig, "ttt_time")
