# Two commands for a new user: `make course` and `make test`. Both create .venv on first use.
# `make book` builds the course site (Sphinx + myst-nb) from the notebooks `make course` executed: build/book/.
# `make wheel` builds dist/course_utils-*.whl, notebooks included (`course-notebooks copy DEST` once installed).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: course test test-browser chromium sandbox-tools notebooks benchmarks book wheel clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

course: $(STAMP)
	$(PY) -m course_utils.authoring.course

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

book: $(DOCS_STAMP)
	$(PY) -m course_utils.authoring.site

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
	$(PY) -m course_utils.authoring.notebooks generate

# No build isolation: the build uses this environment's setuptools and downloads nothing.
wheel: $(STAMP)
	$(PY) -m pip wheel . --no-deps --no-build-isolation --wheel-dir dist

benchmarks: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf build dist results grades .pytest_cache course_utils.egg-info
