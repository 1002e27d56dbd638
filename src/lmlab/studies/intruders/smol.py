"""The `smol` experiment: full fine-tuning against PEFT LoRA on SmolLM2-135M-Instruct.

The tasks (`smol_data`) are the synthetic language's windows rendered as English text with a
one-token answer; the default is `code_first`, an arbitrary 24-way cipher of the first noun that
no pre-training explains, so the weights have to move. Every method trains the same number of
steps on the same examples (the paper's protocol: fixed epochs), so accuracies are compared as
they come (the `matched-accuracy` check says whether they are within `rules.matched_acc`).

Forgetting is measured on text the base model itself wrote: greedy continuations of a few
general prompts, whose loss under the tuned model minus the base's is the rise in loss on (a
sample of) the base model's own distribution.

Work goes through `lmlab.executor` as jobs, each kept in the run folder (`--resume` skips the
finished ones): one base job (the forgetting text, the base's accuracies), then one job per
single-task method and one per continual-learning method (the tasks in sequence; a LoRA adapter
is merged after each task and a new one trained on the merged weights).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lmlab.errors import LmlabError
from lmlab.executor import job_threads
from lmlab.nn.lora import add_lora
from lmlab.seeding import derive
from lmlab.studies.intruders.config import Detect, IntruderConfig, Smol
from lmlab.studies.intruders.experiments import EPS_SWEEP, Method, lora_lr, parse_method
from lmlab.studies.intruders.smol_data import SmolTask, pad_rows, smol_splits

__all__ = ["PROMPTS", "SMOL_TARGETS", "SmolBaseJob", "SmolJob", "run_smol", "run_smol_base",
           "run_smol_job", "smol_jobs"]

SMOL_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PROMPTS = (
    "The history of the Roman Empire",
    "Photosynthesis is the process by which",
    "In computer science, a hash table",
    "The best way to learn a new language is",
    "Mount Everest is",
    "A healthy breakfast usually includes",
    "The French Revolution began when",
    "Water boils at a temperature of",
    "Shakespeare wrote many plays, including",
    "The theory of evolution explains",
    "To bake bread, you first need",
    "The capital of Japan is",
)
Sample = tuple[tuple[int, ...], tuple[int, ...]]  # (prompt ids, continuation ids)


@dataclass(frozen=True)
class SmolBaseJob:
    """The base model's own text (for forgetting) and its accuracy on every task."""

    smol: Smol
    tasks: tuple[str, ...]
    seed: int
    threads: int


@dataclass(frozen=True)
class SmolJob:
    """One method fine-tuned on `tasks` in sequence (one task: a single-task run)."""

    smol: Smol
    detect: Detect
    method: Method
    lr: float
    tasks: tuple[str, ...]
    steps: int  # per task
    kind: str  # "single" | "continual"
    seed: int
    threads: int
    samples: tuple[Sample, ...]  # the base's own text (SmolBaseJob)
    base_loss: float


# -- model helpers ------------------------------------------------------------------------------
def _load(s: Smol) -> tuple[nn.Module, Any, int]:
    from lmlab.models import load_model

    model, tok = load_model(s.model, dtype=torch.float32, device="cpu")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return model, tok, int(pad)


def _answer_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The next-token logits at each row's last real token (B, V); the LM head runs on those
    positions only (on the whole sequence it would be a fifth of the model's work)."""
    core = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT
    hidden = core.model(input_ids=batch["input_ids"],
                        attention_mask=batch["attention_mask"]).last_hidden_state
    return core.lm_head(hidden[torch.arange(len(hidden)), batch["last"]])


@torch.no_grad()
def accuracy(model: nn.Module, data: SmolTask, pad: int, chunk: int = 32) -> float:
    """Greedy accuracy among the task's own answer tokens."""
    model.eval()
    answers = torch.tensor(data.answers)
    right = 0
    for i in range(0, len(data), chunk):
        logits = _answer_logits(model, pad_rows(data.prompts[i:i + chunk], pad))
        right += int((logits[:, answers].argmax(-1) == data.labels[i:i + chunk]).sum())
    return right / max(len(data), 1)


@torch.no_grad()
def generic_text(model: nn.Module, tokenizer: Any, n: int, tokens: int) -> tuple[Sample, ...]:
    """Greedy continuations of the first `n` prompts by `model`: (prompt ids, continuation ids)."""
    if n > len(PROMPTS):
        raise LmlabError(f"smol.prompts must be <= {len(PROMPTS)}, got {n}")
    model.eval()
    out = []
    for p in PROMPTS[:n]:
        ids = torch.tensor([tokenizer.encode(p, add_special_tokens=False)])
        gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id
                             or tokenizer.eos_token_id)
        out.append((tuple(ids[0].tolist()), tuple(gen[0, ids.shape[1]:].tolist())))
    return tuple(out)


