"""The paper's LSTM baseline: token embedding -> 2-layer LSTM -> linear unembedding.

It follows lmlab's GPT calling convention, `forward(idx, targets, loss_mask) -> (logits, loss)`,
so the same trainer, tasks and evaluation serve both. (A general LSTM language model would belong
in `lmlab.nn`; it lives here until a second study needs it.)
"""

from __future__ import annotations

from torch import Tensor, nn

from lmlab.nn import GPT

__all__ = ["LSTMLM"]


class LSTMLM(nn.Module):
    """Embedding (V, d) -> LSTM with `n_layer` layers of width d -> Linear (d, V)."""

    def __init__(self, vocab_size: int, d_model: int, n_layer: int = 2) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.lstm = nn.LSTM(d_model, d_model, num_layers=n_layer, batch_first=True)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)

    def forward(
        self, idx: Tensor, targets: Tensor | None = None, loss_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, V) for idx (B, T); with targets, the masked mean cross-entropy."""
        h, _ = self.lstm(self.tok_emb(idx))  # (B, T, d)
        logits = self.lm_head(h)  # (B, T, V)
        if targets is None:
            return logits, None
        return logits, GPT.loss(logits, targets, loss_mask)
