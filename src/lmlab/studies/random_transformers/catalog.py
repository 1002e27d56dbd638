"""Every task of the study by name: the algorithmic tasks (`tasks`) and the corpora (`language`).

A module of its own, so that `tasks` and `language` need not import each other.
"""

from __future__ import annotations

from typing import Any

from lmlab.errors import LmlabError
from lmlab.studies.random_transformers.language import GrammarCorpus, TinyStories
from lmlab.studies.random_transformers.tasks import (
    DecimalAddition,
    Memorization,
    ModularAddition,
    Needle,
    Parentheses,
)

__all__ = ["make_task"]


def make_task(name: str, **kw: Any) -> Any:
    """A task by name (modadd, needle, decimal, parens, memorize, grammar, tinystories)."""
    kinds: dict[str, Any] = {"modadd": ModularAddition, "needle": Needle,
                             "decimal": DecimalAddition, "parens": Parentheses,
                             "memorize": Memorization, "grammar": GrammarCorpus,
                             "tinystories": TinyStories}
    if name not in kinds:
        raise LmlabError(f"unknown task {name!r}; choose one of {', '.join(kinds)}")
    return kinds[name](**kw)
