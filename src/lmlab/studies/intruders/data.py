"""A synthetic language to pre-train on, and downstream tasks over the same vocabulary.

The language is a small probabilistic grammar with meaning: nouns belong to four topics
(animals, foods, tools, places), and each verb selects the topics of its subject and object
(`eats`: an animal eats a food), so predicting the next word needs the earlier words of the
sentence. Pre-training windows are cut from a stream of sentences; the held-out pre-training
loss on fresh windows is what fine-tuning may raise (forgetting).

A downstream task is next-token prediction too: a window of the language, a task marker token,
and one label token, with the loss and the accuracy on the label alone::

    the big cat never eats a soup . my knife cuts the bread . the <topic_first> cat

Tasks: `topic_first` (topic of the first noun), `topic_last` (topic of the last noun),
`negation` (does `never` occur?), `majority` (are most nouns animals or foods/tools/places?).
Labels are words of the language, so no new token is learnt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lmlab.errors import LmlabError
from lmlab.seeding import numpy_rng

__all__ = [
    "TASKS",
    "TOPICS",
    "Language",
    "TaskData",
    "make_splits",
    "make_task",
    "pretrain_batch",
]

TOPICS: dict[str, tuple[str, ...]] = {
    "animal": ("cat", "dog", "bird", "fish", "horse", "mouse"),
    "food": ("apple", "bread", "cheese", "rice", "soup", "cake"),
    "tool": ("hammer", "knife", "rope", "brush", "spoon", "saw"),
    "place": ("park", "house", "river", "town", "field", "shop"),
}
# verb -> (subject topics, object topics)
VERBS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "eats": (("animal",), ("food",)),
    "chases": (("animal",), ("animal",)),
    "sees": (("animal",), ("animal", "food", "tool", "place")),
    "cuts": (("tool",), ("food", "tool")),
    "cleans": (("tool",), ("tool", "place")),
    "feeds": (("place",), ("animal",)),
    "holds": (("place", "tool"), ("food", "tool")),
}
DETS = ("the", "a", "my", "that")
ADJS = ("big", "small", "red", "old", "new", "soft")
PREPS = ("in", "near")
SPECIALS = ("<bos>", ".", "never")
# Label words of each task, in class order.
TASK_LABELS: dict[str, tuple[str, ...]] = {
    "topic_first": ("cat", "apple", "hammer", "park"),
    "topic_last": ("dog", "bread", "knife", "house"),
    "negation": ("big", "small"),
    "majority": ("red", "old"),
}
TASKS = tuple(TASK_LABELS)


class Language:
    """The vocabulary and a sampler of sentences (token ids) with their nouns' topics."""

    def __init__(self, p_adj: float = 0.3, p_never: float = 0.15, p_prep: float = 0.3) -> None:
        self.p_adj, self.p_never, self.p_prep = p_adj, p_never, p_prep
        words = [*SPECIALS, *DETS, *ADJS, *PREPS, *VERBS]
        words += [n for nouns in TOPICS.values() for n in nouns]
        words += [f"<{t}>" for t in TASKS]
        self.words: tuple[str, ...] = tuple(words)
        self.id = {w: i for i, w in enumerate(self.words)}
        self.topic_of = {self.id[n]: i for i, nouns in enumerate(TOPICS.values()) for n in nouns}
        self.never = self.id["never"]
        self.topic_names = tuple(TOPICS)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def decode(self, ids: Sequence[int]) -> str:
        """The words of `ids`, space-separated."""
        return " ".join(self.words[i] for i in ids)

    def _np(self, rng: np.random.Generator, topic: str) -> list[str]:
        out = [DETS[rng.integers(len(DETS))]]
        if rng.random() < self.p_adj:
            out.append(ADJS[rng.integers(len(ADJS))])
        nouns = TOPICS[topic]
        out.append(nouns[rng.integers(len(nouns))])
        return out

    def sentence(self, rng: np.random.Generator) -> list[int]:
        """One sentence: NP [never] VERB NP [PREP NP(place)] '.'."""
        verb = list(VERBS)[rng.integers(len(VERBS))]
        subj_topics, obj_topics = VERBS[verb]
        words = self._np(rng, subj_topics[rng.integers(len(subj_topics))])
        if rng.random() < self.p_never:
            words.append("never")
        words.append(verb)
        words += self._np(rng, obj_topics[rng.integers(len(obj_topics))])
        if rng.random() < self.p_prep:
            words.append(PREPS[rng.integers(len(PREPS))])
            words += self._np(rng, "place")
        words.append(".")
        return [self.id[w] for w in words]

    def window(self, rng: np.random.Generator, length: int) -> list[int]:
        """`length` tokens of running text starting at a sentence start."""
        out: list[int] = []
        while len(out) < length:
            out += self.sentence(rng)
        return out[:length]


def pretrain_batch(lang: Language, rng: np.random.Generator, batch: int, seq_len: int
                   ) -> dict[str, torch.Tensor]:
    """A batch of language-modelling windows: `<bos>` + text, loss on every next token."""
    rows = [[lang.id["<bos>"], *lang.window(rng, seq_len)] for _ in range(batch)]
    seq = torch.tensor(rows, dtype=torch.long)  # (B, T+1)
    return {"input_ids": seq[:, :-1], "targets": seq[:, 1:]}


