"""The tiny experiments: pre-train a small GPT, fine-tune it with full FT and with PEFT LoRA.

Two kinds of job, both module-level functions of frozen dataclasses so that any executor
(serial, process pool, Ray) can run them, and both seeded by the job alone:

- `run_pretrain(PretrainJob)`: trains the GPT on the synthetic language once per seed and saves
  it (safetensors) in the run folder; a second call finds the file and only reads it. With
  `PretrainJob.cache`, a base made by the same recipe before (another run, same machine) comes
  from lmlab's cache folder instead (`BASES`, `lmlab.nn.basecache`), and a freshly trained one
  goes there.
- `run_finetune(FinetuneJob)`: loads that model and adapts it to one task or to several tasks in
  sequence (continual learning), with full fine-tuning (every targeted weight matrix trains) or
  a PEFT LoRA adapter (`LoraConfig(r, lora_alpha, target_modules, use_rslora)`) that is merged
  into the weights after each task. After each task it measures accuracy on every task so far,
  forgetting (held-out pre-training loss minus the base model's), and intruder dimensions of the
  merged weights against the pre-trained ones. On a LoRA job with `lambdas`, the first task's
  adapter is also mitigated at each lambda (intruders' singular values scaled by lambda, re-
  factored to rank r) and measured the same way.

Accuracies are matched by early stopping: every run trains until its validation accuracy reaches
`target_acc` (or `max_steps`), so methods are compared at about the same task accuracy. The
validation split only stops training; every reported accuracy is the test split's, and no text
is in two splits (`data.make_splits`). Every seed inside a job is derived from the job's seed
with `lmlab.seeding.derive`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmlab.errors import LmlabError
from lmlab.executor import job_threads
from lmlab.nn import GPT, GPTConfig
from lmlab.nn.basecache import BaseCache, tensor_shapes
from lmlab.nn.lora import add_lora
from lmlab.nn.train import TrainConfig, Trainer
from lmlab.seeding import derive, numpy_rng
from lmlab.studies.intruders.config import Detect, Finetune, GPTShape, Pretrain
from lmlab.studies.intruders.data import (
    Language,
    TaskData,
    heldout_batch,
    lm_loss,
    make_splits,
    pretrain_batch,
    task_accuracy,
)

__all__ = [
    "BASES",
    "EPS_SWEEP",
    "SCHEMES",
    "TARGET_MODULES",
    "FinetuneJob",
    "Method",
    "PretrainJob",
    "Setup",
    "build_gpt",
    "lora_alpha",
    "lora_lr",
    "lora_scaling",
    "parse_method",
    "pretrain_key",
    "run_finetune",
    "run_pretrain",
]

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj")
SCHEMES = ("alpha2r", "fixed", "rslora")
EPS_SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7)  # thresholds reported besides the detector's eps
# The cache of pre-trained bases, and the modules whose source decides their weights (this one
# holds the fine-tuning too: editing it retrains the bases once, the safe side).
BASES = BaseCache("intruders", ("lmlab.studies.intruders.data",
                                "lmlab.studies.intruders.experiments", "lmlab.nn.gpt",
                                "lmlab.nn.train", "lmlab.seeding"))


# -- LoRA alpha schemes -------------------------------------------------------------------------
def lora_alpha(scheme: str, r: int, fixed_alpha: float = 8.0, rslora_alpha: float = 8.0) -> float:
    """lora_alpha under `scheme`: alpha = 2r, a fixed alpha, or rsLoRA's alpha (used as alpha/sqrt(r))."""
    if r < 1:
        raise LmlabError(f"LoRA rank must be >= 1, got {r}")
    if scheme == "alpha2r":
        return 2.0 * r
    if scheme == "fixed":
        return float(fixed_alpha)
    if scheme == "rslora":
        return float(rslora_alpha)
    raise LmlabError(f"unknown LoRA scheme {scheme!r}; schemes: {', '.join(SCHEMES)}")


