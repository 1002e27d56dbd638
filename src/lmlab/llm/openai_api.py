"""The served backend: any OpenAI-compatible endpoint, through the official `openai` client.

Works with `vllm serve`, Ollama, llama.cpp's server, `transformers serve` and hosted APIs. Chat
requests go to ``/chat/completions``, raw prompts to ``/completions``.

* ``n``: asked for in one call; a server that answers with fewer choices (``transformers serve``
  and Ollama ignore ``n``) gets the missing samples as separate calls, sample j seeded with
  ``sample_seed(seed, j)``, and later requests go straight to one call per sample.
* ``transformers serve`` (5.x) samples only when the served folder's ``generation_config.json``
  sets ``do_sample``; otherwise it decodes greedily whatever the temperature, so its n samples
  are identical.
* ``best_of`` is never sent (vLLM's V1 engine rejects it).
* Stop strings are left out of the text, whether or not the server leaves them out.
* Timeouts, connection failures, 408, 409, 429 and 5xx are retried a bounded number of times with
  exponential backoff and full jitter (honouring ``Retry-After`` up to the backoff cap); other
  errors end at once. Either way the error is one line naming the server, what failed and the
  request.
* The API key comes from the environment (``OPENAI_API_KEY`` by default); local servers need
  none. At most `concurrency` HTTP calls are in flight at once.
"""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

from lmlab.errors import LmlabError, require
from lmlab.llm.backend import Backend, CallStats
from lmlab.llm.request import Completion, Request, sample_seed

DEFAULT_KEY_ENV = "OPENAI_API_KEY"


def _one_line(x: Any) -> str:
    return " ".join(str(x).split())


