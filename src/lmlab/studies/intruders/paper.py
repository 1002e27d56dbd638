"""The `paper` experiment: RoBERTa-base on GLUE classification tasks, the official settings.

Per run (Shuttleworth et al.'s fine-tuning script): batch 16, 5 epochs, max length 512, AdamW
with weight decay 0, a linear schedule with 6% warmup, seed 42; LoRA r=1 alpha=2 lr 3e-4, r=8
alpha=16 lr 1.5e-4 on every linear layer of the encoder, the classifier head trained; full FT
lr 1e-5 trains only the encoder's weight matrices and the classifier (embeddings, LayerNorms and
biases frozen). Then intruders of every encoder linear layer against roberta-base, and forgetting
as the rise of RoBERTa's masked-LM pseudo-loss (one token masked at a time, the original LM head)
on held-out WikiText-103 sentences.

It downloads roberta-base and the datasets from the Hugging Face hub, and is meant for a GPU.
The GLUE tasks `mnli`, `qqp`, `sst2` are wired; the paper's SIQA, WinoGrande and FEVER need their
own multiple-choice/evidence formats and are refused with one line.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from lmlab.errors import LmlabError, require
from lmlab.nn.lora import add_lora
from lmlab.studies.intruders.config import IntruderConfig
from lmlab.studies.intruders.experiments import Method, parse_method

__all__ = ["GLUE", "PAPER_TARGETS", "parse_run", "run_paper"]

# task -> (GLUE config, text fields, validation split, number of labels)
GLUE: dict[str, tuple[str, tuple[str, ...], str, int]] = {
    "sst2": ("sst2", ("sentence",), "validation", 2),
    "mnli": ("mnli", ("premise", "hypothesis"), "validation_matched", 3),
    "qqp": ("qqp", ("question1", "question2"), "validation", 2),
}
# RoBERTa's linear layers: attention q/k/v and output, FFN in and out.
PAPER_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense",
                 "output.dense")


def parse_run(spec: str) -> tuple[Method, float]:
    """`METHOD@LR` (e.g. `alpha2r:8@1.5e-4`, `full@1e-5`) as (Method, learning rate)."""
    method, sep, lr = spec.partition("@")
    try:
        rate = float(lr)
    except ValueError:
        rate = float("nan")
    if not sep or not rate > 0:
        raise LmlabError(f"bad paper run {spec!r}: expected METHOD@LR, e.g. alpha2r:8@1.5e-4")
    return parse_method(method), rate


def _check(c: IntruderConfig) -> list[tuple[Method, float]]:
    bad = [t for t in c.paper.tasks if t not in GLUE]
    if bad:
        raise LmlabError(f"paper task(s) {', '.join(bad)} not wired (SIQA, WinoGrande and FEVER "
                         f"need their own formats); tasks: {', '.join(GLUE)}")
    return [parse_run(s) for s in c.paper.runs]


def _load_glue(task: str) -> Any:
    datasets = require("datasets", hint="pip install datasets (the paper preset downloads GLUE)")
    try:
        return datasets.load_dataset("glue", GLUE[task][0])
    except Exception as e:  # offline, no cache, hub errors: one line
        msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise LmlabError(f"paper preset: cannot load GLUE {task} from the Hugging Face hub "
                         f"(needs network access or a cached copy): {msg}") from None


def _load_roberta(name: str, n_labels: int | None) -> tuple[nn.Module, Any]:
    transformers = require("transformers", extra="hf")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(name)
        if n_labels is None:
            return transformers.AutoModelForMaskedLM.from_pretrained(name), tok
        return transformers.AutoModelForSequenceClassification.from_pretrained(
            name, num_labels=n_labels), tok
    except OSError as e:
        msg = str(e).strip().splitlines()[0][:160]
        raise LmlabError(f"paper preset: cannot load {name} (needs network access or a cached "
                         f"copy): {msg}") from None


def _encoder_matrices(model: nn.Module) -> dict[str, torch.Tensor]:
    """The encoder's linear weight matrices, named without the task-head prefix."""
    return {n.split("roberta.", 1)[-1]: p.detach().cpu().clone()
            for n, p in model.named_parameters()
            if ".encoder.layer." in f".{n}" and p.ndim == 2 and n.endswith(".weight")}


def _prepare(model: nn.Module, method: Method) -> nn.Module:
    if method.kind == "full":
        for n, p in model.named_parameters():
            p.requires_grad_(n.startswith("classifier.") or (
                "encoder.layer." in n and p.ndim == 2 and n.endswith(".weight")))
        return model
    return add_lora(model, method.rank, method.alpha, PAPER_TARGETS, rslora=method.use_rslora,
                    modules_to_save=["classifier"])


def _encode(tok: Any, rows: Any, fields: tuple[str, ...], max_length: int) -> list[dict[str, Any]]:
    texts = [rows[f] for f in fields]
    enc = tok(*texts, truncation=True, max_length=max_length)
    return [{"input_ids": ids, "label": y} for ids, y in zip(enc["input_ids"], rows["label"],
                                                               strict=True)]


def _collate(examples: list[dict[str, Any]], pad: int) -> dict[str, torch.Tensor]:
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, : len(e["input_ids"])] = torch.tensor(e["input_ids"])
    return {"input_ids": ids, "attention_mask": (ids != pad).long(),
            "labels": torch.tensor([e["label"] for e in examples])}


