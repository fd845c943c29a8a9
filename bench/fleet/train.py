"""Q-learning in the simulator: one episode is one fleet (its own seed, never an evaluation seed) over
its days; exploration decays linearly over the episodes; every step of every incident updates the
table (`LearnedPolicy.update`, the reward of `agents.policy.reward`). Deterministic for a seed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.policy.decision import StaticPolicy
from agents.policy.learned import MAX_EPSILON, LearnedPolicy
from bench.errors import BenchUsageError
from bench.fleet.params import FleetParams
from bench.fleet.sim import fleet_seed, simulate

Progress = Callable[[str], None]


@dataclass
class TrainingResult:
    policy: LearnedPolicy  # exploration off, production's min_visits
    seeds: list[int]  # the fleets' seeds, one per episode
    rewards: list[float] = field(default_factory=list)  # total reward per episode (learning, exploring)
    static_rewards: list[float] = field(default_factory=list)  # the static order on the same fleets
    incidents: list[int] = field(default_factory=list)
    epsilons: list[float] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    def summary(self) -> dict:
        return {"episodes": len(self.rewards), "seeds": self.seeds[:len(self.rewards)],
                "incidents": sum(self.incidents), "epsilon": [self.epsilons[0], self.epsilons[-1]] if self.epsilons else [],
                "states": len(self.policy.table), "seconds": round(self.seconds, 1)}


def epsilon_at(params: FleetParams, episode: int) -> float:
    training = params.training
    if training.episodes == 1:
        return training.epsilon_end
    share = episode / (training.episodes - 1)
    return training.epsilon_start + (training.epsilon_end - training.epsilon_start) * share


def train(params: FleetParams, seed: int, progress: Progress | None = None, *, static_reference: bool = True,
          result: TrainingResult | None = None) -> TrainingResult:
    """Learns a policy on `params.training.episodes` fleets drawn from `seed`. `result` (optional) is
    filled as the episodes go, so an interrupted training keeps what it learned."""
    training = params.training
    for name, value in (("epsilon_start", training.epsilon_start), ("epsilon_end", training.epsilon_end)):
        if value > MAX_EPSILON:
            raise BenchUsageError(f"parameter training.{name} is {value}; exploration is bounded by {MAX_EPSILON}")
    learner = LearnedPolicy(learning_rate=training.learning_rate, discount=training.discount, min_visits=1,
                            margin=0.0, seed=fleet_seed(seed, "train", -1))
    seeds = [fleet_seed(seed, "train", episode) for episode in range(training.episodes)]
    result = result if result is not None else TrainingResult(policy=learner, seeds=seeds)
    result.policy, result.seeds = learner, seeds
    started = time.monotonic()
    try:
        for episode, episode_seed in enumerate(seeds):
            epsilon = epsilon_at(params, episode)
            learner.explore(epsilon)
            run = simulate(params, learner, episode_seed, learner=learner, jobs=training.jobs, days=training.days)
            result.rewards.append(sum(i.reward for i in run.incidents))
            result.incidents.append(len(run.incidents))
            result.epsilons.append(epsilon)
            if static_reference:
                static = simulate(params, StaticPolicy(), episode_seed, jobs=training.jobs, days=training.days)
                result.static_rewards.append(sum(i.reward for i in static.incidents))
            if progress and (episode + 1) % max(1, len(seeds) // 10) == 0:
                progress(f"training: episode {episode + 1}/{len(seeds)}, ε={epsilon:.2f}, "
                         f"reward/incident {result.rewards[-1] / max(1, result.incidents[-1]):+.2f}, "
                         f"{len(learner.table)} states")
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        learner.explore(0.0)
        learner.min_visits, learner.margin = training.min_visits, training.margin
        result.seconds = time.monotonic() - started
    return result
