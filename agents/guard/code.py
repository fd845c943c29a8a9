"""What a patch's new Python code may use: an allowlist checked on the syntax tree.

``inventory(code)`` lists what a file uses: imports, module paths (``os.path.join``, aliases
resolved), builtins and free names, attribute names, string texts (folded, see ``fold``), the SQL
passed to ``spark.sql`` and to expression methods, the targets it reads and writes, the
configuration it sets. ``python_problems(original, new)`` compares two inventories: a use that is
new (not in the original) must be in the vocabulary (``vocabulary``), else it is a problem. So an
original that calls ``os.path.join`` lets the fix keep calling it, but not ``os.system``.

Rules for new uses, each reported by the name of the rule it breaks (never how to get round it):
imports only of ``pyspark.*`` and the named standard modules; module members only from the
vocabulary; no free names but safe builtins (no ``getattr``, ``exec``, ``open``, ``globals``...);
no ``_``-attributes, dunders or frame/code introspection; attributes on objects only from the
PySpark and Python vocabulary (the file's own names only on ``self``/``cls`` and instances of its
classes); a module object, ``spark.conf`` or a checked method (``sql``, ``expr``, ``saveAsTable``,
``config``, ``format``...) never used as a value or called through its class; no stores into module
state (``sys.argv``); no ``str.format`` field access; no new file paths, URIs or reader/writer
locations; reads only of tables or of what the original reads; writes only to what the original
writes; no credential-like configuration read; configuration set from code is returned for the
config rules.
"""

from __future__ import annotations

import ast
import posixpath
import re
from dataclasses import dataclass, field
from functools import cached_property

from agents.guard import vocabulary as vocab
from agents.guard.fold import Folded, Folder

# Methods whose string argument is a SQL statement, or a SQL expression.
SQL_STATEMENT_METHODS = frozenset({"sql"})
SQL_EXPRESSION_METHODS = frozenset({"expr", "selectExpr", "filter", "where"})
# Writer methods: always a write, whatever they are called on.
WRITE_METHODS = frozenset({"saveAsTable", "insertInto", "save", "writeTo", "toTable", "createTable",
                           "createExternalTable", "mergeInto", "start"})
# Format methods: a write on a writer (``df.write``), a read on a reader (``spark.read``).
FORMAT_METHODS = frozenset({"parquet", "csv", "json", "orc", "text", "jdbc", "avro", "xml"})
READ_METHODS = frozenset({"table", "load", "textFile"})
CONFIG_METHODS = frozenset({"config", "set", "setIfMissing", "unset"})
# Methods the guard checks at their calls: taken as values (``run = spark.sql``) they would escape.
METHODS_CALLED_ONLY = (SQL_STATEMENT_METHODS | SQL_EXPRESSION_METHODS | WRITE_METHODS | CONFIG_METHODS
                       | {"get", "option", "options", "format", "format_map"})
CHAINED_ONLY = frozenset({"conf"})
READER_WRITER = frozenset({"read", "write", "readStream", "writeStream", "writeTo"})
SINK_METHODS = (SQL_STATEMENT_METHODS | SQL_EXPRESSION_METHODS | WRITE_METHODS | FORMAT_METHODS | READ_METHODS
                | CONFIG_METHODS | {"option", "options", "format", "format_map"})
TARGET_KEYWORDS = frozenset({"path", "paths", "name", "table", "tableName"})
# Where a reader or writer points: a new one is never a fix's business.
LOCATION_KEYWORDS = frozenset({"path", "paths", "location", "url"})
# Configuration keys whose values are credentials (``spark.hadoop.fs.s3a.secret.key``).
SECRET_KEY = re.compile(r"password|passwd|secret|token|credential|key|private|keytab|sas|auth", re.I)
# A string that names a local file, a remote store or a URL.
PATH_LIKE = re.compile(
    r"^\s*@?(?:/[\w.~$-]|~/|\.\.(?:/|$)|(?:file|hdfs|s3[an]?|abfss?|wasbs?|gs|adl|oss|viewfs|jdbc|https?|ftp|sftp)"
    r":)|/\.\./|/(?:etc|proc|root|home|var|dev|sys)/", re.I)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FIELD_ACCESS = re.compile(r"\{[^{}:!]*[.\[][^{}:!]*[:!}]")  # "{0.attr}", "{x[key]}": str.format field access
