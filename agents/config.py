"""The healer's one settings object, read from the environment (and `.env`) once, at start.

Environment names are the ones CAI users already set (`JOBS_API_URL`, `WORKLOAD_USER`, ...).
Every loop of the healer has its limit here, with a name and a default:

| setting               | env                       | default | limits                                    |
|-----------------------|---------------------------|---------|-------------------------------------------|
| max_attempts          | HEAL_MAX_ATTEMPTS         | 3       | fix attempts per incident                 |
| max_patch_tries       | HEAL_MAX_PATCH_TRIES      | 3       | model patch proposals per attempt (guard) |
| llm_max_retries       | LLM_MAX_RETRIES           | 2       | HTTP retries per model call               |
| max_structured_retries| LLM_MAX_STRUCTURED_RETRIES| 2       | re-asks after an invalid structured answer|
| llm_timeout_s         | LLM_TIMEOUT_S             | 120     | one model request, whole, retries included|
| prompt_token_budget   | HEAL_PROMPT_TOKEN_BUDGET  | 6000    | estimated tokens in one prompt            |
| evidence_token_budget | HEAL_EVIDENCE_TOKEN_BUDGET| 1500    | distilled log inside that prompt          |
| poll_interval_s       | HEAL_POLL_INTERVAL_S      | 30      | seconds between monitor cycles            |
| run_timeout_s         | HEAL_RUN_TIMEOUT_S        | 1800    | wait for a fix run (and its check)        |
| lookback_h            | HEAL_LOOKBACK_H           | 24      | age of failed runs the monitor considers  |
| max_new_incidents_per_cycle | HEAL_MAX_NEW_PER_CYCLE | 10 | incidents opened per monitor cycle      |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from agents.errors import ConfigError

HealMode = Literal["auto", "approve"]
MIN_ROOM_BESIDE_EVIDENCE = 1000  # prompt tokens kept for instructions and code beside the distilled log


def _load_dotenv(path: Path) -> dict[str, str]:
    """Reads a `.env` file without touching os.environ (the real environment wins)."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


