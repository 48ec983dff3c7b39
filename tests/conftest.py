"""pytest harness for the gdb-driven and CLI tests (STYLE 8.5.2).

Run from tests/: `cd tests && python3 -m pytest` (or `make test-gdb`).
The machinery lives in helpers.py; this file re-exports it (tests write
`from conftest import gdb_run, PMPROF`) and adds pytest's side:

  built_targets (session, autouse)  `make -C targets` once; a failed build
                                    stops the run with make's output
  target(name, *args, **kw)         fixture: a started target (helpers.Target),
                                    in place at READY; SIGKILLed and reaped at
                                    teardown, which also fails the test if the
                                    target died on its own meanwhile
  update_goldens                    fixture: True under --update-goldens
  golden(name, text)                fixture: compare with tests/golden/NAME
                                    (rewritten under --update-goldens)

Plain functions (see helpers.py): run_pmprof, gdb_run, core_run, gcore,
kernel_core, gdb_bt, gdb_bt_threads, parse_bt, pprof_raw, pprof_tool,
wait_until, subsequence; markers require_go, require_ptrace.
"""

import os
import subprocess

import pytest

from helpers import (DEBUG_DIR, ENV, GDB, GDB_SCRIPT, GOLDEN_DIR, PINNED, PMPROF, ROOT,
                     TARGETS, TARGETS_SRC, TESTS, BtFrame, BtThread, Target, TargetDied,
                     check_golden, core_glob, core_pattern, core_run, gcore, gdb_argv,
                     gdb_bt, gdb_bt_text, gdb_bt_threads, gdb_run, go_available, go_env,
                     have_go, kernel_core, parse_bt, parse_bt_threads, parse_frame,
                     pprof_raw, pprof_tool, ptrace_skip_reason, require_go, require_ptrace,
                     run_pmprof, split_function, subsequence, wait_until)

__all__ = [
    "DEBUG_DIR", "ENV", "GDB", "GDB_SCRIPT", "GOLDEN_DIR", "PINNED", "PMPROF", "ROOT",
    "TARGETS", "TARGETS_SRC", "TESTS", "BtFrame", "BtThread", "Target", "TargetDied",
    "check_golden", "core_glob", "core_pattern", "core_run", "gcore", "gdb_argv",
    "gdb_bt", "gdb_bt_text", "gdb_bt_threads", "gdb_run", "go_available", "go_env",
    "have_go", "kernel_core", "parse_bt", "parse_bt_threads", "parse_frame",
    "pprof_raw", "pprof_tool", "ptrace_skip_reason", "require_go", "require_ptrace",
    "run_pmprof", "split_function", "subsequence", "wait_until",
]

# Pinned for this process too, so anything a test spawns by hand inherits it.
os.environ.update(PINNED)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "serial: measures CPU shares or timing; `make test` runs these "
        "after the parallel pass, one at a time, so other tests do not take their CPU")


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite tests/golden/* from the current output "
                          "(review the diff before committing)")


def pytest_report_header(config):
    notes = []
    reason = ptrace_skip_reason()
    if reason:
        notes.append("attach tests skip: " + reason)
    if not go_available():
        notes.append("go missing: pprof consumer checks and gohello skip")
    if core_pattern().startswith("|"):
        notes.append("kernel-core tests skip: core_pattern is a pipe")
    return ["pmprof: " + n for n in notes]


@pytest.fixture(scope="session", autouse=True)
def built_targets():
    """Builds tests/targets once per session (make is a no-op when up to
    date); a build failure ends the run with make's output."""
    jobs = str(max(2, len(os.sched_getaffinity(0))))
    r = subprocess.run(["make", "-s", "-j" + jobs, "-C", TARGETS_SRC],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, env=ENV)
    if r.returncode != 0:
        pytest.exit("cannot build the test targets (make -C tests/targets, exit %d):\n%s"
                    % (r.returncode, r.stdout), returncode=2)
    return TARGETS


@pytest.fixture
def target():
    """Factory: target(name, *args, ready="READY", timeout=10, settle=None,
    cwd=None, env=None) -> helpers.Target.  Every target started through it
    is SIGKILLed and reaped at teardown."""
    started = []

    def start(name, *args, **kw):
        t = Target(name, args, **kw)
        started.append(t)
        return t

    yield start
    harmed = []
    for t in started:
        try:
            t.check_unharmed()
        except TargetDied as e:
            harmed.append(str(e))
        t.kill()
    if harmed:
        pytest.fail("\n".join(harmed), pytrace=False)


@pytest.fixture
def update_goldens(request):
    return request.config.getoption("--update-goldens")


@pytest.fixture
def golden(update_goldens):
    """golden(name, text): text must equal tests/golden/NAME (canonicalize
    addresses and times first); under --update-goldens it is rewritten."""
    def check(name, text):
        check_golden(name, text, update_goldens)
    return check
