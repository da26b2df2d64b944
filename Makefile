# Two commands on a fresh machine with nothing but Python: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-sqlite demo bench install clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@$(PY) -m shared.cli dev

# Four workers: the suite mostly waits (consumer-group joins, timers, LibreOffice), and every test
# has its own databases, topic prefix and ports, so they run side by side.
test: $(STAMP)
	@$(PY) -m pytest -n 4

demo: $(STAMP)
	@$(PY) -m scripts.demo

bench: $(STAMP)
	@$(PY) -c 'import docxtpl' 2>/dev/null || $(PY) -m pip install -q -e '.[test,bench]'
	@$(PY) -m bench.run

clean:
	rm -rf $(VENV) var .pytest_cache
