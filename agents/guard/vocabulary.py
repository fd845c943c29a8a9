"""The vocabulary a fix may use: the PySpark API, a few standard modules, safe builtins.

The PySpark part is data (``pyspark_api.json``), generated from the installed pyspark by
``python -m agents.guard.vocabulary``, because the healer runs where pyspark is not installed
(the CAI Application). A test keeps the file in step with the pinned pyspark.

What is deliberately left out: ``SparkContext``/``RDD``/``SparkConf`` methods (``rdd.pipe`` runs
commands, ``addFile`` ships files), the JVM bridges (every ``_``-name), the SQL functions that
call Java methods (``reflect``, ``java_method``, ``try_reflect``), and the session calls that ship
code or artifacts (``addArtifact``, ``registerJavaFunction``, ...).
"""

from __future__ import annotations

import datetime
import decimal
import inspect
import json
import re
import sys
from functools import cache
from pathlib import Path

API_FILE = Path(__file__).with_name("pyspark_api.json")

# Classes whose public attributes a fix may use on any object (we cannot know types statically).
PYSPARK_CLASSES = (
    "pyspark.sql.DataFrame",
    "pyspark.sql.Column",
    "pyspark.sql.GroupedData",
    "pyspark.sql.Row",
    "pyspark.sql.SparkSession",
    "pyspark.sql.SparkSession.Builder",
    "pyspark.sql.Catalog",
    "pyspark.sql.conf.RuntimeConfig",
    "pyspark.sql.readwriter.DataFrameReader",
    "pyspark.sql.readwriter.DataFrameWriter",
    "pyspark.sql.readwriter.DataFrameWriterV2",
    "pyspark.sql.dataframe.DataFrameNaFunctions",
    "pyspark.sql.dataframe.DataFrameStatFunctions",
    "pyspark.sql.window.Window",
    "pyspark.sql.window.WindowSpec",
    "pyspark.sql.udf.UDFRegistration",
    "pyspark.sql.types.StructType",
    "pyspark.sql.types.StructField",
    "pyspark.sql.types.DataType",
    "pyspark.sql.types.DecimalType",
    "pyspark.sql.types.ArrayType",
    "pyspark.sql.types.MapType",
    "pyspark.sql.streaming.DataStreamReader",
    "pyspark.sql.streaming.DataStreamWriter",
    "pyspark.sql.streaming.StreamingQuery",
)
# Modules whose public members a fix may name (``F.col``, ``T.IntegerType``, ``Window``).
PYSPARK_MODULES = ("pyspark.sql", "pyspark.sql.functions", "pyspark.sql.types", "pyspark.sql.window",
                   "pyspark.sql.column", "pyspark.sql.dataframe", "pyspark.sql.session",
                   "pyspark.errors", "pyspark.storagelevel")

# Never allowed as new uses, even though PySpark has them.
DENIED_ATTRIBUTES = frozenset({
    "pipe",  # RDD.pipe: runs a command per partition
    "reflect", "java_method", "try_reflect",  # SQL functions that call any Java method
    "registerJavaFunction", "registerJavaUDAF",  # load a JVM class
    "addArtifact", "addArtifacts", "copyFromLocalToFs", "addFile", "addPyFile", "addArchive", "addJar",
    "sparkContext", "_sc", "rdd",  # the RDD/SparkContext world, outside the vocabulary
    "newSession", "getAll",  # every setting at once, credentials included
    "dropTable", "truncateTable", "dropDatabase", "createDatabase",  # catalog calls that destroy or create
    "setCurrentDatabase", "setCurrentCatalog",  # would redirect the job's unqualified writes
    "call_function", "call_udf",  # call any function by name, reflect and java_method among them
    "toJSON", "context", "getConf", "sql_ctx",  # RDD and SparkContext by the back door
    "wholeTextFiles", "binaryFiles", "textFile", "hadoopFile", "newAPIHadoopFile", "sequenceFile",
    "toPandas", "toArrow", "pandas_api", "plot", "apply",  # pandas: string dispatch, plot backends, file I/O
    "dropView", "recoverPartitions", "analyzeTable", "createTable", "createExternalTable",  # catalog changes
    "tableProperty",  # a table's location among them
    "remote", "master",  # another cluster or a Spark Connect server
})
# Python introspection: generators, frames, tracebacks and code objects lead to every module's globals.
INTROSPECTION = re.compile(r"^(?:gi|cr|ag|f|tb|co|func|im)_|^(?:mro|cell_contents)$")

