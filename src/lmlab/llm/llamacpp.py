"""The llama.cpp backend: a GGUF model run by llama.cpp's quantized CPU kernels (opt-in).

``llamacpp:<catalog id>`` runs the verified GGUF the catalog keeps
(``$LMLAB_CACHE/models/gguf/<card.file>``, prepared like the hf backend's folder: see
`lmlab.models.embedded`); ``llamacpp:<path to a .gguf>`` runs any local GGUF file. It needs
`llama-cpp-python` (``pip install 'lmlab[llamacpp]'``, which compiles llama.cpp from source: several
minutes on two cores, so it is an extra, not part of the default set-up).

Same contract as the hf backend (`lmlab.llm.hf`): chat requests go through the model's own chat
template (the GGUF's ``tokenizer.chat_template``, rendered as `transformers` renders it), messages
verbatim; stop strings, per-request `max_tokens`, temperature and top-p, `n` samples, and the
model's own log-probabilities (temperature 1, before top-p) when asked. What differs:

* the weights stay quantized (Q4_K_M for the Qwen models) and the kernels quantize activations,
  where hf de-quantizes the same file to float32: greedy outputs agree closely, not exactly
  (``lmlab bench llm --model hf:ID --versus llamacpp:ID`` measures how closely);
* samples run one after another, not as a batch. Each call starts from the KV cache of the
  tokens the previous call left, for their longest common prefix: an agent's next turn reads
  only its new tokens, and the samples of one request read their prompt once;
* sampling is llama.cpp's own chain (temperature, then top-p, then a draw seeded with
  ``sample_seed(seed, j)``): a seed gives the same samples every time, but not the samples hf
  draws for that seed;
* hidden states are the hf backend's alone.

`threads` is llama.cpp's thread count for prompt and generation (0: the process's torch thread
count, so a study that sets one thread per job gets one here too; `LMLAB_TORCH_THREADS` wins).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.errors import LmlabError, require
from lmlab.llm.backend import Backend, CallStats
from lmlab.llm.request import Completion, Request, default_seed, sample_seed

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_CTX = 8192
PIP_EXTRA = "llamacpp"
_RANDOM_SEED = 0xFFFFFFFF  # llama.cpp reads this seed as "pick one at random": never send it


def _llama_cpp() -> Any:
    return require("llama_cpp", extra=PIP_EXTRA)


def resolve_gguf(model: str | os.PathLike) -> tuple[Path, str]:
    """The GGUF file a model spec names and the model's name in completions.

    A path (anything ending in ``.gguf``, or an existing file) is used as is; otherwise `model` is
    a catalog id, resolved to the verified GGUF the catalog keeps (prepared from the wheels or the
    hub the first time, as the hf backend prepares its folder).
    """
    s = os.fspath(model).strip()
    p = Path(s).expanduser()
    if isinstance(model, os.PathLike) or s.lower().endswith(".gguf") or p.is_file():
        if not p.is_file():
            raise LmlabError(f"no GGUF file at {p}: give a catalog id or the path to a .gguf file")
        return p.resolve(), str(p.resolve())
    from lmlab.models import EMBEDDED
    from lmlab.models.catalog import get_card

    card = get_card(s)  # an unknown id is one line listing the catalog
    return EMBEDDED[card.id].ensure_gguf(), card.id


def render_chat(template: str, messages: list[dict[str, str]], *, bos_token: str = "",
                eos_token: str = "") -> str:
    """A chat rendered with a Jinja chat template, the generation prompt added, the way
    `transformers`' ``apply_chat_template`` renders it (sandboxed, trimmed blocks)."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
               separators: Any = None, sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(template).render(
            messages=messages, add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token
        )
    except jinja2.exceptions.TemplateError as e:
        raise LmlabError(f"the model's chat template failed on this conversation: {e}") from None


def _thread_count(threads: int) -> int:
    if threads < 0:
        raise LmlabError(f"threads must be >= 0 (0: the process's torch thread count), got {threads}")
    from lmlab.executor import forced_threads

    if forced_threads():
        return forced_threads()
    if threads:
        return threads
    import torch

    return torch.get_num_threads()


