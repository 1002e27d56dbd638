"""The intruders study's configuration and its presets (what each runs and costs is noted at
`PRESETS`).

The top level holds what a run sweeps (the experiment, seeds, task, LoRA ranks and alpha
schemes); each part of the work has its own sub-config, reached on the command line with a
dotted key (`--set pretrain.steps=200`, `--set smol.steps=40`, `--set mitigation.method=rslora:8`).
The jobs carry these sub-configs themselves (`IntruderConfig.setup`), so no default is written
twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lmlab.executor import ExecutorName
from lmlab.study import StudyConfig

__all__ = [
    "PRESETS",
    "Continual",
    "Detect",
    "Finetune",
    "GPTShape",
    "IntruderConfig",
    "Mitigation",
    "Paper",
    "Pretrain",
    "Rules",
    "Smol",
    "SmolTaskName",
    "Task",
]

# the downstream tasks of the synthetic language (data.TASK_LABELS)
Task = Literal["topic_first", "topic_last", "negation", "majority"]
Scheme = Literal["alpha2r", "fixed", "rslora"]


@dataclass(frozen=True)
class GPTShape:
    """The tiny GPT the `tiny` experiment pre-trains and fine-tunes."""

    d_model: int = 128
    n_layer: int = 2
    n_head: int = 4
    seq_len: int = 32


@dataclass(frozen=True)
class Pretrain:
    """Pre-training on the synthetic language (once per seed, kept in the run folder)."""

    steps: int = 600
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.1
    heldout: int = 256  # held-out pre-training windows (forgetting)


@dataclass(frozen=True)
class Finetune:
    """The fine-tuning recipe: data sizes, steps, early stopping, learning rates, alphas."""

    text_len: int = 24  # text tokens of a task example
    n_train: int = 4000
    n_val: int = 256  # early stopping reads this split only
    n_test: int = 512  # every reported accuracy is on this split
    batch: int = 32
    max_steps: int = 500
    warmup_steps: int = 20
    eval_every: int = 20
    target_acc: float = 0.95  # every run stops here on validation, so accuracies match (0: off)
    full_lr: float = 5e-5
    lora_lr: float = 1e-3  # at r = 1, alpha = 2; see lr_rule
    lr_rule: Literal["normalized", "constant"] = "normalized"
    fixed_alpha: float = 8.0  # the `fixed` scheme's alpha
    rslora_alpha: float = 8.0


@dataclass(frozen=True)
class Detect:
    """The detector: the top-k tuned singular vectors whose max |cos| with the base's is < eps."""

    k: int = 10
    eps: float = 0.5
    # the null count (decidable.py): perturbations of the base with each update's spectrum in
    # random directions, per single-task run; a matrix is decidable on a seed when full FT's
    # draws give no intruder (0: no null, no restricted counts)
    null_draws: int = 4


@dataclass(frozen=True)
class Continual:
    """Continual learning: several tasks in sequence from the same base."""

    tasks: tuple[Task, ...] = ("topic_first", "negation", "topic_last")
    methods: tuple[str, ...] = ("full", "alpha2r:1", "alpha2r:8", "rslora:64")
    seeds: int = 1


@dataclass(frozen=True)
class Mitigation:
    """The lambda sweep of the mitigation, on one method's first-task adapter."""

    lambdas: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25, 0.0)
    method: str = "alpha2r:1"


@dataclass(frozen=True)
class Rules:
    """The thresholds the claims are judged by (each is named in its claim's statement)."""

    low_rank_max: int = 8  # "low-rank LoRA" is r <= this
    about_none: float = 0.5  # "about none": at most this many intruders per model
    acc_band: float = 0.05  # runs within this of target_acc count as "equal accuracy"
    mitigation_max_drop: float = 0.05
    matched_acc: float = 0.03  # smol: LoRA and full FT "at matched accuracy" within this


SmolTaskName = Literal["topic", "code_first", "code_last"]  # smol_data.SMOL_TASKS


