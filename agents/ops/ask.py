"""`ask(question, ...)`: an operator's question about the run history, answered by a query tool.

With a model, one structured call chooses the tool and its arguments (`ToolChoice`); our code
validates the choice, refuses a job the history does not know (naming the close ones), runs the
tool and answers with the tool's own text: the model never writes a number. When the model cannot
be asked (`LLMError`), or its choice does not validate, the question goes to the patterns
(`patterns.py`) and the answer says so. Without a model the patterns answer directly; a question
they do not recognise gets the help answer. Nothing here writes: tools run selects only.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from agents import prompts, untrusted
from agents.errors import InvalidInput, LLMError
from agents.ops import patterns
from agents.ops.tools import TOOLS, Tool, describe_tools, job_known, known_jobs, window_table
from agents.record import RecordStore

if TYPE_CHECKING:
    from agents.history import RunHistory
    from agents.llm import HealerLLM

MAX_QUESTION_CHARS = 500
MAX_CLOSE_NAMES = 5
STAGE = "ops_ask"  # the model call's stage name
Source = Literal["model", "pattern", "help"]
ToolName = Literal["count_runs", "list_runs", "incident", "failures_root_causes", "mttr", "top_failing_jobs",
                   "escalations", "anomalies", "none"]  # TOOLS' names, and "none": no tool answers it


class ToolChoice(BaseModel):
    """The one query tool that answers the operator's question, and its arguments (null: not given)."""

    tool: ToolName = Field(description='the tool; "none" when no tool answers the question')
    job: str | None = Field(default=None, description="a job name from the list, only when the question names one")
    status: str | None = Field(default=None, description="a CDE run status")
    window: str | None = Field(default=None, description="24h, 7d, today, yesterday, last-night, ...")
    category: str | None = Field(default=None, description="code | config | transient | data | unknown")
    limit: int | None = Field(default=None, description="how many rows to list")
    incident_id: str | None = Field(default=None, description="<job>--<run id>")


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    tool: str | None  # None: the help answer
    args: dict[str, Any]
    sql: list[str]
    source: Source
    rows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"question": self.question, "text": self.text, "tool": self.tool, "args": self.args, "sql": self.sql,
                "source": self.source, "rows": self.rows}


class InvalidChoice(ValueError):
    """The model's tool choice does not validate: the patterns answer instead."""


def check_question(question: object) -> str:
    """The question, stripped, when it can be asked: text, not empty, at most MAX_QUESTION_CHARS."""
    if not isinstance(question, str) or not question.strip():
        raise InvalidInput("the question is empty")
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"the question is {len(question)} characters long; ask in at most {MAX_QUESTION_CHARS}")
    if not question.isprintable():
        raise InvalidInput("the question contains control characters")
    return question


def ask(question: str, *, history: RunHistory, records: RecordStore | None, llm: HealerLLM | None = None,
        now: datetime | None = None) -> Answer:
    """The answer to `question` from the run history (InvalidInput for a question that cannot be asked)."""
    question = check_question(question)
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise InvalidInput("now must be an aware datetime")
    jobs = known_jobs(history)
    note = ""
    if llm is not None:
        try:
            choice = choose(llm, question, jobs, now)
        except LLMError as exc:
            note = f"(The model could not answer: {exc}. Answered by pattern matching.)"
        else:
            if choice.tool == "none":
                note = "(The model found no tool for this question; tried the patterns.)"
            else:
                try:
                    tool, args = validated(choice)
                except InvalidChoice as exc:
                    note = f"(The model's choice was not valid: {exc}. Answered by pattern matching.)"
                else:
                    return _run(question, tool, args, "model", history, records, now, jobs)
    found = patterns.match(question, jobs)
    if found.tool is None:
        return Answer(question, _noted(note, patterns.help_text(jobs)), None, {}, [], "help")
    tool = TOOLS[found.tool]
    try:
        args = tool.args.model_validate(found.args)
    except ValidationError as exc:
        raise InvalidInput(f"the question asks for {tool.name} with {_short(exc)}") from None
    return _run(question, tool, args, "pattern", history, records, now, jobs, note)


def choose(llm: HealerLLM, question: str, jobs: list[str], now: datetime) -> ToolChoice:
    """The model's choice of tool for `question` (one structured call; LLMError when it has none)."""
    system = prompts.render(STAGE, now=now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC (%A)"),
                            tools=describe_tools(), windows=window_table(),
                            jobs=untrusted.block("jobs", "\n".join(jobs) or "(no job yet)"))
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    choice, _calls = llm.structured(STAGE, messages, ToolChoice)
    return choice


def validated(choice: ToolChoice) -> tuple[Tool, BaseModel]:
    """The tool the model chose and its arguments, validated by the tool's own model (InvalidChoice)."""
    tool = TOOLS.get(choice.tool)
    if tool is None:
        raise InvalidChoice(f"there is no tool {choice.tool!r}")
    given = {k: v.strip() if isinstance(v, str) else v for k, v in choice.model_dump(exclude={"tool"}).items()}
    given = {k: v for k, v in given.items() if v not in (None, "")}
    try:
        return tool, tool.args.model_validate(given)
    except ValidationError as exc:
        raise InvalidChoice(f"{tool.name} {_short(exc)}") from None


def _run(question: str, tool: Tool, args: BaseModel, source: Source, history: RunHistory,
         records: RecordStore | None, now: datetime, jobs: list[str], note: str = "") -> Answer:
    """The tool's answer; for a job the history does not know, that fact and the close names instead."""
    shown = args.model_dump(mode="json", exclude_none=True)
    job = getattr(args, "job", None)
    if job is not None:
        known, sql = job_known(history, job)
        if not known:
            close = difflib.get_close_matches(job, jobs, n=MAX_CLOSE_NAMES, cutoff=0.6)
            text = f"There is no job {job!r} in the run history." + (
                f" Close names: {', '.join(close)}." if close else
                f" No name is close; its jobs include {', '.join(jobs[:MAX_CLOSE_NAMES]) or 'none yet'}.")
            return Answer(question, _noted(note, text), tool.name, shown, [sql], source,
                          [{"unknown_job": job, "close_names": close}])
    result = tool.run(history, args, now, records=records)
    return Answer(question, _noted(note, result.text), result.tool, result.args, result.sql, source, result.rows)


def _noted(note: str, text: str) -> str:
    return f"{note}\n{text}" if note else text


def _short(exc: ValidationError) -> str:
    """A validation error in one line: where and why, without pydantic's links."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error.get("loc", ()))
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        given = error.get("input")
        said = json.dumps(given, default=str)
        shown = f" (got {said})" if where and not isinstance(given, dict) and str(given) not in message else ""
        parts.append(f"{where + ': ' if where else ''}{message}{shown}")
    return "; ".join(parts)
