"""A small GPT with named hook points, in one file.

Pre-LayerNorm decoder blocks as in GPT-2 / nanoGPT, with a choice of positional scheme
(learned, sinusoidal, rotary, none) and of attention (softmax, or causal unnormalized linear
attention). Every activation that an analysis might want passes a `HookPoint` named as in
TransformerLens (`blocks.0.attn.hook_pattern`, `blocks.1.hook_resid_post`, ...), and every linear
layer is a plain `nn.Linear` with a conventional name (`q_proj`, ..., `down_proj`) so PEFT's
`LoraConfig(target_modules=["q_proj", "v_proj"])` applies to it as to a Hugging Face model.

Optional coordinate embeddings (`GPTConfig.coord_sizes`, default none): one extra learned table
per coordinate, indexed by per-token integer coordinates that the caller passes to `forward`
(`coords`, (B, T, n)) and added to the token embedding through `hook_coord_embed`. A flattened
2-D grid, for example, can give every token its (row, column), so that "the cell at the same
place in another grid" is an equal-coordinates lookup at any grid size instead of an offset in
1-D positions that changes with the grid's width. Without them the model is exactly as before.

Shapes: B batch, T time, d d_model, nh n_head, hs head size (d // nh), V vocab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from lmlab.errors import LmlabError
from lmlab.nn.hooks import HookedMixin, HookPoint
from lmlab.nn.modes import evaluating

__all__ = ["FREEZE_MODES", "GPT", "GPTConfig", "GPTConfigError"]

POS_SCHEMES = ("learned", "sinusoidal", "rope", "none")
ATTN_KINDS = ("softmax", "linear")

# What each freeze mode trains; every other parameter keeps its initial value.
FREEZE_MODES: dict[str, str] = {
    "full": "train every parameter",
    "random": "train token embedding, positional embedding and unembedding; attention, MLP and "
    "LayerNorm weights stay at their random init (Zhong & Andreas 2024)",
    "unembed": "train the unembedding (lm_head) only",
    "embed": "train the token and positional embeddings only",
    "tok_unembed": "train the token embedding and the unembedding",
}
# Parameter-name prefixes trained by each mode (None: all of them).
_TRAINED: dict[str, tuple[str, ...] | None] = {
    "full": None,
    "random": ("tok_emb.", "pos_emb.", "coord_emb.", "lm_head."),
    "unembed": ("lm_head.",),
    "embed": ("tok_emb.", "pos_emb.", "coord_emb."),
    "tok_unembed": ("tok_emb.", "lm_head."),
}


class GPTConfigError(LmlabError, ValueError):
    """A GPT configuration or call that cannot work; the message names the field."""


@dataclass
class GPTConfig:
    """The shape of a GPT. `d_mlp=None` means 4 * d_model."""

    vocab_size: int = 512
    block_size: int = 128  # longest sequence the model accepts
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 128
    d_mlp: int | None = None
    dropout: float = 0.0
    bias: bool = True  # biases in the Linear layers and LayerNorms
    pos: str = "learned"  # "learned" | "sinusoidal" | "rope" | "none"
    attn: str = "softmax"  # "softmax" | "linear"
    linear_attn_scale: bool = True  # linear attention: scale q.k by 1/sqrt(hs) like softmax's
    tie_embeddings: bool = True  # lm_head shares tok_emb's weight
    init_std: float = 0.02
    rope_base: float = 10000.0
    # One embedding table per extra per-token coordinate (e.g. (rows, columns)); () for none.
    coord_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.coord_sizes = tuple(self.coord_sizes)
        for n in self.coord_sizes:
            if not isinstance(n, int) or n < 1:
                raise GPTConfigError(
                    f"GPTConfig.coord_sizes must hold positive ints, got {self.coord_sizes!r}"
                )
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise GPTConfigError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        if self.d_mlp is None:
            self.d_mlp = 4 * self.d_model
        elif self.d_mlp < 1:
            raise GPTConfigError(f"GPTConfig.d_mlp must be positive, got {self.d_mlp}")
        if self.d_model % self.n_head:
            raise GPTConfigError(
                f"GPTConfig.d_model={self.d_model} is not divisible by n_head={self.n_head}"
            )
        if self.pos not in POS_SCHEMES:
            raise GPTConfigError(f"GPTConfig.pos must be one of {POS_SCHEMES}, got {self.pos!r}")
        if self.attn not in ATTN_KINDS:
            raise GPTConfigError(f"GPTConfig.attn must be one of {ATTN_KINDS}, got {self.attn!r}")
        if self.pos == "rope" and self.d_head % 2:
            raise GPTConfigError(f"pos='rope' needs an even head size, got d_head={self.d_head}")
        if self.pos == "sinusoidal" and self.d_model % 2:
            raise GPTConfigError(f"pos='sinusoidal' needs an even d_model, got {self.d_model}")
        if not 0.0 <= self.dropout < 1.0:
            raise GPTConfigError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head


def sinusoidal_table(n_pos: int, d: int) -> Tensor:
    """The fixed positional table of Vaswani et al.: sin on even, cos on odd channels.  (n_pos, d)"""
    pos = torch.arange(n_pos, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(n_pos, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


def rope_tables(n_pos: int, d_head: int, base: float) -> tuple[Tensor, Tensor]:
    """The rotary tables (cos, sin) for `apply_rope`, each (n_pos, 1, d_head).

    Channel pair (i, i + hs/2) turns by angle pos * base^(-2i/hs). Both halves of `cos` hold the
    pair's cosine; `sin` holds -sin in the first half and sin in the second, so that the rotation
    is two products and a sum (see `apply_rope`).
    """
    inv_freq = base ** (-torch.arange(0, d_head, 2).float() / d_head)
    angles = torch.arange(n_pos).float()[:, None] * inv_freq  # (T, hs/2)
    cos, sin = angles.cos(), angles.sin()
    return torch.cat((cos, cos), -1)[:, None, :], torch.cat((-sin, sin), -1)[:, None, :]


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs (i, i + hs/2) of x (B, T, nh, hs) by position-dependent angles.

    cos, sin: `rope_tables` rows for x's positions, (T, 1, hs). With x = (x1, x2) by halves this
    is (x1 cos - x2 sin, x2 cos + x1 sin), written as x * cos + (x2, x1) * sin: four kernels
    instead of seven, and the same floats (negation and the order of a two-term sum are exact).
    """
    x1, x2 = x.chunk(2, dim=-1)  # (B, T, nh, hs/2) each
    return x * cos + torch.cat((x2, x1), dim=-1) * sin


