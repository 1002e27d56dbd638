"""Feeds, group keys, synthetic feeds, condition texts and condition files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from lmlab.errors import LmlabError
from lmlab.studies.misinfo_eval import conditions as C
from lmlab.studies.misinfo_eval.data import (
    WIDE_COLUMNS,
    Demographics,
    load_feeds,
    parse_label,
    write_feeds,
)
from lmlab.studies.misinfo_eval.synthetic import synthetic_feeds


def test_synthetic_feeds_are_seeded_balanced_and_distinct():
    a, b = synthetic_feeds(6, seed=3), synthetic_feeds(6, seed=3)
    assert a == b
    assert synthetic_feeds(6, seed=4) != a
    posts = [p for f in a for p in f.posts]
    assert len(posts) == 30 and sum(p.label for p in posts) == 15
    assert len({p.headline for p in posts}) == 30
    assert all(len(f.posts) == 5 for f in a)


def test_feed_file_round_trips_in_the_release_layout(tmp_path):
    feeds = synthetic_feeds(3, seed=0)
    write_feeds(tmp_path / "feeds.csv", feeds)
    header = next(csv.reader(io.StringIO(Path(tmp_path / "feeds.csv").read_text())))
    assert header == ["feed_id", *WIDE_COLUMNS]
    assert load_feeds(tmp_path / "feeds.csv") == feeds


def test_release_layout_without_feed_id_and_uppercase_labels(tmp_path):
    row = {c: "" for c in WIDE_COLUMNS}
    for i in range(1, 6):
        row.update({f"headline{i}": f"H{i}", f"source{i}": "X.COM", f"time{i}": str(i + 1),
                    f"label{i}": "TRUE" if i % 2 else "FALSE"})
    with open(tmp_path / "f.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=WIDE_COLUMNS)
        w.writeheader()
        w.writerow(row)
    (feed,) = load_feeds(tmp_path / "f.csv")
    assert feed.feed_id == "feed-1"
    assert [p.label for p in feed.posts] == [True, False, True, False, True]


@pytest.mark.parametrize("bad,msg", [("label3", "label"), ("time2", "integer")])
def test_malformed_feed_rows_name_the_column(tmp_path, bad, msg):
    feeds = synthetic_feeds(1)
    write_feeds(tmp_path / "f.csv", feeds)
    rows = list(csv.DictReader(io.StringIO(Path(tmp_path / "f.csv").read_text())))
    rows[0][bad] = "maybe"
    with open(tmp_path / "f.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(LmlabError, match=msg):
        load_feeds(tmp_path / "f.csv")


def test_labels_parse_in_any_case_and_reject_junk():
    assert parse_label("TRUE") is True and parse_label("true") is True
    assert parse_label("False") is False
    with pytest.raises(LmlabError):
        parse_label("mostly")


def test_group_key_parses_into_the_five_attributes():
    g = Demographics.from_key("conservative_white_college_male_18-29")
    assert (g.politics, g.race, g.education, g.gender, g.age) == (
        "conservative", "white", "college", "male", "18-29")
    assert g.key() == "conservative_white_college_male_18-29"
    for bad in ("conservative_white_male_18-29", "a_b_c_d_e_f", "a__c_d_e"):
        with pytest.raises(LmlabError, match="5 fields"):
            Demographics.from_key(bad)
    with pytest.raises(LmlabError, match="politics"):
        Demographics.from_key("green_white_college_male_18-29").validate_choices()


def test_template_texts_are_byte_stable():
    feed = synthetic_feeds(1, seed=0)[0]
    t = next(p for p in feed.posts if p.label)
    f = next(p for p in feed.posts if not p.label)
    assert C.intervention("control", t) == ""
    assert C.intervention("label", t) == "This headline is true."
    assert C.intervention("label", f) == "This headline is false."
    assert C.intervention("generic-human", t) == (
        "This headline is true.\nThis headline has been verified by non-partisan fact-checkers.")
    assert C.intervention("generic-ai", f) == (
        "This headline is false.\nThis headline has been refuted by an AI model trained on a "
        "large-scale corpus of web data.")
    assert C.intervention("llm", t, " It checks out. ") == "This headline is true.\nIt checks out."


def test_mrf_wording_follows_the_label_not_its_case():
    # The release compared 'TRUE' with 'true', so every post got the "manipulate" text.
    assert C.mrf_text(True, "vaccines work", "get vaccinated.") == (
        "This headline is true.\nThis headline is trying to persuade readers that vaccines work. "
        "It is compelling readers to get vaccinated.")
    assert "manipulate readers by implying that" in C.mrf_text(False, "x", "y")
    assert "persuade" not in C.mrf_text(False, "x", "y")


def test_prompts_are_deterministic_and_personalized():
    post = synthetic_feeds(1, seed=0)[0].posts[0]
    g = Demographics.from_key("liberal_black_postgraduate_female_45-64")
    p = C.personalized_prompt(post, g)
    assert p == C.personalized_prompt(post, g)
    assert f"'{post.headline}' is '{'true' if post.label else 'false'}' that will appeal" in p
    assert "a postgraduate, female, black 45-64 year old reader with liberal political" in p
    assert "Do not mention that you are AI" in C.explanation_prompt(post)
    assert C.article("educated") == "an"


def test_condition_files_fill_all_five_posts_and_keep_the_layout(tmp_path):
    feeds = synthetic_feeds(2, seed=1)
    for cond in C.TEMPLATE_CONDITIONS:
        path = C.write_condition_file(tmp_path, cond, C.template_rows(cond, feeds))
        rows = list(csv.reader(io.StringIO(Path(path).read_text())))
        assert rows[0] == ["feed_id", *WIDE_COLUMNS]
        assert all(len(r) == len(rows[0]) for r in rows)
        texts = C.read_condition_file(path, {f.feed_id: f for f in feeds})
        for f in feeds:
            got = texts[(f.feed_id, "")]
            assert len(got) == 5
            assert all(t for t in got) == (cond != "control")
            if cond != "control":
                assert got == [C.intervention(cond, p) for p in f.posts]


def test_condition_file_that_disagrees_with_the_feeds_is_rejected(tmp_path):
    feeds = synthetic_feeds(2, seed=1)
    rows = C.template_rows("label", feeds)
    rows[1]["headline3"] = "Something else entirely"
    path = C.write_condition_file(tmp_path, "label", rows)
    with pytest.raises(LmlabError, match="differs"):
        C.read_condition_file(path, {f.feed_id: f for f in feeds})
    rows = C.template_rows("label", feeds)
    rows[0]["explanation5"] = ""
    path = C.write_condition_file(tmp_path, "label", rows)
    with pytest.raises(LmlabError, match="empty"):
        C.read_condition_file(path, {f.feed_id: f for f in feeds})
