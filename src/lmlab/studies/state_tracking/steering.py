"""The paper's intermediate tasks (section 5.3), which steer a model toward AA or PAA.

- `parity`: a parity curriculum: the model is first trained to output the parity of the state
  (tokens G and G+1) instead of the state.
- `ntp`: next-token pre-training on a synthetic topic-model corpus over the action tokens
  (4 topics, document-topic Dirichlet alpha = 0.3, 100 tokens per document). The official code
  ships a fixed topic-word matrix (`paper_topic_mapping.json`) whose mass sits mostly on the odd
  permutations and the identity; offline we draw a seeded one, `topic_word_matrix`, and let the
  user pass the released one instead.
"""

from __future__ import annotations

import numpy as np
import torch

from lmlab.studies.state_tracking.data import StoryData, with_bos

__all__ = ["INTERMEDIATE_TASKS", "intermediate_batch", "topic_documents", "topic_word_matrix"]

INTERMEDIATE_TASKS = ("none", "parity", "ntp")


def topic_word_matrix(n_words: int, n_topics: int = 4, seed: int = 0) -> np.ndarray:
    """A seeded (n_topics, n_words) topic-word matrix, rows drawn from a flat Dirichlet."""
    return np.random.default_rng([seed, 31]).dirichlet(np.ones(n_words), size=n_topics)


def topic_documents(
    topic_word: np.ndarray, n_docs: int, length: int, alpha: float, generator: torch.Generator
) -> np.ndarray:
    """LDA documents: per document theta ~ Dir(alpha); per token z ~ theta, w ~ topic_word[z]."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    K, V = topic_word.shape
    theta = rng.dirichlet(np.full(K, alpha), size=n_docs)  # (n, K)
    word_probs = theta @ topic_word  # (n, V): the mixture each document's tokens come from
    u = rng.random((n_docs, length, 1))
    cdf = np.cumsum(word_probs, axis=1)[:, None, :]  # (n, 1, V)
    return np.minimum((u > cdf).sum(-1), V - 1).astype(np.int64)  # (n, length)


def intermediate_batch(
    task: str, data: StoryData, generator: torch.Generator, batch_size: int,
    topic_word: np.ndarray | None = None, alpha: float = 0.3, bos: int | None = None,
) -> dict[str, torch.Tensor]:
    """One batch of an intermediate task over the same token ids as the state task."""
    if task == "parity":
        b = data.batch(generator, batch_size, bos=bos)
        t = b["targets"]
        parity = torch.from_numpy(data.group.parity)[t.clamp_min(0)]
        b["targets"] = torch.where(t >= 0, data.group.order + parity, t)
        return b
    if task == "ntp":
        if topic_word is None:
            raise ValueError("the ntp task needs a topic-word matrix")
        docs = torch.from_numpy(topic_documents(topic_word, batch_size, data.T + 1, alpha, generator))
        inputs, targets = docs[:, :-1], docs[:, 1:]
        if bos is not None:  # BOS predicts the first word
            inputs, targets = with_bos(inputs, bos), docs
        return {"input_ids": inputs, "targets": targets}
    raise ValueError(f"unknown intermediate task {task!r}; choose one of {INTERMEDIATE_TASKS}")