@dataclass(frozen=True)
class Smol:
    """The `smol` experiment: SmolLM2-135M-Instruct, full FT against LoRA (single task, then
    continual learning over several tasks in sequence)."""

    # Measured (2-core machine at load 6-8, 1 torch thread per job; "ratio" = ||dW||_2 /
    # sigma_10 of the base, median / max over the 210 targeted matrices; k = 10, eps = 0.5):
    # - `topic` (4 topic names the model knows), 240 steps, full 1e-5, LoRA 3e-4: every method
    #   at 0.99-1.00, no intruders, no forgetting (-0.03 to -0.003 nats). At 40 steps (234 CPU-s):
    #   full FT acc 0.86, ratio 0.004 / 0.008; LoRA r=1 acc 0.58, ratio 0.011 / 0.029; no
    #   intruders. Updates two orders of magnitude below sigma_10: the measured reason.
    # - `code_first` (an arbitrary 24-way cipher of the first noun; base 0.10, chance 0.04),
    #   60 steps, 640 examples: full FT at 1e-5 acc 0.08 (ratio 0.005 / 0.016); LoRA r=1 at
    #   3e-3 acc 0.18 (val 0.25), ratio 0.095 / 0.31, 0 intruders, forgetting 1.9 nats; at 1e-2
    #   acc 0.68 (val 0.67), ratio 0.40 / 1.53, 9 intruders (eps 0.3-0.7: 1 / 3 / 9 / 15 / 28),
    #   forgetting 8.8 nats. So LoRA lr 1e-2 (best on validation of the two) and full FT 1e-4
    #   (1e-5 does not learn the cipher in this budget); 100x apart, as the paper's 3e-4 / 1e-5
    #   are 30x apart, with 300x fewer steps than its runs. CPU: ~1.4 CPU-s a LoRA step,
    #   ~1.8 a full-FT step, ~15 CPU-s per analysis (210 matrices) and accuracy pass.
    # - This preset (64 steps; continual 3 x 40 steps): 1,239 CPU-s, 32 min wall at load 5-8
    #   (13:16 and 1,422 CPU-s on a quiet 2-core machine, 2 workers). Test accuracy full FT 0.984, LoRA
    #   r=1 0.992, r=8 1.000, r=64 1.000, rsLoRA r=64 1.000 (matched: gap 0.016). Intruders
    #   0 / 9 / 0 / 0 / 3; ratio median/max full 0.020/0.085, r=1 0.43/1.30, r=8 0.29/0.88,
    #   r=64 0.20/0.56, rsLoRA 0.36/0.79; forgetting 0.40 nats for full FT, 8.9-12.9 for LoRA
    #   (lr 1e-2 wrecks the model's own text). Continual: first-task accuracy after task 2 / 3
    #   full 0.10 / 0.06, LoRA r=1 0.04 / 0.12 (both at chance, 0.04; task 1 ended at 0.76 /
    #   0.72); LoRA intruders 2 -> 1 -> 5, full 0.
    model: str = "smollm2-135m-instruct"
    task: SmolTaskName = "code_first"
    methods: tuple[str, ...] = ("full", "alpha2r:1", "alpha2r:8", "alpha2r:64", "rslora:64")
    full_lr: float = 1e-4
    lora_lr: float = 1e-2  # at r = 1, alpha = 2 (finetune.lr_rule scales it for other ranks)
    steps: int = 64
    batch: int = 8
    n_train: int = 640
    n_val: int = 128  # settings were chosen on this split's accuracy (`val_acc`)
    n_test: int = 128
    text_len: int = 12
    prompts: int = 8  # generic prompts whose greedy continuations measure forgetting
    gen_tokens: int = 32
    continual_tasks: tuple[SmolTaskName, ...] = ("code_first", "code_last", "topic")
    continual_methods: tuple[str, ...] = ("full", "alpha2r:1")
    continual_steps: int = 40  # per task


@dataclass(frozen=True)
class Paper:
    """The `paper` experiment: RoBERTa-base, the official settings."""

    model: str = "roberta-base"
    tasks: tuple[str, ...] = ("mnli", "qqp", "sst2")
    runs: tuple[str, ...] = ("full@1e-5", "alpha2r:1@3e-4", "alpha2r:8@1.5e-4")
    epochs: int = 5
    batch: int = 16
    max_length: int = 512
    warmup_ratio: float = 0.06
    forget_texts: int = 256


