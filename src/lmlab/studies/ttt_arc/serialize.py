"""Two ways to write ARC tasks for a language model: the paper's text format and grid tokens.

**Text (the official format).** A grid is numpy's `str()` of the array, `[[0 1]\\n [2 3]]`. A
task is a chat: the system message is `SYSTEM_PROMPT` followed by one line `<in> -> <out>#\\n`
per demonstration; the user message is `<test in> -> `; the assistant answers `<out>#`. The loss
covers the demonstration outputs after the first and the answer (`FormattedTask.loss_spans`).

**Grid tokens (for small models).** A 17-token vocabulary: the colours 0-9 are their own ids,
then `ROW` (end of a row), `IN`, `OUT` (grid markers), `END` (end of a demonstration), `BOS`,
`EOS` and `PAD`. A task is

    BOS (IN <in> OUT <out> END)* IN <query in> OUT [<answer> EOS]

where a grid is its rows, each followed by `ROW`. `encode_task` also returns the loss mask.

`GridTokenizer.coords(ids)` gives every token three integer coordinates computed from the ids
alone (for the GPT's `coord_sizes`, `COORD_SIZES`): (row, column, kind). Kind is 1 in an input
grid (from `IN`), 2 in an output grid (from `OUT`), 0 elsewhere (`BOS`, `END`, `EOS`, `PAD`,
where row = column = 0). An input token holds its own cell, (r + 1, c + 1) for cell (r, c) (a
row's `ROW` is column w; `IN` itself is (0, 0)); an output token is labelled with the cell that
comes *next*, the one the model is about to predict there: (r + 1, c + 2) for cell (r, c),
(r + 2, 1) for the `ROW` ending row r, (1, 1) for `OUT`. So writing output cell (i, j) of a
same-shape rule is attending to the input token with equal (row, column), at any grid size.
Values are clipped to 0..31. A position's coordinates depend only on the tokens up to it.

Both decoders return None for text or tokens that are not a well-formed grid (the official code
drops such predictions before voting); they never raise on model output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lmlab.studies.ttt_arc.arc import MAX_SIDE, Example, Grid, as_grid

__all__ = [
    "COORD_SIZES",
    "SYSTEM_PROMPT",
    "FormattedTask",
    "GridTokenizer",
    "decode_grid",
    "encode_grid",
    "format_task",
]

SYSTEM_PROMPT = (
    "Figure out the underlying transformation in the following examples and apply it to the "
    "test case. Here are some examples from this transformation, your answer must follow the "
    "format.\nThe input-output grids are provided as python arrays:\n"
)
IO_SEP = " -> "
COORD_SIZES = (32, 32, 3)  # (row, column, kind) table sizes for `GridTokenizer.coords`
OUTPUT_END = "#"


# --------------------------------------------------------------------------- text format


def encode_grid(grid: Grid) -> str:
    """numpy's `str()` of a 0-9 grid, e.g. `[[0 1]\\n [2 3]]`, independent of print options."""
    g = np.asarray(grid)
    digits = (g.astype(np.int64) + ord("0")).astype(np.uint8)  # (h, w) ASCII codes
    rows = [" ".join(r.tobytes().decode("ascii")) for r in digits]
    return "[[" + "]\n [".join(rows) + "]]"


_ROW = re.compile(r"\s*\[?\[?\s*([0-9](?: +[0-9])*)\s*\]\]?\s*")


def decode_grid(text: str) -> Grid | None:
    """Parse a grid written by `encode_grid` (an output's trailing `#` and beyond are ignored).

    Returns None unless the text is one or more bracketed rows of single digits, all of the same
    length, at most 30x30.
    """
    text = text.split(OUTPUT_END, 1)[0].strip()
    if not text.startswith("[[") or not text.endswith("]]"):
        return None
    rows = []
    for line in text.split("\n"):
        m = _ROW.fullmatch(line)
        if m is None:
            return None
        rows.append(m.group(1).split())
    if len(rows) > MAX_SIDE or len({len(r) for r in rows}) != 1 or len(rows[0]) > MAX_SIDE:
        return None
    return as_grid([[int(v) for v in r] for r in rows])


