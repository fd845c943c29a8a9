"""Deterministic rules for well-known failure signatures, run before the model.

``diagnose_by_rules`` names the cause when a signature is unambiguous; ``fix_by_rules`` applies the
remedy Spark's own message names, without a model. The rules are tried in this order (the registry
``RULES`` at the end of the module); each has a name (``Diagnosis.rule``):

- ``missing-input``: PATH_NOT_FOUND, or TABLE_OR_VIEW_NOT_FOUND of a table the job only reads.
  Category "data": the data is missing, no code change can fix it; no patch, escalate.
- ``unresolved-column``: UNRESOLVED_COLUMN with Spark's suggestions. Fix: the unresolved name is
  replaced by the closest suggestion where the code references it as a column (in string
  literals such as SQL text or ``col("...")``, or as ``df.name``), never in other identifiers.
- ``max-result-size``: the serialized results exceed spark.driver.maxResultSize. Fix: double it
  (at least Spark's default), capped; driver memory follows when the new size would exceed it.
- ``executor-out-of-memory``: executors killed for memory or OOM in a task. Fix: double
  executorMemory.
- ``driver-out-of-memory``: java.lang.OutOfMemoryError on the driver. Fix: double driverMemory.
- ``transient``: fetch failures, lost executors, connections reset or refused. Fix: rerun.
"""

from __future__ import annotations

import ast
import difflib
import io
import re
import tokenize
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agents.guard.config import MEMORY_CAPS
from agents.record import Diagnosis, Evidence, Patch
from agents.sizes import format_size, parse_size

MIN_SUGGESTION_SCORE = 0.3  # below this, no suggestion is close enough to apply without a model
MIN_SUGGESTION_MARGIN = 0.1  # the best suggestion must be this far ahead of the next one
MAX_EVIDENCE_LINES = 5
SPARK_DEFAULT_MEMORY = "1g"  # CDE's default driverMemory and executorMemory
SPARK_DEFAULT_MAX_RESULT_SIZE = "1g"

_TRANSIENT_MARKERS = (
    "FetchFailedException",
    "FetchFailed(",
    "ExecutorLostFailure",
    "Connection reset",
    "Connection refused",
    "transient",
    "Failed to connect to",
    "SocketTimeoutException",
)
_EXECUTOR_MEMORY_MARKERS = ("exceeding memory limits", "OOMKilled", "Container killed", "exit code 137")
_DRIVER_OOM = "java.lang.OutOfMemoryError"
_MAX_RESULT_SIZE = re.compile(r"bigger than spark\.driver\.maxResultSize \(([^)]+)\)")
_WRITE_CONTEXT = re.compile(r"saveAsTable|insertInto|\bINSERT\s+(?:INTO|OVERWRITE)|\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW)", re.I)


# --- evidence helpers --------------------------------------------------------------------------


def _texts(evidence: Evidence) -> list[str]:
    texts = [t for t in (evidence.exception, evidence.caused_by) if t]
    return texts + [t for t in evidence.key_lines if t not in texts]


def _lines_with(evidence: Evidence, markers: Iterable[str]) -> list[str]:
    markers = tuple(markers)
    found = [t for t in _texts(evidence) if any(m in t for m in markers)]
    return found[-MAX_EVIDENCE_LINES:]


def _unquote(name: str) -> str:
    return name.strip().strip("`").replace("`.`", ".").replace("`", "")


def _spark_file(job: Mapping[str, Any] | None) -> str | None:
    spark = (job or {}).get("spark") if isinstance(job, Mapping) else None
    file = spark.get("file") if isinstance(spark, Mapping) else None
    return file.rsplit("/", 1)[-1] if isinstance(file, str) and file else None


def _rule(category: str, cause: str, evidence: list[str], confidence: float) -> Diagnosis:
    """A rule's diagnosis; `diagnose_by_rules` names the rule that made it."""
    return Diagnosis(
        category=category,  # type: ignore[arg-type]
        root_cause=cause,
        evidence=evidence[:MAX_EVIDENCE_LINES],
        confidence=confidence,
        source="rule",
    )


