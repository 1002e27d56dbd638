"""Scoring a response table: accuracy per condition, gains over control, subgroups, tests.

Input: the rows of a response table (`data.read_responses`, the web app's export, or the
simulated participants), one per (participant, post). Accuracy is the share of posts labelled
correctly (an unreadable simulated answer counts as wrong, and the invalid rate is reported).

* **Intervals** are percentile bootstraps over *participants* (a cluster bootstrap: a resample
  draws whole participants, so a participant's five answers stay together), one joint resample
  for every condition, so between- and within-subject designs are both handled.
* **Gain over control**: absolute (accuracy points) and relative (gain / control accuracy).
  The abstract's "up to 41.72%" does not say which of the two it is, nor over which baseline;
  the release's code computes neither. Both are reported here, named apart.
* **Test**: a linear probability model ``correct ~ C(condition)`` (control the reference) with
  standard errors clustered two ways, by participant and by post (statsmodels), so neither
  a participant's nor a headline's repeated answers count as independent evidence.
* **Preference**: the share of "personalized" among the answers that name a preferred
  explanation (personalized vs generic).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmlab.errors import LmlabError
from lmlab.stats import Interval
from lmlab.studies.misinfo_eval.conditions import CONDITIONS, LABEL_BEARING
from lmlab.studies.misinfo_eval.data import ATTRIBUTES

COMPARISONS = (("label", "control"), ("llm", "label"), ("personalized", "llm"),
               ("llm", "generic-ai"), ("personalized", "label"))


def frame(rows: Sequence[dict[str, Any]]):
    """The response rows as a pandas DataFrame with the columns scoring needs."""
    import pandas as pd

    df = pd.DataFrame(list(rows))
    for c in ("participant_id", "condition", "post_id", "correct"):
        if c not in df.columns:
            raise LmlabError(f"response table has no {c!r} column")
    if df.empty:
        raise LmlabError("response table is empty")
    df["correct"] = df["correct"].astype(bool)
    if "response" not in df.columns:
        df["response"] = True
    if "preference" not in df.columns:
        df["preference"] = ""
    df["preference"] = df["preference"].fillna("").astype(str)
    return df


def _ordered(conds: Sequence[str]) -> list[str]:
    known = [c for c in CONDITIONS if c in conds]
    return known + sorted(c for c in conds if c not in CONDITIONS)


class ClusterBootstrap:
    """Joint participant-cluster bootstrap of per-condition accuracies.

    ``S[p, c]`` correct answers and ``N[p, c]`` answers of participant p in condition c; draw
    b weights each participant by how often resample b picked it, so every resampled accuracy
    is ``(w @ S) / (w @ N)``.
    """

    def __init__(self, df, conditions: Sequence[str], n_boot: int, seed: int):
        pids = sorted(df["participant_id"].unique())
        self.conditions = list(conditions)
        pi = {p: i for i, p in enumerate(pids)}
        ci = {c: j for j, c in enumerate(self.conditions)}
        self.S = np.zeros((len(pids), len(self.conditions)))
        self.N = np.zeros_like(self.S)
        rows = df["participant_id"].map(pi).to_numpy()
        cols = df["condition"].map(ci).to_numpy()
        np.add.at(self.S, (rows, cols), df["correct"].to_numpy(dtype=float))
        np.add.at(self.N, (rows, cols), 1.0)
        rng = np.random.default_rng(seed)
        self.W = rng.multinomial(len(pids), np.full(len(pids), 1.0 / len(pids)), size=n_boot)

    def point(self, c: str) -> float:
        j = self.conditions.index(c)
        return float(self.S[:, j].sum() / self.N[:, j].sum())

    def draws(self, cs: Sequence[str]) -> np.ndarray:
        """Resampled pooled accuracy over the conditions `cs` (NaN where a resample has none)."""
        js = [self.conditions.index(c) for c in cs]
        s = self.W @ self.S[:, js].sum(1)
        n = self.W @ self.N[:, js].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return s / n

    def pooled(self, cs: Sequence[str]) -> float:
        js = [self.conditions.index(c) for c in cs]
        return float(self.S[:, js].sum() / self.N[:, js].sum())


def _interval(value: float, draws: np.ndarray, level: float = 0.95) -> Interval:
    d = draws[np.isfinite(draws)]
    if d.size == 0 or not math.isfinite(value):
        return Interval(value, math.nan, math.nan, level)
    a = (1 - level) / 2
    return Interval(value, float(np.quantile(d, a)), float(np.quantile(d, 1 - a)), level)


def _put(m: dict[str, Any], key: str, iv: Interval) -> None:
    m[f"{key}.mean"], m[f"{key}.ci_lo"], m[f"{key}.ci_hi"] = iv.value, iv.lo, iv.hi


def cluster_test(df) -> dict[str, Any]:
    """Two-way cluster-robust linear probability model: condition effects against control."""
    import pandas as pd
    import statsmodels.formula.api as smf

    out: dict[str, Any] = {}
    if "control" not in set(df["condition"]) or df["condition"].nunique() < 2:
        out["test.status"] = "needs control and another condition"
        return out
    d = df.assign(y=df["correct"].astype(float))
    groups = np.column_stack([pd.factorize(d["participant_id"])[0], pd.factorize(d["post_id"])[0]])
    try:
        fit = smf.ols("y ~ C(condition, Treatment('control'))", data=d).fit(
            cov_type="cluster", cov_kwds={"groups": groups})
    except (ValueError, np.linalg.LinAlgError) as e:
        out["test.status"] = f"failed: {e}"
        return out
    out["test.status"] = "ok"
    for name in fit.params.index:
        if "[T." not in name:
            continue
        c = name.split("[T.", 1)[1].rstrip("]")
        out[f"test.{c}.coef"] = float(fit.params[name])
        out[f"test.{c}.se"] = float(fit.bse[name])
        out[f"test.{c}.p"] = float(fit.pvalues[name])
    return out


def score(rows: Sequence[dict[str, Any]], *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Every number of the scoring, as flat dotted metrics (see the module docstring)."""
    df = frame(rows)
    conds = _ordered(sorted(df["condition"].unique()))
    bs = ClusterBootstrap(df, conds, n_boot, seed)
    m: dict[str, Any] = {"responses": len(df), "participants": int(df["participant_id"].nunique()),
                         "invalid.rate": float(df["response"].isna().mean())}
    for c in conds:
        sub = df[df["condition"] == c]
        _put(m, f"accuracy.{c}", _interval(bs.point(c), bs.draws([c])))
        m[f"accuracy.{c}.n"] = len(sub)
        m[f"accuracy.{c}.participants"] = int(sub["participant_id"].nunique())
    if "control" in conds:
        base, base_d = bs.point("control"), bs.draws(["control"])
        for c in conds:
            if c == "control":
                continue
            d = bs.draws([c])
            _put(m, f"gain_abs.{c}", _interval(bs.point(c) - base, d - base_d))
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = (d - base_d) / base_d
            _put(m, f"gain_rel.{c}", _interval((bs.point(c) - base) / base if base else math.nan,
                                                rel))
        bearing = [c for c in conds if c in LABEL_BEARING]
        if bearing:
            _put(m, "gain_abs.label_bearing",
                 _interval(bs.pooled(bearing) - base, bs.draws(bearing) - base_d))
    for a, b in COMPARISONS:
        if a in conds and b in conds:
            _put(m, f"compare.{a}_vs_{b}",
                 _interval(bs.point(a) - bs.point(b), bs.draws([a]) - bs.draws([b])))
    for attr in ATTRIBUTES:
        if attr not in df.columns:
            continue
        for (val, c), g in df.groupby([attr, "condition"]):
            if str(val):
                m[f"subgroup.{attr}.{val}.{c}.accuracy"] = float(g["correct"].mean())
                m[f"subgroup.{attr}.{val}.{c}.n"] = len(g)
    m.update(cluster_test(df))
    pref = df[df["preference"].isin(["personalized", "generic"])]
    if len(pref):
        pp = pref.assign(correct=pref["preference"] == "personalized", condition="preference")
        pb = ClusterBootstrap(pp, ["preference"], n_boot, seed + 1)
        _put(m, "preference.personalized", _interval(pb.point("preference"),
                                                     pb.draws(["preference"])))
        m["preference.personalized.n"] = len(pref)
    return m


def subgroup_table(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The subgroup metrics as rows (attribute, value, condition, accuracy, n) for a CSV."""
    rows = []
    for k, v in metrics.items():
        if k.startswith("subgroup.") and k.endswith(".accuracy"):
            _, attr, val, cond, _ = k.split(".", 4)
            rows.append({"attribute": attr, "value": val, "condition": cond, "accuracy": v,
                         "n": metrics[k[: -len("accuracy")] + "n"]})
    return rows
