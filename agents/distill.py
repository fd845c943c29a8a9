"""Log distillation: from a failed run's driver logs to the few lines that explain the failure.

``distill(stdout, stderr)`` scans each log once, line by line (linear time, bounded memory, every
line cut to ``MAX_LINE_CHARS`` before any pattern sees it), and returns an ``Evidence``: Spark's
error class and message parameters, Spark's own suggestions, the last traceback frame in user
code, the last "Caused by:", the last exception line, and a distilled text for the model that
never exceeds the token budget by the offline estimate ``agents.tokens.estimate_tokens``.

Under spark-submit the Python traceback is on the driver's stdout and log4j lines are on stderr;
both are read. Spark 4 texts (SQLSTATE, one-line JSON log records) and Spark 3.5 texts (neither)
are understood: we parse the ``[ERROR_CLASS]`` and the suggestion list, not sentences.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agents.errors import InvalidInput
from agents.record import Evidence
from agents.remedies import MARKERS as CATALOG_MARKERS
from agents.tokens import chars_for, estimate_tokens
from agents.untrusted import defuse

MAX_LINE_CHARS = 2_000  # longer lines are cut before any pattern sees them
MAX_JSON_LINE_CHARS = 200_000  # JSON log records longer than this are not parsed
MAX_SHOWN_LINE_CHARS = 400  # a line in the distilled text
HEAD_LINES = 12
TAIL_LINES = 60  # the last lines that are not log4j INFO/DEBUG chatter or Java stack frames
MAX_KEY_EXCERPTS = 200  # per log: the first FIRST_KEY_EXCERPTS and the latest ones are kept
FIRST_KEY_EXCERPTS = 20
_SITE_CALL = re.compile(r'"(\w+)" was called from\s*$')
_SITE_PLACE = re.compile(r"(?:\d+\| )?(\S+?):(\d+)\b")
MAX_APP_FRAMES = 8  # application-file frames kept per traceback, innermost last
CONTEXT_AFTER = 2  # lines kept after a key line (Java "at ..." frames skipped)
MAX_KEY_LINES = 40  # in Evidence.key_lines
MIN_BUDGET = 16
SECTION = "\n== "  # starts each log excerpt after the summary (summary lines never start with "== ")
JSON_RECORD_PREFIX = "[log record] "  # how a Spark 4 JSON log record is shown

# Paths of library code: frames there are not the user's.
_LIBRARY_MARKERS = (
    "/pyspark/",
    "pyspark.zip",
    "/py4j/",
    "py4j-",
    "site-packages",
    "dist-packages",
    "/lib/python3",
    "<frozen",
)

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
# "KeyError: 'x'", "pyspark.errors...AnalysisException: [X] ...", ": java.lang.OutOfMemoryError: ...",
# 'Exception in thread "main" org.apache.spark.SparkException: ...'
_EXCEPTION = re.compile(
    r'(?:Exception in thread "[^"]*" |: )?'
    r"((?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Error|Exception|Exit|Interrupt|Failure))"
    r"(?::\s?(.*))?$"
)
_CLASS_AFTER_EXCEPTION = re.compile(
    r"(?:Error|Exception|Failure)\s*:\s*\[([A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)*)\]"
)
_CLASS_AT_START = re.compile(r"\[([A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)*)\]")
# log4j line starts: "26/11/21 08:53:38 ERROR ..." (Spark's default) or "2024-05-01 10:00:09,123 WARN ..."
_LOG4J_TIME = r"(?:\d\d/\d\d/\d\d|\d{4}-\d\d-\d\d)[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?\s+"
_LOG4J_PREFIX = re.compile(_LOG4J_TIME)
_LOG4J_LEVEL = re.compile(_LOG4J_TIME + r"(ERROR|WARN) ")
_LOG4J_CHATTER = re.compile(_LOG4J_TIME + r"(INFO|DEBUG|TRACE) ")
# Lines every Spark driver prints while it starts, whatever the job: never evidence.
_SPARK_BANNER = re.compile(
    r"Using Spark's default log4j profile|WARNING: Using incubator modules|NativeCodeLoader: Unable to load"
    r"|Setting default log level to|To adjust logging level use sc\.setLogLevel")
_SUGGESTIONS = re.compile(r"Did you mean one of the following\? \[([^\]]*)\]")
_QUOTED_NAME = re.compile(r"(?:`[^`]*`\.)*`[^`]*`")

# Substrings of lines worth keeping even when no exception is printed on them: every marker a rule
# of the catalog matches (so rules and distillation cannot drift apart), and what the model needs.
_SIGNAL_MARKERS = (*CATALOG_MARKERS, "== SQL", "Did you mean")

# Message parameters per error class family, named as Spark names them in messageParameters.
_PARAMETER_PATTERNS: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
    ("UNRESOLVED_", re.compile(r"with name ((?:`[^`]*`\.)*`[^`]*`) cannot be resolved"), ("objectName",)),
    (
        "AMBIGUOUS_REFERENCE",
        re.compile(r"Reference ((?:`[^`]*`\.)*`[^`]*`) is ambiguous, could be: \[([^\]]*)\]"),
        ("name", "referenceNames"),
    ),
    (
        "CAST_INVALID_INPUT",
        re.compile(r"The value (.{0,200}?) of the type \"([^\"]*)\" cannot be cast to \"([^\"]*)\""),
        ("expression", "sourceType", "targetType"),
    ),
    ("TABLE_OR_VIEW_NOT_FOUND", re.compile(r"The table or view (\S+) cannot be found"), ("relationName",)),
    ("PATH_NOT_FOUND", re.compile(r"Path does not exist: (\S+?)\.?(?:\s|$)"), ("path",)),
    ("DIVIDE_BY_ZERO", re.compile(r'set "([^"]+)" to "false"'), ("config",)),
]


def is_library_path(path: str) -> bool:
    """True for frames in pyspark, py4j, the standard library or installed packages."""
    return any(marker in path for marker in _LIBRARY_MARKERS)


@dataclass
class _Frame:
    file: str
    line: int
    function: str
    code: str = ""

    def text(self) -> str:
        return f'File "{self.file}", line {self.line}, in {self.function}'


@dataclass
class _Scan:
    """What one pass over one log found."""

    name: str
    lines: int = 0
    head: list[tuple[int, str]] = field(default_factory=list)
    tail: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    first_excerpts: list[tuple[int, list[str]]] = field(default_factory=list)
    last_excerpts: deque[tuple[int, list[str]]] = field(
        default_factory=lambda: deque(maxlen=MAX_KEY_EXCERPTS - FIRST_KEY_EXCERPTS)
    )
    key_texts: list[str] = field(default_factory=list)
    exception: str | None = None
    exception_class: str | None = None  # the [ERROR_CLASS] on the last exception line
    caused_by: str | None = None
    classes: list[tuple[str, str]] = field(default_factory=list)  # (class, line), latest last
    json_class: str | None = None
    json_parameters: dict[str, Any] = field(default_factory=dict)
    json_message: str | None = None
    user_frame: _Frame | None = None
    app_frame: _Frame | None = None
    app_lines: list[int] = field(default_factory=list)  # the application file's frames, failing one last
    site: str | None = None  # Spark's query context: '"__truediv__" was called from app.py:21'
    site_line: int | None = None

    @property
    def excerpts(self) -> list[tuple[int, list[str]]]:
        return self.first_excerpts + list(self.last_excerpts)


def _iter_lines(text: str) -> Iterator[str]:
    """Yields the lines of ``text`` without copying it whole; a line is cut at MAX_JSON_LINE_CHARS."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            end = size
        yield text[start : min(end, start + MAX_JSON_LINE_CHARS)]
        start = end + 1


