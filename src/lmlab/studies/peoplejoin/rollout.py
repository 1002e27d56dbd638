"""Running many episodes at once: their model calls are batched into one backend call per role.

Each episode is a generator (`environment.episode`) that yields the calls it needs. Every round,
the driver collects the pending calls of all live episodes, sends those of each backend in one
`generate` (the local backend runs them as one padded batch), and resumes each episode with its
answers. Agent and teammates may share a backend object (then their calls share the batch).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from lmlab.llm import Backend, Completion
from lmlab.studies.peoplejoin.environment import Call
from lmlab.studies.peoplejoin.transcript import Transcript

__all__ = ["run_episodes"]

Episode = Generator[Call | list[Call], Any, Transcript]


def run_episodes(
    episodes: Sequence[Episode],
    backends: dict[str, Backend],
    *,
    on_done: Callable[[int, Transcript], None] | None = None,
    batch: bool = True,
) -> list[Transcript]:
    """Drive every episode to its end; `backends` maps a role (agent, teammate, requester) to its
    model. `on_done(index, transcript)` is called as each episode finishes. ``batch=False`` sends
    every call alone: the local backend then starts each prompt from the kept KV cache of the
    recent prompt sharing its longest prefix (an episode's successive agent calls, or messages to
    the same member), which on a CPU beats padding a batch of unrelated prompts."""
    results: list[Transcript | None] = [None] * len(episodes)
    waiting: dict[int, Call | list[Call]] = {}

    def advance(i: int, answer: Any) -> None:
        try:
            waiting[i] = episodes[i].send(answer)
        except StopIteration as stop:
            waiting.pop(i, None)
            results[i] = stop.value
            if on_done is not None:
                on_done(i, stop.value)

    for i in range(len(episodes)):
        advance(i, None)
    while waiting:
        # flatten: (episode, position in its list or None, call)
        flat = [(i, j, c) for i, w in waiting.items()
                for j, c in (enumerate(w) if isinstance(w, list) else [(None, w)])]
        answers: dict[tuple[int, int | None], Completion] = {}
        by_backend: dict[int, list[tuple[int, int | None, Call]]] = {}
        for i, j, c in flat:
            if c.role not in backends:
                raise KeyError(f"no backend for role {c.role!r}")
            by_backend.setdefault(id(backends[c.role]), []).append((i, j, c))
        for group in by_backend.values():
            lm = backends[group[0][2].role]
            reqs = [c.request for _, _, c in group]
            outs = lm.generate(reqs) if batch else [lm.generate([r])[0] for r in reqs]
            for (i, j, _), out in zip(group, outs, strict=True):
                answers[(i, j)] = out[0]
        for i, w in list(waiting.items()):
            if isinstance(w, list):
                advance(i, [answers[(i, j)] for j in range(len(w))])
            else:
                advance(i, answers[(i, None)])
    return [r for r in results if r is not None]
