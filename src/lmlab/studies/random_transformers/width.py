"""The width sweep (issue #22): is width the lever for the random models' needle and decimal?

`jobs.width_jobs` trains random models of every width of `config.width` (and fully trained ones
at the widest) with one token budget; this module turns their results into metrics, the sweep
table and figures. Metric keys (medians over seeds; every interval a 95% bootstrap interval):

- `width.{task}.{mode}.d{W}.acc` with `.ci_lo`/`.ci_hi` (the median's interval over seeds),
  `.acc.seedN`, `.val_acc`, `.steps` (median steps trained before the early stop),
  `.steps.seedN`, `.cpu_s` (CPU seconds of the cell's models together), `.seeds`;
- random models also `.gap` (the median attainable attention logit gap of the cell's own frozen
  models, `gaps.model_gap`) and `.attention_share` (the most attention one of `width.{task}
  .positions` positions can get at that gap);
- `width.{task}.random.trend.spearman` with its interval: Spearman's rho of test accuracy
  against log2 width over every (width, seed) model, `.points`;
- `width.{task}.random_minus_full.d{W}.diff` with its interval (independent bootstrap over
  seeds), at the widest width;
- `width.sequences` (training sequences per model: the token budget in sequences);
  `width.needle.context_guess` (the accuracy of answering with a random value of the context).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from lmlab.stats import bootstrap_ci, bootstrap_diff, median, spearman_ci
from lmlab.studies.random_transformers.config import RandomTransformersConfig
from lmlab.studies.random_transformers.gaps import attention_share

__all__ = ["context_guess", "width_figures", "width_metrics", "width_positions", "width_table"]


def width_positions(c: RandomTransformersConfig, task: str) -> int:
    """Positions the scored query attends over: every key-value pair and the query (needle),
    else the whole block (as `gap_models.measure_gaps` counts them)."""
    if task == "needle":
        return 2 * c.needle.keys + 1
    return {"decimal": 3 * c.decimal.digits + 3, "parens": 2 * c.parens.pairs + 2,
            "modadd": 2}.get(task, 1)


def width_metrics(c: RandomTransformersConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The sweep's metrics (see the module docstring) from the results of `width_jobs`."""
    wc = c.width
    m: dict[str, Any] = {}
    if not wc.enabled:
        return m
    cells: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        cells[(r["task"], r["mode"], r["width"])].append(r)
    for (task, mode, w), rs in sorted(cells.items()):
        rs.sort(key=lambda r: r["replicate"])
        p = f"width.{task}.{mode}.d{w}"
        accs = [r["test_acc"] for r in rs]
        iv = bootstrap_ci(accs, np.median)
        m[f"{p}.acc"], m[f"{p}.ci_lo"], m[f"{p}.ci_hi"] = median(accs), iv.lo, iv.hi
        for r in rs:
            m[f"{p}.acc.seed{r['replicate']}"] = r["test_acc"]
            m[f"{p}.steps.seed{r['replicate']}"] = r["steps_done"]
        m[f"{p}.val_acc"] = median(r["val_acc"] for r in rs)
        m[f"{p}.steps"] = median(r["steps_done"] for r in rs)
        m[f"{p}.cpu_s"] = round(sum(r.get("cpu_s", 0.0) for r in rs), 1)
        m[f"{p}.seeds"] = len(rs)
        if mode == "random":
            g = median(r["logit_gap"] for r in rs)
            m[f"{p}.gap"] = g
            m[f"{p}.attention_share"] = attention_share(g, width_positions(c, task))
    wide = max(wc.widths)
    for task in wc.tasks:
        m[f"width.{task}.positions"] = width_positions(c, task)
        pts = [(math.log2(w), r["test_acc"]) for (t, mode, w), rs in cells.items()
               if t == task and mode == "random" for r in rs]
        if len({x for x, _ in pts}) >= 2 and len(pts) >= 3:
            x, y = zip(*pts, strict=True)
            iv = spearman_ci(x, y)
            p = f"width.{task}.random.trend"
            m[f"{p}.spearman"], m[f"{p}.ci_lo"], m[f"{p}.ci_hi"] = iv.value, iv.lo, iv.hi
            m[f"{p}.points"] = len(pts)
        rand = [r["test_acc"] for r in cells.get((task, "random", wide), [])]
        full = [r["test_acc"] for r in cells.get((task, "full", wide), [])]
        if len(rand) >= 2 and full:
            iv = bootstrap_diff(rand, full, paired=False)
            p = f"width.{task}.random_minus_full.d{wide}"
            m[f"{p}.diff"], m[f"{p}.ci_lo"], m[f"{p}.ci_hi"] = iv.value, iv.lo, iv.hi
    if "needle" in wc.tasks:
        m["width.needle.context_guess"] = context_guess(c.needle.keys, c.needle.vocab)
    m["width.sequences"] = wc.steps * wc.batch
    return m


def context_guess(n_keys: int, vocab: int) -> float:
    """Needle accuracy of answering with the value of a uniformly chosen pair of the context
    (k ~ U{1..n_keys} pairs, values ~ U{1..V/2-1}): the plateau a model that has learned where
    values sit, but not which one the query asks for, reaches."""
    n_values = vocab // 2 - 1
    return sum(1 / k + (1 - 1 / k) / n_values for k in range(1, n_keys + 1)) / n_keys


