"""Pre-trained bases kept in lmlab's cache folder, so that a second run skips pre-training.

A study that pre-trains a small model before its experiments (ttt-arc's decoder, intruders' GPT
per seed) names one `BaseCache`: its folder, `$LMLAB_CACHE/<study>/bases/`, and the modules
whose source decides the weights. Then::

    key = BASES.key({"model": ..., "pretrain": ..., "seed": ...})  # what else decides them
    hit = BASES.load(key, tensor_shapes(fresh_model_state))  # (tensors, metrics) or None
    if hit is None:
        ...pre-train...
        BASES.store(key, tensors, metrics)

The key is the SHA-256 of the recipe the study passes (everything that decides the weights: the
model's shape, the training settings but not their logging cadence, the derived seed, the data
sizes), the cache's format, the torch version and the source of the named modules, so a change
to any of them misses the cache instead of reusing a stale base. Writes are atomic
(`lmlab.runs.save_tensors`): two processes storing the same key leave one whole file. A file is
loaded with safetensors (no pickle) and used only when its recorded key and every tensor's name
and shape match; anything else (a damaged file, a key that does not match, tensors that do not
fit) is one line on stderr, `None`, and the caller pre-trains again, whose `store` replaces the
file. A folder that cannot be written is one line too: the run goes on without the cache.

`pretrain.source` in a study's metrics says where its base came from: "trained", "cache" or
"given" (a checkpoint the user named); `sources_summary` says it for several bases (one per
seed), and the report shows it per study (`lmlab.report`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BaseCache", "code_digest", "sources_summary", "tensor_shapes"]

SOURCES = ("trained", "cache", "given")


def code_digest(modules: Sequence[str]) -> str:
    """SHA-256 over the source files of the named modules (name and bytes of each, in order)."""
    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"code_digest: no source file for module {name!r}")
        h.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\0")
    return h.hexdigest()


def tensor_shapes(tensors: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """{name: shape} of a state dict: what a cached base must match."""
    return {k: tuple(v.shape) for k, v in tensors.items()}


def sources_summary(sources: Sequence[str]) -> str:
    """Where several bases came from, in one value: the common source ("trained", "cache"),
    else how many came from the cache ("cache 2 of 3")."""
    if not sources:
        return "none"
    if len(set(sources)) == 1:
        return sources[0]
    return f"cache {sum(s == 'cache' for s in sources)} of {len(sources)}"


@dataclass(frozen=True)
class BaseCache:
    """The pre-trained bases of one study in lmlab's cache folder (see the module docstring).

    `study` names the folder and prefixes the one-line messages; `code` lists the modules whose
    source decides the weights; `format` changes every key when the stored layout changes.
    """

    study: str
    code: tuple[str, ...]
    format: int = 1

    def folder(self) -> Path:
        """`$LMLAB_CACHE/<study>/bases` (see `lmlab.data.cache_root`)."""
        from lmlab.data import cache_root

        return cache_root() / self.study / "bases"

    def path(self, key: str) -> Path:
        """Where the base of `key` lives."""
        return self.folder() / f"{key[:32]}.safetensors"

    def key(self, recipe: Mapping[str, Any]) -> str:
        """The hex SHA-256 of `recipe` (JSON-able: what decides the weights besides the code),
        the format, the torch version and the source of `code`."""
        import torch

        payload = {"format": self.format, **recipe, "torch": torch.__version__,
                   "code": code_digest(self.code)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def say(self, msg: str) -> None:
        """One line on stderr, prefixed with the study."""
        print(f"{self.study}: {msg}", file=sys.stderr, flush=True)

    def load(self, key: str, shapes: Mapping[str, tuple[int, ...]]
             ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The cached base of `key` as (tensors, the metrics stored with it), or None when there
        is none (silently) or it cannot be used (one line): it must record `key` and hold
        exactly the tensors named in `shapes`, each of that shape."""
        from lmlab.errors import LmlabError
        from lmlab.runs import load_tensors

        path = self.path(key)
        if not path.is_file():
            return None
        try:
            tensors, state = load_tensors(path)
        except LmlabError as e:
            self.say(f"ignoring the cached base ({e}); pre-training again")
            return None
        if not isinstance(state, dict) or state.get("cache_key") != key:
            why: str | None = "its recorded key does not match"
        else:
            why = _misfit(dict(shapes), tensor_shapes(tensors))
        if why:
            self.say(f"ignoring the cached base {path}: {why}; pre-training again")
            return None
        return tensors, dict(state.get("metrics") or {})

    def store(self, key: str, tensors: Mapping[str, Any], metrics: Mapping[str, Any]
              ) -> Path | None:
        """Write the base of `key` atomically (replacing any file there); a cache that cannot
        be written is one line and None."""
        from lmlab.runs import save_tensors

        path = self.path(key)
        try:
            save_tensors(path, dict(tensors), {"cache_key": key, "metrics": dict(metrics)})
        except OSError as e:
            self.say(f"cannot keep the pre-trained base in the cache ({e}); set LMLAB_CACHE to "
                     "a writable folder to reuse it")
            return None
        return path


def _misfit(want: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]]) -> str | None:
    """Why tensors of shapes `got` cannot be the model of shapes `want` (None when they can)."""
    if want == got:
        return None
    bad = sorted(set(want) ^ set(got)) or sorted(k for k in want if want[k] != got[k])
    return f"its tensors do not fit the model ({bad[0]})"
