"""The seven intervention conditions and their byte-stable texts.

=================  ============================================================================
``control``        nothing is shown with the post
``label``          "This headline is true." / "This headline is false."
``generic-human``  the label, then "verified"/"refuted" by non-partisan fact-checkers
``generic-ai``     the label, then "verified"/"refuted" by an AI model
``mrf``            the label, then a sentence from two Misinfo Reaction Frames outputs (the
                   writer's intent, the reader's action): "persuade" wording for a true post,
                   "manipulate" for a false one. Needs a local MRF model; skipped when absent.
``llm``            the label, then an LLM explanation (at most 100 words, never mentioning AI)
``personalized``   as ``llm``, written to appeal to a reader of one demographic group
=================  ============================================================================

Every label-bearing text states the gold label: the gains partly measure trust in the label.

Departures from the release's scripts, each tested:

* every post is filled (the release loops over posts 1-4, then writes four explanations into
  five columns, shifting the row);
* the MRF wording is chosen from the boolean label (the release compares the raw label with
  lowercase ``'true'`` while the file holds ``TRUE``, so every post got the "manipulate" text);
* the personalized prompt closes the label's quote (the release's prompt leaves it open).

The label sentence and the explanation are joined with a newline; the web page renders the
text as text (never as HTML), one paragraph per line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from lmlab.errors import LmlabError
from lmlab.studies.misinfo_eval.data import (
    POSTS_PER_FEED,
    WIDE_COLUMNS,
    Demographics,
    Feed,
    Post,
    _read_csv,
    feed_row,
    label_word,
    write_csv,
)

CONDITIONS = ("control", "label", "generic-human", "generic-ai", "mrf", "llm", "personalized")
LABEL_BEARING = CONDITIONS[1:]
TEMPLATE_CONDITIONS = ("control", "label", "generic-human", "generic-ai")
LLM_CONDITIONS = ("llm", "personalized")

GENERIC_SOURCES = {
    "generic-human": "non-partisan fact-checkers.",
    "generic-ai": "an AI model trained on a large-scale corpus of web data.",
}


def label_text(label: bool) -> str:
    """The label sentence every label-bearing condition starts with."""
    return f"This headline is {label_word(label)}."


def generic_text(condition: str, label: bool) -> str:
    """The generic-human or generic-AI intervention."""
    if condition not in GENERIC_SOURCES:
        raise LmlabError(f"{condition!r} is not a generic condition")
    verb = "verified" if label else "refuted"
    return f"{label_text(label)}\nThis headline has been {verb} by {GENERIC_SOURCES[condition]}"


def mrf_text(label: bool, writer_intent: str, reader_action: str) -> str:
    """The MRF intervention from the model's writer-intent and reader-action outputs."""
    intent, action = writer_intent.strip().rstrip("."), reader_action.strip().rstrip(".")
    if label:
        body = f"This headline is trying to persuade readers that {intent}."
    else:
        body = f"This headline is trying to manipulate readers by implying that {intent}."
    return f"{label_text(label)}\n{body} It is compelling readers to {action}."


def explained_text(label: bool, explanation: str) -> str:
    """The llm and personalized interventions: the label, then the explanation (the label
    alone when the explanation is empty: a generation that failed every check)."""
    if not explanation.strip():
        return label_text(label)
    return f"{label_text(label)}\n{explanation.strip()}"


def intervention(condition: str, post: Post, explanation: str | None = None) -> str:
    """The text shown with `post` under `condition` (`explanation` for the LLM conditions)."""
    if condition == "control":
        return ""
    if condition == "label":
        return label_text(post.label)
    if condition in GENERIC_SOURCES:
        return generic_text(condition, post.label)
    if condition in LLM_CONDITIONS:
        if explanation is None:
            raise LmlabError(f"{condition}: post {post.post_id} has no explanation")
        return explained_text(post.label, explanation)
    if condition == "mrf":
        raise LmlabError("mrf texts are built by mrf_text from the MRF model's outputs")
    raise LmlabError(f"unknown condition {condition!r}; conditions: {', '.join(CONDITIONS)}")


