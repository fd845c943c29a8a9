"""The semantic guard: a fix may not make a failing job look healthy while its outputs go wrong.

The safety guard (``code``, ``sql``, ``config``) asks what a patch may touch; these rules ask whether
the patched job still fails when its data is wrong, and still writes what it wrote. Each compares
what the original and the new file do, statically (the ``ast``, the safety guard's ``Inventory``
and placeholders, sqlglot for SQL), so only what a patch ADDS or REMOVES counts: what the original
already does stays allowed. One verdict per rule, in ``SEMANTIC_RULES`` order:

- ``no-swallowed-errors``: no new exception handler for a broad class (bare ``except``,
  ``Exception``, ``BaseException``, py4j and pyspark errors such as ``Py4JJavaError`` and
  ``AnalysisException``, or a tuple holding one) without a ``raise`` in it; no new
  ``contextlib.suppress`` of such a class; no ``sys.exit(0)``, ``exit()``/``quit()`` or
  ``os._exit`` added in a handler. Handlers are compared by their normalised source, as multisets.
- ``keeps-outputs``: every output the original writes (DataFrame write targets and tables its SQL
  inserts into, creates, merges or updates, keyed like the safety guard keys them: a table named
  by an argument is keyed on the variable's bindings) is still written, at no fewer call sites.
- ``keeps-write-modes``: no new write in mode ``ignore`` (nor ``CREATE TABLE IF NOT EXISTS ... AS
  SELECT``, which skips the write the same way), no ``append`` (``mode("append")``, ``insertInto``,
  ``INSERT INTO``, ``writeTo(...).append()``) to an output the original does not append to (so no
  ``INSERT OVERWRITE`` turned into ``INSERT INTO``), no write mode the guard cannot evaluate.
- ``keeps-error-checks``: no setting that turns error-raising behaviour off, set in code
  (``spark.conf.set``, the builder's ``.config``, SQL ``SET``), by reader option, or in the patch's
  ``conf_changes``: ``spark.sql.ansi.enabled=false``, ``spark.sql.storeAssignmentPolicy=LEGACY``,
  ``ignoreCorruptFiles``/``ignoreMissingFiles=true``, any ``spark.sql.legacy.*`` key, a reader
  ``mode`` of ``PERMISSIVE``/``DROPMALFORMED``. A catalog remedy (``patch.source == "rule"``) is
  exempt: its catalog entry declares what it changes (its applicability).
- ``no-new-row-filters``: no more row filters of a kind than the original has (``filter``/
  ``where`` and SQL ``WHERE``/``HAVING``/``QUALIFY``; ``dropna``/``na.drop``; ``distinct``/
  ``dropDuplicates``/``SELECT DISTINCT``; ``limit``/``LIMIT``; ``sample``/``TABLESAMPLE``), unless
  the diagnosis says the input rows are invalid (category ``data``). A filter rewritten in place
  keeps the count; one whose result only feeds an action (``.count()``, ``.show()``, ...) is a
  probe, not a filter on an output.

Config and rerun patches carry no code: only ``keeps-error-checks`` looks at them (their
``conf_changes``); the code rules pass.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from sqlglot import exp
from sqlglot.errors import SqlglotError

from agents.guard.code import (
    FORMAT_METHODS,
    SQL_STATEMENT_METHODS,
    TARGET_KEYWORDS,
    WRITE_METHODS,
    Inventory,
    target_key,
)
from agents.guard.fold import Folded, Folder
from agents.guard.sql import _PLACEHOLDER, _key, _parse, _statement_like, _tables_written
from agents.record import Diagnosis, GuardVerdict, Patch

__all__ = ["SEMANTIC_RULES", "semantic_verdicts"]

SEMANTIC_RULES = ("no-swallowed-errors", "keeps-outputs", "keeps-write-modes", "keeps-error-checks",
                  "no-new-row-filters")
MAX_PROBE_DEPTH = 4  # a probe's result may pass through this many single-use names to its action
MAX_SHOWN = 6  # problems named in one reason

# Exception classes that catch a Spark job's failures whatever they are.
BROAD_EXCEPTIONS = frozenset({"Exception", "BaseException", "Py4JJavaError", "Py4JError", "Py4JNetworkError",
                              "AnalysisException", "PySparkException", "CapturedException", "SparkRuntimeException",
                              "QueryExecutionException", "StreamingQueryException", "PythonException"})
BROAD_MODULES = ("pyspark.", "py4j.")
EXITS = frozenset({"sys.exit", "exit", "quit", "builtins.exit", "builtins.quit"})
# DataFrame calls that return rows or numbers, not a DataFrame: a filter feeding only these is a probe.
ACTIONS = frozenset({"count", "collect", "show", "first", "head", "take", "tail", "isEmpty", "toPandas",
                     "toLocalIterator", "explain", "printSchema"})
FILTER_KINDS = {"filter": "filter", "where": "filter", "dropna": "drop-nulls", "distinct": "dedupe",
                "dropDuplicates": "dedupe", "drop_duplicates": "dedupe", "dropDuplicatesWithinWatermark": "dedupe",
                "limit": "limit", "sample": "sample", "sampleBy": "sample"}
V2_MODES = {"append": "append", "overwrite": "overwrite", "overwritePartitions": "overwrite",
            "replace": "overwrite", "createOrReplace": "overwrite", "create": "error"}
_MODE_NAMES = {"errorifexists": "error", "error": "error", "default": "error", "overwrite": "overwrite",
               "append": "append", "ignore": "ignore"}
LOOSE_READ_MODES = frozenset({"permissive", "dropmalformed"})
_IGNORE_FILES = re.compile(r"(?:^|\.)ignore(?:corrupt|missing)files$", re.I)
_SET = re.compile(r"^\s*SET\s+([\w.]+)\s*=\s*(.*?)\s*;?\s*$", re.I | re.S)
_SPACES = re.compile(r"\s+")


# --- what one file does --------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One use the rules compare: its normalised shape (what makes two uses the same), its line, and
    how a reason names it."""

    shape: str
    line: int
    text: str
    context: str = ""  # for a handler: the first statement of its try block


