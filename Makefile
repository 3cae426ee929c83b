# Set-up-and-go targets. `make run` and `make test` create .venv on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, explicitly: on the project machines these wheels sit on local disk;
# anywhere else pip fetches the same versions from PyPI. pyproject.toml asks for ranges.
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: setup run test bench lint clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m trainers.run $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/sim_throughput.py
	$(BIN)/python bench/cost_throughput.py

lint: $(STAMP)
	$(BIN)/ruff check snncost trainers tests bench examples

clean:
	rm -rf $(VENV) .cache runs .pytest_cache
