"""Feeds of posts, participants and their responses: the study's data model, files and checks.

A *feed* is five posts shown together on a mock social-media page. Each `Post` has a headline,
a source domain, an image URL, an integer `time` (the release stores 2-23; its unit is not
documented) and a gold label: True when the headline is reliable (true), False when not.

Feed files use the release's wide layout, one feed per row, 30 columns::

    headline1..5, img1..5, source1..5, explanation1..5, time1..5, label1..5

with labels written ``TRUE``/``FALSE`` (any case is accepted on input and normalized to a bool,
which is how the release's lowercase-``true`` comparison bug is avoided everywhere downstream).
A feed's id is ``feed-<row number>`` (1-based) unless the file has a ``feed_id`` column. The
condition files written by `conditions.write_condition_file` keep this layout and fill all five
explanation slots (the release filled four and dropped a column).

Responses are one row per (participant, post), in the CSV that `export` writes and `scoring`
reads (`RESPONSE_COLUMNS`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmlab.errors import LmlabError

POSTS_PER_FEED = 5
WIDE_FIELDS = ("headline", "img", "source", "explanation", "time", "label")
WIDE_COLUMNS = tuple(f"{f}{i}" for f in WIDE_FIELDS for i in range(1, POSTS_PER_FEED + 1))

# The demographic attributes the personalized condition tailors to, in the order of the
# release's group key `politics_race_education_gender_age`, and the web form's choices.
ATTRIBUTES = ("politics", "race", "education", "gender", "age")
CHOICES: dict[str, tuple[str, ...]] = {
    "politics": ("liberal", "moderate", "conservative"),
    "race": ("white", "black", "hispanic", "asian", "other"),
    "education": ("high-school", "college", "postgraduate"),
    "gender": ("male", "female", "nonbinary"),
    "age": ("18-29", "30-44", "45-64", "65+"),
}

RESPONSE_COLUMNS = (
    "participant_id", "source", *ATTRIBUTES, "condition", "feed_id", "position", "post_id",
    "gold", "response", "correct", "share", "preference", "shown_at", "answered_at",
)


def parse_label(value: str, where: str = "") -> bool:
    """A gold label from a file: TRUE/FALSE (any case), yes/no or 1/0; anything else is an error."""
    v = str(value).strip().lower()
    if v in ("true", "yes", "1"):
        return True
    if v in ("false", "no", "0"):
        return False
    raise LmlabError(f"{where}label {value!r} is not TRUE or FALSE")


def label_word(label: bool) -> str:
    """The label as the interventions write it: 'true' or 'false'."""
    return "true" if label else "false"


@dataclass(frozen=True)
class Post:
    """One headline of a feed. `label` is True for a reliable (true) headline."""

    post_id: str
    headline: str
    source: str
    label: bool
    image_url: str = ""
    time: int = 0

    def __post_init__(self) -> None:
        if not self.headline.strip():
            raise LmlabError(f"post {self.post_id}: empty headline")
        if not isinstance(self.label, bool):
            raise LmlabError(f"post {self.post_id}: label must be a bool, got {self.label!r}")


@dataclass(frozen=True)
class Feed:
    """Five posts shown together."""

    feed_id: str
    posts: tuple[Post, ...]

    def __post_init__(self) -> None:
        if len(self.posts) != POSTS_PER_FEED:
            raise LmlabError(f"feed {self.feed_id}: {len(self.posts)} posts, expected {POSTS_PER_FEED}")
        ids = [p.post_id for p in self.posts]
        if len(set(ids)) != len(ids):
            raise LmlabError(f"feed {self.feed_id}: repeated post ids {ids}")


@dataclass(frozen=True)
class Demographics:
    """What the personalized condition tailors an explanation to (one of `CHOICES` each)."""

    politics: str
    race: str
    education: str
    gender: str
    age: str

    def __post_init__(self) -> None:
        for a in ATTRIBUTES:
            v = getattr(self, a)
            if not isinstance(v, str) or not v or "_" in v:
                raise LmlabError(f"{a} {v!r} must be a non-empty string without '_'")

    def key(self) -> str:
        """The release's group key: ``politics_race_education_gender_age``."""
        return "_".join(getattr(self, a) for a in ATTRIBUTES)

    @classmethod
    def from_key(cls, key: str) -> Demographics:
        """Parse ``politics_race_education_gender_age`` (e.g. ``conservative_white_college_male_18-29``).

        The release reads politics, race and education from the first three fields and gender
        and age from the last two; a key with any other number of fields is rejected here
        rather than silently mis-assigned.
        """
        parts = str(key).split("_")
        if len(parts) != len(ATTRIBUTES) or not all(parts):
            raise LmlabError(
                f"group key {key!r} must have 5 fields politics_race_education_gender_age"
            )
        return cls(*parts)

    def validate_choices(self) -> Demographics:
        """Raise unless every attribute is one of the web form's `CHOICES`."""
        for a in ATTRIBUTES:
            if getattr(self, a) not in CHOICES[a]:
                raise LmlabError(f"{a} {getattr(self, a)!r} is not one of {', '.join(CHOICES[a])}")
        return self


