# slm - one non-recursive Makefile. `make help` lists the targets.
#
#   make            build build/slm (+ aliases slm-convert, slm-quantize, ...)
#   make demo       run the main job on the built-in default model (installs deps if needed)
#   make check      unit + golden + CLI tests (installs deps if needed)
#   make check-asan the same under AddressSanitizer + UndefinedBehaviorSanitizer (+ float-cast-overflow)
#   make check-asan-clang  the same built with clang
#   make fuzz       libFuzzer targets (clang), FUZZ_SECONDS=60 each (tests/fuzz/)
#   make check-interop  llama.cpp loads and runs our GGUFs (installs llama.cpp from npm)
#   make bench      benchmarks that print ratios against peers (not part of check)
#   make install PREFIX=/usr/local   binary, slm-<command> aliases, man page (DESTDIR= for staging)
#   make uninstall  removes exactly what install installed (same PREFIX/DESTDIR)
#
# Variables: OPENMP=0 (build without OpenMP), CI=true (warnings are errors), BUILD=dir, CC=clang.

SHELL     := /bin/bash
BUILD     ?= build
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man/man1
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
ifneq ($(findstring clang,$(shell $(CC) --version 2>/dev/null | head -1)),)
WFLAGS    += -Wno-unknown-warning-option
endif
# float-cast-overflow: gcc's -fsanitize=undefined leaves out out-of-range float -> int conversions
SANITIZE  := address,undefined,float-cast-overflow
ifeq ($(SAN),1)
WFLAGS    += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS   += -fsanitize=$(SANITIZE)
endif
# the libFuzzer build (make fuzz): coverage for the library, the fuzzer's main for the targets
ifeq ($(SAN),fuzz)
WFLAGS    += -fsanitize=fuzzer-no-link,$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS   += -fsanitize=$(SANITIZE)
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(WFLAGS) $(PKG_CFLAGS) $(CFLAGS)
# each binary links only what it uses: the library needs cJSON, libm and pthreads; libzstd
# (the packed GGUF, formats/pack.c) goes to slm and the tests that read packs; tests add cmocka;
# the tools (mksynth, mkfamily, mkhftok) link neither
LIB_LIBS   = $(shell pkg-config --libs libcjson 2>/dev/null) -lm -pthread
ZSTD_LIBS  = $(shell pkg-config --libs libzstd 2>/dev/null)
SLM_LIBS   = $(ZSTD_LIBS) $(LIB_LIBS)
TEST_LIBS  = $(shell pkg-config --libs cmocka 2>/dev/null) $(SLM_LIBS)

