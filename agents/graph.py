"""The healing graph: monitor → log-fetch → diagnose → patch → (approval) → redeploy → verify.

verify loops back to log-fetch on a failed fix run; escalate ends an incident our code cannot
heal. Each node returns a `Command` naming where to go, so the routing reads from the signatures.
"""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.approval import approval, escalate
from agents.diagnose import diagnose
from agents.log_fetch import log_fetch
from agents.monitor import monitor
from agents.patch import patch
from agents.redeploy import redeploy
from agents.stage import as_node
from agents.state import Deps, HealState
from agents.verify import verify


def build_graph(deps: Deps, checkpointer: BaseCheckpointSaver) -> CompiledStateGraph:
    builder = StateGraph(HealState)
    builder.add_node("monitor", as_node("monitor", monitor, deps))
    builder.add_node("log_fetch", as_node("log_fetch", log_fetch, deps))
    builder.add_node("diagnose", as_node("diagnose", diagnose, deps))
    builder.add_node("patch", as_node("patch", patch, deps))
    builder.add_node("approval", as_node("approval", approval, deps))
    builder.add_node("redeploy", as_node("redeploy", redeploy, deps))
    builder.add_node("verify", as_node("verify", verify, deps))
    builder.add_node("escalate", as_node("escalate", escalate, deps))
    builder.add_edge(START, "monitor")
    return builder.compile(checkpointer=checkpointer)
