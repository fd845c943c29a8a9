"""The settings table (`agents/config.py`): the user contract of environment names, defaults,
validation that lists every problem at once, the one `.env` loader, and the docs kept in sync."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import yaml

from agents import config, environments, urls
from agents.config import Settings, env_name, load_environment, markdown_table, table
from agents.errors import ConfigError
from tests.paths import REPO

BASE = {"JOBS_API_URL": "https://cde.example.com/dex/api/v1", "WORKLOAD_USER": "alice", "WORKLOAD_PASSWORD": "pw-1"}

# The user contract, written out by hand: a renamed or dropped variable fails here.
CONTRACT = {
    "JOBS_API_URL": "jobs_api_url", "WORKLOAD_USER": "workload_user", "WORKLOAD_PASSWORD": "workload_password",
    "CDE_TOKEN": "cde_token", "CDE_TOKEN_URL": "token_url", "JOB_NAME": "watched_jobs",
    "RESOURCE_NAME": "resource_name", "APPLICATION_FILE_NAME": "application_file_name",
    "LLM_MODEL_ID": "llm_model_id", "LLM_ENDPOINT_BASE_URL": "llm_base_url", "LLM_CDP_TOKEN": "llm_api_key",
    "LLM_API_KEY": "llm_api_key", "HEAL_MODE": "heal_mode", "HEALER_DATA_DIR": "data_dir",
    "HEAL_MAX_ATTEMPTS": "max_attempts", "HEAL_MAX_PATCH_TRIES": "max_patch_tries",
    "LLM_MAX_RETRIES": "llm_max_retries", "LLM_MAX_STRUCTURED_RETRIES": "max_structured_retries",
    "LLM_TIMEOUT_S": "llm_timeout_s", "HEAL_PROMPT_TOKEN_BUDGET": "prompt_token_budget",
    "HEAL_EVIDENCE_TOKEN_BUDGET": "evidence_token_budget", "HEAL_POLL_INTERVAL_S": "poll_interval_s",
    "HEAL_RUN_TIMEOUT_S": "run_timeout_s", "CDE_HTTP_TIMEOUT_S": "http_timeout_s", "HEAL_RUN_POLL_S": "run_poll_s",
    "HEAL_LOOKBACK_H": "lookback_h", "HEAL_WATCH_OVERLAP_S": "watch_overlap_s",
    "HEAL_MAX_NEW_PER_CYCLE": "max_new_incidents_per_cycle",
    "HEAL_DETERMINISTIC_FIXES": "deterministic_fixes", "HEAL_AUTO_APPLY": "auto_apply", "HEAL_MAX_RERUNS": "max_reruns",
    "HEAL_RERUN_BACKOFF_S": "rerun_backoff_s", "HEALER_CRASH_AFTER": "crash_after",
    "DASHBOARD_HOST": "dashboard_host", "DASHBOARD_PORT": "dashboard_port", "DASHBOARD_USER": "dashboard_user",
    "DASHBOARD_PASSWORD": "dashboard_password", "HEAL_PREFLIGHT_SAMPLE": "preflight_sample",
    "HEAL_SANDBOX_DATABASE": "sandbox_database", "HEAL_SANDBOX_LOCATION": "sandbox_location",
    "HEAL_COMPARE_ROW_TOLERANCE": "compare_row_tolerance", "HEAL_COMPARE_NULL_JUMP": "compare_null_jump",
    "HEAL_COMPARE_DISTINCT_DROP": "compare_distinct_drop", "HEAL_CODE_TOKEN_BUDGET": "code_token_budget",
    "HEAL_MAX_LINE_REQUESTS": "max_line_requests", "HEAL_CANDIDATES": "candidates",
    "HEAL_PARALLEL_PREFLIGHTS": "parallel_preflights", "LLM_MAX_TOKENS": "llm_max_tokens",
    "LLM_STRUCTURED_OUTPUT": "llm_structured_output", "LLM_SYSTEM_ROLE": "llm_system_role",
    "HEAL_HISTORY_URL": "history_url", "HEAL_POLICY": "policy", "HEAL_POLICY_FILE": "policy_file",
    "HEAL_POLICY_EXPLORATION": "policy_exploration", "HEAL_POLICY_LEARN": "policy_learn",
    "HEAL_POLICY_ALIAS": "policy_alias", "HEAL_REGISTRY_URI": "registry_uri",
    "HEAL_ANOMALY": "anomaly_detection", "HEAL_ANOMALY_MIN_HISTORY": "anomaly_min_history",
    "HEAL_ANOMALY_WINDOW": "anomaly_window", "HEAL_ANOMALY_MAX_FETCH": "anomaly_max_fetch",
    "HEAL_ANOMALY_ALIAS": "anomaly_alias", "HEAL_PROMOTION": "promotion",
}


def problems(env: dict[str, str], **overrides: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env, dotenv=None, **overrides)
    return caught.value.problems


# -- the table ---------------------------------------------------------------------------------------


def test_the_table_is_the_user_contract():
    assert {name: s.name for s in table() for name in s.env} == CONTRACT
    assert env_name("llm_api_key") == "LLM_CDP_TOKEN"  # the documented name; LLM_API_KEY is its alias
    with pytest.raises(KeyError):
        env_name("check_job_suffix")  # set in code only


def test_every_field_is_a_row_with_one_line_of_help():
    assert [s.name for s in table()] == [f.name for f in fields(Settings)]
    for s in table():
        assert s.help.strip() and "\n" not in s.help, s.name
        assert all(re.fullmatch(r"[A-Z][A-Z0-9_]+", name) for name in s.env), s.env
    assert [s.name for s in table() if s.required] == ["jobs_api_url"]


def test_from_env_and_the_constructor_share_the_defaults():
    from_env = Settings.from_env(BASE, dotenv=None)
    built = Settings(jobs_api_url=BASE["JOBS_API_URL"], workload_user="alice", workload_password="pw-1")
    assert from_env == built
    bare = Settings(jobs_api_url=BASE["JOBS_API_URL"])
    for s in table():
        if not s.required:
            assert getattr(bare, s.name) == s.default, s.name
    with pytest.raises(TypeError):
        Settings()  # type: ignore[call-arg]  # jobs_api_url has no default


def test_every_variable_is_read_into_its_field():
    env = {
        "JOBS_API_URL": " https://cde.example.com/dex/api/v1/ ", "CDE_TOKEN": "tok-9", "CDE_TOKEN_URL": "https://k/t",
        "JOB_NAME": " a, b ,,c ", "RESOURCE_NAME": "res", "APPLICATION_FILE_NAME": "app.py", "LLM_MODEL_ID": "m",
        "LLM_ENDPOINT_BASE_URL": "http://127.0.0.1:9/v1", "LLM_API_KEY": "key-1", "HEAL_MODE": "approve",
        "HEALER_DATA_DIR": "/tmp/h", "HEAL_MAX_ATTEMPTS": "4", "HEAL_MAX_PATCH_TRIES": "5", "LLM_MAX_RETRIES": "0",
        "LLM_MAX_STRUCTURED_RETRIES": "1", "LLM_TIMEOUT_S": "2.5", "HEAL_PROMPT_TOKEN_BUDGET": "3000",
        "HEAL_EVIDENCE_TOKEN_BUDGET": "900", "HEAL_POLL_INTERVAL_S": "0.5", "HEAL_RUN_TIMEOUT_S": "60",
        "CDE_HTTP_TIMEOUT_S": "7", "HEAL_RUN_POLL_S": "0.2", "HEAL_LOOKBACK_H": "1.5", "HEAL_MAX_NEW_PER_CYCLE": "2",
        "HEAL_DETERMINISTIC_FIXES": "Off", "HEALER_CRASH_AFTER": "redeploy.name_chosen",
    }
    s = Settings.from_env(env, dotenv=None)
    assert (s.jobs_api_url, s.cde_token, s.token_url) == ("https://cde.example.com/dex/api/v1", "tok-9", "https://k/t")
    assert s.watched_jobs == ("a", "b", "c") and s.watches("b") and not s.watches("d")
    assert (s.resource_name, s.application_file_name, s.llm_model_id) == ("res", "app.py", "m")
    assert (s.llm_base_url, s.llm_api_key, s.heal_mode, s.data_dir) == ("http://127.0.0.1:9/v1", "key-1", "approve",
                                                                        Path("/tmp/h"))
    assert (s.max_attempts, s.max_patch_tries, s.llm_max_retries, s.max_structured_retries) == (4, 5, 0, 1)
    assert (s.llm_timeout_s, s.prompt_token_budget, s.evidence_token_budget) == (2.5, 3000, 900)
    assert (s.poll_interval_s, s.run_timeout_s, s.http_timeout_s, s.run_poll_s) == (0.5, 60.0, 7.0, 0.2)
    assert (s.lookback_h, s.max_new_incidents_per_cycle) == (1.5, 2)
    assert s.deterministic_fixes is False and s.crash_after == "redeploy.name_chosen"
    assert isinstance(s.max_attempts, int) and isinstance(s.run_timeout_s, float)
    assert (s.workload_user, s.workload_password) == ("", "")  # a token instead of user and password
    assert (s.model_configured, s.model_label) == (True, "m")


def test_the_model_endpoints_quirks_are_settings():
    s = Settings.from_env({**BASE, "LLM_MAX_TOKENS": "900", "LLM_STRUCTURED_OUTPUT": "function_calling",
                           "LLM_SYSTEM_ROLE": "false"}, dotenv=None)
    assert (s.llm_max_tokens, s.llm_structured_output, s.llm_system_role) == (900, "function_calling", False)
    defaults = Settings.from_env(BASE, dotenv=None)
    assert (defaults.llm_max_tokens, defaults.llm_structured_output, defaults.llm_system_role) == (4096, "auto", True)
    found = problems({**BASE, "LLM_STRUCTURED_OUTPUT": "xml", "LLM_MAX_TOKENS": "10"})
    assert any(p.startswith("LLM_STRUCTURED_OUTPUT") for p in found) and any("LLM_MAX_TOKENS" in p for p in found)


def test_the_documented_name_wins_over_its_alias():
    s = Settings.from_env({**BASE, "LLM_CDP_TOKEN": "cdp-1", "LLM_API_KEY": "other-2"}, dotenv=None)
    assert s.llm_api_key == "cdp-1"


def test_every_problem_is_listed_at_once():
    found = problems({"JOBS_API_URL": "cde.example.com", "HEAL_MODE": "fast", "HEAL_MAX_ATTEMPTS": "many",
                      "HEAL_MAX_PATCH_TRIES": "0", "LLM_TIMEOUT_S": "nan", "HEAL_POLL_INTERVAL_S": "0.01",
                      "HEAL_DETERMINISTIC_FIXES": "maybe", "LLM_ENDPOINT_BASE_URL": "ftp://models",
                      "CDE_TOKEN_URL": "/token", "HEAL_PROMPT_TOKEN_BUDGET": "1400", "LLM_MAX_RETRIES": "1.5"},
                     data_dirr="x")
    assert found == [
        "JOBS_API_URL must be an http(s) URL, got 'cde.example.com'",
        "CDE_TOKEN_URL must be an http(s) URL, got '/token'",
        "LLM_ENDPOINT_BASE_URL must be an http(s) URL, got 'ftp://models'",
        "HEAL_MODE must be 'auto' or 'approve', got 'fast'",
        "HEAL_MAX_ATTEMPTS must be a whole number, got 'many'",
        "HEAL_MAX_PATCH_TRIES must be at least 1, got '0'",
        "LLM_MAX_RETRIES must be a whole number, got '1.5'",
        "LLM_TIMEOUT_S must be a number, got 'nan'",
        "HEAL_POLL_INTERVAL_S must be at least 0.1, got '0.01'",
        "HEAL_DETERMINISTIC_FIXES must be true or false, got 'maybe'",
        "unknown setting 'data_dirr'",
        "WORKLOAD_USER and WORKLOAD_PASSWORD must be set (or CDE_TOKEN)",
        "HEAL_PROMPT_TOKEN_BUDGET must exceed HEAL_EVIDENCE_TOKEN_BUDGET + HEAL_CODE_TOKEN_BUDGET by at least "
        "1000 tokens (the instructions need room too)",
    ]


def test_a_policy_file_and_a_registry_alias_are_one_too_many():
    found = problems({**BASE, "HEAL_POLICY": "learned", "HEAL_POLICY_FILE": "p.json", "HEAL_POLICY_ALIAS": "prd"})
    assert found == ["HEAL_POLICY_FILE and HEAL_POLICY_ALIAS both name the learned policy: set one"]


def test_the_sandbox_settings_are_checked():
    s = Settings.from_env({**BASE, "HEAL_PREFLIGHT_SAMPLE": "fraction:0.05", "HEAL_SANDBOX_DATABASE": "qa_sandbox",
                           "HEAL_SANDBOX_LOCATION": "s3a://bucket/sandbox"}, dotenv=None)
    assert (s.preflight_sample, s.sandbox_database, s.sandbox_location) == (
        "fraction:0.05", "qa_sandbox", "s3a://bucket/sandbox")
    assert Settings.from_env(BASE, dotenv=None).preflight_sample == "none"
    found = problems({**BASE, "HEAL_PREFLIGHT_SAMPLE": "fraction:2", "HEAL_SANDBOX_DATABASE": "prod; DROP",
                      "HEAL_COMPARE_NULL_JUMP": "1.5"})
    assert found == [
        "HEAL_COMPARE_NULL_JUMP must be at most 1, got '1.5'",
        "HEAL_PREFLIGHT_SAMPLE bad sample 'fraction:2': expected none, rows:N (a whole number >= 1) or "
        "fraction:F (0 < F < 1)",
        "HEAL_SANDBOX_DATABASE must be a database name of letters, digits and underscores starting with a "
        "letter (at most 40), got 'prod; DROP'",
    ]


def test_missing_settings_are_named():
    assert problems({}) == ["JOBS_API_URL is not set (the CDE virtual cluster's JOBS API URL, e.g. "
                            "`https://<vc>.cde-<id>.<domain>/dex/api/v1`)",
                            "WORKLOAD_USER and WORKLOAD_PASSWORD must be set (or CDE_TOKEN)"]
    assert problems({**BASE, "WORKLOAD_PASSWORD": "  "}) == [
        "WORKLOAD_USER and WORKLOAD_PASSWORD must be set (or CDE_TOKEN)"]  # blank is unset


def test_overrides_replace_fields_and_count_in_the_checks():
    s = Settings.from_env({"JOBS_API_URL": BASE["JOBS_API_URL"]}, dotenv=None, cde_token="tok", max_changed_share=0.25)
    assert (s.cde_token, s.max_changed_share, s.check_job_suffix) == ("tok", 0.25, "-check")


def test_secrets_are_the_secret_fields_and_never_shown():
    s = Settings.from_env({**BASE, "CDE_TOKEN": "tok-3", "LLM_CDP_TOKEN": "llm-4"}, dotenv=None)
    assert sorted(s.secrets) == ["llm-4", "pw-1", "tok-3"]
    assert not any(secret in repr(s) for secret in s.secrets)
    assert Settings.from_env({"JOBS_API_URL": BASE["JOBS_API_URL"], "CDE_TOKEN": "t"}, dotenv=None).secrets == ("t",)
    rules_only = Settings.from_env(BASE, dotenv=None)
    assert (rules_only.model_configured, rules_only.model_label) == (False, "rules only")


def test_the_history_url_is_a_database_url_whose_password_is_a_secret():
    assert Settings.from_env(BASE, dotenv=None).history_url == ""  # SQLite under HEALER_DATA_DIR
    s = Settings.from_env({**BASE, "HEAL_HISTORY_URL": "postgresql://healer:p%40ss-7@db.example.com:5432/heal"},
                          dotenv=None)
    assert s.history_url == "postgresql+psycopg://healer:p%40ss-7@db.example.com:5432/heal"  # psycopg 3, ours
    assert {"p%40ss-7", "p@ss-7"} <= set(s.secrets)  # as written and decoded
    assert "pw-1" in s.secrets and "p%40ss" not in repr(s) and "p@ss" not in repr(s)
    assert urls.masked_url(s.history_url) == "postgresql+psycopg://healer:***@db.example.com:5432/heal"
    assert Settings.from_env({**BASE, "HEAL_HISTORY_URL": "sqlite:////var/lib/healer/h.sqlite3"},
                             dotenv=None).history_url == "sqlite:////var/lib/healer/h.sqlite3"
    no_password = Settings.from_env({**BASE, "HEAL_HISTORY_URL": "postgresql+psycopg://db/heal"}, dotenv=None)
    assert no_password.secrets == ("pw-1",)

    found = problems({**BASE, "HEAL_HISTORY_URL": "mysql://root:hunter2@db/heal"})
    assert found == ["HEAL_HISTORY_URL must be a database URL, `postgresql+psycopg://user:password@host:port/database` "
                     "(or `sqlite:///path`), not a 'mysql' scheme, got 'mysql://root:***@db/heal'"]
    assert problems({**BASE, "HEAL_HISTORY_URL": "db.example.com/heal"})[0].startswith(
        "HEAL_HISTORY_URL must be a database URL")
    assert problems({**BASE, "HEAL_HISTORY_URL": "postgresql+psycopg2://u:pw-9@db/heal"})[0].endswith(
        "not a 'postgresql+psycopg2' scheme, got 'postgresql+psycopg2://u:***@db/heal'")
    assert "names no file" in problems({**BASE, "HEAL_HISTORY_URL": "sqlite://"})[0]


# -- the one .env loader ------------------------------------------------------------------------------


def test_the_real_environment_wins_and_empty_counts_as_unset(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("A=from-file\nB=from-file\nC=\nD= padded \nE=from-file\n# comment\nF\n")
    values = load_environment({"A": "real", "B": "", "C": "  ", "E": " real "}, dotenv)
    assert values == {"A": "real", "B": "from-file", "D": "padded", "E": "real"}
    assert load_environment({"A": "real"}, tmp_path / "absent.env") == {"A": "real"}
    assert load_environment({"A": "real"}, None) == {"A": "real"}


def test_the_default_environment_is_os_environ_untouched(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("HEALER_TEST_ONLY_NAME=x\n")
    values = load_environment(None, dotenv)
    assert values["HEALER_TEST_ONLY_NAME"] == "x" and "HEALER_TEST_ONLY_NAME" not in os.environ
    assert values["PATH"] == os.environ["PATH"]


def test_settings_read_dotenv_under_the_environment(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("JOBS_API_URL=http://127.0.0.1:8765/dex/api/v1\nWORKLOAD_USER=file-user\n"
                      "WORKLOAD_PASSWORD=file-pw\nHEAL_MODE=approve\nLLM_ENDPOINT_BASE_URL=\n")
    s = Settings.from_env({"WORKLOAD_USER": "real-user", "HEAL_MODE": ""}, dotenv=dotenv)
    assert (s.jobs_api_url, s.workload_user, s.workload_password) == (
        "http://127.0.0.1:8765/dex/api/v1", "real-user", "file-pw")
    assert s.heal_mode == "approve" and s.llm_base_url is None


def test_the_sample_jobs_cli_reads_the_same_way(tmp_path):
    """An exported empty variable does not hide the .env value; names come from the table."""
    (tmp_path / ".env").write_text("JOBS_API_URL=http://127.0.0.1:9/dex/api/v1\nWORKLOAD_USER=\n")
    env = {k: v for k, v in os.environ.items() if k not in CONTRACT}
    env.update(PYTHONPATH=str(REPO), JOBS_API_URL="", WORKLOAD_USER="  ")
    done = subprocess.run([sys.executable, "-m", "sample_jobs", "load", "tutorial"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "error: WORKLOAD_USER, WORKLOAD_PASSWORD not set" in done.stdout


# -- the docs ------------------------------------------------------------------------------------------


def test_the_readme_table_is_the_generated_one():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert config.replace_table(readme, "README.md") == readme, \
        "README.md's settings table is stale: run `python -m agents.config --update README.md`"
    for s in table():
        for name in s.env:
            assert f"`{name}`" in markdown_table()


def test_env_example_and_the_cai_project_name_only_settings():
    names = {name for s in table() for name in s.env} | {environments.LIST_VAR, environments.WATCH_VAR}
    example = re.findall(r"^([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), flags=re.M)
    assert example and set(example) <= names, set(example) - names
    metadata = yaml.safe_load((REPO / ".project-metadata.yaml").read_text())  # CAI reads it as YAML
    project = set(metadata["environment_variables"])  # the AMP's own variables
    assert project and project <= names, project - names
    architecture = (REPO / "docs" / "architecture.md").read_text()
    section = architecture.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    mentioned = set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])`", section))
    assert mentioned and mentioned <= names, mentioned - names


def test_the_table_command_prints_and_updates(tmp_path, capsys):
    assert config.main([]) == 0
    assert capsys.readouterr().out == markdown_table() + "\n"
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\n{config.TABLE_BEGIN}\n| old |\n{config.TABLE_END}\n\nafter\n")
    assert config.main(["--update", str(doc)]) == 0
    assert doc.read_text() == f"# Title\n\n{config.TABLE_BEGIN}\n{markdown_table()}\n{config.TABLE_END}\n\nafter\n"
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert config.main(["--update", str(plain)]) == 2
    assert "has no settings table" in capsys.readouterr().err and plain.read_text() == "no markers\n"


def test_a_required_row_shows_as_required():
    required = next(line for line in markdown_table().splitlines() if line.startswith("| `JOBS_API_URL`"))
    assert "| required |" in required
    assert next(s for s in table() if s.name == "jobs_api_url").default is MISSING