@dataclass
class Facts:
    """What a file does that the semantic rules compare (see the module docstring)."""

    swallowing: list[Site] = field(default_factory=list)  # handlers that catch broadly and do not raise
    exits: list[Site] = field(default_factory=list)  # exit calls in handlers (shape: handler + call)
    suppressions: list[Site] = field(default_factory=list)
    writes: dict[str, list[Site]] = field(default_factory=dict)  # output key -> its write calls
    named: set[str] = field(default_factory=set)  # outputs SQL in any string of the file writes
    modes: dict[str, list[tuple[str, Site]]] = field(default_factory=dict)  # output key -> (mode, site)
    loose_reads: list[Site] = field(default_factory=list)  # reader options that stop failing on bad input
    sql_sets: list[tuple[str, str, int]] = field(default_factory=list)  # SQL SET (key, value, line)
    filters: dict[str, list[Site]] = field(default_factory=dict)  # kind -> sites


def _short(text: str, limit: int = 70) -> str:
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _local_nodes(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Every node under ``nodes`` that runs in their scope (not inside a nested def, lambda or class)."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child in ast.iter_child_nodes(node)
                     if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef))


class _Reader:
    """Reads one file's facts. Folds strings with the safety guard's ``Folder`` and the same salt, so
    targets get the keys of the safety guard's inventory."""

    def __init__(self, tree: ast.Module, inv: Inventory, salt: str) -> None:
        self.tree, self.inv, self.salt = tree, inv, salt
        self.facts = Facts()
        self.sql_texts: set[str] = set()  # what the file's spark.sql calls run
        self.parents: dict[int, ast.AST] = {}
        self.aliases: dict[str, str] = {}  # name bound by an import -> what it names
        self.stores: Counter[str] = Counter()
        self.loads: dict[str, list[ast.Name]] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    self.aliases[alias.asname or top] = alias.name if alias.asname else top
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"
            elif isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Load):
                    self.loads.setdefault(node.id, []).append(node)
                else:
                    self.stores[node.id] += 1

    @cached_property
    def folder(self) -> Folder:
        """Built on first use: a file without writes, SQL or options never pays for it."""
        return Folder(self.tree, self.salt)

    def read(self) -> Facts:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ExceptHandler):
                self._handler(node)
            elif isinstance(node, ast.Call):
                self._call(node)
        for text in _statement_like(self.inv.strings):  # SQL held in strings (a list of statements...)
            if text not in self.sql_texts:
                for statement in self._statements(text):
                    self.facts.named.update(key for key, _, _ in _sql_writes(statement))
        return self.facts

    # --- names ---

    def dotted(self, node: ast.AST) -> str | None:
        """``contextlib.suppress``, ``sys.exit``: a name or attribute chain, imports resolved."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        return ".".join([self.aliases.get(node.id, node.id), *reversed(parts)])

    def _broad(self, node: ast.expr | None) -> bool:
        if node is None:
            return True  # bare except
        if isinstance(node, ast.Tuple):
            return any(self._broad(e) for e in node.elts)
        name = self.dotted(node)
        if name is None:
            return True  # a class computed at run time: the guard cannot tell it is narrow
        return name.rsplit(".", 1)[-1] in BROAD_EXCEPTIONS or name.startswith(BROAD_MODULES)

    def _value(self, node: ast.AST) -> Folded:
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return Folded(str(node.value).lower(), True)
        return self.folder.fold(node)

    # --- handlers ---

    def _handler(self, node: ast.ExceptHandler) -> None:
        shape = ast.unparse(node)
        body = list(_local_nodes(node.body))
        try_node = self.parents.get(id(node))
        around = ast.unparse(try_node.body[0]) if isinstance(try_node, ast.Try) and try_node.body else ""
        site = Site(shape, node.lineno, _short(shape, 50), _short(around, 70))
        raises = any(isinstance(n, ast.Raise) or isinstance(n, ast.Call) and self._failing_exit(n) for n in body)
        if self._broad(node.type) and not raises:
            self.facts.swallowing.append(site)
        for call in (n for n in body if isinstance(n, ast.Call)):
            name = self.dotted(call.func)
            if name == "os._exit" or name in EXITS and not self._failing_exit(call):
                text = ast.unparse(call)
                self.facts.exits.append(Site(f"{shape}|{text}", call.lineno, _short(text, 40), site.text))

    def _failing_exit(self, call: ast.Call) -> bool:
        """``sys.exit(1)``, ``sys.exit("message")``: the job still fails."""
        if self.dotted(call.func) not in EXITS or len(call.args) != 1:
            return False
        arg = call.args[0]
        return isinstance(arg, ast.Constant) and not isinstance(arg.value, bool) and (
            isinstance(arg.value, int) and arg.value != 0 or isinstance(arg.value, str))

    # --- calls ---

    def _call(self, node: ast.Call) -> None:
        if self.dotted(node.func) in ("contextlib.suppress", "suppress") and any(self._broad(a) for a in node.args):
            text = ast.unparse(node)
            self.facts.suppressions.append(Site(text, node.lineno, _short(text, 50)))
        if not isinstance(node.func, ast.Attribute):
            return
        method = node.func.attr
        attrs = {a.attr for a in _attributes(node.func.value)}
        reading, writing = bool(attrs & {"read", "readStream"}), bool(attrs & {"write", "writeStream", "writeTo"})
        if method in SQL_STATEMENT_METHODS:
            self._sql_call(node)
        if method in WRITE_METHODS or method in FORMAT_METHODS and not reading:
            self._write(node, method)
        if not writing:
            self._read_options(node, method)
        kind = FILTER_KINDS.get(method) or ("drop-nulls" if method == "drop" and _last_attr(node) == "na" else None)
        imported = isinstance(node.func.value, ast.Name) and node.func.value.id in self.aliases  # F.filter(array, f)
        if kind and not imported and not self._probe(node):
            text = ast.unparse(node)
            shown = _short("." + text.removeprefix(ast.unparse(node.func.value)).lstrip("."), 50)
            self.facts.filters.setdefault(kind, []).append(Site(text, node.lineno, shown))

    def _probe(self, node: ast.AST, depth: int = 0) -> bool:
        """True when what ``node`` computes only feeds actions (``df.where(...).count()``, or a name
        bound once to it and used only that way): a check on the data, not a filter on an output."""
        top = node
        while True:
            parent = self.parents.get(id(top))
            if isinstance(parent, ast.Attribute) and parent.value is top:
                if parent.attr in ACTIONS:
                    return True
                top = parent
            elif isinstance(parent, ast.Call) and parent.func is top:
                top = parent
            else:
                break
        parent = self.parents.get(id(top))
        if depth < MAX_PROBE_DEPTH and isinstance(parent, ast.Assign) and parent.value is top \
                and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
            name = parent.targets[0].id
            uses = self.loads.get(name, [])
            return self.stores[name] == 1 and bool(uses) and all(self._probe(use, depth + 1) for use in uses)
        return False

    # --- writes ---

    def _write(self, node: ast.Call, method: str) -> None:
        first = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg in TARGET_KEYWORDS), None)
        key = target_key(self.folder.fold(first)) if first is not None else f"({method} without target)"
        text = ast.unparse(node)
        site = Site(text, node.lineno, _short(text, 60))
        self.facts.writes.setdefault(key, []).append(site)
        if method == "start":
            return  # a stream: its output mode is another matter
        keyword = next((k.value for k in node.keywords if k.arg == "mode"), None)
        chained = [c.args[0] for c in _chain(node.func) if isinstance(c.func, ast.Attribute)
                   and c.func.attr == "mode" and c.args]  # nearest first: the last .mode() wins
        given = keyword if keyword is not None else (chained[0] if chained else None)
        mode = self._mode(given) if given is not None else "error"
        if method == "insertInto":
            flag = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "overwrite"), None)
            if isinstance(flag, ast.Constant) and flag.value is not None:
                mode = "overwrite" if flag.value else "append"
            elif flag is None or isinstance(flag, ast.Constant):
                mode = "overwrite" if mode == "overwrite" else "append"  # Spark appends unless told to overwrite
            else:
                mode = f"unknown: overwrite={_short(ast.unparse(flag), 30)}"
        elif method == "writeTo":
            mode = next((V2_MODES[a] for a in self._after(node) if a in V2_MODES), "error")
        self.facts.modes.setdefault(key, []).append((mode, site))

    def _mode(self, node: ast.AST) -> str:
        folded = self._value(node)
        if not folded.exact:
            return f"unknown: {_short(ast.unparse(node), 40)}"
        return _MODE_NAMES.get(folded.text.strip().lower(), f"unknown: {folded.text}")

    def _after(self, node: ast.AST) -> list[str]:
        """The methods called on what ``node`` returns, in order (``writeTo(t).option(...).append()``)."""
        names = []
        while True:
            parent = self.parents.get(id(node))
            if isinstance(parent, ast.Attribute) and parent.value is node:
                names.append(parent.attr)
            elif not (isinstance(parent, ast.Call) and parent.func is node):
                return names
            node = parent

    # --- SQL ---

    def _statements(self, text: str) -> list[exp.Expression]:
        try:
            return [s for s in _parse(text) if not isinstance(s, exp.Command)]  # Command: prose, commands
        except SqlglotError:
            return []  # the safety guard refuses new SQL it cannot parse

    def _sql_call(self, node: ast.Call) -> None:
        query = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg in ("sqlQuery", "query")), None)
        if query is None:
            return
        text = self.folder.fold(query).text
        self.sql_texts.add(text)
        call = ast.unparse(node)
        probe = self._probe(node)
        for statement in self._statements(text):
            if isinstance(statement, exp.Set):
                match = _SET.match(statement.sql(dialect="spark"))
                if match:
                    self.facts.sql_sets.append((match.group(1), match.group(2).strip("'\""), node.lineno))
            for key, how, mode in _sql_writes(statement):
                site = Site(f"{how} {key}|{call}", node.lineno, f"{how} {_short(key, 40)}")
                self.facts.writes.setdefault(key, []).append(site)
                self.facts.modes.setdefault(key, []).append((mode, site))
            if not probe:
                for kind, shown in _sql_filters(statement):
                    self.facts.filters.setdefault(kind, []).append(Site(shown, node.lineno, _short(shown, 50)))

    # --- reader options ---

    def _read_options(self, node: ast.Call, method: str) -> None:
        pairs: list[tuple[str, ast.AST]] = []
        if method == "option" and len(node.args) == 2:
            key = self.folder.fold(node.args[0])
            if key.exact:
                pairs.append((key.text, node.args[1]))
        if method == "options" or method in FORMAT_METHODS | {"load", "table"}:
            pairs += [(k.arg, k.value) for k in node.keywords if k.arg]
        for key, value in pairs:
            folded = self._value(value).text.strip().lower()
            if key.lower() == "mode" and folded in LOOSE_READ_MODES or _IGNORE_FILES.search(key) and folded == "true":
                self.facts.loose_reads.append(Site(ast.unparse(node), node.lineno, f"{key}={folded}"))


def _sql_writes(statement: exp.Expression) -> list[tuple[str, str, str]]:
    """(output key, how, mode) of each output a statement writes; DROP, DELETE, TRUNCATE and temporary
    views write no output."""
    if not isinstance(statement, exp.Insert | exp.Create | exp.Merge | exp.Update):
        return []
    kind = (statement.args.get("kind") or "").upper()
    if isinstance(statement, exp.Create) and kind == "VIEW" and statement.find(exp.TemporaryProperty):
        return []
    if isinstance(statement, exp.Insert):
        mode, how = ("overwrite", "INSERT OVERWRITE") if statement.args.get("overwrite") else ("append", "INSERT INTO")
    elif isinstance(statement, exp.Create):
        if statement.args.get("exists") and statement.args.get("expression") is not None:
            mode, how = "ignore", f"CREATE {kind} IF NOT EXISTS ... AS SELECT"
        elif statement.args.get("replace"):
            mode, how = "overwrite", f"CREATE OR REPLACE {kind}"
        else:
            mode, how = "error", f"CREATE {kind}"
    else:
        mode, how = "merge", type(statement).__name__.upper()
    return [(_key(table), how, mode) for table in _tables_written(statement)]


def _sql_filters(statement: exp.Expression) -> list[tuple[str, str]]:
    """(kind, text) of each row filter in a statement."""
    found = []
    for node in statement.walk():
        if isinstance(node, exp.Where | exp.Having | exp.Qualify):
            found.append(("filter", node.sql(dialect="spark")))
        elif isinstance(node, exp.Limit):
            found.append(("limit", node.sql(dialect="spark")))
        elif isinstance(node, exp.TableSample):
            found.append(("sample", node.sql(dialect="spark")))
        elif isinstance(node, exp.Select) and node.args.get("distinct") is not None:
            found.append(("dedupe", "SELECT DISTINCT"))
    return found


def _chain(node: ast.AST) -> list[ast.Call]:
    """The calls a chain is built on, nearest first: ``df.write.mode(m).format(f).saveAsTable`` ->
    [format(f), mode(m)]."""
    calls = []
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        if isinstance(node, ast.Call):
            calls.append(node)
            node = node.func
        else:
            node = node.value
    return calls


def _attributes(node: ast.AST) -> list[ast.Attribute]:
    """The attributes along a chain: ``spark.read.option(...).csv`` -> [option, read]."""
    found = []
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        if isinstance(node, ast.Attribute):
            found.append(node)
        node = node.func if isinstance(node, ast.Call) else node.value
    return found


def _last_attr(node: ast.Call) -> str:
    """``df.na.drop()`` -> "na": the attribute the method is called on."""
    value = node.func.value if isinstance(node.func, ast.Attribute) else None
    return value.attr if isinstance(value, ast.Attribute) else ""


def facts(code: str, inv: Inventory, salt: str) -> Facts:
    """What ``code`` does (empty when it does not parse); ``inv`` is its inventory with ``salt``."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return Facts()
    return _Reader(tree, inv, salt).read()


