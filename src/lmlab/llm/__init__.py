"""One interface to local and served language models, with accounting and recorded replay.

>>> from lmlab.llm import Request, get_backend
>>> lm = get_backend("hf:smollm2-135m-instruct", run="runs/demo")      # doctest: +SKIP
>>> out = lm.generate([Request.chat("Name a prime.", n=4, temperature=0.8, seed=0)])  # doctest: +SKIP
>>> [c.text for c in out[0]]                                           # doctest: +SKIP

* `Request` / `Completion`: what goes in (chat messages or a raw prompt; n, temperature, top_p,
  max_tokens, stop, seed, logprobs, hidden_layer) and what comes out (text, finish reason, token
  counts, latency, backend and model; log-probabilities and hidden states when asked).
* `get_backend(spec)`: ``hf:MODEL``, ``llamacpp:MODEL`` (opt-in), ``openai:MODEL@URL``, ``replay:FILE`` (see `lmlab.llm.spec`);
  ``run=`` accounts calls in a run folder (``llm_usage.json``, ``llm_calls.jsonl``), ``record=``
  records them to a JSONL cache that ``replay:`` plays back offline.
* `Backend.generate(requests) -> list[list[Completion]]`, one list of n samples per request.

* `lmlab.llm.hf.hidden_states(model, prompts, layer)`: the prompts' last-token hidden states as a
  numpy array, for probes.

Heavy dependencies (`transformers`, `llama_cpp`, `openai`) load only when a backend that needs them is
made.
"""

from lmlab.llm.backend import Backend, CallStats
from lmlab.llm.replay import Recorder, ReplayBackend, describe_sources
from lmlab.llm.request import Completion, Request, sample_seed
from lmlab.llm.spec import KINDS, Spec, get_backend, parse_spec
from lmlab.llm.usage import CALLS_FILE, USAGE_FILE, Usage, read_usage

__all__ = [
    "CALLS_FILE",
    "KINDS",
    "USAGE_FILE",
    "Backend",
    "CallStats",
    "Completion",
    "Recorder",
    "ReplayBackend",
    "Request",
    "Spec",
    "Usage",
    "describe_sources",
    "get_backend",
    "parse_spec",
    "read_usage",
    "sample_seed",
]


def __getattr__(name: str):  # the backends import their heavy dependencies lazily
    if name == "HFBackend":
        from lmlab.llm.hf import HFBackend

        return HFBackend
    if name == "LlamaCppBackend":
        from lmlab.llm.llamacpp import LlamaCppBackend

        return LlamaCppBackend
    if name == "OpenAIBackend":
        from lmlab.llm.openai_api import OpenAIBackend

        return OpenAIBackend
    raise AttributeError(f"module 'lmlab.llm' has no attribute {name!r}")
