# dockprogress: every set-up step is a target, so a fresh Debian 12 machine needs only
#   make test   (static checks + docs site build + real Docker test bed + the whole pytest suite)
#   make demo   (test bed + a pull, a PostgreSQL load and a tqdm exec at once, with the dashboard)
# The test bed (scripts/testbed) needs root the first time, to apt-get its Debian packages
# and, if no Docker engine answers, to start dockerd.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: all venv check docs testbed test demo demo-pull demo-exec demo-logs bench down status clean

all: test

# The venv is rebuilt only when pyproject.toml changes; a second `make venv` is instant.
venv: $(STAMP)

$(STAMP): pyproject.toml
	@if ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        DEBIAN_FRONTEND=noninteractive apt-get update && \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv python3-pip; \
	    else \
	        echo "need python3 with venv: sudo apt-get install python3-venv" >&2; exit 1; \
	    fi; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The one static-check command: formatting, lint, strict typing of the package.
check: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# The documentation site (docs/, mkdocs.yml) into site/ (git ignores it); --strict fails on
# a broken link or anchor, a page missing from the nav, or a docstring mkdocstrings cannot
# read. Offline: no fonts or plugins that download. A few seconds.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

testbed:
	scripts/testbed up

status:
	scripts/testbed status

# Unit and engine tests together; pytest's own exit status (5 = nothing collected
# included) fails the target.
test: venv check docs testbed
	$(BIN)/pytest $(PYTEST_ARGS)

# The main job: a throttled pull, a PostgreSQL load followed through its logs and a tqdm
# exec, at once, with terminal bars and the dashboard (see `dockprogress demo --help`).
DEMO_ARGS ?= --linger 20

demo: venv testbed
	$(BIN)/dockprogress demo $(DEMO_ARGS)

# A real tqdm script's nested bars through `dockprogress exec` in a python fixture container.
demo-exec: venv testbed
	$(BIN)/python scripts/demo_exec.py

# A throttled multi-layer pull with `dockprogress pull` (issue 4): dp/layers and dp/shared:b
# are removed first (only these two; tests re-pull them too) so every byte is shown.
demo-pull: venv testbed
	-@docker image rm -f 127.0.0.1:5000/dp/layers:1 127.0.0.1:5001/dp/layers:1 \
	    127.0.0.1:5000/dp/shared:b 127.0.0.1:5001/dp/shared:b >/dev/null 2>&1
	$(BIN)/dockprogress pull 127.0.0.1:5001/dp/layers:1 127.0.0.1:5001/dp/shared:b

# A PostgreSQL 15 load followed through its checkpoint lines with `dockprogress logs`
# (issue 5); run it twice: the second run is calibrated by the first (smooth, with an ETA).
demo-logs: venv testbed
	$(BIN)/python -m dockprogress.examples.postgres_demo

bench: venv testbed
	$(BIN)/python -m bench

down:
	scripts/testbed down

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache .hypothesis
