"""What a patch's new SQL may do, read with a real SQL parser (sqlglot's Spark dialect).

SQL is found where the code runs it (``spark.sql(...)``, ``expr``/``selectExpr``/``filter``/
``where``) and, as a backstop, in every new string that reads like a statement. New statements may
read anything (but files), and write only the tables the original job writes; they may not run
commands (``TRANSFORM ... USING``), call Java (``java_method``, ``reflect``), create functions,
add jars or files, write to directories, alter tables or switch databases, use ``${...}``
substitution, delete from or replace tables the job does not own, or drop or truncate any table (a
statement the original already runs stays allowed). SQL
that ``spark.sql`` runs and the guard cannot evaluate or parse is itself a reason to reject.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from agents.guard import vocabulary as vocab
from agents.guard.code import Inventory, target_key
from agents.guard.fold import Folded

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to Command" warnings are ours to judge

DENIED_FUNCTIONS = frozenset({"java_method", "reflect", "try_reflect",
                              "identifier"})  # IDENTIFIER(:name) takes its table from args the guard cannot see
_PLACEHOLDER = re.compile(r"__v[0-9a-f]{24}__")
FILE_FORMATS = frozenset({"csv", "json", "parquet", "orc", "text", "binaryfile", "avro", "xml", "delta", "file"})
# Statements a fix may add; writes among them are checked against the tables the job owns.
ALLOWED_STATEMENTS = (exp.Query, exp.Insert, exp.Create, exp.Drop, exp.Delete, exp.Update, exp.Merge,
                      exp.TruncateTable, exp.Set, exp.Cache, exp.Uncache, exp.Describe, exp.Refresh)
_SUBSTITUTION = re.compile(r"\$\{")  # Spark substitutes ${var}, ${env:X}, ${conf} before parsing
_LOOKS_LIKE_STATEMENT = re.compile(
    r"^\s*(?:SELECT|WITH|INSERT|CREATE|DROP|DELETE|MERGE|UPDATE|TRUNCATE|ALTER|SET|ADD|LOAD|REFRESH|CACHE|"
    r"UNCACHE|REPLACE|MSCK|FROM|VALUES|TABLE|RESET|DESCRIBE|SHOW|USE|ANALYZE|REPAIR|EXPLAIN)\b", re.I)
_DANGEROUS_TEXT = re.compile(r"\b(?:java_method|try_reflect|reflect)\s*\(|\bTRANSFORM\s*\(.*\bUSING\b", re.I | re.S)
_COMMENTS = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)

ConfigCheck = Callable[[str, str], "str | None"]


def _parse(text: str) -> list[exp.Expression]:
    return [s for s in sqlglot.parse(text, read="spark") if s is not None]


def _tables_written(statement: exp.Expression) -> list[exp.Table]:
    """The tables a statement writes, drops or alters (sqlglot keeps them in ``this``, ``tables`` or
    ``expressions`` depending on the statement)."""
    if not isinstance(statement, exp.Insert | exp.Create | exp.Drop | exp.Delete | exp.Update | exp.Merge |
                      exp.TruncateTable | exp.Alter):
        return []
    found = [statement.this, *(statement.args.get("tables") or [])]
    if isinstance(statement, exp.TruncateTable):
        found += statement.expressions
    tables = []
    for target in found:
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Table):
            tables.append(target)
    return tables


def _key(table: exp.Table) -> str:
    return target_key(Folded(table.sql(dialect="spark"), True))


def _statement_like(strings: Iterable[str]) -> list[str]:
    return sorted(s for s in strings if _LOOKS_LIKE_STATEMENT.match(_COMMENTS.sub(" ", s)))


def owned_tables(inv: Inventory) -> set[str]:
    """What a job writes: its DataFrame write targets and the tables its SQL writes."""
    owned = set(inv.writes)
    for text in [f.text for f in inv.sql_statements] + _statement_like(inv.strings):
        try:
            statements = _parse(text)
        except SqlglotError:
            continue
        for statement in statements:
            owned.update(_key(t) for t in _tables_written(statement))
    return owned


def sql_functions(inv: Inventory) -> set[str]:
    names: set[str] = set()
    for text in [f.text for f in inv.sql_statements + inv.sql_expressions] + _statement_like(inv.strings):
        try:
            statements = _parse(text if _LOOKS_LIKE_STATEMENT.match(text) else f"SELECT {text}")
        except SqlglotError:
            continue
        for statement in statements:
            names.update(f.name.lower() for f in statement.find_all(exp.Anonymous))
    return names


class _Checker:
    def __init__(self, original: Inventory, new: Inventory, config_problem: ConfigCheck) -> None:
        self.owned = owned_tables(original)
        self.known_functions = sql_functions(original)
        self.spark_functions = {f.lower() for f in vocab.pyspark_api()["modules"]["pyspark.sql.functions"]}
        self.config_problem = config_problem
        self.read = set(original.reads)
        self.sources = new.sources

    def _name(self, table: exp.Table) -> str:
        text = table.sql(dialect="spark")
        for placeholder, source in self.sources.items():
            text = text.replace(placeholder, "{" + source + "}")
        return text

    def statement(self, statement: exp.Expression, text: str) -> list[str]:
        if not isinstance(statement, ALLOWED_STATEMENTS):
            kind = statement.name.split()[0].upper() if isinstance(statement, exp.Command) else statement.key.upper()
            return [f"runs a SQL {kind} statement, which a fix may not add"]
        problems = []
        if isinstance(statement, exp.Insert) and statement.find(exp.Directory):
            return ["writes query results to a directory"]
        if isinstance(statement, exp.Cache) and statement.args.get("expression") is not None:
            return ["caches a query under a table's name (it would shadow that table)"]
        if isinstance(statement, exp.Set):
            problems += self._set(text)
        if isinstance(statement, exp.Drop) and (statement.args.get("kind") or "").upper() not in ("TABLE", "VIEW"):
            problems.append(f"drops a {(statement.args.get('kind') or 'object').lower()}")
        if isinstance(statement, exp.Create) and (statement.args.get("kind") or "").upper() not in ("TABLE", "VIEW"):
            problems.append(f"creates a {(statement.args.get('kind') or 'object').lower()}, which a fix may not add")
        temporary = isinstance(statement, exp.Create) and (statement.args.get("kind") or "").upper() == "VIEW" \
            and any(isinstance(p, exp.TemporaryProperty) for p in statement.find_all(exp.TemporaryProperty))
        if temporary and _key(statement.this if isinstance(statement.this, exp.Table) else exp.Table()) \
                in self.owned | self.read:
            return ["creates a temporary view named like a table the job reads or writes (it would shadow it)"]
        if isinstance(statement, exp.Select) and statement.args.get("into") is not None:
            return ["selects INTO a table"]
        if isinstance(statement, exp.Create) and statement.find(exp.FileFormatProperty, exp.LocationProperty,
                                                                 exp.OptionsProperty):
            problems.append("creates a table or view over files or data source options")
        if isinstance(statement, exp.TruncateTable) or isinstance(statement, exp.Drop) and \
                (statement.args.get("kind") or "").upper() == "TABLE":
            verb = "TRUNCATE" if isinstance(statement, exp.TruncateTable) else "DROP TABLE"
            names = ", ".join(self._name(t) for t in _tables_written(statement))
            return [f"runs {verb} {names}: a fix never drops or empties a table, not even the job's own"]
        if not temporary:
            for table in _tables_written(statement):
                if _key(table) not in self.owned:
                    verb = type(statement).__name__.upper().replace("TRUNCATETABLE", "TRUNCATE")
                    problems.append(f"{verb} on {self._name(table)}, a table the original job does not write")
        return problems + self.expression(statement)

    def expression(self, tree: exp.Expression) -> list[str]:
        problems = []
        if tree.find(exp.QueryTransform):
            problems.append("runs an external command with TRANSFORM ... USING")
        for function in tree.find_all(exp.Anonymous):
            name = function.name.lower()
            if name in DENIED_FUNCTIONS:
                problems.append(f"calls the SQL function {name}, which reaches Java methods or tables out of sight")
            elif name not in self.spark_functions and name not in self.known_functions:
                problems.append(f"calls the SQL function {name}, which is neither a Spark function nor the job's")
        for table in tree.find_all(exp.Table):
            if (table.db or "").lower() in FILE_FORMATS or "/" in table.name or ":" in table.name:
                problems.append(f"reads files directly through SQL ({self._name(table)})")
        return problems

    def _set(self, text: str) -> list[str]:
        match = re.match(r"^\s*SET\s+([\w.]+)\s*=\s*(.*?)\s*;?\s*$", _COMMENTS.sub(" ", text), re.I | re.S)
        if not match:
            return ["runs a SQL SET the guard cannot read"]
        problem = self.config_problem(match.group(1), match.group(2).strip("'\""))
        return [problem] if problem else []


def sql_problems(original: Inventory, new: Inventory, config_problem: ConfigCheck) -> list[str]:
    """Why the new code's new SQL is not allowed (empty when it all is)."""
    checker = _Checker(original, new, config_problem)
    problems: list[str] = []
    before = {f.text for f in original.sql_statements}
    trusted = _placeholders_in_sql(original)
    for folded in _unique(new.sql_statements + new.sql_expressions):
        if folded.text not in before and set(_PLACEHOLDER.findall(folded.text)) - trusted:
            problems.append("builds SQL from a value the guard cannot evaluate (only values the original job "
                            "already puts into its SQL may be)")
    for folded in _unique(new.sql_statements + new.sql_expressions):
        if folded.text not in before and _SUBSTITUTION.search(folded.text):
            problems.append("uses Spark variable substitution (${...}), which changes the SQL after this check")
    for text in sorted(new.strings - original.strings):
        if _SUBSTITUTION.search(text) and _LOOKS_LIKE_STATEMENT.match(_COMMENTS.sub(" ", text)):
            problems.append("uses Spark variable substitution (${...}), which changes the SQL after this check")
    for folded in _unique(new.sql_statements):
        if folded.text in before:
            continue
        try:
            statements = _parse(folded.text)
        except SqlglotError:
            problems.append("runs SQL the guard cannot parse")
            continue
        if not statements or folded.text.strip() in checker.sources:
            problems.append("runs SQL the guard cannot evaluate")
        for statement in statements:
            problems += checker.statement(statement, statement.sql(dialect="spark"))
    before = {f.text for f in original.sql_expressions}
    for folded in _unique(new.sql_expressions):
        if folded.text in before:
            continue
        try:
            trees = _parse(f"SELECT {folded.text}")
        except SqlglotError:
            problems.append("passes a SQL expression the guard cannot parse")
            continue
        for tree in trees:
            problems += checker.expression(tree)
    for text in sorted(new.strings - original.strings):
        if _DANGEROUS_TEXT.search(text):
            problems.append("adds a string that calls Java methods or external commands from SQL")
        if _LOOKS_LIKE_STATEMENT.match(_COMMENTS.sub(" ", text)):
            try:
                statements = _parse(text)
            except SqlglotError:
                continue  # prose that starts like SQL; what spark.sql runs was checked above
            for statement in statements:
                if not isinstance(statement, exp.Command):  # sqlglot's fallback: prose, not SQL
                    problems += checker.statement(statement, statement.sql(dialect="spark"))
    return list(dict.fromkeys(problems))


def _placeholders_in_sql(inv: Inventory) -> set[str]:
    """The values the original already puts into its SQL or names as its tables."""
    texts = [f.text for f in inv.sql_statements + inv.sql_expressions] + _statement_like(inv.strings)
    texts += [*inv.reads, *inv.writes]
    return {p for text in texts for p in _PLACEHOLDER.findall(text)}


def _unique(items: Iterable[Folded]) -> list[Folded]:
    return list(dict.fromkeys(items))
