"""The simulator's parameters: `params.json` beside this module (the documented defaults) with a
`--params FILE` laid over it (any subset of the same keys; lists are replaced whole).

Every problem — a file that is missing or not JSON, an unknown key, a value of the wrong type, shares
that do not add up to 1, a probability outside [0, 1] — is a `BenchUsageError` naming the key.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.policy.reward import RewardWeights
from bench.errors import BenchUsageError

DEFAULTS_PATH = Path(__file__).resolve().with_name("params.json")
CLASSES = ("transient", "memory", "result-size", "code-rule", "code-model", "unknown", "missing-data")
CODE_CLASSES = ("code-rule", "code-model", "unknown")
BEYOND_CAPS = 99  # doublings a job "needs" when no doubling within the caps is enough


@dataclass(frozen=True)
class Schedule:
    name: str
    share: float
    period_min: float
    deadline_min: float
    duration_median_min: float
    duration_sigma: float


@dataclass(frozen=True)
class TransientKind:
    share: float
    rerun_clears: float
    memory_pressure: bool


@dataclass(frozen=True)
class HealerParams:
    max_attempts: int
    max_reruns: int
    rerun_backoff_s: float
    max_backoff_s: float
    candidates_offered: tuple[float, ...]  # P(1 candidate), P(2), ... up to HEAL_CANDIDATES
    model_configured: bool
    own_s_per_attempt: float
    poll_interval_s: float
    preflight_factor: float
    check_run_min: float
    run_overhead_min: float
    memory_cost_share: float
    max_doublings: int
    extra_patch_call_share: float


@dataclass(frozen=True)
class ModelParams:
    prompt_tokens_per_s: float
    output_tokens_per_s: float
    diagnose_prompt_tokens: int
    diagnose_output_tokens: int
    patch_prompt_tokens: int
    patch_output_tokens_per_candidate: int


@dataclass(frozen=True)
class HumanParams:
    response_median_min: float
    response_sigma: float
    fix_median_min: float
    fix_sigma: float
    runs: int


@dataclass(frozen=True)
class TrainingParams:
    episodes: int
    jobs: int
    days: int
    epsilon_start: float
    epsilon_end: float
    learning_rate: float
    discount: float
    min_visits: int
    margin: float


@dataclass(frozen=True)
class FleetParams:
    values: dict[str, Any]  # the merged parameters without notes: what the report and the artefact keep
    jobs: int
    days: int
    schedules: tuple[Schedule, ...]
    fail_median: float
    fail_sigma: float
    fail_max: float
    primary_share: float
    class_mix: dict[str, float]
    transient_kinds: tuple[TransientKind, ...]
    raise_clears_pressure: float
    memory_needs: dict[int, float]
    memory_rerun_clears: float
    result_needs: dict[int, float]
    rule_right_share: float
    code_model_fixes: tuple[tuple[float, float], ...]  # (share of jobs, P(one model attempt fixes))
    unknown_model_fixes: tuple[tuple[float, float], ...]
    model_config_right: dict[str, float]
    model_raises_memory_on_transient: float
    fail_fraction: dict[str, tuple[float, float]]
    plausible_share: float
    miss_rate: dict[str, float]
    healer: HealerParams
    model: ModelParams
    human: HumanParams
    reward: RewardWeights
    training: TrainingParams

    def with_size(self, jobs: int | None = None, days: int | None = None, episodes: int | None = None,
                  training_jobs: int | None = None, training_days: int | None = None) -> FleetParams:
        """The same parameters with another fleet size, training length or training fleet."""
        values = copy.deepcopy(self.values)
        for section, key, value in (("fleet", "jobs", jobs), ("fleet", "days", days),
                                    ("training", "episodes", episodes), ("training", "jobs", training_jobs),
                                    ("training", "days", training_days)):
            if value is not None:
                values[section][key] = value
        return build(values)


def load_params(path: Path | str | None = None) -> FleetParams:
    """The defaults, with the file at `path` laid over them."""
    values = _read(DEFAULTS_PATH)
    if path is not None:
        values = _merge(values, _read(Path(path)), "")
    return build(values)


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchUsageError(f"parameters file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchUsageError(f"parameters file {path} is not readable JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BenchUsageError(f"parameters file {path}: expected an object at the top")
    return _without_notes(document)


def _without_notes(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_notes(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_without_notes(v) for v in value]
    return value


def _merge(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        name = f"{where}.{key}" if where else key
        if key not in base:
            raise BenchUsageError(f"unknown parameter {name} (known here: {', '.join(sorted(base))})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise BenchUsageError(f"parameter {name} must be an object")
            merged[key] = _merge(base[key], value, name)
        else:
            merged[key] = value
    return merged


def build(values: dict[str, Any]) -> FleetParams:
    """Checked parameters from a full (merged) mapping; raises BenchUsageError naming the bad key."""
    v = _View(values, "")
    fleet, behaviour, healer, model, human, training = (v.section(s) for s in (
        "fleet", "behaviour", "healer", "model", "human", "training"))
    schedules = tuple(Schedule(name=s.text("name"), share=s.prob("share"), period_min=s.positive("period_min"),
                               deadline_min=s.positive("deadline_min"),
                               duration_median_min=s.positive("duration_median_min"),
                               duration_sigma=s.number("duration_sigma", 0.0, 3.0))
                      for s in fleet.items("schedules"))
    _shares("fleet.schedules", [s.share for s in schedules])
    mix = fleet.section("class_mix")
    class_mix = {name: mix.prob(name) for name in CLASSES}
    _shares("fleet.class_mix", list(class_mix.values()))
    fail_rate = fleet.section("fail_rate")
    transient = behaviour.section("transient")
    kinds = tuple(TransientKind(share=k.prob("share"), rerun_clears=k.prob("rerun_clears"),
                                memory_pressure=k.flag("memory_pressure")) for k in transient.items("kinds"))
    _shares("behaviour.transient.kinds", [k.share for k in kinds])
    memory = behaviour.section("memory")
    needs = memory.section("needs")
    memory_needs = {1: needs.prob("1"), 2: needs.prob("2"), BEYOND_CAPS: needs.prob("beyond-caps")}
    _shares("behaviour.memory.needs", list(memory_needs.values()))
    result = behaviour.section("result-size").section("needs")
    result_needs = {1: result.prob("1"), 2: result.prob("2")}
    _shares("behaviour.result-size.needs", list(result_needs.values()))
    code = behaviour.section("code")
    wrong = behaviour.section("wrong_fix")
    fractions = behaviour.section("fail_fraction")
    miss = wrong.section("miss_rate")
    offered = tuple(healer.prob_list("candidates_offered"))
    _shares("healer.candidates_offered", list(offered))
    params = FleetParams(
        values=copy.deepcopy(values),
        jobs=fleet.count("jobs"), days=fleet.count("days"), schedules=schedules,
        fail_median=fail_rate.prob("median"), fail_sigma=fail_rate.number("sigma", 0.0, 3.0),
        fail_max=fail_rate.prob("max"), primary_share=fleet.prob("primary_share"), class_mix=class_mix,
        transient_kinds=kinds, raise_clears_pressure=transient.prob("raise_clears_pressure"),
        memory_needs=memory_needs, memory_rerun_clears=memory.prob("rerun_clears"), result_needs=result_needs,
        rule_right_share=code.prob("rule_right_share"),
        code_model_fixes=_mixture(code, "model_fixes"),
        unknown_model_fixes=_mixture(behaviour.section("unknown"), "model_fixes"),
        model_config_right={name: behaviour.section("model_config_right").prob(name)
                            for name in ("memory", "result-size")},
        model_raises_memory_on_transient=behaviour.prob("model_raises_memory_on_transient"),
        fail_fraction={name: fractions.interval(name) for name in CLASSES},
        plausible_share=wrong.prob("plausible_share"),
        miss_rate={name: miss.prob(name) for name in CODE_CLASSES},
        healer=HealerParams(
            max_attempts=healer.count("max_attempts"), max_reruns=healer.count("max_reruns", minimum=0),
            rerun_backoff_s=healer.number("rerun_backoff_s", 0.0), max_backoff_s=healer.number("max_backoff_s", 0.0),
            candidates_offered=offered, model_configured=healer.flag("model_configured"),
            own_s_per_attempt=healer.number("own_s_per_attempt", 0.0),
            poll_interval_s=healer.number("poll_interval_s", 0.0),
            preflight_factor=healer.number("preflight_factor", 0.0, 10.0),
            check_run_min=healer.number("check_run_min", 0.0), run_overhead_min=healer.number("run_overhead_min", 0.0),
            memory_cost_share=healer.prob("memory_cost_share"), max_doublings=healer.count("max_doublings"),
            extra_patch_call_share=healer.prob("extra_patch_call_share")),
        model=ModelParams(
            prompt_tokens_per_s=model.positive("prompt_tokens_per_s"),
            output_tokens_per_s=model.positive("output_tokens_per_s"),
            diagnose_prompt_tokens=model.count("diagnose_prompt_tokens", minimum=0),
            diagnose_output_tokens=model.count("diagnose_output_tokens", minimum=0),
            patch_prompt_tokens=model.count("patch_prompt_tokens", minimum=0),
            patch_output_tokens_per_candidate=model.count("patch_output_tokens_per_candidate", minimum=0)),
        human=HumanParams(
            response_median_min=human.positive("response_median_min"),
            response_sigma=human.number("response_sigma", 0.0, 3.0),
            fix_median_min=human.positive("fix_median_min"), fix_sigma=human.number("fix_sigma", 0.0, 3.0),
            runs=human.count("runs")),
        reward=_weights(v.section("reward")),
        training=TrainingParams(
            episodes=training.count("episodes"), jobs=training.count("jobs"), days=training.count("days"),
            epsilon_start=training.prob("epsilon_start"), epsilon_end=training.prob("epsilon_end"),
            learning_rate=training.number("learning_rate", 1e-6, 1.0), discount=training.prob("discount"),
            min_visits=training.count("min_visits"), margin=training.number("margin", 0.0)),
    )
    return params


def _weights(section: _View) -> RewardWeights:
    try:
        return RewardWeights.from_dict({k: section.number(k, 0.0) for k in section.values})
    except ValueError as exc:
        raise BenchUsageError(f"reward: {exc}") from exc


def _mixture(section: _View, key: str) -> tuple[tuple[float, float], ...]:
    found = tuple((item.prob("share"), item.prob("fixes")) for item in section.items(key))
    _shares(f"{section.where}.{key}", [share for share, _ in found])
    return found


def _shares(name: str, shares: list[float]) -> None:
    if not shares or abs(sum(shares) - 1.0) > 1e-3:
        raise BenchUsageError(f"parameter {name}: the shares add up to {sum(shares):g}, not 1")


class _View:
    """Typed, named access to one object of the parameters."""

    def __init__(self, values: Any, where: str) -> None:
        if not isinstance(values, dict):
            raise BenchUsageError(f"parameter {where or 'file'} must be an object")
        self.values, self.where = values, where

    def _get(self, key: str) -> Any:
        if key not in self.values:
            raise BenchUsageError(f"parameter {self._name(key)} is missing")
        return self.values[key]

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def section(self, key: str) -> _View:
        return _View(self._get(key), self._name(key))

    def items(self, key: str) -> list[_View]:
        value = self._get(key)
        if not isinstance(value, list) or not value:
            raise BenchUsageError(f"parameter {self._name(key)} must be a non-empty list")
        return [_View(item, f"{self._name(key)}[{i}]") for i, item in enumerate(value)]

    def number(self, key: str, low: float = float("-inf"), high: float = float("inf")) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise BenchUsageError(f"parameter {self._name(key)} must be a number within [{low:g}, {high:g}], "
                                  f"not {value!r}")
        return float(value)

    def positive(self, key: str) -> float:
        value = self.number(key, 0.0)
        if value <= 0:
            raise BenchUsageError(f"parameter {self._name(key)} must be above 0, not {value!r}")
        return value

    def prob(self, key: str) -> float:
        return self.number(key, 0.0, 1.0)

    def count(self, key: str, minimum: int = 1) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise BenchUsageError(f"parameter {self._name(key)} must be a whole number of at least {minimum}, "
                                  f"not {value!r}")
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise BenchUsageError(f"parameter {self._name(key)} must be true or false, not {value!r}")
        return value

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise BenchUsageError(f"parameter {self._name(key)} must be a non-empty string")
        return value

    def prob_list(self, key: str) -> list[float]:
        value = self._get(key)
        if not isinstance(value, list) or not value:
            raise BenchUsageError(f"parameter {self._name(key)} must be a non-empty list")
        if any(isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0 for p in value):
            raise BenchUsageError(f"parameter {self._name(key)} must be probabilities within [0, 1], not {value!r}")
        return [float(p) for p in value]

    def interval(self, key: str) -> tuple[float, float]:
        value = self._get(key)
        if (not isinstance(value, list) or len(value) != 2 or any(isinstance(x, bool) or not isinstance(x, (int, float))
                                                                   for x in value)
                or not 0.0 <= value[0] <= value[1] <= 1.0):
            raise BenchUsageError(f"parameter {self._name(key)} must be [low, high] within [0, 1], not {value!r}")
        return float(value[0]), float(value[1])
