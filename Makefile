# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test compat matrix lint typecheck docs bench bench-migrate clean

# The coverage floor (pyproject's fail_under) holds where every service is guaranteed: CI=true, where a
# missing service fails its tests. Elsewhere tests that need memcached or Chromium are skipped with a
# reason, so the figure is reported without failing the run.
COVERAGE_FLOOR := $(if $(filter true,$(CI)),,--fail-under=0)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Runs on MySQL/MariaDB need Django's driver, mysqlclient (the `mysql` extra), which builds against
# the client headers (libmariadb-dev or libmysqlclient-dev) and pkg-config: installed for those runs
# only, so a machine without the headers still passes `make test`.
MYSQL_STAMP := $(VENV)/.installed-mysql
DRIVER := $(if $(filter mysql%,$(DATABASE_URL)),$(MYSQL_STAMP))

$(MYSQL_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,mysql]"
	touch $(MYSQL_STAMP)

demo: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py create_demo_user
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(STAMP) $(DRIVER)
	$(BIN)/python -m coverage erase
	$(BIN)/python -m coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/python -m coverage combine --quiet
	$(BIN)/python -m coverage report $(COVERAGE_FLOOR)

# Django's own tests/sessions_tests against every sessionplus engine; compat/deviations.toml lists
# the deliberate differences. The installed Django's sdist is downloaded once to ~/.cache.
compat: $(STAMP)
	$(BIN)/python -m compat $(COMPAT_ARGS)

# The supported matrix's far corners through tox (tox.ini): the oldest Python on Django 5.2 and the
# newest on Django 6.1, each with its own freshly resolved dependencies and mysqlclient (the outage
# tests cut a real MariaDB connection whenever one answers), then Django 6.1's own
# sessions_tests. The interpreters come from pyenv's versions, put on PATH ahead of its shims (which
# answer only for the global version); a missing one fails the run.
MATRIX_ENVS ?= py310-django52-mysql,py313-django61-mysql
PYENV_PYTHONS := $(wildcard $(HOME)/.pyenv/versions/3.1[0-3].*/bin)

matrix: $(STAMP)
	$(BIN)/python -m pip install --quiet "tox>=4.2"
	PATH="$$(printf '%s:' $(PYENV_PYTHONS))$$PATH" $(BIN)/tox -e $(MATRIX_ENVS)
	.tox/py313-django61-mysql/bin/python -m compat $(COMPAT_ARGS)

lint: $(STAMP) typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy --strict with django-stubs over the package (pyproject's [tool.mypy]; modules still pending
# are listed there, errors ignored, until they are clean).
typecheck: $(STAMP)
	$(BIN)/mypy

# The documentation site (docs/, Sphinx + furo + MyST) into docs/_build/html. Warnings are errors
# and every cross-reference must resolve (-n), as in CI; --keep-going reports them all at once.
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -q -b html docs docs/_build/html

# Stock Django against sessionplus: per operation, under load (gunicorn + wrk), rolling writes.
bench: $(STAMP)
	bash benchmarks/prepare
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Adopting sessionplus on PostgreSQL: migratesessions_plus moving BENCH_ARGS' --sessions (default
# 1,000,000) from Django's table, and what read-through costs a request.
bench-migrate: $(STAMP)
	$(BIN)/python -m benchmarks.migratesessions $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .tox .coverage .coverage.* htmlcov *.egg-info demo.sqlite3 docs/_build .mypy_cache
