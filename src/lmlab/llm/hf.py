"""The local backend: a Hugging Face causal LM generating a whole batch at once.

All samples of all requests in a call are rows of one `generate` batch (left padding, one KV
cache), split into chunks of `batch_size` rows, so `n` samples cost one pass instead of `n` calls.
The samples of a request share one read of its prompt (its KV cache is computed once and copied
to the sample rows). Each row draws its randomness from its own generator, seeded from the request's seed and the
sample's index (`lmlab.seeding.generator(seed, j)`), so a request's samples depend on its own seed
alone, not on which other requests share the batch, and the same seed gives the same samples.

Sampling happens in a logits processor (`_RowSampler`) with per-row temperature and top-p, by
Gumbel-max on the row's own stream; `generate` itself then runs greedily on the chosen token, so
`transformers` does the batching, caching and end-of-text handling. Stop strings and per-row
token limits end rows early (`_RowStop`). Log-probabilities are the model's own (temperature 1,
before top-p), like vLLM's default.
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmlab.errors import LmlabError, require
from lmlab.llm.backend import Backend, CallStats
from lmlab.llm.prefix import PrefixCache
from lmlab.llm.request import Completion, Request, default_seed
from lmlab.seeding import generator

DEFAULT_MODEL = "smollm2-135m-instruct"


def _transformers() -> Any:
    return require("transformers", extra="hf")


class _RowSampler:
    """Logits processor choosing each row's next token with the row's own settings and stream.

    Returns scores that are 0 at the chosen token and -inf elsewhere, so greedy `generate` takes
    it. Records the model's log-probability of each chosen token when asked.
    """

    def __init__(self, temps: list[float], top_ps: list[float], gens: list[torch.Generator | None],
                 want_logprobs: bool):
        self.temps = torch.tensor(temps, dtype=torch.float32)
        self.top_ps = torch.tensor(top_ps, dtype=torch.float32)
        self.gens = gens
        self.sampled = [i for i, t in enumerate(temps) if t > 0]
        self.want_logprobs = want_logprobs
        self.logprobs: list[torch.Tensor] = []  # one (rows,) tensor per step

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float()
        chosen = scores.argmax(dim=-1)  # greedy rows (temperature 0) keep this
        if self.sampled:
            rows = torch.tensor(self.sampled)
            z = scores[rows] / self.temps[rows, None].to(scores.device)  # (S, V)
            top_p = self.top_ps[rows]
            if bool((top_p < 1).any()):
                z = _top_p_filter(z, top_p.to(z.device))
            # Gumbel-max: argmax(z + g) is a sample of softmax(z); g from the row's own stream.
            u = torch.stack([torch.rand(z.shape[-1], generator=self.gens[i]) for i in self.sampled])
            g = -torch.log(-torch.log(u.to(z.device)))
            chosen[rows] = (z + g).argmax(dim=-1)
        if self.want_logprobs:
            lp = torch.log_softmax(scores, dim=-1).gather(1, chosen[:, None])[:, 0]
            self.logprobs.append(lp.cpu())
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen[:, None], 0.0)
        return out


def _top_p_filter(z: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Keep each row's smallest set of tokens whose probability reaches top_p (at least one)."""
    sorted_z, order = z.sort(dim=-1, descending=True)
    probs = sorted_z.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability mass of the tokens ranked above
    drop_sorted = before >= top_p[:, None]
    drop_sorted[:, 0] = False
    drop = torch.zeros_like(drop_sorted).scatter_(1, order, drop_sorted)
    return z.masked_fill(drop, float("-inf"))


class _RowStop:
    """Stopping criterion: a row is done at its own `max_tokens` or when a stop string appears.

    Records, per row, the number of generated tokens at which that happened.
    """

    def __init__(self, prompt_len: int, max_tokens: list[int], stops: list[tuple[str, ...]],
                 tokenizer: Any, eos_ids: set[int]):
        self.prompt_len = prompt_len
        self.max_tokens = max_tokens
        self.stops = stops
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.stop_at: list[int | None] = [None] * len(max_tokens)
        self.ended = [False] * len(max_tokens)

    def __call__(self, input_ids: torch.Tensor, scores: Any = None, **kwargs: Any) -> torch.Tensor:
        steps = input_ids.shape[1] - self.prompt_len
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        last = input_ids[:, -1].tolist()
        for r in range(input_ids.shape[0]):
            if self.ended[r]:
                done[r] = True
                continue
            if last[r] in self.eos_ids:
                self.ended[r] = True
            elif self.stops[r]:
                text = self.tokenizer.decode(input_ids[r, self.prompt_len:], skip_special_tokens=True)
                if any(s in text for s in self.stops[r]):
                    self.stop_at[r] = steps
                    self.ended[r] = True
            if steps >= self.max_tokens[r]:
                self.ended[r] = True
            done[r] = self.ended[r]
        return done