def width_table(c: RandomTransformersConfig, m: dict[str, Any]) -> str:
    """The sweep table in Markdown: width x task, median test accuracy [interval over seeds],
    the frozen models' logit gap and the attention share it allows, steps trained (median; the
    early stop reads validation), and the CPU seconds of the cell's models."""
    wc = c.width
    rows = ["| task | mode | d | test acc, median [95% interval] | logit gap | max attention "
            "share | steps (median) | CPU-s (all seeds) | seeds |",
            "|---|---|---|---|---|---|---|---|---|"]
    for task in wc.tasks:
        for mode, widths in (("random", sorted(wc.widths)), ("full", [max(wc.widths)])):
            for w in widths:
                p = f"width.{task}.{mode}.d{w}"
                if f"{p}.acc" not in m:
                    continue
                gap = f"{m[f'{p}.gap']:.2f}" if f"{p}.gap" in m else "trained"
                share = f"{m[f'{p}.attention_share']:.2f}" if f"{p}.attention_share" in m else ""
                rows.append(f"| {task} | {mode} | {w} | {m[f'{p}.acc']:.3f} "
                            f"[{m[f'{p}.ci_lo']:.3f}, {m[f'{p}.ci_hi']:.3f}] | {gap} | {share} | "
                            f"{m[f'{p}.steps']:.0f} | {m[f'{p}.cpu_s']:.0f} | {m[f'{p}.seeds']} |")
    return "\n".join(rows) + "\n"


def width_figures(c: RandomTransformersConfig, results: list[dict[str, Any]], m: dict[str, Any],
                  run: Any) -> None:
    """`width_sweep`: test accuracy against width per task (median, interval, every seed, the
    fully trained model at the widest width) beside the logit gap of the same models; and
    `width_curves`: validation accuracy against step, one line per width (median over seeds),
    one panel per task: where the widest width's curve is flat, it plateaus."""
    wc = c.width
    tasks = [t for t in wc.tasks if any(k.startswith(f"width.{t}.random.") for k in m)]
    if not tasks:
        return
    from lmlab.plotting import pyplot

    plt = pyplot()
    widths = sorted(wc.widths)
    wide = widths[-1]
    fig, (acc_ax, gap_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
    for k, task in enumerate(tasks):
        color = f"C{k}"
        p = [f"width.{task}.random.d{w}" for w in widths]
        med = [m.get(f"{q}.acc", math.nan) for q in p]
        lo = [a - m.get(f"{q}.ci_lo", a) for a, q in zip(med, p, strict=True)]
        hi = [m.get(f"{q}.ci_hi", a) - a for a, q in zip(med, p, strict=True)]
        acc_ax.errorbar(widths, med, yerr=[lo, hi], marker="o", color=color, capsize=3,
                        label=f"{task} random (median, 95% interval)")
        for r in results:
            if r["task"] == task and r["mode"] == "random":
                acc_ax.scatter(r["width"], r["test_acc"], s=8, color=color, alpha=0.4)
        full = m.get(f"width.{task}.full.d{wide}.acc")
        if full is not None:
            acc_ax.scatter([wide], [full], marker="*", s=90, color=color, edgecolor="black",
                           label=f"{task} fully trained", zorder=3)
        gap_ax.plot(widths, [m.get(f"{q}.gap", math.nan) for q in p], marker="o", color=color,
                    label=f"{task} models")
        if task == "needle" and "width.needle.context_guess" in m:
            acc_ax.axhline(m["width.needle.context_guess"], color=color, ls=":", lw=1,
                           label="needle: a random value of the context")
    acc_ax.set_xscale("log", base=2)
    acc_ax.set_xticks(widths, [str(w) for w in widths])
    acc_ax.set_ylim(0, 1.02)
    acc_ax.set_xlabel("width d")
    acc_ax.set_ylabel("test accuracy")
    acc_ax.set_title(f"random models, {m.get('width.sequences', '?')} sequences each", fontsize=9)
    acc_ax.legend(fontsize=6)
    gap_ax.set_xscale("log", base=2)
    gap_ax.set_yscale("log")
    gap_ax.set_xticks(widths, [str(w) for w in widths])
    gap_ax.set_xlabel("width d")
    gap_ax.set_ylabel("attainable attention logit gap (median)")
    gap_ax.set_title("frozen heads of the same models", fontsize=9)
    gap_ax.legend(fontsize=6)
    fig.tight_layout()
    run.save_figure(fig, "width_sweep")

    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for k, w in enumerate(widths):
            curves = [r["val_curve"] for r in results if r["task"] == task
                      and r["mode"] == "random" and r["width"] == w and r.get("val_curve")]
            if not curves:
                continue
            steps = sorted({s for cv in curves for s, _ in cv})
            ys = [median(a for cv in curves for s2, a in cv if s2 == s) for s in steps]
            ax.plot(steps, ys, marker=".", color=f"C{k}", label=f"random d={w}")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("validation accuracy (median over seeds)")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    run.save_figure(fig, "width_curves")
