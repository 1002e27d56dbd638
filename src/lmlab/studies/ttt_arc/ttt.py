"""Per-task test-time training: one PEFT LoRA adapter, reset to the same weights for every task.

`AdapterHost` wraps a base model (lmlab's GPT or a Hugging Face causal LM) once with
`lmlab.nn.lora.add_lora` (PEFT) with the paper's targets (q_proj, v_proj and the MLP, not the
unembedding) and keeps a copy of the freshly initialized adapter. `train(seqs, seed)` first
restores that copy, then trains with a fresh AdamW on the task's TTT sequences (the data layer's
leave-one-out tasks, already tokenized with their loss masks). Because every task starts from the
same adapter and draws its batches from (seed, step) alone, results do not depend on which
tasks ran before on the same host, nor on which worker runs them (`test_ttt.py` checks both).

The paper's defaults (`LoraSettings.paper()`): r=128, alpha=16, dropout 0, lr 1e-4 (5e-5 for
8B models), 2 epochs, batch 2, cosine schedule with 10% warmup, AdamW with weight decay 0.01.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from lmlab.nn import GPT
from lmlab.nn.lora import add_lora
from lmlab.nn.train import TrainConfig, Trainer
from lmlab.seeding import numpy_rng
from lmlab.studies.ttt_arc.config import GPT_TARGETS, LLAMA_TARGETS, LoraSettings
from lmlab.studies.ttt_arc.pretrain import collate

__all__ = ["GPT_TARGETS", "LLAMA_TARGETS", "AdapterHost", "LoraSettings", "lm_loss"]


def lm_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Masked next-token loss for lmlab's GPT (tuple output) and HF models (`.logits`) alike."""
    if "coords" in batch:
        out = model(batch["input_ids"], coords=batch["coords"])
    else:
        out = model(batch["input_ids"])
    logits = out[0] if isinstance(out, tuple) else out.logits
    return GPT.loss(logits.float(), batch["targets"], batch["loss_mask"])


class AdapterHost:
    """A base model with one LoRA adapter that every task's training starts from afresh."""

    def __init__(self, model: nn.Module, settings: LoraSettings, pad_id: int,
                 coords_fn: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.settings = settings
        self.pad_id = pad_id
        self.coords_fn = coords_fn  # per-token coordinates for a GPT with coord_sizes
        # init_seed: the initial adapter is a function of it alone, the same in every process
        self.model = add_lora(model, settings.r, settings.alpha, settings.targets or GPT_TARGETS,
                              dropout=settings.dropout, init_seed=settings.init_seed)
        self.model.eval()
        self._initial = {n: p.detach().clone() for n, p in self._adapter_params()}

    def _adapter_params(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.model.named_parameters() if "lora_" in n]

    def reset(self) -> None:
        """Restore the adapter's initial weights."""
        with torch.no_grad():
            for n, p in self._adapter_params():
                p.copy_(self._initial[n])

    def digest(self) -> str:
        """A short hash of the adapter's current weights (equal weights, equal digest)."""
        h = hashlib.sha256()
        for n, p in self._adapter_params():
            h.update(n.encode())
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def n_adapter_params(self) -> int:
        return sum(p.numel() for _, p in self._adapter_params())

    def train(self, seqs: Sequence[tuple[Sequence[int], Sequence[int]]], seed: int,
              settings: LoraSettings | None = None) -> dict[str, Any]:
        """Reset the adapter, then train it on `seqs` (token ids, loss mask); return metrics.

        The metrics include the adapter digest before training (`initial_digest`: the same for
        every call), the steps, the final training loss, and the wall and CPU seconds.
        """
        s = settings or self.settings
        self.reset()
        initial = self.digest()
        data = [(list(map(int, i)), list(map(int, m))) for i, m in seqs]
        if not data:
            return {"initial_digest": initial, "steps": 0, "train_loss": None,
                    "wall_s": 0.0, "cpu_s": 0.0}
        per_epoch = math.ceil(len(data) / s.batch_size)
        steps = s.steps_for(len(data))

        def batches(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
            epoch, pos = divmod(step - 1, per_epoch)
            order = numpy_rng(seed, epoch).permutation(len(data))
            pick = order[pos * s.batch_size:(pos + 1) * s.batch_size]
            return collate([data[i] for i in pick], self.pad_id, self.coords_fn)

        device = next(self.model.parameters()).device
        tc = TrainConfig(steps=steps, lr=s.lr, weight_decay=s.weight_decay,
                         warmup_steps=max(1, round(s.warmup_frac * steps)), schedule="cosine",
                         min_lr_ratio=0.0, grad_clip=s.grad_clip or None, log_every=max(steps, 1),
                         device=str(device), seed=seed)
        t0, c0 = time.perf_counter(), time.process_time()
        out = Trainer(self.model, tc, batches, loss_fn=lm_loss).fit()
        self.model.eval()
        return {"initial_digest": initial, "steps": steps, "train_loss": out["train_loss"],
                "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                "n_seqs": len(data)}

    def with_settings(self, **changes: Any) -> LoraSettings:
        """These settings with some fields changed (for one call of `train`)."""
        return replace(self.settings, **changes)
