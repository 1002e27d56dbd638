"""The paper's second predictor: the language model itself, LoRA-tuned through PEFT, with a
linear head on the last prompt token's hidden state (the GPU option; the MLP probe on frozen
features is the CPU default).

``LoraProbe(lm, tokenizer).fit(prompts, labels, val_prompts, val_labels)`` trains the adapters
and the head with soft-label binary cross-entropy on pass rates (or MSE on gains, ``loss="mse"``),
keeping the epoch with the lowest validation loss; ``predict(prompts)`` returns pass rates.
Prompts are rendered with the model's chat template as in `lmlab.llm`'s ``hf`` backend, so the
state read is the one the model has when it starts to answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lmlab.nn.lora import add_lora

__all__ = ["LoraProbe"]


class LoraProbe:
    """LoRA adapters on `target_modules` plus a linear head on layer `layer`'s last-token state."""

    def __init__(self, lm: Any, tokenizer: Any, *, layer: int = -1, r: int = 8, alpha: int = 16,
                 target_modules: Sequence[str] = ("q_proj", "v_proj"), loss: str = "bce",
                 lr: float = 2e-4, epochs: int = 3, batch_size: int = 16, seed: int = 0):
        self.lm, self.tokenizer = lm, tokenizer
        self.layer, self.r, self.alpha, self.target_modules = layer, r, alpha, tuple(target_modules)
        self.loss, self.lr, self.epochs, self.batch_size, self.seed = loss, lr, epochs, batch_size, seed

    def _encode(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            texts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                             tokenize=False) for p in prompts]
        else:
            texts = list(prompts)
        ids = [tok(t, add_special_tokens=False)["input_ids"] or [0] for t in texts]
        width = max(len(s) for s in ids)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        x = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, s in enumerate(ids):  # left padding: every row's last token is at -1
            x[i, width - len(s):] = torch.tensor(s)
            mask[i, width - len(s):] = 1
        return x.to(self.device_), mask.to(self.device_)

    def _forward(self, prompts: Sequence[str]) -> torch.Tensor:
        x, mask = self._encode(prompts)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        hs = self.model_(input_ids=x, attention_mask=mask, position_ids=pos, output_hidden_states=True).hidden_states
        return self.head_(hs[self.layer][:, -1].float())

    def _loss_of(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss == "bce":
            return nn.functional.binary_cross_entropy_with_logits(out, y)
        return nn.functional.mse_loss(out, y)

    def fit(self, prompts: Sequence[str], labels: np.ndarray, val_prompts: Sequence[str],
            val_labels: np.ndarray) -> LoraProbe:
        torch.manual_seed(self.seed)
        y = torch.as_tensor(np.asarray(labels, dtype=np.float32).reshape(len(prompts), -1))
        yv = torch.as_tensor(np.asarray(val_labels, dtype=np.float32).reshape(len(val_prompts), -1))
        self.device_ = next(self.lm.parameters()).device
        self.model_ = add_lora(self.lm, self.r, self.alpha, self.target_modules)
        d = self.lm.config.hidden_size
        self.head_ = nn.Linear(d, y.shape[1]).to(self.device_)
        params = [p for p in self.model_.parameters() if p.requires_grad] + list(self.head_.parameters())
        opt = torch.optim.AdamW(params, lr=self.lr)
        g = torch.Generator().manual_seed(self.seed)
        best, best_state = np.inf, None
        for _ in range(self.epochs):
            self.model_.train()
            for idx in torch.randperm(len(prompts), generator=g).split(self.batch_size):
                opt.zero_grad()
                out = self._forward([prompts[i] for i in idx])
                self._loss_of(out, y[idx].to(self.device_)).backward()
                opt.step()
            v = float(self._loss_of(torch.as_tensor(self._raw(val_prompts)), yv))
            if v < best:
                best = v
                best_state = ({k: t.detach().clone() for k, t in self.model_.state_dict().items() if "lora_" in k},
                              {k: t.detach().clone() for k, t in self.head_.state_dict().items()})
        if best_state is not None:
            self.model_.load_state_dict(best_state[0], strict=False)
            self.head_.load_state_dict(best_state[1])
        self.val_loss_ = best
        return self

    @torch.no_grad()
    def _raw(self, prompts: Sequence[str]) -> np.ndarray:
        self.model_.eval()
        outs = [self._forward(list(prompts[i:i + self.batch_size])).cpu()
                for i in range(0, len(prompts), self.batch_size)]
        return torch.cat(outs).numpy()

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        """Pass rates (bce) or regressed values (mse); 1-D when one output."""
        out = self._raw(prompts)
        if self.loss == "bce":
            out = 1 / (1 + np.exp(-out))
        return out[:, 0].astype(float) if out.shape[1] == 1 else out.astype(float)