@dataclass(frozen=True)
class FormattedTask:
    """The chat messages of one task, and where the loss applies.

    `loss_spans` are `(message, start, end)` character ranges: `message` is "system" or
    "assistant", and `[start, end)` indexes that message's text. They cover the outputs (with
    their `#`) of demonstrations 2..N in the system message and, when there is an answer, the
    whole assistant message.
    """

    system: str
    user: str
    assistant: str | None
    loss_spans: tuple[tuple[str, int, int], ...]

    def messages(self) -> list[dict[str, str]]:
        """The chat as `[{"role", "content"}]` (the assistant turn only when there is one)."""
        msgs = [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]
        if self.assistant is not None:
            msgs.append({"role": "assistant", "content": self.assistant})
        return msgs


def format_task(
    demos: Sequence[Example], query_input: Grid, query_output: Grid | None = None
) -> FormattedTask:
    """The official chat format of a task (demos, then the query) with its loss spans."""
    system = SYSTEM_PROMPT
    spans: list[tuple[str, int, int]] = []
    for i, ex in enumerate(demos):
        system += encode_grid(ex.input) + IO_SEP
        out = encode_grid(ex.output) + OUTPUT_END
        if i >= 1:
            spans.append(("system", len(system), len(system) + len(out)))
        system += out + "\n"
    user = encode_grid(query_input) + IO_SEP
    assistant = None
    if query_output is not None:
        assistant = encode_grid(query_output) + OUTPUT_END
        spans.append(("assistant", 0, len(assistant)))
    return FormattedTask(system, user, assistant, tuple(spans))


# --------------------------------------------------------------------------- grid tokens


