"""The `state-tracking` study: presets, the per-model job, run and claims."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmlab.device import device_name
from lmlab.errors import LmlabError
from lmlab.executor import job_threads, map_jobs
from lmlab.runs import Run, atomic_write_json
from lmlab.studies.state_tracking.claims import checks, claims
from lmlab.studies.state_tracking.config import PRESETS, StateTrackingConfig
from lmlab.studies.state_tracking.data import make_story_data, with_bos
from lmlab.studies.state_tracking.evaluation import CUTOFF, cutoff
from lmlab.studies.state_tracking.groups import make_group
from lmlab.studies.state_tracking.mechanism import classify, first_action_corruptions
from lmlab.studies.state_tracking.patching import patch_grid
from lmlab.studies.state_tracking.pretrained import load_pretrained
from lmlab.studies.state_tracking.probes import collect_activations, probe_grid, residual_hooks
from lmlab.studies.state_tracking.steering import INTERMEDIATE_TASKS, topic_word_matrix
from lmlab.studies.state_tracking.training import (
    Recipe,
    bos_token,
    position_accuracy,
    train_state_model,
)
from lmlab.study import Check, Claim, Study, StudyConfig

__all__ = ["StateTrackingConfig", "StateTrackingStudy", "train_and_analyze"]


def _recipe(c: StateTrackingConfig, seed: int) -> Recipe:
    fields = {f.name for f in dataclasses.fields(Recipe)}
    kw = {k: v for k, v in dataclasses.asdict(c).items() if k in fields and k not in ("seed", "device")}
    return Recipe(**kw, seed=seed, device=device_name(c.device))


def _steps_to_converge(trace: list[tuple[int, float]], target: float) -> int | None:
    for step, acc in trace:
        if acc >= target:
            return step
    return None


def train_and_analyze(job: dict[str, Any]) -> dict[str, Any]:
    """One model: train (after an optional intermediate task), evaluate, probe, patch, classify.

    Module-level so that a process pool or Ray can run it; `job` = {"config", "seed", "condition"}.
    Returns scalars and the arrays the figures need (as lists).
    """
    job_threads(1)
    c = StateTrackingConfig(**{**job["config"], "conditions": tuple(job["config"]["conditions"])})
    seed, condition = job["seed"], job["condition"]
    group = make_group(c.group, c.convention)
    eval_len = c.eval_len or 2 * c.T
    data = make_story_data(group, c.T, c.n_stories, c.analysis_frac, eval_len, c.seed,
                           fresh=c.fresh_data)
    n_val = min(c.val_stories, len(data.analysis) // 4)
    val = data.analysis[:n_val]
    topic = topic_word_matrix(group.order, seed=c.seed) if condition == "ntp" else None
    t0, c0 = time.perf_counter(), time.process_time()
    base = None
    if c.model != "gpt":
        torch.manual_seed(seed)
        base = load_pretrained(c.model, group.order + 3)
    # The trainer logs into a scratch run folder (a real Run, removed after the job); the
    # validation accuracy per evaluation gives the steps to convergence.
    with tempfile.TemporaryDirectory(prefix="lmlab-state-") as scratch:
        trained = Run(scratch)
        model, tm = train_state_model(data, _recipe(c, seed), run=trained, val_stories=val,
                                      intermediate=condition,
                                      intermediate_steps=c.intermediate_steps,
                                      topic_word=topic, model=base)
        trace = [(int(r["step"]), float(r["val_acc_min"])) for r in trained.read_metrics()
                 if "val_acc_min" in r and r.get("step") is not None]
    train_s = time.perf_counter() - t0
    train_cpu_s = time.process_time() - c0  # this process's CPU time (torch runs 1 thread)
    # held-out accuracy, per position, on analysis stories not used for validation
    test = data.eval_actions[n_val:]
    recipe = _recipe(c, seed)
    bos = bos_token(group, recipe)
    skip = 0 if bos is None else 1  # the BOS position is not analysed
    acc, par, _ = position_accuracy(model, test, group, bos=bos)
    # probes on disjoint stories: the first half trains, the second half tests
    sites = residual_hooks(model)
    n_probe = min(c.probe_stories, len(test))
    probe_actions = data.analysis[n_val:n_val + n_probe]
    acts = collect_activations(model, with_bos(torch.from_numpy(probe_actions), bos), sites)
    acts = {k: v[:, skip:] for k, v in acts.items()}
    half = n_probe // 2
    tr = {k: v[:half] for k, v in acts.items()}
    te = {k: v[half:] for k, v in acts.items()}
    states = group.compose(probe_actions)
    probes = {
        "state": probe_grid(tr, states[:half], te, states[half:], group.order),
        "parity": probe_grid(tr, group.parity[states[:half]], te, group.parity[states[half:]], 2),
    }
    k = 1
    while k < c.T:
        k *= 2
        prod = group.product_of_last(probe_actions, k)
        probes[f"last{k}"] = probe_grid(tr, prod[:half], te, prod[half:], group.order)
    # patching: corruptions of the first action, same and opposite parity
    rng = np.random.default_rng([c.seed, seed, 5])
    clean = data.analysis[n_val:n_val + min(c.patch_pairs, len(test))]
    patches = {}
    for name, same in (("same", True), ("opposite", False)):
        corrupt = first_action_corruptions(group, clean, same, rng)
        patches[name] = patch_grid(
            model, with_bos(torch.from_numpy(clean), bos), with_bos(torch.from_numpy(corrupt), bos),
            sites, positions=range(skip, skip + c.T))
    sig = classify(probes["state"], probes["parity"], patches["same"], patches["opposite"],
                   c.probe_threshold, c.patch_gap_threshold, c.mechanism_rule)
    cut_state = cutoff(acc)
    past = slice(cut_state - 1, None)
    return {
        "seed": seed, "condition": condition, "label": sig.label,
        "acc_within_T": float(acc[: c.T].mean()), "acc_min_within_T": float(acc[: c.T].min()),
        "acc_beyond_T": float(acc[c.T:].mean()) if len(acc) > c.T else None,
        "cutoff_state": cut_state, "cutoff_parity": cutoff(par),
        "parity_past_cutoff": float(par[past].mean()) if cut_state <= len(acc) else None,
        "state_layer": sig.state_layer, "parity_layer": sig.parity_layer,
        "patch_gap": sig.patch_gap, "steps_done": tm["steps_done"],
        "steps_to_converge": _steps_to_converge(trace, c.accuracy_target),
        "train_s": train_s, "train_cpu_s": train_cpu_s,
        "acc": acc.tolist(), "parity_acc": par.tolist(),
        "probes": {k: v.tolist() for k, v in probes.items()},
        "patches": {k: v.tolist() for k, v in patches.items()}, "sites": sites,
    }


def _plots(run: Any, results: list[dict[str, Any]], c: StateTrackingConfig) -> None:
    from lmlab.plotting import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    for r in results:
        tag = f"{r['condition']} s{r['seed']} ({r['label']})"
        x = np.arange(1, len(r["acc"]) + 1)
        ax[0].plot(x, r["acc"], label=tag)
        ax[1].plot(x, r["parity_acc"], label=tag)
    for a, title in zip(ax, ("state accuracy", "parity accuracy"), strict=True):
        a.axvline(c.T, color="grey", ls=":")
        a.axhline(CUTOFF, color="grey", ls="--", lw=0.8)
        a.set(xlabel="position (number of actions)", title=title, ylim=(0, 1.02))
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    run.save_figure(fig, "accuracy_by_position")
    plt.close(fig)
    for r in results:
        panels = [("state probe", r["probes"]["state"]), ("parity probe", r["probes"]["parity"]),
                  ("patch, same parity", r["patches"]["same"]),
                  ("patch, opposite parity", r["patches"]["opposite"])]
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.2))
        for a, (title, grid) in zip(axes, panels, strict=True):
            im = a.imshow(np.asarray(grid), aspect="auto", vmin=0, vmax=1, cmap="viridis",
                          origin="lower")
            a.set(title=title, xlabel="position", ylabel="layer (0 = embedding)")
        fig.colorbar(im, ax=axes, shrink=0.8)
        fig.suptitle(f"{r['condition']} seed {r['seed']}: {r['label']}")
        run.save_figure(fig, f"heatmaps_{r['condition']}_seed{r['seed']}")
        plt.close(fig)


class StateTrackingStudy(Study):
    """Li, Guo & Andreas (2025): AA vs PAA in models trained to compose permutations."""

    id = "state-tracking"
    Config = StateTrackingConfig
    presets = PRESETS

    def validate(self, config: StudyConfig) -> None:
        """The Literal fields, then combinations no run can use (one line naming the field)."""
        super().validate(config)
        assert isinstance(config, StateTrackingConfig)
        c = config

        def bad(field: str, why: str) -> LmlabError:
            return LmlabError(f"state-tracking: {field} {why}, got {getattr(c, field)!r}")

        for cond in c.conditions:
            if cond not in INTERMEDIATE_TASKS:
                raise bad("conditions", f"must hold items from {', '.join(INTERMEDIATE_TASKS)}")
        if not c.conditions:
            raise bad("conditions", "needs at least one condition")
        for name in ("T", "n_stories", "steps", "batch_size", "n_seeds", "n_layer", "n_head",
                     "eval_every", "probe_stories", "patch_pairs"):
            if getattr(c, name) < 1:
                raise bad(name, "must be >= 1")
        if c.eval_len and c.eval_len < c.T:
            raise bad("eval_len", f"must be 0 (2T) or >= T = {c.T}")
        if not 0 < c.analysis_frac < 1:
            raise bad("analysis_frac", "must lie in (0, 1)")
        if c.model == "gpt" and c.d_model % c.n_head:
            raise bad("d_model", f"must be divisible by n_head = {c.n_head}")

    def run(self, config: StateTrackingConfig, run: Run) -> dict[str, Any]:  # type: ignore[override]
        cfg = dataclasses.asdict(config)
        jobs = [{"config": cfg, "seed": config.seed + i, "condition": cond}
                for cond in config.conditions for i in range(config.n_seeds)]
        results = map_jobs(train_and_analyze, jobs, config.executor, run=run,
                           progress="state-tracking: models",
                           describe=lambda i, r: f"{r['condition']} seed {r['seed']}: {r['label']}")
        metrics: dict[str, Any] = {}
        for r in results:
            tag = f"{r['condition']}.seed{r['seed']}"
            # the arrays behind the figures, so a later analysis can re-classify without training
            atomic_write_json(Path(run.path) / "analysis" / f"{tag}.json", r)
            for k, v in r.items():
                if isinstance(v, (int, float, str)) and k not in ("seed", "condition"):
                    metrics[f"{tag}.{k}"] = v
            run.log(step=None, **{f"{tag}.{k}": v for k, v in r.items()
                                  if isinstance(v, (int, float, str))})
        for cond in config.conditions:
            rs = [r for r in results if r["condition"] == cond]
            labels = [r["label"] for r in rs]
            metrics[f"{cond}.n_AA"] = labels.count("AA")
            metrics[f"{cond}.n_PAA"] = labels.count("PAA")
            metrics[f"{cond}.n_other"] = len(labels) - labels.count("AA") - labels.count("PAA")
            metrics[f"{cond}.acc_min_within_T"] = min(r["acc_min_within_T"] for r in rs)
        metrics["n_models"] = len(results)
        metrics["acc_min_within_T"] = min(r["acc_min_within_T"] for r in results)
        metrics["acc_mean_within_T"] = float(np.mean([r["acc_within_T"] for r in results]))
        for lab in ("AA", "PAA"):
            rs = [r for r in results if r["label"] == lab]
            metrics[f"n_{lab}"] = len(rs)
            if rs:
                metrics[f"{lab}.mean_cutoff"] = float(np.mean([r["cutoff_state"] for r in rs]))
                conv = [r["steps_to_converge"] for r in rs if r["steps_to_converge"] is not None]
                if conv:
                    metrics[f"{lab}.mean_steps_to_converge"] = float(np.mean(conv))
        paa_par = [r["parity_past_cutoff"] for r in results
                   if r["label"] == "PAA" and r["parity_past_cutoff"] is not None]
        if paa_par:
            metrics["PAA.parity_past_cutoff"] = float(np.mean(paa_par))
        aa_par = [r["parity_past_cutoff"] for r in results
                  if r["label"] == "AA" and r["parity_past_cutoff"] is not None]
        if aa_par:
            metrics["AA.parity_past_cutoff"] = float(np.mean(aa_par))
        metrics["train_s_max"] = max(r["train_s"] for r in results)
        metrics["train_cpu_s_max"] = max(r["train_cpu_s"] for r in results)
        _plots(run, results, config)
        return metrics

    def claims(self, config: StateTrackingConfig, metrics: dict[str, Any]) -> list[Claim]:  # type: ignore[override]
        return claims(config, metrics)

    def checks(self, config: StateTrackingConfig, metrics: dict[str, Any]) -> list[Check]:  # type: ignore[override]
        return checks(config, metrics)


STUDY = StateTrackingStudy()