# --- the rules -----------------------------------------------------------------------------------


def _verdict(rule: str, problems: list[str], sources: dict[str, str]) -> GuardVerdict:
    """The rule's verdict; placeholders in the reasons shown as the code spells them."""
    if not problems:
        return GuardVerdict(ok=True, rule=rule)
    problems = list(dict.fromkeys(problems))
    shown = "; ".join(problems[:MAX_SHOWN])
    more = f"; and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
    return GuardVerdict(ok=False, rule=rule, reason=_spelled(f"the patch {shown}{more}", sources))


def _at(line: int) -> str:
    return f" at line {line}" if line else ""


def _new(before: Iterable[Site], after: Iterable[Site]) -> list[Site]:
    """The sites of ``after`` beyond those of the same shape in ``before`` (compared as multisets)."""
    left = Counter(s.shape for s in before)
    found = []
    for site in after:
        if left[site.shape] > 0:
            left[site.shape] -= 1
        else:
            found.append(site)
    return found


def _spelled(text: str, sources: dict[str, str]) -> str:
    """``text`` with the placeholders in it shown as ``{expression}``, as the code spells them."""
    return _PLACEHOLDER.sub(lambda m: "{" + sources[m.group(0)] + "}" if m.group(0) in sources else m.group(0), text)


def _name(key: str, sources: dict[str, str]) -> str:
    return _short(_spelled(key, sources), 80)