class GridTokenizer:
    """The compact grid-token format: colours 0-9 plus 7 structural tokens (17 in all)."""

    ROW, IN, OUT, END, BOS, EOS, PAD = range(10, 17)
    vocab_size = 17
    names = (*[str(c) for c in range(10)], "ROW", "IN", "OUT", "END", "BOS", "EOS", "PAD")

    def grid_ids(self, grid: Grid) -> np.ndarray:
        """A grid's tokens: each row's colours followed by `ROW`, (h * (w + 1),) int64."""
        g = np.asarray(grid, dtype=np.int64)
        h = g.shape[0]
        return np.concatenate([g, np.full((h, 1), self.ROW, np.int64)], axis=1).reshape(-1)

    @staticmethod
    def grid_len(grid: Grid) -> int:
        """Number of tokens of a grid."""
        h, w = np.shape(grid)
        return h * (w + 1)

    def count(
        self, demos: Sequence[Example], query_input: Grid, query_output: Grid | None = None
    ) -> int:
        """Length of `encode_task(...)` without building it."""
        n = 1 + sum(3 + self.grid_len(e.input) + self.grid_len(e.output) for e in demos)
        n += 2 + self.grid_len(query_input)
        if query_output is not None:
            n += self.grid_len(query_output) + 1
        return n

    def encode_task(
        self, demos: Sequence[Example], query_input: Grid, query_output: Grid | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and loss mask of a task, both (L,) (int64 and bool).

        `mask[t]` is True where token `t` is a training target: the output grid tokens and
        closing `END` of demonstrations 2..N, and the answer's tokens and `EOS`. Markers, inputs
        and the first demonstration's output are context only. Without `query_output` the
        sequence ends with `OUT`, ready for generation.
        """
        pieces: list[np.ndarray] = [np.array([self.BOS])]
        masks: list[np.ndarray] = [np.zeros(1, bool)]

        def add(ids: np.ndarray, target: bool) -> None:
            pieces.append(ids)
            masks.append(np.full(len(ids), target))

        for i, ex in enumerate(demos):
            add(np.concatenate([[self.IN], self.grid_ids(ex.input), [self.OUT]]), False)
            add(np.concatenate([self.grid_ids(ex.output), [self.END]]), i >= 1)
        add(np.concatenate([[self.IN], self.grid_ids(query_input), [self.OUT]]), False)
        if query_output is not None:
            add(np.concatenate([self.grid_ids(query_output), [self.EOS]]), True)
        return np.concatenate(pieces).astype(np.int64), np.concatenate(masks)

    def coords(self, ids: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(row, column, kind) of every token of ids (..., T): (..., T, 3) int64 (module doc)."""
        t = ids if isinstance(ids, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(ids))
        t = t.long()
        shape = t.shape
        t = t.reshape(-1, shape[-1])  # (B, T)
        B, T = t.shape
        pos = torch.arange(T, device=t.device).expand(B, T)
        is_row = t == self.ROW
        is_reset = t > self.ROW  # IN, OUT, END, BOS, EOS, PAD start (or end) a grid
        minus = torch.full_like(pos, -1)
        last_reset = torch.where(is_reset, pos, minus).cummax(dim=1).values  # (B, T)
        last_break = torch.where(is_reset | is_row, pos, minus).cummax(dim=1).values
        prev_break = torch.cat((minus[:, :1], last_break[:, :-1]), dim=1)  # strictly before
        n_rows = is_row.long().cumsum(dim=1)
        rows_at_reset = n_rows.gather(1, last_reset.clamp_min(0)) * (last_reset >= 0)
        rows = n_rows - rows_at_reset  # ROW tokens in (last reset, t]
        marker = t.gather(1, last_reset.clamp_min(0))
        marker = torch.where(last_reset >= 0, marker, torch.full_like(marker, self.BOS))
        kind = (marker == self.IN).long() + 2 * (marker == self.OUT).long()
        # input: own cell (r + 1, c + 1); output: next cell, (rows through t + 1, t - break + 1)
        row = torch.where(kind == 1, rows - is_row.long() + 1, rows + 1)
        col = torch.where(kind == 1, pos - prev_break, pos - last_break + 1)
        row = torch.where(t == self.IN, 0, row)
        col = torch.where(t == self.IN, 0, col)
        row, col = row * (kind > 0), col * (kind > 0)
        out = torch.stack((row.clamp(0, COORD_SIZES[0] - 1), col.clamp(0, COORD_SIZES[1] - 1),
                           kind), dim=-1)
        return out.reshape(*shape, 3)

    def decode_output(self, ids: Sequence[int] | np.ndarray) -> Grid | None:
        """The grid in generated tokens, or None when they do not form one.

        Reads after the last `OUT` if there is one (so a whole sequence works too), up to the
        first `EOS`, `END` or `PAD`. Every row must end with `ROW` and hold the same number
        (1-30) of colours; there must be 1-30 rows.
        """
        a = np.asarray(ids, dtype=np.int64).reshape(-1)
        outs = np.flatnonzero(a == self.OUT)
        if len(outs):
            a = a[outs[-1] + 1 :]
        stops = np.flatnonzero((a == self.EOS) | (a == self.END) | (a == self.PAD))
        if len(stops):
            a = a[: stops[0]]
        if len(a) == 0 or a[-1] != self.ROW or (a > self.ROW).any():
            return None
        ends = np.flatnonzero(a == self.ROW)
        widths = np.diff(np.concatenate([[-1], ends])) - 1
        if widths[0] < 1 or (widths != widths[0]).any():
            return None
        h, w = len(ends), int(widths[0])
        if h > MAX_SIDE or w > MAX_SIDE:
            return None
        return as_grid(a.reshape(h, w + 1)[:, :w])

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Token ids as readable names, for debugging."""
        return " ".join(self.names[int(i)] for i in ids)
