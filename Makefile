# Two commands set everything up on a fresh machine:
#   make demo   install, index seeds/ into .demo-data/ (never the default data dir), answer the demo question
#   make test   install, run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
CITEBOT := $(VENV)/bin/citebot
QUESTION ?= What are the therapeutic targets in the TME?
# The demo's own index, so the seeds never show up in the answers from your documents.
DEMO_DATA ?= $(CURDIR)/.demo-data

.PHONY: install demo test lint

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	CITEBOT_DATA_DIR="$(DEMO_DATA)" $(CITEBOT) index seeds/
	CITEBOT_DATA_DIR="$(DEMO_DATA)" $(CITEBOT) ask "$(QUESTION)"

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check retrieval bot tests bench
