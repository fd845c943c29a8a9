"""The healing graph: monitor → log-fetch → diagnose → patch → preflight → compare → (approval) →
redeploy → verify, and with environments → promote → redeploy → verify in the incident's own.

preflight, compare and verify loop back to log-fetch on a failed attempt (a failed sandbox run, a
failed data comparison, a failed fix run); escalate ends an incident our code cannot heal. Each node returns a `Command` naming where to go, so the routing reads from the signatures.
"""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.approval import approval, escalate
from agents.compare import compare
from agents.diagnose import diagnose
from agents.log_fetch import log_fetch
from agents.monitor import monitor
from agents.patch import patch
from agents.preflight import preflight
from agents.promote import promote
from agents.redeploy import redeploy
from agents.stage import StageFn, as_node
from agents.state import Deps, HealState
from agents.verify import verify

# Every stage once: its name, its node function, and the record's state while it runs (None: the
# node sets its own, as approval does when it pauses). A new stage is one entry plus its routing.
STAGES: tuple[tuple[str, StageFn, str | None], ...] = (
    ("monitor", monitor, "open"),
    ("log_fetch", log_fetch, "fetching"),
    ("diagnose", diagnose, "diagnosing"),
    ("patch", patch, "patching"),
    ("preflight", preflight, "preflighting"),
    ("compare", compare, "comparing"),
    ("approval", approval, None),
    ("redeploy", redeploy, "redeploying"),
    ("verify", verify, "verifying"),
    ("promote", promote, "promoting"),
    ("escalate", escalate, None),
)


def build_graph(deps: Deps, checkpointer: BaseCheckpointSaver) -> CompiledStateGraph:
    builder = StateGraph(HealState)
    for name, fn, record_state in STAGES:
        builder.add_node(name, as_node(name, fn, deps, record_state))
    builder.add_edge(START, "monitor")
    return builder.compile(checkpointer=checkpointer)