@dataclass
class IntruderConfig(StudyConfig):
    """What a run sweeps, then one sub-config per part of the work."""

    experiment: Literal["tiny", "smol", "paper"] = "tiny"
    executor: ExecutorName = "process"
    workers: int = 2  # process-pool size
    # keep each seed's pre-trained base in lmlab's cache folder and reuse it in a later run of
    # the same recipe (`pretrain.source` = "cache"); false neither reads nor writes it
    cache_base: bool = True
    seeds: int = 3
    task: Task = "topic_first"
    ranks: tuple[int, ...] = (1, 2, 4, 8, 16, 64)
    schemes: tuple[Scheme, ...] = ("alpha2r", "fixed", "rslora")
    model: GPTShape = field(default_factory=GPTShape)
    pretrain: Pretrain = field(default_factory=Pretrain)
    finetune: Finetune = field(default_factory=Finetune)
    detect: Detect = field(default_factory=Detect)
    continual: Continual = field(default_factory=Continual)
    mitigation: Mitigation = field(default_factory=Mitigation)
    rules: Rules = field(default_factory=Rules)
    smol: Smol = field(default_factory=Smol)
    paper: Paper = field(default_factory=Paper)


PRESETS: dict[str, IntruderConfig] = {
    # tiny: measured on a shared 2-core CPU (probes on the 600-step bases of a full tiny run, seeds
    # 0-2 of the earlier `seed * 1000 + s` scheme; "intr" = intruders per model at k = 10,
    # eps = 0.5, 12 matrices):
    # - Pre-training 600 steps (~20 CPU s per seed) already fits the language: held-out loss 1.797,
    #   2400 steps 1.795. Longer pre-training does not condition the spectra where the intruders
    #   are: weight decay shrinks the little-used block-1 attention matrices further (sigma_10 of
    #   blocks.1.attn.o 0.22 -> 0.17, sigma_10/sigma_20 1.26 -> 1.34, gaps sigma_i/sigma_i+1 in
    #   the top 10 still 1.01-1.06), and on seed 0 full FT went from 0 to 4 intruders
    #   (||dW||_2/sigma_k 2.3 -> 3.2), LoRA r=1 from 4 to 7. So 600 steps.
    # - Full FT's intruders (1.33 at lr 5e-5) are rotations inside clusters of near-equal base
    #   singular values of block-1 attention (q, v, o): e.g. blocks.1.attn.o, tuned vector 3 has
    #   |cos| 0.45, 0.44, 0.37 with base vectors 5, 2, 3 (sigmas 0.55-0.32); its count over eps
    #   is 0 / 3 / 8 / 16 at eps 0.4 / 0.5 / 0.6 / 0.7 (the `intruders_eps*` metrics show it per
    #   method). A lower full-FT lr does not remove them: lr 2e-5 stops at 0.95 after ~400 steps
    #   (5e-5: ~180) with 1.0 intruders (1, 0, 2) and ||dW||_2/sigma_k max 1.8 (5e-5: 2.0); it
    #   only lowers forgetting (0.021 vs 0.076). lr 5e-5 stays (half the CPU).
    # - LoRA lr rule: `constant` at lr 1e-3 (normalized's r = 1 rate) gives alpha=2r r=8 13,
    #   r=64 17, rsLoRA r=64 12 intruders (seeds 0, 1; forgetting 2.6-3.6); at 3e-4, r=1 3 (420-500
    #   steps), r=8 7-10, r=64 6-10, rsLoRA r=64 6-8. `normalized` (run of 3 seeds): r=1 3.67,
    #   r=64 5.33, rsLoRA r=64 5.0. Under either rule intruders do not fall with rank on this
    #   model, so the rule is not what flattens the trend; `normalized` stays: it equalizes the
    #   per-step update size and its r=1 -> r=8 lr ratio (2.8) is nearer the paper's (3e-4 ->
    #   1.5e-4: 2) than `constant`'s (1). LoRA r=1 at 3e-4 forgets far less (0.10-0.21 vs 1.0)
    #   but needs ~2.5x the steps. (Every one of these choices read the validation split: the
    #   early stop and the steps to it; the reported accuracies are the test split's.)
    # - Cost: full + 3 schemes x 6 ranks per seed, 3 seeds: 582 CPU s on 2 workers (~5 min wall
    #   on a quiet 2-core machine). A fine-tune to 0.95 takes 100-200 steps, 3-10 CPU s. Without
    #   the fixed-alpha scheme (which no claim uses, but the paper compares): 437 CPU s; the
    #   shared jobs give identical numbers (same seeds).
    # - Its eps sweep (intruders per model at eps 0.3 / 0.4 / 0.5 / 0.6): full FT 0 / 0 / 1.33 /
    #   5.0; alpha=2r r=1 0.33 / 2.0 / 3.67 / 12.3; r=8 1.0 / 2.0 / 6.33 / 17.3; r=64 0.67 / 1.0 /
    #   5.33 / 11.3; rsLoRA r=64 0.33 / 1.0 / 5.0 / 12.3: only LoRA has vectors far from every
    #   base vector (max |cos| < 0.4); full FT's all sit in 0.4-0.5.
    # - With the derived seeds (lmlab.seeding.derive) and disjoint splits, a reduced tiny (3 seeds,
    #   ranks 1, 8, 64, schemes alpha2r and rslora, continual full and alpha2r:1) measured
    #   391 CPU-s (36 min wall at load ~20): intruders per model full FT 2.67, alpha2r r=1 4.0,
    #   r=8 6.0, r=64 5.33, rsLoRA r=64 7.0; rho(intruders, forgetting) 0.34 [-0.09, 0.65].
    # - Where eps can decide (decidable.py; the same reduced run, 407 CPU-s with the null counts,
    #   30 min wall at load ~15): the base's gaps sigma_i/sigma_i+1 over the top 10 have minima
    #   1.011-1.053 in every matrix, block 0 as much as block 1; what differs is the update: full
    #   FT's ||dW||_2/sigma_10 is largest in block 1 (max 1.9, median 0.69 over matrices). Random
    #   perturbations with full FT's update spectrum (4 draws) give intruders in block-1 q, v, o,
    #   down on 3/3 seeds, up 2/3, k 1/3, never in block 0: 7.0 of 12 matrices decidable per
    #   seed. All of full FT's intruders (8 over 3 seeds) sit in undecidable matrices; over the
    #   decidable ones full FT has 0.00 per model, LoRA r <= 8 1.17 (LoRA - full +1.17 [+0.50,
    #   +1.50]), so `lowrank-intruders-decidable` holds; the rank trend (rho -0.20 [-0.95,
    #   0.66]), rsLoRA r=64 (+1.67 [+1.00, +2.00] over full) and the forgetting correlation
    #   (0.44 [-0.01, 0.79]) still do not. LoRA's own null (its update spectrum in random
    #   directions) is 7.7-10 per model, above its counts (4.0-7.0): its updates are 2-5x
    #   larger than full FT's (median ||dW||_2/sigma_10 1.4-2.4, max 4.9-10.6).
    # - The bases go to lmlab's cache folder (`cache_base`): pre-training a tiny base measured
    #   30.3 CPU-s (1 thread, load ~10); reading it back from the cache 0.2 CPU-s, so a second
    #   run of the preset saves about 90 CPU-s (3 seeds) with identical metrics.
    "tiny": IntruderConfig(),
    # smol: SmolLM2-135M on the CPU, one seed: 13:16 wall, 1,422 CPU-s on a quiet 2-core machine
    # (2 workers; peak RSS 3.3 GB), every metric as in the run at load 5-8 noted at `Smol`.
    "smol": IntruderConfig(experiment="smol", executor="process", workers=2, seeds=1),
    # paper: RoBERTa-base on GLUE with the official settings; a GPU with hub access (hours).
    "paper": IntruderConfig(experiment="paper", executor="serial", seed=42, seeds=1),
}