# --- column names ------------------------------------------------------------------------------


def _is_abbreviation(short: str, long: str) -> bool:
    """"qty" abbreviates "quantity": same first letter, letters in order."""
    if not short or not long or short[0] != long[0] or len(short) >= len(long):
        return False
    letters = iter(long)
    return all(ch in letters for ch in short)


def suggestion_score(name: str, suggestion: str) -> float:
    """How close ``suggestion`` is to the unresolved ``name`` (0..1): edit similarity, shared words
    (customer_id / account_id share "id") and abbreviation (qty / quantity)."""
    a, b = name.lower(), suggestion.lower().rsplit(".", 1)[-1]
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    words_a, words_b = set(re.split(r"[_\W]+", a)) - {""}, set(re.split(r"[_\W]+", b)) - {""}
    shared = len(words_a & words_b) / len(words_a | words_b) if words_a | words_b else 0.0
    abbreviation = 1.0 if _is_abbreviation(a, b) or _is_abbreviation(b, a) else 0.0
    return round(0.6 * ratio + 0.3 * shared + 0.1 * abbreviation, 4)


def best_suggestion(name: str, suggestions: list[str]) -> tuple[str, float] | None:
    """The closest suggestion (a bare column name) and its score, or None when no suggestion is
    close enough or clearly ahead of the next. Spark's order breaks ties."""
    if not suggestions:
        return None
    scored = sorted(((suggestion_score(name, s), -i, s) for i, s in enumerate(suggestions)), reverse=True)
    score, _, best = scored[0]
    if score < MIN_SUGGESTION_SCORE:
        return None
    if len(scored) > 1 and score - scored[1][0] < MIN_SUGGESTION_MARGIN:
        return None
    return best.rsplit(".", 1)[-1], score


def _statement_span(tree: ast.Module, line: int) -> tuple[int, int] | None:
    """First and last line of the innermost statement that contains ``line``."""
    span = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if span is None or (node.end_lineno or node.lineno) - node.lineno <= span[1] - span[0]:
                span = (node.lineno, node.end_lineno or node.lineno)
    return span


def _fstring_expressions(literal: str) -> list[tuple[int, int]]:
    """Spans of the ``{...}`` expressions of an f-string literal (Python code, not text)."""
    quote = min((i for i in (literal.find("'"), literal.find('"')) if i >= 0), default=0)
    if "f" not in literal[:quote].lower():
        return []
    spans: list[tuple[int, int]] = []
    depth, start, i = 0, 0, quote
    while i < len(literal):
        ch = literal[i]
        if depth == 0 and literal.startswith(("{{", "}}"), i):
            i += 2
            continue
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
        i += 1
    return spans


def _column_references(code: str, name: str) -> list[tuple[tokenize.TokenInfo, list[tuple[int, int]]]]:
    """Tokens that reference column ``name``: inside string literals as a whole word, or ``x.name``.

    Each entry is (token, [(start, end) offsets of the name inside the token string]).
    """
    word = re.compile(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])")
    found: list[tuple[tokenize.TokenInfo, list[tuple[int, int]]]] = []
    previous: tokenize.TokenInfo | None = None
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    for token in tokens:
        if token.type == tokenize.STRING or token.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            inside = _fstring_expressions(token.string) if token.type == tokenize.STRING else []
            spans = [
                m.span() for m in word.finditer(token.string) if not any(a <= m.start() < b for a, b in inside)
            ]
            if spans:
                found.append((token, spans))
        elif token.type == tokenize.NAME and token.string == name and previous is not None:
            if previous.type == tokenize.OP and previous.string == ".":
                found.append((token, [(0, len(name))]))
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token
    return found