def _swallowed(before: Facts, after: Facts) -> list[str]:
    problems = []
    for site in _new(before.swallowing, after.swallowing):
        around = f" around `{site.context}`" if site.context else ""
        problems.append(f"adds `{site.text}`{around}{_at(site.line)}: it catches the job's errors without "
                        "re-raising them")
    for site in _new(before.exits, after.exits):
        problems.append(f"adds `{site.text}` in `{site.context}`{_at(site.line)}: the job ends without failing "
                        "when an error is caught")
    for site in _new(before.suppressions, after.suppressions):
        problems.append(f"adds `{site.text}`{_at(site.line)}: it suppresses the job's errors")
    return problems


def _outputs(before: Facts, after: Facts, old_inv: Inventory, new_inv: Inventory) -> list[str]:
    problems = []
    kept = set(after.writes) | after.named | new_inv.writes
    for key in sorted(set(before.writes) | before.named | old_inv.writes):
        sites, now = before.writes.get(key, []), after.writes.get(key, [])
        if key not in kept:
            where = f" (written{_at(sites[0].line)} of the original)" if sites and sites[0].line else ""
            problems.append(f"no longer writes {_name(key, old_inv.sources)}{where}")
        elif len(now) < len(sites):
            problems.append(f"removes a write to {_name(key, old_inv.sources)}: {len(sites)} write calls in the "
                            f"original, {len(now)} now")
    return problems