def lora_scaling(scheme: str, r: int, alpha: float) -> float:
    """The factor on BA: alpha / r, or alpha / sqrt(r) for rsLoRA (PEFT's `use_rslora`)."""
    return alpha / math.sqrt(r) if scheme == "rslora" else alpha / r


def lora_lr(base_lr: float, rule: str, r: int, scaling: float) -> float:
    """The learning rate of a LoRA run.

    `constant`: `base_lr` for every rank and scheme. `normalized`: under Adam every entry of B
    (and A) moves about lr per step, so the update scaling * B A grows like lr * scaling *
    sqrt(r); the rate is divided by scaling * sqrt(r) / 2, which leaves r = 1, alpha = 2 at
    `base_lr` and gives every rank and scheme about the same update size per step.
    """
    if rule == "constant":
        return base_lr
    if rule == "normalized":
        return base_lr * 2.0 / (scaling * math.sqrt(r))
    raise LmlabError(f"unknown lr rule {rule!r}; rules: constant, normalized")


@dataclass(frozen=True)
class Method:
    """Full fine-tuning (`kind="full"`) or LoRA at `rank` under an alpha `scheme`."""

    kind: str
    rank: int = 0
    scheme: str = ""
    alpha: float = 0.0

    @property
    def name(self) -> str:
        """The metric-key part: `full`, or `SCHEME.rRANK` (e.g. `alpha2r.r1`)."""
        return "full" if self.kind == "full" else f"{self.scheme}.r{self.rank}"

    @property
    def scaling(self) -> float:
        return 0.0 if self.kind == "full" else lora_scaling(self.scheme, self.rank, self.alpha)

    @property
    def use_rslora(self) -> bool:
        return self.scheme == "rslora"


def parse_method(spec: str, fixed_alpha: float = 8.0, rslora_alpha: float = 8.0) -> Method:
    """`full` or `SCHEME:RANK` (e.g. `alpha2r:1`, `rslora:64`) as a Method."""
    if spec == "full":
        return Method("full")
    scheme, _, rank = spec.partition(":")
    if scheme not in SCHEMES or not rank.isdigit():
        raise LmlabError(f"bad method {spec!r}: expected 'full' or SCHEME:RANK with scheme in "
                         f"{', '.join(SCHEMES)}")
    r = int(rank)
    return Method("lora", r, scheme, lora_alpha(scheme, r, fixed_alpha, rslora_alpha))


# -- jobs -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setup:
    """What every job of a run shares: the config's own sub-configs (built by
    `tiny.setup_of`, never re-declared here), the threads per job and the device."""

    model: GPTShape
    pretrain: Pretrain
    finetune: Finetune
    detect: Detect
    threads: int
    device: str


@dataclass(frozen=True)
class PretrainJob:
    setup: Setup
    seed: int
    path: str  # where the pre-trained weights go (safetensors)
    cache: bool = False  # read and write lmlab's cache of bases (the config's `cache_base`)


@dataclass(frozen=True)
class FinetuneJob:
    setup: Setup
    seed: int
    method: Method
    lr: float
    tasks: tuple[str, ...]
    base_path: str
    lambdas: tuple[float, ...] = ()  # mitigation sweep on the first task's adapter (LoRA only)
    save_path: str | None = None  # save the final weights here (for figures)
    kind: str = "single"  # "single" | "continual"
    seed_index: int = 0  # which of the run's seeds (`seed` is derived from it)


def build_gpt(shape: GPTShape, vocab_size: int) -> GPT:
    """The tiny GPT of the study (tied embeddings, learned positions)."""
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=shape.seq_len + 4,
                         n_layer=shape.n_layer, n_head=shape.n_head, d_model=shape.d_model))


def _threads(setup: Setup) -> None:
    job_threads(setup.threads)


