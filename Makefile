# Two commands for a new user: `make course` and `make test`. Both create .venv on first use.
# `make book` renders the notebooks that `make course` executed into a static HTML site in build/book/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: course test notebooks benchmarks book clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

course: $(STAMP)
	$(PY) -m course_utils.course

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

book: $(DOCS_STAMP)
	$(PY) -m course_utils.book

test: $(STAMP)
	$(PY) -m pytest

notebooks: $(STAMP)
	$(PY) -m course_utils.notebook_tools generate

benchmarks: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf build results grades .pytest_cache
