"""The fleet simulator: scheduled jobs fail, the healer's mechanics answer, a policy chooses each attempt.

**Fleet** (`make_fleet`): each job gets a schedule (period, deadline, run duration), a failure rate
per run, a primary failure class, and its own behaviour: how often a re-run clears its transients
(and whether more memory is what works), how many memory doublings its out-of-memory failures need,
whether its rule's fix is right, how often one model attempt fixes its code errors.

**Time** runs as discrete events in time order: the heap holds each job's next failed run; between
failures a job's runs succeed (their count is drawn, geometric in the failure rate), meeting their
deadline. A failure opens an incident; the job's next scheduled runs wait for its resolution (the
healer's verified fix, or a human's fix after an escalation) and then run one after another; each
waiting run meets its SLO only if its output is ready by its deadline.

**An incident** follows the healer (`agents/`): the monitor sees the failed run within one poll
interval; each attempt starts with a diagnosis (a model call when a model is configured), then the
policy chooses through `decide_safely(policy, PolicyState(...))`, the state built as the healer builds
it from the incident and the job's run history. A fix is a pre-flight run in the sandbox (plus the
output check there), then, if it passes, the production fix run and its verification (measurement
and output check); a failed pre-flight or fix run is an attempt used up. Re-runs are limited by
HEAL_MAX_RERUNS and wait HEAL_RERUN_BACKOFF_S doubled; a rule's fix that is not available (the same
code fix again, a re-run beyond the limit, memory at its cap) falls to the model as in `agents/patch.py`;
after HEAL_MAX_ATTEMPTS failed attempts the incident escalates. An escalation waits for a human's
response, then their fix, then a run of the job.

**Randomness** is common to the policies compared: the fleet, each job's failure gaps and classes,
and each incident's draws (the k-th incident of job j) come from their own seeded streams, so static
and learned meet the same jobs and the same failures.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field

from agents.policy.decision import HISTORY_WINDOW, Action, Policy, PolicyState, decide_safely
from agents.policy.learned import LearnedPolicy
from agents.policy.reward import Outcome, reward
from bench.fleet.params import BEYOND_CAPS, CLASSES, CODE_CLASSES, FleetParams

MINUTES_A_DAY = 1440.0
ESCALATE, RERUN, RERUN_BACKOFF, RAISE, RULE_FIX = (Action.ESCALATE, Action.RERUN, Action.RERUN_BACKOFF,
                                                   Action.RAISE_RESOURCES, Action.RULE_FIX)
HEALED, ESCALATED, FALSE_HEAL = "healed", "escalated", "false-heal"

# How each class looks to the healer: its diagnosis' category and the kind of fix its rule offers.
LOOKS: dict[str, tuple[str, str | None]] = {
    "transient": ("transient", "rerun"),  # T101
    "memory": ("config", "config"),  # M102, M103
    "result-size": ("config", "config"),  # M101
    "code-rule": ("code", "code"),  # C101-C121, P101-P111, A101-A102
    "code-model": ("code", None),  # a code error no rule fixes: the model, or nothing
    "unknown": ("unknown", None),
    "missing-data": ("data", None),  # D101
}
# The error conditions a job's failures of each class carry (one per job and class, drawn once).
CONDITIONS: dict[str, tuple[str | None, ...]] = {
    "transient": (None,),
    "memory": (None,),
    "result-size": (None,),
    "code-rule": ("UNRESOLVED_COLUMN.WITH_SUGGESTION", "AMBIGUOUS_REFERENCE", "MISSING_AGGREGATION",
                  "NUM_COLUMNS_MISMATCH", "TABLE_OR_VIEW_ALREADY_EXISTS", "DIVIDE_BY_ZERO", "CAST_INVALID_INPUT",
                  "CANNOT_PARSE_TIMESTAMP", None),
    "code-model": ("UNRESOLVED_COLUMN.WITH_SUGGESTION", None),
    "unknown": (None,),
    "missing-data": ("PATH_NOT_FOUND", "TABLE_OR_VIEW_NOT_FOUND"),
}
_MASK = (1 << 64) - 1


def mix(*numbers: int) -> int:
    """A 64-bit seed from integers (splitmix64 steps): the same numbers, the same seed, on any machine."""
    h = 0x9E3779B97F4A7C15
    for n in numbers:
        h = ((h ^ (n & _MASK)) * 0xBF58476D1CE4E5B9) & _MASK
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & _MASK
        h ^= h >> 29
    return h


def fleet_seed(seed: int, purpose: str, episode: int = 0) -> int:
    """The seed of an evaluation fleet or of a training episode's fleet: never the same for both."""
    return mix(seed, {"eval": 1, "train": 2}[purpose], episode)


