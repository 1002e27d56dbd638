"""Configuration and presets of the `adaptive-compute` study."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lmlab.executor import ExecutorName
from lmlab.study import StudyConfig

__all__ = ["PRESETS", "AdaptiveComputeConfig"]


@dataclass
class AdaptiveComputeConfig(StudyConfig):
    """Every knob of a run; `--set key=value` overrides any of them.

    Collection: `n_queries` generated queries (`domains`, graded difficulty) split into train /
    val / test, `n_samples` answers each from `model` at `temperature` (plus one greedy answer for
    routing) and the prompt's last-token hidden state after `hidden_layer`. `table` analyses an
    existing sample table (JSONL or Parquet, e.g. collected on a server) instead of collecting.
    Allocation: budgets in [b_min, b_max] samples per query; savings read at uniform best-of-k
    for each k in `uniform_k`; quality gain at the average budget `fixed_budget`; the probe
    against the heuristics at `compare_budget`; the pilot heuristic draws `pilot_m` samples first.
    Routing: greedy decoding (weak) against best-of-`routing_k` sampling (strong).
    """

    model: str = "hf:qwen2.5-coder-0.5b-instruct"
    table: str = ""  # a sample table to analyse instead of collecting one
    domains: tuple[str, ...] = ("arithmetic", "word")
    n_queries: int = 240
    train_frac: float = 0.4
    val_frac: float = 0.2
    n_samples: int = 8
    temperature: float = 0.7
    max_tokens: int = 16  # "a * b = c" with a three-digit product takes 15-17 tokens
    hidden_layer: int = 12
    # hf weights: bfloat16 runs the 0.5B in 43% of float32's CPU time (AVX512-BF16) with the
    # same pass rates on a 16-query check
    dtype: Literal["float32", "bfloat16"] = "bfloat16"
    batch_size: int = 36  # rows per forward pass: 4 queries x (8 samples + 1 greedy)
    chunk: int = 8  # queries per sampling call (one job of the collection)
    executor: ExecutorName = "process"  # where the collection's chunks run
    workers: int = 2  # collection processes (each one torch thread and its own model copy)
    b_min: int = 1
    b_max: int = 8
    uniform_k: tuple[int, ...] = (4, 8)
    fixed_budget: int = 2
    compare_budget: int = 3
    pilot_m: int = 2
    routing_k: int = 8
    # mlp: the MLP probe on the cached hidden states (CPU); lora: the model itself LoRA-tuned
    # (PEFT) with a linear head on the same layer's last-token state (GPU; hf models only)
    predictor: Literal["mlp", "lora"] = "mlp"
    lora_r: int = 8
    lora_epochs: int = 3
    probe_epochs: int = 300
    n_boot: int = 1000


PRESETS: dict[str, AdaptiveComputeConfig] = {
    # 240 arithmetic and word problems (8 + 4 difficulty levels), N = 8 samples and one greedy
    # answer each from Qwen2.5-Coder-0.5B-Instruct (bfloat16) at temperature 0.7, the probe on
    # layer 12's last-token state; 96 train / 48 val / 96 test queries. Measured whole run
    # (2026-12-06, 2 cores at load average ~22): 477 CPU-s (collection 469, 1.95 CPU-s per
    # query in 2 worker processes; analysis 4), 30:44 wall; on a quiet 2-core machine about
    # 4-5 minutes. Each finished chunk of 8 queries is kept in the run folder and reused on
    # --resume. The embedded SmolLM2-135M
    # (--set model=hf:smollm2-135m-instruct) is too weak for this task: it solves almost no
    # query every time, so there is little to allocate.
    "tiny": AdaptiveComputeConfig(),
    # The paper's setting on a GPU: 5,000 queries, N = 32 samples, budgets up to 16, a 1.5B model.
    # Code (HumanEval-style, `verifiers.CodeTests`) and chat (a reward model, `verifiers.RewardModel`)
    # collections come in through `table=` (JSONL/Parquet collected with `collect.collect`).
    "paper": AdaptiveComputeConfig(
        model="hf:qwen2.5-coder-1.5b-instruct", device="cuda", n_queries=5000, n_samples=32,
        b_max=16, uniform_k=(4, 8, 16), fixed_budget=4, compare_budget=4, routing_k=16,
        max_tokens=64, batch_size=256, chunk=32, hidden_layer=14, n_boot=2000, executor="serial",
        workers=1,
    ),
}
