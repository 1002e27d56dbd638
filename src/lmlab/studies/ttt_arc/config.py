"""The ttt-arc study's configuration and its presets.

- `tiny`: a ~1M-parameter GPT pre-trained on generated ARC-like tasks, 3 seeds x 16 held-out
  tasks (about 13 minutes wall, 9.4 CPU minutes, on a loaded 2-core machine);
- `smol`: SmolLM2-135M-Instruct on 3 small real ARC tasks (minutes on a CPU);
- `paper`: Llama-3.2-1B-Instruct on the 400 ARC-AGI-1 evaluation tasks (GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lmlab.executor import ExecutorName
from lmlab.study import StudyConfig

__all__ = ["PAPER", "PRESETS", "SMOL", "TINY", "TTTArcConfig"]


@dataclass
class TTTArcConfig(StudyConfig):
    """Every knob of the study; see the presets for the three scales."""

    backend: Literal["tiny", "hf"] = "tiny"
    executor: ExecutorName = "process"  # where the per-task jobs run
    workers: int = 2  # process pool size
    seeds: int = 3  # replicate draws of held-out tasks and TTT randomness
    # tiny: data and model
    n_eval: int = 16  # held-out tasks per seed
    heldout: tuple[str, ...] = ()  # held-out compositions (empty: generator's default)
    n_layer: int = 5
    n_head: int = 4
    d_model: int = 128
    block_size: int = 512
    pos: Literal["learned", "sinusoidal", "rope", "none"] = "rope"  # relative positions: copying a grid is attending a fixed offset back
    coords: bool = True  # 2-D grid coordinates (GridTokenizer.coords) added to the embeddings
    max_side: int = 5  # largest grid side of pre-training and held-out tasks (3..6)
    n_demos: int = 3  # demonstrations per generated task (0: 3 or 4 at random)
    pre_steps: int = 1200
    pre_batch: int = 16
    pre_lr: float = 3e-3
    pre_single_weight: int = 2  # each single family this many times per composition in the mix
    # torch threads while pre-training (the per-task jobs use 1 each): on a small shared CPU,
    # intra-op threads that wait for each other burn CPU (2 threads: ~2.3 CPU-s a step under
    # load, against 0.34 with 1)
    pre_threads: int = 1
    pretrained: str = ""  # a tiny checkpoint to reuse instead of pre-training (same shape)
    # hf: model and data
    hf_model: str = "smollm2-135m-instruct"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    arc_version: str = "kaggle2024"
    arc_split: Literal["training", "evaluation"] = "evaluation"
    arc_ids: tuple[str, ...] = ()  # only these task ids (empty: every task)
    arc_tasks: int = 0  # how many (0: all that pass the size filter)
    arc_max_side: int = 30  # keep tasks whose every known grid is at most this per side
    max_tokens: int = 8192  # hf: longest sequence (tiny: block_size + 1)
    max_new: int = 0  # tokens generated per answer (0: enough for the largest grid)
    # TTT (LoRA through PEFT) and inference
    lora_r: int = 128
    lora_alpha: float = 16.0
    lora_lr: float = 1e-4
    lora_epochs: int = 2
    lora_batch: int = 2
    lora_warmup: float = 0.1
    lora_wd: float = 0.01
    lora_max_steps: int = 0  # 0: no cap
    ttt_max_tasks: int = 250
    ttt_transforms: tuple[str, ...] = ("all",)
    permute_n: int = 1
    n_orderings: int = 2
    inference_transforms: tuple[str, ...] = (
        "identity", "transpose", "flipud", "fliplr", "rot90", "rot180")
    ablate_no_transforms: bool = True
    ablate_shared: bool = True
    shared_steps_per_task: int = 0  # shared adapter: steps per pooled task (0: as per-task TTT)
    n_boot: int = 2000


TINY = TTTArcConfig(
    backend="tiny", seeds=3, n_eval=16, lora_r=32, lora_alpha=32.0, lora_lr=2e-3,
    lora_epochs=2, lora_batch=4, ttt_max_tasks=48,
    ttt_transforms=("rot90", "rot270", "rot180", "flipud", "fliplr", "transpose"),
)
SMOL = TTTArcConfig(
    backend="hf", hf_model="smollm2-135m-instruct", seeds=1, arc_tasks=3, arc_max_side=5,
    max_tokens=2048, lora_r=16, lora_alpha=16.0, lora_lr=1e-4, lora_epochs=1, lora_batch=2,
    ttt_max_tasks=4, n_orderings=0, ablate_no_transforms=False, ablate_shared=False,
    executor="serial", workers=1,
)
PAPER = TTTArcConfig(
    backend="hf", hf_model="meta-llama/Llama-3.2-1B-Instruct", dtype="bfloat16", seeds=1,
    arc_tasks=0, arc_max_side=30, max_tokens=8192, lora_r=128, lora_alpha=16.0, lora_lr=1e-4,
    lora_epochs=2, lora_batch=2, lora_warmup=0.1, lora_wd=0.01, ttt_max_tasks=250,
    ttt_transforms=("all",), n_orderings=2, executor="ray", device="auto",
)

PRESETS: dict[str, TTTArcConfig] = {"tiny": TINY, "smol": SMOL, "paper": PAPER}
