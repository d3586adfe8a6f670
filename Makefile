# The README's two commands: `make demo` and `make test`. Both set up .venv first (idempotent).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEMO    ?= outputs/demo
export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test clean-demo

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

# one test process per core, up to 4 (pytest-xdist; one torch thread each: tests/conftest.py); worksteal evens out
# the few long tests
test: setup
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist worksteal tests

demo: setup
	bash scripts/demo.sh $(DEMO)

clean-demo:
	rm -rf $(DEMO)
