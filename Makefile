# `make demo` and `make test` do all set-up on a fresh machine: they create (or reuse)
# .venv, install the project with its extras, and run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

# The compatibility lane (`make test-compat`, also the end of `make test`): the Airflow-side tests
# and example DAGs on the latest patch of each older Airflow 3 minor, in .venv-af30, .venv-af31 ...
# Side by side, the three take about 7 to 10 minutes; one release: `make test-compat COMPAT_AIRFLOW=3.2.2`.
COMPAT_AIRFLOW ?= 3.0.6 3.1.8 3.2.2

.PHONY: venv test test-fast test-compat demo bench lint docs clean

# --compile-bytecode: every Airflow process (each task, each CLI call) imports about 1,100 modules;
# without their .pyc (uv writes none by default, and PYTHONDONTWRITEBYTECODE stops Python writing
# them) each process compiles them again: about 4 s of CPU per process, half a test run's time.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -e ".[test,bench,deploy]"
	touch $(STAMP)

venv: $(STAMP)

# Lint and type checks first, then the docs site built strictly (a broken link fails): either
# stops the run before the slow tests. Then three lanes:
# - the main suite, its tests side by side in TEST_WORKERS processes (pytest-xdist: most of their
#   time is waiting on Airflow processes and sandboxes), then the few `serial` tests;
# - then the deployment lane: its two deployments side by side (LocalExecutor and Celery, one
#   pytest each with KWTSMS_DEPLOY_EXECUTORS; Celery's output in test-artifacts/deploy-celery.log,
#   printed after). Its firewall checks count requests in real seconds;
# - the compatibility lane (its own venvs) from the start to the end, at a low priority (nice 10):
#   it takes mostly the CPU the other two leave idle (a quarter of the machine beside the main
#   suite, half beside the deployments). Its output in test-artifacts/compat-lane.log.
# Every lane runs even when another failed; `make test` fails if any did.
# The system packages the browser and deployment tests need (Debian's, through apt) install in the
# background meanwhile: both mostly wait on downloads. Their output: test-artifacts/install-system.log.
TEST_WORKERS ?= 3
test:
	mkdir -p test-artifacts
	{ bash .ci/install-browser.sh && bash .ci/install-deploy.sh; } > test-artifacts/install-system.log 2>&1 & system=$$!; \
	$(MAKE) --no-print-directory lint docs; checks=$$?; \
	wait $$system; installed=$$?; cat test-artifacts/install-system.log; \
	[ $$checks -eq 0 ] && [ $$installed -eq 0 ]
	$(BIN)/python -m compileall -q airflow_provider_kwtsms  # the editable install's .pyc (see $(STAMP))
	nice -n 10 bash .ci/test-compat.sh $(COMPAT_AIRFLOW) > test-artifacts/compat-lane.log 2>&1 & lane=$$!; \
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not deploy and not serial" --durations=15; main=$$?; \
	$(BIN)/python -m pytest -q -m "serial and not deploy"; serial=$$?; \
	KWTSMS_DEPLOY_EXECUTORS=celery $(BIN)/python -m pytest -q -m deploy tests/deploy \
		--ignore=tests/deploy/test_deploy_rate_store.py > test-artifacts/deploy-celery.log 2>&1 & celery=$$!; \
	KWTSMS_DEPLOY_EXECUTORS=local $(BIN)/python -m pytest -q -m deploy tests/deploy; local=$$?; \
	wait $$celery; celery=$$?; echo "--- the CeleryExecutor deployment:"; cat test-artifacts/deploy-celery.log; \
	wait $$lane; compat=$$?; tail -n 30 test-artifacts/compat-lane.log; \
	echo "make test: main suite exit $$main, serial tests exit $$serial, compatibility lane exit $$compat, deployment lane exit $$local (LocalExecutor) and $$celery (Celery)"; \
	[ $$main -eq 0 ] && [ $$serial -eq 0 ] && [ $$compat -eq 0 ] && [ $$local -eq 0 ] && [ $$celery -eq 0 ]

test-compat: $(STAMP)
	bash .ci/test-compat.sh $(COMPAT_AIRFLOW)

# Everything but real Airflow processes, the browser, the built wheel and the deployment.
test-fast: lint
	$(BIN)/python -m pytest -q -m "not airflow and not browser and not packaging and not deploy"

demo: $(STAMP)
	$(BIN)/python -m airflow_provider_kwtsms.demo

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The site goes to site/; --strict makes a broken link, anchor or API reference fail the build.
$(DOCS_STAMP): $(STAMP)
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) $(VENV)-af* build dist *.egg-info .pytest_cache .ruff_cache
