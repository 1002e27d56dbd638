"""Simulated participants: an LLM answering the feed as a persona. An extension, not the paper.

The paper's participants were people. Here a language model is told a persona built from
demographics (the same five attributes the personalized condition uses), reads each post with
its condition's intervention exactly as the web page shows it, and answers "reliable" or
"unreliable". Its answers are **model outputs**: every row is marked ``source =
simulated:<model>`` and every metric and claim built from them says so. They test the plumbing
and show how a model reacts to the interventions; they say nothing about people.

Participants are assigned with the web app's own balanced, seeded assignment (`assign`), each
reads one feed under one condition, and each answer is sampled with its own seed. A participant
in the personalized condition is also shown both explanations of each post (generic and
personalized, in a seeded order) and asked which is more convincing: the preference rate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lmlab.llm import Backend, Request
from lmlab.seeding import derive, numpy_rng
from lmlab.studies.misinfo_eval.assign import condition_for, feed_for
from lmlab.studies.misinfo_eval.data import (
    ATTRIBUTES,
    CHOICES,
    Demographics,
    Feed,
    Participant,
    Post,
    Response,
)

EDUCATION = {"high-school": "a high school", "college": "a college", "postgraduate": "a postgraduate"}


def personas(n: int, seed: int) -> list[Demographics]:
    """`n` demographic profiles drawn uniformly from the web form's choices (seeded)."""
    rng = numpy_rng(derive(seed, "personas"))
    return [Demographics(*(CHOICES[a][int(rng.integers(len(CHOICES[a])))] for a in ATTRIBUTES))
            for _ in range(n)]


def persona_text(d: Demographics) -> str:
    """The system message that sets the persona."""
    edu = EDUCATION.get(d.education, f"a {d.education}")
    return (f"You are a {d.age} year old {d.race} {d.gender} person with {edu} education and "
            f"{d.politics} political views. You are scrolling through your social media feed. "
            "Answer as yourself, briefly.")


def question(post: Post, note: str) -> str:
    """What the persona is shown and asked about one post (the page's content, as text)."""
    shown = f'Post from {post.source}:\n"{post.headline}"'
    if note:
        shown += f"\n\nA note shown under the post:\n{note}"
    return shown + ("\n\nIs this headline reliable? Answer with one word: reliable or "
                    "unreliable.")


def preference_question(post: Post, first: str, second: str) -> str:
    """Which of two explanations of the same post is more convincing."""
    return (f'Headline: "{post.headline}"\n\nNote A:\n{first}\n\nNote B:\n{second}\n\n'
            "Which note do you find more convincing? Answer with one letter: A or B.")


_UNRELIABLE = re.compile(r"\b(unreliable|not reliable|false|fake|no)\b", re.IGNORECASE)
_RELIABLE = re.compile(r"\b(reliable|true|yes)\b", re.IGNORECASE)


def parse_answer(text: str) -> bool | None:
    """True for reliable, False for unreliable, None when the answer says neither (first wins)."""
    u, r = _UNRELIABLE.search(text), _RELIABLE.search(text)
    if u is None and r is None:
        return None
    if u is None:
        return True
    if r is None:
        return False
    return u.start() > r.start() if u.start() != r.start() else False


def parse_choice(text: str) -> str | None:
    """'A' or 'B' (the first standalone letter), else None."""
    m = re.search(r"\b([AB])\b", text.strip())
    return m.group(1) if m else None


@dataclass(frozen=True)
class Simulation:
    """The simulated participants and their responses."""

    participants: list[Participant]
    responses: list[Response]


def assign_personas(people: Sequence[Demographics], conditions: Sequence[str],
                    feed_ids: Sequence[str], seed: int) -> list[tuple[Demographics, str, str]]:
    """(persona, condition, feed) for each persona, with the web app's assignment."""
    counts: dict[str, int] = {}
    out = []
    for i, d in enumerate(people):
        c = condition_for(i, conditions, seed)
        f = feed_for(counts.get(c, 0), feed_ids, c, seed)
        counts[c] = counts.get(c, 0) + 1
        out.append((d, c, f))
    return out


def simulate(
    lm: Backend, feeds: Mapping[str, Feed], plan: Sequence[tuple[Demographics, str, str]],
    shown: Callable[[str, str, Demographics], list[str]], *, seed: int,
    temperature: float = 0.7, generic: Callable[[str], list[str]] | None = None,
    batch: int = 32, progress: Callable[[int, int], None] | None = None,
) -> Simulation:
    """Every planned participant answers the five posts of their feed under their condition.

    `shown(condition, feed_id, persona)` gives the five texts the page would show; `generic(feed_id)`
    the generic explanations for the preference question (None: not asked).
    """
    model = f"simulated:{lm.source}"
    parts: list[Participant] = []
    jobs: list[tuple[int, int, Request]] = []
    for i, (d, cond, fid) in enumerate(plan):
        pid = f"sim-{i:04d}"
        parts.append(Participant(pid, d, cond, fid, source=model))
        for pos, (post, note) in enumerate(zip(feeds[fid].posts, shown(cond, fid, d), strict=True)):
            jobs.append((i, pos, Request(
                messages=({"role": "system", "content": persona_text(d)},
                          {"role": "user", "content": question(post, note)}),
                max_tokens=6, temperature=temperature,
                seed=derive(seed, "answer", i, pos) % 2**31)))
    pref_jobs: list[tuple[int, int, bool, Request]] = []
    if generic is not None:
        for i, (d, cond, fid) in enumerate(plan):
            if cond != "personalized":
                continue
            mine, gen = shown(cond, fid, d), generic(fid)
            for pos, post in enumerate(feeds[fid].posts):
                flip = bool(derive(seed, "order", i, pos) % 2)  # personalized shown second?
                a, b = (gen[pos], mine[pos]) if flip else (mine[pos], gen[pos])
                pref_jobs.append((i, pos, flip, Request(
                    messages=({"role": "system", "content": persona_text(d)},
                              {"role": "user", "content": preference_question(post, a, b)}),
                    max_tokens=4, temperature=temperature,
                    seed=derive(seed, "prefer", i, pos) % 2**31)))
    requests = [r for *_, r in jobs] + [r for *_, r in pref_jobs]
    texts: list[str] = []
    for k in range(0, len(requests), batch):
        texts += [c[0].text for c in lm.generate(requests[k:k + batch])]
        if progress is not None:
            progress(len(texts), len(requests))
    answers = texts[: len(jobs)]
    prefs: dict[tuple[int, int], str] = {}
    for (i, pos, flip, _), t in zip(pref_jobs, texts[len(jobs):], strict=True):
        ch = parse_choice(t)
        if ch is not None:
            prefs[(i, pos)] = "personalized" if (ch == "B") == flip else "generic"
    responses = []
    for (i, pos, _), t in zip(jobs, answers, strict=True):
        p = parts[i]
        post = feeds[p.feed_id].posts[pos]
        responses.append(Response(p.participant_id, p.condition, p.feed_id, pos, post.post_id,
                                  post.label, parse_answer(t), None, prefs.get((i, pos), "")))
    return Simulation(parts, responses)
