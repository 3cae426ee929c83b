# Set-up-and-go targets. `make run` and `make test` create .venv on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, explicitly: on the project machines these wheels sit on local disk;
# anywhere else pip fetches the same versions from PyPI. pyproject.toml asks for ranges.
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
# the oldest nir snncost supports (pyproject's floor; sinabs 3.x pins nir<=1.0.4), in a venv of its own
NIR_FLOOR := $(shell sed -n 's/^ *"nir>=\([0-9.]*\)".*/\1/p' pyproject.toml)
FLOOR_VENV ?= .cache/venv-nir-floor
FLOOR_STAMP := $(FLOOR_VENV)/.installed

.PHONY: setup run test test-nir-floor bench lint clean

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

# The floor venv holds nir alone; everything else (torch, numba, pytest, ...) comes from
# $(VENV), whose site-packages a .pth file adds after the floor venv's own.
$(FLOOR_STAMP): $(STAMP) pyproject.toml Makefile
	test -n "$(NIR_FLOOR)" || { echo "no nir>=X floor found in pyproject.toml" >&2; exit 1; }
	test -x $(FLOOR_VENV)/bin/python || $(PY) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/pip install -q --no-deps "nir==$(NIR_FLOOR)"
	echo "import site; site.addsitedir('$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')')" \
		> "$$($(FLOOR_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/snncost-main-venv.pth"
	touch $(FLOOR_STAMP)

# the NIR tests with the floor nir; files cross between it and .venv's nir (the newest) both ways
test-nir-floor: $(STAMP) $(FLOOR_STAMP)
	SNNCOST_NIR_OTHER_PYTHON=$(abspath $(BIN))/python $(FLOOR_VENV)/bin/python -m pytest -q tests/test_nir.py $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/sim_throughput.py
	$(BIN)/python bench/cost_throughput.py

lint: $(STAMP)
	$(BIN)/ruff check snncost trainers tests bench examples

clean:
	rm -rf $(VENV) .cache runs .pytest_cache
