# Two commands for a new user: `make course` and `make test`. Both create .venv on first use.
# `make book` renders the notebooks that `make course` executed into a static HTML site in build/book/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: course test test-browser chromium sandbox-tools notebooks benchmarks book clean

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

# Only the browser tests (JupyterLab in headless Chromium; `make chromium` first if it is missing).
test-browser: $(STAMP)
	$(PY) -m pytest -m browser

# Debian's chromium for the browser tests, installed with apt-get when missing (playwright downloads nothing).
chromium:
	@command -v chromium >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# Debian's bubblewrap, the sandbox course-grade runs student code in, installed with apt-get when missing.
sandbox-tools:
	@command -v bwrap >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq bubblewrap; }

notebooks: $(STAMP)
	$(PY) -m course_utils.notebook_tools generate

benchmarks: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf build results grades .pytest_cache
