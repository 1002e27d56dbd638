"""Models behind one small interface: the tiny GPT on grid tokens, and HF causal LMs on text.

A backend turns tasks into token ids (with the paper's loss mask for training), generates
greedy answers and parses them back into grids (None when unparseable):

- `TinyBackend`: lmlab's GPT over `GridTokenizer` (the compact format), KV-cached decoding;
- `HFBackend`: a Hugging Face causal LM (the embedded SmolLM2, a folder or a hub id) over the
  official text format in the model's chat template; the loss covers the characters
  `format_task` marks (demo outputs 2..N and the answer), mapped onto tokens by their offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lmlab.studies.ttt_arc.arc import Example, Grid
from lmlab.studies.ttt_arc.serialize import GridTokenizer, decode_grid, format_task

__all__ = ["HFBackend", "TinyBackend"]


class TinyBackend:
    """The tiny GPT on the compact grid tokens."""

    def __init__(self, model: Any, max_new: int, max_tokens: int):
        self.tok = GridTokenizer()
        self.model = model
        self.max_new = max_new
        self.max_tokens = max_tokens  # longest training sequence (block_size + 1)
        self.pad_id = self.tok.PAD
        # Grid coordinates for a GPT built with coord_sizes (ModelSpec.coords), else None.
        self.coords_fn = self.tok.coords if model.config.coord_sizes else None

    @classmethod
    def load(cls, ref: Any) -> TinyBackend:
        """The GPT saved at `ref.path` (safetensors, see `save_tiny`) with shape `ref.spec`."""
        from lmlab.runs import load_tensors
        from lmlab.studies.ttt_arc.model import build_model

        model = build_model(ref.spec, GridTokenizer.vocab_size, 0)
        tensors, _ = load_tensors(ref.path)
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        if unexpected or set(missing) - {"lm_head.weight"}:  # lm_head is tied to tok_emb
            raise ValueError(f"{ref.path}: missing {missing}, unexpected {unexpected}")
        model.eval()
        return cls(model, ref.max_new, ref.spec.block_size + 1)

    def encode(self, demos: Sequence[Example], qin: Grid, qout: Grid) -> tuple[list[int], list[int]]:
        ids, mask = self.tok.encode_task(list(demos), qin, qout)
        return ids.tolist(), mask.astype(int).tolist()

    def prompt(self, demos: Sequence[Example], qin: Grid) -> list[int]:
        return self.tok.encode_task(list(demos), qin)[0].tolist()

    def prompt_len(self, demos: Sequence[Example], qin: Grid) -> int:
        return self.tok.count(list(demos), qin)

    def task_len(self, demos: Sequence[Example], qin: Grid, qout: Grid) -> int:
        return self.tok.count(list(demos), qin, qout)

    def generate(self, model: Any, prompts: list[list[int]]) -> list[list[int]]:
        from lmlab.nn.decode import greedy_decode

        # The answer ends with EOS; an END (a demo's end) also closes the grid for decode_output.
        return greedy_decode(model, prompts, self.max_new, (self.tok.EOS, self.tok.END),
                             coords_fn=self.coords_fn)

    def decode(self, ids: Sequence[int]) -> Grid | None:
        return self.tok.decode_output(ids) if len(ids) else None


def save_tiny(model: torch.nn.Module, path: Any, state: Any = None) -> None:
    """Save the tiny GPT's weights (tied tensors once) for `TinyBackend.load`."""
    from lmlab.runs import save_tensors

    tensors = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_tensors(path, tensors, state)


class HFBackend:
    """A Hugging Face causal LM on the official text format (chat template)."""

    def __init__(self, model: Any, tokenizer: Any, max_new: int, max_tokens: int):
        self.model = model
        self.tokenizer = tokenizer
        self.max_new = max_new
        self.max_tokens = max_tokens
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (
            tokenizer.eos_token_id)
        self.coords_fn = None

    @classmethod
    def load(cls, ref: Any) -> HFBackend:
        from lmlab.models import load_model

        model, tokenizer = load_model(ref.path, dtype=ref.dtype, device=ref.device)
        return cls(model, tokenizer, ref.max_new, ref.max_tokens)

    def _text(self, demos: Sequence[Example], qin: Grid, qout: Grid | None
              ) -> tuple[str, list[tuple[int, int]]]:
        """The chat-templated text and the character spans the loss covers."""
        ft = format_task(list(demos), qin, qout)
        msgs = ft.messages()
        text = self.tokenizer.apply_chat_template(msgs, tokenize=False,
                                                  add_generation_prompt=qout is None)
        sys_at = text.find(ft.system)
        asst_at = -1
        if ft.assistant is not None:
            asst_at = text.find(ft.assistant, sys_at + len(ft.system) + len(ft.user))
        if sys_at < 0 or (ft.assistant is not None and asst_at < 0):
            raise ValueError("the chat template does not contain the messages verbatim")
        spans = [((sys_at if m == "system" else asst_at) + a, (sys_at if m == "system"
                                                              else asst_at) + b)
                 for m, a, b in ft.loss_spans]
        return text, spans

    def encode(self, demos: Sequence[Example], qin: Grid, qout: Grid) -> tuple[list[int], list[int]]:
        text, spans = self._text(demos, qin, qout)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        mask = [int(any(a <= s < b for a, b in spans)) for s, _ in enc["offset_mapping"]]
        return list(enc["input_ids"]), mask

    def prompt(self, demos: Sequence[Example], qin: Grid) -> list[int]:
        text, _ = self._text(demos, qin, None)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_len(self, demos: Sequence[Example], qin: Grid) -> int:
        return len(self.prompt(demos, qin))

    def task_len(self, demos: Sequence[Example], qin: Grid, qout: Grid) -> int:
        return len(self.encode(demos, qin, qout)[0])

    @torch.no_grad()
    def generate(self, model: Any, prompts: list[list[int]]) -> list[list[int]]:
        out = []
        for p in prompts:
            ids = torch.tensor([p], dtype=torch.long, device=next(model.parameters()).device)
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 max_new_tokens=self.max_new, do_sample=False,
                                 pad_token_id=self.pad_id)
            out.append(gen[0, len(p):].tolist())
        return out

    def decode(self, ids: Sequence[int]) -> Grid | None:
        return decode_grid(self.tokenizer.decode(list(ids), skip_special_tokens=True))
