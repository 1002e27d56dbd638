"""The MRF condition: Misinfo Reaction Frames outputs turned into an intervention.

The paper used a GPT-2-large model fine-tuned on Misinfo Reaction Frames: given a headline and
a dimension token it generates the writer's intent (``[writer_intent]``) and the reader's
likely action (``[reader_action]``), by beam search (5 beams, 50 tokens). That model is not
part of lmlab; the condition runs only when `mrf_model` names a local folder holding it, and is
skipped cleanly (with the reason in the metrics) otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.errors import LmlabError, require
from lmlab.studies.misinfo_eval.conditions import mrf_text
from lmlab.studies.misinfo_eval.data import Post

DIMENSIONS = ("[writer_intent]", "[effect_on_reader]", "[reader_action]", "[pred_label]",
              "[gold_label]", "[spread]")
DOMAINS = ("[climate]", "[covid]", "[cancer]", "[Other]")


def unavailable(model: str) -> str | None:
    """Why the MRF condition cannot run with `model` (None when it can)."""
    if not model:
        return "skipped: no MRF model (set mrf_model to a local folder of the MRF GPT-2 model)"
    if not Path(model).is_dir():
        return f"skipped: MRF model folder {model} not found"
    return None


def strip_output(decoded: str) -> str:
    """The generated frame: the text after the last ']' without the end-of-text marker."""
    return decoded.split("]")[-1].replace("<|endoftext|>", "").strip()


def mrf_texts(model: str, posts: Sequence[Post], device: str = "cpu") -> list[str]:
    """The MRF intervention of each post (beam search as in the paper)."""
    why = unavailable(model)
    if why is not None:
        raise LmlabError(why)
    tf = require("transformers", extra="hf")
    tok = tf.AutoTokenizer.from_pretrained(model)
    lm = tf.AutoModelForCausalLM.from_pretrained(model).to(device).eval()
    tok.add_tokens(list(DIMENSIONS + DOMAINS))
    out = []
    for p in posts:
        frames = []
        for dim in ("[writer_intent]", "[reader_action]"):
            ids = tok.encode(f"{p.headline} {dim}", return_tensors="pt").to(device)
            gen = lm.generate(input_ids=ids, num_beams=5, max_length=50)
            frames.append(strip_output(tok.decode(gen[0])))
        out.append(mrf_text(p.label, *frames))
    return out