def replace_column(code: str, old: str, new: str, *, near_line: int | None = None) -> tuple[str, int] | None:
    """``code`` with column references to ``old`` replaced by ``new``, and how many were replaced.

    Only references in the statement around ``near_line`` are replaced when that statement has
    any; otherwise every column reference in the file. Identifiers and comments are never touched.
    None when there is no reference or the result does not parse.
    """
    try:
        tree = ast.parse(code)
        references = _column_references(code, old)
    except (SyntaxError, tokenize.TokenError, ValueError):
        return None
    if near_line is not None:
        span = _statement_span(tree, near_line)
        if span is not None:
            local = [(t, s) for t, s in references if span[0] <= t.start[0] <= span[1]]
            references = local or references
    if not references:
        return None
    lines = code.split("\n")  # the same line breaks tokenize counts
    # Edit from the end so earlier offsets stay valid.
    edits: list[tuple[int, int, int]] = []  # (row, column, length)
    for token, spans in references:
        for start, end in spans:
            # offsets inside a token: map to (row, col) by walking its text
            before = token.string[:start]
            row = token.start[0] + before.count("\n")
            col = (token.start[1] + start) if "\n" not in before else len(before.rsplit("\n", 1)[1])
            edits.append((row, col, end - start))
    for row, col, length in sorted(edits, reverse=True):
        text = lines[row - 1]
        lines[row - 1] = text[:col] + new + text[col + length :]
    result = "\n".join(lines)
    try:
        ast.parse(result)
    except SyntaxError:
        return None
    return result, len(edits)


# --- rules -----------------------------------------------------------------------------------


def _missing_input(evidence: Evidence, code: str | None) -> Diagnosis | None:
    cls = evidence.error_class or ""
    if cls.startswith("PATH_NOT_FOUND"):
        path = evidence.message_parameters.get("path", "the input path")
        return _rule(
            "data",
            f"The input path {path} does not exist: the data the job reads is missing. "
            "No code change can fix this; the data must be delivered (or the path corrected) by its owner.",
            _lines_with(evidence, ["PATH_NOT_FOUND"]),
            0.85,
        )
    if cls.startswith("TABLE_OR_VIEW_NOT_FOUND"):
        relation = str(evidence.message_parameters.get("relationName", ""))
        bare = _unquote(relation).rsplit(".", 1)[-1]
        if code and bare:
            for line in code.splitlines():
                if bare in line and _WRITE_CONTEXT.search(line):
                    return None  # the job writes this table itself: an ordering or naming bug, not missing data
        return _rule(
            "data",
            f"The table {relation or '(unnamed)'} that the job reads does not exist. "
            "The upstream data is missing; no code change can fix this.",
            _lines_with(evidence, ["TABLE_OR_VIEW_NOT_FOUND"]),
            0.8,
        )
    return None


def _unresolved_column(evidence: Evidence, code: str | None) -> Diagnosis | None:
    cls = evidence.error_class or ""
    if not cls.startswith("UNRESOLVED_COLUMN"):
        return None
    name = _unquote(str(evidence.message_parameters.get("objectName", ""))).rsplit(".", 1)[-1]
    lines = _lines_with(evidence, ["UNRESOLVED_COLUMN"])
    best = best_suggestion(name, evidence.suggestions) if name else None
    if best is None:
        return _rule(
            "code",
            f"The code references a column `{name or '?'}` that does not exist in the data"
            + (f"; none of Spark's suggestions ({', '.join(evidence.suggestions)}) is close." if evidence.suggestions else "."),
            lines,
            0.6,
        )
    target, score = best
    referenced = bool(code) and re.search(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])", code or "") is not None
    confidence = 0.9 if score >= 0.4 or len(evidence.suggestions) == 1 else 0.75
    if not referenced:
        confidence = 0.5
    return _rule(
        "code",
        f"The code references column `{name}`, which does not exist (schema drift or a typo); "
        f"Spark suggests `{target}`, which is the closest existing column.",
        lines,
        confidence,
    )


def _max_result_size(evidence: Evidence, code: str | None) -> Diagnosis | None:
    lines = _lines_with(evidence, ["maxResultSize"])
    if not lines:
        return None
    return _rule(
        "config",
        "The results collected to the driver are bigger than spark.driver.maxResultSize; "
        "the limit must be raised (or less data collected).",
        lines,
        0.85,
    )


