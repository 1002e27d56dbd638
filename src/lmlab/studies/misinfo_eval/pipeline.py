"""One run of the study, step by step (called by `MisinfoEvalStudy.run`).

1. the feeds (synthetic, the release's, or a file) and the template conditions' files;
2. generic LLM explanations for every post (``llm``), personalized ones for every group needed
   (``personalized``), checked and regenerated (`explain`), all calls recorded in
   ``llm_record.jsonl`` so the run replays offline (``llm=replay:RUN/llm_record.jsonl``);
3. the MRF condition when its model is given, else skipped with the reason;
4. simulated participants and their scoring (``sim.*`` metrics: model outputs);
5. annotation statistics of an annotation sheet when one is given;
6. figures.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmlab.errors import LmlabError
from lmlab.progress import work_progress
from lmlab.studies.misinfo_eval import conditions as C
from lmlab.studies.misinfo_eval.config import MisinfoEvalConfig
from lmlab.studies.misinfo_eval.data import (
    RESPONSE_COLUMNS,
    Demographics,
    Feed,
    load_feeds,
    response_row,
    write_csv,
    write_feeds,
)


def load_run_feeds(c: MisinfoEvalConfig) -> list[Feed]:
    """The feeds this configuration names."""
    if c.feeds == "synthetic":
        from lmlab.studies.misinfo_eval.synthetic import synthetic_feeds

        return synthetic_feeds(c.n_feeds, c.seed)
    if c.feeds == "file":
        return load_feeds(c.feeds_file)
    from lmlab.studies.misinfo_eval.release import FEEDS_FILE, download

    return load_feeds(download(c.release_dir)[FEEDS_FILE])


def _explain_stats(prefix: str, exps: list, max_words: int) -> dict[str, Any]:
    from lmlab.studies.misinfo_eval.explain import mentions_ai

    if not exps:
        return {}
    words = [e.words for e in exps]
    return {
        f"{prefix}.n": len(exps),
        f"{prefix}.regenerated": sum(e.attempts > 1 for e in exps),
        f"{prefix}.repaired": sum(e.repaired for e in exps),
        f"{prefix}.failed": sum(e.failed for e in exps),
        f"{prefix}.words_mean": sum(words) / len(words),
        f"{prefix}.words_max": max(words),
        f"{prefix}.over_limit": sum(w > max_words for w in words),
        f"{prefix}.mention_ai": sum(mentions_ai(e.text) for e in exps),
    }


def run_study(c: MisinfoEvalConfig, run: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """Do the whole run in the run folder; return the flat metrics."""
    from lmlab.seeding import derive
    from lmlab.studies.misinfo_eval.annotation import write_sheet

    t0 = time.perf_counter()
    m: dict[str, Any] = {}
    feeds = load_run_feeds(c)
    by_id = {f.feed_id: f for f in feeds}
    posts = {p.post_id: p for f in feeds for p in f.posts}
    folder = run.path / "feeds"
    folder.mkdir(parents=True, exist_ok=True)
    write_feeds(folder / "feeds.csv", feeds)
    m["feeds"], m["posts"] = len(feeds), len(posts)
    m["posts.true"] = sum(p.label for p in posts.values())
    conds = list(c.conditions)
    for cond in conds:
        if cond in C.TEMPLATE_CONDITIONS and cond != "control":
            C.write_condition_file(folder, cond, C.template_rows(cond, feeds))

    # -- the MRF condition ----------------------------------------------------------------------
    if "mrf" in conds:
        from lmlab.studies.misinfo_eval.mrf import mrf_texts, unavailable

        why = unavailable(c.mrf_model)
        if why is None:
            texts = mrf_texts(c.mrf_model, list(posts.values()))
            t = dict(zip(posts, texts, strict=True))
            C.write_condition_file(folder, "mrf", [
                C.fill_feed("mrf", f, [t[p.post_id] for p in f.posts]) for f in feeds])
            m["mrf.status"] = "ran"
        else:
            m["mrf.status"] = why
            conds.remove("mrf")
            say(f"mrf condition {why}")

    # -- who will take part (simulated), so we know which groups need explanations -------------
    plan: list[tuple[Demographics, str, str]] = []
    if c.simulate:
        from lmlab.studies.misinfo_eval.simulate import assign_personas, personas

        people = personas(c.participants_per_condition * len(conds), derive(c.seed, "people"))
        plan = assign_personas(people, conds, sorted(by_id), c.seed)
    need_generic = "llm" in conds or ("personalized" in conds and c.preference and c.simulate)
    pairs: list[tuple[str, str]] = []  # (group key, feed id) needing personalized texts
    if "personalized" in conds:
        pairs = [(g, fid) for g in c.groups for fid in sorted(by_id)]
        pairs += [(d.key(), fid) for d, cond, fid in plan if cond == "personalized"]
        pairs = sorted(set(pairs))
    n_personal = sum(len(by_id[fid].posts) for _, fid in pairs)
    n_texts = (len(posts) if need_generic else 0) + n_personal
    lm = None
    if need_generic or pairs or c.simulate:
        from lmlab.llm import get_backend

        say(f"loading {c.llm}")
        lm = get_backend(c.llm, run=run, record=run.path / "llm_record.jsonl")

    # -- explanations ---------------------------------------------------------------------------
    generic: dict[str, str] = {}
    sheet: list[tuple[Any, str]] = []
    t1 = time.perf_counter()
    explaining = contextlib.ExitStack()  # the display lasts while the explanations are written
    explained = explaining.enter_context(work_progress("misinfo-eval: explanations", n_texts,
                                                       "texts"))
    if need_generic and lm is not None:
        say(f"writing {len(posts)} generic explanations")
        items = [(pid, C.explanation_prompt(p)) for pid, p in posts.items()]
        exps = _explain(lm, items, c, derive(c.seed, "generic"), explained)
        generic = {e.key: e.text for e in exps}
        m.update(_explain_stats("explain.generic", exps, c.max_words))
        sheet += [(posts[e.key], e.text) for e in exps]
        if "llm" in conds:
            C.write_condition_file(folder, "llm", [
                C.fill_feed("llm", f, [C.explained_text(p.label, generic[p.post_id])
                                       for p in f.posts]) for f in feeds])
    personal: dict[tuple[str, str], str] = {}
    if pairs and lm is not None:
        items = [(f"{g}|{p.post_id}", C.personalized_prompt(p, Demographics.from_key(g)))
                 for g, fid in pairs for p in by_id[fid].posts]
        say(f"writing {len(items)} personalized explanations for {len({g for g, _ in pairs})} groups")
        exps = _explain(lm, items, c, derive(c.seed, "personalized"), explained)
        for e in exps:
            g, pid = e.key.split("|", 1)
            personal[(g, pid)] = e.text
        m.update(_explain_stats("explain.personalized", exps, c.max_words))
        sheet += [(posts[e.key.split("|", 1)[1]], e.text) for e in exps]
        C.write_condition_file(folder, "personalized", [
            {"group": g, **C.fill_feed("personalized", by_id[fid], [
                C.explained_text(p.label, personal[(g, p.post_id)]) for p in by_id[fid].posts])}
            for g, fid in pairs], grouped=True)
    explaining.close()
    m["timing.explain_s"] = time.perf_counter() - t1
    if sheet:
        write_sheet(run.path / "annotation_sheet.csv", sheet)

    # -- every condition's file is complete (the web app reads them back) ----------------------
    from lmlab.studies.misinfo_eval.web import load_site

    site = load_site(folder, [x for x in conds if x != "personalized" or pairs], c.seed)
    m["site.conditions"] = ",".join(site.conditions)
    for cond in site.conditions:
        if cond == "control":
            continue
        texts = site.texts[cond]
        m[f"filled.{cond}"] = sum(bool(t.strip()) for v in texts.values() for t in v) / (
            5 * len(texts))

    # -- simulated participants -----------------------------------------------------------------
    if c.simulate and lm is not None:
        from lmlab.studies.misinfo_eval.scoring import score, subgroup_table
        from lmlab.studies.misinfo_eval.simulate import simulate

        def shown(cond: str, fid: str, d: Demographics) -> list[str]:
            f = by_id[fid]
            if cond == "personalized":
                return [C.explained_text(p.label, personal[(d.key(), p.post_id)]) for p in f.posts]
            return site.shown(cond, fid, None)

        def gen(fid: str) -> list[str]:
            return [C.explained_text(p.label, generic[p.post_id]) for p in by_id[fid].posts]

        t2 = time.perf_counter()
        say(f"{len(plan)} simulated participants answer their feeds")
        # five answers a participant, and five preferences from each personalized one
        asked = 5 * len(plan) + (5 * sum(cond == "personalized" for _, cond, _ in plan)
                                 if c.preference and generic and pairs else 0)
        with work_progress("misinfo-eval: simulated answers", asked, "answers") as answered:
            sim = simulate(lm, by_id, plan, shown, seed=derive(c.seed, "simulate"),
                           temperature=c.participant_temperature,
                           generic=gen if (c.preference and generic and pairs) else None,
                           batch=c.batch, progress=lambda k, n: answered.update(k))
        m["timing.simulate_s"] = time.perf_counter() - t2
        parts = {p.participant_id: p for p in sim.participants}
        rows = [response_row(r, parts[r.participant_id]) for r in sim.responses]
        write_csv(run.path / "responses.csv", RESPONSE_COLUMNS, rows)
        from lmlab.studies.misinfo_eval.data import read_responses

        scored = score(read_responses(run.path / "responses.csv"), n_boot=c.n_boot,
                       seed=derive(c.seed, "bootstrap") % 2**31)
        write_csv(run.path / "subgroups.csv", ("attribute", "value", "condition", "accuracy", "n"),
                  subgroup_table(scored))
        m.update({f"sim.{k}": v for k, v in scored.items() if not k.startswith("subgroup.")})
        m["sim.model"] = lm.source
        from lmlab.studies.misinfo_eval.figures import accuracy_figure

        run.save_figure(accuracy_figure(scored, f"simulated participants ({lm.source}): "
                                                "model outputs, not the paper's result"),
                        "simulated_accuracy")
    if lm is not None:
        tot = lm.usage.as_dict()
        for k in ("requests", "prompt_tokens", "completion_tokens", "replayed", "wall_s"):
            if k in tot:
                m[f"llm.{k}"] = tot[k]
        lm.close()

    # -- annotation statistics ------------------------------------------------------------------
    m.update(_annotation(c))
    m["timing.run_s"] = time.perf_counter() - t0
    return m


def _explain(lm, items, c: MisinfoEvalConfig, seed: int, shown) -> list:
    """The explanations of `items` in batches, each batch moving the display `shown`."""
    from lmlab.studies.misinfo_eval.explain import generate_explanations

    out = []
    for k in range(0, len(items), c.batch):
        out += generate_explanations(
            lm, items[k:k + c.batch], seed=seed, max_words=c.max_words, attempts=c.attempts,
            max_tokens=c.explain_max_tokens, temperature=c.explain_temperature)
        shown.update(shown.done + len(items[k:k + c.batch]))
    return out


def _annotation(c: MisinfoEvalConfig) -> dict[str, Any]:
    from lmlab.studies.misinfo_eval.annotation import annotation_stats

    path: Path | None = Path(c.annotation_file) if c.annotation_file else None
    if path is None and c.release_dir:
        from lmlab.studies.misinfo_eval.release import ANNOTATION_FILE, verify

        path = verify(c.release_dir).get(ANNOTATION_FILE)
    if path is None:
        return {"annotation.status": "no annotation sheet given (annotation_file or release_dir)"}
    try:
        s = annotation_stats(path)
    except LmlabError as e:
        return {"annotation.status": f"unreadable: {e}"}
    out: dict[str, Any] = {"annotation.status": "ok", "annotation.rows": s.rows,
                           "annotation.kept": s.kept}
    for k, v in s.percent.items():
        out[f"annotation.{k}.percent"] = v
        out[f"annotation.{k}.yes"] = s.yes[k]
    return out