def _modes(before: Facts, after: Facts, sources: dict[str, str]) -> list[str]:
    problems = []
    for key, uses in sorted(after.modes.items()):
        old = before.modes.get(key, [])
        old_modes = {mode for mode, _ in old}
        added = {id(site) for site in _new([site for _, site in old], [site for _, site in uses])}
        name = _name(key, sources)
        for mode, site in uses:
            if id(site) not in added:
                continue  # the original has this very write
            if mode == "ignore":
                problems.append(f"writes {name} with `{site.text}`{_at(site.line)}: mode ignore skips the write "
                                "when the output exists")
            elif mode == "append" and "append" not in old_modes:
                overwrote = any(s.text.startswith("INSERT OVERWRITE") for _, s in old)
                was = "INSERT OVERWRITE" if overwrote else "mode " + "/".join(sorted(old_modes)) if old_modes else ""
                problems.append(f"appends to {name} with `{site.text}`{_at(site.line)}"
                                + (f" where the original used {was}" if was else "")
                                + ": rows are added to the output instead of replacing it")
            elif mode.startswith("unknown") and mode not in old_modes:
                problems.append(f"writes {name} in a mode the guard cannot evaluate "
                                f"({mode.removeprefix('unknown: ')}){_at(site.line)}")
    return problems