# A table name that is really a file: Spark's SQL on files (csv.`/path`, text.`...`).
FILE_TABLE = re.compile(r"^\s*`?(?:csv|json|parquet|orc|text|binaryfile|avro|xml|delta|file)`?\.|.*[/:]", re.I)


@dataclass
class Inventory:
    """What one file uses (see the module docstring)."""

    uses: set[tuple[str, str]] = field(default_factory=set)  # (kind, text)
    strings: set[str] = field(default_factory=set)  # folded texts of string expressions
    sql_statements: list[Folded] = field(default_factory=list)  # arguments of spark.sql(...)
    sql_expressions: list[Folded] = field(default_factory=list)  # arguments of expr/selectExpr/...
    writes: set[str] = field(default_factory=set)  # target keys
    reads: dict[str, Folded] = field(default_factory=dict)  # target key -> its text
    config: list[tuple[Folded, Folded | None, str]] = field(default_factory=list)  # (key, value, call source)
    defined: set[str] = field(default_factory=set)  # names the file defines (functions, attributes)
    sources: dict[str, str] = field(default_factory=dict)  # placeholder -> expression source

    @cached_property
    def identifiers(self) -> set[str]:
        """String literals that are identifiers (column names), usable as attributes (``row.amount``).
        Read for every attribute a patch uses, once the inventory is complete: computed once."""
        return {s for s in self.strings if _IDENTIFIER.match(s)}


def target_key(folded: Folded) -> str:
    """How a read or write target is compared: its text, unquoted, in lower case."""
    return folded.text.replace("`", "").strip().lower()


