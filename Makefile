# `make demo` and `make test` do all set-up on a fresh machine: they create (or reuse)
# .venv, install the project with its extras, and run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e ".[test,bench,deploy]"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	bash .ci/install-browser.sh
	bash .ci/install-deploy.sh
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python -m airflow_provider_kwtsms.demo

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
