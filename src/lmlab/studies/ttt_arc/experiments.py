"""The per-task jobs of the study: in-context, augmented voting, TTT, and the ablations.

One `TaskJob` holds one held-out task and everything a worker needs (where the model comes
from, the LoRA settings, the TTT and inference settings). `run_task_job` computes, for that task:

- (a) `icl`: the base model, identity inference: two greedy answers with all demos, in their
  given order (attempt 1) and reversed (attempt 2, when it differs);
- (b) `icl_vote`: the base model on the augmented queries, hierarchical vote, <= 2 attempts;
- (c) `ttt`: per-task TTT (leave-one-out, transforms, colours), then identity inference as (a);
- (d) `ttt_vote`: the same adapter on the same augmented queries as (b), hierarchical vote;
- the no-transform ablation (`notf`, `notf_vote`): TTT on the leave-one-out tasks alone;
- `ttt_flat`: (d)'s predictions by a flat majority vote; `ttt_oracle`: all of (d)'s distinct
  predictions (the oracle bound: solved if any of them is right).

Every condition makes at most two attempts, in order, so each is scored alike at pass@1 (the
first attempt) and pass@2: (a) and (c) the same two identity queries, (b) and (d) the same
augmented query set, so a comparison of two conditions of the same inference is like for like.
`SharedJob` trains one adapter on the pooled TTT data of several tasks (the shared-adapter
ablation) and predicts for each. Jobs run through `lmlab.executor`, one task per call; the
worker caches the loaded model, and `AdapterHost` resets the adapter before every task.

Nothing here reads a test output: predictions are returned, and scoring (`study.py`) compares
them with the answers inside `reveal_solutions()`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lmlab.executor import job_threads
from lmlab.seeding import derive, numpy_rng
from lmlab.studies.ttt_arc.arc import ArcTask, Grid
from lmlab.studies.ttt_arc.config import (
    GPT_TARGETS,
    LLAMA_TARGETS,
    InferenceSettings,
    LoraSettings,
    TTTArcConfig,
    TTTData,
)
from lmlab.studies.ttt_arc.inference import build_queries, invert
from lmlab.studies.ttt_arc.transforms import (
    TRANSFORMS_BY_NAME,
    TTT_TRANSFORMS,
    Transform,
)
from lmlab.studies.ttt_arc.ttt import AdapterHost
from lmlab.studies.ttt_arc.ttt_data import build_ttt_tasks
from lmlab.studies.ttt_arc.voting import flat_vote, hierarchical_vote

__all__ = [
    "DIHEDRAL_TTT", "ModelRef", "SharedJob", "TTTSettings", "TaskJob", "run_shared_job",
    "run_task_job", "transforms_named",
]

DIHEDRAL_TTT = ("rot90", "rot270", "rot180", "flipud", "fliplr", "transpose")


def transforms_named(names: Sequence[str] | str) -> tuple[Transform, ...]:
    """TTT transforms by name; "all" is the paper's 23, "none" or () none at all."""
    if names == "all" or names == ("all",):
        return TTT_TRANSFORMS
    if names in ("none", ("none",), ()):
        return ()
    names = (names,) if isinstance(names, str) else tuple(names)
    unknown = [n for n in names if n not in TRANSFORMS_BY_NAME]
    if unknown:
        raise ValueError(f"unknown transform(s) {unknown}; known: {sorted(TRANSFORMS_BY_NAME)}")
    return tuple(TRANSFORMS_BY_NAME[n] for n in names)


@dataclass(frozen=True)
class ModelRef:
    """Where a worker gets the model: a tiny checkpoint (`kind="tiny"`) or a HF spec."""

    kind: str  # "tiny" | "hf"
    path: str  # checkpoint file (tiny) or model spec (hf)
    spec: Any  # the config's ModelSpec for tiny, None for hf
    max_new: int  # tokens to generate per answer
    max_tokens: int  # longest training sequence / prompt plus answer
    dtype: str  # hf: the config's dtype (the tiny GPT runs float32)
    device: str  # hf: the resolved device (the tiny GPT runs on the CPU)


