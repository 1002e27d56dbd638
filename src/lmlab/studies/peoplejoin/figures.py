"""The study's figure and efficiency table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmlab.runs import atomic_write_text
from lmlab.stats import get_metric

__all__ = ["efficiency_table", "plot_results"]

_EFF = (("msgs.total", "messages"), ("msgs.agent_to_teammates", "agent->teammates"),
        ("msgs.teammates_to_agent", "teammates->agent"), ("msgs.agent_to_requester", "agent->requester"),
        ("words.total", "words"), ("people_contacted", "people"), ("actions", "actions"),
        ("invalid_actions", "invalid"), ("tokens", "tokens"), ("wall_s", "wall s"))


def efficiency_table(metrics: dict[str, Any], agents: tuple[str, ...], path: Path) -> str:
    """A markdown table of per-item means per agent (also written to `path`)."""
    head = "| agent | Match | exec % | precision | recall | " + " | ".join(n for _, n in _EFF) + " |"
    lines = [head, "|" + "---|" * (5 + len(_EFF))]
    for a in agents:
        if f"{a}.items" not in metrics:
            continue
        def cell(key: str, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
            v = get_metric(metrics, key)
            return "-" if v is None else fmt.format(v * scale)
        row = [a, cell(f"match.{a}.mean", fmt="{:.1f}"), cell(f"exec.{a}.mean", 100, "{:.0f}"),
               cell(f"precision.{a}.mean"), cell(f"recall.{a}.mean")]
        row += [cell(f"eff.{a}.{k}", fmt="{:.1f}") for k, _ in _EFF]
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    atomic_write_text(path, text)
    return text


def plot_results(metrics: dict[str, Any], agents: tuple[str, ...], run: Any) -> None:
    """Match and execution accuracy per agent (95% intervals), and people precision vs recall."""
    from lmlab.plotting import pyplot

    plt = pyplot()

    shown = [a for a in agents if f"{a}.items" in metrics]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for j, (key, scale, label) in enumerate((("match", 1.0, "Match"), ("exec", 100.0, "exec %"))):
        xs, ys, errs = [], [], [[], []]
        for i, a in enumerate(shown):
            v = get_metric(metrics, f"{key}.{a}.mean")
            if v is None:
                continue
            lo = get_metric(metrics, f"{key}.{a}.ci_lo", v)
            hi = get_metric(metrics, f"{key}.{a}.ci_hi", v)
            xs.append(i + 0.38 * j)
            ys.append(v * scale)
            errs[0].append((v - lo) * scale)
            errs[1].append((hi - v) * scale)
        ax1.bar(xs, ys, width=0.36, yerr=errs, capsize=3, label=label)
    ax1.set_xticks([i + 0.19 for i in range(len(shown))], shown, rotation=30, ha="right")
    ax1.set_ylabel("score (0-100)")
    ax1.set_title("answer accuracy per agent (95% CI)")
    ax1.legend()
    for a in shown:
        p = get_metric(metrics, f"precision.{a}.mean")
        r = get_metric(metrics, f"recall.{a}.mean")
        if p is not None and r is not None:
            ax2.scatter(r, p)
            ax2.annotate(a, (r, p), fontsize=8)
    ax2.set_xlabel("people recall")
    ax2.set_ylabel("people precision")
    ax2.set_xlim(-0.05, 1.1)
    ax2.set_ylim(-0.05, 1.1)
    ax2.set_title("whom each agent contacted")
    fig.tight_layout()
    run.save_figure(fig, "peoplejoin")
    plt.close(fig)
