# Two entry points for a newcomer: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements

.PHONY: run test test-all setup demo doctor clean

run: $(STAMP)
	$(BIN)/python -m pipeline demo --root demo
	$(BIN)/streamlit run streamlit_app.py -- --workspace demo/workspace

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Also the tests marked slow (random-weight foundation models, bigger synthetic runs).
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

setup: $(STAMP)

doctor: $(STAMP)
	$(BIN)/python -m pipeline doctor

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	# Editable install so `python -m pipeline` works from any folder.
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	touch $(STAMP)

clean:
	rm -rf $(VENV) demo .pytest_cache