@dataclass(frozen=True)
class Participant:
    """Someone (or a simulated persona) who reads one feed under one condition."""

    participant_id: str
    demographics: Demographics
    condition: str
    feed_id: str
    source: str = "human"  # "human", or "simulated:<model>" for LLM personas
    beliefs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """One post's answer: the reliability label (True: reliable) and optional share intent."""

    participant_id: str
    condition: str
    feed_id: str
    position: int
    post_id: str
    gold: bool
    response: bool | None  # None: the answer could not be read (simulated participants only)
    share: bool | None = None
    preference: str = ""  # "personalized" / "generic" where asked, else ""
    shown_at: str = ""
    answered_at: str = ""

    @property
    def correct(self) -> bool:
        return self.response is not None and self.response == self.gold


# -- feed files ---------------------------------------------------------------------------------
def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LmlabError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise LmlabError(f"{path}: not UTF-8 text ({e})") from None
    reader = csv.DictReader(io.StringIO(text))
    rows = [r for r in reader if any((v or "").strip() for v in r.values() if isinstance(v, str))]
    return list(reader.fieldnames or []), rows


def feeds_from_rows(rows: Sequence[dict[str, str]], where: str = "", unique: bool = True
                    ) -> list[Feed]:
    """Feeds from wide-layout rows (see the module docstring); errors name the row and column.

    `unique`: feed ids must not repeat (a condition file with one row per group repeats them).
    """
    feeds = []
    for no, row in enumerate(rows, start=1):
        at = f"{where}row {no}: "
        missing = [c for c in WIDE_COLUMNS if c not in row and not c.startswith("explanation")]
        if missing:
            raise LmlabError(f"{at}missing column(s) {', '.join(missing)}")
        fid = (row.get("feed_id") or "").strip() or f"feed-{no}"
        posts = []
        for i in range(1, POSTS_PER_FEED + 1):
            t = (row[f"time{i}"] or "0").strip()
            try:
                time = int(t)
            except ValueError:
                raise LmlabError(f"{at}time{i} {t!r} is not an integer") from None
            posts.append(Post(
                post_id=f"{fid}/{i}", headline=row[f"headline{i}"].strip(),
                source=row[f"source{i}"].strip(), image_url=row[f"img{i}"].strip(), time=time,
                label=parse_label(row[f"label{i}"], f"{at}label{i}: "),
            ))
        feeds.append(Feed(fid, tuple(posts)))
    ids = [f.feed_id for f in feeds]
    if unique and len(set(ids)) != len(ids):
        raise LmlabError(f"{where}repeated feed ids")
    return feeds


def load_feeds(path: str | Path) -> list[Feed]:
    """Read a feed file in the release's wide layout (the release's `newsfeed_eval_set.csv`)."""
    path = Path(path)
    _, rows = _read_csv(path)
    if not rows:
        raise LmlabError(f"{path}: no feeds")
    return feeds_from_rows(rows, f"{path}: ")


