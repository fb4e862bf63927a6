# slm - one non-recursive Makefile. `make help` lists the targets.
#
#   make            build build/slm (+ aliases slm-convert, slm-quantize, ...)
#   make demo       run the main job on the built-in default model (installs deps if needed)
#   make check      unit + golden + CLI tests (installs deps if needed)
#   make check-asan the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make check-interop  llama.cpp loads and runs our GGUFs (installs llama.cpp from npm)
#   make bench      benchmarks that print ratios against peers (not part of check)
#   make install PREFIX=/usr/local
#
# Variables: OPENMP=0 (build without OpenMP), CI=true (warnings are errors), BUILD=dir.

SHELL     := /bin/bash
BUILD     ?= build
PREFIX    ?= /usr/local
OPENMP    ?= 1
SHARED    ?= $(abspath ../shared)
export SLM_FIXTURES ?= $(SHARED)/fixtures
export SLM_GOLDEN   ?= $(SHARED)/golden
export LLCPP_DIR    ?= /tmp/llcpp

PKGS      := libzstd libcjson cmocka
DEBPKGS   := libzstd-dev libcjson-dev libcmocka-dev pkg-config

CC        ?= cc
CFLAGS    ?= -O2 -g
CPPFLAGS  += -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -I. -MMD -MP
# -ffp-contract=off: no fused multiply-add, so quantizers match ggml's bytes on every CPU.
WFLAGS    := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wvla -Wno-unused-parameter -Wno-format-truncation -ffp-contract=off
ifeq ($(CI),true)
WFLAGS    += -Werror
endif
ifeq ($(OPENMP),1)
WFLAGS    += -fopenmp
LDFLAGS   += -fopenmp
else
WFLAGS    += -Wno-unknown-pragmas
endif
ifeq ($(SAN),1)
WFLAGS    += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS   += -fsanitize=address,undefined
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(WFLAGS) $(PKG_CFLAGS) $(CFLAGS)
# each binary links only what it uses: the library needs cJSON and libm; tests add cmocka
# (libzstd joins the library's list when something in it uses it)
LIB_LIBS   = $(shell pkg-config --libs libcjson 2>/dev/null) -lm
TEST_LIBS  = $(shell pkg-config --libs cmocka 2>/dev/null) $(LIB_LIBS)

LIB_SRC   := $(wildcard core/*.c formats/*.c model/*.c quantize/*.c prune/*.c distill/*.c report/*.c export/*.c)
CLI_SRC   := $(wildcard cli/*.c)
TEST_SRC  := $(wildcard tests/test_*.c)
LIB_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(notdir $(LIB_SRC)))
CLI_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(notdir $(CLI_SRC)))
TESTS     := $(patsubst tests/%.c,$(BUILD)/%,$(TEST_SRC))
ALIASES   := slm-convert slm-quantize slm-inspect slm-eval slm-generate slm-report
TOOLS     := $(BUILD)/mksynth $(BUILD)/mkfamily

VPATH     := core formats model quantize prune distill report export cli tests fixtures bench

.PHONY: all deps deps-ok demo check check-unit check-cli check-asan check-interop bench install clean help lint

all: deps-ok $(BUILD)/slm $(addprefix $(BUILD)/,$(ALIASES))

# ---- dependencies: install missing -dev packages when we can, else say exactly what to run
deps-ok:
	@if ! pkg-config --exists $(PKGS) 2>/dev/null; then $(MAKE) --no-print-directory deps; fi

deps:
	@if pkg-config --exists $(PKGS) 2>/dev/null; then echo "deps: $(PKGS) present"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; \
	else echo "slm: missing build dependencies; run: sudo apt-get install -y $(DEBPKGS)" >&2; exit 1; fi; \
	echo "deps: installing $(DEBPKGS)"; \
	$$SUDO apt-get install -y -q $(DEBPKGS) >/dev/null 2>&1 || \
	{ $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q $(DEBPKGS) >/dev/null; } || \
	{ echo "slm: could not install $(DEBPKGS)" >&2; exit 1; }

$(BUILD):
	@mkdir -p $@

$(BUILD)/%.o: %.c | $(BUILD) deps-ok
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libslm.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/slm: $(CLI_OBJ) $(BUILD)/libslm.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libslm.a $(LIB_LIBS) $(LDLIBS)

$(addprefix $(BUILD)/,$(ALIASES)): | $(BUILD)/slm
	@ln -sf slm $@

$(BUILD)/testutil.o: tests/testutil.c | $(BUILD) deps-ok
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/test_%: $(BUILD)/test_%.o $(BUILD)/testutil.o $(BUILD)/libslm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(LDLIBS)

$(BUILD)/mksynth: $(BUILD)/mksynth.o $(BUILD)/libslm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_LIBS) $(LDLIBS)

$(BUILD)/mkfamily: $(BUILD)/mkfamily.o $(BUILD)/libslm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_LIBS) $(LDLIBS)

# ---- the main job on the built-in default model
DEMO_MODEL ?= $(SLM_FIXTURES)/models/tinystories-3M
DEMO_DIR   ?= $(BUILD)/demo
demo: all
	@SLM=$(BUILD)/slm MODEL=$(DEMO_MODEL) OUT=$(DEMO_DIR) FIX=$(SLM_FIXTURES) sh tests/demo.sh

# ---- tests
check: all $(TESTS) $(TOOLS)
	@sh tests/lint.sh && sh tests/lint_test.sh
	@$(MAKE) --no-print-directory check-unit check-cli

check-unit: $(TESTS) $(BUILD)/slm
	@set -e; for t in $(TESTS); do \
	  echo "== $$t"; SLM=$(BUILD)/slm OMP_NUM_THREADS=2 $$t || { echo "FAILED: $$t" >&2; exit 1; }; done

check-cli: all $(TOOLS)
	@SLM=$(BUILD)/slm BUILD=$(BUILD) sh tests/run_cli.sh
	@SLM=$(BUILD)/slm sh tests/faults.sh

check-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 CFLAGS="-O1 -g" check

check-interop: all $(TOOLS)
	@sh $(SHARED)/tools/llamacpp/setup.sh $(LLCPP_DIR) >/dev/null
	@$(MAKE) --no-print-directory -C $(SHARED)/tools/llamacpp LLCPP_DIR=$(LLCPP_DIR) BUILD=$(LLCPP_DIR)/bin >/dev/null
	@SLM=$(BUILD)/slm LLBIN=$(LLCPP_DIR)/bin sh tests/interop.sh
	@SLM=$(BUILD)/slm LLCPP_DIR=$(LLCPP_DIR) sh tests/interop_eval.sh

bench: all $(TOOLS)
	@SLM=$(BUILD)/slm BUILD=$(BUILD) sh bench/run_all.sh

lint:
	@sh tests/lint.sh && sh tests/lint_test.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/slm $(DESTDIR)$(PREFIX)/bin/slm
	@for a in $(ALIASES); do ln -sf slm $(DESTDIR)$(PREFIX)/bin/$$a; done

clean:
	rm -rf build build-asan

help:
	@sed -n '1,14p' Makefile

-include $(wildcard $(BUILD)/*.d)