def _error_class_in(line: str) -> str | None:
    match = _CLASS_AFTER_EXCEPTION.search(line)
    if match:
        return match.group(1)
    match = _CLASS_AT_START.match(line.lstrip())
    return match.group(1) if match else None


def _parse_json_record(raw: str) -> tuple[str | None, dict[str, Any], str | None]:
    """(errorClass, messageParameters, msg) of a Spark 4 one-line JSON log record, if it is one."""
    if len(raw) >= MAX_JSON_LINE_CHARS:
        return None, {}, None
    try:
        record = json.loads(raw)
    except ValueError:
        return None, {}, None
    if not isinstance(record, dict):
        return None, {}, None
    context = record.get("context") if isinstance(record.get("context"), dict) else {}
    error_class = context.get("errorClass") or record.get("errorClass")
    parameters = context.get("messageParameters") or record.get("messageParameters") or {}
    message = record.get("msg") if isinstance(record.get("msg"), str) else None
    return (
        error_class if isinstance(error_class, str) else None,
        parameters if isinstance(parameters, dict) else {},
        message,
    )


def _scan(name: str, text: str, app_file_name: str | None) -> _Scan:
    scan = _Scan(name)
    before: deque[str] = deque(maxlen=1)
    open_excerpt: list[str] | None = None
    after_left = 0
    last_frame: _Frame | None = None
    called: str | None = None  # the function of a '"f" was called from' line, until its next line
    for number, raw in enumerate(_iter_lines(text), start=1):
        line = raw[:MAX_LINE_CHARS].rstrip("\r")
        scan.lines = number
        stripped = line.lstrip()
        if called is not None:  # Spark's DataFrame query context names where the expression was built
            site = _SITE_PLACE.match(stripped)
            if site and (not app_file_name or site.group(1).rsplit("/", 1)[-1] == app_file_name):
                scan.site = f'"{called}" was called from {site.group(1)}:{site.group(2)}'
                scan.site_line = int(site.group(2))
            called = None
        match = _SITE_CALL.search(stripped)
        if match:
            called = match.group(1)
        is_java_frame = stripped.startswith("at ") or (stripped.startswith("... ") and stripped.endswith("more"))
        # The head and tail leave out what every Spark driver prints (start-up banner, INFO chatter).
        quiet = is_java_frame or _LOG4J_CHATTER.match(line) is not None or _SPARK_BANNER.search(line) is not None
        if len(scan.head) < HEAD_LINES and not quiet:
            scan.head.append((number, line[:MAX_SHOWN_LINE_CHARS]))
        shown = line
        key = False

        if stripped.startswith("{") and '"errorClass"' in raw:
            error_class, parameters, message = _parse_json_record(raw)
            if error_class:
                scan.json_class, scan.json_parameters, scan.json_message = error_class, parameters, message
                shown = f"{JSON_RECORD_PREFIX}{message or error_class}".replace("\n", " ")
                key = True
        elif is_java_frame:
            pass
        elif stripped.startswith('File "'):
            match = _FRAME.match(stripped)
            if match:
                last_frame = _Frame(match.group(1), int(match.group(2)), match.group(3))
                if not is_library_path(last_frame.file):
                    scan.user_frame = last_frame
                    key = True
                    if app_file_name and last_frame.file.rsplit("/", 1)[-1] == app_file_name:
                        scan.app_frame = last_frame
                        if last_frame.line in scan.app_lines:  # a traceback printed again
                            scan.app_lines.remove(last_frame.line)
                        scan.app_lines = (scan.app_lines + [last_frame.line])[-MAX_APP_FRAMES:]
        elif stripped.startswith("Caused by:"):
            scan.caused_by = stripped
            key = True
        else:
            if last_frame is not None and line.startswith("    ") and not set(stripped) <= set("^~ "):
                last_frame.code = stripped  # the source line printed under its frame
            match = _EXCEPTION.match(stripped) if not _LOG4J_LEVEL.match(line) else None
            if match:
                scan.exception = stripped[2:] if stripped.startswith(": ") else stripped
                scan.exception_class = _error_class_in(stripped)
                key = True
            if "[" in line:
                error_class = _error_class_in(line)
                if error_class:
                    scan.classes.append((error_class, line))
                    key = True
            level = _LOG4J_LEVEL.match(line)
            if not key and level and level.group(1) == "ERROR":
                key = True
            if not key and any(marker in line for marker in _SIGNAL_MARKERS):
                key = True
        if not stripped.startswith('File "'):
            last_frame = None

        if key:
            shown = shown[:MAX_SHOWN_LINE_CHARS]
            open_excerpt = list(before) + [shown]
            entry = (number - len(before), open_excerpt)
            if len(scan.first_excerpts) < FIRST_KEY_EXCERPTS:
                scan.first_excerpts.append(entry)
            else:
                scan.last_excerpts.append(entry)
            if shown.strip() and shown.strip() not in scan.key_texts[-MAX_KEY_LINES:]:
                scan.key_texts.append(shown.strip())
                if len(scan.key_texts) > 4 * MAX_KEY_LINES:
                    del scan.key_texts[: 2 * MAX_KEY_LINES]
            after_left = CONTEXT_AFTER
            before.clear()
        elif after_left > 0 and open_excerpt is not None and not quiet:
            open_excerpt.append(line[:MAX_SHOWN_LINE_CHARS])
            after_left -= 1
        elif is_java_frame:
            after_left = 0  # a Java stack follows: its frames say nothing the key line did not
        elif not quiet:  # the line before a key line, unless it is chatter
            before.append(line[:MAX_SHOWN_LINE_CHARS])
        if stripped and not quiet:
            scan.tail.append((number, shown[:MAX_SHOWN_LINE_CHARS]))
    return scan