@dataclass(frozen=True)
class Settings:
    jobs_api_url: str
    workload_user: str = ""
    workload_password: str = field(default="", repr=False)
    token_url: str | None = None
    cde_token: str = field(default="", repr=False)  # a ready token instead of user and password
    watched_jobs: tuple[str, ...] = ()  # empty: every job
    resource_name: str | None = None  # tutorial hint when a job's mounts are ambiguous
    application_file_name: str | None = None
    llm_model_id: str | None = None
    llm_base_url: str | None = None
    llm_api_key: str = field(default="", repr=False)
    heal_mode: HealMode = "auto"
    data_dir: Path = Path("data/healer")
    max_attempts: int = 3
    max_patch_tries: int = 3
    llm_max_retries: int = 2
    max_structured_retries: int = 2
    llm_timeout_s: float = 120.0
    prompt_token_budget: int = 6000
    evidence_token_budget: int = 1500
    poll_interval_s: float = 30.0
    run_timeout_s: float = 1800.0
    http_timeout_s: float = 30.0
    max_changed_share: float = 0.5  # guard: a patch may touch at most this share of the lines
    check_job_suffix: str = "-check"  # `<job>-check`, when it exists, is the job's output check
    run_poll_s: float = 3.0  # seconds between looks at a fix run
    lookback_h: float = 24.0  # monitor: failed runs that ended within this many hours
    max_new_incidents_per_cycle: int = 10
    deterministic_fixes: bool = True  # apply a rule's fix without asking the model
    crash_after: str | None = None  # tests only: exit the process right after this stage

    @property
    def model_configured(self) -> bool:
        return bool(self.llm_base_url)

    @property
    def model_label(self) -> str:
        if not self.model_configured:
            return "rules only"
        return self.llm_model_id or "default model"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs, records or the UI."""
        return tuple(s for s in (self.workload_password, self.llm_api_key, self.cde_token) if s)

    def watches(self, job: str) -> bool:
        return not self.watched_jobs or job in self.watched_jobs

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env"),
                 **overrides: object) -> Settings:
        """Builds and validates the settings; raises ConfigError listing every problem at once."""
        values = dict(_load_dotenv(dotenv) if dotenv else {})
        values.update(os.environ if env is None else env)
        problems: list[str] = []

        def text(name: str, default: str | None = None) -> str | None:
            value = values.get(name, "").strip()
            return value or default

        def number(name: str, default: float, kind: type = float, minimum: float = 0) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                problems.append(f"{name} must be a number, got {raw!r}")
                return default
            if value < minimum:
                problems.append(f"{name} must be at least {minimum}, got {raw!r}")
                return default
            return value

        url = text("JOBS_API_URL")
        if not url:
            problems.append("JOBS_API_URL is not set (the CDE virtual cluster's JOBS API URL)")
        elif urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
            problems.append(f"JOBS_API_URL must be an http(s) URL, got {url!r}")
        user, password = text("WORKLOAD_USER", ""), text("WORKLOAD_PASSWORD", "")
        token = text("CDE_TOKEN")
        if not token and not (user and password):
            problems.append("WORKLOAD_USER and WORKLOAD_PASSWORD must be set (or CDE_TOKEN)")
        mode = text("HEAL_MODE", "auto")
        if mode not in ("auto", "approve"):
            problems.append(f"HEAL_MODE must be 'auto' or 'approve', got {mode!r}")
        llm_url = text("LLM_ENDPOINT_BASE_URL")
        if llm_url and urlparse(llm_url).scheme not in ("http", "https"):
            problems.append(f"LLM_ENDPOINT_BASE_URL must be an http(s) URL, got {llm_url!r}")
        jobs = tuple(j.strip() for j in (text("JOB_NAME", "") or "").split(",") if j.strip())

        settings = dict(
            jobs_api_url=(url or "").rstrip("/"),
            workload_user=user or "",
            workload_password=password or "",
            token_url=text("CDE_TOKEN_URL"),
            cde_token=token or "",
            watched_jobs=jobs,
            resource_name=text("RESOURCE_NAME"),
            application_file_name=text("APPLICATION_FILE_NAME"),
            llm_model_id=text("LLM_MODEL_ID"),
            llm_base_url=llm_url,
            llm_api_key=text("LLM_CDP_TOKEN") or text("LLM_API_KEY") or "",
            heal_mode=mode if mode in ("auto", "approve") else "auto",
            data_dir=Path(text("HEALER_DATA_DIR", "data/healer") or "data/healer"),
            max_attempts=int(number("HEAL_MAX_ATTEMPTS", 3, int, 1)),
            max_patch_tries=int(number("HEAL_MAX_PATCH_TRIES", 3, int, 1)),
            llm_max_retries=int(number("LLM_MAX_RETRIES", 2, int, 0)),
            max_structured_retries=int(number("LLM_MAX_STRUCTURED_RETRIES", 2, int, 0)),
            llm_timeout_s=number("LLM_TIMEOUT_S", 120.0, float, 1),
            prompt_token_budget=int(number("HEAL_PROMPT_TOKEN_BUDGET", 6000, int, 500)),
            evidence_token_budget=int(number("HEAL_EVIDENCE_TOKEN_BUDGET", 1500, int, 200)),
            poll_interval_s=number("HEAL_POLL_INTERVAL_S", 30.0, float, 0.1),
            run_timeout_s=number("HEAL_RUN_TIMEOUT_S", 1800.0, float, 1),
            http_timeout_s=number("CDE_HTTP_TIMEOUT_S", 30.0, float, 1),
            run_poll_s=number("HEAL_RUN_POLL_S", 3.0, float, 0.1),
            lookback_h=number("HEAL_LOOKBACK_H", 24.0, float, 0.01),
            max_new_incidents_per_cycle=int(number("HEAL_MAX_NEW_PER_CYCLE", 10, int, 1)),
            deterministic_fixes=(text("HEAL_DETERMINISTIC_FIXES", "true") or "true").lower()
            not in ("0", "false", "no", "off"),
            crash_after=text("HEALER_CRASH_AFTER"),
        )
        if settings["prompt_token_budget"] < settings["evidence_token_budget"] + MIN_ROOM_BESIDE_EVIDENCE:
            problems.append(f"HEAL_PROMPT_TOKEN_BUDGET must exceed HEAL_EVIDENCE_TOKEN_BUDGET by at least "
                            f"{MIN_ROOM_BESIDE_EVIDENCE} tokens (instructions and code need room too)")
        known = {f.name for f in fields(cls)}
        for key, value in overrides.items():
            if key not in known:
                raise ConfigError([f"unknown setting {key!r}"])
            settings[key] = value
        if problems:
            raise ConfigError(problems)
        return cls(**settings)  # type: ignore[arg-type]