# Standard modules a fix may import, and the members it may use (None: every public member).
SAFE_MODULES: dict[str, frozenset[str] | None] = {
    "datetime": None,
    "decimal": None,
    "math": None,
    "re": frozenset({"compile", "search", "match", "fullmatch", "sub", "subn", "split", "findall", "escape",
                     "IGNORECASE", "I", "MULTILINE", "M", "DOTALL", "S", "VERBOSE", "X", "ASCII", "A"}),
    "functools": frozenset({"reduce", "partial", "lru_cache", "cache", "wraps", "cmp_to_key"}),
    "itertools": frozenset({"chain", "islice", "product", "combinations", "permutations", "groupby",
                            "accumulate", "zip_longest", "repeat", "count", "starmap", "pairwise", "batched"}),
    "typing": frozenset({"Any", "Optional", "Union", "List", "Dict", "Tuple", "Set", "FrozenSet", "Iterable",
                         "Iterator", "Sequence", "Mapping", "Callable", "NamedTuple", "Literal", "cast"}),
    "collections": frozenset({"OrderedDict", "defaultdict", "Counter", "namedtuple", "deque"}),
    "json": frozenset({"loads", "dumps"}),
    "string": frozenset({"ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "punctuation"}),
    "statistics": None,
    "calendar": frozenset({"monthrange", "isleap", "month_name", "day_name"}),
    "sys": frozenset({"argv", "exit"}),
    "logging": frozenset({"getLogger", "INFO", "WARNING", "ERROR", "DEBUG"}),  # no basicConfig: formats, files
}

DATA_MODULES = frozenset({"sys"})  # their members are process state: read them, call exit, nothing more

SAFE_BUILTINS = frozenset({
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "frozenset", "int",
    "isinstance", "issubclass", "len", "list", "map", "max", "min", "next", "print", "range", "repr",
    "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "zip", "iter", "hash",
    "None", "True", "False", "NotImplemented", "Ellipsis", "__name__",
    "Exception", "ValueError", "TypeError", "KeyError", "IndexError", "RuntimeError", "ArithmeticError",
    "ZeroDivisionError", "AttributeError", "LookupError", "NotImplementedError", "StopIteration", "SystemExit",
    "AssertionError", "OverflowError",
})

# Python objects whose methods a fix may call (str.strip, list.append, datetime.strftime, ...).
_PYTHON_TYPES = (str, list, dict, set, frozenset, tuple, int, float, bool, datetime.datetime, datetime.date,
                 datetime.timedelta, datetime.time, decimal.Decimal, type(re.compile("")), type(re.match("", "")))
_LOGGER_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "setLevel"})
# Attributes of the standard objects above that we do not want in a fix anyway.
_DENIED_PYTHON = frozenset({"mro", "fromhex", "maketrans"})


@cache
def pyspark_api() -> dict[str, list[str]]:
    """{"attributes": [...], "modules": {module: [members]}} from ``pyspark_api.json``."""
    return json.loads(API_FILE.read_text(encoding="utf-8"))


@cache
def attribute_names() -> frozenset[str]:
    """Attribute names a new line may use on any object."""
    python = {name for t in _PYTHON_TYPES for name in dir(t) if not name.startswith("_")} - _DENIED_PYTHON
    python |= _LOGGER_METHODS
    return frozenset((set(pyspark_api()["attributes"]) | python) - DENIED_ATTRIBUTES)


def module_member_allowed(path: str) -> bool:
    """Whether a dotted path into a module (``pyspark.sql.functions.col``, ``math.floor``) is allowed."""
    parts = path.split(".")
    if any(p.startswith("_") for p in parts) or parts[-1] in DENIED_ATTRIBUTES:
        return False
    modules = pyspark_api()["modules"]
    for end in range(len(parts), 0, -1):
        module = ".".join(parts[:end])
        if module in modules:
            rest = parts[end:]
            # a member of the module, then attributes of that member from the vocabulary
            return not rest or (rest[0] in modules[module] and all(r in attribute_names() for r in rest[1:]))
    if parts[0] in SAFE_MODULES:
        if parts[0] in DATA_MODULES and len(parts) > 2:  # sys.argv may be read, never changed (sys.argv.insert)
            return False
        return len(parts) == 1 or parts[1] in safe_members(parts[0]) and all(r in attribute_names() for r in parts[2:])
    return False


@cache
def safe_members(module: str) -> frozenset[str]:
    """The members of a standard module a fix may use: the named ones, or every public non-module one."""
    import importlib

    named = SAFE_MODULES[module]
    if named is not None:
        return named
    loaded = importlib.import_module(module)
    return frozenset(n for n in dir(loaded) if not n.startswith("_") and not inspect.ismodule(getattr(loaded, n)))


def is_module(path: str) -> bool:
    """Whether a dotted path names a module we know (PySpark's or an allowed standard one)."""
    return path in pyspark_api()["modules"] or path in SAFE_MODULES


def module_import_allowed(module: str) -> bool:
    """Whether ``import module`` (or ``from module import ...``) may be added."""
    return module in pyspark_api()["modules"] or module in SAFE_MODULES or module == "pyspark"


# --- generation (needs pyspark) ---------------------------------------------------------------------


def _resolve(dotted: str) -> object:
    import importlib

    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for part in parts[end:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def generate() -> dict[str, object]:
    """The vocabulary from the installed pyspark (run by hand after a pyspark upgrade)."""
    import pyspark

    attributes: set[str] = set()
    for dotted in PYSPARK_CLASSES:
        cls = _resolve(dotted)
        attributes.update(n for n, _ in inspect.getmembers(cls) if not n.startswith("_"))
    modules: dict[str, list[str]] = {}
    for dotted in PYSPARK_MODULES:
        module = _resolve(dotted)
        public = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
        modules[dotted] = sorted(n for n in public if not n.startswith("_") and n not in DENIED_ATTRIBUTES
                                 and not inspect.ismodule(getattr(module, n, None)))
    modules["pyspark"] = ["StorageLevel", "Row"]
    return {"pyspark": pyspark.__version__, "attributes": sorted(attributes - DENIED_ATTRIBUTES),
            "modules": modules}


if __name__ == "__main__":
    API_FILE.write_text(json.dumps(generate(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {API_FILE}", file=sys.stderr)