@dataclass(frozen=True)
class TTTSettings:
    """The TTT and inference settings shared by every task of a run (from the config's
    `lora`, `ttt`, `infer` and `ablate`; see `from_config`)."""

    lora: LoraSettings
    data: TTTData
    infer: InferenceSettings
    ablate_no_transforms: bool

    @classmethod
    def from_config(cls, c: TTTArcConfig) -> TTTSettings:
        """The run's settings: the adapter's targets by backend and its initial weights drawn
        from a seed derived from the run's seed."""
        targets = c.lora.targets or (GPT_TARGETS if c.backend == "tiny" else LLAMA_TARGETS)
        lora = replace(c.lora, targets=targets, init_seed=derive(c.seed, "adapter-init"))
        return cls(lora, c.ttt, c.infer, c.ablate.no_transforms)


@dataclass(frozen=True)
class TaskJob:
    """One held-out task and how to solve it (`seed`: its TTT and query randomness)."""

    task: ArcTask
    family: str
    rep: int  # the replicate it belongs to
    seed: int
    model: ModelRef
    ttt: TTTSettings


@dataclass(frozen=True)
class SharedJob:
    """The shared-adapter ablation: one adapter on the pooled TTT data of `tasks`."""

    tasks: tuple[ArcTask, ...]
    rep: int
    seed: int
    model: ModelRef
    ttt: TTTSettings
    steps: int  # total optimizer steps of the shared adapter


# -- the worker's model ------------------------------------------------------------------------
_CACHE: dict[tuple, tuple[Any, AdapterHost]] = {}


def _host(ref: ModelRef, lora: LoraSettings) -> tuple[Any, AdapterHost]:
    """(backend, host) for `ref`, loaded once per process (the adapter is reset per task)."""
    key = (ref, lora)
    if key not in _CACHE:
        _CACHE.clear()  # one model per worker at a time
        if ref.kind == "tiny":
            from lmlab.studies.ttt_arc.backends import TinyBackend

            backend = TinyBackend.load(ref)
        else:
            from lmlab.studies.ttt_arc.backends import HFBackend

            backend = HFBackend.load(ref)
        host = AdapterHost(backend.model, lora, backend.pad_id, backend.coords_fn)
        _CACHE[key] = (backend, host)
    return _CACHE[key]


# -- predictions -------------------------------------------------------------------------------
def _identity_attempts(backend: Any, model: Any, task: ArcTask) -> list[Grid | None]:
    """(a)/(c): identity inference, two attempts: the greedy answers with all demos in their
    given order and reversed (the second kept only when it differs; None: unparseable)."""
    orders = [tuple(task.train)]
    if len(task.train) > 1:
        orders.append(tuple(reversed(task.train)))
    outs = backend.generate(model, [backend.prompt(d, task.test_inputs[0]) for d in orders])
    grids = [backend.decode(o) for o in outs]
    if len(grids) > 1 and (grids[1] is None or _same(grids[0], grids[1])):
        grids = grids[:1]
    return grids


def _same(a: Grid | None, b: Grid | None) -> bool:
    return a is not None and b is not None and np.array_equal(np.asarray(a), np.asarray(b))


def _augmented(backend: Any, model: Any, task: ArcTask, seed: int, s: TTTSettings,
               max_prompt: int) -> tuple[list[tuple[Grid | None, str]], int]:
    """(b)/(d): predictions for the augmented queries, mapped back, with their groups."""
    transforms = tuple(TRANSFORMS_BY_NAME[n] for n in s.infer.transforms)
    queries = build_queries(task, 0, numpy_rng(seed, 17), s.infer.n_orderings,
                            transforms, max_tokens=max_prompt, token_len=backend.prompt_len)
    prompts = [backend.prompt(q.demos, q.test_input) for q in queries]
    outs = backend.generate(model, prompts)
    preds = [(invert(backend.decode(o), q.transform), q.transform.name)
             for q, o in zip(queries, outs, strict=True)]
    return preds, len(queries)


