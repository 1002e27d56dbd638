"""`LMLAB_TORCH_THREADS` overrides every job's own thread count; `compare_metrics` finds the
metrics that differ between thread counts (the end-to-end comparison is in
test_reproduce_order.py)."""

from __future__ import annotations

import math

import pytest

from lmlab.errors import LmlabError


def test_the_forced_count_wins_over_the_jobs_own(monkeypatch):
    import torch

    from lmlab.executor import THREADS_ENV, job_threads, torch_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(THREADS_ENV, "2")
        job_threads(1)
        assert torch.get_num_threads() == 2
        with torch_threads(1):
            assert torch.get_num_threads() == 2
        monkeypatch.delenv(THREADS_ENV)
        job_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_forced_count_is_one_line(monkeypatch, value):
    from lmlab.executor import THREADS_ENV, job_threads

    monkeypatch.setenv(THREADS_ENV, value)
    with pytest.raises(LmlabError, match=THREADS_ENV):
        job_threads(1)


def test_compare_metrics_counts_differences_and_skips_timing():
    from lmlab.threadcheck import compare_metrics

    one = {"a.acc": 0.5, "a.loss": 1.0, "a.label": "PAA", "a.nan": math.nan, "a.wall_s": 3.0,
           "only.one": 1}
    two = {"a.acc": 0.5, "a.loss": 1.0 + 1e-12, "a.label": "mixed", "a.nan": math.nan,
           "a.wall_s": 9.0}
    m = compare_metrics({1: one, 2: two})
    assert m["compared"] == 5  # a.wall_s is timing
    assert m["differ"] == 3 and m["max_rel"] == 1.0
    assert [r["key"] for r in m["largest"]] == ["a.label", "only.one", "a.loss"]
    assert m["largest"][2]["rel"] == pytest.approx(1e-12, rel=1e-3)
    assert m["largest"][1]["values"] == {1: 1, 2: None}
    assert compare_metrics({1: one, 2: dict(one)})["differ"] == 0