def _conf_problem(key: str, value: str | None, where: str) -> str | None:
    """Why setting ``key`` to ``value`` (None: not evaluable) ``where`` turns an error off, or None."""
    name, text = key.strip(), (value or "").strip().strip("'\"").lower()
    lower = name.lower()
    if lower.startswith("spark.sql.legacy."):
        return f"sets {name} {where}: legacy behaviour gives results where Spark raises errors"
    watched = {"spark.sql.ansi.enabled": "false", "spark.sql.storeassignmentpolicy": "legacy"}
    if lower in watched or _IGNORE_FILES.search(lower):
        if value is None:
            return f"sets {name} to a value the guard cannot evaluate {where}"
        if text == watched.get(lower, "true"):
            return f"sets {name}={value.strip()} {where}: errors on bad data become silent results"
    return None


def _error_checks(patch: Patch, before: Facts, after: Facts, old_inv: Inventory, new_inv: Inventory) -> list[str]:
    problems = [p for k, v in sorted(patch.conf_changes.items()) if (p := _conf_problem(k, str(v), "in conf_changes"))]
    calls_before = Counter(source for *_, source in old_inv.config)
    for key, value, source in new_inv.config:
        if calls_before[source] > 0:
            calls_before[source] -= 1
            continue
        if not key.exact or value is None:
            continue  # the safety guard refuses keys it cannot evaluate; unset restores Spark's default
        text = value.text if value.exact else {"False": "false", "True": "true"}.get(new_inv.sources.get(value.text, ""))
        if problem := _conf_problem(key.text, text, f"with `{_short(source, 60)}`"):
            problems.append(problem)
    old_sets = Counter((k.lower(), v.lower()) for k, v, _ in before.sql_sets)
    for key, value, line in after.sql_sets:
        if old_sets[(key.lower(), value.lower())] > 0:
            old_sets[(key.lower(), value.lower())] -= 1
        elif problem := _conf_problem(key, value, f"with SQL SET{_at(line)}"):
            problems.append(problem)
    for site in _new(before.loose_reads, after.loose_reads):
        problems.append(f"reads with {site.text}{_at(site.line)}: malformed or missing input passes without an error")
    return problems


