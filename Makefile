# pmprof Makefile.  `make help` lists the targets.
#
# The extension is built for the Python that gdb embeds (asked from gdb,
# never the python3 first on PATH).  DEVELOPER=1 adds warnings + -Werror;
# SANITIZE=address,undefined builds with sanitizers.

GDB ?= gdb
BUILD ?= build
CC ?= cc
PROTOC_C ?= protoc-c
T ?=
PYTEST_ARGS ?=
# Test processes (pytest-xdist): the suite runs on 2 cores in CI.
PYTEST_JOBS ?= 2

# Debian packages needed to build, test and run the demo.
DEB_PACKAGES := gcc g++ make gdb elfutils libdw-dev libelf-dev \
	libprotobuf-c-dev protobuf-c-compiler zlib1g-dev python3-dev \
	python3-pytest python3-pytest-xdist python3-jsonschema golang-go libc6-dbg graphviz \
	liburing-dev libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev \
	lldb-16 python3-lldb-16

CFLAGS_BASE := -std=gnu11 -g -O2 -fPIC -fvisibility=hidden -Wall -Wextra \
	-Wno-unused-parameter -Wno-missing-field-initializers \
	-Iext -I$(BUILD)/gen
ifeq ($(DEVELOPER),1)
CFLAGS_BASE += -Werror -Wvla -Wdeclaration-after-statement -Wshadow \
	-Wstrict-prototypes -Wold-style-definition
endif
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
endif
LIBS := -ldw -lelf -lprotobuf-c -lz -lstdc++