def target_names(model: nn.Module) -> list[str]:
    """State-dict names of the weight matrices LoRA targets (and full FT trains)."""
    return [n for n, _ in model.named_parameters()
            if n.endswith(".weight") and n.split(".")[-2] in TARGET_MODULES]


def pretrain_key(job: PretrainJob) -> str:
    """The cache key of the base `job` pre-trains: the model's shape, the pre-training recipe
    (not the held-out windows, which only measure it), the seed, the vocabulary, the torch
    threads (they change float rounding) and the device type, with the code (`BASES.key`)."""
    from dataclasses import asdict

    recipe = {k: v for k, v in asdict(job.setup.pretrain).items() if k != "heldout"}
    return BASES.key({"model": asdict(job.setup.model), "pretrain": recipe, "seed": job.seed,
                      "vocab": Language().vocab_size, "threads": torch.get_num_threads(),
                      "device": torch.device(job.setup.device).type})


def run_pretrain(job: PretrainJob, run: Any = None) -> dict[str, Any]:
    """Pre-train on the synthetic language (or read the weights); returns its metrics.

    The weights come from the run folder's file when it exists (a resumed run), else from
    lmlab's cache with `job.cache`, else from training; `source` says which made them first
    ("trained" or "cache"), `cached` whether this call found the run folder's file. With `run`
    (e.g. a `lmlab.progress.step_progress` watcher), the training loss goes to `run.log` about
    20 times, so the steps can be shown as they pass."""
    from lmlab.runs import load_tensors, save_tensors

    _threads(job.setup)
    t0, c0 = time.perf_counter(), time.process_time()
    shape, p, lang = job.setup.model, job.setup.pretrain, Language()
    held = heldout_batch(lang, job.seed, p.heldout, shape.seq_len)
    path = Path(job.path)
    torch.manual_seed(job.seed)
    model = build_gpt(shape, lang.vocab_size)
    cached = path.is_file()
    key = pretrain_key(job) if job.cache and not cached else ""
    hit = BASES.load(key, tensor_shapes(model.state_dict())) if key else None
    if cached:
        tensors, state = load_tensors(path)
        model.load_state_dict(tensors)
        state = state if isinstance(state, dict) else {}
        steps, source = int(state.get("steps", p.steps)), str(state.get("source", "trained"))
    elif hit is not None:
        model.load_state_dict(hit[0])
        steps, source = p.steps, "cache"
        BASES.say(f"reusing a pre-trained base from {BASES.path(key)} (cache_base=false "
                  "pre-trains anew)")
        save_tensors(path, hit[0], {"steps": steps, "seed": job.seed, "source": source})
    else:
        def batches(step: int, g: torch.Generator) -> dict[str, torch.Tensor]:
            return pretrain_batch(lang, numpy_rng(job.seed, 1, step), p.batch, shape.seq_len)

        cfg = TrainConfig(steps=p.steps, lr=p.lr, weight_decay=p.weight_decay,
                          warmup_steps=min(50, p.steps // 5), seed=job.seed,
                          log_every=max(p.steps // 20, 1) if run is not None else max(p.steps, 1),
                          ckpt_every=0, device=job.setup.device)
        Trainer(model, cfg, batches, run=run).fit()
        model.cpu()
        steps, source = p.steps, "trained"
        tensors = {k: v.clone() for k, v in model.state_dict().items()}
        save_tensors(path, tensors, {"steps": steps, "seed": job.seed, "source": source})
        if key:
            BASES.store(key, tensors, {"steps": steps, "seed": job.seed})
    model.eval()
    return {"seed": job.seed, "heldout_loss": lm_loss(model, held), "steps": steps,
            "cached": cached, "source": source, "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0}


def _load_base(job: FinetuneJob, lang: Language) -> GPT:
    from lmlab.runs import load_tensors

    model = build_gpt(job.setup.model, lang.vocab_size)
    tensors, _ = load_tensors(job.base_path)
    model.load_state_dict(tensors)
    return model


def _task_sets(lang: Language, f: Finetune, task: str, seed: int) -> tuple[TaskData, ...]:
    """Train, validation and test examples of `task`: one draw, no text in two splits."""
    return make_splits(lang, task, (f.n_train, f.n_val, f.n_test), f.text_len,
                       derive(seed, "task-data", task))


def _wrap(model: GPT, method: Method) -> nn.Module:
    """The trainable model: a PEFT LoRA model, or the GPT with only the targeted weights training."""
    if method.kind == "full":
        names = set(target_names(model))
        for n, p in model.named_parameters():
            p.requires_grad_(n in names)
        return model
    return add_lora(model, method.rank, method.alpha, TARGET_MODULES, rslora=method.use_rslora)


def _train(model: nn.Module, job: FinetuneJob, train: TaskData, val: TaskData, stage: int
           ) -> dict[str, Any]:
    s = job.setup.finetune

    def batches(step: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        return train.batch(torch.randint(0, len(train), (s.batch,), generator=g))

    # early stopping reads the validation split only; the test split is measured afterwards
    cfg = TrainConfig(steps=s.max_steps, lr=job.lr, warmup_steps=min(s.warmup_steps, s.max_steps),
                      schedule="constant", weight_decay=0.0, grad_clip=1.0,
                      eval_every=s.eval_every, log_every=max(s.max_steps, 1),
                      stop_metric="val_acc" if s.target_acc > 0 else None,
                      stop_at=s.target_acc if s.target_acc > 0 else None,
                      seed=derive(job.seed, "train", stage), device=job.setup.device)
    out = Trainer(model, cfg, batches,
                  evaluate=lambda m: {"val_acc": task_accuracy(m, val)}).fit()
    model.cpu()
    return out


def _weights(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    sd = model.state_dict()
    return {n: sd[n].detach().clone() for n in names}


def _measure(model: GPT, base_w: dict[str, torch.Tensor], tests: dict[str, TaskData],
             held: dict[str, torch.Tensor], base_loss: float, setup: Setup,
             null_seed: int | None = None) -> dict[str, Any]:
    """Accuracy on each task so far, forgetting and intruders of `model` (a plain GPT); with
    `null_seed`, also the null count per matrix (`decidable.null_counts`)."""
    from lmlab.studies.intruders.decidable import null_counts
    from lmlab.studies.intruders.detect import analyze

    model.eval()
    names = list(base_w)
    tuned = _weights(model, names)
    d = setup.detect
    rep = analyze(base_w, tuned, k=d.k, eps=d.eps, names=names, device="cpu")
    ratios = [m.dw_over_sigma_k for m in rep.matrices]
    nulls = null_counts(base_w, tuned, d.k, d.eps, d.null_draws, null_seed) \
        if null_seed is not None and d.null_draws > 0 else {}
    return {
        "accs": {t: task_accuracy(model, d) for t, d in tests.items()},
        "label_accs": {t: task_accuracy(model, d, labels_only=True) for t, d in tests.items()},
        "heldout_loss": (loss := lm_loss(model, held)),
        "forgetting": loss - base_loss,
        "intruders": rep.total,
        "by_target": rep.by_target,
        "dw_over_sigma_k_mean": sum(ratios) / len(ratios),
        "dw_over_sigma_k_max": max(ratios),
        "dw_over_sigma_k_median": float(torch.tensor(ratios).median()),
        "eff_rank_delta": sum(m.effective_rank_delta for m in rep.matrices) / len(rep.matrices),
        "per_matrix": {m.name: m.count for m in rep.matrices},
        "dw_over_sigma_k": {m.name: m.dw_over_sigma_k for m in rep.matrices},
        "null_counts": nulls,
        # intruders from noise alone: the null's count per model, mean over draws
        "null_intruders": sum(sum(c) / len(c) for c in nulls.values()) if nulls else None,
        # the count at other thresholds (same decompositions): how far below eps the max |cos| are
        "sweep": {f"{e:g}": n for e, n in rep.sweep(EPS_SWEEP).items()},
    }


def _mitigated(peft_model: nn.Module, base_sd: dict[str, torch.Tensor], lam: float,
               setup: Setup, vocab_size: int) -> tuple[GPT, int]:
    """A plain GPT with the adapter's intruders scaled by `lam`, merged; and how many there were."""
    from peft.tuners.lora import LoraLayer

    from lmlab.studies.intruders.mitigate import reduce_intruders

    sd = dict(base_sd)
    flagged = 0
    for name, layer in peft_model.named_modules():
        if not isinstance(layer, LoraLayer) or "default" not in layer.lora_A:
            continue
        w0 = layer.get_base_layer().weight.detach()
        b, a = layer.lora_B["default"].weight.detach(), layer.lora_A["default"].weight.detach()
        scaling = float(layer.scaling["default"])
        b2, a2, n = reduce_intruders(w0, b, a, scaling, setup.detect.k, setup.detect.eps, lam)
        flagged += n
        key = name.removeprefix("base_model.model.") + ".weight"
        sd[key] = w0 + scaling * (b2 @ a2)
    model = build_gpt(setup.model, vocab_size)
    model.load_state_dict(sd)
    return model, flagged


def run_finetune(job: FinetuneJob) -> dict[str, Any]:
    """Fine-tune the pre-trained model on `job.tasks` in order; measure after each task."""
    _threads(job.setup)
    t0, c0 = time.perf_counter(), time.process_time()
    s, lang, m = job.setup, Language(), job.method
    if not job.tasks:
        raise LmlabError("a fine-tuning job needs at least one task")
    held = heldout_batch(lang, job.seed, s.pretrain.heldout, s.model.seq_len)
    torch.manual_seed(job.seed)
    model = _load_base(job, lang)
    model.eval()
    base_sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    names = target_names(model)
    base_w = {n: base_sd[n] for n in names}
    base_loss = lm_loss(model, held)
    tests: dict[str, TaskData] = {}
    stages: list[dict[str, Any]] = []
    mitigation: list[dict[str, Any]] = []
    for i, task in enumerate(job.tasks):
        train, val, test = _task_sets(lang, s.finetune, task, job.seed)
        tests[task] = test
        torch.manual_seed(derive(job.seed, "lora-init", i))  # LoRA's A init
        wrapped = _wrap(model, m)
        fit = _train(wrapped, job, train, val, i)
        if m.kind == "lora" and i == 0 and job.lambdas:
            for lam in job.lambdas:
                mit, n = _mitigated(wrapped, base_sd, lam, s, lang.vocab_size)
                rec = _measure(mit, base_w, {task: test}, held, base_loss, s)
                mitigation.append({"lam": lam, "flagged": n, "acc": rec["accs"][task],
                                   "forgetting": rec["forgetting"],
                                   "intruders": rec["intruders"]})
        if m.kind == "lora":
            model = wrapped.merge_and_unload()
        for p in model.parameters():
            p.requires_grad_(True)
        null_seed = derive(job.seed, "null") if job.kind == "single" and i == 0 else None
        rec = _measure(model, base_w, tests, held, base_loss, s, null_seed)
        stages.append({"task": task, "steps": fit["steps_done"], "acc": rec["accs"][task],
                       "val_acc": fit.get("val_acc"), **rec})
    if job.save_path:
        from lmlab.runs import save_tensors

        save_tensors(job.save_path, _weights(model, names), {"method": m.name, "seed": job.seed})
    return {
        "kind": job.kind, "method": m.name, "type": m.kind, "rank": m.rank, "scheme": m.scheme,
        "alpha": m.alpha, "scaling": m.scaling, "lr": job.lr, "seed": job.seed,
        "seed_index": job.seed_index,
        "tasks": list(job.tasks), "base_loss": base_loss, "stages": stages,
        "mitigation": mitigation, "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }
