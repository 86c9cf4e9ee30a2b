# chartsync — everyday commands.  `make test` and `make demo` create .venv on first use.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test demo bench clean

# Reinstall whenever pyproject.toml changes (new dependency, new entry point).
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	mkdir -p .test-results
	$(VENV)/bin/python -m pytest --junitxml=.test-results/junit.xml $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/chartsync demo

bench: $(STAMP)
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) .test-results .pytest_cache .mypy_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
