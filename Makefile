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
	lldb-16 python3-lldb-16 clang-14 libclang-rt-14-dev

# ext/ is layered by folder, lowest first (docs/design.md, ext/*/README;
# tools/layers.py checks that no file calls or includes a folder above
# its own).  Headers are included by basename: one -I per folder.
CORE_DIRS := base layouts target unwind inspect record output
EXT_DIRS := $(CORE_DIRS) python cli
CFLAGS_BASE := -std=gnu11 -g -O2 -fPIC -fvisibility=hidden -Wall -Wextra \
	-Wno-unused-parameter -Wno-missing-field-initializers \
	$(addprefix -Iext/,$(CORE_DIRS)) -I$(BUILD)/gen
ifeq ($(DEVELOPER),1)
CFLAGS_BASE += -Werror -Wvla -Wdeclaration-after-statement -Wshadow \
	-Wstrict-prototypes -Wold-style-definition
endif
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
# bin/pmprof starts gdb's Python (not sanitized) with the sanitized module:
# the runtime goes first (LD_PRELOAD, ext/cli/cli.c).
ifneq ($(findstring address,$(SANITIZE)),)
CLI_DEFS += -DPMPROF_PRELOAD='"$(shell $(CC) -print-file-name=libasan.so)"'
else
CLI_DEFS += -DPMPROF_PRELOAD='"$(shell $(CC) -print-file-name=libubsan.so)"'
endif
endif
LIBS := -ldw -lelf -lprotobuf-c -lz -lstdc++