def _split_names(inner: str) -> list[str]:
    names = [name.replace("`", "") for name in _QUOTED_NAME.findall(inner)]
    if not names:
        names = [part.strip().strip("'\"") for part in inner.split(",") if part.strip()]
    return names


def _message_parameters(error_class: str, message: str) -> dict[str, Any]:
    for prefix, pattern, names in _PARAMETER_PATTERNS:
        if error_class.startswith(prefix):
            match = pattern.search(message)
            if match:
                return dict(zip(names, match.groups(), strict=True))
    return {}


def _pick_frame(scans: list[_Scan]) -> _Frame | None:
    for attribute in ("app_frame", "user_frame"):
        for scan in scans:
            frame = getattr(scan, attribute)
            if frame is not None:
                return frame
    return None


def _app_lines(scans: list[_Scan], frame: _Frame | None) -> list[int]:
    """The application file's lines in the traceback, the failing one last, then the line where
    Spark says the failing expression was built: where the code the model sees is centred."""
    lines = next((list(scan.app_lines) for scan in scans if scan.app_lines), [frame.line] if frame else [])
    site = next((scan.site_line for scan in scans if scan.site_line), None)
    if site is not None:
        lines = [n for n in lines if n != site] + [site]
    return lines


def _fit_lines(lines: list[str], budget_chars: int, *, keep_end: bool) -> list[str]:
    """As many whole lines as fit in ``budget_chars``, from the start or from the end."""
    kept: list[str] = []
    used = 0
    for line in reversed(lines) if keep_end else lines:
        if used + len(line) + 1 > budget_chars:
            break
        kept.append(line)
        used += len(line) + 1
    return kept[::-1] if keep_end else kept