def _is_plain_linear(m: nn.Module) -> bool:
    # A Linear that nobody wrapped (PEFT's LoRA replaces the module) or hooked: its weight alone
    # says what it computes, so it can be fused with its siblings.
    return type(m) is nn.Linear and not (m._forward_hooks or m._forward_pre_hooks)


class _CrossEntropy(torch.autograd.Function):
    """sum_i weight_i * CE(logits_i, targets_i), with the backward done in place.

    F.cross_entropy keeps an (N, V) log-probability tensor, and its backward fills an (N, V)
    buffer with zeros and writes a third (N, V) gradient. With a vocabulary of thousands these
    are hundreds of MB per step (on a CPU each fresh buffer also costs page faults). Here the
    backward turns the saved log-probabilities into the gradient in place, scale * (softmax -
    onehot): one buffer and two passes instead of three buffers and five passes.
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, targets: Tensor, weight: Tensor) -> Tensor:
        # logits (N, V); targets (N,) with -100 = ignore; weight (N,) fp32, 0 where ignored
        logp = torch.log_softmax(logits, dim=-1)  # (N, V)
        safe = targets.clamp_min(0)[:, None]  # (N, 1); ignored rows have weight 0 anyway
        ctx.logp = logp
        ctx.save_for_backward(logits, safe, weight)
        return -(logp.gather(1, safe).squeeze(1).float() * weight).sum()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        logits, safe, weight = ctx.saved_tensors
        # The buffer becomes the gradient, so it serves one backward; a second one (the graph
        # kept with retain_graph=True) recomputes the softmax.
        probs = ctx.logp.exp_() if ctx.logp is not None else torch.softmax(logits, dim=-1)
        ctx.logp = None
        scale = (weight * grad)[:, None].to(probs.dtype)  # (N, 1)
        probs.mul_(scale).scatter_add_(1, safe, -scale)
        return probs.to(logits.dtype), None, None


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention: softmax (SDPA kernel when possible) or unnormalized linear."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_head, self.d_head, self.kind = cfg.n_head, cfg.d_head, cfg.attn
        self.scale = 1.0 / math.sqrt(cfg.d_head)
        if cfg.attn == "linear" and not cfg.linear_attn_scale:
            self.scale = 1.0
        self.dropout = cfg.dropout
        # Separate q/k/v modules (not one fused c_attn) so that LoRA can target each by name.
        self.q_proj = nn.Linear(d, d, bias=cfg.bias)
        self.k_proj = nn.Linear(d, d, bias=cfg.bias)
        self.v_proj = nn.Linear(d, d, bias=cfg.bias)
        self.o_proj = nn.Linear(d, d, bias=cfg.bias)
        self.hook_q = HookPoint()  # (B, T, nh, hs)
        self.hook_k = HookPoint()
        self.hook_v = HookPoint()
        if cfg.pos == "rope":
            self.hook_rot_q = HookPoint()  # (B, T, nh, hs), after the rotation
            self.hook_rot_k = HookPoint()
        # (B, nh, T, T) scaled q.k; softmax: -inf above the diagonal, linear: not masked
        self.hook_attn_scores = HookPoint()
        self.hook_pattern = HookPoint()  # (B, nh, T, T)
        self.hook_z = HookPoint()  # (B, T, nh, hs), per-head outputs before o_proj

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.q_proj, self.k_proj, self.v_proj
        if _is_plain_linear(q) and _is_plain_linear(k) and _is_plain_linear(v):
            # One (d -> 3d) matmul instead of three: fewer, larger kernels. The concatenation of
            # the weights is cheap next to the matmul, and autograd splits the gradient back.
            w = torch.cat((q.weight, k.weight, v.weight))
            b = None if q.bias is None else torch.cat((q.bias, k.bias, v.bias))
            return F.linear(x, w, b).split(q.out_features, dim=-1)  # (B, T, d) views
        return q(x), k(x), v(x)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        B, T, C = x.shape
        nh, hs = self.n_head, self.d_head
        q, k, v = self._qkv(x)
        q = self.hook_q(q.view(B, T, nh, hs))  # (B, T, nh, hs)
        k = self.hook_k(k.view(B, T, nh, hs))
        v = self.hook_v(v.view(B, T, nh, hs))
        if rope is not None:
            q = self.hook_rot_q(apply_rope(q, *rope))
            k = self.hook_rot_k(apply_rope(k, *rope))
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, nh, T, hs)
        dropout = self.dropout if self.training else 0.0

        if self.kind == "softmax" and not (
            self.hook_attn_scores.has_hooks or self.hook_pattern.has_hooks
        ):
            # The fused kernel never materializes the (T, T) pattern; only do that when asked.
            z = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            scores = (q @ k.transpose(-2, -1)) * self.scale  # (B, nh, T, T)
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            if self.kind == "softmax":
                scores = self.hook_attn_scores(scores.masked_fill(future, float("-inf")))
                pattern = self.hook_pattern(scores.softmax(dim=-1))
            else:
                # Linear attention: out_t = sum_{s<=t} (q_t . k_s) v_s. No normalization, so the
                # pattern is the causally masked score matrix itself.
                scores = self.hook_attn_scores(scores)
                pattern = self.hook_pattern(scores.masked_fill(future, 0.0))
            if dropout:
                pattern = F.dropout(pattern, dropout, training=True)
            z = pattern @ v  # (B, nh, T, hs)

        z = self.hook_z(z.transpose(1, 2))  # (B, T, nh, hs)
        y = self.o_proj(z.reshape(B, T, C))  # (B, T, d)
        return F.dropout(y, self.dropout, training=True) if dropout else y


class MLP(nn.Module):
    """d -> d_mlp -> GELU -> d."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        assert cfg.d_mlp is not None
        self.up_proj = nn.Linear(cfg.d_model, cfg.d_mlp, bias=cfg.bias)
        self.down_proj = nn.Linear(cfg.d_mlp, cfg.d_model, bias=cfg.bias)
        self.hook_pre = HookPoint()  # (B, T, d_mlp)
        self.hook_post = HookPoint()  # (B, T, d_mlp)
        self.dropout = cfg.dropout

    def forward(self, x: Tensor) -> Tensor:
        h = self.hook_pre(self.up_proj(x))  # (B, T, d_mlp)
        # Exact (erf) GELU, as nanoGPT's. GPT-2's tanh approximation was a speed-up on old
        # hardware; in PyTorch's CPU kernels the exact form is now several times faster.
        h = self.hook_post(F.gelu(h))
        y = self.down_proj(h)  # (B, T, d)
        return F.dropout(y, self.dropout, training=True) if self.dropout and self.training else y


