"""bin/pmprof's own `stacks` (ext/cli.c) against the Python CLI.

`bin/pmprof stacks` with text output runs in C when its arguments are
among the few ext/cli.c parses, and hands everything else to the Python
CLI.  Here both paths run on the same cores and live processes and must
print the same bytes (the live "target stopped" figure aside) and exit
with the same status; the test hook PMPROF_TEST_NO_PYTHON=1 (exit 99
where Python would start) proves which path ran.  (Killing either path
mid-snapshot: test_stacks.test_target_survives_sigkill_while_stopped.)
"""

import os
import re

import pytest

from conftest import DEBUG_DIR, ENV, gcore, run_pmprof

FAST = dict(ENV, PMPROF_TEST_NO_PYTHON="1")     # C path only, or exit 99
SLOW = dict(ENV, PMPROF_NO_FAST="1")            # the Python CLI only

STOPPED = re.compile(r"\(target stopped [0-9.]+ ms\)")


def both(*args, live=False):
    """(fast, slow) runs of `bin/pmprof ARGS`; the fast one must not have
    needed Python."""
    f = run_pmprof(*args, env=FAST)
    assert f.returncode != 99, ("went to the Python CLI", args, f.stderr)
    s = run_pmprof(*args, env=SLOW)
    if live:
        assert STOPPED.search(f.stdout.splitlines()[0]), f.stdout[:200]
        f.stdout = STOPPED.sub("(target stopped X ms)", f.stdout)
        s.stdout = STOPPED.sub("(target stopped X ms)", s.stdout)
    return f, s


def assert_same(f, s):
    assert f.returncode == s.returncode, (f.returncode, s.returncode, f.stderr, s.stderr)
    assert f.stderr == s.stderr
    assert f.stdout == s.stdout


OPTIONS = [(), ("--all",), ("--depth", "3"), ("--depth=2", "--all", "--format=text")]


@pytest.mark.parametrize("name,extra", [("threads", ()), ("threads-static", ()),
                                        ("cxx", ()), ("threads-nopie", ()),
                                        ("threads-stripped", ("--debug-dir", DEBUG_DIR))])
def test_cores_print_the_same(target, tmp_path, name, extra):
    t = target(name)
    core = gcore(t.pid, tmp_path)
    t.kill()
    for opts in OPTIONS:
        f, s = both("stacks", "--core", core, "--exe", t.exe, *extra, *opts)
        assert f.returncode == 0, f.stderr
        assert_same(f, s)
        assert f.stdout.startswith("core '%s': " % core)
    # without --exe: the executable named by the core
    assert_same(*both("stacks", "--core", core, *extra))


def test_live_blocked_threads_print_the_same(target):
    t = target("deep", 8, "block", 20)
    for opts in OPTIONS:
        f, s = both("stacks", "-p", t.pid, *opts, live=True)
        assert f.returncode == 0, f.stderr
        assert_same(f, s)
        assert f.stdout.startswith("pid %d: 9 threads, " % t.pid)
    f, s = both("stacks", "--pid=%d" % t.pid, live=True)
    assert_same(f, s)
    assert t.tracer() == 0


def test_damaged_core_same_status_and_words(target, tmp_path):
    t = target("threads")
    core = gcore(t.pid, tmp_path)
    t.kill()
    size = os.path.getsize(core)
    for frac in (0.5, 0.9):
        cut = str(tmp_path / ("cut-%s.core" % frac))
        with open(core, "rb") as src, open(cut, "wb") as dst:
            dst.write(src.read(int(size * frac)))
        f = run_pmprof("stacks", "--core", cut, "--exe", t.exe)
        s = run_pmprof("stacks", "--core", cut, "--exe", t.exe, env=SLOW)
        assert f.returncode in (0, 1, 2), f.stderr
        assert "Traceback" not in f.stderr
        assert_same(f, s)


@pytest.mark.parametrize("args", [
    ("stacks", "--format", "json", "-p", "{pid}"),
    ("stacks", "-h"),
    ("threads", "-p", "{pid}"),
    ("snapshot", "-p", "{pid}", "-o", "/dev/null"),
    ("stacks", "-p", "{pid}", "--depth", "0"),
    ("stacks", "-p", "{pid}", "--dep", "3"),          # argparse abbreviation
    ("stacks", "-p", "x{pid}"),
    ("stacks", "-p", "{pid}", "--core", "/nonexistent"),
    ("stacks", "--core", "/nonexistent"),
    ("stacks", "-p", "{pid}", "--exe", "/bin/true"),
    ("stacks", "-p", "{pid}", "-p", "{pid}"),
    ("stacks", "-p", "999999999"),                    # an error: worded by Python
    ("stacks",),
    (),
])
def test_everything_else_goes_to_python(target, args):
    t = target("deep", 1, "block", 5)
    argv = [a.replace("{pid}", str(t.pid)) for a in args]
    f = run_pmprof(*argv, env=FAST)
    assert f.returncode == 99, (argv, f.returncode, f.stdout, f.stderr)
    assert f.stdout == ""
    # and without the hook, what the Python CLI prints
    r = run_pmprof(*argv)
    s = run_pmprof(*argv, env=SLOW)
    assert r.returncode == s.returncode, (argv, r.stderr, s.stderr)
    if "json" not in argv and "threads" not in argv:
        assert STOPPED.sub("", r.stdout) == STOPPED.sub("", s.stdout)
        assert r.stderr == s.stderr
    assert t.tracer() == 0
