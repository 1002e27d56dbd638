"""From job results to the study's flat metrics and figures."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lmlab.stats import median
from lmlab.studies.random_transformers.analysis import bits_per_parameter
from lmlab.studies.random_transformers.config import RandomTransformersConfig

__all__ = ["SATURATED", "group_results", "summarize"]

SATURATED = 0.9  # memorization accuracy above which capacity is not measured (the table is full)


def summarize(c: RandomTransformersConfig, results: list[dict[str, Any]], run: Any = None
              ) -> dict[str, Any]:
    """Flat metrics (medians over seeds) from the job results; figures go to `run`."""
    m: dict[str, Any] = {}
    groups = group_results(results)
    for (task, mode, width), rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if task == "memorize":
            continue
        prefix = f"{task}.{mode}.d{width}"
        m[f"{prefix}.acc"] = median(r["test_acc"] for r in rs)
        m[f"{prefix}.acc_min"] = min(r["test_acc"] for r in rs)
        m[f"{prefix}.seeds"] = len(rs)
        m[f"{prefix}.steps"] = median(r["steps_done"] for r in rs)
        if "test_loss" in rs[0]:
            m[f"{prefix}.loss"] = median(r["test_loss"] for r in rs)
        m[f"{task}.majority_acc"] = rs[0]["majority_acc"]
    # freeze invariants over every partially frozen transformer
    frozen = [r for r in results if r.get("frozen_identical") is not None]
    if frozen:
        m["freeze.frozen_identical"] = int(all(r["frozen_identical"] for r in frozen))
        exp = [r for r in frozen if r.get("expected_trainable") is not None]
        m["freeze.trainable_exact"] = int(all(r["n_trainable"] == r["expected_trainable"]
                                              for r in exp))
        m["freeze.models_checked"] = len(frozen)
    # memorization
    for mode in ("random", "full"):
        rs = groups.get(("memorize", mode, c.mem_width), [])
        if rs:
            acc = median(r["test_acc"] for r in rs)
            n_correct = round(acc * c.mem_n * c.mem_n)
            m[f"memorize.{mode}.acc"] = acc
            m[f"memorize.{mode}.n_trainable"] = rs[0]["n_trainable"]
            m[f"memorize.{mode}.saturated"] = int(acc >= SATURATED)
            m[f"memorize.{mode}.bits_per_param"] = bits_per_parameter(
                n_correct, c.mem_labels, rs[0]["n_trainable"])
    # analyses of the widest random models
    gaps = []
    for r in results:
        for key in [k for k in r if k.startswith("pca10_l")]:
            layer = key.removeprefix("pca10_l")
            m[f"subspace.{r['task']}.l{layer}.pca10"] = r[key]
            m[f"subspace.{r['task']}.l{layer}.neuron10"] = r[f"neuron10_l{layer}"]
            gaps.append(r[key] - r[f"neuron10_l{layer}"])
        if "attn_l0_value_to_marker" in r:
            for key in [k for k in r if k.startswith("attn_l")]:
                m[f"needle.{key.removeprefix('attn_')}_max"] = max(r[key])
    if gaps:
        m["subspace.min_gap"] = min(gaps)
    # imitation
    imit: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in results:
        if "teacher_width" in r:
            imit[(r["mode"], r["teacher_width"])].append(r["test_kl"])
            m[f"imitation.uniform.t{r['teacher_width']}.kl"] = r["uniform_kl"]
    for (mode, tw), kls in sorted(imit.items()):
        m[f"imitation.{mode}.t{tw}.kl"] = median(kls)
    m["jobs"] = len(results)
    m["jobs_wall_s"] = round(sum(r.get("wall_s", 0.0) for r in results), 1)
    m["jobs_cpu_s"] = round(sum(r.get("cpu_s", 0.0) for r in results), 1)
    if run is not None:
        _figures(c, results, m, run)
    return m


def _figures(c: RandomTransformersConfig, results: list[dict[str, Any]], m: dict[str, Any],
             run: Any) -> None:
    from lmlab.plotting import pyplot

    plt = pyplot()

    tasks = [t for t in c.tasks if any(k.startswith(f"{t}.") for k in m)]
    if tasks:
        fig, ax = plt.subplots(figsize=(1.8 * len(tasks) + 2, 3.2))
        bars = [(mode, w) for mode in c.modes for w in c.widths]
        width = 0.8 / max(len(bars), 1)
        for i, (mode, w) in enumerate(bars):
            ys = [m.get(f"{t}.{mode}.d{w}.acc", float("nan")) for t in tasks]
            ax.bar([j + i * width for j in range(len(tasks))], ys, width, label=f"{mode} d={w}")
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(tasks))], tasks)
        ax.set_ylabel("held-out accuracy (median over seeds)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        run.save_figure(fig, "accuracy")
    ex = next((r["attn_example"] for r in results if "attn_example" in r), None)
    if ex is not None:
        pats = ex["patterns"]
        nh = len(pats[0])
        fig, axes = plt.subplots(len(pats), nh, figsize=(2.2 * nh, 2.2 * len(pats)),
                                 squeeze=False)
        for layer, heads in enumerate(pats):
            for h, pat in enumerate(heads):
                axes[layer][h].imshow(pat, cmap="viridis", vmin=0, vmax=1)
                axes[layer][h].set_title(f"layer {layer} head {h}", fontsize=8)
                axes[layer][h].axis("off")
        fig.suptitle("needle: attention of the widest random transformer (one example)")
        run.save_figure(fig, "needle_attention")
    imit = sorted({r["teacher_width"] for r in results if "teacher_width" in r})
    if imit:
        fig, ax = plt.subplots(figsize=(4, 3))
        for mode in (*c.imit_modes, "uniform"):
            ax.plot(imit, [m.get(f"imitation.{mode}.t{w}.kl", float("nan")) for w in imit],
                    marker="o", label=mode)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("teacher width")
        ax.set_ylabel("KL(teacher || student), nats")
        ax.legend(fontsize=7)
        run.save_figure(fig, "imitation_kl")


def group_results(results: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Results grouped by (task, mode, width)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if "task" in r:
            groups[(r["task"], r["mode"], r["width"])].append(r)
    return groups
