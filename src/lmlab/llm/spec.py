"""Choosing a backend by one string, the same in study configs and on the command line.

=========================================  ===================================================
``hf`` or ``hf:smollm2-135m-instruct``      the embedded SmolLM2-135M-Instruct, local
``hf:<folder or hub id>``                   a local Hugging Face model folder, or a hub id
``llamacpp:qwen2.5-coder-0.5b-instruct``    a catalog model's GGUF run by llama.cpp (opt-in extra)
``llamacpp:<file.gguf>``                    any local GGUF file, run by llama.cpp
``openai:<model>@http://host:port/v1``      an OpenAI-compatible server (vLLM, Ollama, ...)
``openai:<model>``                          the server in ``OPENAI_BASE_URL`` (else OpenAI's)
``replay:<file>``                           answers recorded in a JSONL file, offline
``replay:<file>#<kind>:<model>``            one model's answers, when the file holds several
=========================================  ===================================================

A URL with no path gets ``/v1`` (the path every OpenAI-compatible server uses).
"""

from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lmlab.errors import LmlabError
from lmlab.llm.backend import Backend

KINDS = ("hf", "llamacpp", "openai", "replay")
USAGE = "use hf:MODEL, llamacpp:MODEL, openai:MODEL@http://HOST:PORT/v1 or replay:FILE"
_OPENAI = re.compile(r"^(?P<model>.+?)@(?P<url>[A-Za-z][A-Za-z0-9+.-]*://.*)$")


@dataclass(frozen=True)
class Spec:
    """A parsed backend spec: the kind, the model (or file) and, for servers, the URL."""

    kind: str
    target: str
    url: str | None = None
    source: str | None = None  # replay: which recorded model


def _normalize_url(url: str, spec: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LmlabError(f"malformed server URL {url!r} in LLM spec {spec!r}: expected http(s)://HOST:PORT/v1")
    try:
        parts.port  # noqa: B018 (validates the port)
    except ValueError:
        raise LmlabError(f"malformed port in server URL {url!r} (LLM spec {spec!r})") from None
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def parse_spec(spec: str) -> Spec:
    """Parse a backend spec string (see the module docstring); malformed specs raise LmlabError."""
    if not isinstance(spec, str) or not spec.strip():
        raise LmlabError(f"empty LLM backend spec; {USAGE}")
    spec = spec.strip()
    kind, _, rest = spec.partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise LmlabError(f"unknown LLM backend {kind!r} in spec {spec!r}; {USAGE}")
    rest = rest.strip()
    if kind == "hf":
        from lmlab.llm.hf import DEFAULT_MODEL

        return Spec("hf", rest or DEFAULT_MODEL)
    if kind == "llamacpp":
        from lmlab.llm.llamacpp import DEFAULT_MODEL as LLAMACPP_DEFAULT

        return Spec("llamacpp", rest or LLAMACPP_DEFAULT)
    if kind == "openai":
        if not rest:
            raise LmlabError(f"LLM spec {spec!r} names no model; use openai:MODEL@http://HOST:PORT/v1")
        m = _OPENAI.match(rest)
        if rest.startswith("@"):
            raise LmlabError(f"LLM spec {spec!r} names no model; use openai:MODEL@http://HOST:PORT/v1")
        if m is None:
            if "@" in rest and "://" not in rest:
                raise LmlabError(
                    f"malformed LLM spec {spec!r}: the part after '@' must be a URL such as "
                    "http://127.0.0.1:8000/v1"
                )
            return Spec("openai", rest)
        model, url = m["model"].strip(), m["url"].strip()
        if not model:
            raise LmlabError(f"LLM spec {spec!r} names no model; use openai:MODEL@http://HOST:PORT/v1")
        return Spec("openai", model, _normalize_url(url, spec))
    if not rest:
        raise LmlabError(f"LLM spec {spec!r} names no file; use replay:FILE")
    path, _, source = rest.partition("#")
    if not path:
        raise LmlabError(f"LLM spec {spec!r} names no file; use replay:FILE")
    return Spec("replay", path, source=source or None)


def get_backend(
    spec: str,
    *,
    run: Any = None,
    record: str | os.PathLike | None = None,
    **options: Any,
) -> Backend:
    """The backend a spec string names, ready to `generate`.

    `run` (a `lmlab.runs.Run` or a folder) accounts every call in that run folder's
    ``llm_usage.json``; `record` wraps the backend in a `Recorder` writing (and replaying) that
    JSONL file. Other keyword `options` go to the backend's constructor (``device``,
    ``batch_size``, ``seed`` for hf; ``threads``, ``n_ctx``, ``seed`` for llamacpp; ``timeout``, ``max_retries``, ``concurrency``, ... for
    openai). Unknown kinds, malformed specs and missing models raise a one-line LmlabError.
    """
    s = parse_spec(spec)
    if s.kind == "hf":
        from lmlab.llm.hf import HFBackend as cls
    elif s.kind == "llamacpp":
        from lmlab.llm.llamacpp import LlamaCppBackend as cls
    elif s.kind == "openai":
        from lmlab.llm.openai_api import OpenAIBackend as cls
    else:
        from lmlab.llm.replay import ReplayBackend as cls
    allowed = {
        name for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.kind == p.KEYWORD_ONLY
    }
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise LmlabError(
            f"unknown option(s) {', '.join(unknown)} for the {s.kind} backend; "
            f"it takes {', '.join(sorted(allowed)) or 'none'}"
        )
    backend: Backend
    if s.kind in ("hf", "llamacpp"):
        backend = cls(s.target, **options)
    elif s.kind == "openai":
        backend = cls(s.target, s.url, **options)
    else:
        backend = cls(s.target, s.source, **options)
    if record is not None:
        from lmlab.llm.replay import Recorder

        backend = Recorder(backend, record)
    if run is not None:
        backend.attach(run)
    return backend
