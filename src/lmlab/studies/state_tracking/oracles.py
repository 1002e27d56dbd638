"""Hand-built oracle models with known mechanisms, to validate probes, patching and classification.

Both compute the state by an associative scan over one-hot residual streams of width |G| + 2:

- `AA`: the residual after layer l holds one-hot(product of the last 2^l actions); layer 0 (the
  embedding) holds the action itself. Layer l combines position t with position t - 2^(l-1).
- `PAA`: the same, plus the cumulative parity (one-hot, 2 channels) from layer 1 on; the read-out
  weighs the parity channels above the scan, so a parity change alone moves the answer.

- `LOOKUP` (neither): layer 1 holds one-hot(the whole prefix product) at every position at once,
  a flat parallel lookup with no scan; later layers copy it. It tracks the state but shows
  neither signature.

They are `HookedMixin` modules with the lmlab GPT's hook names (`hook_embed`,
`blocks.{l}.hook_resid_post`), and each layer reads only the previous layer's (possibly patched)
activations, so patching propagates exactly as in a real model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmlab.nn.hooks import HookedMixin, HookPoint
from lmlab.studies.state_tracking.groups import Group

__all__ = ["OracleScan"]

SCAN_WEIGHT = 2.0  # read-out logit for the scanned state
PARITY_WEIGHT = 6.0  # PAA read-out logit for states of the tracked parity


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hook_resid_post = HookPoint()


class OracleScan(HookedMixin, nn.Module):
    """forward(idx (B, T)) -> (logits (B, T, G), None), for T <= 2^n_layer."""

    def __init__(self, group: Group, n_layer: int, kind: str = "AA") -> None:
        super().__init__()
        if kind not in ("AA", "PAA", "LOOKUP"):
            raise ValueError(f"kind must be 'AA', 'PAA' or 'LOOKUP', got {kind!r}")
        self.kind, self.n_layer, self.G = kind, n_layer, group.order
        self.register_buffer("mul", torch.as_tensor(group.mul), persistent=False)
        # the state an action product leads to from the identity arrangement
        self.register_buffer("to_state", torch.as_tensor(group.table[group.identity]),
                             persistent=False)
        self.register_buffer("parity", torch.as_tensor(group.parity), persistent=False)
        self.identity = group.identity
        self.hook_embed = HookPoint()
        self.blocks = nn.ModuleList(_Block() for _ in range(n_layer))

    def _onehot(self, prod: Tensor, par: Tensor | None) -> Tensor:
        x = torch.nn.functional.one_hot(prod, self.G).float()  # (B, T, G)
        p = torch.zeros(*prod.shape, 2) if par is None else torch.nn.functional.one_hot(par, 2).float()
        return torch.cat([x, p], -1)  # (B, T, G + 2)

    def forward(self, idx: Tensor) -> tuple[Tensor, None]:
        B, T = idx.shape
        if T > 2 ** self.n_layer:
            raise ValueError(f"an oracle with {self.n_layer} layers scans at most "
                             f"{2 ** self.n_layer} actions, got {T}")
        x = self.hook_embed(self._onehot(idx, None))
        for i, block in enumerate(self.blocks):
            prod = x[..., : self.G].argmax(-1)  # (B, T): product of the last 2^i actions
            k = 2**i
            earlier = torch.cat([torch.full((B, k), self.identity), prod[:, :-k]], 1)[:, :T]
            prod = self.mul[earlier, prod]  # now the product of the last 2^(i+1) actions
            if self.kind == "LOOKUP":
                prod = x[..., : self.G].argmax(-1)
                if i == 0:  # every prefix product at once, read from the actions
                    for t in range(1, T):
                        prod[:, t] = self.mul[prod[:, t - 1], prod[:, t]]
            par = None
            if self.kind == "PAA":
                if i == 0:  # cumulative parity of the actions seen so far (an abelian prefix sum)
                    par = self.parity[x[..., : self.G].argmax(-1)].cumsum(1) % 2
                else:
                    par = x[..., self.G:].argmax(-1)
            x = block.hook_resid_post(self._onehot(prod, par))
        state = self.to_state[x[..., : self.G].argmax(-1)]  # (B, T)
        logits = SCAN_WEIGHT * torch.nn.functional.one_hot(state, self.G).float()
        if self.kind == "PAA":
            par = x[..., self.G:].argmax(-1)  # (B, T)
            logits = logits + PARITY_WEIGHT * (self.parity[None, None, :] == par[..., None]).float()
        return logits, None
