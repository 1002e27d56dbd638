"""Mitigation: scale each intruder dimension of a LoRA update by lambda, keep the adapter's rank.

For one adapted matrix (Shuttleworth et al. 2024, Sec. 6; PEFT's `reduce_intruder_dimension`):

1. merge Wt = W0 + scaling * B A and find its intruders (`detect`);
2. none: B and A are returned unchanged;
3. otherwise W' = Wt - (1 - lam) * sum_j sigma_j u_j v_j^T over the intruders j, so the update
   becomes dW' = scaling * B A - (1 - lam) * sum_j sigma_j u_j v_j^T;
4. dW' / scaling is re-factored by its truncated SVD to the adapter's rank r, with sqrt(S) on each
   side: B' = U_r sqrt(S_r), A' = sqrt(S_r) V_r^T.

**lambda** is the fraction of each intruder's singular value that is kept: lam = 1 changes
nothing, lam = 0 removes the intruder dimension (PEFT's docstring says a higher value subtracts
more; its code, like ours, subtracts (1 - lam) sigma_j). The rank-r truncation is approximate:
dW' has rank up to r + (number of intruders).

dW' is a product of thin factors, so its SVD comes from two QR decompositions and the SVD of a
small (r + n) x (r + n) core, exactly, in float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from lmlab.errors import LmlabError
from lmlab.studies.intruders.detect import _decompose_base_stack, _top_k_stack
from lmlab.studies.intruders.loading import LoraAdapter, _resolve

__all__ = ["reduce_intruders", "reduce_intruders_in_adapter", "reduce_intruders_in_peft_model"]


def _check(w0: Tensor, b: Tensor, a: Tensor, lam: float) -> None:
    if w0.ndim != 2 or b.ndim != 2 or a.ndim != 2:
        raise LmlabError("reduce_intruders needs 2-D W0, B and A")
    if b.shape[1] != a.shape[0] or (b.shape[0], a.shape[1]) != tuple(w0.shape):
        raise LmlabError(
            f"shapes do not fit: W0 {tuple(w0.shape)}, B {tuple(b.shape)}, A {tuple(a.shape)} "
            "(need B: out x r, A: r x in)"
        )
    if not 0.0 <= lam <= 1.0:
        raise LmlabError(f"lambda must be in [0, 1] (1: no change, 0: removed), got {lam}")


def _thin_svd_of_product(left: Tensor, right: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """SVD of left @ right (m x q @ q x n, q small): U (m x q), S (q), V (n x q)."""
    ql, rl = torch.linalg.qr(left)
    qr_, rr = torch.linalg.qr(right.mT)
    uc, s, vch = torch.linalg.svd(rl @ rr.mT)
    return ql @ uc, s, qr_ @ vch.mT


def reduce_intruders(
    w0: Tensor,
    B: Tensor,
    A: Tensor,
    scaling: float,
    k: int = 10,
    eps: float = 0.5,
    lam: float = 0.75,
) -> tuple[Tensor, Tensor, int]:
    """New LoRA factors (B', A') with every intruder's singular value scaled by `lam`.

    `w0` is the base weight (out x in), `B` (out x r) and `A` (r x in) the adapter, `scaling` its
    alpha / r (or alpha / sqrt(r)). Returns (B', A', number of intruders), in B's and A's dtypes.
    """
    _check(w0, B, A, lam)
    if scaling == 0:
        raise LmlabError("scaling must be non-zero")
    dev = w0.device
    w = w0.detach().to(dev, torch.float64)
    b = B.detach().to(dev, torch.float64)
    a = A.detach().to(dev, torch.float64)
    wt = w + scaling * (b @ a)
    base = _decompose_base_stack(w[None])[0]
    u, s = _top_k_stack(wt[None], k)
    u, s = u[0], s[0]
    flagged = torch.nonzero(base.cosines(u).max(dim=0).values < eps).flatten()
    if flagged.numel() == 0:
        return B.detach().clone(), A.detach().clone(), 0
    ui, si = u[:, flagged], s[flagged]
    vi = wt.mT @ ui / si  # right singular vectors of the intruders: v_j = Wt^T u_j / s_j
    # dW' / scaling = B A - ((1 - lam) / scaling) U_I S_I V_I^T = [B | c U_I S_I] [A ; V_I^T]
    left = torch.cat([b, -((1.0 - lam) / scaling) * ui * si], dim=1)
    right = torch.cat([a, vi.mT], dim=0)
    uu, ss, vv = _thin_svd_of_product(left, right)
    r = b.shape[1]
    root = ss[:r].sqrt()
    b_new = uu[:, :r] * root
    a_new = root[:, None] * vv[:, :r].mT
    return b_new.to(B.dtype), a_new.to(A.dtype), int(flagged.numel())


def _reduce_maybe_transposed(w0: Tensor, b: Tensor, a: Tensor, scaling: float, transposed: bool,
                             k: int, eps: float, lam: float) -> tuple[Tensor, Tensor, int]:
    """`reduce_intruders` for a layer whose update is (B A)^T (embeddings, fan_in_fan_out)."""
    if not transposed:
        return reduce_intruders(w0, b, a, scaling, k, eps, lam)
    bt, at, n = reduce_intruders(w0, a.mT, b.mT, scaling, k, eps, lam)  # W0 + s A^T B^T
    return at.mT.contiguous(), bt.mT.contiguous(), n


def reduce_intruders_in_adapter(
    base: Mapping[str, Tensor],
    adapter: LoraAdapter,
    k: int = 10,
    eps: float = 0.5,
    lam: float = 0.75,
) -> tuple[LoraAdapter, dict[str, int]]:
    """A copy of `adapter` with intruders reduced in every adapted matrix, and counts by key."""
    a_new, b_new, counts = dict(adapter.a), dict(adapter.b), {}
    for key in adapter.a:
        bk = _resolve(key, base)
        if bk is None:
            raise LmlabError(f"adapter key {key} has no matrix in the base")
        b_new[key], a_new[key], counts[key] = _reduce_maybe_transposed(
            base[bk], adapter.b[key], adapter.a[key], adapter.scaling[key],
            adapter.transposed.get(key, False), k, eps, lam)
    return replace(adapter, a=a_new, b=b_new), counts


def reduce_intruders_in_peft_model(
    model: Any,
    adapter_name: str = "default",
    new_adapter_name: str = "intruder_reduced",
    k: int = 10,
    eps: float = 0.5,
    lam: float = 0.75,
) -> dict[str, int]:
    """Add adapter `new_adapter_name` to a PEFT LoRA model, with intruders reduced, and activate it.

    The original adapter stays (``model.set_adapter(adapter_name)`` returns to it). Returns the
    number of intruders per LoRA layer.
    """
    from lmlab.errors import require

    LoraLayer = require("peft.tuners.lora", extra="hf").LoraLayer
    if getattr(model, "peft_type", None) != "LORA":  # PeftType is a str enum
        raise LmlabError("reduce_intruders_in_peft_model needs a PEFT model with a LoRA adapter")
    model.add_adapter(new_adapter_name, model.peft_config[adapter_name])
    counts: dict[str, int] = {}
    with torch.no_grad():
        for name, layer in model.named_modules():
            if not isinstance(layer, LoraLayer):
                continue
            w0 = layer.get_base_layer().weight
            emb = adapter_name in getattr(layer, "lora_embedding_A", {})
            if emb:
                a, b = layer.lora_embedding_A[adapter_name], layer.lora_embedding_B[adapter_name]
            elif adapter_name in layer.lora_A:
                a, b = layer.lora_A[adapter_name].weight, layer.lora_B[adapter_name].weight
            else:
                continue
            transposed = emb or bool(getattr(layer, "fan_in_fan_out", False))
            b2, a2, counts[name] = _reduce_maybe_transposed(
                w0, b, a, layer.scaling[adapter_name], transposed, k, eps, lam)
            if emb:
                layer.lora_embedding_A[new_adapter_name].data = a2.to(a.dtype)
                layer.lora_embedding_B[new_adapter_name].data = b2.to(b.dtype)
            else:
                layer.lora_A[new_adapter_name].weight.data = a2.to(a.dtype)
                layer.lora_B[new_adapter_name].weight.data = b2.to(b.dtype)
    model.set_adapter(new_adapter_name)
    return counts