# -- prompts ------------------------------------------------------------------------------------
def explanation_prompt(post: Post) -> str:
    """The generic LLM prompt (the release's wording)."""
    return (f"Write a short explanation for why the headline '{post.headline}' is "
            f"'{label_word(post.label)}.' Do not mention that you are AI. The explanation must "
            "be less than 100 words.")


def article(word: str) -> str:
    """'a' or 'an' before `word`."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def personalized_prompt(post: Post, group: Demographics) -> str:
    """The personalized prompt for one group (the release's wording, with its quote closed)."""
    reader = f"{group.education}, {group.gender}, {group.race} {group.age} year old reader"
    return (f"Write a short explanation for why the headline '{post.headline}' is "
            f"'{label_word(post.label)}' that will appeal to {article(group.education)} {reader} "
            f"with {group.politics} political beliefs. Do not mention the type of reader. "
            "Do not mention that you are AI. The explanation must be less than 100 words.")


# -- condition files ----------------------------------------------------------------------------
def condition_file(folder: str | Path, condition: str) -> Path:
    """Where a condition's filled feeds live in a feeds folder: ``<condition>.csv``."""
    return Path(folder) / f"{condition}.csv"


def fill_feed(condition: str, feed: Feed, texts: Sequence[str]) -> dict[str, str]:
    """One filled wide row; all five slots must be given (empty only for control)."""
    if len(texts) != POSTS_PER_FEED:
        raise LmlabError(f"{condition} {feed.feed_id}: {len(texts)} texts, expected {POSTS_PER_FEED}")
    if condition != "control" and not all(t.strip() for t in texts):
        raise LmlabError(f"{condition} {feed.feed_id}: every post needs its intervention")
    return feed_row(feed, texts)


def write_condition_file(folder: str | Path, condition: str, rows: Sequence[dict[str, str]],
                         grouped: bool = False) -> Path:
    """Write a condition's filled rows (``group`` column first when `grouped`)."""
    cols = (("group",) if grouped else ()) + ("feed_id", *WIDE_COLUMNS)
    path = condition_file(folder, condition)
    write_csv(path, cols, rows)
    return path


def template_rows(condition: str, feeds: Sequence[Feed]) -> list[dict[str, str]]:
    """Filled rows of a template condition (control, label, generic-human, generic-ai)."""
    if condition not in TEMPLATE_CONDITIONS:
        raise LmlabError(f"{condition!r} is not a template condition")
    return [fill_feed(condition, f, [intervention(condition, p) for p in f.posts]) for f in feeds]


def read_condition_file(path: Path, feeds: Mapping[str, Feed]) -> dict[tuple[str, str], list[str]]:
    """Texts of a filled condition file: (feed_id, group key or '') -> five texts.

    Every row must name a known feed and repeat its posts exactly (headline, source and label),
    so a condition file cannot silently show another feed's texts.
    """
    from lmlab.studies.misinfo_eval.data import feeds_from_rows

    cols, rows = _read_csv(path)
    if "feed_id" not in cols:
        raise LmlabError(f"{path}: needs a feed_id column")
    out: dict[tuple[str, str], list[str]] = {}
    for no, (row, parsed) in enumerate(zip(rows, feeds_from_rows(rows, f"{path}: ", unique=False),
                                           strict=True),
                                       start=2):
        ref = feeds.get(parsed.feed_id)
        if ref is None:
            raise LmlabError(f"{path}:{no}: unknown feed {parsed.feed_id!r}")
        for a, b in zip(ref.posts, parsed.posts, strict=True):
            if (a.headline, a.source, a.label) != (b.headline, b.source, b.label):
                raise LmlabError(f"{path}:{no}: post {a.post_id} differs from the feed file")
        group = (row.get("group") or "").strip()
        if group:
            Demographics.from_key(group)
        texts = [(row.get(f"explanation{i}") or "") for i in range(1, POSTS_PER_FEED + 1)]
        if path.stem != "control" and not all(t.strip() for t in texts):
            raise LmlabError(f"{path}:{no}: an explanation slot is empty")
        if (parsed.feed_id, group) in out:
            raise LmlabError(f"{path}:{no}: feed {parsed.feed_id} repeated for group {group!r}")
        out[(parsed.feed_id, group)] = texts
    return out
