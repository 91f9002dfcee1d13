# Two entry points for a newcomer: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements

.PHONY: run test test-all test-browser browser-deps setup demo doctor clean

run: $(STAMP)
	$(BIN)/python -m pipeline demo --root demo
	$(BIN)/streamlit run streamlit_app.py -- --workspace demo/workspace

# The layer contract in pyproject.toml first (seconds), then the tests.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# Also the tests marked slow (random-weight foundation models, bigger synthetic runs).
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

# The real-browser walkthrough alone (also part of `make test`, which skips it without Chromium);
# screenshots and the downloaded report land in build/screenshots/.
test-browser: $(STAMP)
	WORKBENCH_SCREENSHOTS=build/screenshots $(BIN)/python -m pytest -q -s tests/browser

# Chromium for the browser test: the Debian package (Playwright's own browser download is never used).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: /usr/bin/chromium"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "no /usr/bin/chromium and no root apt-get: the browser test will skip (apt-get install chromium)"; fi

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
