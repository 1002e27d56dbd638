"""The `tiny` preset's pre-trained base: where it comes from, in the order tried.

1. `pretrained=FILE`: a checkpoint the user names (`pretrain.source` = "given");
2. the run folder's own `checkpoints/pretrained.safetensors`, which a resumed run keeps (the
   source it was first made from);
3. lmlab's cache folder (`$LMLAB_CACHE/ttt-arc/bases/<key>.safetensors`), where an earlier run
   left a base made by the same recipe ("cache"); `cache_base=false` neither reads nor writes it;
4. pre-training ("trained"), in a child process (in this one with `executor=serial`, so that
   `lmlab bench` profiles it), whose base then goes to the cache.

The cache key (`base_key`) hashes everything that decides the weights: the model shape, the
pre-training settings (not their logging or checkpoint cadence), the derived pre-training seed,
the grid sizes and demo count, the torch version and the source of the modules that generate,
encode and train (`CODE`). A cached file is loaded with safetensors (no pickle) and used only
when its recorded key and every tensor's name and shape match; anything else is one line on
stderr and a fresh pre-training that replaces it. Writes are atomic. The cache itself (keys,
checked loads, atomic stores) is `lmlab.nn.basecache`, shared with the intruders study.

The child process runs with `OMP_WAIT_POLICY=PASSIVE` (read by the OpenMP runtime when torch
loads, so it must be set before the process starts): with `pretrain.threads=2`, a thread that
waits for the other sleeps instead of spinning, so on a loaded machine two threads cost about
what one does, and on a quiet one they share the work.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lmlab.nn.basecache import BaseCache, tensor_shapes
from lmlab.studies.ttt_arc.config import TTTArcConfig

__all__ = ["BASES", "CODE", "base_key", "cache_path", "cached_base", "pretrained_base",
           "store_base"]

# Modules whose source decides the pre-trained weights (besides the config): a change to any of
# them makes a new key.
CODE = ("lmlab.studies.ttt_arc.generator", "lmlab.studies.ttt_arc.serialize",
        "lmlab.studies.ttt_arc.arc", "lmlab.studies.ttt_arc.pretrain",
        "lmlab.studies.ttt_arc.model", "lmlab.nn.gpt", "lmlab.nn.train", "lmlab.seeding")
BASES = BaseCache("ttt-arc", CODE, format=1)
# Pre-training settings that change how often it logs or checkpoints, never the weights.
CADENCE = ("log_every", "ckpt_every")


def _say(msg: str) -> None:
    BASES.say(msg)


def base_key(c: TTTArcConfig) -> str:
    """The cache key of the base that `c` pre-trains (hex SHA-256)."""
    from lmlab.seeding import derive
    from lmlab.studies.ttt_arc.serialize import GridTokenizer

    recipe = {k: v for k, v in asdict(c.pretrain).items() if k not in CADENCE}
    return BASES.key({"model": asdict(c.model), "pretrain": recipe,
                      "seed": derive(c.seed, "pretrain"), "max_side": c.max_side,
                      "n_demos": c.n_demos, "colours": c.colours, "vocab": GridTokenizer.vocab_size})


def cache_path(key: str) -> Path:
    """Where the base of `key` lives in lmlab's cache folder."""
    return BASES.path(key)


def _shapes(c: TTTArcConfig) -> dict[str, tuple[int, ...]]:
    """The tensors a base of `c.model` holds (the tied unembedding is stored once)."""
    from lmlab.studies.ttt_arc.model import build_model
    from lmlab.studies.ttt_arc.serialize import GridTokenizer

    sd = build_model(c.model, GridTokenizer.vocab_size, 0).state_dict()
    return tensor_shapes({k: v for k, v in sd.items() if k != "lm_head.weight"})