def _excerpt_lines(scan: _Scan) -> list[str]:
    """Key excerpts as numbered lines, repeated texts dropped, in log order."""
    out: list[str] = []
    seen: set[str] = set()
    last_number = 0
    for start, lines in scan.excerpts:
        block = []
        for offset, text in enumerate(lines):
            number = start + offset
            # A log4j line's date differs between repeats of the same message.
            prefix = _LOG4J_PREFIX.match(text)
            signature = (text[prefix.end() :] if prefix else text).strip()
            if number <= last_number or not signature or signature in seen:
                continue
            seen.add(signature)
            block.append(f"{number:>6}| {text}")
            last_number = number
        out.extend(block)
    return out


_MARKER_ONLY = re.compile(r"^(?:[\s^~]*|Traceback \(most recent call last\):)$")  # carets, the traceback's title
_LIBRARY_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+|^(/\S+?):\d+: \w*Warning\b')  # frames, warnings


def _says_nothing_new(numbered: str, header_text: str) -> bool:
    """A shown log line that adds nothing for the reader: a line the summary already quotes, a
    caret marker, or a traceback frame in library code (the user's frames are what matter)."""
    text = numbered.split("| ", 1)[-1]
    frame = _LIBRARY_FRAME.match(text)
    said = text.strip().removeprefix(JSON_RECORD_PREFIX)
    return (_MARKER_ONLY.match(text) is not None
            or (frame is not None and is_library_path(frame.group(1) or frame.group(2)))
            or (len(said) >= 20 and said in header_text))


def _compose(
    header: list[str], scans: list[_Scan], budget_chars: int
) -> str:
    """The distilled text: the summary first, then key lines, tails and heads while they fit."""
    header_text = "\n".join(header)
    if len(header_text) > budget_chars:
        return header_text[: max(0, budget_chars - 4)] + " ..."
    parts = [header_text]
    left = budget_chars - len(header_text)
    sections: list[tuple[str, list[str], bool]] = []
    for scan in scans:
        sections.append((f"{SECTION}key lines of {scan.name} ==", _excerpt_lines(scan), True))
    for scan in scans:
        tail = [f"{n:>6}| {text}" for n, text in scan.tail]
        sections.append((f"{SECTION}end of {scan.name} ({scan.lines} lines) ==", tail, True))
    for scan in scans if not any(s.exception for s in scans) else ():  # how it began: only when no error is known
        head = [f"{n:>6}| {text}" for n, text in scan.head if text.strip()]
        sections.append((f"{SECTION}start of {scan.name} ==", head, False))
    shown: set[str] = set()
    for title, lines, keep_end in sections:
        lines = [line for line in lines if line not in shown and not _says_nothing_new(line, header_text)]
        if not lines or left < len(title) + 40:
            continue
        kept = _fit_lines(lines, left - len(title) - 2, keep_end=keep_end)
        if not kept:
            continue
        shown.update(kept)
        block = title + "\n" + "\n".join(kept)
        parts.append(block)
        left -= len(block)
    return "".join(parts)