@dataclass
class Job:
    index: int
    schedule: str
    period: float  # minutes between scheduled runs
    deadline: float  # minutes after its scheduled start by which a run's output must be ready
    duration: float  # minutes of a run, start-up included
    phase: float  # the first run's start
    slots: int  # scheduled runs within the simulated days
    fail_rate: float
    primary: str
    rerun_clears: float
    pressure: bool  # its transients are executors dying under memory pressure: more memory works
    memory_need: int  # memory doublings its out-of-memory failures need (BEYOND_CAPS: none is enough)
    result_need: int  # doublings of maxResultSize its result-size failures need
    rule_right: bool  # its rule's code fix is right
    code_fixes: float  # P(one model attempt fixes its code errors)
    unknown_fixes: float  # ... its unknown errors
    conditions: dict[str, str | None]
    rng: random.Random  # its stream: failure gaps and classes
    history: deque[bool] = field(default_factory=lambda: deque(maxlen=HISTORY_WINDOW))  # True: failed
    last_worked: str | None = None
    last_escalated: bool = False
    pending: str | None = None  # the class of a cause a false heal left in place
    incidents: int = 0


@dataclass(frozen=True)
class IncidentResult:
    job: int
    failure_class: str
    opened: float  # minutes from the simulation's start: the failed run's end
    resolved: float
    outcome: str  # healed | escalated | false-heal
    attempts: int  # fix attempts that ran
    actions: tuple[str, ...]
    cluster_minutes: float
    model_seconds: float
    model_tokens: int
    reward: float
    overridden: int  # decisions the safety rules replaced
    from_table: int  # decisions a learned policy took from its Q-table (not its fallback, not exploring)
    decisions: int

    @property
    def ttr(self) -> float:
        return self.resolved - self.opened


@dataclass
class EpisodeResult:
    seed: int
    jobs: int
    days: int
    incidents: list[IncidentResult]
    scheduled: int  # scheduled runs within the days
    slo_met: int  # of them, output ready by the deadline


@dataclass
class _Fix:
    """What an incident's attempts changed so far."""

    memory: int = 0  # doublings of driver/executor memory
    result: int = 0  # doublings of maxResultSize
    code_fixed: bool = False
    rule_tried: bool = False
    reruns: int = 0


@dataclass
class _Step:
    minutes: float = 0.0
    cluster: float = 0.0
    model_s: float = 0.0
    tokens: int = 0
    result: str = "failed"  # healed | false-heal | failed | no-patch


def _pick(rng: random.Random, weighted: list[tuple[float, object]]) -> object:
    u, total = rng.random(), 0.0
    for weight, value in weighted:
        total += weight
        if u < total:
            return value
    return weighted[-1][1]


