# Two commands set everything up on a fresh machine:
#   make demo   install, index seeds/, answer the demo question
#   make test   install, run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
CITEBOT := $(VENV)/bin/citebot
QUESTION ?= What are the therapeutic targets in the TME?

.PHONY: install demo test lint

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(CITEBOT) index seeds/
	$(CITEBOT) ask "$(QUESTION)"

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check retrieval bot tests bench