class LlamaCppBackend(Backend):
    """A GGUF model run by llama.cpp on CPU (see the module docstring for what differs from hf).

    `model` is a catalog id or a path to a ``.gguf`` file; `n_ctx` the context llama.cpp
    allocates (prompt plus `max_tokens` must fit); `seed` the backend's own seed, used for
    requests without one (combined with a call counter, as the hf backend does).
    """

    kind = "llamacpp"

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, *, threads: int = 0,
                 n_ctx: int = DEFAULT_CTX, seed: int = 0):
        if n_ctx < 16:
            raise LmlabError(f"n_ctx must be >= 16, got {n_ctx}")
        n_threads = _thread_count(threads)
        llama_cpp = _llama_cpp()
        path, name = resolve_gguf(model)
        super().__init__(name)
        self.path = path
        self.threads = n_threads
        self.n_ctx = n_ctx
        self.seed = seed
        self.reuse_prefix = True
        self._calls = 0
        self._lib = llama_cpp
        self.llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=self.threads,
            n_threads_batch=self.threads, verbose=False,
        )
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.template = self.llm.metadata.get("tokenizer.chat_template")

    # -- prompts ----------------------------------------------------------------------------
    def _special(self, token: int) -> str:
        return "" if token < 0 else self.llm.detokenize([token], special=True).decode("utf-8", "replace")

    def encode(self, request: Request) -> list[int]:
        """The prompt's token ids as the model sees them (chat template applied for chat)."""
        if request.is_chat:
            if not self.template:
                raise LmlabError(f"model {self.model!r} has no chat template; send a raw prompt instead")
            text = render_chat(self.template, [dict(m) for m in request.messages],
                               bos_token=self._special(self.llm.token_bos()),
                               eos_token=self._special(self.llm.token_eos()))
            ids = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        else:
            # add_bos: a BOS only where the model asks for one (as `transformers` does)
            ids = self.llm.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=True)
        ids = list(ids)
        if not ids:
            raise LmlabError(f"empty prompt: {request.describe()}")
        if len(ids) + request.max_tokens > self.n_ctx:
            raise LmlabError(
                f"prompt of {len(ids)} tokens plus max_tokens={request.max_tokens} exceeds the "
                f"llama.cpp context of {self.n_ctx} tokens (raise the backend's n_ctx): {request.describe()}"
            )
        return ids

    def decode(self, ids: list[int]) -> str:
        """Text of generated token ids, special tokens left out."""
        return self.llm.detokenize(list(ids)).decode("utf-8", "replace")

    # -- generation -------------------------------------------------------------------------
    def _generate(self, requests: list[Request], stats: CallStats) -> list[list[Completion]]:
        for r in requests:
            if r.hidden_layer is not None:
                raise LmlabError("hidden states need the hf backend (llamacpp does not expose them)")
        self._calls += 1
        start = time.perf_counter()
        encoded = [self.encode(r) for r in requests]
        seeds = [r.seed if r.seed is not None else default_seed(self.seed, self._calls, i)
                 for i, r in enumerate(requests)]
        results = []
        for r, ids, seed in zip(requests, encoded, seeds, strict=True):
            # greedy requests need one sample, copied to all n completions (as hf does)
            draws = [self._sample(ids, r, sample_seed(seed, j)) for j in range(r.n if r.temperature > 0 else 1)]
            results.append(draws)
        latency = round(time.perf_counter() - start, 6)
        out = []
        for i, r in enumerate(requests):
            comps = []
            for j in range(r.n):
                res = results[i][j if r.temperature > 0 else 0]
                comps.append(Completion(
                    text=res["text"], finish_reason=res["finish_reason"],
                    prompt_tokens=len(encoded[i]), completion_tokens=res["completion_tokens"],
                    latency_s=latency, backend=self.kind, model=self.model, index=j, seed=seeds[i],
                    logprobs=res["logprobs"] if r.logprobs else None,
                    tokens=res["tokens"] if r.logprobs else None,
                ))
            out.append(comps)
        return out

    def _start(self, prompt: list[int]) -> None:
        """Put `prompt` in the KV cache, keeping the longest prefix the cache already holds (all
        but the prompt's last token at most: its logits must be computed afresh)."""
        llm = self.llm
        keep = 0
        if self.reuse_prefix:
            held = list(llm.input_ids[:llm.n_tokens])
            limit = min(len(held), len(prompt) - 1)
            while keep < limit and held[keep] == prompt[keep]:
                keep += 1
        if keep == 0:
            llm.reset()
        llm.n_tokens = keep  # eval drops the cache past n_tokens before reading the rest
        llm.eval(prompt[keep:])

    def _sampler(self, temperature: float, top_p: float, seed: int) -> Any:
        """llama.cpp's sampler chain: greedy, or temperature, top-p and a seeded draw."""
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if temperature == 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        else:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(temperature))
            if top_p < 1:
                lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(top_p, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed % _RANDOM_SEED))
        return chain

    def _logprob(self, token: int) -> float:
        """The model's log-probability (temperature 1) of `token` at the last position read."""
        n_vocab = self.llm.n_vocab()
        logits = np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self.llm.ctx, -1), shape=(n_vocab,))
        logits = logits.astype(np.float64)
        top = logits.max()
        return float(logits[token] - top - np.log(np.exp(logits - top).sum()))

    def _sample(self, prompt: list[int], req: Request, seed: int) -> dict[str, Any]:
        """One sample: tokens until end of text, a stop string or `max_tokens`."""
        lib = self._lib
        self._start(prompt)
        sampler = self._sampler(req.temperature, req.top_p, seed)
        gen: list[int] = []
        lps: list[float] = []
        finish, n_tok, text_ids, text = "length", req.max_tokens, None, None
        try:
            for step in range(req.max_tokens):
                tok = int(lib.llama_sampler_sample(sampler, self.llm.ctx, -1))
                if req.logprobs:
                    lps.append(self._logprob(tok))
                gen.append(tok)
                if lib.llama_vocab_is_eog(self._vocab, tok):
                    finish, n_tok, text_ids = "stop", len(gen), gen[:-1]
                    break
                if req.stop:
                    so_far = self.decode(gen)
                    cut = min((so_far.find(s) for s in req.stop if s in so_far), default=-1)
                    if cut >= 0:
                        finish, n_tok, text = "stop", len(gen), so_far[:cut]
                        break
                if step + 1 < req.max_tokens:
                    self.llm.eval([tok])
        finally:
            lib.llama_sampler_free(sampler)
        if text is None:
            text = self.decode(gen if text_ids is None else text_ids)
        return {
            "text": text,
            "finish_reason": finish,
            "completion_tokens": n_tok,
            "logprobs": tuple(lps[:n_tok]) if req.logprobs else None,
            # each token's own text, special ones spelled out (end of text too), as hf gives them
            "tokens": tuple(self._special(t) for t in gen[:n_tok]) if req.logprobs else None,
        }

    def close(self) -> None:
        """Free the model and its context."""
        if getattr(self, "llm", None) is not None:
            self.llm.close()
            self.llm = None
