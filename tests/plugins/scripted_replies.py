"""The scripted misinfo-eval persona, shared by the in-process tests and the `replay:scripted`
plugin (plumbing only, never results). Importing it has no side effects."""

from __future__ import annotations

from lmlab.llm import Request


def reply(req: Request) -> str:
    """Explanations are one sentence; a persona trusts a note's label, else says 'reliable';
    it prefers note B."""
    text = req.messages[-1]["content"]
    if text.startswith("Write a short explanation"):
        return "Reporters and official records support this judgement."
    if "Which note" in text:
        return "B"
    if "This headline is false." in text:
        return "Unreliable."
    return "Reliable"