def cached_base(c: TTTArcConfig, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The cached base of `key` as (tensors, pre-training metrics), or None when there is none
    or it cannot be used (said in one line)."""
    return BASES.load(key, _shapes(c))


def store_base(key: str, tensors: dict[str, Any], metrics: dict[str, Any]) -> Path | None:
    """Write the base to the cache atomically; a cache that cannot be written is one line."""
    return BASES.store(key, tensors, metrics)


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for the block (a spawned child inherits them)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _pretrain_job(c: TTTArcConfig, run_dir: str, resume: bool, path: str) -> dict[str, Any]:
    """Pre-train (here or in the child) with the run's checkpoints and progress, save the base
    to `path`, return its metrics."""
    from lmlab.executor import torch_threads
    from lmlab.progress import step_progress
    from lmlab.runs import Run
    from lmlab.seeding import derive
    from lmlab.studies.ttt_arc.backends import save_tiny
    from lmlab.studies.ttt_arc.model import count_params
    from lmlab.studies.ttt_arc.pretrain import pretrain
    from lmlab.studies.ttt_arc.serialize import GridTokenizer

    run = Run(run_dir, resume=resume)
    with torch_threads(max(1, c.pretrain.threads)), \
            step_progress(run, "ttt-arc: pre-training", c.pretrain.steps) as watched:
        model, out = pretrain(GridTokenizer(), c.model, c.pretrain, derive(c.seed, "pretrain"),
                              max_side=c.max_side, n_demos=c.n_demos or None, run=watched,
                              colours=c.colours)
    pre = {"pretrain.loss": out["train_loss"], "pretrain.steps": out["steps_done"],
           "pretrain.wall_s": out["pretrain_wall_s"], "pretrain.cpu_s": out["pretrain_cpu_s"],
           "pretrain.n_params": count_params(model), "pretrain.threads": c.pretrain.threads}
    save_tiny(model, path, {**pre, "pretrain.source": "trained"})
    return pre


def _pretrain_in_child(c: TTTArcConfig, run: Any, path: Path) -> dict[str, Any]:
    """Run `_pretrain_job` in a spawned process with passive OpenMP waiting. The child shows
    nothing itself; this process shows its steps, read from the run's log, in the study's one
    display (two processes drawing on one terminal garble it)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from lmlab.executor import die_with_parent
    from lmlab.progress import polled_progress
    from lmlab.runs import last_logged_step

    steps = c.pretrain.steps

    def done(finished: set[int]) -> int:
        return steps if finished else min(steps, last_logged_step(run.metrics_path))

    with polled_progress("ttt-arc: pre-training", steps, done,
                         lambda i, r: "the base is pre-trained") as on_result:
        # the child dies with a SIGKILLed run, like the executor's pool workers
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"),
                                 initializer=die_with_parent) as pool:
            with _environ(OMP_WAIT_POLICY="PASSIVE", LMLAB_PROGRESS="off"):
                future = pool.submit(_pretrain_job, c, str(run.path), bool(run.resume),
                                     str(path))
            pre = future.result()
        on_result(0, pre)
    return pre


def pretrained_base(c: TTTArcConfig, run: Any) -> tuple[Path, dict[str, Any]]:
    """The base's checkpoint for this run and the metrics of the pre-training that made it,
    with `pretrain.source` (see the module docstring)."""
    from lmlab.errors import LmlabError
    from lmlab.runs import load_tensors, save_tensors

    if c.pretrained:
        given = Path(c.pretrained)
        if not given.is_file():
            raise LmlabError(f"pretrained={c.pretrained}: no such checkpoint")
        _, state = load_tensors(given)
        return given, {**dict(state or {}), "pretrain.source": "given"}
    path = Path(run.checkpoint_path("pretrained"))
    if path.is_file():  # a resumed run keeps its base
        _, state = load_tensors(path)
        run.log(pretrain_reused=str(path))
        return path, {"pretrain.source": "trained", **dict(state or {})}
    key = base_key(c) if c.cache_base else ""
    hit = cached_base(c, key) if key else None
    if hit is not None:
        tensors, metrics = hit
        pre = {**metrics, "pretrain.source": "cache"}
        save_tensors(path, tensors, pre)
        _say(f"reusing the pre-trained base from {cache_path(key)} (cache_base=false "
             "pre-trains anew)")
        return path, pre
    if c.executor == "serial":  # everything in this process (what `lmlab bench` profiles)
        pre = _pretrain_job(c, str(run.path), bool(run.resume), str(path))
    else:
        pre = _pretrain_in_child(c, run, path)
    if key:
        tensors, _ = load_tensors(path)
        store_base(key, tensors, pre)
    return path, {**pre, "pretrain.source": "trained"}
