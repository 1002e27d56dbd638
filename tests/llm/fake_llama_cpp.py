"""A stand-in for the `llama_cpp` module (llama-cpp-python), for plumbing tests without it.

The "model" reads bytes (token i < 256 is byte i) and three special tokens. Its next-token
logits depend on the last token read: the successor of that token in `SCRIPT` (the script's
first byte after anything else, end of text after its last byte) scores `PEAK`, every other
token 0. Greedy decoding therefore answers `SCRIPT`, and only if each sampled token is read back
before the next is sampled. Samplers are recorded (`CHAINS`) with their settings, as are the
models made (`MADE`), so tests can check what the backend asked llama.cpp for.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCRIPT = b"Abc-42;XyZ!"
PEAK = 5.0
IM_START, IM_END, EOT = 256, 257, 258
SPECIAL = {b"<|im_start|>": IM_START, b"<|im_end|>": IM_END, b"<|endoftext|>": EOT}
N_VOCAB = 259
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MADE: list[dict[str, Any]] = []
CHAINS: list[Chain] = []


def reset() -> None:
    """Forget the recorded models and samplers."""
    MADE.clear()
    CHAINS.clear()


def successor(token: int) -> int:
    i = SCRIPT.find(bytes([token])) if token < 256 else -1
    if i < 0:
        return SCRIPT[0]
    return SCRIPT[i + 1] if i + 1 < len(SCRIPT) else IM_END


def logits_after(token: int) -> np.ndarray:
    z = np.zeros(N_VOCAB, dtype=np.float32)
    z[successor(token)] = PEAK
    return z


class Llama:
    """The parts of `llama_cpp.Llama` the backend uses."""

    def __init__(self, model_path: str, **kwargs: Any):
        MADE.append({"model_path": model_path, **kwargs})
        self.n_ctx = kwargs.get("n_ctx", 512)
        self.input_ids = np.zeros(self.n_ctx, dtype=np.intc)
        self.n_tokens = 0
        self.model = object()
        self.ctx = self  # the context handle the sampler and logits calls receive
        self.metadata = {"tokenizer.chat_template": TEMPLATE, "general.name": "fake"}
        self.evaluated: list[int] = []  # how many tokens each eval call read
        self.resets = 0
        self.closed = False
        self._logits: Any = None

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        out, i = [], 0
        while i < len(text):
            hit = next((s for s in SPECIAL if special and text.startswith(s, i)), None)
            if hit is not None:
                out.append(SPECIAL[hit])
                i += len(hit)
            else:
                out.append(text[i])
                i += 1
        return out

    def detokenize(self, tokens: list[int], prev_tokens: Any = None, special: bool = False) -> bytes:
        names = {v: k for k, v in SPECIAL.items()}
        return b"".join(bytes([t]) if t < 256 else (names[t] if special else b"") for t in tokens)

    def token_bos(self) -> int:
        return -1

    def token_eos(self) -> int:
        return IM_END

    def n_vocab(self) -> int:
        return N_VOCAB

    def reset(self) -> None:
        self.n_tokens = 0
        self.resets += 1

    def eval(self, tokens: list[int]) -> None:
        if self.n_tokens + len(tokens) > self.n_ctx:
            raise RuntimeError("context full")
        self.input_ids[self.n_tokens:self.n_tokens + len(tokens)] = tokens
        self.n_tokens += len(tokens)
        self.evaluated.append(len(tokens))

    def last_logits(self) -> np.ndarray:
        assert self.n_tokens > 0, "sampled before reading anything"
        return logits_after(int(self.input_ids[self.n_tokens - 1]))

    def close(self) -> None:
        self.closed = True


@dataclass
class Chain:
    """A sampler chain: its steps as (name, setting) pairs, and whether it was freed."""

    steps: list[tuple[str, float]] = field(default_factory=list)
    freed: bool = False
    rng: np.random.Generator | None = None

    @property
    def seed(self) -> int | None:
        return next((int(v) for k, v in self.steps if k == "dist"), None)


def llama_sampler_chain_default_params() -> dict:
    return {}


def llama_sampler_chain_init(params: dict) -> Chain:
    chain = Chain()
    CHAINS.append(chain)
    return chain


def llama_sampler_chain_add(chain: Chain, step: tuple[str, float]) -> None:
    chain.steps.append(step)
    if step[0] == "dist":
        chain.rng = np.random.default_rng(int(step[1]))


def llama_sampler_init_greedy() -> tuple[str, float]:
    return ("greedy", 0.0)


def llama_sampler_init_temp(t: float) -> tuple[str, float]:
    return ("temp", t)


def llama_sampler_init_top_p(p: float, min_keep: int) -> tuple[str, float]:
    return ("top_p", p)


def llama_sampler_init_dist(seed: int) -> tuple[str, float]:
    assert 0 <= seed < 0xFFFFFFFF, "a seed llama.cpp would read as 'random'"
    return ("dist", seed)


def llama_sampler_sample(chain: Chain, ctx: Llama, idx: int) -> int:
    z = ctx.last_logits().astype(np.float64)
    settings = dict(chain.steps)
    if "greedy" in settings:
        return int(z.argmax())
    z = z / settings["temp"]
    p = np.exp(z - z.max())
    p /= p.sum()
    if "top_p" in settings:
        order = np.argsort(-p)
        keep = np.cumsum(p[order]) - p[order] < settings["top_p"]
        mask = np.zeros_like(p)
        mask[order[keep]] = 1
        p = p * mask / (p * mask).sum()
    assert chain.rng is not None
    return int(chain.rng.choice(N_VOCAB, p=p))


def llama_sampler_free(chain: Chain) -> None:
    chain.freed = True


def llama_get_logits_ith(ctx: Llama, i: int) -> Any:
    ctx._logits = (ctypes.c_float * N_VOCAB)(*ctx.last_logits().tolist())  # kept alive on ctx
    return ctypes.cast(ctx._logits, ctypes.POINTER(ctypes.c_float))


def llama_model_get_vocab(model: Any) -> str:
    return "vocab"


def llama_vocab_is_eog(vocab: Any, token: int) -> bool:
    return token in (IM_END, EOT)
