"""The `peoplejoin` configuration and its presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lmlab.executor import ExecutorName
from lmlab.study import StudyConfig

__all__ = ["PRESETS", "PeopleJoinConfig"]

# Organizations whose every member's documents fit a small model's context (< 1,300 characters
# per member), with their dev items: 45 + 40 + 30 + 56 + 30 = 201.
SMALL_ORGS = ("concert_singer", "poker_player", "singer", "network_1", "course_teach")


@dataclass
class PeopleJoinConfig(StudyConfig):
    """Every knob of a run; `--set key=value` overrides any of them."""

    # The PeopleJoin-QA folder (dev.jsonl, tenant_data_v2/); empty: $LMLAB_DATA_PEOPLEJOIN_QA,
    # else the copy packaged with lmlab (lmlab.data.resolve("peoplejoin-qa")).
    data: str = ""
    split: Literal["dev", "test"] = "dev"  # test: the paper's 500 selected items (download first)
    organizations: tuple[str, ...] = SMALL_ORGS  # empty: every organization of the split
    max_member_chars: int = 6000  # skip organizations with a member holding more than this
    items: int = 4  # items drawn at random (seeded) from those left; 0: all
    agents: tuple[str, ...] = ("reactive", "message-none", "oracle-contacts", "broadcast", "none")
    agent_model: str = "hf:qwen2.5-coder-0.5b-instruct"
    teammate_model: str = ""  # empty: the agent's model (recorded separately either way)
    judge_model: str = ""  # empty: the agent's model
    teammates: Literal["llm", "table-server"] = "llm"
    requester: Literal["scripted", "llm"] = "scripted"
    query_aware_people: bool = False  # search_relevant_people ranks by the query (not the release)
    max_actions: int = 10
    max_invalid: int = 3
    max_turns: int = 4
    max_messages: int = 20
    max_time_s: float = 1250.0
    reject_repeats: bool = True  # an immediate repeat of an action is invalid (not in the release)
    batch_size: int = 16  # rows per forward pass of the local backend
    executor: ExecutorName = "process"  # where the episodes run (one job per agent and item)
    workers: int = 2  # worker processes of the process executor (0: one per core)
    threads: int = 1  # torch threads per worker (0: leave as is)
    n_boot: int = 2000
    judge_cache: str = ""  # a JSONL judge cache shared across runs (empty: the run folder's)


PRESETS: dict[str, PeopleJoinConfig] = {
    # 4 dev items from the five small organizations; the 0.5B model as reactive agent,
    # Message-None and judge, plus the three scripted contact policies (Message-All's
    # contact set is Broadcast's, so its people claim is computed from Broadcast here; the
    # Message-All and plan-then-execute agents run in `small`). 20 episodes, one executor job
    # each, in 2 worker processes of 1 torch thread; every call goes alone to the model, from the
    # kept KV cache of the longest matching prompt prefix.
    # Measured whole (OMP_NUM_THREADS=1, nice 10, a shared 2-core machine): 4:38 wall and 258
    # CPU-s at load average 4-6; the same preset one commit earlier, 14:40 wall and 278 CPU-s at
    # load average 15-17. The earlier layout (4 items x 6 agents, LLM teammates, padded batches
    # across episodes, no prefix reuse) took 1,487 CPU-s and 26:29 wall.
    # Teammates: the labelled table-server variant (each member answers from its own rows in
    # SQLite). Measured on course_teach_24: the 0.5B as teammate replied "skip" to every request
    # (prompt with the release's skip rule), "I don't have that information" although it held the
    # teacher table (without it), or invented "2 teachers" for every member (a looser prompt), so
    # at tiny the agents would be scored on the simulator's failures; `small` keeps LLM teammates.
    "tiny": PeopleJoinConfig(teammates="table-server"),
    # The same organizations with the 1.5B model, more items, and both reactive variants and the
    # plan-then-execute agent.
    "small": PeopleJoinConfig(
        items=60, agent_model="hf:qwen2.5-coder-1.5b-instruct",
        agents=("reactive", "reactive-nothought", "plan-execute", "message-none", "message-all",
                "oracle-contacts", "broadcast", "none")),
    # The paper's 500 test items (download them first: `lmlab peoplejoin download qa-test DIR`)
    # with a served model; the requester is simulated too, as in the release.
    "paper": PeopleJoinConfig(
        split="test", organizations=(), max_member_chars=0, items=0,
        agent_model="openai:gpt-4o@http://127.0.0.1:8000/v1", requester="llm",
        max_turns=20, max_messages=0, batch_size=64,
        agents=("reactive", "reactive-nothought", "plan-execute", "message-none", "message-all",
                "oracle-contacts", "broadcast", "none")),
}