def make_fleet(params: FleetParams, seed: int, jobs: int | None = None, days: int | None = None) -> list[Job]:
    """The jobs of a fleet, each with its schedule and behaviour, drawn from `seed`."""
    rng = random.Random(mix(seed, 0))
    horizon = (days or params.days) * MINUTES_A_DAY
    fleet = []
    schedules = [(s.share, s) for s in params.schedules]
    classes = [(params.class_mix[c], c) for c in CLASSES]
    kinds = [(k.share, k) for k in params.transient_kinds]
    for index in range(jobs or params.jobs):
        schedule = _pick(rng, schedules)
        duration = min(schedule.duration_median_min * rng.lognormvariate(0.0, schedule.duration_sigma),
                       0.6 * schedule.deadline_min) + params.healer.run_overhead_min
        phase = rng.uniform(0.0, schedule.period_min)
        kind = _pick(rng, kinds)
        fleet.append(Job(
            index=index, schedule=schedule.name, period=schedule.period_min, deadline=schedule.deadline_min,
            duration=duration, phase=phase, slots=max(0, math.ceil((horizon - phase) / schedule.period_min)),
            fail_rate=min(params.fail_median * rng.lognormvariate(0.0, params.fail_sigma), params.fail_max),
            primary=_pick(rng, classes), rerun_clears=kind.rerun_clears, pressure=kind.memory_pressure,
            memory_need=_pick(rng, [(p, n) for n, p in params.memory_needs.items()]),
            result_need=_pick(rng, [(p, n) for n, p in params.result_needs.items()]),
            rule_right=rng.random() < params.rule_right_share,
            code_fixes=_pick(rng, list(params.code_model_fixes)),
            unknown_fixes=_pick(rng, list(params.unknown_model_fixes)),
            conditions={c: rng.choice(CONDITIONS[c]) if len(CONDITIONS[c]) > 1 else CONDITIONS[c][0] for c in CLASSES},
            rng=random.Random(mix(seed, 1, index)),
        ))
    return fleet


