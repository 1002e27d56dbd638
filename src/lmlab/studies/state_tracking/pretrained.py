"""Pretrained causal LMs (Hugging Face, the embedded SmolLM2) as hooked state-tracking models.

`HookedCausalLM` adds one new token per group element (plus the parity and BOS tokens) to a
pretrained model and exposes the lmlab GPT's interface, so the trainer, the probes and the
patching run on it unchanged:

- `forward(idx, targets, loss_mask) -> (logits, loss)` over the study's own token ids
  (0..V-1 map to the new tokens; logits are restricted to them, the paper's eval restricts its
  argmax the same way, while its training loss ran over the full vocabulary);
- hook points `hook_embed` (the token embedding's output) and `blocks.{i}.hook_resid_post`
  (each decoder layer's output), fed by forward hooks on the Hugging Face modules.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lmlab.nn import GPT
from lmlab.nn.hooks import HookedMixin, HookPoint

__all__ = ["HookedCausalLM", "load_pretrained"]


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hook_resid_post = HookPoint()


def _decoder_layers(lm: nn.Module) -> nn.ModuleList:
    n = getattr(lm.config, "num_hidden_layers", None)
    for _, m in lm.named_modules():
        if isinstance(m, nn.ModuleList) and len(m) == n:
            return m
    raise ValueError(f"cannot find the {n} decoder layers of {type(lm).__name__}")


def _route(point: HookPoint) -> Any:
    """A forward hook that passes a module's (first) output through `point`."""

    def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (point(output[0]), *output[1:])
        return point(output)

    return hook


class HookedCausalLM(HookedMixin, nn.Module):
    """A Hugging Face causal LM with `n_new` added tokens and lmlab hook names."""

    def __init__(self, lm: nn.Module, n_new: int, mean_resizing: bool = True) -> None:
        super().__init__()
        self.lm = lm
        self.base = lm.get_input_embeddings().weight.shape[0]
        # mean_resizing: new rows drawn around the old embeddings' mean (transformers' default)
        lm.resize_token_embeddings(self.base + n_new, mean_resizing=mean_resizing)
        self.vocab_size = n_new
        self.hook_embed = HookPoint()
        layers = _decoder_layers(lm)
        self.blocks = nn.ModuleList(_Block() for _ in layers)
        lm.get_input_embeddings().register_forward_hook(_route(self.hook_embed))
        for layer, block in zip(layers, self.blocks, strict=True):
            layer.register_forward_hook(_route(block.hook_resid_post))

    def forward(
        self, idx: Tensor, targets: Tensor | None = None, loss_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        out = self.lm(input_ids=idx + self.base, use_cache=False)
        logits = out.logits[..., self.base:self.base + self.vocab_size]  # (B, T, V)
        if targets is None:
            return logits, None
        return logits, GPT.loss(logits, targets, loss_mask)


def load_pretrained(spec: str, n_new: int) -> HookedCausalLM:
    """`spec`: an embedded model name (smollm2-135m-instruct), a local folder or a hub id."""
    from lmlab.models import load_model

    lm, _ = load_model(spec, with_tokenizer=False)
    lm.train()
    return HookedCausalLM(lm, n_new)