CORE_SRCS := $(filter-out ext/module.c ext/cli.c,$(wildcard ext/*.c))
CORE_OBJS := $(patsubst ext/%.c,$(BUILD)/obj/%.o,$(CORE_SRCS)) \
	$(BUILD)/obj/profile.pb-c.o
GEN_HDRS := $(BUILD)/gen/profile.pb-c.h $(BUILD)/gen/syscalls.h

-include $(BUILD)/pyinfo.mk

EXT := python/pmprof/_core$(EXT_SUFFIX)

.PHONY: all build deps targets consumers test test-unit test-gdb asan \
	format lint bench proto demo clean help docs

all: build

help:
	@echo 'make deps      install missing Debian packages (idempotent)'
	@echo 'make / build   build pmprof._core for gdb'"'"'s Python'
	@echo 'make demo      deps + build + run pmprof on the bundled demo'
	@echo 'make test      deps + build + unit and gdb tests (T=pattern)'
	@echo 'make targets   build the test target programs'
	@echo 'make asan      build and test with address/undefined sanitizers'
	@echo 'make bench     run the benchmarks (prints figures)'
	@echo 'make format / lint / proto / docs / clean'

deps:
	@sh tools/deps.sh $(DEB_PACKAGES)

# Ask gdb which Python it embeds.
$(BUILD)/pyinfo.mk: tools/pyinfo.py
	@mkdir -p $(BUILD)
	@$(GDB) -nx -batch -ex 'python exec(open("tools/pyinfo.py").read())' > $@.tmp \
		&& grep -q EXT_SUFFIX $@.tmp && mv $@.tmp $@ \
		|| { echo "pmprof: cannot ask $(GDB) for its Python (is gdb built with Python?)"; rm -f $@.tmp; exit 1; }

build: $(EXT) bin/pmprof

$(BUILD)/gen/profile.pb-c.c $(BUILD)/gen/profile.pb-c.h: ext/proto/profile.proto
	@mkdir -p $(BUILD)/gen
	$(PROTOC_C) --proto_path=ext/proto --c_out=$(BUILD)/gen ext/proto/profile.proto

proto: $(BUILD)/gen/profile.pb-c.c

$(BUILD)/gen/syscalls.h: tools/gen-syscalls.sh
	@mkdir -p $(BUILD)/gen
	sh tools/gen-syscalls.sh > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/%.o: ext/%.c $(wildcard ext/*.h) $(GEN_HDRS)
	@mkdir -p $(BUILD)/obj
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/profile.pb-c.o: $(BUILD)/gen/profile.pb-c.c $(BUILD)/gen/profile.pb-c.h
	@mkdir -p $(BUILD)/obj
	$(CC) $(filter-out -Werror -Wdeclaration-after-statement -Wshadow,$(CFLAGS_BASE)) $(CFLAGS) -c $< -o $@

$(BUILD)/libpmprof.a: $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/obj/module.o: ext/module.c ext/pmprof.h $(BUILD)/pyinfo.mk
	@mkdir -p $(BUILD)/obj
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -I$(PY_INCLUDE) -c $< -o $@

$(EXT): $(BUILD)/obj/module.o $(BUILD)/libpmprof.a
	$(CC) -shared $(LDFLAGS) -o $@ $(BUILD)/obj/module.o $(BUILD)/libpmprof.a $(LIBS)

# The standalone command: starts the Python CLI with gdb's Python, and
# runs `stacks` (text) itself on the same core (ext/cli.c).
bin/pmprof: ext/cli.c ext/pmprof.h ext/banned.h $(BUILD)/libpmprof.a $(BUILD)/pyinfo.mk
	@mkdir -p bin
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -DPMPROF_PYTHON='"$(PY_EXE)"' $(LDFLAGS) \
		-o $@.tmp ext/cli.c $(BUILD)/libpmprof.a $(LIBS) && mv $@.tmp $@

# ---- tests ---------------------------------------------------------------

UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

$(BUILD)/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libpmprof.a
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -Itests/unit $(LDFLAGS) $< -o $@ $(BUILD)/libpmprof.a $(LIBS)

targets:
	$(MAKE) -C tests/targets

test-unit: $(UNIT_BINS) targets
	@for t in $(UNIT_BINS); do echo "== $$t"; $$t; rc=$$?; \
		if [ $$rc = 77 ]; then echo "skipped: $$t"; elif [ $$rc != 0 ]; then exit $$rc; fi; done

# Real consumers' own schemas, where the npm registry is reachable: the
# speedscope file-format schema (JSON Schema draft-07) shipped in its
# package.  Optional: the tests say when it is missing.
SPEEDSCOPE_SCHEMA := $(BUILD)/npm/node_modules/speedscope/dist/release/file-format-schema.json

consumers:
	@if [ ! -f $(SPEEDSCOPE_SCHEMA) ] && command -v npm >/dev/null 2>&1; then \
		echo "pmprof: fetching speedscope's file-format schema (npm)"; \
		mkdir -p $(BUILD)/npm && timeout 120 npm install --prefix $(BUILD)/npm \
			--no-audit --no-fund --silent speedscope@1.25.0 >/dev/null 2>&1 \
			|| echo "pmprof: npm install speedscope failed: its schema check is skipped"; \
	fi

test-gdb: build targets consumers
	cd tests && PMPROF_NO_COLOR=1 LC_ALL=C.UTF-8 $(PY_EXE) -m pytest -q -ra -n $(PYTEST_JOBS) -p no:cacheprovider \
		-m 'not serial' $(if $(T),-k '$(T)') $(if $(UPDATE_GOLDENS),--update-goldens) $(PYTEST_ARGS)
	cd tests && PMPROF_NO_COLOR=1 LC_ALL=C.UTF-8 $(PY_EXE) -m pytest -q -ra -p no:cacheprovider \
		-m serial $(if $(T),-k '$(T)') $(if $(UPDATE_GOLDENS),--update-goldens) $(PYTEST_ARGS) \
		|| [ $$? = 5 ]

test: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-gdb

asan:
	$(MAKE) clean-build
	$(MAKE) SANITIZE=address,undefined CC=gcc test-unit
	$(MAKE) clean-build

format:
	clang-format -i ext/*.c ext/*.h tests/unit/*.c tests/unit/*.h

# The C core with every warning an error, and every Python file compiled.
lint:
	$(MAKE) clean-build
	$(MAKE) DEVELOPER=1 build
	$(PY_EXE) -m py_compile python/pmprof/*.py python/pmprof/*/*.py gdb/pmprof.py lldb/pmprof.py \
		tests/*.py bench/*.py tools/*.py

# Every benchmark prints figures and asserts nothing (results: bench/README.md).
bench: build targets
	$(PY_EXE) bench/bench.py $(BENCH_ARGS)
	$(PY_EXE) bench/locks.py
	$(PY_EXE) bench/heap.py
	@if [ -f bench/record.py ]; then $(MAKE) -C bench/targets && $(PY_EXE) bench/record.py; fi
	@if command -v go >/dev/null 2>&1; then $(MAKE) -C bench/targets && $(PY_EXE) bench/go.py; fi
	@if command -v lldb-16 >/dev/null 2>&1; then $(PY_EXE) bench/lldb.py; fi
	@if command -v pgbench >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then $(PY_EXE) bench/server.py; fi

docs:
	$(PY_EXE) tools/gen-docs.py > docs/commands.md.tmp && mv docs/commands.md.tmp docs/commands.md

demo: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory -C demo
	@sh demo/run-demo.sh

clean-build:
	rm -rf $(BUILD)/obj $(BUILD)/unit $(BUILD)/libpmprof.a python/pmprof/_core*.so

clean: clean-build
	rm -rf $(BUILD) bin/pmprof
	$(MAKE) -C tests/targets clean
	-$(MAKE) -C demo clean
