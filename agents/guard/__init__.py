"""The patch guard: what a proposed change may do before it can be deployed. An allowlist.

``check_patch`` returns one ``GuardVerdict`` per rule, in a fixed order; a patch is accepted when
every verdict is ok (``accepted``). The reasons name the rule a patch breaks, not how to get round
it. The rules:

- ``well-formed``: the patch carries what its kind needs (code for "code", changes for "config",
  nothing for "rerun") within size limits.
- ``parses``: the new code parses and compiles.
- ``allowed-python``: every use the new code adds (not in the original) is in the vocabulary of a
  Spark fix: PySpark, a few standard modules, safe builtins, the file's own names; no new paths,
  reads of unevaluable sources, writes to what the job does not write, or unsafe configuration
  set from code (``guard.code``); a credential in the original stays on its own unchanged lines.
- ``allowed-sql``: new SQL reads, or writes only the job's own tables; no commands, Java calls,
  jars, functions, or destruction of other tables; SQL that cannot be evaluated is refused
  (``guard.sql``).
- ``bounded-diff``: the change touches at most ``max_changed_share`` of the lines.
- ``not-a-no-op``: the code or the configuration actually changes.
- ``not-a-repeat``: the same patch was not tried before.
- ``allowed-config``: job fields and spark.conf keys from an exact list, with checked values
  (``guard.config``).

The semantic rules (``guard.semantics``) ask whether the patched job still fails on bad data and
still writes what it wrote; only what the patch adds or removes counts:

- ``no-swallowed-errors``: no new handler of a broad class (bare, ``Exception``, ``BaseException``,
  py4j/pyspark errors, or a tuple with one) without a ``raise``, no new ``contextlib.suppress`` of
  one, no ``sys.exit(0)``/``exit()``/``quit()``/``os._exit`` added in a handler.
- ``keeps-outputs``: every output the original writes (DataFrame write targets, tables its SQL
  inserts into, creates, merges or updates) is still written, at no fewer call sites.
- ``keeps-write-modes``: no new write in mode ``ignore`` (nor ``CREATE TABLE IF NOT EXISTS ... AS
  SELECT``), no ``append`` (``INSERT INTO``, ``insertInto``) to an output the original does not
  append to, no write mode the guard cannot evaluate.
- ``keeps-error-checks``: nothing that turns error-raising off (``spark.sql.ansi.enabled=false``,
  ``storeAssignmentPolicy=LEGACY``, ``ignoreCorruptFiles``/``ignoreMissingFiles``, any
  ``spark.sql.legacy.*`` key, a ``PERMISSIVE``/``DROPMALFORMED`` reader), set in code, SQL ``SET``,
  a reader option or ``conf_changes``; a catalog remedy (``source == "rule"``) is exempt.
- ``no-new-row-filters``: no more row filters of a kind (``filter``/``where``/``WHERE``/``HAVING``/
  ``QUALIFY``, ``dropna``, ``distinct``/``dropDuplicates``, ``limit``, ``sample``) than the
  original has, unless the diagnosis says the input rows are invalid (category ``data``).

Config and rerun patches: only ``keeps-error-checks`` looks at them (their ``conf_changes``).
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from agents.errors import InvalidInput
from agents.guard.code import Inventory, inventory, python_problems
from agents.guard.config import (
    CONF_KEYS,
    MEMORY_CAPS,
    SPARK_FIELDS,
    conf_key_problem,
    conf_problem,
    spark_field_problem,
)
from agents.guard.semantics import SEMANTIC_RULES, semantic_verdicts
from agents.guard.sql import owned_tables, sql_problems
from agents.record import Diagnosis, GuardVerdict, Patch
from agents.redact import find_secrets

__all__ = ["CONF_KEYS", "MAX_CODE_CHARS", "MEMORY_CAPS", "SEMANTIC_RULES", "SPARK_FIELDS", "accepted", "changed_share",
           "check_patch", "rejection_reasons"]

MAX_CODE_CHARS = 500_000


def _lines(code: str) -> list[str]:
    return [line.rstrip() for line in code.rstrip().splitlines()]


def changed_share(original: str, new: str) -> float:
    """The share of lines the change touches: (removed + added lines) / (old + new lines)."""
    return 1.0 - difflib.SequenceMatcher(None, _lines(original), _lines(new), autojunk=False).ratio()


def _patch_key(patch: Patch) -> str:
    return json.dumps(
        {
            "kind": patch.kind,
            "code": "\n".join(_lines(patch.code)) if patch.code is not None else None,
            "spark": {k: str(v) for k, v in patch.spark_changes.items()},
            "conf": patch.conf_changes,
        },
        sort_keys=True,
    )


def _ok(rule: str, reason: str = "") -> GuardVerdict:
    return GuardVerdict(ok=True, rule=rule, reason=reason)


def _failed(rule: str, problems: Sequence[str], limit: int = 6) -> GuardVerdict:
    shown = "; ".join(problems[:limit]) + (f"; and {len(problems) - limit} more" if len(problems) > limit else "")
    return GuardVerdict(ok=False, rule=rule, reason=f"the patch {shown}")


# --- rules ------------------------------------------------------------------------------------


def _well_formed(patch: Patch) -> GuardVerdict:
    rule = "well-formed"
    has_config = bool(patch.spark_changes or patch.conf_changes)
    if patch.kind == "code":
        if not patch.code or not patch.code.strip():
            return GuardVerdict(ok=False, rule=rule, reason="a code patch must carry the complete new file in `code`")
        if len(patch.code) > MAX_CODE_CHARS:
            return GuardVerdict(ok=False, rule=rule, reason=f"the new code is over {MAX_CODE_CHARS} characters")
    elif patch.kind == "config":
        if patch.code is not None:
            return GuardVerdict(
                ok=False, rule=rule, reason="a config patch must not carry code; use kind 'code' for code changes"
            )
    elif patch.kind == "rerun" and (patch.code is not None or has_config):
        return GuardVerdict(
            ok=False, rule=rule, reason="a rerun patch changes nothing; use kind 'code' or 'config' to change something"
        )
    return _ok(rule)


def _parses(patch: Patch) -> GuardVerdict:
    rule = "parses"
    if patch.kind != "code" or not patch.code:
        return _ok(rule, "no code change")
    try:
        compile(patch.code, "<patched application>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        return GuardVerdict(ok=False, rule=rule, reason=f"the new code does not compile: {exc.msg} at {where}{text}")
    except (ValueError, RecursionError, MemoryError) as exc:
        return GuardVerdict(ok=False, rule=rule, reason=f"the new code does not compile: {exc}")
    return _ok(rule)


def _inventories(original: str, patch: Patch, salt: str) -> tuple[Inventory, Inventory] | str:
    """The original's and the new code's inventories, or why they cannot be taken. ``salt``: see
    ``fold.placeholder`` (a fresh one per check, so a patch cannot forge a placeholder)."""
    try:
        new = inventory(patch.code or "", salt)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "cannot be checked: the new code does not parse"
    try:
        before = inventory(original, salt)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        before = Inventory()  # an original that does not parse: everything in the patch is new
    return before, new


def _code_rule(rule: str, patch: Patch, inventories: tuple[Inventory, Inventory] | str,
               problems_of: Callable[[Inventory, Inventory], list[str]]) -> GuardVerdict:
    """A rule over the original's and the new code's inventories (see ``_inventories``)."""
    if patch.kind != "code" or not patch.code:
        return _ok(rule, "no code change")
    if isinstance(inventories, str):
        return GuardVerdict(ok=False, rule=rule, reason=inventories)
    problems = problems_of(*inventories)
    return _failed(rule, problems) if problems else _ok(rule)


def _python_problems(original: str, patch: Patch, before: Inventory, new: Inventory) -> list[str]:
    problems = python_problems(before, new, owned_tables(before))
    problems += _moved_secrets(original, patch.code or "")
    calls_before = {source for *_, source in before.config}
    remedy = patch.source == "rule"
    for key, value, source in new.config:  # .config(k, v), conf.set(k, v): the same keys as a config patch
        if source in calls_before:
            continue
        if not key.exact:
            problems.append("sets a configuration key the guard cannot evaluate")
        else:  # any key: non-spark ones reach Hadoop and Hive configuration (fs.*.impl, hooks)
            problem = (conf_problem(key.text, value.text, remedy=remedy) if value is not None and value.exact
                       else conf_key_problem(key.text, remedy=remedy))
            if problem:
                problems.append(f"sets {problem}")
    return problems


def _moved_secrets(original: str, new: str) -> list[str]:
    """A credential of the original may stay on its lines, never move to a new or changed one
    (where a print or a write could carry it into logs or tables)."""
    secrets = find_secrets(original)
    if not secrets:
        return []
    holders = _names_holding(original, secrets)
    before = set(_lines(original))
    moved = [line for line in _lines(new) if line not in before and (
        any(s in line for s in secrets) or any(re.search(rf"\b{re.escape(n)}\b", line) for n in holders))]
    return ["puts a credential of the job, or a name holding one, on a new or changed line"] if moved else []


def _names_holding(code: str, secrets: set[str]) -> set[str]:
    """Names the code assigns a value that contains a credential (``JDBC_PASSWORD = "..."``)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(s in ast.unparse(node.value) for s in secrets):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _bounded_diff(original: str, patch: Patch, max_changed_share: float) -> GuardVerdict:
    rule = "bounded-diff"
    if patch.kind != "code" or not patch.code:
        return _ok(rule, "no code change")
    share = changed_share(original, patch.code)
    if share > max_changed_share:
        return GuardVerdict(
            ok=False,
            rule=rule,
            reason=f"the patch changes {share:.0%} of the lines (limit {max_changed_share:.0%}); "
            "make the smallest change that fixes the cause and keep every other line as it is",
        )
    return _ok(rule, f"{share:.0%} of the lines changed")


