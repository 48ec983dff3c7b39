"""pytest harness: targets, pmprof/gdb runners, cores, gdb's own bt.

Tests run from tests/ (`make test`).  Every test gets its own target
process and its own gdb; targets stop themselves with alarm().
"""

import os
import re
import resource
import shutil
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = os.path.join(ROOT, "tests", "targets", "bin")
PMPROF = os.path.join(ROOT, "bin", "pmprof")
GDB_SCRIPT = os.path.join(ROOT, "gdb", "pmprof.py")
ENV = dict(os.environ, LC_ALL="C.UTF-8", PMPROF_NO_COLOR="1")


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite tests/golden/* from the current output")


@pytest.fixture(scope="session", autouse=True)
def built_targets():
    r = subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "tests", "targets")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        pytest.exit("cannot build the test targets:\n" + r.stdout, 2)


class Target:
    def __init__(self, name, args=(), cwd=None, env=None):
        self.exe = os.path.join(TARGETS, name)
        self.proc = subprocess.Popen([self.exe] + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
        self.pid = self.proc.pid
        self.wait_line("READY")

    def wait_line(self, want, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.strip() == want:
                return
        self.kill()
        raise AssertionError("target %s did not print %s" % (self.exe, want))

    def tids(self):
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % self.pid))

    def names(self):
        out = {}
        for t in self.tids():
            with open("/proc/%d/task/%d/comm" % (self.pid, t)) as f:
                out[t] = f.read().strip()
        return out

    def states(self):
        out = {}
        for t in self.tids():
            with open("/proc/%d/task/%d/stat" % (self.pid, t)) as f:
                out[t] = f.read().rsplit(")", 1)[1].split()[0]
        return out

    def tracer(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
        return 0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def target():
    started = []

    def start(name, *args, **kw):
        t = Target(name, args, **kw)
        started.append(t)
        return t

    yield start
    for t in started:
        t.kill()


def run_pmprof(*args, timeout=60, env=None, check=None):
    r = subprocess.run([PMPROF] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout,
                       env=env or ENV)
    if check is not None:
        assert r.returncode == check, (r.returncode, r.stdout, r.stderr)
    return r


def gdb_run(*cmds, pid=None, exe=None, core=None, source=True, timeout=90):
    argv = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
            "-ex", "set width 0", "-ex", "set pagination off"]
    if exe:
        argv.append(exe)
    if core:
        argv += ["-c", core]
    if pid:
        argv += ["-p", str(pid)]
    if source:
        argv += ["-ex", "source " + GDB_SCRIPT]
    for c in cmds:
        argv += ["-ex", c]
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, env=ENV)


def gcore(pid, tmpdir):
    prefix = os.path.join(str(tmpdir), "core")
    r = subprocess.run(["gcore", "-o", prefix, str(pid)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    path = "%s.%d" % (prefix, pid)
    assert os.path.exists(path), r.stdout
    return path


def kernel_core(name, tmpdir, *args):
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    if pattern.startswith("|"):
        pytest.skip("core_pattern pipes cores to a helper: %s" % pattern)
    exe = os.path.join(TARGETS, name)
    d = str(tmpdir)

    def unlimited():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    p = subprocess.run([exe, "--gencore"] + list(args), cwd=d, preexec_fn=unlimited,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == -signal.SIGABRT, p.returncode
    for _ in range(50):
        cores = [f for f in os.listdir(d) if f == "core" or f.startswith("core.")]
        if cores:
            path = os.path.join(d, cores[0])
            time.sleep(0.2)
            return path, exe
        time.sleep(0.1)
    pytest.skip("the kernel wrote no core into %s (core_pattern %r)" % (d, pattern))


_THREAD_RE = re.compile(r"^Thread \d+ \(.*?LWP (\d+)")
_FRAME_RE = re.compile(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(.+?)(?: \(.*)?(?: at \S+:\d+| from \S+)?$")


def parse_bt(text):
    """gdb's `thread apply all bt` -> {tid: [function, ...]} (innermost first)."""
    out = {}
    cur = None
    for line in text.splitlines():
        m = _THREAD_RE.match(line)
        if m:
            cur = out.setdefault(int(m.group(1)), [])
            continue
        if cur is None or not line.startswith("#"):
            continue
        body = re.sub(r"^#\d+\s+", "", line)
        body = re.sub(r"^0x[0-9a-f]+ in ", "", body)
        if body.startswith("<signal handler called>"):
            cur.append("<signal handler called>")
            continue
        # function name up to the argument list " (" (templates may hold spaces)
        depth = 0
        name = body
        for i, ch in enumerate(body):
            if ch in "<":
                depth += 1
            elif ch in ">":
                depth -= 1
            elif ch == "(" and depth == 0 and i > 0 and body[i - 1] == " ":
                name = body[:i - 1]
                break
        cur.append(name.strip())
    return out


def gdb_bt(pid=None, exe=None, core=None):
    r = gdb_run("thread apply all bt", pid=pid, exe=exe, core=core, source=False)
    return parse_bt(r.stdout)


def have_go():
    return shutil.which("go") is not None


def pprof_tool(*args):
    env = dict(ENV, HOME="/tmp", GOCACHE="/tmp/pmprof-gocache", GOFLAGS="")
    r = subprocess.run(["go", "tool", "pprof"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout
