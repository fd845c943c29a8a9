"""Fault switches: latency, 5xx errors and 429 throttling on /dex/api/v1 calls, off by default.

Changed at run time through `GET/PUT/DELETE /local/faults` or in process through
`LocalCde.backend.faults.update(...)`. Random faults (`error_rate`, `throttle_rate`) use their own
`random.Random`, seeded by `LocalCdeConfig.fault_seed` for reproducible runs; the bursts
(`error_burst`, `throttle_burst`: "the next N calls fail") are deterministic and win over the rates.
`token_ttl_s` overrides the configured token lifetime for tokens issued from then on.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest, InjectedFault, Throttled


@dataclass
class FaultSettings:
    """The switches. All off (zero / None) by default."""

    latency_ms: int = 0  # added to every /dex/api/v1 call
    error_rate: float = 0.0  # share 0..1 of /dex/api/v1 calls answered with `error_status`
    error_status: int = 503  # 500..599
    throttle_rate: float = 0.0  # share 0..1 of /dex/api/v1 calls answered 429
    retry_after_s: int | None = 1  # Retry-After header on 429 answers; None = no header
    token_ttl_s: float | None = None  # lifetime of newly issued tokens; None = config.token_ttl_s
    error_burst: int = 0  # the next N /dex/api/v1 calls answer `error_status`
    throttle_burst: int = 0  # the next N /dex/api/v1 calls answer 429

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if not _is_int(self.latency_ms) or self.latency_ms < 0:
            raise ValueError("latency_ms must be an integer >= 0")
        for name in ("error_rate", "throttle_rate"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number between 0 and 1")
        if not _is_int(self.error_status) or not 500 <= self.error_status <= 599:
            raise ValueError("error_status must be an integer between 500 and 599")
        if self.retry_after_s is not None and (not _is_int(self.retry_after_s) or self.retry_after_s < 0):
            raise ValueError("retry_after_s must be an integer >= 0 or null")
        if self.token_ttl_s is not None and (not _is_number(self.token_ttl_s) or self.token_ttl_s <= 0):
            raise ValueError("token_ttl_s must be a number > 0 or null")
        for name in ("error_burst", "throttle_burst"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


FAULT_FIELDS = tuple(f.name for f in dataclasses.fields(FaultSettings))


class Faults:
    """Thread-safe holder of the current FaultSettings."""

    def __init__(self, initial: FaultSettings | None = None, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = dataclasses.replace(initial) if initial else FaultSettings()
        self._settings.validate()
        self._random = random.Random(seed)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dataclasses.asdict(self._settings)

    def update(self, **changes: Any) -> dict[str, Any]:
        """Change some switches; unknown names or bad values raise BadRequest, changing nothing."""
        unknown = sorted(set(changes) - set(FAULT_FIELDS))
        if unknown:
            raise BadRequest(
                f"unknown fault switch(es): {', '.join(unknown)}; known: {', '.join(FAULT_FIELDS)}"
            )
        with self._lock:
            candidate = dataclasses.replace(self._settings, **changes)
            try:
                candidate.validate()
            except ValueError as exc:
                raise BadRequest(f"invalid fault switches: {exc}") from None
            self._settings = candidate
            return dataclasses.asdict(candidate)

    def reset(self) -> dict[str, Any]:
        with self._lock:
            self._settings = FaultSettings()
            return dataclasses.asdict(self._settings)

    @property
    def token_ttl_s(self) -> float | None:
        with self._lock:
            return self._settings.token_ttl_s

    def latency_s(self) -> float:
        with self._lock:
            return self._settings.latency_ms / 1000.0

    def check_call(self) -> None:
        """Decide the fate of one /dex/api/v1 call: return normally, or raise the injected error."""
        with self._lock:
            s = self._settings
            if s.error_burst > 0:
                s.error_burst -= 1
                raise self._error(s)
            if s.throttle_burst > 0:
                s.throttle_burst -= 1
                raise self._throttle(s)
            if s.error_rate > 0 and self._random.random() < s.error_rate:
                raise self._error(s)
            if s.throttle_rate > 0 and self._random.random() < s.throttle_rate:
                raise self._throttle(s)

    @staticmethod
    def _error(s: FaultSettings) -> InjectedFault:
        return InjectedFault(s.error_status, f"injected fault: HTTP {s.error_status}")

    @staticmethod
    def _throttle(s: FaultSettings) -> Throttled:
        headers = {} if s.retry_after_s is None else {"Retry-After": str(s.retry_after_s)}
        return Throttled("injected fault: too many requests", headers=headers)