def _executor_memory(evidence: Evidence, code: str | None) -> Diagnosis | None:
    lines = _lines_with(evidence, _EXECUTOR_MEMORY_MARKERS)
    lines += [t for t in _texts(evidence) if _DRIVER_OOM in t and ("Lost task" in t or "Exception in task" in t)]
    if not lines:
        return None
    return _rule(
        "config",
        "Executors ran out of memory (killed for exceeding memory limits or OutOfMemoryError in a task); "
        "executor memory must be raised.",
        lines,
        0.75,
    )


def _driver_oom(evidence: Evidence, code: str | None) -> Diagnosis | None:
    lines = _lines_with(evidence, [_DRIVER_OOM])
    if not lines:
        return None
    return _rule(
        "config",
        "The driver ran out of heap memory (java.lang.OutOfMemoryError); driver memory must be raised.",
        lines,
        0.75,
    )


def _transient(evidence: Evidence, code: str | None) -> Diagnosis | None:
    lines = _lines_with(evidence, _TRANSIENT_MARKERS)
    if not lines:
        return None
    return _rule(
        "transient",
        "The run failed on a transient infrastructure problem (lost executor, shuffle fetch failure or a "
        "connection reset/refused); the same job is expected to succeed when run again.",
        lines,
        0.7,
    )


# --- fixes -----------------------------------------------------------------------------------


def _doubled(current: str | None, default: str, cap_key: str) -> str | None:
    """Twice ``current`` (or the default), capped; None when already at the cap."""
    size = parse_size(current or default)
    cap = parse_size(MEMORY_CAPS[cap_key])
    if size >= cap:
        return None
    return format_size(min(2 * size, cap))


def _fix_unresolved_column(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                           job: Mapping[str, Any]) -> Patch | None:
    if not code:
        return None
    name = _unquote(str(evidence.message_parameters.get("objectName", ""))).rsplit(".", 1)[-1]
    best = best_suggestion(name, evidence.suggestions) if name else None
    if best is None or not re.fullmatch(r"[A-Za-z_]\w*", best[0]):
        return None
    target = best[0]
    near = evidence.user_line
    frame_file = (evidence.user_frame or "").split('"')[1:2]
    app = _spark_file(job)
    if frame_file and app and frame_file[0].rsplit("/", 1)[-1] != app:
        near = None  # the frame is in another file: its line number means nothing here
    replaced = replace_column(code, name, target, near_line=near)
    if replaced is None:
        return None
    new_code, count = replaced
    return Patch(
        kind="code",
        explanation=f"Replaced the unresolved column `{name}` with `{target}`, the existing column Spark "
        f"suggested ({count} reference{'s' if count != 1 else ''}).",
        code=new_code,
        source="rule",
    )


def _fix_max_result_size(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                         job: Mapping[str, Any]) -> Patch | None:
    conf = job_spark.get("conf") or {}
    current = conf.get("spark.driver.maxResultSize")
    if current is None:
        for text in _texts(evidence):
            match = _MAX_RESULT_SIZE.search(text)
            if match:
                current = match.group(1)
                break
    size = parse_size(current or SPARK_DEFAULT_MAX_RESULT_SIZE)
    cap = parse_size(MEMORY_CAPS["spark.driver.maxResultSize"])
    if size >= cap:
        return None
    new_size = min(max(2 * size, parse_size(SPARK_DEFAULT_MAX_RESULT_SIZE)), cap)
    changes: dict[str, Any] = {}
    driver = parse_size(job_spark.get("driverMemory") or SPARK_DEFAULT_MEMORY)
    if new_size > driver:  # Spark's own default pairs a 1g limit with a 1g driver; beyond that, grow the driver
        doubled = _doubled(job_spark.get("driverMemory"), SPARK_DEFAULT_MEMORY, "driverMemory")
        if doubled:
            changes["driverMemory"] = doubled
    return Patch(
        kind="config",
        explanation=f"Raised spark.driver.maxResultSize from {current or SPARK_DEFAULT_MAX_RESULT_SIZE} to "
        f"{format_size(new_size)}" + (f" and driverMemory to {changes['driverMemory']}" if changes else "") + ".",
        spark_changes=changes,
        conf_changes={"spark.driver.maxResultSize": format_size(new_size)},
        source="rule",
    )


