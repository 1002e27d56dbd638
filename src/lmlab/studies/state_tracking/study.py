"""The `state-tracking` study: the per-model job, the run (progress, metrics, figures).

Metric keys (dotted, `group.condition.metric[.seedN]`; README "metric keys"):

- `model.<condition>.<metric>.seed<i>`: one model (its label, accuracy, cutoffs, signature,
  steps, cost, and `slack_probe|slack_gap|slack_converged`: how far the deciding inputs sit
  from their thresholds, see mechanism.threshold_slack); `i` is the model's index (its seed is
  `derive(seed, "model", i)`); `steps_to_parity` / `state_at_parity`: the first evaluation
  where the predictions' parity is right at every position (validation worst >= 0.98) and the
  worst state accuracy then (the parity-first dynamics of a PAA; `_parity_first`);
- `mechanism.<condition|all>.n_models|n_converged|n_excluded|n_AA|n_PAA|n_neither|n_ambiguous|
  paa_frac`: the labels of the converged models (worst position within T >= accuracy_target);
  `mechanism.<condition|all>.paper_probes.n_AA|n_PAA|n_neither|n_ambiguous`, and
  `model.<condition>.label_paper_probes.seed<i>`: a sensitivity, the labels when the AA probe
  signature leaves out our window products (the paper's probes: state and parity only;
  `paper_probe_label`); the claims use the labels above;
- `accuracy.<condition|all>.min_within_T|mean_within_T`;
- `cutoff.<AA|PAA>.mean`, `cutoff.aa_minus_paa.diff|ci_lo|ci_hi|n_AA|n_PAA`;
- `sweep.<condition>.converged|label|cutoff|parity_past_cutoff|cpu_s.seed<i>`: the sweep
  table, one column per model (`sweep_table`);
- `stability.<condition>.same_label|n_fields_differ|max_abs_diff.seed<i>`,
  `stability.all.n_rechecked|n_identical`: the `recheck` models trained a second time from the
  same seed (`stability`);
- `parity_past_cutoff.<AA|PAA>.mean|min|n|ci_lo_min|ci_hi_max` (each model's 95% interval over
  its test stories: the worst lower and best upper bound), `converge.<AA|PAA>.mean_steps`;
- `steering.ntp.topic_mapping`: which topic-word matrix the ntp task used (paper or seeded);
- `shift.<condition>_vs_<reference>.diff|ci_lo|ci_hi|level` (PAA fraction, converged models);
- `data.val_test.overlap` (stories shared by validation and test: 0 by construction);
- `cost.all.wall_s_max|cpu_s_max|cpu_s_mean` (per model, training and analysis).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmlab.device import device_name
from lmlab.errors import LmlabError
from lmlab.executor import job_threads, map_jobs
from lmlab.runs import Run, atomic_write_json, last_logged_step
from lmlab.seeding import derive
from lmlab.stats import bootstrap_ci, bootstrap_diff
from lmlab.studies.state_tracking.claims import MIN_MODELS, checks, claims
from lmlab.studies.state_tracking.config import (
    PRESETS,
    AnalysisConfig,
    ModelJob,
    StateTrackingConfig,
)
from lmlab.studies.state_tracking.data import make_story_data, with_bos
from lmlab.studies.state_tracking.evaluation import CUTOFF, cutoff
from lmlab.studies.state_tracking.groups import make_group
from lmlab.studies.state_tracking.mechanism import (
    classify,
    first_action_corruptions,
    threshold_slack,
)
from lmlab.studies.state_tracking.patching import patch_grid
from lmlab.studies.state_tracking.pretrained import load_pretrained
from lmlab.studies.state_tracking.probes import collect_activations, probe_grid, residual_hooks
from lmlab.studies.state_tracking.steering import INTERMEDIATE_TASKS, topic_matrix_for
from lmlab.studies.state_tracking.training import bos_token, position_accuracy, train_state_model
from lmlab.study import Check, Claim, Study, StudyConfig

__all__ = ["StateTrackingConfig", "StateTrackingStudy", "train_and_analyze"]

TRAIN_DIR = "train"  # each model's training logs in the run folder: train/<condition.seedN>/


def _steps_to_converge(trace: list[tuple[int, float]], target: float) -> int | None:
    for step, acc in trace:
        if acc >= target:
            return step
    return None


def _parity_first(
    records: list[dict[str, Any]], level: float = CUTOFF,
) -> tuple[int | None, float | None]:
    """When the parity of the predictions is right at every position (validation worst >= level)
    and how good the state is then: (step, worst state accuracy). A model that takes the parity
    shortcut (PAA's training signature) gets there long before the state, with the worst position
    near 1/3 (the state given its parity); an associative scan has no such plateau."""
    for r in records:
        if r.get("step") is not None and float(r.get("val_parity_min", -1.0)) >= level:
            return int(r["step"]), float(r["val_acc_min"])
    return None, None


def _fresh_run(path: Path) -> Run:
    """A training log folder owned by one job: emptied first (a killed earlier try's logs go)."""
    shutil.rmtree(path, ignore_errors=True)
    return Run(path)


def train_and_analyze(job: ModelJob, log_dir: str | None = None) -> dict[str, Any]:
    """One model: train (after an optional intermediate task), evaluate, probe, patch, classify.

    Module-level so that a process pool or Ray can run it. Training logs go to
    `log_dir/<condition.seedN>/{intermediate,state}/metrics.jsonl` (the study's progress bar
    reads them; a scratch folder when None). Returns scalars and the arrays the figures need.
    """
    job_threads(1)
    c, condition, seed = job.config, job.condition, job.seed
    group = make_group(c.group, c.convention)
    eval_len = c.eval_len or 2 * c.T
    data = make_story_data(group, c.T, c.n_stories, c.analysis_frac, eval_len, c.story_seed,
                           fresh=c.fresh_data)
    n_val = min(c.val_stories, len(data.analysis) // 4)
    val = data.analysis[:n_val]  # the early stop reads these only
    test = data.eval_actions[n_val:]  # accuracy is reported on these (disjoint stories)
    topic, topic_label = (topic_matrix_for(group, c.topic_mapping, derive(c.seed, "topics"))
                          if condition == "ntp" else (None, None))
    t0, c0 = time.perf_counter(), time.process_time()
    base = None
    if c.model.name != "gpt":
        torch.manual_seed(seed)
        base = load_pretrained(c.model.name, group.order + 3)
    with tempfile.TemporaryDirectory(prefix="lmlab-state-") as scratch:
        logs = Path(log_dir or scratch) / job.tag
        state_run = _fresh_run(logs / "state")
        inter_run = _fresh_run(logs / "intermediate")
        model, tm = train_state_model(
            data, c.model, c.train, seed, device=device_name(c.device), run=state_run,
            val_stories=val, intermediate=condition, intermediate_steps=c.intermediate_steps,
            topic_word=topic, model=base, intermediate_run=inter_run)
        # the validation accuracy per evaluation gives the steps to convergence
        records = [r for r in state_run.read_metrics() if "val_acc_min" in r]
        trace = [(int(r["step"]), float(r["val_acc_min"])) for r in records
                 if r.get("step") is not None]
        parity_step, state_at_parity = _parity_first(records)
    train_s = time.perf_counter() - t0
    bos = bos_token(group, c.model)
    skip = 0 if bos is None else 1  # the BOS position is not analysed
    acc, par, pred = position_accuracy(model, test, group, bos=bos)
    # probes on stories disjoint from validation: the first half trains, the second half tests
    a = c.analysis
    sites = residual_hooks(model)
    n_probe = min(a.probe_stories, len(test))
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
    windows: dict[int, np.ndarray] = {}
    k = 1
    while 2 * k < c.T:  # windows of the last 2, 4, ... actions, shorter than T
        k *= 2
        prod = group.product_of_last(probe_actions, k)
        windows[k] = probes[f"last{k}"] = probe_grid(tr, prod[:half], te, prod[half:],
                                                     group.order)
    # patching: corruptions of the first action, same and opposite parity
    rng = np.random.default_rng(derive(c.seed, "patch", job.index))
    clean = data.analysis[n_val:n_val + min(a.patch_pairs, len(test))]
    patches = {}
    for name, same in (("same", True), ("opposite", False)):
        corrupt = first_action_corruptions(group, clean, same, rng)
        patches[name] = patch_grid(
            model, with_bos(torch.from_numpy(clean), bos), with_bos(torch.from_numpy(corrupt), bos),
            sites, positions=range(skip, skip + c.T))
    sig = classify(probes["state"], probes["parity"], patches["same"], patches["opposite"],
                   windows, a.probe_threshold, a.patch_gap_threshold, a.rule, a.probe_margin,
                   a.gap_margin)
    e = sig.evidence
    slack = threshold_slack(probes["state"], probes["parity"], e.patch_gap, a.probe_threshold,
                            a.patch_gap_threshold)
    cut_state = cutoff(acc)
    past = slice(cut_state - 1, None)
    # parity past the cutoff with a 95% interval over the test stories (each story's share of
    # right parities past the cutoff), to set against chance (0.5)
    par_ci = None
    if cut_state <= len(acc):
        right = group.parity[pred] == group.parity[group.compose(test)]
        par_ci = bootstrap_ci(right[:, past].mean(1), n_boot=1000,
                              seed=derive(c.seed, "bootstrap", "parity", job.index))
    val_keys = {r.tobytes() for r in np.ascontiguousarray(val)}
    overlap = sum(r.tobytes() in val_keys for r in np.ascontiguousarray(test[:, : c.T]))
    return {
        "index": job.index, "condition": condition, "repeat": job.repeat, "label": sig.label,
        "label_at_threshold": sig.base_label,
        "converged": int(float(acc[: c.T].min()) >= c.accuracy_target),
        "acc_within_T": float(acc[: c.T].mean()), "acc_min_within_T": float(acc[: c.T].min()),
        "acc_beyond_T": float(acc[c.T:].mean()) if len(acc) > c.T else None,
        "cutoff_state": cut_state, "cutoff_parity": cutoff(par),
        "parity_past_cutoff": float(par[past].mean()) if cut_state <= len(acc) else None,
        "parity_past_cutoff_ci_lo": None if par_ci is None else par_ci.lo,
        "parity_past_cutoff_ci_hi": None if par_ci is None else par_ci.hi,
        "state_layer": e.state_layer, "parity_layer": e.parity_layer,
        "patch_gap": e.patch_gap, "tracks_state": int(e.tracks_state),
        # distance of the deciding inputs from their thresholds (margins: analysis.*_margin)
        "slack_probe": slack["probe"], "slack_gap": slack["gap"],
        "slack_converged": float(acc[: c.T].min()) - c.accuracy_target,
        "paa_probe": int(e.paa_probe), "paa_patch": int(e.paa_patch),
        "aa_probe": int(e.aa_probe), "aa_patch": int(e.aa_patch),
        "steps_done": tm["steps_done"], "steps_to_converge": _steps_to_converge(trace,
                                                                                c.accuracy_target),
        "steps_to_parity": parity_step, "state_at_parity": state_at_parity,
        "val_test_overlap": int(overlap), "topic_mapping": topic_label,
        "wall_s": time.perf_counter() - t0, "train_wall_s": train_s,
        "cpu_s": time.process_time() - c0,  # this process's CPU time (torch runs 1 thread)
        "acc": acc.tolist(), "parity_acc": par.tolist(),
        "depth": e.depth, "window_layers": {str(k): v for k, v in e.window_layers.items()},
        "carrier": e.carrier, "labels_in_margin": sig.labels_in_margin,
        "probes": {k: v.tolist() for k, v in probes.items()},
        "patches": {k: v.tolist() for k, v in patches.items()}, "sites": sites,
    }


@contextmanager
def _training_progress(jobs: list[ModelJob], log_dir: Path) -> Iterator[Any]:
    """A bar over the training steps of all models (their budgets; an early stop counts as the
    rest of its budget done), fed by polling the jobs' logs: it moves, with an ETA, from the
    first logged steps of the first model. Yields `on_result(i, result)` for map_jobs: one line
    per finished model when piped (and a step line 8 s after the first steps, then every 30 s)."""
    from lmlab.progress import polled_progress

    def steps_done(finished: set[int]) -> int:
        n = 0
        for i, j in enumerate(jobs):
            if i in finished:
                n += j.budget
                continue
            logs = log_dir / j.tag
            inter = last_logged_step(logs / "intermediate" / "metrics.jsonl")
            n += min(j.budget, inter + last_logged_step(logs / "state" / "metrics.jsonl"))
        return n

    def describe(i: int, r: dict[str, Any]) -> str:
        return f"{jobs[i].condition} seed {jobs[i].index}: {r['label']}"

    with polled_progress("state-tracking: training steps", sum(j.budget for j in jobs),
                         steps_done, describe, first_line_s=8.0, lines_every_s=30.0) as on_result:
        yield on_result


def _plots(run: Any, results: list[dict[str, Any]], c: StateTrackingConfig) -> None:
    from lmlab.plotting import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    for r in results:
        tag = f"{r['condition']} s{r['index']} ({r['label']})"
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
        fig.suptitle(f"{r['condition']} seed {r['index']}: {r['label']}")
        run.save_figure(fig, f"heatmaps_{r['condition']}_seed{r['index']}")
        plt.close(fig)


def _bench(**kwargs: Any) -> dict[str, Any]:
    """A preset's training-step pace on this device and its longest runtime (default: gpu)."""
    from lmlab.studies.state_tracking.bench import bench_steps

    return bench_steps(**kwargs)


class StateTrackingStudy(Study):
    """Li, Guo & Andreas (2025): AA vs PAA in models trained to compose permutations."""

    id = "state-tracking"
    Config = StateTrackingConfig
    presets = PRESETS
    # `--resume --set n_seeds=12` grows a sweep: the finished models are kept (ModelJob.cache_key)
    growable = ("n_seeds", "conditions", "recheck")
    # tiny: measured 884 CPU-s for 2 models on 2 one-thread workers, 516 s (width 96, the
    # stop on the lower bound; config.py); tiny-steer: about 15,100 CPU-s over 2 workers (24
    # models) before the tail for near-misses, about 18,000 with it (config.py); gpu: an
    # estimate for one H100 (config.GPU_ESTIMATE; `lmlab bench state-tracking` measures the pace)
    expected_s = {"tiny": 540, "tiny-steer": 9000, "gpu": 4500}

    def __init__(self) -> None:
        self.benchmarks = {"state-tracking": _bench}

    def validate(self, config: StudyConfig) -> None:
        """The Literal fields, then combinations no run can use (one line naming the field)."""
        super().validate(config)
        assert isinstance(config, StateTrackingConfig)
        c = config

        def bad(field: str, why: str) -> LmlabError:
            obj: Any = c
            for part in field.split("."):
                obj = getattr(obj, part)
            return LmlabError(f"state-tracking: {field} {why}, got {obj!r}")

        for cond in c.conditions:
            if cond not in INTERMEDIATE_TASKS:
                raise bad("conditions", f"must hold items from {', '.join(INTERMEDIATE_TASKS)}")
        if not c.conditions:
            raise bad("conditions", "needs at least one condition")
        if len(set(c.conditions)) != len(c.conditions):
            raise bad("conditions", "must not repeat a condition")
        for name in ("T", "n_stories", "n_seeds", "model.n_layer", "model.n_head", "train.steps",
                     "train.batch_size", "train.eval_every", "train.log_every",
                     "analysis.probe_stories", "analysis.patch_pairs"):
            obj: Any = c
            for part in name.split("."):
                obj = getattr(obj, part)
            if obj < 1:
                raise bad(name, "must be >= 1")
        if c.eval_len and c.eval_len < c.T:
            raise bad("eval_len", f"must be 0 (2T) or >= T = {c.T}")
        if not 0 < c.analysis_frac < 1:
            raise bad("analysis_frac", "must lie in (0, 1)")
        if c.model.name == "gpt" and c.model.d_model % c.model.n_head:
            raise bad("model.d_model", f"must be divisible by model.n_head = {c.model.n_head}")
        for name in ("analysis.probe_margin", "analysis.gap_margin", "train.extra_steps"):
            part, attr = name.split(".")
            if getattr(getattr(c, part), attr) < 0:
                raise bad(name, "must be >= 0")

    def run(self, config: StateTrackingConfig, run: Run) -> dict[str, Any]:  # type: ignore[override]
        jobs = config.jobs() + config.rechecks()
        log_dir = Path(run.path) / TRAIN_DIR
        with _training_progress(jobs, log_dir) as on_result:
            # the log folder is bound, not part of the job: a moved run folder still resumes
            everything = map_jobs(partial(train_and_analyze, log_dir=str(log_dir)), jobs,
                                  config.executor, on_result, run=run)
        analysis = Path(run.path) / "analysis"
        for stale in set(analysis.glob("*.json")) - {analysis / f"{j.tag}.json" for j in jobs}:
            stale.unlink()  # a model of the run before it was grown or cut down
        for job, r in zip(jobs, everything, strict=True):
            # the arrays behind the figures, so a later analysis can re-classify without training
            atomic_write_json(analysis / f"{job.tag}.json", r)
        results = [r for r in everything if not r.get("repeat")]
        metrics = summarize(config, results)
        metrics.update(stability(results, [r for r in everything if r.get("repeat")]))
        _plots(run, results, config)
        return metrics

    def claims(self, config: StateTrackingConfig, metrics: dict[str, Any]) -> list[Claim]:  # type: ignore[override]
        return claims(config, metrics)

    def checks(self, config: StateTrackingConfig, metrics: dict[str, Any]) -> list[Check]:  # type: ignore[override]
        return checks(config, metrics)


def _numbers(x: Any) -> list[float]:
    """Every number inside a result field (scalars, nested lists, dicts), in order."""
    if isinstance(x, bool | int | float):
        return [float(x)]
    if isinstance(x, dict):
        return [v for k in sorted(x) for v in _numbers(x[k])]
    if isinstance(x, list | tuple):
        return [v for item in x for v in _numbers(item)]
    return []


def stability(results: list[dict[str, Any]], repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """Same seed, same machine, twice (issue #22.2): for each retrained model, whether its label
    and every other result (accuracies, probe and patching grids, cutoffs; timings aside) came
    out identical, and the largest absolute difference.

    Keys `stability.<condition>.same_label|n_fields_differ|max_abs_diff.seed<i>` and
    `stability.all.n_rechecked|n_identical`."""
    from lmlab.threadcheck import TIMING

    first = {(r["condition"], r["index"]): r for r in results}
    m: dict[str, Any] = {}
    identical = 0
    for again in repeats:
        one = first[(again["condition"], again["index"])]
        keys = sorted(k for k in set(one) | set(again) if k != "repeat" and not TIMING.search(k))
        differ, worst = 0, 0.0
        for k in keys:
            a, b = one.get(k), again.get(k)
            if a == b:
                continue
            differ += 1
            na, nb = _numbers(a), _numbers(b)
            if not na and not nb:
                continue  # a label or other text: counted, no size
            if len(na) == len(nb):
                gaps = [abs(x - y) for x, y in zip(na, nb, strict=True)
                        if not (np.isnan(x) and np.isnan(y))]
                worst = max([worst, *gaps])
            else:
                worst = float("inf")  # a value appeared or vanished
        tail = f"seed{again['index']}"
        m[f"stability.{again['condition']}.same_label.{tail}"] = int(one["label"] == again["label"])
        m[f"stability.{again['condition']}.n_fields_differ.{tail}"] = differ
        m[f"stability.{again['condition']}.max_abs_diff.{tail}"] = worst
        identical += differ == 0
    if repeats:
        m["stability.all.n_rechecked"] = len(repeats)
        m["stability.all.n_identical"] = identical
    return m


SWEEP_FIELDS = {"converged": "converged", "label": "label", "cutoff": "cutoff_state",
                "parity_past_cutoff": "parity_past_cutoff", "cpu_s": "cpu_s"}


def sweep_table(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The sweep table (issue #22): one column per model, `sweep.<condition>.<field>.seed<i>`
    for field in converged (0/1), label, cutoff (state, 1-based length), parity past cutoff
    (absent when the state never falls below the cutoff within the evaluated lengths) and cpu_s
    (training and analysis)."""
    return {f"sweep.{r['condition']}.{name}.seed{r['index']}": r[key]
            for r in results for name, key in SWEEP_FIELDS.items() if r.get(key) is not None}


def paper_probe_label(r: dict[str, Any], a: AnalysisConfig) -> str:
    """A model's label (from its result's probe and patching grids) when the AA probe signature
    leaves out the window products, as the paper does (mechanism.classify, aa_windows=False)."""
    P, Q = r["probes"], r["patches"]
    return classify(np.asarray(P["state"]), np.asarray(P["parity"]), np.asarray(Q["same"]),
                    np.asarray(Q["opposite"]), None, a.probe_threshold, a.patch_gap_threshold,
                    a.rule, a.probe_margin, a.gap_margin, aa_windows=False).label


def summarize(config: StateTrackingConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's metrics (keys in the module docstring) from the per-model results."""
    c = config
    m: dict[str, Any] = {}
    results = [{**r, "label_paper_probes": paper_probe_label(r, c.analysis)} for r in results]
    for r in results:
        for k, v in r.items():
            if isinstance(v, (int, float, str)) and k not in ("index", "condition", "repeat",
                                                              "topic_mapping"):
                m[f"model.{r['condition']}.{k}.seed{r['index']}"] = v
    m.update(sweep_table(results))
    topics = {r["topic_mapping"] for r in results if r.get("topic_mapping")}
    if topics:  # the ntp task's topic-word matrix: the paper's released one or a seeded one
        m["steering.ntp.topic_mapping"] = "; ".join(sorted(topics))
    conv = [r for r in results if r["converged"]]

    def counts(prefix: str, rs: list[dict[str, Any]]) -> None:
        ok = [r for r in rs if r["converged"]]
        labels = [r["label"] for r in ok]
        m[f"{prefix}.n_models"] = len(rs)
        m[f"{prefix}.n_converged"] = len(ok)
        m[f"{prefix}.n_excluded"] = len(rs) - len(ok)
        paper = [r["label_paper_probes"] for r in ok]
        for lab in ("AA", "PAA", "neither", "ambiguous"):
            m[f"{prefix}.n_{lab}"] = labels.count(lab)
            m[f"{prefix}.paper_probes.n_{lab}"] = paper.count(lab)
        if ok:
            m[f"{prefix}.paa_frac"] = labels.count("PAA") / len(ok)

    for cond in c.conditions:
        rs = [r for r in results if r["condition"] == cond]
        counts(f"mechanism.{cond}", rs)
        m[f"accuracy.{cond}.min_within_T"] = min(r["acc_min_within_T"] for r in rs)
    counts("mechanism.all", results)
    m["accuracy.all.min_within_T"] = min(r["acc_min_within_T"] for r in results)
    m["accuracy.all.mean_within_T"] = float(np.mean([r["acc_within_T"] for r in results]))
    by = {lab: [r for r in conv if r["label"] == lab] for lab in ("AA", "PAA")}
    for lab, rs in by.items():
        if not rs:
            continue
        m[f"cutoff.{lab}.mean"] = float(np.mean([r["cutoff_state"] for r in rs]))
        steps = [r["steps_to_converge"] for r in rs if r["steps_to_converge"] is not None]
        if steps:
            m[f"converge.{lab}.mean_steps"] = float(np.mean(steps))
        par = [r["parity_past_cutoff"] for r in rs if r["parity_past_cutoff"] is not None]
        if par:
            m[f"parity_past_cutoff.{lab}.mean"] = float(np.mean(par))
            m[f"parity_past_cutoff.{lab}.min"] = float(np.min(par))
        # the per-model intervals over test stories: the worst lower and the best upper bound
        los = [r["parity_past_cutoff_ci_lo"] for r in rs
               if r.get("parity_past_cutoff_ci_lo") is not None]
        his = [r["parity_past_cutoff_ci_hi"] for r in rs
               if r.get("parity_past_cutoff_ci_hi") is not None]
        if los:
            m[f"parity_past_cutoff.{lab}.n"] = len(los)
            m[f"parity_past_cutoff.{lab}.ci_lo_min"] = float(np.min(los))
            m[f"parity_past_cutoff.{lab}.ci_hi_max"] = float(np.max(his))
    if by["AA"] and by["PAA"]:
        d = bootstrap_diff([r["cutoff_state"] for r in by["AA"]],
                           [r["cutoff_state"] for r in by["PAA"]], paired=False,
                           seed=derive(c.seed, "bootstrap", "cutoff"))
        m.update({"cutoff.aa_minus_paa.diff": d.value, "cutoff.aa_minus_paa.ci_lo": d.lo,
                  "cutoff.aa_minus_paa.ci_hi": d.hi})
    # the shift of the PAA fraction against the reference condition (none if trained), over
    # converged models; the intervals are Bonferroni-widened for the number of comparisons
    ref = "none" if "none" in c.conditions else c.conditions[0]
    others = [cnd for cnd in c.conditions if cnd != ref]
    level = 1 - 0.05 / max(1, len(others))
    for cnd in others:
        a = [float(r["label"] == "PAA") for r in conv if r["condition"] == cnd]
        b = [float(r["label"] == "PAA") for r in conv if r["condition"] == ref]
        key = f"shift.{cnd}_vs_{ref}"
        m[f"{key}.level"] = level
        if len(a) >= MIN_MODELS and len(b) >= MIN_MODELS:
            d = bootstrap_diff(a, b, paired=False, level=level,
                               seed=derive(c.seed, "bootstrap", "shift", cnd))
            m.update({f"{key}.diff": d.value, f"{key}.ci_lo": d.lo, f"{key}.ci_hi": d.hi})
    m["data.val_test.overlap"] = sum(r["val_test_overlap"] for r in results)
    m["cost.all.wall_s_max"] = max(r["wall_s"] for r in results)
    m["cost.all.cpu_s_max"] = max(r["cpu_s"] for r in results)
    m["cost.all.cpu_s_mean"] = float(np.mean([r["cpu_s"] for r in results]))
    return m


STUDY = StateTrackingStudy()
