"""The fast CPU backend: llama.cpp (through `llama-cpp-python`) on a catalog model's GGUF file.

``llamacpp:qwen2.5-coder-0.5b-instruct`` runs the same official Q4_K_M file that ``hf:`` converts
to float32, in its 4-bit form: on CPU it reads about 8x less memory per token, which is what
decoding and prefill wait on. It answers the same `Request`s with the same `Completion`s, with
these differences:

* samples are generated one after another (llama-cpp-python keeps one sequence), not batched;
* prefix reuse is llama.cpp's own: a call re-reads only the tokens after the longest prefix it
  shares with the previous call (an agent's next turn; the samples of one request);
* sampling is llama.cpp's (seeded per sample with `sample_seed(seed, j)`): reproducible, but not
  the same samples as ``hf:``; temperature 0 is greedy in both (equal text up to the 4-bit
  arithmetic);
* no log-probabilities or hidden states: use ``hf:`` for those (and for exactness).

The prompt is rendered with the chat template stored in the GGUF file (the same template the
``hf:`` backend uses), the caller's messages verbatim (Qwen's default system prompt when none).

Install: ``pip install 'lmlab[llamacpp]'`` builds llama.cpp from source (a C++ compiler and cmake;
~8 min on 2 idle cores, 32 min on the project's loaded machine).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace
from pathlib import Path

from lmlab.errors import LmlabError, require
from lmlab.llm.backend import Backend, CallStats
from lmlab.llm.request import Completion, Request, sample_seed

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"


def gguf_file(model: str | os.PathLike) -> Path:
    """The GGUF file of a catalog id (verified, fetched once) or a path to a ``.gguf`` file."""
    from lmlab.models import EMBEDDED, smollm2
    from lmlab.models.catalog import find_card

    card = find_card(os.fspath(model))
    if card is not None:
        module = EMBEDDED[card.id]
        return smollm2.locate_gguf() if module is smollm2 else module.ensure_gguf()
    p = Path(model).expanduser()
    if p.suffix == ".gguf" and p.is_file():
        return p.resolve()
    raise LmlabError(
        f"llamacpp: {os.fspath(model)!r} is neither a catalog model (lmlab models list) nor a .gguf file"
    )


class LlamaCppBackend(Backend):
    """A GGUF model run by llama.cpp on CPU (see the module docstring).

    `n_ctx` is the context (prompt + answer) in tokens; `threads` llama.cpp's threads (default:
    its own choice); `seed` the seed of requests that have none (with a call counter).
    """

    kind = "llamacpp"

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, *, n_ctx: int = 4096,
                 threads: int | None = None, seed: int = 0):
        llama_cpp = require("llama_cpp", extra="llamacpp")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = gguf_file(model)
        super().__init__(os.fspath(model).strip() if not isinstance(model, os.PathLike) else str(path))
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
            self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                                       n_threads_batch=threads, verbose=False)
        self.n_ctx = n_ctx
        self.seed = seed
        self._calls = 0
        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template")
        vocab = self.llm._model  # token texts for the template's bos/eos variables

        def text(token: int) -> str:
            return vocab.token_get_text(token) if token >= 0 else ""

        self._chat = (
            Jinja2ChatFormatter(template=template, eos_token=text(self.llm.token_eos()),
                                bos_token=text(self.llm.token_bos()))
            if template else None
        )

    def encode(self, request: Request) -> list[int]:
        """The prompt's token ids (chat template applied for chat requests)."""
        if request.is_chat:
            if self._chat is None:
                raise LmlabError(f"model {self.model!r} has no chat template; send a raw prompt instead")
            text = self._chat(messages=[dict(m) for m in request.messages]).prompt
            ids = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        else:
            ids = self.llm.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=False)
        if not ids:
            raise LmlabError(f"empty prompt: {request.describe()}")
        if len(ids) + request.max_tokens > self.n_ctx:
            raise LmlabError(
                f"prompt of {len(ids)} tokens plus max_tokens={request.max_tokens} exceeds the "
                f"llamacpp context of {self.n_ctx} tokens (n_ctx=...): {request.describe()}"
            )
        return ids

    def _generate(self, requests: list[Request], stats: CallStats) -> list[list[Completion]]:
        from lmlab.llm.hf import _derived_seed

        self._calls += 1
        for r in requests:
            if r.logprobs or r.hidden_layer is not None:
                raise LmlabError("the llamacpp backend gives no logprobs or hidden states; use hf:MODEL")
        out = []
        for i, r in enumerate(requests):
            ids = self.encode(r)
            seed = r.seed if r.seed is not None else _derived_seed(self.seed, self._calls, i)
            comps = []
            for j in range(r.n):
                if r.temperature == 0 and j > 0:  # greedy: every sample is the first
                    comps.append(replace(comps[0], index=j))
                    continue
                start = time.perf_counter()
                res = self.llm.create_completion(
                    ids, max_tokens=r.max_tokens, temperature=r.temperature, top_p=r.top_p,
                    top_k=0, min_p=0.0, typical_p=1.0, repeat_penalty=1.0, stop=list(r.stop),
                    seed=sample_seed(seed, j) % 2**32,
                )
                choice = res["choices"][0]
                comps.append(Completion(
                    text=choice["text"],
                    finish_reason="length" if choice["finish_reason"] == "length" else "stop",
                    prompt_tokens=len(ids),
                    completion_tokens=res["usage"]["completion_tokens"],
                    latency_s=round(time.perf_counter() - start, 6),
                    backend=self.kind,
                    model=self.model,
                    index=j,
                    seed=seed,
                ))
            out.append(comps)
        return out

    def close(self) -> None:
        """Free llama.cpp's model and context."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
