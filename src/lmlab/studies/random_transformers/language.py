"""Language modelling data: a synthetic corpus from a probabilistic grammar, and TinyStories.

The paper trains on TinyStories (already tokenized, preprocessing not released). Offline, the
study uses `GrammarCorpus`: sentences from a small probabilistic context-free grammar with number
agreement between subject and verb across prepositional phrases, so a model must track syntax,
not only word frequencies. `TinyStories` loads the real corpus through `datasets` (bytes as
tokens) when the package and the network are there, and says so in one line when they are not.

Both behave like the other tasks: `task(step, generator)` gives a training batch of windows,
`test_batch()` a fixed held-out set, `evaluate(model)` the held-out next-token loss (nats) and
accuracy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lmlab.device import model_device
from lmlab.errors import LmlabError
from lmlab.nn.modes import evaluating
from lmlab.studies.random_transformers.tasks import TEST_SEED

__all__ = ["GRAMMAR_WORDS", "GrammarCorpus", "TinyStories", "sample_sentence"]

_DET = ["the", "a", "every", "some"]
_NOUN = ["cat", "dog", "bird", "child", "teacher", "farmer", "king", "robot"]
_ADJ = ["big", "small", "red", "happy", "old", "quiet"]
_VT = ["see", "like", "chase", "help", "find", "call"]
_VI = ["sleep", "run", "sing", "wait"]
_PREP = ["near", "behind", "with", "under"]
_PLURAL_DET = {"the": "the", "a": "two", "every": "all", "some": "some"}

# pad 0, end of sentence 1, then words: singular/plural nouns and verbs are distinct tokens.
GRAMMAR_WORDS: list[str] = (
    ["<pad>", "."] + sorted(set(_DET) | set(_PLURAL_DET.values())) + _NOUN
    + [n + "s" for n in _NOUN] + _ADJ + _VT + [v + "s" for v in _VT] + _VI
    + [v + "s" for v in _VI] + _PREP
)
_ID = {w: i for i, w in enumerate(GRAMMAR_WORDS)}


def _np(rng: random.Random, depth: int) -> tuple[list[str], bool]:
    """A noun phrase and whether it is plural."""
    plural = rng.random() < 0.4
    det = rng.choice(_DET)
    words = [_PLURAL_DET[det] if plural else det]
    if rng.random() < 0.3:
        words.append(rng.choice(_ADJ))
    noun = rng.choice(_NOUN)
    words.append(noun + "s" if plural else noun)
    if depth < 2 and rng.random() < 0.25:
        words += [rng.choice(_PREP)] + _np(rng, depth + 1)[0]
    return words, plural


def sample_sentence(rng: random.Random) -> list[str]:
    """S -> NP VP '.', the verb agreeing in number with the subject's head noun."""
    subject, plural = _np(rng, 0)
    if rng.random() < 0.6:
        verb = rng.choice(_VT)
        vp = [verb if plural else verb + "s"] + _np(rng, 1)[0]
    else:
        verb = rng.choice(_VI)
        vp = [verb if plural else verb + "s"]
    if rng.random() < 0.2:
        vp += [rng.choice(_PREP)] + _np(rng, 2)[0]
    return subject + vp + ["."]


def _windows(stream: list[int], n: int, length: int) -> torch.Tensor:
    return torch.tensor(stream[: n * length], dtype=torch.long).view(n, length)


def _lm_batch(seq: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"input_ids": seq[:, :-1], "targets": seq[:, 1:],
            "loss_mask": torch.ones(seq.shape[0], seq.shape[1] - 1, dtype=torch.bool)}


@torch.no_grad()
def _logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    device = model_device(model)
    with evaluating(model):
        return model(batch["input_ids"].to(device))[0].float().cpu()


def _evaluate_lm(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    from lmlab.nn import GPT

    logits = _logits(model, batch)
    loss = float(GPT.loss(logits, batch["targets"]))
    acc = float((logits.argmax(-1) == batch["targets"]).float().mean())
    return {"test_loss": loss, "test_acc": acc}


def _window_losses(model: nn.Module, batch: dict[str, torch.Tensor]) -> list[float]:
    """Mean next-token loss (nats) of each held-out window, in order (their mean: test_loss)."""
    logits = _logits(model, batch)
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch["targets"],
                                            reduction="none")
    return [float(x) for x in nll.mean(1)]