def feed_row(feed: Feed, explanations: Sequence[str] | None = None) -> dict[str, str]:
    """One feed as a wide-layout row; `explanations` fills the five explanation slots."""
    ex = list(explanations) if explanations is not None else [""] * POSTS_PER_FEED
    if len(ex) != POSTS_PER_FEED:
        raise LmlabError(f"feed {feed.feed_id}: {len(ex)} explanations, expected {POSTS_PER_FEED}")
    row: dict[str, str] = {"feed_id": feed.feed_id}
    for i, p in enumerate(feed.posts, start=1):
        row[f"headline{i}"] = p.headline
        row[f"img{i}"] = p.image_url
        row[f"source{i}"] = p.source
        row[f"explanation{i}"] = ex[i - 1]
        row[f"time{i}"] = str(p.time)
        row[f"label{i}"] = "TRUE" if p.label else "FALSE"
    return row


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[dict[str, object]]) -> None:
    """Write rows as CSV atomically (LF line ends, every field of `columns`, nothing else)."""
    from lmlab.runs import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="raise")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_text(path, buf.getvalue())


def write_feeds(path: str | Path, feeds: Sequence[Feed]) -> None:
    """Write feeds in the wide layout (with a leading feed_id column)."""
    write_csv(path, ("feed_id", *WIDE_COLUMNS), (feed_row(f) for f in feeds))


# -- responses ----------------------------------------------------------------------------------
def _bool_cell(v: str, where: str, optional: bool) -> bool | None:
    s = (v or "").strip().lower()
    if s == "" and optional:
        return None
    if s in ("1", "true", "yes", "reliable"):
        return True
    if s in ("0", "false", "no", "unreliable"):
        return False
    raise LmlabError(f"{where}: {v!r} is not a yes/no value")


def response_row(r: Response, p: Participant) -> dict[str, object]:
    """One response as a row of the response table (`RESPONSE_COLUMNS`)."""
    def b(x: bool | None) -> str:
        return "" if x is None else str(int(x))

    return {
        "participant_id": r.participant_id, "source": p.source,
        **{a: getattr(p.demographics, a) for a in ATTRIBUTES},
        "condition": r.condition, "feed_id": r.feed_id, "position": r.position,
        "post_id": r.post_id, "gold": b(r.gold), "response": b(r.response),
        "correct": b(r.correct), "share": b(r.share), "preference": r.preference,
        "shown_at": r.shown_at, "answered_at": r.answered_at,
    }


def read_responses(path: str | Path) -> list[dict[str, object]]:
    """Read and validate a response table; `correct` is recomputed from gold and response.

    Returns plain dicts (demographics included) that `scoring` turns into a data frame.
    """
    path = Path(path)
    cols, rows = _read_csv(path)
    need = ("participant_id", "condition", "post_id", "gold", "response")
    missing = [c for c in need if c not in cols]
    if missing:
        raise LmlabError(f"{path}: missing column(s) {', '.join(missing)}")
    out = []
    seen: set[tuple[str, str]] = set()
    for no, row in enumerate(rows, start=2):
        at = f"{path}:{no}"
        pid, post = (row.get("participant_id") or "").strip(), (row.get("post_id") or "").strip()
        if not pid or not post or not (row.get("condition") or "").strip():
            raise LmlabError(f"{at}: empty participant_id, post_id or condition")
        if (pid, post) in seen:
            raise LmlabError(f"{at}: participant {pid} answers post {post} twice")
        seen.add((pid, post))
        gold = _bool_cell(row["gold"], f"{at} gold", optional=False)
        resp = _bool_cell(row["response"], f"{at} response", optional=True)
        rec: dict[str, object] = {k: (v or "").strip() for k, v in row.items() if k is not None}
        rec.update(gold=gold, response=resp, correct=resp is not None and resp == gold,
                   share=_bool_cell(row.get("share", ""), f"{at} share", optional=True))
        out.append(rec)
    if not out:
        raise LmlabError(f"{path}: no responses")
    return out


def finite(x: float | None) -> bool:
    """Whether x is a finite number."""
    return x is not None and math.isfinite(x)