def _not_a_no_op(original: str, patch: Patch, job_spark: Mapping[str, Any] | None) -> GuardVerdict:
    rule = "not-a-no-op"
    if patch.kind == "rerun":
        return _ok(rule, "a rerun changes nothing by design")
    if patch.kind == "code":
        if patch.code is not None and _lines(patch.code) == _lines(original):
            return GuardVerdict(ok=False, rule=rule, reason="the new code is the same as the original code")
        return _ok(rule)
    if not patch.spark_changes and not patch.conf_changes:
        return GuardVerdict(ok=False, rule=rule, reason="the config patch changes no setting")
    if job_spark is not None:
        current_conf = job_spark.get("conf") or {}
        same_spark = all(str(job_spark.get(k)) == str(v) for k, v in patch.spark_changes.items())
        same_conf = all(str(current_conf.get(k)) == str(v) for k, v in patch.conf_changes.items())
        if same_spark and same_conf:
            return GuardVerdict(ok=False, rule=rule, reason="every setting in the patch already has that value in the job")
    return _ok(rule)


def _not_a_repeat(patch: Patch, previous: Sequence[Patch]) -> GuardVerdict:
    rule = "not-a-repeat"
    if patch.kind == "rerun":  # repeating is what a re-run does; the healer limits them (HEAL_MAX_RERUNS)
        return _ok(rule, "re-runs are limited by the healer, not here")
    key = _patch_key(patch)
    for number, earlier in enumerate(previous, start=1):
        if _patch_key(earlier) == key:
            return GuardVerdict(
                ok=False,
                rule=rule,
                reason=f"the same patch was already tried (attempt {number}) and did not fix the job; propose a different change",
            )
    return _ok(rule)


