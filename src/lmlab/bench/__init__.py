"""Benchmarks: speed measured as ratios against a reference in the same run.

`benchmarks()` maps each benchmark's name to a function returning a JSON-able dict: lmlab's own
(`train`, `llm`) plus those a study offers in its `Study.benchmarks`, under the same name the
study gives them. Benchmark modules import their heavy dependencies lazily, so importing this
package is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lmlab.errors import LmlabError

__all__ = ["BENCHMARKS", "EXPLICIT_ONLY", "benchmarks", "run_benchmark"]


def _train(**kwargs: Any) -> dict:
    from lmlab.bench.train import bench_train

    return bench_train(**kwargs)


def _llm(**kwargs: Any) -> dict:
    from lmlab.bench.llm import bench_llm

    return bench_llm(**kwargs)


def _reproduce(**kwargs: Any) -> dict:
    from lmlab.bench.reproduce import bench_reproduce

    return bench_reproduce(**kwargs)


_train.__doc__ = "Training tokens/s of lmlab's GPT vs Hugging Face GPT-2 of the same shape."
_llm.__doc__ = "hf backend: batched sampling vs one call per sample, samples/s."
_reproduce.__doc__ = "Each study's preset profiled: wall and CPU s in training/evaluation/generation/analysis."

# lmlab's own benchmarks; studies add theirs through `Study.benchmarks`.
BENCHMARKS: dict[str, Callable[..., dict]] = {"train": _train, "llm": _llm,
                                               "reproduce": _reproduce}
# Run only when named (`lmlab bench reproduce`), never by a bare `lmlab bench`: it runs studies.
EXPLICIT_ONLY = frozenset({"reproduce"})


def benchmarks() -> dict[str, Callable[..., dict]]:
    """Every benchmark: lmlab's own, then each implemented study's."""
    from lmlab.study import catalog

    found = dict(BENCHMARKS)
    for info in catalog().values():
        study = info.load()
        for name, fn in (getattr(study, "benchmarks", None) or {}).items():
            found.setdefault(name, fn)
    return found


def run_benchmark(name: str, **kwargs: Any) -> dict:
    """Run the benchmark called `name` with keyword arguments; an unknown name is an LmlabError."""
    found = benchmarks()
    if name not in found:
        raise LmlabError(f"unknown benchmark {name!r}; benchmarks: {', '.join(found)}")
    return found[name](**kwargs)
