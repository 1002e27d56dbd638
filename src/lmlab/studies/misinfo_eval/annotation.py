"""The explanation annotation sheet and its statistics.

The release's `exp_annot.csv` holds one LLM explanation per row with five yes/no questions. Its
statistics keep a row unless it is empty or its first field contains "Misleading", count an
answer as yes when it reads "yes" or "true" in any case (anything else, blank included, is no),
and report the percentage of yes over the kept rows. On the release's file that keeps 373 of 460
rows: 24.13 / 1.07 / 99.73 / 79.09 / 95.98%. `annotation_stats` computes exactly that;
`write_sheet` writes a blank sheet in the same layout for new explanations.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lmlab.errors import LmlabError
from lmlab.studies.misinfo_eval.data import label_word, write_csv

QUESTIONS = (
    ("inaccurate", "Inaccurate reasoning (Yes/No)"),
    ("opinion", "Explanation states opinion (Yes/No)"),
    ("commonsense", "Explanation uses commonsense reasoning (Yes/No)"),
    ("events", "Explanation uses knowledge of specific events (Yes/No)"),
    ("domain", "Explanation uses domain knowledge (Yes/No)"),
)
SHEET_COLUMNS = ("image", "source", "headline", "label", "explanation", *(q for _, q in QUESTIONS))
# The release's numbers, for the claim that they reproduce on its file.
PAPER_ROWS = 373
PAPER_PERCENT = {"inaccurate": 24.13, "opinion": 1.07, "commonsense": 99.73, "events": 79.09,
                 "domain": 95.98}


@dataclass(frozen=True)
class AnnotationStats:
    """Rows read, rows kept, and per question the yes count and percentage of kept rows."""

    rows: int
    kept: int
    yes: dict[str, int]

    @property
    def percent(self) -> dict[str, float]:
        return {k: (100.0 * v / self.kept if self.kept else float("nan")) for k, v in self.yes.items()}

    def rounded(self, digits: int = 2) -> dict[str, float]:
        return {k: round(v, digits) for k, v in self.percent.items()}


def _is_yes(v: str, strip: bool) -> bool:
    return (v.strip() if strip else v).lower() in ("yes", "true")


def annotation_stats(path: str | Path, *, strip: bool = False) -> AnnotationStats:
    """The annotation statistics of a sheet in the release's layout (see the module docstring).

    The release does not strip cells, so " Yes" (with a leading space) counts as no; that is the
    default here, which reproduces its numbers exactly. `strip=True` counts it as yes (on the
    release's file one opinion cell reads " Yes": 1.34% instead of 1.07%).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LmlabError(f"{path}: file not found") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise LmlabError(f"{path}: empty file")
    header, body = rows[0], rows[1:]
    missing = [q for _, q in QUESTIONS if q not in header]
    if missing:
        raise LmlabError(f"{path}: missing column(s) {', '.join(missing)}")
    cols = {k: header.index(q) for k, q in QUESTIONS}
    yes = dict.fromkeys(cols, 0)
    kept = 0
    for no, row in enumerate(body, start=2):
        if not row or "Misleading" in row[0]:
            continue
        if len(row) <= max(cols.values()):
            raise LmlabError(f"{path}:{no}: {len(row)} fields, expected {len(header)}")
        kept += 1
        for k, c in cols.items():
            yes[k] += _is_yes(row[c], strip)
    return AnnotationStats(rows=len(body), kept=kept, yes=yes)


def write_sheet(path: str | Path, items: Sequence[tuple[object, str]]) -> Path:
    """A blank annotation sheet: one row per (post, explanation), the five questions empty."""
    rows = []
    for post, text in items:
        rows.append({"image": post.image_url, "source": post.source, "headline": post.headline,
                     "label": label_word(post.label).capitalize(), "explanation": text,
                     **{q: "" for _, q in QUESTIONS}})
    write_csv(path, SHEET_COLUMNS, rows)
    return Path(path)