class Block(nn.Module):
    """Pre-LayerNorm block: x + attn(ln1(x)), then + mlp(ln2(x))."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.hook_resid_pre = HookPoint()  # (B, T, d)
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(self.ln1(x), rope)))
        x = self.hook_resid_post(x + self.hook_mlp_out(self.mlp(self.ln2(x))))
        return x


class GPT(HookedMixin, nn.Module):
    """Decoder-only transformer: forward(idx, targets, loss_mask) -> (logits, loss)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.pos == "learned":
            self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model)
        elif cfg.pos == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_table(cfg.block_size, cfg.d_model), False)
        elif cfg.pos == "rope":
            # (T, 1, hs) each: broadcasts over batch and heads of (B, T, nh, hs)
            cos, sin = rope_tables(cfg.block_size, cfg.d_head, cfg.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.hook_embed = HookPoint()  # (B, T, d)
        if cfg.pos in ("learned", "sinusoidal"):
            self.hook_pos_embed = HookPoint()  # (B, T, d)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        # TransformerLens calls the final norm's output `ln_final.hook_normalized`.
        self.ln_final = nn.Module()
        self.ln_final.hook_normalized = HookPoint()  # (B, T, d)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        # Residual projections add into the stream once per layer (twice per block); scaling
        # their init by 1/sqrt(2 * n_layer) keeps the stream's variance flat with depth (GPT-2).
        for name, p in self.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, 0.0, cfg.init_std / math.sqrt(2 * cfg.n_layer))
        if cfg.tie_embeddings:
            # One matrix maps tokens to vectors and back (Press & Wolf 2017): fewer parameters,
            # and rare tokens' output rows learn from their input occurrences too.
            self.lm_head.weight = self.tok_emb.weight
        if cfg.coord_sizes:
            # Built and initialized after everything else, so that the other weights are exactly
            # those of the same model without coordinates.
            self.coord_emb = nn.ModuleList(
                nn.Embedding(n, cfg.d_model, _weight=torch.empty(n, cfg.d_model))
                for n in cfg.coord_sizes
            )
            for emb in self.coord_emb:
                nn.init.normal_(emb.weight, 0.0, cfg.init_std)
            self.hook_coord_embed = HookPoint()  # (B, T, d), the sum over the coordinates

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, self.config.init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, self.config.init_std)

    # ---------------------------------------------------------------- forward

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        loss_mask: Tensor | None = None,
        coords: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, V) for token ids idx (B, T); with targets, also the mean cross-entropy.

        targets (B, T) may hold -100 at positions to ignore. loss_mask (B, T), bool or float,
        selects (or weights) the positions the loss averages over. coords (B, T, n) integer, one
        column per entry of `config.coord_sizes`, is required exactly when that is non-empty.
        """
        cfg = self.config
        if idx.dim() != 2 or idx.dtype not in (torch.long, torch.int):
            raise GPTConfigError(
                f"idx must be a (B, T) integer tensor, got shape {tuple(idx.shape)} {idx.dtype}"
            )
        B, T = idx.shape
        if T > cfg.block_size:
            raise GPTConfigError(f"sequence length {T} exceeds block_size {cfg.block_size}")

        x = self.embed(idx, coords)  # (B, T, d)
        rope = None
        if cfg.pos == "learned":
            x = x + self.hook_pos_embed(self.pos_emb.weight[:T].expand(B, T, -1))
        elif cfg.pos == "sinusoidal":
            x = x + self.hook_pos_embed(self.pos_table[:T].expand(B, T, -1))
        elif cfg.pos == "rope":
            rope = (self.rope_cos[:T], self.rope_sin[:T])  # (T, 1, hs) each
        if cfg.dropout and self.training:
            x = F.dropout(x, cfg.dropout, training=True)
        for block in self.blocks:
            x = block(x, rope)
        x = self.ln_final.hook_normalized(self.ln_f(x))
        logits = self.lm_head(x)  # (B, T, V)

        if targets is None:
            return logits, None
        return logits, self.loss(logits, targets, loss_mask)

    def embed(self, idx: Tensor, coords: Tensor | None = None) -> Tensor:
        """Token embeddings of idx (B, T), plus the coordinate embeddings: (B, T, d).

        Positional embeddings are not included (they depend on where the tokens start).
        """
        x = self.hook_embed(self.tok_emb(idx))  # (B, T, d)
        sizes = self.config.coord_sizes
        if not sizes:
            if coords is not None:
                raise GPTConfigError("coords given, but the model has no coord_sizes")
            return x
        if coords is None or coords.shape != (*idx.shape, len(sizes)):
            got = None if coords is None else tuple(coords.shape)
            raise GPTConfigError(
                f"coords must have shape {(*idx.shape, len(sizes))} for coord_sizes={sizes}, "
                f"got {got}"
            )
        c = sum(emb(coords[..., i]) for i, emb in enumerate(self.coord_emb))
        return x + self.hook_coord_embed(c)

    @staticmethod
    def loss(logits: Tensor, targets: Tensor, loss_mask: Tensor | None = None) -> Tensor:
        """Mean cross-entropy of logits (B, T, V) against targets (B, T) over the masked positions.

        Positions with target -100 never count; a float mask weights positions (weighted mean).
        With nothing selected the loss is 0 (not NaN), so an all-masked batch is harmless.
        """
        if targets.shape != logits.shape[:-1]:
            raise GPTConfigError(
                f"targets shape {tuple(targets.shape)} does not match logits {tuple(logits.shape)}"
            )
        if loss_mask is not None and loss_mask.shape != targets.shape:
            raise GPTConfigError(
                f"loss_mask shape {tuple(loss_mask.shape)} does not match targets "
                f"{tuple(targets.shape)}"
            )
        flat_logits, flat_targets = logits.reshape(-1, logits.size(-1)), targets.reshape(-1)
        weight = (flat_targets != -100).to(torch.float32)  # (B*T,)
        if loss_mask is not None:
            weight = weight * loss_mask.reshape(-1).to(torch.float32)
        # sum / total weight rather than a mean: 0 instead of NaN when nothing is selected,
        # without a host sync to check for that case.
        total = weight.sum().clamp_min(torch.finfo(torch.float32).tiny)
        if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
            # torch.compile fuses the stock loss by itself; torch.func transforms (per-example
            # gradients, ...) need a functional autograd graph, which the in-place one is not.
            per_token = F.cross_entropy(flat_logits, flat_targets, reduction="none")
            return (per_token * weight).sum() / total
        return _CrossEntropy.apply(flat_logits, flat_targets, weight) / total

    # ---------------------------------------------------------------- utilities

    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (shared ones once); non_embedding drops the embedding tables."""
        skip = ("tok_emb.", "pos_emb.", "coord_emb.") if non_embedding else ()
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith(skip))

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Extend idx (B, T) by max_new_tokens; temperature 0 is greedy, else sample.

        Runs in eval mode (no dropout) and restores the previous mode afterwards. Sequences longer
        than block_size are cropped to their last block_size tokens before each step.
        """
        with evaluating(self):
            for _ in range(max_new_tokens):
                context = idx[:, -self.config.block_size :]
                logits = self(context)[0][:, -1, :]  # (B, V)
                if temperature <= 0:
                    nxt = logits.argmax(dim=-1, keepdim=True)
                else:
                    logits = logits / temperature
                    if top_k is not None:
                        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                        logits = logits.masked_fill(logits < kth, float("-inf"))
                    probs = logits.softmax(dim=-1)
                    nxt = torch.multinomial(probs, 1, generator=generator)
                idx = torch.cat((idx, nxt), dim=1)
        return idx

    # ---------------------------------------------------------------- freezing

    def set_trainable(self, mode: str) -> list[str]:
        """Freeze every parameter that `mode` (see FREEZE_MODES) does not train.

        Returns the names of the trainable parameters. Frozen parameters get requires_grad=False,
        so they receive no gradient and an optimizer (even with weight decay) leaves them exactly
        as they are; pass `trainable_parameters()` to the optimizer.
        """
        if mode not in FREEZE_MODES:
            raise GPTConfigError(
                f"unknown freeze mode {mode!r}; choose one of {list(FREEZE_MODES)}"
            )
        trained = _TRAINED[mode]
        separates = trained is not None and ("tok_emb." in trained) != ("lm_head." in trained)
        if separates and self.config.tie_embeddings:
            raise GPTConfigError(
                f"freeze mode {mode!r} trains the embedding and the unembedding separately, "
                "but this model ties them; build it with GPTConfig(tie_embeddings=False)"
            )
        for name, p in self.named_parameters(remove_duplicate=False):
            p.requires_grad_(trained is None or name.startswith(trained))
        return [n for n, p in self.named_parameters() if p.requires_grad]

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters that require grad (each shared one once): what to give the optimizer."""
        return [p for p in self.parameters() if p.requires_grad]
