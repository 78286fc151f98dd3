# Set-up, build and checks for a fresh Debian 12 machine (or one already set up).
#   make thumbnail   set up, build the NIF, thumbnail the bundled sample through it
#   make test        set up, check formatting, run pytest and ExUnit (the conformance
#                    suite runs once per transport; MIRAGE_TRANSPORTS=nif,... limits it),
#                    then memcheck
#   make memcheck    ExUnit with the NIF under ASan and UBSan (docs/safety.md)
#   make fuzz        coverage-guided fuzzing of the Python core and the ETF codec,
#                    mutation fuzzing of the JPEG decoder under ASan and UBSan
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Base interpreter for the virtualenv: needs a shared libpython (pyenv's has one).
PYTHON3 ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export MIRAGE_PYTHON := $(abspath $(PY))
SIZE ?= 256x256

.PHONY: setup system venv thumbnail test lint pytest exunit conformance memcheck fuzz format \
	bench clean

setup: system venv mirage/_png_unfilter.so mirage/_jpeg_dc.so

# The fast paths' libraries (every transport; without them Pillow decodes):
# PNG unfiltering for mirage/pngfast.py, 1/8-scale JPEG decoding for mirage/jpegdc.py.
mirage/_png_unfilter.so: c_src/png/unfilter.c c_src/build.py
	$(PY) c_src/build.py helper png
mirage/_jpeg_dc.so: c_src/jpeg/dcscale.c c_src/build.py
	$(PY) c_src/build.py helper jpeg

# Debian packages: Erlang with its headers (erl_nif.h), Elixir, clang-format, and the
# Python headers/venv module when no Python 3 with them is present.
system:
	@missing=""; \
	command -v mix >/dev/null || missing="$$missing elixir"; \
	ls /usr/lib/erlang/erts-*/include/erl_nif.h >/dev/null 2>&1 || missing="$$missing erlang-dev"; \
	command -v clang-format >/dev/null || missing="$$missing clang-format"; \
	command -v cc >/dev/null || missing="$$missing gcc"; \
	$(PYTHON3) -c 'import venv, sysconfig, os; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' 2>/dev/null \
	  || missing="$$missing python3-dev python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt setup.py
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

thumbnail: setup
	mix mirage.thumbnail $(IN) $(OUT) --size $(SIZE) $(if $(TRANSPORT),--transport $(TRANSPORT))

test: setup lint pytest exunit
	@# After exunit, never beside it: memcheck rebuilds priv/mirage_nif.so twice.
	$(MAKE) --no-print-directory memcheck

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	clang-format --dry-run --Werror c_src/*.c c_src/*.h c_src/png/*.c c_src/jpeg/*.c fuzz/*.c bench/*.c
	mix format --check-formatted

pytest: setup
	$(PY) -m pytest -q

exunit: setup
	mix test

# The public-API suite alone, once per transport (test/mirage/conformance/).
conformance: setup
	mix test test/mirage/conformance

# The whole ExUnit suite (the conformance suite on the NIF only) with
# priv/mirage_nif.so built under ASan and UBSan; fails on any report from our C.
# MEMCHECK_TESTS picks test files or mix test options (default: all).
MEMCHECK_TESTS ?=
memcheck: setup
	$(PY) tools/memcheck.py $(MEMCHECK_TESTS)

# Coverage-guided fuzzing with atheris (libFuzzer), FUZZ_SECONDS per target: the ETF
# codec, then Service.call on mutated files of FUZZ_IMAGES; then fuzz/jpegdc_fuzz.c. Corpora grow across runs in
# _build/fuzz/; a crash stops its target and leaves the input as _build/fuzz/*-crash-*,
# slow or memory-hungry inputs land in _build/fuzz/slow/. See docs/safety.md.
FUZZ_SECONDS ?= 60
FUZZ_IMAGES ?= $(if $(wildcard ../shared/corpus),../shared/corpus,samples)
FUZZ_DIR := _build/fuzz
# The 1/8-scale JPEG decoder (c_src/jpeg/dcscale.c) under ASan and UBSan: mutations of
# the JPEGs in FUZZ_IMAGES from a new generator seed each run (printed by make).
JPEGDC_ITERATIONS ?= 200000
JPEGDC_FUZZ_SEED ?= $(shell date +%s)
fuzz: setup
	mkdir -p $(FUZZ_DIR)/etf $(FUZZ_DIR)/service
	test -d $(FUZZ_DIR)/etf-seeds || PYTHONPATH=. $(PY) fuzz/fuzz_etf.py seeds $(FUZZ_DIR)/etf-seeds
	PYTHONPATH=. $(PY) fuzz/fuzz_service.py seeds $(FUZZ_DIR)/service-seeds $(FUZZ_IMAGES)
	PYTHONPATH=. $(PY) fuzz/fuzz_etf.py -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_DIR)/etf- $(FUZZ_DIR)/etf $(FUZZ_DIR)/etf-seeds
	PYTHONPATH=. FUZZ_SLOW_DIR=$(FUZZ_DIR)/slow $(PY) fuzz/fuzz_service.py \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=60 -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_DIR)/service- $(FUZZ_DIR)/service $(FUZZ_DIR)/service-seeds
	cc -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -pthread \
	  fuzz/jpegdc_fuzz.c -lm -o $(FUZZ_DIR)/jpegdc_fuzz
	cd $(FUZZ_DIR) && JPEGDC_FUZZ_SEED=$(JPEGDC_FUZZ_SEED) ./jpegdc_fuzz $(JPEGDC_ITERATIONS) \
	  $$(find $(abspath $(FUZZ_IMAGES)) -name '*.jpg' -size -64k)

format: setup
	$(PY) -m ruff format .
	clang-format -i c_src/*.c c_src/*.h c_src/png/*.c c_src/jpeg/*.c fuzz/*.c bench/*.c
	mix format

# Benchmarks: baselines (pyvips with its bundled libvips, ImageMagick) are installed
# here, not for tests. RUNS=3 repeats the suite and reports each target's median.
# Results and how to read them: docs/benchmarks.md.
RUNS ?= 1
bench: setup
	$(PY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	@test -x /usr/bin/convert || ($(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq imagemagick)
	rm -f bench/results/run-*.etf
	for run in $$(seq $(RUNS)); do MIX_ENV=prod mix run bench/run.exs || exit 1; done
	MIX_ENV=prod mix run bench/summary.exs
	# The node transport's figures (its own script: it makes the VM distributed).
	MIX_ENV=prod mix run bench/node.exs

clean:
	mix clean
	rm -rf _build priv mirage/_png_unfilter.so mirage/_jpeg_dc.so
