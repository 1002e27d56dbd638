"""The `peoplejoin` study: LM agents that gather information from the people of an organization.

Jhamtani, Andreas & Van Durme (2025), "LM Agents for Coordinating Multi-User Information
Gathering" (PeopleJoin). An agent acting for a requester (alice) finds which colleagues hold the
pieces of an answer (tables split between people, redirections, unanswerable questions,
distractors), messages them and composes the answer; it is scored on the answer (an LLM judge's
Match, and an execution-based check against the reference rows), on efficiency, and on whom it
contacted (people precision and recall).
"""

from lmlab.studies.peoplejoin.study import STUDY

__all__ = ["STUDY"]
