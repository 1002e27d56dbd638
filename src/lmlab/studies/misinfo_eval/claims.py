"""The paper's claims, judged on this run's measurements, and this implementation's checks.

The accuracy claims are measured on **simulated participants** (an LLM answering as personas):
model outputs, never the paper's human result, and every statement says so. A difference holds
only when its 95% participant-cluster bootstrap interval lies above zero.
"""

from __future__ import annotations

from typing import Any

from lmlab.stats import get_metric
from lmlab.studies.misinfo_eval.annotation import PAPER_PERCENT, PAPER_ROWS
from lmlab.study import Check, Claim

SIM = "[simulated participants: model outputs, not the paper's human result] "
NO_SIM = "no simulated participants in this run (simulate=false); the human study is run with " \
         "`lmlab misinfo-eval serve` and scored with `lmlab misinfo-eval score`"


def _diff_claim(m: dict[str, Any], id: str, key: str, statement: str, paper: str,
                need: str) -> Claim:
    v, lo, hi = (get_metric(m, f"sim.{key}.{s}") for s in ("mean", "ci_lo", "ci_hi"))
    if v is None or lo is None or hi is None:
        why = NO_SIM if get_metric(m, "sim.responses") is None else f"{need} not in this run"
        return Claim.untestable(id, SIM + statement, paper, why)
    return Claim.check(id, SIM + statement, paper,
                       f"{v:+.3f} accuracy [95% CI {lo:+.3f}, {hi:+.3f}]", lo > 0)


def claims(config: Any, m: dict[str, Any]) -> list[Claim]:
    out = [
        _diff_claim(m, "label_bearing_beats_control", "gain_abs.label_bearing",
                    "label-bearing interventions raise accuracy over control",
                    "every intervention beats control (Exp. 1) [abstract]",
                    "control and a label-bearing condition"),
        _diff_claim(m, "llm_beats_label", "compare.llm_vs_label",
                    "LLM explanations raise accuracy over the label alone",
                    "LLM explanations are the best interventions, up to 41.72% gain [abstract]",
                    "the llm and label conditions"),
        _diff_claim(m, "personalized_beats_generic", "compare.personalized_vs_llm",
                    "personalized explanations raise accuracy over generic ones",
                    "users were more accurate with personalized explanations (Exp. 2) [abstract]",
                    "the personalized and llm conditions"),
    ]
    p, lo = get_metric(m, "sim.preference.personalized.mean"), get_metric(
        m, "sim.preference.personalized.ci_lo")
    stmt = SIM + "personalized explanations are preferred to generic ones (rate > 0.5)"
    if p is None or lo is None:
        out.append(Claim.untestable("personalized_preferred", stmt,
                                    "users preferred personalized explanations [abstract]",
                                    "no preference answers in this run"))
    else:
        out.append(Claim.check("personalized_preferred", stmt,
                               "users preferred personalized explanations [abstract]",
                               f"{p:.3f} [95% CI {lo:.3f}, "
                               f"{get_metric(m, 'sim.preference.personalized.ci_hi'):.3f}]",
                               lo > 0.5))
    stmt = "the explanation annotation statistics reproduce on the release's exp_annot.csv"
    paper = (f"{PAPER_ROWS} rows; " + " / ".join(f"{v:.2f}" for v in PAPER_PERCENT.values()) + "%")
    if m.get("annotation.status") != "ok":
        out.append(Claim.untestable("annotation_stats", stmt, paper,
                                    str(m.get("annotation.status", "not computed"))))
    else:
        got = {k: round(float(m[f"annotation.{k}.percent"]), 2) for k in PAPER_PERCENT}
        out.append(Claim.check(
            "annotation_stats", stmt, paper,
            f"{m['annotation.kept']} rows; " + " / ".join(f"{v:.2f}" for v in got.values()) + "%",
            m["annotation.kept"] == PAPER_ROWS and got == PAPER_PERCENT))
    return out


def checks(config: Any, m: dict[str, Any]) -> list[Check]:
    out = []
    filled = {k.split(".", 1)[1]: v for k, v in m.items() if k.startswith("filled.")}
    out.append(Check.check("every_post_filled", "every post of every condition has its text",
                           "5 of 5 posts (the release fills 4)",
                           ", ".join(f"{k} {v:.2f}" for k, v in filled.items()) or "none",
                           bool(filled) and all(v == 1.0 for v in filled.values())))
    for kind in ("generic", "personalized"):
        n = get_metric(m, f"explain.{kind}.n")
        if n is None:
            continue
        over, ai = m[f"explain.{kind}.over_limit"], m[f"explain.{kind}.mention_ai"]
        out.append(Check.check(
            f"{kind}_explanations_valid",
            f"{kind} explanations: at most the word limit, never mentioning AI",
            "< 100 words, no AI mention",
            f"{int(n)} written, {m[f'explain.{kind}.regenerated']} regenerated, "
            f"{m[f'explain.{kind}.repaired']} repaired, {m[f'explain.{kind}.failed']} empty; "
            f"max {m[f'explain.{kind}.words_max']} words",
            over == 0 and ai == 0))
    if "mrf.status" in m:
        st = str(m["mrf.status"])
        out.append(Check.check("mrf_clean", "the MRF condition ran or was skipped with a reason",
                               "optional", st, st == "ran" or st.startswith("skipped:")))
    inv = get_metric(m, "sim.invalid.rate")
    if inv is not None:
        out.append(Check.check("simulated_answers_readable",
                               "simulated participants answer reliable/unreliable (< 10% unreadable)",
                               "precondition of the simulated claims", f"{inv:.3f} unreadable",
                               inv < 0.10))
    return out
