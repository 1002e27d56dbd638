"""The `smol` experiment: full fine-tuning against PEFT LoRA on SmolLM2-135M-Instruct.

The downstream task is the synthetic language's topic task rendered as English text
(`the big cat never eats a soup . my knife ... Topic:` -> ` animal`), trained on the answer token
alone. Forgetting is measured on generic text the base model itself wrote: greedy continuations
of a few general prompts, whose loss under the tuned model minus the base's is the rise in loss
on (a sample of) the base model's own distribution.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from lmlab.errors import LmlabError
from lmlab.seeding import derive
from lmlab.studies.intruders.config import IntruderConfig
from lmlab.studies.intruders.data import TOPICS, Language, _label
from lmlab.studies.intruders.experiments import Method, lora_lr, parse_method

__all__ = ["PROMPTS", "SMOL_TARGETS", "run_smol", "topic_examples"]

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


def topic_examples(tokenizer: Any, n: int, text_len: int, seed: int
                   ) -> tuple[list[list[int]], torch.Tensor, tuple[int, ...]]:
    """`n` prompts (token ids) of the topic task, their answer token ids, and the class tokens."""
    from lmlab.seeding import numpy_rng

    lang = Language()
    answers = tuple(tokenizer.encode(" " + t, add_special_tokens=False)[0] for t in TOPICS)
    if len(set(answers)) != len(answers):
        raise LmlabError("the tokenizer maps two topic names to the same first token")
    rng = numpy_rng(seed, 31)
    prompts, labels = [], []
    while len(prompts) < n:
        ids = lang.window(rng, text_len)
        if not any(t in lang.topic_of for t in ids):
            continue
        text = lang.decode(ids)
        prompts.append(tokenizer.encode(f"{text} Topic of the first noun:",
                                        add_special_tokens=False))
        labels.append(answers[_label(lang, "topic_first", ids)])
    return prompts, torch.tensor(labels), answers


def _pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and the index of each row's last real token."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask, torch.tensor([len(r) - 1 for r in rows])


def _answer_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return logits[torch.arange(len(logits)), batch["last"]]  # (B, V)


@torch.no_grad()
def _accuracy(model: nn.Module, prompts: list[list[int]], labels: torch.Tensor, pad: int,
              chunk: int = 32) -> float:
    model.eval()
    right = 0
    for i in range(0, len(prompts), chunk):
        ids, mask, last = _pad(prompts[i:i + chunk], pad)
        pred = _answer_logits(model, {"input_ids": ids, "attention_mask": mask, "last": last})
        right += int((pred.argmax(-1) == labels[i:i + chunk]).sum())
    return right / max(len(prompts), 1)


@torch.no_grad()
def generic_text(model: nn.Module, tokenizer: Any, n: int, tokens: int
                 ) -> list[tuple[list[int], list[int]]]:
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
        out.append((ids[0].tolist(), gen[0, ids.shape[1]:].tolist()))
    return out


@torch.no_grad()
def text_loss(model: nn.Module, samples: list[tuple[list[int], list[int]]]) -> float:
    """Mean next-token loss on the continuations (the prompts are context only)."""
    model.eval()
    total, count = 0.0, 0
    for prompt, cont in samples:
        if not cont:
            continue
        ids = torch.tensor([prompt + cont])
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1]  # predicts cont
        total += float(nn.functional.cross_entropy(logits, torch.tensor(cont), reduction="sum"))
        count += len(cont)
    return total / max(count, 1)


def _target_names(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters()
            if p.ndim == 2 and n.endswith(".weight") and n.split(".")[-2] in SMOL_TARGETS]


def _finetune(model: nn.Module, method: Method, lr: float, c: IntruderConfig,
              prompts: list[list[int]], labels: torch.Tensor, pad: int, seed: int
              ) -> tuple[nn.Module, int]:
    """Train `model` (full or LoRA) on the answer token; return the merged model and steps."""
    from lmlab.nn.train import TrainConfig, Trainer

    if method.kind == "full":
        names = set(_target_names(model))
        for n, p in model.named_parameters():
            p.requires_grad_(n in names)
        wrapped: nn.Module = model
    else:
        import peft

        for p in model.parameters():
            p.requires_grad_(False)
        wrapped = peft.get_peft_model(model, peft.LoraConfig(
            r=method.rank, lora_alpha=method.alpha, lora_dropout=0.0,
            target_modules=list(SMOL_TARGETS), use_rslora=method.use_rslora))

    def batches(step: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, len(prompts), (c.smol.batch,), generator=g)
        ids, mask, last = _pad([prompts[i] for i in idx], pad)
        return {"input_ids": ids, "attention_mask": mask, "last": last, "label": labels[idx]}

    def loss_fn(m: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(_answer_logits(m, batch), batch["label"])

    cfg = TrainConfig(steps=c.smol.steps, lr=lr, warmup_steps=max(1, c.smol.steps // 10),
                      schedule="linear", min_lr_ratio=0.0, weight_decay=0.0, seed=seed,
                      log_every=max(c.smol.steps, 1), device="cpu")
    fit = Trainer(wrapped, cfg, batches, loss_fn=loss_fn).fit()
    merged = wrapped.merge_and_unload() if method.kind == "lora" else wrapped
    return merged, int(fit["steps_done"])


def run_smol(c: IntruderConfig, run: Any) -> dict[str, Any]:
    """Fine-tune SmolLM2 with each method from the same base; measure, summarize, plot."""
    from lmlab.models import load_model
    from lmlab.studies.intruders.detect import BaseCache, analyze
    from lmlab.studies.intruders.figures import cosine_matrices
    from lmlab.studies.intruders.summary import single_metrics

    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(derive(c.seed, "smol"))
    model, tok = load_model(c.smol.model, dtype=torch.float32, device="cpu")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    base_sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    names = _target_names(model)
    base_w = {n: base_sd[n] for n in names}
    train, train_y, _ = topic_examples(tok, c.smol.n_train, c.smol.text_len,
                                       derive(c.seed, "smol-train"))
    test, test_y, _ = topic_examples(tok, c.smol.n_test, c.smol.text_len,
                                     derive(c.seed, "smol-test"))
    samples = generic_text(model, tok, c.smol.prompts, c.smol.gen_tokens)
    base_loss, base_acc = text_loss(model, samples), _accuracy(model, test, test_y, pad)
    results, reports = [], {}
    cache = BaseCache()  # the base's decompositions, computed once for every method
    for spec in c.smol.methods:
        m = parse_method(spec, c.finetune.fixed_alpha, c.finetune.rslora_alpha)
        lr = c.smol.full_lr if m.kind == "full" else lora_lr(c.smol.lora_lr, c.finetune.lr_rule, m.rank,
                                                             m.scaling)
        ct = time.process_time()
        model.load_state_dict(base_sd)
        tuned, steps = _finetune(model, m, lr, c, train, train_y, pad,
                                 derive(c.seed, "smol-finetune"))
        rep = analyze(base_w, {n: p.detach() for n, p in tuned.named_parameters() if n in base_w},
                      k=c.detect.k, eps=c.detect.eps, names=names, device=c.device, cache=cache)
        ratios = [x.dw_over_sigma_k for x in rep.matrices]
        stage = {"task": "topic_first", "steps": steps,
                 "acc": _accuracy(tuned, test, test_y, pad),
                 "forgetting": text_loss(tuned, samples) - base_loss, "intruders": rep.total,
                 "dw_over_sigma_k_max": max(ratios), "dw_over_sigma_k_mean": sum(ratios) / len(ratios),
                 "eff_rank_delta": sum(x.effective_rank_delta for x in rep.matrices) / len(ratios)}
        res = {"method": m.name, "type": m.kind, "rank": m.rank, "scheme": m.scheme,
               "scaling": m.scaling, "lr": lr, "seed": c.seed, "seed_index": 0, "stages": [stage],
               "cpu_s": time.process_time() - ct}
        run.log(job="smol", **{k: v for k, v in res.items() if k != "stages"}, **stage)
        results.append(res)
        reports.setdefault("full" if m.kind == "full" else "lora", rep)
        model = tuned
    metrics: dict[str, Any] = {"smol.model": c.smol.model, "smol.base_acc": base_acc,
                               "smol.base_text_loss": base_loss}
    metrics.update(single_metrics(results, 0.0, 1.0, c.rules.low_rank_max))
    for label, rep in reports.items():
        run.save_figure(cosine_matrices(rep), f"cosine_{label}")
    from lmlab.studies.intruders import plots

    run.save_figure(plots.intruders_vs_rank(results), "intruders_vs_rank")
    run.save_figure(plots.forgetting_vs_intruders(results), "forgetting_vs_intruders")
    metrics["timing.jobs_cpu_s"] = 0.0
    metrics["smol.wall_s"] = time.perf_counter() - t0
    metrics["smol.cpu_s"] = time.process_time() - c0
    return metrics