LIB_SRC   := $(wildcard core/*.c formats/*.c model/*.c quantize/*.c prune/*.c distill/*.c report/*.c export/*.c)
CLI_SRC   := $(wildcard cli/*.c)
TEST_SRC  := $(wildcard tests/test_*.c)
LIB_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(notdir $(LIB_SRC)))
CLI_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(notdir $(CLI_SRC)))
TESTS     := $(patsubst tests/%.c,$(BUILD)/%,$(TEST_SRC))
FUZZ_TARGETS := safetensors gguf config tokjson tokmodel report pack
REPLAYS   := $(addprefix $(BUILD)/replay_,$(FUZZ_TARGETS))
ALIASES   := slm-convert slm-quantize slm-inspect slm-eval slm-generate slm-report slm-calibrate slm-prune slm-distill slm-pack slm-unpack
TOOLS     := $(BUILD)/mksynth $(BUILD)/mkfamily $(BUILD)/mkhftok

VPATH     := core formats model quantize prune distill report export cli tests tests/fuzz fixtures bench

.PHONY: all deps deps-ok demo check check-unit check-cli check-replay check-asan check-asan-clang check-valgrind check-interop fuzz fuzz-build \
        fuzz-merge bench install uninstall clean help lint

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
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libslm.a $(SLM_LIBS) $(LDLIBS)

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

$(BUILD)/mkhftok: $(BUILD)/mkhftok.o $(BUILD)/libslm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIB_LIBS) $(LDLIBS)

# fuzz targets, replayed over their corpus by a plain main() (tests/fuzz/replay.c)
$(BUILD)/replay_%: $(BUILD)/replay.o $(BUILD)/fuzz_%.o $(BUILD)/libslm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(SLM_LIBS) $(LDLIBS)

$(BUILD)/fuzz_%: $(BUILD)/fuzz_%.o $(BUILD)/libslm.a
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(SLM_LIBS) $(LDLIBS)

# ---- the main job on the built-in default model
DEMO_MODEL ?= $(SLM_FIXTURES)/models/tinystories-3M
DEMO_DIR   ?= $(BUILD)/demo
demo: all
	@SLM=$(BUILD)/slm MODEL=$(DEMO_MODEL) OUT=$(DEMO_DIR) FIX=$(SLM_FIXTURES) sh tests/demo.sh

# ---- tests
check: all $(TESTS) $(TOOLS) $(REPLAYS)
	@sh tests/lint.sh && sh tests/lint_test.sh
	@$(MAKE) --no-print-directory check-unit check-replay check-cli

check-unit: $(TESTS) $(BUILD)/slm
	@set -e; for t in $(TESTS); do \
	  echo "== $$t"; SLM=$(BUILD)/slm OMP_NUM_THREADS=2 $$t || { echo "FAILED: $$t" >&2; exit 1; }; done
	@set -e; for t in test_dot test_model; do \
	  echo "== $(BUILD)/$$t with SLM_NO_AVX512=1 (the AVX2 kernels on an AVX-512 CPU)"; \
	  SLM_NO_AVX512=1 OMP_NUM_THREADS=2 $(BUILD)/$$t > /dev/null || { echo "FAILED: $$t (SLM_NO_AVX512=1)" >&2; exit 1; }; done

check-cli: all $(TOOLS)
	@SLM=$(BUILD)/slm BUILD=$(BUILD) sh tests/run_cli.sh
	@SLM=$(BUILD)/slm sh tests/faults.sh
	@SLM=$(BUILD)/slm sh tests/zoo.sh
	@SLM=$(BUILD)/slm BUILD=$(BUILD) sh tests/families_gemma.sh
	@SLM=$(BUILD)/slm BUILD=$(BUILD) sh tests/families_llama.sh
	@SLM=$(BUILD)/slm BUILD=$(BUILD) sh tests/families_qwen3.sh
	@SLM=$(BUILD)/slm BUILD=$(BUILD) sh tests/families_phi3.sh
	@SLM=$(BUILD)/slm BUILD=$(BUILD) sh tests/tokenizer_json.sh

# every fuzz target over its checked-in corpus, the GGUF/safetensors ones also over fixtures/corrupt
check-replay: $(REPLAYS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  extra=; case $$t in gguf) extra="$$(ls fixtures/corrupt/*.gguf)";; safetensors) extra="$$(ls fixtures/corrupt/*.safetensors)";; \
	    config) extra="$$(ls fixtures/corrupt/*/config.json)";; esac; \
	  $(BUILD)/replay_$$t tests/fuzz/corpus/$$t $$extra || { echo "FAILED: replay_$$t" >&2; exit 1; }; done

check-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 CFLAGS="-O1 -g" check

# the CLI suite with every slm process under valgrind memcheck (slow, not in CI)
check-valgrind: all $(TOOLS)
	@BUILD=$(BUILD) sh tests/valgrind.sh

check-asan-clang:
	@$(MAKE) --no-print-directory BUILD=build-asan-clang SAN=1 CC=clang CFLAGS="-O1 -g" check

# ---- fuzzing (clang + libFuzzer): each target for FUZZ_SECONDS, new inputs in build-fuzz/corpus_<t>
# (the checked-in corpus is read, never written), crashes as build-fuzz/crash-<t>-*
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build-fuzz
FUZZ_FLAGS   ?=
fuzz-build: $(addprefix $(BUILD)/fuzz_,$(FUZZ_TARGETS))

# the checked-in corpus: seeds (make_seeds.py) and crash regressions kept, plus the fewest
# inputs of tests/fuzz/corpus and build-fuzz/corpus_<t> that reach every coverage edge
fuzz-merge:
	@set -e; for t in $(FUZZ_TARGETS); do d=$(FUZZ_BUILD)/merge_$$t; rm -rf $$d; mkdir -p $$d; \
	  cp tests/fuzz/corpus/$$t/seed_* $$d/; cp tests/fuzz/corpus/$$t/crash_* $$d/ 2>/dev/null || true; \
	  $(FUZZ_BUILD)/fuzz_$$t -merge=1 -use_counters=0 $$d tests/fuzz/corpus/$$t $(FUZZ_BUILD)/corpus_$$t 2>&1 | \
	    grep -E 'MERGE-OUTER: [0-9]+ new files' | sed "s/^/$$t: /"; \
	  rm -rf tests/fuzz/corpus/$$t; mv $$d tests/fuzz/corpus/$$t; done; \
	echo "corpus: $$(ls tests/fuzz/corpus/*/* | wc -l) files, $$(cat tests/fuzz/corpus/*/* | wc -c) bytes"

