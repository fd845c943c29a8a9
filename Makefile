# Two commands do all set-up: `make demo` and `make test`. Each creates or updates
# the local virtual environment (.venv) from the requirements files by itself.
PYTHON ?= python3
# Parallel test workers (pytest-xdist), whole modules each: 2 fit this 2-core machine's Spark runs.
TEST_WORKERS ?= 2
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean browser postgres metastore-launcher

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# Debian's chromium for the browser tests; never a browser downloaded by Playwright.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Debian's PostgreSQL for the run history's tests (tests/fixtures/postgres.py starts a server of its own).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

demo: $(STAMP)
	$(PY) -m app demo

test: $(STAMP) browser postgres
	$(PY) -m ruff check .
	-$(PY) -m cde_local.cds_build  # the Spark drivers' class data sharing archive, once per machine (cde_local/cds.py)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(PY) -m ruff check .

# The local CDE's metastore launcher (cde_local/metastore.py), shipped compiled so that running it needs
# only a Java runtime; rebuild it with a JDK after editing the source.
metastore-launcher: $(STAMP)
	javac --release 17 -Xlint:-path -cp "$$($(PY) -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/jars/*" \
		-d cde_local/java cde_local/java/LoopbackMetastore.java

clean:
	rm -rf $(VENV) .pytest_cache
