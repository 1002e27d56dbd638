"""The `smol` experiment's tasks: the synthetic language's windows rendered as English text,
with a one-token answer the model is trained on.

- `topic`: the topic of the first noun (4 classes: ` animal`, ` food`, ` tool`, ` place`). The
  pre-trained model knows these words' meanings, so it is learned with a small update.
- `code_first` / `code_last`: an arbitrary code word of the first / last noun (24 nouns, each
  mapped to one of 24 code words by a fixed random permutation, a different one per task). The
  mapping is a learned cipher no pre-training explains, so it needs the weights to move.

Each example is `"<text> <question>:"` -> `" <answer>"`. Accuracy is greedy among the task's own
answer tokens (a per-task head, as in continual learning). Splits are drawn from one stream with
every text kept once, so no text is in two splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lmlab.errors import LmlabError
from lmlab.seeding import numpy_rng
from lmlab.studies.intruders.data import TOPICS, Language

__all__ = ["CODE_WORDS", "SMOL_TASKS", "SmolTask", "pad_rows", "smol_splits"]

NOUNS = tuple(n for nouns in TOPICS.values() for n in nouns)
# one-token words with no relation to the nouns (colours, numbers, directions, metals)
CODE_WORDS = ("red", "blue", "green", "yellow", "black", "white", "pink", "brown", "one", "two",
              "three", "four", "five", "six", "seven", "eight", "nine", "ten", "north", "south",
              "east", "west", "gold", "silver")
SMOL_TASKS = ("topic", "code_first", "code_last")
_QUESTION = {"topic": "Topic of the first noun:", "code_first": "Code of the first noun:",
             "code_last": "Code of the last noun:"}


@dataclass
class SmolTask:
    """One split of a task: prompt token ids, the class of each, and each class's answer token."""

    name: str
    prompts: list[list[int]]
    labels: torch.Tensor  # (N,) class index
    answers: tuple[int, ...]  # token id of each class's answer

    def __len__(self) -> int:
        return len(self.prompts)


def _classes(task: str) -> tuple[tuple[str, ...], dict[str, int]]:
    """The answer words of `task` and each noun's class."""
    if task == "topic":
        return tuple(TOPICS), {n: i for i, ns in enumerate(TOPICS.values()) for n in ns}
    if task in ("code_first", "code_last"):
        # a fixed permutation per task (not per run seed: the task is the same in every run)
        perm = np.random.default_rng(SMOL_TASKS.index(task) + 17).permutation(len(CODE_WORDS))
        return CODE_WORDS, {n: int(perm[i]) for i, n in enumerate(NOUNS)}
    raise LmlabError(f"unknown smol task {task!r}; tasks: {', '.join(SMOL_TASKS)}")


def answer_tokens(tokenizer: Any, words: tuple[str, ...]) -> tuple[int, ...]:
    """The first token of `" " + word` for each word; they must be distinct."""
    ids = tuple(tokenizer.encode(" " + w, add_special_tokens=False)[0] for w in words)
    if len(set(ids)) != len(ids):
        raise LmlabError("the tokenizer maps two answer words to the same first token")
    return ids


def smol_splits(tokenizer: Any, task: str, sizes: tuple[int, ...], text_len: int, seed: int
                ) -> tuple[SmolTask, ...]:
    """Splits of `task` (e.g. train, validation, test) of the given sizes, disjoint in text."""
    if text_len < 4:
        raise LmlabError(f"smol.text_len must be >= 4 (one sentence start), got {text_len}")
    words, cls = _classes(task)
    answers = answer_tokens(tokenizer, words)
    lang = Language()
    rng = numpy_rng(seed, SMOL_TASKS.index(task), 31)
    seen: set[tuple[int, ...]] = set()
    out = []
    for n in sizes:
        prompts, labels = [], []
        while len(prompts) < n:
            ids = lang.window(rng, text_len)
            nouns = [lang.words[t] for t in ids if t in lang.topic_of]
            if not nouns or tuple(ids) in seen:
                continue
            seen.add(tuple(ids))
            noun = nouns[-1] if task == "code_last" else nouns[0]
            prompts.append(tokenizer.encode(f"{lang.decode(ids)} {_QUESTION[task]}",
                                            add_special_tokens=False))
            labels.append(cls[noun])
        out.append(SmolTask(task, prompts, torch.tensor(labels, dtype=torch.long), answers))
    return tuple(out)


def pad_rows(rows: list[list[int]], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask and the index of each row's last real token."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask,
            "last": torch.tensor([len(r) - 1 for r in rows])}
