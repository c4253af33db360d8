# make demo: set up .venv (if needed) and run the quickstart experiment + report.
# make test: set up .venv (if needed) and run the test suite.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL = 2
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: demo test install data clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[all,dev]'
	@touch $(STAMP)

data: $(STAMP)
	@if [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; } || true; \
	fi
	$(VENV)/bin/xaibench data fetch fashion-mnist

demo: data
	$(VENV)/bin/xaibench run experiments/quickstart.toml
	$(VENV)/bin/xaibench report results/quickstart

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
