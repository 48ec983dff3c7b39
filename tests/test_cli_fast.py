"""bin/pmprof's own `stacks` and `snapshot` (ext/cli/cli.c) against the Python CLI.

`bin/pmprof stacks` with text output and `bin/pmprof snapshot` run in C
when their arguments are among the few ext/cli/cli.c parses; everything else
goes to the Python CLI.  Here both paths run on the same cores and live
processes and must print the same bytes (the live "target stopped"
figure aside), write profiles that `go tool pprof -raw` reads alike (the
time aside) and exit with the same status; the test hook PMPROF_TEST_NO_PYTHON=1 (exit 99
where Python would start) proves which path ran.  (Killing either path
mid-snapshot: test_stacks.test_target_survives_sigkill_while_stopped.)
"""

import os
import re

import pytest

from conftest import DEBUG_DIR, ENV, gcore, pprof_raw, run_pmprof, wait_until

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


def raw_without_time(path):
    return re.sub(r"(?m)^Time: .*$", "", pprof_raw(path))


def snapshots(tmp_path, *args, between=None):
    """(fast, slow) `snapshot -o` runs into two files, and their -raw;
    between(): run after the first (a live target settling again)."""
    fa, sa = str(tmp_path / "fast.pb.gz"), str(tmp_path / "slow.pb.gz")
    f = run_pmprof("snapshot", *args, "-o", fa, env=FAST)
    assert f.returncode != 99, ("went to the Python CLI", args, f.stderr)
    if between:
        between()
    s = run_pmprof("snapshot", *args, "--output=%s" % sa, env=SLOW)
    assert f.returncode == s.returncode == 0, (f.stderr, s.stderr)
    assert f.stderr == s.stderr
    assert f.stdout.replace(fa, "F") == s.stdout.replace(sa, "F")
    return raw_without_time(fa), raw_without_time(sa)


@pytest.mark.parametrize("name,extra", [("threads", ()), ("cxx", ()),
                                        ("threads-stripped", ("--debug-dir", DEBUG_DIR))])
def test_snapshot_profiles_are_the_same(target, tmp_path, name, extra):
    t = target(name)
    core = gcore(t.pid, tmp_path)
    t.kill()
    fast, slow = snapshots(tmp_path, "--core", core, "--exe", t.exe, *extra)
    assert fast == slow
    assert "Comment: pmprof snapshot of core '%s'" % core in fast


def test_snapshot_live_and_default_name(target, tmp_path):
    t = target("deep", 8, "block", 20)
    # Each thread's state is in the profile: the second run waits until
    # every thread the first one stopped is asleep again.
    fast, slow = snapshots(tmp_path, "-p", t.pid, between=lambda: wait_until(
        lambda: set(t.states().values()) == {"S"}, 10, 0.005, "threads asleep again"))
    assert fast.count("thread:[deep") == slow.count("thread:[deep") == 9
    assert fast == slow
    r = run_pmprof("snapshot", "-p", t.pid, env=FAST, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "pmprof snapshot: wrote 9 threads to pmprof-snapshot.pb.gz\n"
    assert "Samples:" in pprof_raw(tmp_path / "pmprof-snapshot.pb.gz")
    assert t.tracer() == 0


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
    ("snapshot", "-p", "{pid}", "--all"),            # a stacks option
    ("snapshot", "-p", "{pid}", "-o", "/nonexistent/x.pb.gz"),   # write error
    ("stacks", "-p", "{pid}", "-o", "x.pb.gz"),        # a snapshot option
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
        tmpname = re.compile(r"\.tmp\.\d+")     # a write error names the temp file
        assert tmpname.sub("", r.stderr) == tmpname.sub("", s.stderr)
    assert t.tracer() == 0