def _row_filters(before: Facts, after: Facts) -> list[str]:
    problems = []
    for kind, sites in sorted(after.filters.items()):
        old = before.filters.get(kind, [])
        if len(sites) <= len(old):
            continue  # as many as before: a filter rewritten in place
        added = _new(old, sites) or sites
        where = ", ".join(f"`{s.text}`{_at(s.line)}" for s in added[:3])
        problems.append(f"adds a row filter ({kind}: {len(old)} in the original, {len(sites)} now: {where}): "
                        "it drops rows from the job's output")
    return problems


def semantic_verdicts(original_code: str, patch: Patch, inventories: tuple[Inventory, Inventory] | str,
                      salt: str, *, diagnosis: Diagnosis | None = None) -> list[GuardVerdict]:
    """One verdict per rule of ``SEMANTIC_RULES`` on ``patch`` (see the module docstring).

    ``inventories`` are the safety guard's inventories of the original and the new code, taken with
    ``salt`` (or why they could not be taken); ``diagnosis`` is the one the patch answers.
    """
    swallowed, outputs, modes, errors, filters = SEMANTIC_RULES
    remedy = GuardVerdict(ok=True, rule=errors, reason="a catalog remedy: its catalog entry declares what it changes")
    if patch.kind != "code" or not patch.code:
        passed = [GuardVerdict(ok=True, rule=rule, reason="no code change") for rule in SEMANTIC_RULES]
        passed[3] = remedy if patch.source == "rule" else _verdict(errors, _error_checks(
            patch, Facts(), Facts(), Inventory(), Inventory()), {})
        return passed
    if isinstance(inventories, str):
        return [GuardVerdict(ok=False, rule=rule, reason=inventories) for rule in SEMANTIC_RULES]
    old_inv, new_inv = inventories
    before, after = facts(original_code, old_inv, salt), facts(patch.code, new_inv, salt)
    sources = {**old_inv.sources, **new_inv.sources}
    data = diagnosis is not None and diagnosis.category == "data"
    return [
        _verdict(swallowed, _swallowed(before, after), sources),
        _verdict(outputs, _outputs(before, after, old_inv, new_inv), sources),
        _verdict(modes, _modes(before, after, sources), sources),
        remedy if patch.source == "rule" else _verdict(
            errors, _error_checks(patch, before, after, old_inv, new_inv), sources),
        GuardVerdict(ok=True, rule=filters, reason="the diagnosis says the input rows are invalid (category data)")
        if data else _verdict(filters, _row_filters(before, after), sources),
    ]