class HFBackend(Backend):
    """A local `transformers` causal LM (default: the embedded SmolLM2-135M-Instruct).

    `model` is a catalog id (``smollm2-135m-instruct``, ``qwen2.5-coder-0.5b-instruct``, ...),
    a local model folder or a hub id (see `lmlab.models`).
    Chat requests go through the model's own chat template, messages verbatim: a request's
    system message is the system prompt; without one the template adds its default (Qwen2.5:
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."; SmolLM2: "You are a
    helpful AI assistant named SmolLM, trained by Hugging Face"; see `lmlab.models.catalog`).
    A call whose chunk holds one prompt (an agent's turn, or the samples of one request) starts
    from the kept KV cache of the recent prompt sharing its longest prefix (`prefix_cache`;
    ``reuse_prefix = False`` turns that off).
    Requests are generated together, `batch_size` rows (samples) per forward pass. `seed` is the
    backend's own seed, used for requests without one (combined with a call counter, so repeated
    calls draw fresh samples and a whole run is still reproducible).
    """

    kind = "hf"

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        dtype: str | torch.dtype = "float32",
        batch_size: int = 64,
        seed: int = 0,
    ):
        from lmlab.device import resolve_device
        from lmlab.models import load_model

        dev = resolve_device(device)
        lm, tokenizer = load_model(model, dtype=dtype, device=dev)
        self._setup(lm, tokenizer, _model_name(model), batch_size, seed)

    @classmethod
    def from_model(cls, lm: Any, tokenizer: Any, name: str, *, batch_size: int = 64,
                   seed: int = 0) -> HFBackend:
        """A backend over an already loaded model and tokenizer (e.g. one with a LoRA adapter)."""
        self = cls.__new__(cls)
        self._setup(lm, tokenizer, name, batch_size, seed)
        return self

    def _setup(self, lm: Any, tokenizer: Any, name: str, batch_size: int, seed: int) -> None:
        Backend.__init__(self, name)
        if batch_size < 1:
            raise LmlabError(f"batch_size must be >= 1, got {batch_size}")
        self.lm = lm.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.seed = seed
        self._calls = 0
        tokenizer.padding_side = "left"
        eos = lm.generation_config.eos_token_id
        eos = tokenizer.eos_token_id if eos is None else eos
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = lm.generation_config.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids, default=0)
        self.max_positions = getattr(lm.config, "max_position_embeddings", None)
        self.device = next(lm.parameters()).device
        self.share_prompts = True
        # Prefix reuse: a call's single prompt starts from the kept KV cache of the recent prompt
        # sharing its longest prefix (see lmlab.llm.prefix); `reuse_prefix = False` turns it off.
        self.reuse_prefix = True
        self.prefix_cache = PrefixCache()
        # transformers 5.x renames generate's `past_key_values` to `cache` (the old name goes in 6)
        major = int(str(_transformers().__version__).split(".")[0])
        self._cache_kwarg = "cache" if major >= 6 else "past_key_values"
        # ... and a model's forward takes `cache` from 5.2x on (`past_key_values` warns)
        forward_params = inspect.signature(lm.forward).parameters
        self._forward_cache_kwarg = "cache" if "cache" in forward_params else "past_key_values"
        # a prefill needs no logits (generate computes the last token's): skip the vocabulary
        # projection of every prompt position where the model allows it
        self._no_logits = {"logits_to_keep": 1} if "logits_to_keep" in forward_params else {}

    # -- prompts ----------------------------------------------------------------------------
    def encode(self, request: Request) -> list[int]:
        """The prompt's token ids as the model sees them (chat template applied for chat)."""
        tok = self.tokenizer
        if request.is_chat:
            if not getattr(tok, "chat_template", None):
                raise LmlabError(
                    f"model {self.model!r} has no chat template; send a raw prompt instead"
                )
            text = tok.apply_chat_template(
                [dict(m) for m in request.messages], add_generation_prompt=True, tokenize=False
            )
            ids = tok(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tok(request.prompt)["input_ids"]
        if not ids:
            raise LmlabError(f"empty prompt: {request.describe()}")
        if self.max_positions and len(ids) + request.max_tokens > self.max_positions:
            raise LmlabError(
                f"prompt of {len(ids)} tokens plus max_tokens={request.max_tokens} exceeds "
                f"{self.model}'s context of {self.max_positions} tokens: {request.describe()}"
            )
        return ids

    def _pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):  # left padding: the last token of every row is at -1
            ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s):] = 1
        return ids.to(self.device), mask.to(self.device)

    @staticmethod
    def _positions(mask: torch.Tensor) -> torch.Tensor:
        """Position ids of left-padded rows: 0 at each row's first real token (as generate does)."""
        return (mask.cumsum(-1) - 1).clamp(min=0)

    def _prefill(self, ids: torch.Tensor, mask: torch.Tensor) -> Any:
        """The KV cache of left-padded prompts."""
        out = self.lm(input_ids=ids, attention_mask=mask, position_ids=self._positions(mask), use_cache=True,
                      **self._no_logits)
        cache = getattr(out, "cache", None)
        return cache if cache is not None else out.past_key_values

    def _prefill_one(self, prefix: list[int]) -> Any:
        """The KV cache of one unpadded token sequence, reusing a kept prefix when there is one."""
        key = tuple(prefix)
        cache, n = self.prefix_cache.lookup(key) if self.reuse_prefix else (None, 0)
        if cache is None:
            ids = torch.tensor([prefix], dtype=torch.long, device=self.device)
            cache = self._prefill(ids, torch.ones_like(ids))
        elif n < len(prefix):
            rest = torch.tensor([prefix[n:]], dtype=torch.long, device=self.device)
            out = self.lm(
                input_ids=rest,
                attention_mask=torch.ones((1, len(prefix)), dtype=torch.long, device=self.device),
                position_ids=torch.arange(n, len(prefix), device=self.device)[None],
                use_cache=True,
                **{self._forward_cache_kwarg: cache},
                **self._no_logits,
            )
            got = getattr(out, "cache", None)
            cache = got if got is not None else out.past_key_values
        if self.reuse_prefix:
            self.prefix_cache.put(key, cache)
        return cache

    # -- hidden states ----------------------------------------------------------------------
    @torch.no_grad()
    def hidden_states(self, requests: list[Request | str], layer: int, pool: str = "last") -> torch.Tensor:
        """Hidden states of each request's prompt after `layer`: ``(len(requests), d_model)``.

        `layer` counts as `transformers`' ``output_hidden_states``: 0 is the embeddings, i the
        output of block i, -1 the last. `pool` is ``last`` (the prompt's last token, what the
        model has read when it starts to answer) or ``mean`` (over the prompt's tokens).
        """
        from lmlab.llm.request import as_requests

        if pool not in ("last", "mean"):
            raise LmlabError(f"pool must be 'last' or 'mean', got {pool!r}")
        self._check_layer(layer)
        encoded = [self.encode(r) for r in as_requests(requests)]
        out = []
        for start in range(0, len(encoded), self.batch_size):
            ids, mask = self._pad(encoded[start:start + self.batch_size])
            h = self._layer_output(ids, mask, layer).float()  # (B, T, d)
            if pool == "last":
                out.append(h[:, -1])
            else:
                m = mask[..., None].to(h.dtype)
                out.append((h * m).sum(1) / m.sum(1))
        return torch.cat(out).cpu()

    def _layer_output(self, ids: torch.Tensor, mask: torch.Tensor, layer: int) -> torch.Tensor:
        """``output_hidden_states[layer]`` of padded prompts without the vocabulary projection,
        and, for an inner layer, without the blocks above it (the forward stops after block
        `layer`): what a probe on an early layer reads costs that layer's share of the model."""
        n = self.lm.config.num_hidden_layers
        base = getattr(self.lm, "base_model", self.lm)
        blocks = getattr(base, "layers", None)
        kwargs = {"input_ids": ids, "attention_mask": mask, "position_ids": self._positions(mask),
                  "use_cache": False}
        if blocks is None or not 0 < layer % (n + 1) < n or len(blocks) != n:
            return base(**kwargs, output_hidden_states=True).hidden_states[layer]

        def stop(module: Any, args: Any, output: Any) -> None:
            raise _LayerReached(output[0] if isinstance(output, tuple) else output)

        handle = blocks[layer % (n + 1) - 1].register_forward_hook(stop)
        try:
            base(**kwargs)
        except _LayerReached as reached:
            return reached.hidden
        finally:
            handle.remove()
        raise RuntimeError("the forward pass never reached the hooked layer")

    def _check_layer(self, layer: int) -> None:
        n = self.lm.config.num_hidden_layers
        if not -(n + 1) <= layer <= n:
            raise LmlabError(f"hidden layer {layer} out of range for {self.model} ({n} layers: use 0..{n} or -1)")

    # -- generation -------------------------------------------------------------------------
    def _generate(self, requests: list[Request], stats: CallStats) -> list[list[Completion]]:
        self._calls += 1
        start = time.perf_counter()
        encoded = [self.encode(r) for r in requests]
        for r in requests:
            if r.hidden_layer is not None:
                self._check_layer(r.hidden_layer)
        seeds = [
            r.seed if r.seed is not None else default_seed(self.seed, self._calls, i)
            for i, r in enumerate(requests)
        ]
        # One row per sample; greedy requests need one row, copied to all n completions.
        rows = [(i, j) for i, r in enumerate(requests) for j in range(r.n if r.temperature > 0 else 1)]
        rows.sort(key=lambda row: -len(encoded[row[0]]))  # similar lengths share a chunk
        results: dict[tuple[int, int], dict[str, Any]] = {}
        for c in range(0, len(rows), self.batch_size):
            chunk = rows[c:c + self.batch_size]
            for row, res in zip(chunk, self._run_rows(chunk, requests, encoded, seeds), strict=True):
                results[row] = res
        hidden = self._hidden_for(requests, encoded)
        latency = round(time.perf_counter() - start, 6)
        out = []
        for i, r in enumerate(requests):
            comps = []
            for j in range(r.n):
                res = results[(i, j if r.temperature > 0 else 0)]
                comps.append(Completion(
                    text=res["text"],
                    finish_reason=res["finish_reason"],
                    prompt_tokens=len(encoded[i]),
                    completion_tokens=res["completion_tokens"],
                    latency_s=latency,
                    backend=self.kind,
                    model=self.model,
                    index=j,
                    seed=seeds[i],
                    logprobs=res["logprobs"] if r.logprobs else None,
                    tokens=res["tokens"] if r.logprobs else None,
                    hidden_state=hidden.get(i),
                ))
            out.append(comps)
        return out

    @torch.no_grad()
    def _run_rows(self, rows: list[tuple[int, int]], requests: list[Request],
                  encoded: list[list[int]], seeds: list[int]) -> list[dict[str, Any]]:
        """Generate one chunk of rows (request i, sample j) in one `generate` call."""
        transformers = _transformers()
        reqs = [requests[i] for i, _ in rows]
        uniq = list(dict.fromkeys(i for i, _ in rows))
        extra: dict[str, Any] = {}
        if len(uniq) == 1 and len(encoded[uniq[0]]) > 1 and (self.reuse_prefix or (self.share_prompts and len(rows) > 1)):
            # One prompt (an agent's call, or the samples of one request): read it once, from the
            # kept prefix when one matches, all but its last token (generate needs that one).
            prompt = encoded[uniq[0]]
            cache = self._prefill_one(prompt[:-1])
            if len(rows) > 1:
                cache.reorder_cache(torch.zeros(len(rows), dtype=torch.long, device=self.device))
            ids = torch.tensor([prompt] * len(rows), dtype=torch.long, device=self.device)
            mask = torch.ones_like(ids)
            extra[self._cache_kwarg] = cache
        elif self.share_prompts and len(uniq) < len(rows) and min(len(encoded[i]) for i in uniq) > 1:
            # The samples of a request share its prompt: read each prompt once (all but its last
            # token, which generate needs to start), then copy its KV cache to the sample rows.
            ids_u, mask_u = self._pad([encoded[i] for i in uniq])
            where = {i: k for k, i in enumerate(uniq)}
            index = torch.tensor([where[i] for i, _ in rows], device=self.device)
            cache = self._prefill(ids_u[:, :-1], mask_u[:, :-1])
            cache.reorder_cache(index)  # (U, ...) -> (rows, ...)
            ids, mask = ids_u[index], mask_u[index]
            extra[self._cache_kwarg] = cache
        else:
            ids, mask = self._pad([encoded[i] for i, _ in rows])
        prompt_len = ids.shape[1]
        sampler = _RowSampler(
            temps=[r.temperature for r in reqs],
            top_ps=[r.top_p for r in reqs],
            gens=[generator(seeds[i], j) if requests[i].temperature > 0 else None for i, j in rows],
            want_logprobs=any(r.logprobs for r in reqs),
        )
        stopper = _RowStop(prompt_len, [r.max_tokens for r in reqs], [r.stop for r in reqs],
                           self.tokenizer, self.eos_ids)
        config = transformers.GenerationConfig(
            max_new_tokens=max(r.max_tokens for r in reqs),
            do_sample=False,
            num_beams=1,
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids),
            use_cache=True,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*past_key_values.*deprecated", category=FutureWarning)
            seqs = self.lm.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=config,
                logits_processor=transformers.LogitsProcessorList([sampler]),
                stopping_criteria=transformers.StoppingCriteriaList([stopper]),
                **extra,
            )
        gen = seqs[:, prompt_len:].tolist()
        lps = torch.stack(sampler.logprobs, dim=1).tolist() if sampler.logprobs else None
        return [self._finish(k, gen[k], reqs[k], stopper, lps) for k in range(len(rows))]

    def _finish(self, k: int, gen: list[int], req: Request, stopper: _RowStop,
                lps: list[list[float]] | None) -> dict[str, Any]:
        """Cut row k's tokens at end of text, its stop string or max_tokens; decode the text."""
        eos_at = next((t for t, tok in enumerate(gen) if tok in self.eos_ids), None)
        stop_at = stopper.stop_at[k]
        if stop_at is not None and (eos_at is None or stop_at <= eos_at):
            n_tok, finish, text_ids = stop_at, "stop", gen[:stop_at]
        elif eos_at is not None and eos_at < req.max_tokens:
            n_tok, finish, text_ids = eos_at + 1, "stop", gen[:eos_at]
        else:
            n_tok = min(len(gen), req.max_tokens)
            finish, text_ids = "length", gen[:n_tok]
        text = self.tokenizer.decode(text_ids, skip_special_tokens=True)
        if finish == "stop" and stop_at is not None:
            cut = min((text.find(s) for s in req.stop if s in text), default=len(text))
            text = text[:cut]
        ids = gen[:n_tok]
        return {
            "text": text,
            "finish_reason": finish,
            "completion_tokens": n_tok,
            "logprobs": tuple(lps[k][:n_tok]) if lps is not None else None,
            "tokens": tuple(self.tokenizer.decode([t]) for t in ids) if req.logprobs else None,
        }

    def _hidden_for(self, requests: list[Request], encoded: list[list[int]]) -> dict[int, tuple[float, ...]]:
        """Hidden states of the requests that asked for them, grouped by layer."""
        want = [(i, r.hidden_layer) for i, r in enumerate(requests) if r.hidden_layer is not None]
        out: dict[int, tuple[float, ...]] = {}
        for layer in sorted({layer for _, layer in want}):
            idx = [i for i, lay in want if lay == layer]
            h = self.hidden_states([requests[i] for i in idx], layer)
            for i, row in zip(idx, h.tolist(), strict=True):
                out[i] = tuple(row)
        return out

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self.lm = None
        self.tokenizer = None


