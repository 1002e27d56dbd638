"""Scoring: accuracies, gains, intervals, the cluster-robust test, preference, the CSV round trip."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.studies.misinfo_eval.data import RESPONSE_COLUMNS, read_responses, write_csv
from lmlab.studies.misinfo_eval.scoring import score, subgroup_table


def _table(acc: dict[str, float], participants: int = 30, seed: int = 0):
    """Participants answer 5 posts each; in condition c each answer is right with prob acc[c]."""
    rng = np.random.default_rng(seed)
    rows = []
    for c, p in acc.items():
        for k in range(participants):
            pid = f"{c}-{k}"
            for pos in range(5):
                gold = bool((k + pos) % 2)
                right = rng.random() < p
                rows.append({"participant_id": pid, "condition": c, "post_id": f"f{k % 3}/{pos}",
                             "gold": gold, "response": gold if right else not gold,
                             "correct": right, "politics": ["liberal", "conservative"][k % 2],
                             "preference": ("personalized" if k % 4 else "generic")
                             if c == "personalized" else ""})
    return rows


def test_exact_accuracies_and_gains():
    rows = []
    for c, right in (("control", 2), ("label", 4)):
        for k in range(4):
            for pos in range(5):
                rows.append({"participant_id": f"{c}{k}", "condition": c, "post_id": f"p{pos}",
                             "correct": pos < right, "response": True})
    m = score(rows, n_boot=200)
    assert m["accuracy.control.mean"] == pytest.approx(0.4)
    assert m["accuracy.label.mean"] == pytest.approx(0.8)
    assert m["gain_abs.label.mean"] == pytest.approx(0.4)
    assert m["gain_rel.label.mean"] == pytest.approx(1.0)
    # every participant of a condition has the same accuracy: the cluster bootstrap is exact
    assert m["accuracy.label.ci_lo"] == m["accuracy.label.ci_hi"] == pytest.approx(0.8)


def test_a_real_effect_is_detected_and_a_null_one_is_not():
    m = score(_table({"control": 0.5, "label": 0.9, "llm": 0.9, "personalized": 0.9}), seed=1)
    assert m["gain_abs.label.ci_lo"] > 0
    assert m["gain_abs.label_bearing.ci_lo"] > 0
    assert m["compare.llm_vs_label.ci_lo"] < 0 < m["compare.llm_vs_label.ci_hi"]
    assert m["test.status"] == "ok"
    assert m["test.label.p"] < 0.01 and m["test.label.coef"] > 0.2
    assert 0.6 < m["preference.personalized.mean"] < 0.9
    assert m["subgroup.politics.liberal.label.n"] == 75
    assert {r["attribute"] for r in subgroup_table(m)} == {"politics"}


def test_response_csv_round_trip(tmp_path):
    rows = _table({"control": 0.5, "label": 0.8}, participants=5)
    full = [{c: r.get(c, "") for c in RESPONSE_COLUMNS} for r in rows]
    for r in full:
        r["gold"], r["response"] = int(r["gold"]), int(r["response"])
        r["correct"] = "junk"  # recomputed from gold and response on reading
    write_csv(tmp_path / "r.csv", RESPONSE_COLUMNS, full)
    back = read_responses(tmp_path / "r.csv")
    assert score(back, n_boot=100) == score(rows, n_boot=100)
