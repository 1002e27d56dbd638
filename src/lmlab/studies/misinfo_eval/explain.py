"""LLM explanations for the ``llm`` and ``personalized`` conditions, checked and regenerated.

Each explanation is requested through `lmlab.llm` (so a run's calls are accounted, and recorded
for offline replay when the backend is a `Recorder`). An answer is accepted when it has at most
`max_words` words and never mentions AI or a language model; otherwise it is asked again with the
next seed (`lmlab.seeding.derive(seed, "explain", key, attempt)`), up to `attempts` times. When
every attempt fails, each attempt is repaired (sentences that mention AI dropped, the text cut to
`max_words` words at a sentence end where possible) and the longest repaired text is kept,
flagged `repaired`; if nothing is left (every sentence mentioned AI) the text is empty and
flagged `failed`, and the post shows the label alone.

Small chat models often restate the prompt ("This headline is true because ..."); that is kept,
since the release's explanations do the same. A leading "Explanation:" and wrapping quotes are
removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lmlab.llm import Backend, Request
from lmlab.seeding import derive

AI_MENTION = re.compile(
    r"\bA\.?I\.?(?=[\s,.;:!?)'\"]|$)|\bartificial intelligence\b|\blanguage models?\b|\bLLMs?\b"
    r"|\bchatbots?\b|\bGPT\b|\bAI assistant\b|\bas an assistant\b|\bmachine learning model\b",
    re.IGNORECASE,
)
_PREFIX = re.compile(r"^\s*(explanation|answer)\s*:\s*", re.IGNORECASE)


def word_count(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


def mentions_ai(text: str) -> bool:
    """Whether the text mentions AI, a language model or a chatbot."""
    # "AI" must be the capitalized word: 'ai' inside other words never matches (word boundary),
    # and lowercase 'ai' is not a common English word, so IGNORECASE is safe for it.
    return AI_MENTION.search(text) is not None


def clean(text: str) -> str:
    """Strip a leading 'Explanation:' label, wrapping quotes and surrounding blank space."""
    t = _PREFIX.sub("", text.strip())
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        t = t[1:-1].strip()
    return " ".join(t.split())


def problems(text: str, max_words: int = 100) -> list[str]:
    """Why an explanation is not acceptable (empty when it is)."""
    out = []
    if not text.strip():
        out.append("empty")
    if word_count(text) > max_words:
        out.append(f"{word_count(text)} words > {max_words}")
    if mentions_ai(text):
        out.append("mentions AI")
    return out


def repair(text: str, max_words: int = 100) -> str:
    """Drop sentences that mention AI and cut to `max_words` words (at a sentence end if one
    falls in the last half)."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s and not mentions_ai(s)]
    words = " ".join(sentences).split()[:max_words]
    t = " ".join(words)
    cut = max(t.rfind(". "), t.rfind("! "), t.rfind("? "))
    if t and t[-1] not in ".!?" and cut > len(t) // 2:
        t = t[: cut + 1]
    return t


@dataclass(frozen=True)
class Explanation:
    """One accepted (or repaired) explanation and how it was obtained."""

    key: str
    prompt: str
    text: str
    attempts: int
    repaired: bool
    words: int

    @property
    def failed(self) -> bool:
        return not self.text


def generate_explanations(
    lm: Backend, items: Sequence[tuple[str, str]], *, seed: int, max_words: int = 100,
    attempts: int = 3, max_tokens: int = 180, temperature: float = 0.7,
) -> list[Explanation]:
    """Explain each (key, prompt): batched requests, regenerating the failures with new seeds."""
    texts: dict[str, list[str]] = {k: [] for k, _ in items}
    tries: dict[str, int] = {}
    pending = list(items)
    for attempt in range(attempts):
        if not pending:
            break
        reqs = [Request.chat(p, max_tokens=max_tokens, temperature=temperature,
                             seed=derive(seed, "explain", k, attempt) % 2**31) for k, p in pending]
        outs = lm.generate(reqs)
        again = []
        for (k, p), comps in zip(pending, outs, strict=True):
            texts[k].append(clean(comps[0].text))
            tries[k] = attempt + 1
            if problems(texts[k][-1], max_words):
                again.append((k, p))
        pending = again
    failed = {k for k, _ in pending}
    out = []
    for k, p in items:
        if k in failed:
            t = max((repair(x, max_words) for x in texts[k]), key=lambda x: (len(x.split()), x))
        else:
            t = texts[k][-1]
        out.append(Explanation(k, p, t, tries[k], k in failed, word_count(t)))
    return out
