"""Activation patching by hook name: corrupted activations into the clean run, per site x position.

Generic over any hooked model (`run_with_cache` / `run_with_hooks`). The metric is the paper's
normalized logit difference at the last position (eq. 2):

    LD  = log p(y_other) - log p(y_base)
    NLD = (LD_patched - LD_base) / (LD_other - LD_base), clipped to [0, 1]

where `base` is the clean run, `other` the corrupted run, and y_base / y_other their answers.
Patching every activation the corruption touches (the embedding at the corrupted position, or the
final layer at the last position) gives NLD = 1; patching where clean and corrupted agree gives 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lmlab.device import model_device
from lmlab.nn.modes import evaluating

__all__ = ["logit_difference", "patch_grid", "patched_nld"]


def logit_difference(logits: Tensor, y_base: Tensor, y_other: Tensor) -> Tensor:
    """log p(y_other) - log p(y_base) at the last position: logits (N, L, V) -> (N,)."""
    logp = torch.log_softmax(logits[:, -1].double(), -1)
    return logp.gather(1, y_other[:, None]).squeeze(1) - logp.gather(1, y_base[:, None]).squeeze(1)


@dataclass
class _Reference:
    """What every patch of one (clean, corrupt) pair set shares: the two unpatched runs."""

    clean: Tensor  # (N, L) token ids, on the model's device
    cache: dict[str, Tensor]  # the corrupted run's activations at the patched sites
    y_base: Tensor  # (N,)
    y_other: Tensor
    ld_base: Tensor  # (N,) logit difference of the clean run
    span: Tensor  # (N,) the corrupted run's logit difference minus the clean run's
    explained: Tensor  # (N,) bool: the answers differ and span is not 0 (others get NLD 0)


def _reference(model: nn.Module, clean: Tensor, corrupt: Tensor, sites: Sequence[str],
               y_base: Tensor | None, y_other: Tensor | None) -> _Reference:
    if clean.shape != corrupt.shape or clean.dim() != 2:
        raise ValueError(f"clean {tuple(clean.shape)} and corrupt {tuple(corrupt.shape)} must be "
                         "the same (N, L) shape")
    device = model_device(model)
    clean, corrupt = clean.to(device), corrupt.to(device)
    logits_clean = model.run_with_hooks(clean)  # type: ignore[operator]
    logits_corr, cache = model.run_with_cache(corrupt, names_filter=list(sites))  # type: ignore[operator]
    y_base = (logits_clean[:, -1].argmax(-1) if y_base is None else y_base).to(device)
    y_other = (logits_corr[:, -1].argmax(-1) if y_other is None else y_other).to(device)
    ld_base = logit_difference(logits_clean, y_base, y_other)
    span = logit_difference(logits_corr, y_base, y_other) - ld_base
    explained = (y_base != y_other) & (span.abs() > 1e-9)
    return _Reference(clean, cache, y_base, y_other, ld_base, span, explained)


def _patched(model: nn.Module, ref: _Reference, site: str, positions: Sequence[int]) -> Tensor:
    """Per-pair NLD (N,) of the clean run with `site` at `positions` from the corrupted run."""
    pos = torch.as_tensor(list(positions), dtype=torch.long, device=ref.clean.device)
    source = ref.cache[site]

    def patch(x: Tensor, hook: object) -> Tensor:
        x = x.clone()
        x[:, pos] = source[:, pos].to(x.dtype)
        return x

    logits = model.run_with_hooks(ref.clean, fwd_hooks=[(site, patch)])  # type: ignore[operator]
    ld_patched = logit_difference(logits, ref.y_base, ref.y_other)
    ok = ref.explained
    nld = torch.where(ok, (ld_patched - ref.ld_base) / torch.where(ok, ref.span, 1.0), 0.0)
    return nld.clamp(0.0, 1.0).cpu()


@torch.no_grad()
def patched_nld(
    model: nn.Module,
    clean: Tensor,
    corrupt: Tensor,
    site: str,
    positions: Sequence[int],
    y_base: Tensor | None = None,
    y_other: Tensor | None = None,
) -> Tensor:
    """Per-pair NLD (N,) after patching `site` at `positions` with the corrupted run's activations.

    y_base / y_other default to the clean and corrupted runs' argmax at the last position.
    Pairs whose clean and corrupted answers coincide get NLD 0 (nothing to explain).
    """
    with evaluating(model):
        return _patched(model, _reference(model, clean, corrupt, [site], y_base, y_other), site,
                        positions)


@torch.no_grad()
def patch_grid(
    model: nn.Module, clean: Tensor, corrupt: Tensor, sites: Sequence[str],
    positions: Sequence[int] | None = None,
) -> np.ndarray:
    """Mean NLD of patching one position at a time at each site: (n_sites, n_positions).

    `positions` defaults to every position (pass range(1, L) to skip a BOS token). The clean and
    corrupted runs are made once and shared by every patch: one forward pass per cell.
    """
    positions = list(range(clean.shape[1])) if positions is None else list(positions)
    out = np.zeros((len(sites), len(positions)))
    with evaluating(model):
        ref = _reference(model, clean, corrupt, sites, None, None)
        for i, s in enumerate(sites):
            for j, t in enumerate(positions):
                out[i, j] = float(_patched(model, ref, s, [t]).mean())
    return out