def _label(lang: Language, task: str, text: list[int]) -> int:
    """The class of `text` under `task`."""
    topics = [lang.topic_of[t] for t in text if t in lang.topic_of]
    if task == "topic_first":
        return topics[0]
    if task == "topic_last":
        return topics[-1]
    if task == "negation":
        return int(lang.never in text)
    if task == "majority":
        return int(2 * sum(t == 0 for t in topics) > len(topics))
    raise LmlabError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")


@dataclass
class TaskData:
    """A downstream task's examples: `<bos>` text `<task>` label, the label the only target."""

    name: str
    input_ids: torch.Tensor  # (N, T) long
    targets: torch.Tensor  # (N, T) long, -100 except at the label position
    labels: torch.Tensor  # (N,) class index
    label_ids: tuple[int, ...]  # token id of each class

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """The examples at `idx`, as a trainer batch."""
        return {"input_ids": self.input_ids[idx], "targets": self.targets[idx]}

    def class_balance(self) -> float:
        """Share of the most frequent class (the majority-guess accuracy)."""
        counts = torch.bincount(self.labels, minlength=len(self.label_ids))
        return float(counts.max()) / max(len(self), 1)


def _check_task(task: str, text_len: int) -> None:
    if task not in TASK_LABELS:
        raise LmlabError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if text_len < 4:
        raise LmlabError(f"text_len must be >= 4 (one sentence start), got {text_len}")


def _draw(lang: Language, task: str, rng: np.random.Generator, n: int, text_len: int,
          seen: set[tuple[int, ...]] | None = None) -> TaskData:
    """`n` examples of `task` drawn from `rng`; texts in `seen` are skipped (and added to it)."""
    label_ids = tuple(lang.id[w] for w in TASK_LABELS[task])
    marker = lang.id[f"<{task}>"]
    rows, labels = [], []
    while len(rows) < n:
        text = lang.window(rng, text_len)
        if not any(t in lang.topic_of for t in text):
            continue
        if seen is not None:
            key = tuple(text)
            if key in seen:
                continue
            seen.add(key)
        y = _label(lang, task, text)
        rows.append([lang.id["<bos>"], *text, marker, label_ids[y]])
        labels.append(y)
    seq = torch.tensor(rows, dtype=torch.long).reshape(n, text_len + 3)  # (N, T+1)
    targets = torch.full_like(seq[:, 1:], -100)
    targets[:, -1] = seq[:, -1]
    return TaskData(task, seq[:, :-1].contiguous(), targets, torch.tensor(labels, dtype=torch.long),
                    label_ids)


def make_task(lang: Language, task: str, n: int, text_len: int, seed: int) -> TaskData:
    """`n` examples of `task` over windows of `text_len` tokens, drawn with `seed`."""
    _check_task(task, text_len)
    return _draw(lang, task, numpy_rng(seed, TASKS.index(task), 7), n, text_len)


def make_splits(lang: Language, task: str, sizes: Sequence[int], text_len: int, seed: int
                ) -> tuple[TaskData, ...]:
    """Splits of `task` (e.g. train, validation, test) of the given sizes, drawn from one stream
    with every text kept once: no text is in two splits, by construction."""
    _check_task(task, text_len)
    rng = numpy_rng(seed, TASKS.index(task), 11)
    seen: set[tuple[int, ...]] = set()
    return tuple(_draw(lang, task, rng, n, text_len, seen) for n in sizes)


@torch.no_grad()
def task_accuracy(model: torch.nn.Module, data: TaskData, batch_size: int = 512,
                  labels_only: bool = False) -> float:
    """Greedy accuracy on the label token: argmax over the whole vocabulary, or with
    `labels_only` over the task's own label tokens (a per-task head, as in continual learning)."""
    right = 0
    ids = torch.tensor(data.label_ids)
    for i in range(0, len(data), batch_size):
        x = data.input_ids[i:i + batch_size]
        logits = model(x)[0][:, -1, :]  # (B, V)
        if labels_only:
            right += int((logits[:, ids].argmax(-1) == data.labels[i:i + batch_size]).sum())
        else:
            right += int((logits.argmax(-1) == data.targets[i:i + batch_size, -1]).sum())
    return right / max(len(data), 1)


@torch.no_grad()
def lm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor], chunk: int = 256) -> float:
    """Mean next-token cross-entropy of `model` on a fixed language-modelling batch."""
    total, count = 0.0, 0
    for i in range(0, len(batch["input_ids"]), chunk):
        x, y = batch["input_ids"][i:i + chunk], batch["targets"][i:i + chunk]
        logits = model(x)[0]
        total += float(torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"))
        count += y.numel()
    return total / max(count, 1)


def heldout_batch(lang: Language, seed: int, n: int, seq_len: int) -> dict[str, torch.Tensor]:
    """A fixed held-out pre-training batch (a stream no training step draws from)."""
    return pretrain_batch(lang, numpy_rng(seed, 999_983), n, seq_len)
