"""The one interface every LLM backend implements: `Backend.generate(requests)`.

A backend answers a batch of `Request`s with one list of `Completion`s per request. The public
`generate` validates the input, times the call and accounts for it (``backend.usage``, and the
run folder's ``llm_usage.json`` when attached to a run); subclasses implement `_generate`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from lmlab.llm.request import Completion, Request, as_requests
from lmlab.llm.usage import CallRecord, Usage, now, run_ledger


@dataclass
class CallStats:
    """What one call cost beyond its tokens: HTTP requests, retries, replayed completions."""

    http_calls: int = 0
    retries: int = 0
    replayed: int = 0


class Backend(ABC):
    """A language model that answers batches of requests.

    Subclasses set `kind` (``hf``, ``openai``, ...) and `model` (the model's name as the backend
    knows it) and implement `_generate`. `kind` and `model` are stamped on every completion and
    key the replay cache.
    """

    kind: ClassVar[str] = ""

    def __init__(self, model: str):
        self.model = model
        self.usage = Usage()
        self._ledgers: list[Any] = []

    @property
    def source(self) -> str:
        """``kind:model``, e.g. ``hf:smollm2-135m-instruct``."""
        return f"{self.kind}:{self.model}"

    def attach(self, run: Any) -> Backend:
        """Also account this backend's calls in a run folder (a `lmlab.runs.Run` or a path)."""
        return self.account(run_ledger(run))

    def account(self, ledger: Any) -> Backend:
        """Also hand each call's `CallRecord` to `ledger` (anything with ``add(record)``): a run
        folder's ledger, or a collector that carries a worker process's usage back to its parent."""
        if ledger not in self._ledgers:
            self._ledgers.append(ledger)
        return self

    def generate(self, requests: Request | str | Sequence[Request | str]) -> list[list[Completion]]:
        """Answer each request with its `n` completions: ``out[i][j]`` is sample j of request i.

        A plain string is a chat request with one user message. The call is timed and accounted.
        """
        reqs = as_requests(requests)  # type: ignore[arg-type]
        if not reqs:
            return []
        stats = CallStats()
        start = time.perf_counter()
        out = self._generate(reqs, stats)
        wall = time.perf_counter() - start
        if len(out) != len(reqs) or any(len(c) != r.n for c, r in zip(out, reqs, strict=True)):
            raise RuntimeError(f"{type(self).__name__} answered with the wrong number of completions")
        first = out[0][0]
        rec = CallRecord(
            backend=first.backend,
            model=first.model,
            requests=len(reqs),
            completions=sum(len(c) for c in out),
            prompt_tokens=sum(c[0].prompt_tokens for c in out),
            completion_tokens=sum(x.completion_tokens for c in out for x in c),
            wall_s=round(wall, 6),
            http_calls=stats.http_calls,
            retries=stats.retries,
            replayed=stats.replayed,
            time=now(),
        )
        self.usage.add(rec)
        for ledger in self._ledgers:
            ledger.add(rec)
        return out

    def sample(self, request: Request | str, **settings: Any) -> list[Completion]:
        """The completions of one request (a `Request`, or chat text plus `Request` settings)."""
        if isinstance(request, str):
            request = Request.chat(request, **settings)
        elif settings:
            raise TypeError("settings are only accepted with a text request")
        return self.generate([request])[0]

    @abstractmethod
    def _generate(self, requests: list[Request], stats: CallStats) -> list[list[Completion]]:
        """Answer validated requests; count HTTP calls, retries and replays in `stats`."""

    def close(self) -> None:  # noqa: B027 (optional hook: most backends hold nothing)
        """Release what the backend holds (connections, model memory)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"
