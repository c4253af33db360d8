# make demo: set up .venv (if needed) and run the quickstart experiment + report.
# make test: set up .venv (if needed) and run the test suite.
# make reference: run experiments/fashion_mnist.toml and copy its report to results/reference/.
# make bench: run the benchmark suite and write BENCHMARKS.md (make bench BENCH_ARGS=--quick).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL = 2
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: demo test bench install system data clean reference

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[all,dev]'
	@touch $(STAMP)

# Debian packages: real Fashion-MNIST and a headless browser for the HTML report test
# (installed when running as root with apt; otherwise the data is downloaded and browser tests skip).
system:
	@missing=""; \
	[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || missing="$$missing dataset-fashion-mnist"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "apt-get install$$missing"; \
		apt-get install -y -qq $$missing >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $$missing >/dev/null 2>&1; } || \
		echo "warning: could not install$$missing"; \
	fi

data: $(STAMP) system
	$(VENV)/bin/xaibench data fetch fashion-mnist

demo: data
	$(VENV)/bin/xaibench run experiments/quickstart.toml
	$(VENV)/bin/xaibench report results/quickstart --format md,csv,tex,html \
		$$(command -v chromium >/dev/null && echo --screenshot results/quickstart/report.png)
	@echo "report: $(CURDIR)/results/quickstart/report.html"

REFERENCE := results/reference/fashion_mnist
reference: data
	$(VENV)/bin/xaibench run experiments/fashion_mnist.toml --executor dask --workers 2
	$(VENV)/bin/xaibench report results/fashion_mnist --format md,csv,html \
		$$(command -v chromium >/dev/null && echo --screenshot results/fashion_mnist/report.png)
	rm -rf $(REFERENCE) && mkdir -p $(REFERENCE)/figures
	cp -r results/fashion_mnist/report.md results/fashion_mnist/report.csv \
		results/fashion_mnist/tables $(REFERENCE)/
	cp results/fashion_mnist/figures/*.png $(REFERENCE)/figures/
	@test ! -f results/fashion_mnist/report.png || $(PY) -c "from PIL import Image; \
		im = Image.open('results/fashion_mnist/report.png').convert('RGB'); \
		im.resize((im.width // 2, im.height // 2), Image.LANCZOS).quantize(256) \
		.save('$(REFERENCE)/report.png', optimize=True)"  # half size, 256 colours: < 5 MB
	@echo "reference report: $(CURDIR)/$(REFERENCE)/report.md"

test: $(STAMP) system
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