class _LayerReached(Exception):  # control flow, not an error
    """Raised by a forward hook to end a forward pass at the layer whose output is wanted."""

    def __init__(self, hidden: torch.Tensor):
        super().__init__()
        self.hidden = hidden


def _model_name(model: str | os.PathLike) -> str:
    """The model's identity in completions and the replay cache: a name, a hub id or a folder."""
    s = os.fspath(model)
    p = Path(s).expanduser()
    if isinstance(model, os.PathLike) or p.exists():
        return str(p.resolve())
    return s.strip()


_LOADED: dict[str, HFBackend] = {}


def hidden_states(model: str | os.PathLike | HFBackend, prompts: Request | str | list,
                  layer: int, *, pool: str = "last", keep_loaded: bool = True) -> np.ndarray:
    """Hidden states of each prompt after `layer`: a float32 array ``(len(prompts), d_model)``.

    `model` is a loaded `HFBackend`, or a spec (``hf:qwen2.5-coder-0.5b-instruct``) or a model
    name/folder, loaded once and kept for the next call (``keep_loaded=False`` does not keep it).
    A prompt is a `Request` or a string (a chat with one user message, rendered with the chat
    template, generation prompt included: the state is what the model holds when it starts to
    answer). `layer` counts like `transformers`' ``output_hidden_states``: 0 the embeddings, i
    the output of block i, -1 the last. `pool` ``last`` takes the prompt's last token, ``mean``
    averages its tokens.

    >>> h = hidden_states("hf:qwen2.5-coder-0.5b-instruct", ["2+2?", "Prove P=NP."], layer=12)  # doctest: +SKIP
    >>> h.shape                                                                           # doctest: +SKIP
    (2, 896)
    """
    if isinstance(model, HFBackend):
        backend = model
    else:
        name = os.fspath(model).strip()
        name = name[3:] if name.lower().startswith("hf:") else name
        backend = _LOADED.get(name) or HFBackend(name or DEFAULT_MODEL)
        if keep_loaded:
            _LOADED.clear()  # one model at a time
            _LOADED[name] = backend
    if isinstance(prompts, Request | str):
        prompts = [prompts]
    return backend.hidden_states(list(prompts), layer, pool=pool).numpy().astype(np.float32)
