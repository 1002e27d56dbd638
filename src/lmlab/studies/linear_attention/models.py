"""The gradient-trained models Algorithm 1 is compared with, on continuous inputs.

- `MHLAModel`: an H-head MHLA, the model class of the teacher. As in the paper's script, scores
  are scaled by 1/sqrt(d) and the heads averaged; `heads()` folds both constants into V, so the
  trained model is an exact `mhla.Heads` that `p_map` can compare with a teacher. Its input is
  the parameter-free cubic features of `encode(Z)`, computed once per dataset, and its output
  <p(Theta), H(Z)>: the same function of (V, Q) as attention computed token by token (so the
  same gradients), at a fraction of the cost per step.
- `StackedLinearAttention`: L single-head linear-attention layers. Between layers the residual
  stream carries z + attn(z), so the stack contains the single-layer model (set the earlier
  layers' V to 0); the script stacks layers without a residual, which cannot represent a cubic
  teacher at all, so the comparison would be trivially lost.
- `SoftmaxTransformer`: lmlab's GPT blocks (pre-LayerNorm softmax attention + MLP) between a
  linear read-in d -> d_model and a linear read-out d_model -> d_out: the GPT itself embeds
  tokens, this adapter embeds vectors. It computes in float64 by default, the precision of
  the MHLA models it is compared with (float32 would be ~2x faster on CPU, but then the
  comparison would differ in precision as well as in architecture).

Every model has `encode(Z, prefixes)`, a fixed preprocessing (the identity but for MHLA), and
maps encoded inputs to predictions at every position (B, n, d_out), position t seeing Z[:, :t+1]
only, or at the last position (B, d_out) when encoded with `prefixes=False`. `train_regressor`
trains any of them with lmlab's `Trainer` on MSE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lmlab.nn.gpt import GPT, GPTConfig
from lmlab.nn.train import TrainConfig, Trainer
from lmlab.seeding import generator
from lmlab.studies.linear_attention.features import independent_features
from lmlab.studies.linear_attention.mhla import F64, Heads, p_from_w

__all__ = [
    "MHLAModel",
    "RegressionResult",
    "SoftmaxTransformer",
    "StackedLinearAttention",
    "build_model",
    "normalized_mse",
    "train_regressor",
]


def _linear_attention(V: Tensor, Q: Tensor, Z: Tensor, scale: float) -> Tensor:
    """scale * sum_h V_h S_t Q_h z_t at every t, S_t = sum_{s<=t} z_s z_s^T.  (B, n, d_out)"""
    S = torch.cumsum(Z[..., :, None] * Z[..., None, :], dim=-3)  # (B, n, d, d)
    q = torch.einsum("hkl,btl->bthk", Q, Z)  # (B, n, H, d)
    s = torch.einsum("btjk,bthk->bthj", S, q)  # (B, n, H, d)
    return scale * torch.einsum("haj,bthj->bta", V, s)


class MHLAModel(nn.Module):
    """H-head MHLA: (1 / (H sqrt(d))) sum_h V_h S_t Q_h z_t, parameters N(0, init^2 / d)."""

    def __init__(self, d: int, d_out: int, n_heads: int, init: float = 1.0, seed: int = 0):
        super().__init__()
        g = generator(seed, 1)
        s = init / math.sqrt(d)
        self.d = d
        self.V = nn.Parameter(torch.randn(n_heads, d_out, d, generator=g, dtype=F64) * s)
        self.Q = nn.Parameter(torch.randn(n_heads, d, d, generator=g, dtype=F64) * s)
        self.scale = 1.0 / (n_heads * math.sqrt(d))

    @staticmethod
    def encode(Z: Tensor, prefixes: bool = True) -> Tensor:
        """The cubic features H of every prefix (B, n, psi), or of the whole sequence (B, psi)."""
        return independent_features(Z, prefixes)

    def p(self) -> Tensor:
        """p(Theta) of the model, differentiable in V and Q.  (d_out, psi)"""
        H = self.V.shape[0]
        W = self.V.reshape(H, -1).T @ self.Q.reshape(H, -1)  # (d_out d, d^2)
        return p_from_w(W, self.d) * self.scale

    def forward(self, features: Tensor) -> Tensor:
        return features @ self.p().T

    def attend(self, Z: Tensor) -> Tensor:
        """The same model computed as attention, token by token (for checking).  (B, n, d_out)"""
        return _linear_attention(self.V, self.Q, Z, self.scale)

    def heads(self) -> Heads:
        """The exact MHLA this model computes (constants folded into V)."""
        return Heads(self.V.detach() * self.scale, self.Q.detach())


class StackedLinearAttention(nn.Module):
    """L single-head linear-attention layers; residual stream between them, none on the output."""

    def __init__(self, d: int, d_out: int, n_layers: int, init: float = 1.0, seed: int = 0):
        super().__init__()
        g = generator(seed, 2)
        s = init / math.sqrt(d)
        outs = [d] * (n_layers - 1) + [d_out]
        self.V = nn.ParameterList(
            nn.Parameter(torch.randn(1, o, d, generator=g, dtype=F64) * s) for o in outs
        )
        self.Q = nn.ParameterList(
            nn.Parameter(torch.randn(1, d, d, generator=g, dtype=F64) * s) for _ in outs
        )
        self.scale = 1.0 / math.sqrt(d)
        self.last_only = False

    def encode(self, Z: Tensor, prefixes: bool = True) -> Tensor:
        """The identity (remembering whether to predict every position or the last)."""
        self.last_only = not prefixes
        return Z

    def forward(self, Z: Tensor) -> Tensor:
        for V, Q in zip(self.V[:-1], self.Q[:-1], strict=True):
            Z = Z + _linear_attention(V, Q, Z, self.scale)
        out = _linear_attention(self.V[-1], self.Q[-1], Z, self.scale)
        return out[:, -1] if self.last_only else out


class SoftmaxTransformer(nn.Module):
    """lmlab GPT blocks on vectors: read-in, learned positions, blocks, final LayerNorm, read-out."""

    def __init__(self, d: int, d_out: int, n_pos: int, d_model: int = 32, n_layer: int = 2,
                 n_head: int = 4, seed: int = 0, dtype: torch.dtype = F64):
        super().__init__()
        torch.manual_seed(seed)  # GPT's init draws from the global generator
        gpt = GPT(GPTConfig(vocab_size=1, block_size=n_pos, n_layer=n_layer, n_head=n_head,
                            d_model=d_model, pos="learned", attn="softmax", tie_embeddings=False))
        self.read_in = nn.Linear(d, d_model)
        self.pos_emb = gpt.pos_emb
        self.blocks = gpt.blocks
        self.ln_f = gpt.ln_f
        self.read_out = nn.Linear(d_model, d_out)
        self.last_only = False
        self.dtype = dtype
        self.to(dtype)

    def encode(self, Z: Tensor, prefixes: bool = True) -> Tensor:
        """The identity (remembering whether to predict every position or the last)."""
        self.last_only = not prefixes
        return Z

    def forward(self, Z: Tensor) -> Tensor:
        T = Z.shape[1]
        x = self.read_in(Z.to(self.dtype)) + self.pos_emb.weight[:T]  # (B, T, d_model)
        for block in self.blocks:
            x = block(x)
        out = self.read_out(self.ln_f(x)).to(Z.dtype)  # (B, T, d_out)
        return out[:, -1] if self.last_only else out


def build_model(kind: str, d: int, d_out: int, size: int, n_pos: int, seed: int,
                d_model: int = 32) -> nn.Module:
    """'mhla' (size = heads), 'stacked' (size = layers) or 'softmax' (size = GPT layers)."""
    if kind == "mhla":
        return MHLAModel(d, d_out, size, seed=seed)
    if kind == "stacked":
        return StackedLinearAttention(d, d_out, size, seed=seed)
    if kind == "softmax":
        return SoftmaxTransformer(d, d_out, n_pos, d_model=d_model, n_layer=size, seed=seed)
    raise ValueError(f"unknown model kind {kind!r}")


def normalized_mse(pred: Tensor, target: Tensor) -> float:
    """Mean squared error divided by the variance of the targets (0: perfect, 1: predicts the mean)."""
    return float(((pred - target) ** 2).mean() / target.var())


@dataclass
class RegressionResult:
    """What a gradient-trained model reached: final train/held-out normalized MSE and its curve."""

    train_nmse: float
    val_nmse: float
    steps: int
    wall_s: float
    curve: list[tuple[int, float]]


def train_regressor(
    model: nn.Module,
    X: Tensor,
    Y: Tensor,
    X_val: Tensor,
    Y_val: Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    eval_every: int = 0,
    grad_clip: float = 5.0,
    stop_below: float | None = None,
    device: str = "cpu",
) -> RegressionResult:
    """Train `model` on MSE with lmlab's Trainer (Adam, 10% warmup, cosine to 1% of lr, clip 5).

    X and X_val are inputs already passed through `model.encode`; Y, Y_val the targets of the
    same shape as the model's output. Batches walk through a fresh permutation of the N examples
    each epoch, as the paper's script does. `stop_below` stops once the held-out normalized MSE
    is below it (checked every `eval_every` steps).
    """
    N = len(X)
    per_epoch = max(1, N // batch_size)
    perms: dict[int, Tensor] = {}
    X, Y, X_val, Y_val = (t.to(device) for t in (X, Y, X_val, Y_val))

    def batches(step: int, _g: torch.Generator) -> dict[str, Tensor]:
        epoch, i = divmod(step - 1, per_epoch)
        if epoch not in perms:
            perms.clear()
            perms[epoch] = torch.randperm(N, generator=generator(seed, 7, epoch)).to(X.device)
        idx = perms[epoch][i * batch_size : (i + 1) * batch_size]
        return {"input_ids": X[idx], "targets": Y[idx]}

    def loss_fn(m: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return ((m(batch["input_ids"]) - batch["targets"]) ** 2).mean()

    def predict(m: nn.Module, Xs: Tensor) -> Tensor:
        return torch.cat([m(Xs[i : i + 1024]) for i in range(0, len(Xs), 1024)])

    curve: list[tuple[int, float]] = []

    def evaluate(m: nn.Module) -> dict[str, float]:
        val = normalized_mse(predict(m, X_val), Y_val)
        curve.append((trainer.step, val))
        return {"val_nmse": val}

    cfg = TrainConfig(
        steps=steps, lr=lr, warmup_steps=steps // 10, schedule="cosine", min_lr_ratio=0.01,
        grad_clip=grad_clip, log_every=max(1, steps), eval_every=eval_every, seed=seed,
        device=device, stop_metric="val_nmse" if stop_below is not None else None,
        stop_at=stop_below, stop_mode="min",
    )
    trainer = Trainer(model, cfg, batches, evaluate=evaluate, loss_fn=loss_fn)
    metrics = trainer.fit()
    model.eval()
    with torch.no_grad():
        train = normalized_mse(predict(model, X), Y)
    return RegressionResult(train, float(metrics["val_nmse"]), int(metrics["steps_done"]),
                            float(metrics["wall_s"]), curve)