def summary(distilled: str) -> str:
    """The summary at the head of a distilled text (error class, parameters, suggestions, exception,
    user frame, failing expression), without the log excerpts after it."""
    return distilled.split(SECTION, 1)[0]


def distill(
    stdout: str,
    stderr: str = "",
    *,
    token_budget: int = 2000,
    app_file_name: str | None = None,
) -> Evidence:
    """Distils a failed run's driver logs into ``Evidence`` whose text fits ``token_budget``.

    ``stdout`` and ``stderr`` are the driver's logs (under spark-submit the Python traceback is on
    stdout). ``app_file_name`` (e.g. "sparkApp.py") marks the user's frames when given; otherwise
    any frame outside pyspark, py4j and installed packages is the user's.
    """
    if not isinstance(stdout, str) or not isinstance(stderr, str):
        raise InvalidInput("distill() takes the logs as text (str); decode bytes first")
    if token_budget < MIN_BUDGET:
        raise InvalidInput(f"token_budget must be at least {MIN_BUDGET}, got {token_budget}")

    scans = [_scan(name, text, app_file_name) for name, text in (("stdout", stdout), ("stderr", stderr)) if text]

    # The error class: on the driver's final exception first, then Spark's JSON record, then any.
    error_class = next((s.exception_class for s in scans if s.exception_class), None)
    error_class = error_class or next((s.json_class for s in scans if s.json_class), None)
    error_class = error_class or next((s.classes[-1][0] for s in scans if s.classes), None)

    # The message that carries the class: the last line naming it, or the JSON record's text.
    message = ""
    parameters: dict[str, Any] = {}
    if error_class:
        for scan in scans:
            if scan.json_class == error_class:
                parameters = dict(scan.json_parameters)
                message = message or (scan.json_message or "")
            lines = [text for cls, text in scan.classes if cls == error_class]
            if lines and not message:
                message = lines[-1]
        if not parameters:
            parameters = _message_parameters(error_class, message)
    suggestions: list[str] = []
    match = _SUGGESTIONS.search(message) if message else None
    if match is None:
        for scan in scans:
            for _, text in reversed(scan.classes):
                match = _SUGGESTIONS.search(text)
                if match:
                    break
            if match:
                break
    if match:
        suggestions = _split_names(match.group(1))
        if error_class and error_class.startswith("UNRESOLVED_"):
            parameters.setdefault("proposal", match.group(1))

    exception = next((s.exception for s in scans if s.exception), None)
    caused_by = next((s.caused_by for s in scans if s.caused_by), None)
    frame = _pick_frame(scans)

    header = [f"error class: {error_class or 'none found'}"]
    if parameters:
        header.append("message parameters: " + json.dumps(parameters)[:MAX_SHOWN_LINE_CHARS])
    if suggestions:
        header.append("spark suggests: " + ", ".join(suggestions)[:MAX_SHOWN_LINE_CHARS])
    if exception:
        header.append("exception: " + exception[:MAX_SHOWN_LINE_CHARS])
    if caused_by:
        header.append("last cause: " + caused_by[:MAX_SHOWN_LINE_CHARS])
    if frame:
        header.append("user code: " + frame.text() + (f"\n    {frame.code[:MAX_SHOWN_LINE_CHARS]}" if frame.code else ""))
    site = next((scan.site for scan in scans if scan.site), None)
    if site:  # where the failing expression was built: for a DataFrame, not where the action ran
        header.append("failing expression: " + site[:MAX_SHOWN_LINE_CHARS])

    key_lines: list[str] = []
    for scan in scans:
        for text in scan.key_texts[-MAX_KEY_LINES:]:
            if text not in key_lines:
                key_lines.append(text)
    distilled = defuse(_compose(header, scans, chars_for(token_budget)))  # untrusted text
    return Evidence(
        error_class=error_class,
        message_parameters=parameters,
        suggestions=suggestions,
        user_frame=frame.text() if frame else None,
        user_line=frame.line if frame else None,
        user_lines=_app_lines(scans, frame),
        site=site,
        caused_by=caused_by,
        exception=exception[:MAX_LINE_CHARS] if exception else None,
        key_lines=key_lines[-MAX_KEY_LINES:],
        distilled=distilled,
        distilled_tokens=estimate_tokens(distilled),
        raw_log_bytes=len(stdout.encode("utf-8", "replace")) + len(stderr.encode("utf-8", "replace")),
        log_types=[f"driver/{s.name}" for s in scans],
    )