class _Collector(ast.NodeVisitor):
    def __init__(self, tree: ast.AST, salt: str) -> None:
        self.folder = Folder(tree, salt)
        self.inv = Inventory()
        self.aliases: dict[str, str] = {}
        self.modules: set[str] = set()  # aliases that name a module (``import os``, ``functions as F``)
        self.bound: set[str] = set()
        self.star_modules: list[str] = []
        self.parents: dict[int, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
            self._note_binding(node)
        classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        self.instances = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                          and isinstance(n.value.func, ast.Name) and n.value.func.id in classes
                          for t in n.targets if isinstance(t, ast.Name)}

    # --- bindings ---------------------------------------------------------------------------------

    def _note_binding(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                self.aliases[name] = alias.name if alias.asname else name
                self.modules.add(name)
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                if alias.name == "*":
                    self.star_modules.append(module)
                else:
                    self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
                    if vocab.is_module(f"{module}.{alias.name}"):
                        self.modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            self.bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.bound.add(node.name)
            self.inv.defined.add(node.name)
        elif isinstance(node, ast.arg):
            self.bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self.bound.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            self.inv.defined.add(node.attr)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            self.bound.update(node.names)

    def _use(self, kind: str, text: str) -> None:
        self.inv.uses.add((kind, text))

    # --- visits -------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._use("import", alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        self._use("import", module)
        for alias in node.names:
            self._use("module", f"{module}.{alias.name}" if alias.name != "*" else f"{module}.*")

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            return
        if node.id in self.modules:
            self._use("module value", self.aliases[node.id])  # a module passed around: its members unchecked
        elif node.id in self.aliases:
            self._use("module", self.aliases[node.id])  # an imported object, called or used bare
        elif node.id.startswith("__") and node.id != "__name__":
            self._use("dunder", node.id)
        elif node.id not in self.bound:
            self._use("name", node.id)

    def _store_target(self, target: ast.AST) -> None:
        """``sys.argv[2] = ...``, ``os.environ["X"] = ...``: a patch never changes module state."""
        base = target
        while isinstance(base, ast.Attribute | ast.Subscript | ast.Starred):
            base = base.value
        if base is not target and isinstance(base, ast.Name) and base.id in self.aliases:
            self._use("module store", ast.unparse(target))

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            for part in ast.walk(target):
                self._store_target(part)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._store_target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._store_target(target)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain: list[str] = []
        base: ast.AST = node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        chain.reverse()
        if isinstance(base, ast.Name) and base.id in self.aliases:
            path = ".".join([self.aliases[base.id], *chain])
            self._use("module", path)
            parent = self.parents.get(id(node))
            called = isinstance(parent, ast.Call) and parent.func is node
            if chain and chain[-1] in METHODS_CALLED_ONLY and not called:
                self._use("method value", chain[-1])  # run = SparkSession.sql; e = F.expr
            if called and chain[-1] in METHODS_CALLED_ONLY and any(p[:1].isupper() for p in chain[:-1]):
                self._use("method through its class", path)  # SparkSession.sql(spark, q): the call is unseen
            if path.split(".")[0] in vocab.DATA_MODULES and not self._read_in_place(node):
                self._use("module value", path)  # argv = sys.argv; argv[2] = ... would change what it holds
            return  # the whole chain is one use
        # Not rooted at a module: every attribute of the chain is a use; the base is visited.
        current: ast.AST = node
        while isinstance(current, ast.Attribute):
            self._attribute(current)
            current = current.value
        self.visit(current)

    def _read_in_place(self, node: ast.AST) -> bool:
        """``sys.argv[1]``, ``len(sys.argv)``, ``sys.exit(1)``: read or called where it stands."""
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return True
        if isinstance(parent, ast.Call):
            return parent.func is node or isinstance(parent.func, ast.Name) and parent.func.id == "len"
        return False

    def _attribute(self, node: ast.Attribute) -> None:
        own = isinstance(node.value, ast.Name) and (node.value.id in ("self", "cls") or node.value.id in self.instances)
        self._use("own attribute" if own else "attribute", node.attr)
        parent = self.parents.get(id(node))
        called = isinstance(parent, ast.Call) and parent.func is node
        if not called and node.attr in METHODS_CALLED_ONLY:
            self._use("method value", node.attr)
        if node.attr in CHAINED_ONLY and not isinstance(parent, ast.Attribute):
            self._use("object value", node.attr)  # spark.conf bound to a name: its calls would go unseen

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            self._call(func.attr, node, _chain_attrs(func.value))
            if func.attr in ("format", "format_map"):
                template = self.folder.fold(func.value)
                source_format = (func.attr == "format" and _chain_attrs(func.value) & READER_WRITER
                                 and len(node.args) == 1 and not node.keywords
                                 and self.folder.fold(node.args[0]).exact)  # df.write.format("parquet")
                if template.exact or not source_format:
                    self._format_template(template)
        elif isinstance(func, ast.Name) and func.id in self.aliases:
            self._call(self.aliases[func.id].rsplit(".", 1)[-1], node, set())
        self.generic_visit(node)

    def _format_template(self, template: Folded) -> None:
        """``"{0.attr[key]}".format(x)`` reads attributes and items the guard never sees as code."""
        if not template.exact:
            self._use("format template", "(a template the guard cannot evaluate)")
            return
        text = template.text.replace("{{", "").replace("}}", "")
        for field_name in re.findall(r"\{([^{}:!]*)", text):
            if "." in field_name or "[" in field_name:
                self._use("format field", "{" + field_name + "}")

    def _call(self, method: str, node: ast.Call, chain: set[str]) -> None:
        first = node.args[0] if node.args else None
        fold = self.folder.fold
        unpacked = any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
        if unpacked and method in SINK_METHODS:
            self._use("unreadable call", f".{method}(*...)")  # what it passes is out of the guard's sight
        for keyword in node.keywords:
            if keyword.arg in LOCATION_KEYWORDS:
                self._use("location", ast.unparse(node))
        if method in ("option", "options"):
            keys = [fold(first).text.lower()] if first is not None else []
            keys += [k.arg.lower() for k in node.keywords if k.arg]
            if any(k in LOCATION_KEYWORDS for k in keys) or first is not None and not fold(first).exact:
                self._use("location", ast.unparse(node))
        if method in SQL_STATEMENT_METHODS and any(k.arg not in ("sqlQuery", "query", "args") for k in node.keywords):
            self._use("sql formatting", f".{method}(..., keyword=...)")  # pyspark formats the query with them
        if method in SQL_STATEMENT_METHODS:
            for query in [first, *(k.value for k in node.keywords if k.arg in ("sqlQuery", "query"))]:
                if query is not None:
                    self.inv.sql_statements.append(fold(query))
        elif method in SQL_EXPRESSION_METHODS and node.args:
            for arg in node.args:
                if method in ("expr", "selectExpr") or _stringish(arg):
                    self.inv.sql_expressions.append(fold(arg))
        target = first if first is not None else next(
            (k.value for k in node.keywords if k.arg in TARGET_KEYWORDS), None)
        is_read_chain = bool(chain & {"read", "readStream"})
        is_write_chain = bool(chain & {"write", "writeStream", "writeTo"})
        if method in WRITE_METHODS or (method in FORMAT_METHODS and not is_read_chain):
            self.inv.writes.add(target_key(fold(target)) if target is not None else f"({method} without target)")
        if method in READ_METHODS and method != "load" and not is_write_chain and target is not None \
                or method in FORMAT_METHODS and not is_write_chain and target is not None \
                or method == "load" and target is not None:
            folded = fold(target)
            self.inv.reads[target_key(folded)] = folded
        if method == "get" and first is not None:
            key = fold(first)
            config_like = "conf" in chain or "." in key.text  # a dict's "primary_key" is not a setting
            if key.exact and config_like and SECRET_KEY.search(key.text) or not key.exact and "conf" in chain:
                self._use("secret read", key.text if key.exact else "(a key the guard cannot evaluate)")
        if method in CONFIG_METHODS and (node.args or node.keywords):
            value = fold(node.args[1]) if len(node.args) > 1 else None
            self.inv.config.append((fold(first) if first is not None else Folded("(keywords)", False), value,
                                    ast.unparse(node)))

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant | ast.JoinedStr | ast.BinOp) and _stringish(node) \
                or isinstance(node, ast.Call) and _string_call(node):
            self.inv.strings.add(self.folder.fold(node).text)
        super().generic_visit(node)


