"""The graph state of one incident, and what the stages share besides it.

The state holds only plain JSON values (checkpointed by LangGraph after every step). The rich
account of the incident lives in its record (`agents/record.py`), which every stage updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

from agents.environments import DEFAULT
from agents.policy.decision import Policy, StaticPolicy

if TYPE_CHECKING:
    from agents.config import Settings
    from agents.history import RunHistory
    from agents.llm import HealerLLM
    from agents.record import RecordStore
    from cde_client import CdeClient


class HealState(TypedDict, total=False):
    incident_id: str  # "<job>--<run id>"; also the LangGraph thread id
    job: str
    run_id: int  # the failed run that opened the incident
    attempt: int  # current fix attempt, from 1
    analyzed_run_id: int  # the run whose logs are read: the failed run, then each failed fix run
    analyzed_in: str  # the environment that run is in ("" or missing: the incident's own)
    deploy_in: str  # the environment redeploy and verify act in: where fixes are proven, then after promotion home
    base_code: str | None  # code the next patch starts from (original, then the last deployed fix)
    base_spark: dict  # job's spark section the next patch starts from
    fixed_code: str | None  # the accepted patch's code, as deployed (the record's copy is redacted)
    candidate_codes: dict  # candidate number (str) → its code, for the model's accepted code fixes
    feedback: str  # why the last attempt failed, for the next prompt
    outcome: str  # final state, once decided: healed | escalated | rejected | error
    reason: str


@dataclass
class Deps:
    """What the stages call out to. Built once per healer process; never checkpointed."""

    settings: Settings
    client: CdeClient
    records: RecordStore
    llm: HealerLLM | None  # None: rules only
    history: RunHistory | None = None  # the run history (the policy's view of a job's past); None: not kept
    policy: Policy = field(default_factory=StaticPolicy)  # which recovery action each attempt takes
    # the environments (agents/environments.py): `client` is the home one's, where the incident's job
    # failed; with promotion, fixes are pre-flighted and run in `proving` first, through `proving_client`
    home: str = DEFAULT
    proving: str = DEFAULT
    proving_client: CdeClient | None = None

    @property
    def promotes(self) -> bool:
        """Fixes are proven in another environment and promoted home."""
        return self.proving != self.home

    def cde(self, environment: str | None) -> CdeClient:
        """The client of `environment` (None or "": home)."""
        if not environment or environment == self.home:
            return self.client
        if environment != self.proving or self.proving_client is None:
            raise ValueError(f"no CDE client for environment {environment!r}")
        return self.proving_client