def _error_detail(e: Any) -> str:
    """The server's own explanation of an HTTP error, in one line."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err:
            return _one_line(err)[:300]
    return _one_line(getattr(e, "message", e))[:300]


class OpenAIBackend(Backend):
    """A model behind an OpenAI-compatible HTTP API.

    `base_url` is the API root (``http://127.0.0.1:8000/v1``); None uses the `openai` client's
    default (``OPENAI_BASE_URL``, else the hosted OpenAI API). `timeout` bounds each HTTP call in
    seconds; `max_retries` is the number of retries after the first attempt; backoff before
    retry k is uniform in [0, min(max_backoff, backoff * 2**k)]. `extra_body` is merged into every
    request body (server-specific fields).
    """

    kind = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str = DEFAULT_KEY_ENV,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        concurrency: int = 8,
        extra_body: dict[str, Any] | None = None,
    ):
        super().__init__(model)
        openai = require("openai", extra="llm")
        if timeout <= 0 or max_retries < 0 or concurrency < 1 or backoff < 0:
            raise LmlabError(
                f"need timeout > 0, max_retries >= 0, concurrency >= 1 and backoff >= 0; got "
                f"timeout={timeout}, max_retries={max_retries}, concurrency={concurrency}, backoff={backoff}"
            )
        self._openai = openai
        key = api_key or os.environ.get(api_key_env) or "EMPTY"  # local servers ignore the key
        self.api_key_env = api_key_env
        self.client = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)
        self.base_url = str(self.client.base_url).rstrip("/")
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.concurrency = int(concurrency)
        self.extra_body = dict(extra_body or {})
        self.n_supported: bool | None = None  # learned from the first call with n > 1
        self._jitter = random.Random()
        self._lock = threading.Lock()

    # -- one HTTP call ----------------------------------------------------------------------
    def _params(self, req: Request, n: int, seed: int | None) -> dict[str, Any]:
        p: dict[str, Any] = {
            "model": self.model,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
        }
        if req.is_chat:
            p["messages"] = [dict(m) for m in req.messages]
            if req.logprobs:
                p["logprobs"] = True
        else:
            p["prompt"] = req.prompt
            if req.logprobs:
                p["logprobs"] = 1
        if n > 1:
            p["n"] = n
        if req.stop:
            p["stop"] = list(req.stop)
        if seed is not None:
            p["seed"] = seed
        if self.extra_body:
            p["extra_body"] = dict(self.extra_body)
        return p

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        cap = min(self.max_backoff, self.backoff * 2**attempt)
        delay = self._jitter.uniform(0, cap)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff))
        return delay

    def _post(self, req: Request, n: int, seed: int | None, stats: CallStats) -> tuple[Any, float]:
        """One logical call with bounded retries: the response and its latency (last attempt)."""
        openai = self._openai
        params = self._params(req, n, seed)
        create = self.client.chat.completions.create if req.is_chat else self.client.completions.create
        attempts = self.max_retries + 1
        failure = ""
        for attempt in range(attempts):
            retry_after = None
            with self._lock:
                stats.http_calls += 1
            start = time.perf_counter()
            try:
                return create(**params), time.perf_counter() - start
            except openai.APITimeoutError:
                failure = f"no answer within the {self.timeout:g} s timeout"
            except openai.APIConnectionError as e:
                cause = e.__cause__ or e
                failure = f"connection failed ({_one_line(cause) or type(cause).__name__})"
            except openai.APIStatusError as e:
                status = e.status_code
                detail = _error_detail(e)
                if status not in (408, 409, 429) and status < 500:
                    hint = ""
                    if status in (401, 403):
                        hint = f"; set {self.api_key_env} to a valid API key"
                    elif status == 404:
                        hint = f"; check the URL and that the server serves model {self.model!r}"
                    raise LmlabError(
                        f"{self.base_url} rejected the request (HTTP {status}: {detail}){hint} "
                        f"for {req.describe()}"
                    ) from None
                failure = f"HTTP {status} ({detail})"
                retry_after = _retry_after(e)
            if attempt + 1 < attempts:
                with self._lock:
                    stats.retries += 1
                time.sleep(self._delay(attempt, retry_after))
        raise LmlabError(
            f"OpenAI-compatible server at {self.base_url}: {failure}, after {attempts} "
            f"attempt{'s' if attempts > 1 else ''}, for {req.describe()}"
        )

    def _parse(self, req: Request, resp: Any, latency: float, js: list[int],
               seeds: list[int | None]) -> list[Completion]:
        if not hasattr(resp, "choices"):
            raise LmlabError(
                f"{self.base_url} did not answer like an OpenAI-compatible server "
                f"(got {type(resp).__name__}: {_one_line(resp)[:120]}) for {req.describe()}"
            )
        choices = sorted(resp.choices or [], key=lambda c: c.index or 0)[: len(js)]
        usage = getattr(resp, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        total_completion = int(getattr(usage, "completion_tokens", 0) or 0)
        parsed = []
        for ch in choices:
            if req.is_chat:
                text = (ch.message.content if ch.message is not None else None) or ""
                lp = getattr(ch, "logprobs", None)
                content = getattr(lp, "content", None) if lp is not None else None
                logprobs = tuple(float(t.logprob) for t in content) if content else None
                tokens = tuple(str(t.token) for t in content) if content else None
            else:
                text = ch.text or ""
                lp = getattr(ch, "logprobs", None)
                token_lps = getattr(lp, "token_logprobs", None) if lp is not None else None
                logprobs = tuple(float(x) for x in token_lps if x is not None) if token_lps else None
                toks = getattr(lp, "tokens", None) if lp is not None else None
                tokens = tuple(str(t) for t in toks) if toks else None
            finish = str(ch.finish_reason or "stop")
            if req.stop and finish == "stop":
                # OpenAI and vLLM leave the stop string out; some servers (transformers serve)
                # keep it. Cut at the first one, as the local backend does.
                text = text[: min((text.find(s) for s in req.stop if s in text), default=len(text))]
            parsed.append((text, finish, logprobs, tokens))
        # Completion tokens per choice: exact for one choice or from logprobs, else the total split.
        k = len(parsed)
        split = [total_completion // k + (1 if i < total_completion % k else 0) for i in range(k)] if k else []
        out = []
        for m, (text, finish, logprobs, tokens) in enumerate(parsed):
            if k == 1:
                ct = total_completion
            elif logprobs is not None and req.logprobs:
                ct = len(logprobs)
            else:
                ct = split[m]
            out.append(Completion(
                text=text, finish_reason=finish, prompt_tokens=prompt_tokens, completion_tokens=ct,
                latency_s=round(latency, 6), backend=self.kind, model=self.model, index=js[m],
                seed=seeds[m], logprobs=logprobs if req.logprobs else None,
                tokens=tokens if req.logprobs else None,
            ))
        return out

    # -- a batch ----------------------------------------------------------------------------
    def _generate(self, requests: list[Request], stats: CallStats) -> list[list[Completion]]:
        for r in requests:
            if r.hidden_layer is not None:
                raise LmlabError(
                    "hidden states need the local hf backend: OpenAI-compatible servers do not "
                    f"return them ({r.describe()})"
                )
        got: list[dict[int, Completion]] = [{} for _ in requests]

        def seed_of(r: Request, j: int) -> int | None:
            return None if r.seed is None else sample_seed(r.seed, j)

        # Phase 1: all n samples in one call where the server may honour n.
        jobs = []
        for i, r in enumerate(requests):
            if r.n > 1 and self.n_supported is not False:
                jobs.append((i, list(range(r.n)), r.seed))
            else:
                jobs.extend((i, [j], seed_of(r, j)) for j in range(r.n))
        asked_n = self._run_jobs(requests, jobs, got, stats)
        # Phase 2: the samples a server left out, one call each.
        jobs = [(i, [j], seed_of(r, j)) for i, r in enumerate(requests) for j in range(r.n)
                if j not in got[i]]
        if asked_n and self.n_supported is None:
            self.n_supported = not jobs
        elif jobs:
            self.n_supported = False
        if jobs:
            self._run_jobs(requests, jobs, got, stats)
        missing = [(i, j) for i, r in enumerate(requests) for j in range(r.n) if j not in got[i]]
        if missing:
            i, _ = missing[0]
            raise LmlabError(
                f"{self.base_url} returned no choice for {len(missing)} sample(s), e.g. for "
                f"{requests[i].describe()}"
            )
        return [[got[i][j] for j in range(r.n)] for i, r in enumerate(requests)]

    def _run_jobs(self, requests: list[Request], jobs: list[tuple[int, list[int], int | None]],
                  got: list[dict[int, Completion]], stats: CallStats) -> bool:
        """Run HTTP jobs (request i, sample indices, seed) concurrently; fill `got`.

        Returns whether any job asked for more than one sample.
        """

        def one(job: tuple[int, list[int], int | None]) -> None:
            i, js, seed = job
            r = requests[i]
            resp, latency = self._post(r, len(js), seed, stats)
            for c in self._parse(r, resp, latency, js, [seed] * len(js)):
                got[i][c.index] = c

        if len(jobs) == 1:
            one(jobs[0])
        elif jobs:
            pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs)))
            try:
                futures: list[Future] = [pool.submit(one, job) for job in jobs]
                wait(futures, return_when=FIRST_EXCEPTION)
                for f in futures:
                    if f.done() and f.exception() is not None:
                        raise f.exception()  # type: ignore[misc]
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return any(len(js) > 1 for _, js, _ in jobs)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()


def _retry_after(e: Any) -> float | None:
    """Seconds from a ``Retry-After`` header, if the server sent one as a number."""
    try:
        value = e.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
