"""The annotation statistics reproduce exactly on a synthetic sheet with known counts."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from lmlab.errors import LmlabError
from lmlab.studies.misinfo_eval.annotation import (
    PAPER_PERCENT,
    PAPER_ROWS,
    QUESTIONS,
    SHEET_COLUMNS,
    annotation_stats,
    write_sheet,
)
from lmlab.studies.misinfo_eval.synthetic import synthetic_feeds

# Yes counts over 373 kept rows that give the paper's percentages: 90, 4, 372, 295, 358.
KNOWN_YES = {"inaccurate": 90, "opinion": 4, "commonsense": 372, "events": 295, "domain": 358}


def _sheet(path, kept=PAPER_ROWS, excluded=87, yes=KNOWN_YES, blank_lines=3):
    """A synthetic sheet: `kept` rows with the given yes counts in mixed spellings (Yes, TRUE,
    true), the rest No/blank/' Yes'; `excluded` rows marked Misleading; some blank lines."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SHEET_COLUMNS)
        spell = ["Yes", "TRUE", "yes", "true"]
        for i in range(kept):
            ans = []
            for j, (k, _) in enumerate(QUESTIONS):
                if i < yes[k]:
                    ans.append(spell[(i + j) % 4])
                else:  # not yes: 'No', blank, and a space-prefixed ' Yes' (the release: no)
                    ans.append(["No", "", " Yes", "no"][(i + j) % 4])
            w.writerow([f"True/x/{i}.jpg", "SRC", f"Headline {i}", "True", "Because.", *ans])
            if i < blank_lines:
                w.writerow([])
        for i in range(excluded):
            w.writerow([f"Misleading/{i}.jpg", "SRC", "H", "False", "E", "Yes", "Yes", "Yes",
                        "Yes", "Yes"])


def test_paper_statistics_reproduce_exactly_on_known_counts(tmp_path):
    _sheet(tmp_path / "a.csv")
    s = annotation_stats(tmp_path / "a.csv")
    assert s.kept == PAPER_ROWS
    assert s.yes == KNOWN_YES
    assert s.rounded(2) == PAPER_PERCENT


def test_statistics_follow_the_counts_not_the_paper(tmp_path):
    yes = {"inaccurate": 10, "opinion": 0, "commonsense": 50, "events": 25, "domain": 49}
    _sheet(tmp_path / "b.csv", kept=50, excluded=5, yes=yes)
    s = annotation_stats(tmp_path / "b.csv")
    assert s.kept == 50 and s.yes == yes
    assert s.percent == {k: 2.0 * v for k, v in yes.items()}


def test_space_prefixed_yes_counts_only_when_stripping(tmp_path):
    _sheet(tmp_path / "c.csv", kept=8, excluded=0,
           yes={k: 0 for k, _ in QUESTIONS}, blank_lines=0)
    plain, stripped = annotation_stats(tmp_path / "c.csv"), annotation_stats(tmp_path / "c.csv",
                                                                             strip=True)
    assert sum(plain.yes.values()) == 0
    assert sum(stripped.yes.values()) == 10  # one ' Yes' in every fourth cell of 8 x 5


def test_missing_question_column_is_one_clear_error(tmp_path):
    (tmp_path / "d.csv").write_text("image,source,headline\nx,y,z\n")
    with pytest.raises(LmlabError, match="Inaccurate reasoning"):
        annotation_stats(tmp_path / "d.csv")


def test_blank_sheet_has_the_five_questions(tmp_path):
    feed = synthetic_feeds(1)[0]
    path = write_sheet(tmp_path / "sheet.csv", [(p, f"Because {i}.") for i, p in enumerate(feed.posts)])
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert len(rows) == 5
    assert [q for _, q in QUESTIONS] == list(rows[0])[5:]
    assert all(r[q] == "" for r in rows for _, q in QUESTIONS)
    assert annotation_stats(path).kept == 5 and sum(annotation_stats(path).yes.values()) == 0