fuzz:
	@$(MAKE) -s --no-print-directory BUILD=$(FUZZ_BUILD) SAN=fuzz CC=clang OPENMP=0 CFLAGS="-O1 -g" fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do mkdir -p $(FUZZ_BUILD)/corpus_$$t; echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; \
	  extra=; case $$t in gguf|safetensors) extra=fixtures/corrupt;; esac; \
	  $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_BUILD)/crash-$$t- $(FUZZ_FLAGS) \
	    $(FUZZ_BUILD)/corpus_$$t tests/fuzz/corpus/$$t $$extra 2>&1 | grep -E '^(#[0-9]+ +DONE|Done|==[0-9]+==ERROR|SUMMARY)' || true; \
	  if ls $(FUZZ_BUILD)/crash-$$t-* >/dev/null 2>&1; then echo "fuzz_$$t: crash: $$(ls $(FUZZ_BUILD)/crash-$$t-*)" >&2; exit 1; fi; done

check-interop: all $(TOOLS)
	@sh $(SHARED)/tools/llamacpp/setup.sh $(LLCPP_DIR) >/dev/null
	@$(MAKE) --no-print-directory -C $(SHARED)/tools/llamacpp LLCPP_DIR=$(LLCPP_DIR) BUILD=$(LLCPP_DIR)/bin >/dev/null
	@SLM=$(BUILD)/slm LLBIN=$(LLCPP_DIR)/bin sh tests/interop.sh
	@SLM=$(BUILD)/slm LLCPP_DIR=$(LLCPP_DIR) sh tests/interop_eval.sh
	@SLM=$(BUILD)/slm BUILD=$(BUILD) LLCPP_DIR=$(LLCPP_DIR) sh tests/interop_gemma.sh
	@SLM=$(BUILD)/slm BUILD=$(BUILD) LLCPP_DIR=$(LLCPP_DIR) sh tests/interop_llama.sh
	@SLM=$(BUILD)/slm BUILD=$(BUILD) LLCPP_DIR=$(LLCPP_DIR) sh tests/interop_qwen3.sh
	@SLM=$(BUILD)/slm BUILD=$(BUILD) LLCPP_DIR=$(LLCPP_DIR) sh tests/interop_phi3.sh
	@SLM=$(BUILD)/slm BUILD=$(BUILD) LLCPP_DIR=$(LLCPP_DIR) sh tests/interop_tokbf.sh

bench: all $(TOOLS)
	@SLM=$(BUILD)/slm BUILD=$(BUILD) sh bench/run_all.sh

lint:
	@sh tests/lint.sh && sh tests/lint_test.sh

# the man page is the option tables (cli/cmd_*.c) rendered by the binary: `slm --man`
$(BUILD)/slm.1: $(BUILD)/slm
	$(BUILD)/slm --man > $@.tmp && mv $@.tmp $@

# installs exactly these files (uninstall removes exactly them): the binary, its slm-<command>
# aliases, the man page slm.1 and slm-<command>.1 links to it
INSTALLED := $(BINDIR)/slm $(addprefix $(BINDIR)/,$(ALIASES)) $(MANDIR)/slm.1 $(addprefix $(MANDIR)/,$(addsuffix .1,$(ALIASES)))
install: all $(BUILD)/slm.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)
	install -m 755 $(BUILD)/slm $(DESTDIR)$(BINDIR)/slm
	install -m 644 $(BUILD)/slm.1 $(DESTDIR)$(MANDIR)/slm.1
	@for a in $(ALIASES); do ln -sf slm $(DESTDIR)$(BINDIR)/$$a; ln -sf slm.1 $(DESTDIR)$(MANDIR)/$$a.1; done

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

clean:
	rm -rf build build-asan build-asan-clang build-fuzz

help:
	@sed -n '1,18p' Makefile

-include $(wildcard $(BUILD)/*.d)
