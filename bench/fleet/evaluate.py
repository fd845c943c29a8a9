"""The figures of one policy on one simulated fleet, and the issue's done-when test of two of them.

- MTTR: from the failed run's end to the incident's resolution (the verified fix run and its checks,
  or a human's fix and run after an escalation), in minutes; median, p90 and mean over incidents.
- auto-resolved: incidents healed and verified by the healer; escalated: handed to a human (chosen,
  or attempts used up); false heals: declared healed with a wrong output (not counted as resolved).
- cluster-minutes per incident: every Spark run the incident took after its failure (pre-flights,
  checks, fix runs, measurements, and a human's runs), weighted by the memory they ran with.
- model tokens (and seconds) per incident: every model call, diagnoses included.
- SLO attainment: scheduled runs whose output was ready within their deadline, over all scheduled runs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np

from bench.fleet.sim import ESCALATED, FALSE_HEAL, HEALED, MINUTES_A_DAY, EpisodeResult


@dataclass(frozen=True)
class Figures:
    policy: str
    incidents: int
    mttr_median_min: float
    mttr_p90_min: float
    mttr_mean_min: float
    auto_resolved: float  # share of incidents
    escalated: float
    false_heals: int
    cluster_minutes_per_incident: float
    model_tokens_per_incident: float
    model_seconds_per_incident: float
    attempts_per_incident: float
    slo_attainment: float
    scheduled_runs: int
    reward_per_incident: float
    decisions: int
    from_table: int  # decisions a learned policy took from its Q-table
    overridden: int  # decisions the safety rules replaced

    def as_dict(self) -> dict:
        return asdict(self)


def figures(policy: str, episode: EpisodeResult) -> Figures:
    incidents = episode.incidents
    count = max(1, len(incidents))
    ttr = np.array([i.ttr for i in incidents]) if incidents else np.zeros(1)
    return Figures(
        policy=policy, incidents=len(incidents),
        mttr_median_min=float(np.median(ttr)), mttr_p90_min=float(np.percentile(ttr, 90)),
        mttr_mean_min=float(ttr.mean()),
        auto_resolved=sum(i.outcome == HEALED for i in incidents) / count,
        escalated=sum(i.outcome == ESCALATED for i in incidents) / count,
        false_heals=sum(i.outcome == FALSE_HEAL for i in incidents),
        cluster_minutes_per_incident=sum(i.cluster_minutes for i in incidents) / count,
        model_tokens_per_incident=sum(i.model_tokens for i in incidents) / count,
        model_seconds_per_incident=sum(i.model_seconds for i in incidents) / count,
        attempts_per_incident=sum(i.attempts for i in incidents) / count,
        slo_attainment=episode.slo_met / max(1, episode.scheduled), scheduled_runs=episode.scheduled,
        reward_per_incident=sum(i.reward for i in incidents) / count,
        decisions=sum(i.decisions for i in incidents), from_table=sum(i.from_table for i in incidents),
        overridden=sum(i.overridden for i in incidents),
    )


def by_class(episode: EpisodeResult) -> dict[str, dict[str, float]]:
    """Per failure class: incidents, auto-resolved share, mean time to recovery, cluster-minutes."""
    groups = defaultdict(list)
    for incident in episode.incidents:
        groups[incident.failure_class].append(incident)
    return {name: {"incidents": len(group),
                   "auto_resolved": sum(i.outcome == HEALED for i in group) / len(group),
                   "mttr_mean_min": sum(i.ttr for i in group) / len(group),
                   "cluster_minutes_per_incident": sum(i.cluster_minutes for i in group) / len(group)}
            for name, group in sorted(groups.items())}


def daily_mttr(episode: EpisodeResult) -> list[float | None]:
    """The mean time to recovery of the incidents opened on each simulated day (None: no incident)."""
    days: list[list[float]] = [[] for _ in range(episode.days)]
    for incident in episode.incidents:
        day = min(int(incident.opened // MINUTES_A_DAY), episode.days - 1)
        days[day].append(incident.ttr)
    return [sum(d) / len(d) if d else None for d in days]


def done_when(static: Figures, learned: Figures) -> dict[str, bool]:
    """The issue's test: the learned policy beats the static order on MTTR and cost at equal or
    better auto-resolution, with no false heal."""
    return {
        "MTTR median lower": learned.mttr_median_min < static.mttr_median_min,
        "MTTR p90 lower": learned.mttr_p90_min < static.mttr_p90_min,
        "cluster-minutes per incident lower": learned.cluster_minutes_per_incident < static.cluster_minutes_per_incident,
        "model tokens per incident lower": learned.model_tokens_per_incident < static.model_tokens_per_incident,
        "auto-resolution equal or better": learned.auto_resolved >= static.auto_resolved,
        "no false heals": learned.false_heals == 0,
    }