def _fix_memory(field: str, job_spark: Mapping[str, Any]) -> Patch | None:
    current = job_spark.get(field)
    doubled = _doubled(current, SPARK_DEFAULT_MEMORY, field)
    if doubled is None:
        return None
    return Patch(
        kind="config",
        explanation=f"Doubled {field} from {current or SPARK_DEFAULT_MEMORY} to {doubled}.",
        spark_changes={field: doubled},
        source="rule",
    )


def _fix_driver_memory(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                       job: Mapping[str, Any]) -> Patch | None:
    return _fix_memory("driverMemory", job_spark)


def _fix_executor_memory(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                         job: Mapping[str, Any]) -> Patch | None:
    return _fix_memory("executorMemory", job_spark)


def _fix_rerun(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
               job: Mapping[str, Any]) -> Patch | None:
    return Patch(kind="rerun", explanation="Transient failure: run the job again unchanged.", source="rule")


# --- the registry ------------------------------------------------------------------------------

Diagnoser = Callable[[Evidence, "str | None"], "Diagnosis | None"]
Fixer = Callable[[Evidence, "str | None", Mapping[str, Any], Mapping[str, Any]], "Patch | None"]


@dataclass(frozen=True)
class Rule:
    """One rule: its name (``Diagnosis.rule``), what it recognises, and its remedy (None: no patch heals it)."""

    name: str
    diagnose: Diagnoser
    fix: Fixer | None = None


# In order: specific error classes first, memory before the transient signatures they resemble.
# A new rule is one entry here (plus its functions and its test).
RULES: tuple[Rule, ...] = (
    Rule("missing-input", _missing_input),
    Rule("unresolved-column", _unresolved_column, _fix_unresolved_column),
    Rule("max-result-size", _max_result_size, _fix_max_result_size),
    Rule("executor-out-of-memory", _executor_memory, _fix_executor_memory),
    Rule("driver-out-of-memory", _driver_oom, _fix_driver_memory),
    Rule("transient", _transient, _fix_rerun),
)
RULE_NAMES = tuple(rule.name for rule in RULES)
_BY_NAME = {rule.name: rule for rule in RULES}


def diagnose_by_rules(
    evidence: Evidence, code: str | None = None, job: Mapping[str, Any] | None = None
) -> Diagnosis | None:
    """The diagnosis of the first rule whose signature matches the evidence, or None.

    ``code`` is the application file; ``job`` the CDE job definition (its "spark" section is read).
    """
    for rule in RULES:
        diagnosis = rule.diagnose(evidence, code)
        if diagnosis is not None:
            diagnosis.rule = rule.name
            return diagnosis
    return None


def fix_by_rules(
    diagnosis: Diagnosis,
    evidence: Evidence,
    code: str | None,
    job_spark: Mapping[str, Any] | None = None,
    job: Mapping[str, Any] | None = None,
) -> Patch | None:
    """The deterministic patch for a rule's diagnosis, or None (no rule, unfixable, or at a cap).

    ``job_spark`` is the job's "spark" section (driverMemory, conf, ...); ``job`` the whole job
    definition, used only to check that the traceback's file is the application file.
    """
    rule = _BY_NAME.get(diagnosis.rule or "") if diagnosis.source == "rule" else None
    if rule is None or rule.fix is None:
        return None  # not a rule's diagnosis, or a rule with no remedy (missing input)
    job_spark = job_spark or {}
    return rule.fix(evidence, code, job_spark, job or {"spark": dict(job_spark)})
