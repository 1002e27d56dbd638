"""Linear probes on hooked activations, per layer and per position.

Generic: activations come from any model with `run_with_cache` (every lmlab GPT, the oracle
models here), selected by hook name. A probe is a closed-form ridge-regression classifier
(least squares onto one-hot labels, argmax to predict): deterministic, fast, and linear, which is
what the probing question needs. The official code used scikit-learn's LogisticRegression; both are
linear read-outs, and the ridge one needs no iterations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lmlab.device import model_device
from lmlab.nn.modes import evaluating

__all__ = ["LinearProbe", "collect_activations", "model_device", "probe_grid", "residual_hooks"]


def residual_hooks(model: nn.Module) -> list[str]:
    """The residual stream sites of a hooked GPT: the token embedding, then each block's output."""
    names = list(model.hook_points())  # type: ignore[operator]
    blocks = sorted({int(n.split(".")[1]) for n in names if n.startswith("blocks.")})
    return ["hook_embed"] + [f"blocks.{i}.hook_resid_post" for i in blocks]


@torch.no_grad()
def collect_activations(
    model: nn.Module, input_ids: Tensor, hook_names: Sequence[str], batch: int = 512
) -> dict[str, Tensor]:
    """Activations at `hook_names` for input_ids (N, L): name -> (N, L, d) float32 tensors."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (N, L), got shape {tuple(input_ids.shape)}")
    parts: dict[str, list[Tensor]] = {n: [] for n in hook_names}
    device = model_device(model)
    with evaluating(model):
        for i in range(0, len(input_ids), batch):
            _, cache = model.run_with_cache(  # type: ignore[operator]
                input_ids[i:i + batch].to(device), names_filter=list(hook_names)
            )
            for n in hook_names:
                parts[n].append(cache[n].float().reshape(*cache[n].shape[:2], -1).cpu())
    return {n: torch.cat(v) for n, v in parts.items()}


class LinearProbe:
    """Ridge-regression classifier: fit(X (n, d), y (n,)) then predict / score."""

    def __init__(self, n_classes: int, l2: float = 1e-3) -> None:
        self.n_classes = n_classes
        self.l2 = l2

    def fit(self, X: Tensor, y: Tensor) -> LinearProbe:
        """Least squares from [X, 1] onto one-hot(y), with an l2 penalty scaled by the data."""
        X = X.double()
        self.mean_ = X.mean(0)
        Xc = torch.cat([X - self.mean_, torch.ones(len(X), 1, dtype=X.dtype)], 1)  # (n, d+1)
        Y = torch.nn.functional.one_hot(y.long(), self.n_classes).double()  # (n, C)
        gram = Xc.T @ Xc
        reg = self.l2 * (gram.diagonal().mean() + 1e-12) * torch.eye(len(gram), dtype=X.dtype)
        self.coef_ = torch.linalg.solve(gram + reg, Xc.T @ Y)  # (d+1, C)
        return self

    def predict(self, X: Tensor) -> Tensor:
        X = X.double()
        Xc = torch.cat([X - self.mean_, torch.ones(len(X), 1, dtype=X.dtype)], 1)
        return (Xc @ self.coef_).argmax(-1)

    def score(self, X: Tensor, y: Tensor) -> float:
        """Accuracy on (X, y)."""
        return float((self.predict(X) == y.long()).double().mean())


def probe_grid(
    acts_train: dict[str, Tensor],
    y_train: np.ndarray | Tensor,
    acts_test: dict[str, Tensor],
    y_test: np.ndarray | Tensor,
    n_classes: int,
    l2: float = 1e-3,
) -> np.ndarray:
    """Held-out accuracy of one probe per (site, position): (n_sites, L).

    acts_*: site -> (N, L, d); y_*: (N, L) labels. Train and test must be disjoint stories.
    """
    y_train, y_test = torch.as_tensor(np.asarray(y_train)), torch.as_tensor(np.asarray(y_test))
    sites = list(acts_train)
    L = y_train.shape[1]
    out = np.zeros((len(sites), L))
    for i, s in enumerate(sites):
        if acts_train[s].shape[:2] != y_train.shape or acts_test[s].shape[:2] != y_test.shape:
            raise ValueError(f"activations at {s} do not match the labels' (N, L) shape")
        for t in range(L):
            probe = LinearProbe(n_classes, l2).fit(acts_train[s][:, t], y_train[:, t])
            out[i, t] = probe.score(acts_test[s][:, t], y_test[:, t])
    return out