CORE_SRCS := $(wildcard $(addprefix ext/,$(addsuffix /*.c,$(CORE_DIRS))))
CORE_HDRS := $(wildcard $(addprefix ext/,$(addsuffix /*.h,$(CORE_DIRS))))
CORE_OBJS := $(addprefix $(BUILD)/obj/,$(sort $(notdir $(CORE_SRCS:.c=.o)))) \
	$(BUILD)/obj/profile.pb-c.o
vpath %.c $(addprefix ext/,$(CORE_DIRS))
GEN_HDRS := $(BUILD)/gen/profile.pb-c.h $(BUILD)/gen/syscalls.h

-include $(BUILD)/pyinfo.mk

EXT := python/pmprof/_core$(EXT_SUFFIX)

.PHONY: all build deps targets consumers test test-unit test-gdb asan \
	fuzz fuzz-build fuzz-ci format lint bench soak proto demo clean help docs

all: build

help:
	@echo 'make deps      install missing Debian packages (idempotent)'
	@echo 'make / build   build pmprof._core for gdb'"'"'s Python'
	@echo 'make demo      deps + build + run pmprof on the bundled demo'
	@echo 'make test      deps + build + unit and gdb tests (T=pattern)'
	@echo 'make targets   build the test target programs'
	@echo 'make asan      build and test with address/undefined sanitizers'
	@echo 'make fuzz      libFuzzer over the parsers, FUZZ_SECONDS each (default 60)'
	@echo 'make bench     run the benchmarks (prints figures)'
	@echo 'make soak      soak and kill pmprof on a target that counts its signals (SOAK_ARGS=)'
	@echo 'make format / lint / proto / docs / clean'
	@echo 'make layers    check that no file of ext/ or python/pmprof/ uses a layer above it'

deps:
	@sh tools/deps.sh $(DEB_PACKAGES)

# Ask gdb which Python it embeds.
$(BUILD)/pyinfo.mk: tools/pyinfo.py
	@mkdir -p $(BUILD)
	@$(GDB) -nx -batch -ex 'python exec(open("tools/pyinfo.py").read())' > $@.tmp \
		&& grep -q EXT_SUFFIX $@.tmp && mv $@.tmp $@ \
		|| { echo "pmprof: cannot ask $(GDB) for its Python (is gdb built with Python?)"; rm -f $@.tmp; exit 1; }

build: $(EXT) bin/pmprof

$(BUILD)/gen/profile.pb-c.c $(BUILD)/gen/profile.pb-c.h: ext/output/proto/profile.proto
	@mkdir -p $(BUILD)/gen
	$(PROTOC_C) --proto_path=ext/output/proto --c_out=$(BUILD)/gen ext/output/proto/profile.proto

proto: $(BUILD)/gen/profile.pb-c.c

$(BUILD)/gen/syscalls.h: tools/gen-syscalls.sh
	@mkdir -p $(BUILD)/gen
	sh tools/gen-syscalls.sh > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/%.o: %.c $(CORE_HDRS) $(GEN_HDRS)
	@mkdir -p $(BUILD)/obj
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/profile.pb-c.o: $(BUILD)/gen/profile.pb-c.c $(BUILD)/gen/profile.pb-c.h
	@mkdir -p $(BUILD)/obj
	$(CC) $(filter-out -Werror -Wdeclaration-after-statement -Wshadow,$(CFLAGS_BASE)) $(CFLAGS) -c $< -o $@

$(BUILD)/libpmprof.a: $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^

# The Python module: ext/python/module.c assembles one file per type.
PY_SRCS := $(wildcard ext/python/*.c)
PY_OBJS := $(patsubst ext/python/%.c,$(BUILD)/obj/%.o,$(PY_SRCS))

$(PY_OBJS): $(BUILD)/obj/%.o: ext/python/%.c ext/python/module.h ext/base/pmprof.h $(BUILD)/pyinfo.mk
	@mkdir -p $(BUILD)/obj
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -I$(PY_INCLUDE) -c $< -o $@

$(EXT): $(PY_OBJS) $(BUILD)/libpmprof.a
	$(CC) -shared $(LDFLAGS) -o $@ $(PY_OBJS) $(BUILD)/libpmprof.a $(LIBS)

# The standalone command: starts the Python CLI with gdb's Python, and
# runs `stacks` (text) itself on the same core (ext/cli/cli.c).
# (Its object is kept in build/obj/ for tools/layers.py.)
$(BUILD)/obj/cli.o: ext/cli/cli.c ext/base/pmprof.h ext/base/banned.h $(BUILD)/pyinfo.mk
	@mkdir -p $(BUILD)/obj
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -DPMPROF_PYTHON='"$(PY_EXE)"' $(CLI_DEFS) -c $< -o $@

bin/pmprof: $(BUILD)/obj/cli.o $(BUILD)/libpmprof.a
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@.tmp $(BUILD)/obj/cli.o $(BUILD)/libpmprof.a $(LIBS) && mv $@.tmp $@

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
	@$(MAKE) --no-print-directory layers
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-gdb

# ASan + UBSan (gcc; -fno-sanitize-recover: any report fails): the unit
# programs (leaks checked too), then the CLI tests that read hostile
# bytes, with bin/pmprof and the module sanitized (built in build/asan;
# bin/pmprof preloads the runtime into gdb's Python).  Tests of the module
# inside gdb/lldb are skipped (neither debugger loads a sanitized module).
# A report fails the run by its exit status (86) and by its log file.
# Afterwards the normal module and bin/pmprof are relinked by `make build`.
ASAN_BUILD := build/asan
ASAN_LOG := $(CURDIR)/$(ASAN_BUILD)/log
ASAN_TESTS ?= test_cli_fast.py test_errors.py test_exit_status.py \
	test_core_backend.py test_heap.py test_locks.py test_go.py test_damage.py
ASAN_ENV := PMPROF_ASAN=1 \
	ASAN_OPTIONS=detect_leaks=0:exitcode=86:log_path=$(ASAN_LOG)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86:log_path=$(ASAN_LOG)/ubsan

asan: targets
	rm -f $(EXT) bin/pmprof
	rm -rf $(ASAN_LOG) && mkdir -p $(ASAN_LOG)
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SANITIZE=address,undefined CC=gcc \
		test-unit build; rc=$$?; \
	if [ $$rc = 0 ]; then \
		cd tests && $(ASAN_ENV) PMPROF_NO_COLOR=1 LC_ALL=C.UTF-8 $(PY_EXE) -m pytest -q -ra \
			-n $(PYTEST_JOBS) -p no:cacheprovider $(if $(T),-k '$(T)') $(PYTEST_ARGS) \
			$(ASAN_TESTS); rc=$$?; cd ..; \
	fi; \
	if ls $(ASAN_LOG)/* >/dev/null 2>&1; then \
		echo "pmprof: sanitizer reports:"; cat $(ASAN_LOG)/*; rc=1; fi; \
	rm -f $(EXT) bin/pmprof; \
	echo "make asan: exit $$rc"; exit $$rc

# ---- fuzzing (libFuzzer, clang; docs/reliability.md) -----------------------
# The core is built a second time with clang's fuzzer instrumentation and
# ASan+UBSan into $(FUZZ_BUILD); each harness is one libFuzzer binary.

FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := $(filter-out -O2,$(CFLAGS_BASE)) -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_OBJS := $(addprefix $(FUZZ_BUILD)/obj/,$(sort $(notdir $(CORE_SRCS:.c=.o)))) \
	$(FUZZ_BUILD)/obj/profile.pb-c.o
FUZZERS := stacks locks heap go gopclntab mem-heap mem-locks
FUZZ_BINS := $(patsubst %,$(FUZZ_BUILD)/fuzz-%,$(FUZZERS))

$(FUZZ_BUILD)/obj/%.o: %.c $(CORE_HDRS) $(GEN_HDRS)
	@mkdir -p $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/obj/profile.pb-c.o: $(BUILD)/gen/profile.pb-c.c $(BUILD)/gen/profile.pb-c.h
	@mkdir -p $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/libpmprof.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz-%: tests/fuzz/fuzz-core.c $(FUZZ_BUILD)/libpmprof.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -DFUZZ_CMD_$(shell echo $* | tr a-z A-Z) \
		-o $@ $< $(FUZZ_BUILD)/libpmprof.a $(LIBS)

$(FUZZ_BUILD)/fuzz-mem-%: tests/fuzz/fuzz-mem.c $(FUZZ_BUILD)/libpmprof.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -DFUZZ_MEM_$(shell echo $* | tr a-z A-Z) \
		-o $@ $< $(FUZZ_BUILD)/libpmprof.a $(LIBS)

$(FUZZ_BUILD)/fuzz-gopclntab: tests/fuzz/fuzz-gopclntab.c $(FUZZ_BUILD)/libpmprof.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libpmprof.a $(LIBS)

fuzz-build: $(FUZZ_BINS)

# Seeds from cores of tests/targets made now, then every harness for
# FUZZ_SECONDS; prints executions and crashes (saved under $(FUZZ_BUILD)).
fuzz: build targets fuzz-build
	$(PY_EXE) tests/fuzz/run.py --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

# CI's short run: the two fast harnesses (hundreds of executions a second)
# for 15 s each; the slow core-file ones only in `make fuzz`.
fuzz-ci: build targets fuzz-build
	$(PY_EXE) tests/fuzz/run.py --seconds 15 --only gopclntab,mem-locks

format:
	clang-format -i $(wildcard $(addprefix ext/,$(addsuffix /*.[ch],$(EXT_DIRS)))) tests/unit/*.c tests/unit/*.h

# The layering of ext/ and python/pmprof/ (docs/design.md): includes and
# imports from the sources, calls from the built objects; well under 1 s.
.PHONY: layers
layers: build
	$(PY_EXE) tools/layers.py --objs $(BUILD)/obj

# The C core with every warning an error, the layering, and every Python
# file compiled.
lint:
	$(MAKE) clean-build
	$(MAKE) DEVELOPER=1 build
	$(PY_EXE) tools/layers.py --objs $(BUILD)/obj
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

# The long soak and kill run (docs/reliability.md); its short version is
# tests/test_soak.py in `make test`.
soak: build targets
	$(PY_EXE) tests/soak.py $(SOAK_ARGS)

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
