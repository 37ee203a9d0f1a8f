# Two entry points (see README): `make app` and `make test`.  Both set everything up first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch.  GPU users: make setup TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
TORCH  ?= torch==2.13.0

.PHONY: setup app test browser-deps bench
.DEFAULT_GOAL := app

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test,ray]'
	touch $@

setup: $(BIN)/.installed

app: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m streamlit run app.py

# Debian's chromium for the real-browser tests (Playwright's own browser download is not used).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver fonts-dejavu-core; \
	else sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver fonts-dejavu-core; fi

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: setup browser-deps
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

# The benchmark harness (all sizes, ~50 min on a quiet 2-core machine; see README "Benchmarks").  Parts:
#   make bench BENCH_ARGS="--quick"      or  BENCH_ARGS="--sizes 5000 --sections embed,stages"
bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench $(BENCH_ARGS)