@torch.no_grad()
def text_loss(model: nn.Module, samples: tuple[Sample, ...]) -> float:
    """Mean next-token loss on the continuations (the prompts are context only)."""
    model.eval()
    total, count = 0.0, 0
    for prompt, cont in samples:
        if not cont:
            continue
        ids = torch.tensor([list(prompt) + list(cont)])
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1]  # predicts cont
        total += float(nn.functional.cross_entropy(logits, torch.tensor(cont), reduction="sum"))
        count += len(cont)
    return total / max(count, 1)


def target_names(model: nn.Module) -> list[str]:
    """The state-dict keys of the matrices LoRA targets (and full FT trains)."""
    return [n for n, p in model.named_parameters()
            if p.ndim == 2 and n.endswith(".weight") and n.split(".")[-2] in SMOL_TARGETS]


def _splits(job: SmolJob | SmolBaseJob, tok: Any, task: str) -> tuple[SmolTask, ...]:
    s = job.smol
    return smol_splits(tok, task, (s.n_train, s.n_val, s.n_test), s.text_len,
                       derive(job.seed, "smol-data"))


def _finetune(model: nn.Module, method: Method, lr: float, steps: int, batch: int,
              train: SmolTask, pad: int, seed: int) -> nn.Module:
    """Train `model` (full or a new LoRA adapter) on the answer token; return the merged model."""
    from lmlab.nn.train import TrainConfig, Trainer

    if method.kind == "full":
        names = set(target_names(model))
        for n, p in model.named_parameters():
            p.requires_grad_(n in names)
        wrapped: nn.Module = model
    else:
        wrapped = add_lora(model, method.rank, method.alpha, SMOL_TARGETS,
                           rslora=method.use_rslora)

    def batches(step: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, len(train), (batch,), generator=g)
        return {**pad_rows([train.prompts[i] for i in idx], pad), "label": train.labels[idx]}

    answers = torch.tensor(train.answers)

    def loss_fn(m: nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(_answer_logits(m, b), answers[b["label"]])

    cfg = TrainConfig(steps=steps, lr=lr, warmup_steps=max(1, steps // 10), schedule="linear",
                      min_lr_ratio=0.0, weight_decay=0.0, seed=seed, log_every=max(steps, 1),
                      device="cpu")
    Trainer(wrapped, cfg, batches, loss_fn=loss_fn).fit()
    merged = wrapped.merge_and_unload() if method.kind == "lora" else wrapped
    for p in merged.parameters():
        p.requires_grad_(False)
    return merged


# -- jobs ---------------------------------------------------------------------------------------
def run_smol_base(job: SmolBaseJob) -> dict[str, Any]:
    """The base model's greedy text on the generic prompts, its loss there, its accuracies."""
    job_threads(job.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(derive(job.seed, "smol-base"))
    model, tok, pad = _load(job.smol)
    samples = generic_text(model, tok, job.smol.prompts, job.smol.gen_tokens)
    accs = {t: accuracy(model, _splits(job, tok, t)[2], pad) for t in job.tasks}
    return {"samples": samples, "base_loss": text_loss(model, samples), "accs": accs,
            "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0}


def _kind_stats(rep: Any) -> dict[str, list[float]]:
    """Per matrix kind (q_proj ... down_proj): [median, max] of ||dW||_2 / sigma_k."""
    import statistics

    by: dict[str, list[float]] = {}
    for x in rep.matrices:
        by.setdefault(x.kind, []).append(float(x.dw_over_sigma_k))
    return {k: [statistics.median(v), max(v)] for k, v in by.items()}


def _measure(model: nn.Module, base_w: dict[str, torch.Tensor], job: SmolJob,
             tests: dict[str, SmolTask], val: SmolTask, pad: int, cache: Any) -> dict[str, Any]:
    """After a task: accuracy on every task so far, forgetting, intruders and update sizes."""
    import statistics

    from lmlab.studies.intruders.detect import analyze

    names = list(base_w)
    params = dict(model.named_parameters())
    rep = analyze(base_w, {n: params[n].detach() for n in names}, k=job.detect.k,
                  eps=job.detect.eps, names=names, device="cpu", cache=cache)
    ratios = [float(x.dw_over_sigma_k) for x in rep.matrices]
    accs = {t: accuracy(model, d, pad) for t, d in tests.items()}
    current = list(tests)[-1]
    return {"task": current, "steps": job.steps, "acc": accs[current],
            "val_acc": accuracy(model, val, pad), "accs": accs,
            "forgetting": text_loss(model, job.samples) - job.base_loss,
            "intruders": rep.total, "per_matrix": {x.name: x.count for x in rep.matrices},
            "sweep": {e: rep.count_at(e) for e in EPS_SWEEP},
            "dw_over_sigma_k_max": max(ratios), "dw_over_sigma_k_mean": sum(ratios) / len(ratios),
            "dw_over_sigma_k_median": statistics.median(ratios), "dw_kind": _kind_stats(rep),
            "eff_rank_delta": sum(x.effective_rank_delta for x in rep.matrices) / len(ratios)}


def run_smol_job(job: SmolJob) -> dict[str, Any]:
    """Fine-tune one method on the job's tasks in sequence, measuring after each task."""
    from lmlab.studies.intruders.detect import BaseCache

    job_threads(job.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(derive(job.seed, "smol", job.method.name, job.kind))
    model, tok, pad = _load(job.smol)
    base_w = {n: p.detach().clone() for n, p in model.named_parameters()
              if n in set(target_names(model))}
    cache = BaseCache()  # the base's decompositions, once for every stage
    tests: dict[str, SmolTask] = {}
    stages = []
    for i, task in enumerate(job.tasks):
        train, val, test = _splits(job, tok, task)
        tests[task] = test
        model = _finetune(model, job.method, job.lr, job.steps, job.smol.batch, train, pad,
                          derive(job.seed, "smol-finetune", i))
        stages.append(_measure(model, base_w, job, tests, val, pad, cache))
    m = job.method
    return {"method": m.name, "type": m.kind, "rank": m.rank, "scheme": m.scheme,
            "scaling": m.scaling, "lr": job.lr, "seed": job.seed, "seed_index": 0,
            "kind": job.kind, "tasks": list(job.tasks), "stages": stages,
            "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0}


# -- the plan -----------------------------------------------------------------------------------
def _lr(c: IntruderConfig, m: Method) -> float:
    return c.smol.full_lr if m.kind == "full" else lora_lr(c.smol.lora_lr, c.finetune.lr_rule,
                                                           m.rank, m.scaling)


def smol_jobs(c: IntruderConfig, base: dict[str, Any]) -> list[SmolJob]:
    """The single-task jobs (one per method), then the continual-learning jobs."""
    threads = 1 if c.executor != "serial" else 0
    out = []
    for kind, specs, tasks, steps in (
            ("single", c.smol.methods, (c.smol.task,), c.smol.steps),
            ("continual", c.smol.continual_methods, c.smol.continual_tasks,
             c.smol.continual_steps)):
        for spec in specs:
            m = parse_method(spec, c.finetune.fixed_alpha, c.finetune.rslora_alpha)
            out.append(SmolJob(c.smol, c.detect, m, _lr(c, m), tuple(tasks), steps, kind,
                               c.seed, threads, base["samples"], base["base_loss"]))
    return out


def _cost(job: SmolJob) -> float:
    return len(job.tasks) * job.steps * (1.5 if job.method.kind == "full" else 1.0)


def run_smol(c: IntruderConfig, run: Any) -> dict[str, Any]:
    """The base job, then every fine-tuning job through the executor; metrics and figures."""
    from lmlab.executor import get_executor, map_jobs
    from lmlab.studies.intruders import plots
    from lmlab.studies.intruders.summary import continual_metrics, single_metrics, smol_metrics

    ex = get_executor(c.executor, max_workers=c.workers) if c.executor == "process" else \
        get_executor(c.executor)
    tasks = tuple(dict.fromkeys((c.smol.task, *c.smol.continual_tasks)))
    threads = 1 if c.executor != "serial" else 0
    base = map_jobs(run_smol_base, [SmolBaseJob(c.smol, tasks, c.seed, threads)], ex, run=run,
                    progress="intruders smol: base model")[0]
    jobs = sorted(smol_jobs(c, base), key=_cost, reverse=True)
    results = map_jobs(run_smol_job, jobs, ex, run=run, progress="intruders smol: fine-tuning",
                       describe=lambda i, r: f"{r['kind']} {r['method']}")
    for r in results:
        run.log(job="smol", **{k: v for k, v in r.items() if k != "stages"},
                stages=[{k: v for k, v in st.items() if k != "per_matrix"} for st in r["stages"]])
    single = [r for r in results if r["kind"] == "single"]
    continual = [r for r in results if r["kind"] == "continual"]
    m: dict[str, Any] = {"smol.model": c.smol.model, "smol.task": c.smol.task,
                         "smol.base_text_loss": base["base_loss"]}
    for t, a in base["accs"].items():
        m[f"smol.base_acc.{t}"] = a
    m.update(single_metrics(single, 0.0, 1.0, c.rules.low_rank_max))
    m.update(smol_metrics(single, c.rules.low_rank_max))
    m.update(continual_metrics(continual, c.smol.n_test))
    if single:
        run.save_figure(plots.intruders_vs_rank(single), "intruders_vs_rank")
        run.save_figure(plots.forgetting_vs_intruders(single), "forgetting_vs_intruders")
        run.save_figure(plots.update_sizes(single), "update_sizes")
    if continual:
        run.save_figure(plots.continual_curves(continual), "continual")
    away = [base, *results] if c.executor != "serial" else []
    m["timing.jobs_cpu_s"] = sum(x["cpu_s"] for x in away)
    m["timing.jobs_wall_s"] = base["wall_s"] + sum(r["wall_s"] for r in results)
    return m
