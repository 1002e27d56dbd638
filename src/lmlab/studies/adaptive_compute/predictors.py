"""Predictors of how much more sampling helps a query, read from the query alone.

* `Probe`: a small MLP (or, with ``hidden=0``, a linear model) on frozen features, such as the
  last-token hidden state of the prompt. ``loss="bce"``: predicts the pass rate p of one sample,
  trained on empirical pass rates as soft labels (binary rewards; the curve is then
  q(b) = 1 - (1-p)^b). ``loss="mse"``: regresses a vector (the marginal gains Delta(1..B) of a
  real-valued reward, or the gain of a strong procedure over a weak one for routing).
  Features are standardised with the training statistics; training is full-batch AdamW with the
  best epoch kept by validation loss.
* `select_probe`: a small grid (width x weight decay) chosen on the validation split.
* `gains_from_prediction`: the allocator's input, per-sample gains, from either kind of output.
* Heuristic baselines (no hidden states): `pilot_agreement` (how often a few pilot answers agree:
  probe-free self-consistency), used through a linear `Probe` on that single feature, like the
  prompt length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lmlab.studies.adaptive_compute.allocation import monotone
from lmlab.studies.adaptive_compute.labels import binary_marginals

__all__ = ["Probe", "gains_from_prediction", "pilot_agreement", "select_probe"]


class Probe:
    """An MLP head (sklearn-style: `fit`, `predict`; learned state ends in ``_``)."""

    def __init__(self, hidden: int = 64, loss: str = "bce", weight_decay: float = 1e-2,
                 lr: float = 3e-3, epochs: int = 300, dropout: float = 0.1, seed: int = 0):
        if loss not in ("bce", "mse"):
            raise ValueError(f"loss must be 'bce' or 'mse', got {loss!r}")
        self.hidden, self.loss, self.weight_decay = hidden, loss, weight_decay
        self.lr, self.epochs, self.dropout, self.seed = lr, epochs, dropout, seed

    def _net(self, d_in: int, d_out: int) -> nn.Module:
        if self.hidden == 0:
            return nn.Linear(d_in, d_out)
        return nn.Sequential(nn.Linear(d_in, self.hidden), nn.GELU(), nn.Dropout(self.dropout),
                             nn.Linear(self.hidden, d_out))

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss == "bce":
            return nn.functional.binary_cross_entropy_with_logits(out, y)
        return nn.functional.mse_loss(out, y)

    def fit(self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None) -> Probe:
        """Train on (x, y); keep the epoch with the lowest validation loss (the last without one)."""
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        y = np.asarray(y, dtype=np.float32).reshape(len(y), -1)
        self.mean_ = x.mean(0)
        self.std_ = x.std(0) + 1e-6
        self.d_out_ = y.shape[1]
        torch.manual_seed(self.seed)
        net = self._net(x.shape[1], self.d_out_)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        xt, yt = torch.from_numpy(self._scale(x)), torch.from_numpy(y)
        has_val = x_val is not None and y_val is not None and len(x_val) > 0
        if has_val:
            xv = torch.from_numpy(self._scale(np.asarray(x_val, dtype=np.float32).reshape(len(x_val), -1)))
            yv = torch.from_numpy(np.asarray(y_val, dtype=np.float32).reshape(len(y_val), -1))
        best, best_state, self.best_epoch_ = np.inf, None, self.epochs
        for epoch in range(1, self.epochs + 1):
            net.train()
            opt.zero_grad()
            self._loss(net(xt), yt).backward()
            opt.step()
            if has_val and (epoch % 5 == 0 or epoch == self.epochs):
                net.eval()
                with torch.no_grad():
                    v = float(self._loss(net(xv), yv))
                if v < best - 1e-7:
                    best, self.best_epoch_ = v, epoch
                    best_state = {k: t.clone() for k, t in net.state_dict().items()}
        if best_state is not None:
            net.load_state_dict(best_state)
        self.val_loss_ = best if has_val else float("nan")
        self.net_ = net.eval()
        return self

    def _scale(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean_) / self.std_).astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Pass rates in (0, 1) (bce) or the regressed values (mse); 1-D when one output."""
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        with torch.no_grad():
            out = self.net_(torch.from_numpy(self._scale(x)))
            if self.loss == "bce":
                out = torch.sigmoid(out)
        out_np = out.numpy().astype(float)
        return out_np[:, 0] if self.d_out_ == 1 else out_np


@dataclass(frozen=True)
class Selection:
    """The probe chosen on the validation split, and the grid it came from."""

    probe: Probe
    grid: list[tuple[int, float, float]]  # (hidden, weight_decay, val_loss)


def select_probe(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
                 loss: str, hiddens: Sequence[int] = (64,), weight_decays: Sequence[float] = (1e-3, 1e-1),
                 epochs: int = 300, seed: int = 0) -> Selection:
    """Fit every (width, weight decay) of the grid; keep the lowest validation loss."""
    grid, best = [], None
    for h in hiddens:
        for wd in weight_decays:
            p = Probe(hidden=h, loss=loss, weight_decay=wd, epochs=epochs, seed=seed).fit(x, y, x_val, y_val)
            grid.append((h, wd, p.val_loss_))
            if best is None or p.val_loss_ < best.val_loss_:
                best = p
    assert best is not None
    return Selection(best, grid)


def gains_from_prediction(pred: np.ndarray, b_max: int) -> np.ndarray:
    """Per-sample gains ``(n, b_max)``: from pass rates (1-D, binary curves) or from regressed
    marginal vectors (2-D; clipped at 0 and made non-increasing)."""
    pred = np.asarray(pred, dtype=float)
    if pred.ndim == 1:
        return binary_marginals(np.clip(pred, 0.0, 1.0), b_max)
    return monotone(np.clip(pred[:, :b_max], 0.0, None))


def pilot_agreement(answers: Sequence[Sequence[str | None]]) -> np.ndarray:
    """Per query: the share of the pilot answers equal to their most common answer (1: all
    agree). Unparseable answers (None) never agree with anything."""
    out = []
    for a in answers:
        parsed = [x for x in a if x is not None]
        top = Counter(parsed).most_common(1)[0][1] if parsed else 0
        out.append(top / max(1, len(a)))
    return np.array(out, dtype=float)