def _distinct(preds: Sequence[tuple[Grid | None, str]]) -> list[Grid]:
    seen: dict[tuple, Grid] = {}
    for g, _ in preds:
        if g is not None:
            seen.setdefault((g.shape, np.ascontiguousarray(g, dtype=np.int8).tobytes()), g)
    return list(seen.values())


def _ttt_seqs(backend: Any, task: ArcTask, seed: int, s: TTTSettings, transforms: Sequence[str]
              ) -> list[tuple[list[int], list[int]]]:
    items = build_ttt_tasks(task, numpy_rng(seed, 29), max_tasks=s.data.max_tasks,
                            transforms=transforms_named(transforms), permute_n=s.data.permute_n,
                            max_tokens=backend.max_tokens + 1, token_len=backend.task_len)
    return [backend.encode(it.demos, it.query.input, it.query.output) for it in items]


def _as_lists(grids: Sequence[Grid | None]) -> list[list[list[int]] | None]:
    return [None if g is None else np.asarray(g).tolist() for g in grids]


def run_task_job(job: TaskJob) -> dict[str, Any]:
    """All conditions for one task; predictions as nested lists (module docstring)."""
    job_threads(1)
    backend, host = _host(job.model, job.ttt.lora)
    task, s = job.task, job.ttt
    max_prompt = backend.max_tokens - backend.max_new
    preds: dict[str, list] = {}
    info: dict[str, Any] = {"id": task.id, "family": job.family, "rep": job.rep}
    t0, c0 = time.perf_counter(), time.process_time()
    with host.model.disable_adapter():
        preds["icl"] = _identity_attempts(backend, host.model, task)
        aug, nq = _augmented(backend, host.model, task, job.seed, s, max_prompt)
    preds["icl_vote"] = hierarchical_vote(aug)
    info["n_queries"] = nq
    info["base_infer_s"] = time.perf_counter() - t0
    variants = [("ttt", s.data.transforms)]
    if s.ablate_no_transforms:
        variants.append(("notf", ()))
    for name, transforms in variants:
        seqs = _ttt_seqs(backend, task, job.seed, s, transforms)
        fit = host.train(seqs, seed=job.seed)
        info[f"{name}_fit"] = fit
        t1 = time.perf_counter()
        preds[name] = _identity_attempts(backend, host.model, task)
        aug, _ = _augmented(backend, host.model, task, job.seed, s, max_prompt)
        preds[f"{name}_vote"] = hierarchical_vote(aug)
        if name == "ttt":
            preds["ttt_flat"] = flat_vote(aug)
            preds["ttt_oracle"] = _distinct(aug)
        info[f"{name}_infer_s"] = time.perf_counter() - t1
    host.reset()
    info["preds"] = {k: _as_lists(v) for k, v in preds.items()}
    info["wall_s"], info["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    return info


def run_shared_job(job: SharedJob) -> dict[str, Any]:
    """Train one adapter on every task's TTT data pooled, then predict for each task."""
    job_threads(1)
    backend, host = _host(job.model, job.ttt.lora)
    s = job.ttt
    pooled = [seq for t in job.tasks
              for seq in _ttt_seqs(backend, t, job.seed, s, s.data.transforms)]
    fit = host.train(pooled, seed=job.seed, settings=host.with_settings(max_steps=job.steps,
                                                                       epochs=10**6))
    max_prompt = backend.max_tokens - backend.max_new
    out = []
    for t in job.tasks:
        aug, _ = _augmented(backend, host.model, t, job.seed, s, max_prompt)
        preds = {"shared": _identity_attempts(backend, host.model, t),
                 "shared_vote": hierarchical_vote(aug)}
        out.append({"id": t.id, "preds": {k: _as_lists(v) for k, v in preds.items()}})
    host.reset()
    return {"rep": job.rep, "fit": fit, "tasks": out}

