"""The agent's action space and a parser that survives what chat models actually write.

Actions are Python-like calls, one per LLM call, e.g.
``Enterprise.send_message(user_id="lina", content="Could you share the singer table?")``.
The release parsed them with a regex and dropped keyword names (arguments bound by position);
here the call is parsed with Python's own `ast` where it can be, keyword arguments bind by name
(a model that writes ``content=..., user_id=...`` is not misrouted), and a tolerant fallback
handles what `ast` rejects (unescaped quotes, a missing closing parenthesis). Before parsing,
code fences, ``Action:``-style markers and prose around the call are stripped; a bare action
name (``send_message``) is accepted for its qualified one.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = ["ACTIONS", "Action", "ActionError", "format_action", "parse_action"]

# name -> (required parameters, optional parameters)
ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Enterprise.send_message": (("user_id", "content"), ("title",)),
    "Enterprise.resolve_person": (("name",), ()),
    "Enterprise.resolve_primary_user": ((), ()),
    "Enterprise.send_session_completed": ((), ()),
    "EnterpriseSearch.search_documents": (("query",), ()),
    "EnterpriseSearch.search_relevant_people": ((), ("query",)),
    "Reflection.thought": (("thought",), ()),
    "System.finish": ((), ()),
}
_SHORT = {name.split(".")[1]: name for name in ACTIONS}
_NAME_RE = re.compile(
    r"(?:(?:Enterprise|EnterpriseSearch|Reflection|System)\s*\.\s*)?("
    + "|".join(sorted(_SHORT, key=len, reverse=True)) + r")\s*\(")
_FENCE = re.compile(r"```[a-zA-Z]*\n?|```")


class ActionError(ValueError):
    """The model's output is not a valid action; the message is shown to the agent."""


@dataclass(frozen=True)
class Action:
    """A parsed action: its qualified name and its arguments by parameter name."""

    name: str
    args: dict[str, str]

    def __str__(self) -> str:
        return format_action(self.name, **self.args)


def format_action(name: str, **args: str) -> str:
    """The canonical call text of an action (what the agent's history shows)."""
    inner = ", ".join(f"{k}={_quote(v)}" for k, v in args.items())
    return f"{name}({inner})"


def _quote(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _call_span(text: str, start: int) -> str:
    """The text from `start` (at an open parenthesis) to its matching close, string-aware;
    to the end of the line's content when the parenthesis never closes."""
    depth, quote, i = 0, "", start
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
        i += 1
    return text[start:].rstrip()


def _literal(node: ast.expr) -> str:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)  # a bare name such as lina
    return value if isinstance(value, str) else str(value)


def _parse_args_ast(inner: str) -> tuple[list[str], dict[str, str]] | None:
    try:
        tree = ast.parse(f"f{inner}", mode="eval")
    except SyntaxError:
        return None
    call = tree.body
    if not isinstance(call, ast.Call):
        return None
    return [_literal(a) for a in call.args], {k.arg: _literal(k.value) for k in call.keywords if k.arg}


_KW = re.compile(r"(\w+)\s*=\s*")


def _parse_args_loose(inner: str) -> tuple[list[str], dict[str, str]]:
    """Split `(a, b=...)` by hand: quoted strings end at the last matching quote before the next
    keyword (or the end), which tolerates unescaped quotes inside a message."""
    body = inner.strip()
    body = body[1:] if body.startswith("(") else body
    body = body[:-1] if body.endswith(")") else body
    positional: list[str] = []
    keywords: dict[str, str] = {}
    # cut at keyword markers that begin a new argument
    marks = [m for m in _KW.finditer(body) if m.start() == 0 or body[:m.start()].rstrip().endswith(",")]
    pieces: list[tuple[str | None, str]] = []
    if not marks:
        pieces = [(None, body)]
    else:
        if body[:marks[0].start()].strip().rstrip(","):
            pieces.append((None, body[:marks[0].start()]))
        for j, m in enumerate(marks):
            end = marks[j + 1].start() if j + 1 < len(marks) else len(body)
            pieces.append((m[1], body[m.end():end]))
    for key, raw in pieces:
        raw = raw.strip().rstrip(",").strip()
        if key is None and "," in raw and raw[:1] in "\"'":
            # positional arguments: split on a quote-comma-quote boundary
            vals = [v.strip().strip("\"'") for v in re.split(r"[\"']\s*,\s*[\"']", raw)]
            positional += vals
            continue
        if len(raw) >= 2 and raw[0] in "\"'" and raw[-1] == raw[0]:
            raw = raw[1:-1]
        elif raw[:1] in "\"'":
            raw = raw[1:]
        if key is None:
            positional.append(raw)
        else:
            keywords[key] = raw
    return positional, keywords


def _clean(text: str) -> str:
    text = _FENCE.sub("\n", text)
    return text.replace("\\_", "_")  # markdown-escaped underscores: send\_message


def parse_action(text: str) -> Action:
    """The first action call in a model's output; ActionError (with a useful message) if none."""
    if not isinstance(text, str) or not text.strip():
        raise ActionError("empty output: write exactly one action call")
    cleaned = _clean(text)
    m = _NAME_RE.search(cleaned)
    if m is None:
        raise ActionError("no action found: write one call such as "
                          'Enterprise.send_message(user_id="...", content="...")')
    name = _SHORT[m[1]]
    inner = _call_span(cleaned, m.end() - 1)
    parsed = _parse_args_ast(inner)
    if parsed is None:
        parsed = _parse_args_loose(inner)
    positional, keywords = parsed
    required, optional = ACTIONS[name]
    params = required + optional
    args: dict[str, str] = {}
    for key, value in keywords.items():
        key = {"text": "thought", "message": "content", "user": "user_id", "recipient": "user_id",
               "person": "name", "to": "user_id", "id": "user_id"}.get(key, key)
        if key not in params:
            if len(params) == 1 and not positional:
                key = params[0]  # a one-argument action with a misnamed keyword
            else:
                raise ActionError(f"{name} has no argument {key!r}; arguments: {', '.join(params) or 'none'}")
        args[key] = value
    free = [p for p in params if p not in args]
    if len(positional) > len(free):
        if not params:
            positional = []  # finish("done"): arguments of an argument-less action are ignored
        elif len(free) >= 1:
            # more pieces than parameters: the last parameter takes the rest (commas in a message)
            head, rest = positional[:len(free) - 1], positional[len(free) - 1:]
            positional = [*head, ", ".join(rest)]
        else:
            raise ActionError(f"{name} takes {len(params)} argument(s)")
    args.update(zip(free, positional, strict=False))
    missing = [p for p in required if not str(args.get(p, "")).strip()]
    if missing:
        raise ActionError(f"{name} needs {', '.join(missing)}")
    return Action(name, {p: args[p] for p in params if p in args})