class Simulation:
    """One fleet over its days under one policy (`run`); with a learner, Q-learning from every step."""

    def __init__(self, params: FleetParams, policy: Policy, seed: int, *, learner: LearnedPolicy | None = None,
                 jobs: int | None = None, days: int | None = None) -> None:
        self.params, self.policy, self.seed, self.learner = params, policy, seed, learner
        self.days = days or params.days
        self.fleet = make_fleet(params, seed, jobs, self.days)
        model = params.model
        self.diagnose_s = (model.diagnose_prompt_tokens / model.prompt_tokens_per_s
                           + model.diagnose_output_tokens / model.output_tokens_per_s)
        self.diagnose_tokens = model.diagnose_prompt_tokens + model.diagnose_output_tokens
        self.scheduled = sum(job.slots for job in self.fleet)
        self.class_mix = [(params.class_mix[c], c) for c in CLASSES]
        self.slo_met = 0
        self.incidents: list[IncidentResult] = []

    def run(self) -> EpisodeResult:
        queue: list[tuple[float, int, int, str]] = []
        for job in self.fleet:
            self._schedule_next(queue, job, 0)
        while queue:
            failed_end, index, slot, failure_class = heapq.heappop(queue)
            job = self.fleet[index]
            job.history.append(True)
            rng = random.Random(mix(self.seed, 2, index, job.incidents))
            job.incidents += 1
            result = self._incident(job, failure_class, failed_end, rng)
            self.incidents.append(result)
            self._schedule_next(queue, job, self._after(job, slot, result))
        return EpisodeResult(seed=self.seed, jobs=len(self.fleet), days=self.days, incidents=self.incidents,
                             scheduled=self.scheduled, slo_met=self.slo_met)

    # -- schedules ---------------------------------------------------------------------------------

    def _start(self, job: Job, slot: int) -> float:
        return job.phase + slot * job.period

    def _schedule_next(self, queue: list, job: Job, slot: int) -> None:
        """Runs from `slot` on succeed until the next failure, which goes on the queue."""
        if slot >= job.slots:
            return
        if job.pending is not None:
            failure_class, job.pending = job.pending, None
        else:
            u = job.rng.random()
            gap = int(math.log(1.0 - u) / math.log(1.0 - job.fail_rate)) if job.fail_rate > 0 else job.slots
            succeeded = min(gap, job.slots - slot)
            self.slo_met += succeeded
            job.history.extend([False] * min(succeeded, HISTORY_WINDOW))
            slot += gap
            if slot >= job.slots:
                return
            primary = job.rng.random() < self.params.primary_share
            failure_class = job.primary if primary else _pick(job.rng, self.class_mix)
        low, high = self.params.fail_fraction[failure_class]
        failed_end = self._start(job, slot) + job.duration * job.rng.uniform(low, high)
        heapq.heappush(queue, (failed_end, job.index, slot, failure_class))

    def _after(self, job: Job, slot: int, result: IncidentResult) -> int:
        """Counts the SLOs of the failed run and of the runs that waited for the incident; returns the
        next scheduled run the job starts normally."""
        resolved, good = result.resolved, result.outcome != FALSE_HEAL
        if good and resolved <= self._start(job, slot) + job.deadline:
            self.slo_met += 1
        ready, waiting = resolved, slot + 1
        while waiting < job.slots and self._start(job, waiting) < ready:
            if good:  # the runs that waited go one after another once the job works again
                ready += job.duration
                self.slo_met += ready <= self._start(job, waiting) + job.deadline
                job.history.append(False)
            waiting += 1
        return waiting

    # -- an incident -------------------------------------------------------------------------------

    def _incident(self, job: Job, failure_class: str, failed_end: float, rng: random.Random) -> IncidentResult:
        healer = self.params.healer
        category, rule_fix = LOOKS[failure_class]
        fix = _Fix()
        now = failed_end + rng.uniform(0.0, healer.poll_interval_s) / 60.0
        human_wait = self._human_wait(rng)  # drawn first: the same person, however the incident goes
        cluster, model_s, tokens, total_reward = 0.0, 0.0, 0, 0.0
        if healer.model_configured:  # attempt 1's diagnosis: whatever the policy chooses after it
            now += self.diagnose_s / 60.0
            model_s += self.diagnose_s
            tokens += self.diagnose_tokens
        tried: list[str] = []
        overridden = from_table = attempts = 0
        previous: tuple[PolicyState, Action, float] | None = None
        outcome, recent = ESCALATED, sum(job.history)
        for attempt in range(1, healer.max_attempts + 1):
            state = PolicyState(
                category=category, condition=job.conditions[failure_class], attempt=attempt,
                attempts_left=healer.max_attempts - attempt, rule_fix=rule_fix, model=healer.model_configured,
                reruns_left=healer.max_reruns - fix.reruns, recent_failures=recent, last_worked=job.last_worked,
                last_escalated=job.last_escalated, tried=tuple(tried))
            if previous is not None and self.learner is not None:
                self.learner.update(*previous, state)
            decision = decide_safely(self.policy, state)
            action = decision.action
            overridden += bool(decision.overridden)
            from_table += bool(decision.q_values) and not decision.overridden
            tried.append(action.value)
            step, spent = self._step(job, failure_class, fix, action, state, human_wait, rng)
            attempts += spent == attempt
            step_reward = reward(Outcome(
                action.value, healed=step.result in (HEALED, FALSE_HEAL), false_heal=step.result == FALSE_HEAL,
                escalated=step.result == ESCALATED, attempts_spent=spent, cluster_minutes=step.cluster,
                model_seconds=step.model_s, model_tokens=step.tokens), self.params.reward)
            now += healer.own_s_per_attempt / 60.0 + step.minutes
            cluster += step.cluster
            model_s += step.model_s
            tokens += step.tokens
            total_reward += step_reward
            if step.result != "failed":
                outcome = step.result
                if self.learner is not None:
                    self.learner.update(state, action, step_reward, None)
                break
            previous = (state, action, step_reward)
        job.last_escalated = outcome == ESCALATED
        if outcome in (HEALED, FALSE_HEAL):
            job.last_worked = tried[-1]
        if outcome == FALSE_HEAL:
            job.pending = failure_class
        return IncidentResult(job=job.index, failure_class=failure_class, opened=failed_end, resolved=now,
                              outcome=outcome, attempts=attempts, actions=tuple(tried), cluster_minutes=cluster,
                              model_seconds=model_s, model_tokens=tokens, reward=total_reward,
                              overridden=overridden, from_table=from_table, decisions=len(tried))

    def _step(self, job: Job, failure_class: str, fix: _Fix, action: Action, state: PolicyState, human_wait: float,
              rng: random.Random) -> tuple[_Step, int]:
        """One decision's step up to the next decision or the end, and the attempts spent by then."""
        if action is ESCALATE:
            return self._escalation(job, failure_class, human_wait), state.attempt - 1
        step = self._attempt(job, failure_class, fix, action, state, rng)
        if step.result == "no-patch":  # nothing acceptable to run: the healer escalates
            self._add(step, self._escalation(job, failure_class, human_wait))
            return step, state.attempt - 1
        if step.result == "failed" and state.attempts_left == 0:  # attempts used up: our code escalates
            self._add(step, self._escalation(job, failure_class, human_wait))
        elif step.result == "failed" and self.params.healer.model_configured:  # the next attempt's diagnosis
            step.minutes += self.diagnose_s / 60.0
            step.model_s += self.diagnose_s
            step.tokens += self.diagnose_tokens
        return step, state.attempt

    @staticmethod
    def _add(step: _Step, human: _Step) -> None:
        step.minutes += human.minutes
        step.cluster += human.cluster
        step.result = ESCALATED

    def _human_wait(self, rng: random.Random) -> float:
        human = self.params.human
        return (human.response_median_min * rng.lognormvariate(0.0, human.response_sigma)
                + human.fix_median_min * rng.lognormvariate(0.0, human.fix_sigma))

    def _escalation(self, job: Job, failure_class: str, wait: float) -> _Step:
        """A human answers and fixes the job by hand (`wait`), then runs it `human.runs` times (e.g. a
        test, then production) with the memory the fix needs."""
        doublings = 0
        if failure_class == "memory" and job.memory_need != BEYOND_CAPS:
            doublings = job.memory_need
        elif failure_class == "transient" and job.pressure:
            doublings = 1
        runs = self.params.human.runs * job.duration
        return _Step(minutes=wait + runs, cluster=runs * self._memory_cost(doublings), result=ESCALATED)

    def _attempt(self, job: Job, failure_class: str, fix: _Fix, action: Action, state: PolicyState,
                 rng: random.Random) -> _Step:
        """One attempt's action as the healer carries it out."""
        healer = self.params.healer
        step = _Step()
        what = self._effective(failure_class, fix, action, state)
        if what == "model" and not healer.model_configured:
            step.result = "no-patch"
            return step
        if what in ("rerun", "rerun-backoff", "rule-rerun"):
            if what == "rerun-backoff":
                wait_s = healer.rerun_backoff_s * 2 ** fix.reruns
            elif what == "rule-rerun":  # the rule's re-runs: the first at once, then a doubling pause
                wait_s = 0.0 if fix.reruns == 0 else healer.rerun_backoff_s * 2 ** (fix.reruns - 1)
            else:
                wait_s = 0.0
            step.minutes += min(wait_s, healer.max_backoff_s) / 60.0
            fix.reruns += 1
            self._runs(job, failure_class, fix, rng, step)
        elif what == "memory":
            fix.memory += 1
            self._runs(job, failure_class, fix, rng, step)
        elif what == "result":
            fix.result += 1
            self._runs(job, failure_class, fix, rng, step)
        elif what == "rule-code":
            fix.rule_tried = True
            self._code_fix(job, failure_class, fix, job.rule_right, rng, step)
        else:
            self._model(job, failure_class, fix, rng, step)
        return step

    def _effective(self, failure_class: str, fix: _Fix, action: Action, state: PolicyState) -> str:
        """What the healer does for `action` here (agents/patch.py: a rule fix it cannot use goes to the model)."""
        max_doublings = self.params.healer.max_doublings
        if action is RERUN:
            return "rerun"
        if action is RERUN_BACKOFF:
            return "rerun-backoff"
        if action is RAISE:
            return "memory" if fix.memory < max_doublings else "model"
        if action is RULE_FIX:
            if state.rule_fix == "rerun":
                return "rule-rerun" if state.reruns_left > 0 else "model"
            if state.rule_fix == "config":
                if failure_class == "result-size":
                    return "result" if fix.result < max_doublings else "model"
                return "memory" if fix.memory < max_doublings else "model"
            if state.rule_fix == "code":
                return "model" if fix.rule_tried else "rule-code"  # the guard refuses the same patch twice
        return "model"

    def _model(self, job: Job, failure_class: str, fix: _Fix, rng: random.Random, step: _Step) -> None:
        healer, model = self.params.healer, self.params.model
        code = failure_class in CODE_CLASSES
        offered = healer.candidates_offered
        candidates = 1 + int(_pick(rng, [(p, i) for i, p in enumerate(offered)])) if code else 1
        calls = 1 + (rng.random() < healer.extra_patch_call_share)
        output = model.patch_output_tokens_per_candidate * candidates
        step.model_s += calls * (model.patch_prompt_tokens / model.prompt_tokens_per_s
                                 + output / model.output_tokens_per_s)
        step.tokens += calls * (model.patch_prompt_tokens + output)
        step.minutes += step.model_s / 60.0
        if code:
            fixes = job.unknown_fixes if failure_class == "unknown" else job.code_fixes
            right = rng.randrange(candidates) if rng.random() < fixes else None
            for number in range(candidates):
                self._code_fix(job, failure_class, fix, number == right, rng, step)
                if step.result != "failed":
                    return
            return
        if failure_class == "memory" and rng.random() < self.params.model_config_right["memory"]:
            fix.memory = min(fix.memory + 1, healer.max_doublings)
        elif failure_class == "result-size" and rng.random() < self.params.model_config_right["result-size"]:
            fix.result = min(fix.result + 1, healer.max_doublings)
        elif failure_class == "transient" and rng.random() < self.params.model_raises_memory_on_transient:
            fix.memory = min(fix.memory + 1, healer.max_doublings)
        self._runs(job, failure_class, fix, rng, step)

    def _code_fix(self, job: Job, failure_class: str, fix: _Fix, right: bool, rng: random.Random,
                  step: _Step) -> None:
        """One code fix through pre-flight, comparison, deployment and verification."""
        if right:
            fix.code_fixed = True
            self._runs(job, failure_class, fix, rng, step)
            return
        healer = self.params.healer
        if rng.random() < self.params.plausible_share:  # exits 0 with a wrong output
            self._run(job, fix, healer.preflight_factor, step)
            self._checks(1, step)
            if rng.random() < self.params.miss_rate.get(failure_class, 0.0):  # the comparison misses it
                self._run(job, fix, 1.0, step)
                self._checks(2, step)
                step.result = FALSE_HEAL
            return
        low, high = self.params.fail_fraction[failure_class]
        self._run(job, fix, healer.preflight_factor * rng.uniform(low, high), step)

    def _runs(self, job: Job, failure_class: str, fix: _Fix, rng: random.Random, step: _Step) -> None:
        """The pre-flight, then (if it passes) the production fix run, each with its checks."""
        healer = self.params.healer
        low, high = self.params.fail_fraction[failure_class]
        if not self._run_ok(job, failure_class, fix, rng):
            self._run(job, fix, healer.preflight_factor * rng.uniform(low, high), step)
            return
        self._run(job, fix, healer.preflight_factor, step)
        self._checks(1, step)  # the output check on the sandbox
        if not self._run_ok(job, failure_class, fix, rng):
            self._run(job, fix, rng.uniform(low, high), step)
            return
        self._run(job, fix, 1.0, step)
        self._checks(2, step)  # the measurement of the production outputs and the output check
        step.result = HEALED

    def _run_ok(self, job: Job, failure_class: str, fix: _Fix, rng: random.Random) -> bool:
        if failure_class == "transient":
            clears = self.params.raise_clears_pressure if job.pressure and fix.memory else job.rerun_clears
            return rng.random() < clears
        if failure_class == "memory":
            return (job.memory_need != BEYOND_CAPS and fix.memory >= job.memory_need) or \
                rng.random() < self.params.memory_rerun_clears
        if failure_class == "result-size":
            return fix.result >= job.result_need
        return fix.code_fixed

    def _run(self, job: Job, fix: _Fix, share: float, step: _Step) -> None:
        minutes = job.duration * share
        step.minutes += minutes
        step.cluster += minutes * self._memory_cost(fix.memory)

    def _memory_cost(self, doublings: int) -> float:
        """What a minute of the job's run costs with its memory doubled `doublings` times."""
        return 1.0 + self.params.healer.memory_cost_share * (2 ** doublings - 1)

    def _checks(self, count: int, step: _Step) -> None:
        step.minutes += count * self.params.healer.check_run_min
        step.cluster += count * self.params.healer.check_run_min


def simulate(params: FleetParams, policy: Policy, seed: int, *, learner: LearnedPolicy | None = None,
             jobs: int | None = None, days: int | None = None) -> EpisodeResult:
    """One fleet (drawn from `seed`) over its days under `policy`; `learner` learns from every step."""
    return Simulation(params, policy, seed, learner=learner, jobs=jobs, days=days).run()