def _allowed_config(patch: Patch, job_spark: Mapping[str, Any] | None = None) -> GuardVerdict:
    rule = "allowed-config"
    problems = [p for k, v in patch.spark_changes.items() if (p := spark_field_problem(k, v, job_spark))]
    for key, value in patch.conf_changes.items():
        problem = (f"{key}: spark.conf values must be strings" if not isinstance(value, str)
                   else conf_problem(key, value, remedy=patch.source == "rule"))
        if problem:
            problems.append(problem)
    if problems:
        return GuardVerdict(ok=False, rule=rule, reason="; ".join(problems))
    return _ok(rule)


def check_patch(
    original_code: str,
    patch: Patch,
    *,
    previous: Sequence[Patch] = (),
    max_changed_share: float = 0.5,
    job_spark: Mapping[str, Any] | None = None,
    diagnosis: Diagnosis | None = None,
) -> list[GuardVerdict]:
    """Every guard rule's verdict on ``patch`` (see the module docstring); accepted when all are ok.

    ``previous`` are the patches already tried for this incident. ``job_spark`` (the job's "spark"
    section), when given, lets a config patch that sets only the current values count as a no-op.
    ``diagnosis`` is the one the patch answers: only a diagnosis of category "data" (the input rows
    are invalid) lets a patch add row filters; without one, none may be added.
    """
    if not isinstance(original_code, str):
        raise InvalidInput("check_patch() needs the original application code as text")
    if not 0.0 < max_changed_share <= 1.0:
        raise InvalidInput(f"max_changed_share must be in (0, 1], got {max_changed_share}")
    parses = _parses(patch)
    salt = secrets.token_hex(16)
    inventories = _inventories(original_code, patch, salt) if patch.kind == "code" and patch.code and parses.ok \
        else "cannot be checked: the new code does not compile"
    return [
        _well_formed(patch),
        parses,
        _code_rule("allowed-python", patch, inventories,
                   lambda before, new: _python_problems(original_code, patch, before, new)),
        _code_rule("allowed-sql", patch, inventories, lambda before, new: sql_problems(
            before, new, lambda k, v: conf_problem(k, v, remedy=patch.source == "rule"))),
        _bounded_diff(original_code, patch, max_changed_share),
        _not_a_no_op(original_code, patch, job_spark),
        _not_a_repeat(patch, previous),
        _allowed_config(patch, job_spark),
        *semantic_verdicts(original_code, patch, inventories, salt, diagnosis=diagnosis),
    ]


def accepted(verdicts: Iterable[GuardVerdict]) -> bool:
    """True when every verdict is ok."""
    return all(verdict.ok for verdict in verdicts)


def rejection_reasons(verdicts: Iterable[GuardVerdict]) -> str:
    """The failed verdicts as lines for the model ("- rule: reason"); empty when accepted."""
    return "\n".join(f"- {v.rule}: {v.reason}" for v in verdicts if not v.ok)