@dataclass(frozen=True)
class GrammarCorpus:
    """Streams of grammar sentences cut into windows of `seq_len` tokens."""

    seq_len: int = 64
    batch_size: int = 64
    n_test: int = 500
    test_seed: int = TEST_SEED
    name: str = "grammar"

    @property
    def vocab_size(self) -> int:
        return len(GRAMMAR_WORDS)

    @property
    def block_size(self) -> int:
        return self.seq_len - 1

    def stream(self, n_tokens: int, rng: random.Random) -> list[int]:
        """At least n_tokens token ids of consecutive sentences."""
        out: list[int] = []
        while len(out) < n_tokens:
            out += [_ID[w] for w in sample_sentence(rng)]
        return out

    def __call__(self, step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        rng = random.Random(int(torch.randint(2**62, (1,), generator=gen)))
        n = self.batch_size * self.seq_len
        return _lm_batch(_windows(self.stream(n, rng), self.batch_size, self.seq_len))

    def test_batch(self) -> dict[str, torch.Tensor]:
        """Held-out windows, from a stream seeded apart from training (`test_seed`)."""
        rng = random.Random(self.test_seed)
        n = self.n_test * self.seq_len
        return _lm_batch(_windows(self.stream(n, rng), self.n_test, self.seq_len))

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return _evaluate_lm(model, self.test_batch())

    def window_losses(self, model: nn.Module) -> list[float]:
        return _window_losses(model, self.test_batch())


@dataclass(frozen=True)
class TinyStories:
    """TinyStories (roneneldan/TinyStories) as bytes, through `datasets`; needs the network."""

    seq_len: int = 128
    batch_size: int = 64
    n_train_stories: int = 20_000
    n_test: int = 500
    name: str = "tinystories"

    @property
    def vocab_size(self) -> int:
        return 256

    @property
    def block_size(self) -> int:
        return self.seq_len - 1

    def _load(self) -> tuple[torch.Tensor, torch.Tensor]:
        cache = self.__dict__.get("_cache")
        if cache is not None:
            return cache
        try:
            import datasets  # type: ignore[import-not-found]
        except ImportError:
            raise LmlabError("TinyStories needs the `datasets` package (pip install datasets) "
                             "and network access; use lm.corpus=grammar offline") from None
        try:
            train = datasets.load_dataset("roneneldan/TinyStories",
                                          split=f"train[:{self.n_train_stories}]")
            test = datasets.load_dataset("roneneldan/TinyStories", split="validation[:2000]")
        except Exception as e:  # network, hub or cache failures all end here
            raise LmlabError(f"cannot load TinyStories ({type(e).__name__}); it needs network "
                             "access to the Hugging Face hub; use lm.corpus=grammar offline"
                             ) from None
        cache = (self.pack([r["text"] for r in train]), self.pack([r["text"] for r in test]))
        object.__setattr__(self, "_cache", cache)
        return cache

    def pack(self, texts: list[str]) -> torch.Tensor:
        """UTF-8 bytes of the texts, joined by newlines, cut into (n, seq_len) windows."""
        data = "\n".join(texts).encode("utf-8")
        n = len(data) // self.seq_len
        if n < 1:
            raise LmlabError("TinyStories: not enough text for one window")
        return torch.frombuffer(bytearray(data[: n * self.seq_len]), dtype=torch.uint8
                                ).long().view(n, self.seq_len)

    def __call__(self, step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        train = self._load()[0]
        return _lm_batch(train[torch.randint(len(train), (self.batch_size,), generator=gen)])

    def test_batch(self) -> dict[str, torch.Tensor]:
        return _lm_batch(self._load()[1][: self.n_test])

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        return _evaluate_lm(model, self.test_batch())

    def window_losses(self, model: nn.Module) -> list[float]:
        return _window_losses(model, self.test_batch())