def _chain_attrs(node: ast.AST) -> set[str]:
    """Attribute names along a call chain: ``spark.read.option(...).csv`` -> {read, option}."""
    names: set[str] = set()
    while True:
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return names


def _stringish(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return _stringish(node.left) or _stringish(node.right)
    return False


def _string_call(node: ast.Call) -> bool:
    return isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join") \
        and _stringish(node.func.value)


def inventory(code: str, salt: str = "") -> Inventory:
    """What ``code`` uses (raises SyntaxError/ValueError/RecursionError when it does not parse).
    Inventories compared with each other must share one ``salt`` (see ``fold.placeholder``)."""
    tree = ast.parse(code)
    collector = _Collector(tree, salt)
    collector.visit(tree)
    collector.inv.sources = dict(collector.folder.sources)
    for module in collector.star_modules:
        collector.inv.uses.add(("star import", module))
    return collector.inv


def _use_problem(kind: str, text: str, original: Inventory, new: Inventory) -> str | None:
    """Why a use that the original does not have is not allowed, or None."""
    if kind == "import":
        if not vocab.module_import_allowed(text):
            return f"imports {text} (a fix may import only pyspark and a few standard modules)"
    elif kind == "module":
        if text.endswith(".*"):
            return None if vocab.module_import_allowed(text[:-2]) else f"imports everything from {text[:-2]}"
        if not vocab.module_member_allowed(text):
            return f"uses {text}, which is outside the PySpark API and the allowed standard library"
    elif kind == "dunder":
        return f"uses the special name {text}"
    elif kind == "name":
        if text not in vocab.SAFE_BUILTINS:
            return f"uses the builtin or undefined name {text!r}, which a fix may not add"
    elif kind == "attribute":
        if text.startswith("_"):
            return f"accesses the private or special attribute .{text}"
        if text in vocab.DENIED_ATTRIBUTES:
            return f"uses .{text}, which reaches outside the job (commands, the JVM, files or code shipping)"
        if vocab.INTROSPECTION.match(text):
            return f"uses .{text}, Python introspection (frames, code objects) that reaches every module"
        if text not in vocab.attribute_names() and text not in original.identifiers:
            return f"uses .{text}, which is not part of the PySpark or Python vocabulary a fix may use"
    elif kind == "own attribute":  # on self, cls or an instance of a class of the file
        if text.startswith("_") or vocab.INTROSPECTION.match(text) or text in vocab.DENIED_ATTRIBUTES:
            return f"uses the attribute .{text}, which a fix may not use"
        if text not in vocab.attribute_names() and text not in new.defined and text not in original.identifiers:
            return f"uses .{text}, which is neither in the vocabulary nor defined by the file's classes"
    elif kind == "module value":
        return f"uses the module {text} as a value (only its members may be named)"
    elif kind == "format template":
        return "formats with a template the guard cannot evaluate"
    elif kind == "format field":
        return f"formats with the field {text}, which reads attributes or items"
    elif kind == "unreadable call":
        return f"calls {text} with unpacked arguments the guard cannot read"
    elif kind == "location":
        return f"points a reader or writer at a location ({_short(text, 60)}), which a fix may not change"
    elif kind == "method through its class":
        return f"calls {text} through its class, where the guard cannot follow its arguments"
    elif kind == "sql formatting":
        return f"calls {text}: keyword arguments make pyspark format the SQL, which the guard cannot follow"
    elif kind == "module store":
        return f"changes module state ({_short(text, 60)})"
    elif kind == "object value":
        return f"binds .{text} to a name (its calls would not be checked)"
    elif kind == "secret read":
        return f"reads the configuration value {text}, which may hold a credential"
    elif kind == "method value":
        return f"takes the method .{text} as a value instead of calling it"
    elif kind == "star import":
        return None if vocab.module_import_allowed(text) else f"imports everything from {text}"
    return None


def python_problems(original: Inventory, new: Inventory, owned: set[str]) -> list[str]:
    """Why the new code's new uses are not allowed (empty when they all are). ``owned``: the
    targets the original writes (its DataFrame writes and the tables its SQL writes)."""
    problems = []
    for kind, text in sorted(new.uses - original.uses):
        problem = _use_problem(kind, text, original, new)
        if problem:
            problems.append(problem)
    # A star import from pyspark makes free names members of that module.
    stars = [m for k, m in new.uses if k == "star import"]
    problems = [p for p in problems if not _star_member(p, stars)]
    for text in sorted(new.strings - original.strings):
        if _FIELD_ACCESS.search(text.replace("{{", "").replace("}}", "")):
            problems.append("adds a format template that reads attributes or items")
        if PATH_LIKE.match(text) and not _known_path(text, original):
            problems.append(f"adds the file path or URI {_short(text)!r} (a fix may use only the paths the job "
                            "already uses)")
    for key in sorted(set(new.writes) - owned):
        problems.append(f"writes to {_describe_target(key, new)}, which the original job does not write")
    for key, folded in sorted(new.reads.items()):
        if key in original.reads or key in owned:
            continue
        if not folded.exact:
            problems.append(f"reads from {_describe_target(key, new)}, a source the guard cannot evaluate")
        elif PATH_LIKE.match(folded.text) or FILE_TABLE.match(folded.text):
            problems.append(f"reads the new file path or URI {_short(folded.text)!r}")
    return problems


def _star_member(problem: str, stars: list[str]) -> bool:
    match = re.match(r"uses the builtin or undefined name '(\w+)'", problem)
    return bool(match) and any(vocab.module_member_allowed(f"{m}.{match.group(1)}") for m in stars)


def _known_path(text: str, original: Inventory) -> bool:
    """A path inside one the original uses (``..`` resolved first: /app/mount/../../etc is not)."""
    path = posixpath.normpath(text.strip())
    return any(path == known or path.startswith(known.rstrip("/") + "/")
               for known in (posixpath.normpath(s.strip()) for s in original.strings if PATH_LIKE.match(s))
               if len(known) >= 2)


def _describe_target(key: str, inv: Inventory) -> str:
    for name, source in inv.sources.items():
        key = key.replace(name, "{" + source + "}")
    return _short(key)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
