"""The paper's intermediate tasks (section 5.3), which steer a model toward AA or PAA.

- `parity`: a parity curriculum: the model is first trained to output the parity of the state
  (tokens G and G+1) instead of the state.
- `ntp`: next-token pre-training on a synthetic topic-model corpus over the action tokens
  (4 topics, document-topic Dirichlet alpha = 0.3, 100 tokens per document). The paper's S3
  corpus uses a fixed topic-word matrix, released as `paper_topic_mapping.json`; it ships here
  (`topic_mapping/`, MIT, with its provenance) and is used for S3 (`topic_mapping = "paper"`).
  Its mass sits mostly on the odd permutations and the identity. Other groups (or
  `topic_mapping = "seeded"`) draw a seeded matrix, each row from a Dirichlet(0.3), the
  official generator's default; `topic_matrix_for` says which one a run used.
- `pairs` (ours, not the paper's): the model is first trained to output the product of the last
  two actions at every position (the action itself at the first), the first step of an
  associative scan. It trains the AA's first layer directly, where `parity` trains the PAA's
  shortcut; issue #22 asks what makes AA appear at small scale.
- `windows` (ours): a curriculum over the scan's intermediates: the model is trained to output
  the product of the last k actions (fewer at the start) for k = 2, then 4, ... (the powers of 2
  below T), each for an equal share of the intermediate steps. It trains every level of an
  associative scan, where `pairs` trains the first only.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import numpy as np
import torch

from lmlab.studies.state_tracking.data import StoryData, with_bos
from lmlab.studies.state_tracking.groups import Group

__all__ = ["INTERMEDIATE_TASKS", "PAPER_MAPPING", "intermediate_batch", "paper_topic_mapping",
           "topic_documents", "topic_matrix_for", "topic_word_matrix", "window_size"]

INTERMEDIATE_TASKS = ("none", "parity", "ntp", "pairs", "windows")
TOPIC_MAPPINGS = ("paper", "seeded")
# the released matrix: file, SHA-256, and the label runs record (repository @ pinned commit)
PAPER_MAPPING = "paper_topic_mapping.json"
_PAPER_SHA256 = "c68116a226787f64390020e0fda6e33fb825fe436b7a4778ecfb3c110f48313f"
PAPER_LABEL = "paper (belindal/state-tracking@fc63e2d, paper_topic_mapping.json)"
SEEDED_BETA = 0.3  # the official generator's topic-word Dirichlet prior


def topic_word_matrix(n_words: int, n_topics: int = 4, seed: int = 0,
                      beta: float = SEEDED_BETA) -> np.ndarray:
    """A seeded (n_topics, n_words) topic-word matrix, each row drawn from a Dirichlet(beta)."""
    return np.random.default_rng([seed, 31]).dirichlet(np.full(n_words, beta), size=n_topics)


def paper_topic_mapping() -> np.ndarray:
    """The paper's released S3 topic-word matrix, (4 topics, 6 actions in lexicographic order),
    read from the package and checked against its pinned SHA-256."""
    raw = (resources.files("lmlab.studies.state_tracking") / "topic_mapping" / PAPER_MAPPING
           ).read_bytes()
    if hashlib.sha256(raw).hexdigest() != _PAPER_SHA256:
        raise ValueError(f"{PAPER_MAPPING} does not match its pinned SHA-256 (see PROVENANCE.md)")
    m = np.asarray(json.loads(raw), dtype=float)
    return m / m.sum(1, keepdims=True)  # rows sum to 1 up to 2e-16; make it exact for sampling


def topic_matrix_for(group: Group, source: str, seed: int) -> tuple[np.ndarray, str]:
    """The ntp task's topic-word matrix for `group` and a label saying which one it is.

    `source` "paper": the released matrix when it fits the group (S3 only), else the seeded one,
    labelled with why; "seeded": `topic_word_matrix(group.order, seed=seed)`.
    """
    if source not in TOPIC_MAPPINGS:
        raise ValueError(f"unknown topic mapping {source!r}; choose one of {TOPIC_MAPPINGS}")
    if source == "paper":
        paper = paper_topic_mapping()
        if group.name == "S3" and paper.shape[1] == group.order:
            return paper, PAPER_LABEL
        why = f"seeded (the released mapping covers S3 only, not {group.name})"
        return topic_word_matrix(group.order, seed=seed), why
    return topic_word_matrix(group.order, seed=seed), "seeded"


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


def window_size(T: int, progress: float) -> int:
    """The `windows` task's k at `progress` (the fraction of its steps done, in [0, 1)):
    2, 4, ... (the powers of 2 below T; 2 alone for T <= 2), each for an equal share."""
    sizes = [2 ** i for i in range(1, max(2, T).bit_length()) if 2 ** i < T] or [2]
    return sizes[min(len(sizes) - 1, max(0, int(progress * len(sizes))))]


def _last_products(b: dict[str, torch.Tensor], group: Group, k: int, bos: int | None) -> None:
    """Replace the state targets of batch `b` with the products of the last k actions."""
    actions = b["input_ids"][:, 0 if bos is None else 1:].numpy()
    products = torch.from_numpy(group.product_of_last(actions, k))
    t = b["targets"]
    b["targets"] = torch.cat([t[:, : t.shape[1] - products.shape[1]], products], 1)


def intermediate_batch(
    task: str, data: StoryData, generator: torch.Generator, batch_size: int,
    topic_word: np.ndarray | None = None, alpha: float = 0.3, bos: int | None = None,
    progress: float = 0.0,
) -> dict[str, torch.Tensor]:
    """One batch of an intermediate task over the same token ids as the state task
    (`progress`: the fraction of the task's steps done, for the `windows` curriculum)."""
    if task == "parity":
        b = data.batch(generator, batch_size, bos=bos)
        t = b["targets"]
        parity = torch.from_numpy(data.group.parity)[t.clamp_min(0)]
        b["targets"] = torch.where(t >= 0, data.group.order + parity, t)
        return b
    if task in ("pairs", "windows"):
        b = data.batch(generator, batch_size, bos=bos)
        k = 2 if task == "pairs" else window_size(data.T, progress)
        _last_products(b, data.group, k, bos)
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