@torch.no_grad()
def _accuracy(model: nn.Module, examples: list[dict[str, Any]], pad: int, device: str) -> float:
    model.eval()
    right = 0
    for i in range(0, len(examples), 64):
        b = {k: v.to(device) for k, v in _collate(examples[i:i + 64], pad).items()}
        right += int((model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
                      .logits.argmax(-1) == b["labels"]).sum())
    return right / max(len(examples), 1)


@torch.no_grad()
def pseudo_loss(mlm: nn.Module, tok: Any, texts: list[str], device: str,
                max_length: int = 128) -> float:
    """Mean masked-LM pseudo-loss: each token masked in turn, scored by the LM head."""
    mlm.eval()
    total, count = 0.0, 0
    for text in texts:
        ids = torch.tensor(tok(text, truncation=True, max_length=max_length)["input_ids"])
        pos = torch.arange(1, len(ids) - 1)  # not <s> and </s>
        if not len(pos):
            continue
        batch = ids.repeat(len(pos), 1)
        batch[torch.arange(len(pos)), pos] = tok.mask_token_id
        logits = mlm(input_ids=batch.to(device)).logits[torch.arange(len(pos)), pos]
        total += float(nn.functional.cross_entropy(logits, ids[pos].to(device), reduction="sum"))
        count += len(pos)
    return total / max(count, 1)


def _forget_texts(n: int) -> list[str]:
    datasets = require("datasets", hint="pip install datasets (the paper preset downloads data)")
    try:
        ds = datasets.load_dataset("wikitext", "wikitext-103-raw-v1", split="validation")
    except Exception as e:
        msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise LmlabError(f"paper preset: cannot load WikiText-103 (needs network access or a "
                         f"cached copy): {msg}") from None
    texts = [t.strip() for t in ds["text"] if len(t.split()) > 20 and not t.startswith(" =")]
    return texts[:n]


def run_paper(c: IntruderConfig, run: Any) -> dict[str, Any]:
    """Every (task, run) of the configuration; metrics per task and method."""
    from lmlab.device import device_name
    from lmlab.nn.train import TrainConfig, Trainer
    from lmlab.studies.intruders.detect import analyze

    runs = _check(c)
    data = {t: _load_glue(t) for t in c.paper.tasks}  # fail in one line before any training
    texts = _forget_texts(c.paper.forget_texts)
    device = device_name(c.device)
    mlm, tok = _load_roberta(c.paper.model, None)
    base_w = _encoder_matrices(mlm)
    mlm.to(device)
    base_pl = pseudo_loss(mlm, tok, texts, device)
    metrics: dict[str, Any] = {"paper.base_pseudo_loss": base_pl}
    for task in c.paper.tasks:
        _, fields, val_split, n_labels = GLUE[task]
        for method, lr in runs:
            t0 = time.perf_counter()
            model, tok = _load_roberta(c.paper.model, n_labels)
            train = _encode(tok, data[task]["train"], fields, c.paper.max_length)
            val = _encode(tok, data[task][val_split], fields, c.paper.max_length)
            wrapped = _prepare(model, method)
            steps = c.paper.epochs * math.ceil(len(train) / c.paper.batch)

            def batches(step: int, g: torch.Generator, train: list = train, tok: Any = tok
                        ) -> dict[str, torch.Tensor]:
                idx = torch.randint(0, len(train), (c.paper.batch,), generator=g)
                return _collate([train[i] for i in idx], tok.pad_token_id)

            def loss_fn(m: nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
                return m(**b).loss

            cfg = TrainConfig(steps=steps, lr=lr, weight_decay=0.0, schedule="linear",
                              min_lr_ratio=0.0, warmup_steps=round(c.paper.warmup_ratio * steps),
                              grad_clip=None, seed=c.seed, log_every=500, device=device)
            Trainer(wrapped, cfg, batches, loss_fn=loss_fn).fit()
            merged = wrapped.merge_and_unload() if method.kind == "lora" else wrapped
            acc = _accuracy(merged, val, tok.pad_token_id, device)
            tuned_w = _encoder_matrices(merged)
            rep = analyze(base_w, tuned_w, k=c.detect.k, eps=c.detect.eps, names=list(base_w), device=device)
            # forgetting: the tuned encoder under the original MLM head
            mlm_t, _ = _load_roberta(c.paper.model, None)
            mlm_t.roberta.encoder.load_state_dict(merged.roberta.encoder.state_dict())
            forget = pseudo_loss(mlm_t.to(device), tok, texts, device) - base_pl
            p = f"paper.{task}.{method.name}"
            metrics.update({f"{p}.acc": acc, f"{p}.intruders": rep.total, f"{p}.forgetting": forget,
                            f"{p}.lr": lr, f"{p}.wall_s": time.perf_counter() - t0})
            run.log(job="paper", task=task, method=method.name, acc=acc, intruders=rep.total,
                    forgetting=forget)
    # the claims read the first task's numbers under the tiny experiment's names
    first = c.paper.tasks[0]
    for method, _ in runs:
        for key in ("acc", "intruders", "forgetting"):
            metrics[f"finetune.{method.name}.{key}"] = metrics[f"paper.{first}.{method.name}.{key}"]
    return metrics
