"""Test harness for pmprof: targets, pmprof/gdb/lldb runners, cores, gdb's bt.

Plain functions and classes; tests/conftest.py re-exports them and adds
the fixtures, so `from conftest import gdb_run` and
`from helpers import gdb_run` are the same thing.

Owns: starting the purpose-built targets (tests/targets/) and knowing
when they are in place, running bin/pmprof and `gdb -batch -nx` with the
pinned environment (and `lldb -b` with lldb/pmprof.py imported: lldb_run),
making cores (gcore and kernel), parsing gdb's own
`thread apply all bt` as the reference to compare pmprof with, and
`go tool pprof` as the reference consumer of .pb.gz files.

Must not: import gdb or pmprof (tests drive both from outside), sleep a
fixed time to let something settle (use wait_until), or retry a flaky
step.
"""

import atexit
import glob
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import pytest

# Paths are str (os.path style) on purpose: tests join and print them.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
TARGETS_SRC = os.path.join(TESTS, "targets")
TARGETS = os.path.join(TARGETS_SRC, "bin")          # built target programs
DEBUG_DIR = os.path.join(TARGETS, "debug")          # .build-id/xx/yyyy.debug
GOLDEN_DIR = os.path.join(TESTS, "golden")
PMPROF = os.path.join(ROOT, "bin", "pmprof")
GDB_SCRIPT = os.path.join(ROOT, "gdb", "pmprof.py")
GDB = os.environ.get("GDB", "gdb")
LLDB_SCRIPT = os.path.join(ROOT, "lldb", "pmprof.py")
LLDB = os.environ.get("LLDB", "lldb-16")

# The pinned environment of every child (STYLE 8.5.2).  Debuginfod is off
# for gdb and libdwfl alike: no test may reach the network.
# The debug-file cache of this test run: never the user's (~/.cache/pmprof).
CACHE_DIR = tempfile.mkdtemp(prefix="pmprof-test-cache-")
atexit.register(shutil.rmtree, CACHE_DIR, True)
PINNED = {"LC_ALL": "C.UTF-8", "PMPROF_NO_COLOR": "1", "PMPROF_CACHE_DIR": CACHE_DIR}
ENV = dict(os.environ, **PINNED)
ENV["DEBUGINFOD_URLS"] = ""
for _k in [k for k in ENV if k.startswith("PMPROF_TEST_")]:
    del ENV[_k]             # test hooks are set per test, never inherited

READY_TIMEOUT = 10.0        # target start until READY
SETTLE_TIMEOUT = 2.0        # READY until the main thread sleeps
RUN_TIMEOUT = 60            # one pmprof or gdb run

T = TypeVar("T")


def wait_until(pred: Callable[[], T], timeout: float = 5.0, interval: float = 0.01,
               what: str = "condition") -> T:
    """Polls pred() until it returns something true; returns that value.
    Raises AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---- environment checks (skip with a reason, never pass) ------------------

def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _has_cap_sys_ptrace() -> bool:
    status = _read("/proc/self/status") or ""
    m = re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.M)
    return bool(m) and bool(int(m.group(1), 16) & (1 << 19))


def ptrace_skip_reason() -> Optional[str]:
    """Why attaching to a target (a sibling process, not a descendant of
    the debugger) cannot work here, or None."""
    scope = (_read("/proc/sys/kernel/yama/ptrace_scope") or "0").strip()
    if scope == "3":
        return "ptrace is disabled (yama ptrace_scope=3)"
    if scope in ("1", "2") and not _has_cap_sys_ptrace():
        return ("ptrace not permitted: yama ptrace_scope=%s and no CAP_SYS_PTRACE "
                "(try: sysctl kernel.yama.ptrace_scope=0)" % scope)
    return None


require_ptrace = pytest.mark.skipif(ptrace_skip_reason() is not None,
                                    reason=ptrace_skip_reason() or "")

_go_ok: Optional[bool] = None


def go_available() -> bool:
    """`go` is on PATH and runs (cached)."""
    global _go_ok
    if _go_ok is None:
        go = shutil.which("go")
        _go_ok = False
        if go:
            try:
                r = subprocess.run([go, "version"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=go_env(), timeout=30)
                _go_ok = r.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                _go_ok = False
    return _go_ok


have_go = go_available


# ---- targets ----------------------------------------------------------------


class TargetDied(AssertionError):
    pass


class Target:
    """A running tests/targets/bin/NAME, in place once READY was read.

    .pid .proc .exe .name   process, Popen, executable path, program name
    .lines                  stdout lines read so far
    tids()                  sorted thread ids (/proc/PID/task)
    thread_names()/names()  {tid: comm}
    state(tid)/states()     one-letter /proc state (S, R, t, ...)
    tracer()                TracerPid of the process (0: not traced)
    tid_of(name)            the tid of the one thread called `name`
    wait_line(text)         read stdout until a line equals text (LOADED)
    signal(sig), kill()     kill() is SIGKILL + reap; teardown does it too
    """

    def __init__(self, name: str, args: Sequence = (), *, ready: Optional[str] = "READY",
                 timeout: float = READY_TIMEOUT, settle: Optional[bool] = None,
                 cwd: Optional[str] = None, env: Optional[dict] = None):
        self.name = name
        self.exe = os.path.join(TARGETS, name)
        if not os.path.exists(self.exe):
            if name.startswith("go") and not go_available():
                pytest.skip("%s is not built: go is not installed" % name)
            raise AssertionError("no target %s: run `make -C tests/targets`" % self.exe)
        self.args = [str(a) for a in args]
        # Go runs its main goroutine on whatever thread: nothing to settle.
        self.settle = (not name.startswith("go")) if settle is None else settle
        self.expect_exit = False     # set by tests that end the target on purpose
        self.lines: List[str] = []
        self._buf = b""
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([self.exe] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._err,
                                     cwd=cwd, env=env or ENV)
        self.pid = self.proc.pid
        if ready:
            try:
                self.wait_line(ready, timeout)
            except BaseException:
                self.kill()
                raise

    def __enter__(self) -> "Target":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()

    def __repr__(self) -> str:
        return "<Target %s pid %d>" % (" ".join([self.name] + self.args), self.pid)

    def stderr_text(self) -> str:
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def _describe_exit(self) -> str:
        rc = self.proc.returncode
        how = ("killed by %s" % signal.Signals(-rc).name) if rc < 0 else "exit %d" % rc
        return "%s %s (stdout %r, stderr %r)" % (self, how, self.lines, self.stderr_text())

    def wait_line(self, want, timeout: float = READY_TIMEOUT,
                  settle: Optional[bool] = None) -> str:
        """Reads stdout until a line equal to `want` (or, `want` a
        function, a line it accepts), then (settle) waits until the main
        thread sleeps: every target prints its marker and then blocks, and
        READY must mean every thread is in place.  Returns the line."""
        match = want if callable(want) else (lambda text: text.strip() == want)
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                text = line.decode(errors="replace").rstrip("\r")
                self.lines.append(text)
                if match(text):
                    if self.settle if settle is None else settle:
                        self.wait_main_asleep()
                    return text
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no %r on stdout within %.0f s (got %r, stderr %r)"
                                     % (self, want, timeout, self.lines, self.stderr_text()))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait()
                    raise TargetDied("no %r: %s" % (want, self._describe_exit()))
                self._buf += chunk

    def wait_main_asleep(self, timeout: float = SETTLE_TIMEOUT) -> None:
        def asleep():
            if self.proc.poll() is not None:
                raise TargetDied(self._describe_exit())
            return self.state(self.pid) in ("S", "D")
        wait_until(asleep, timeout, 0.002, "%s: main thread asleep after its marker" % self)

    def syscall_nr(self, tid: int) -> Optional[int]:
        """The system call a sleeping thread is in (/proc's syscall
        file), None when it runs or is gone."""
        text = (_read("/proc/%d/task/%d/syscall" % (self.pid, tid)) or "").split(" ", 1)[0]
        return int(text) if text.lstrip("-").isdigit() and int(text) >= 0 else None

    def wait_all_asleep(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """For a Go program with nothing left to run after its marker (its
        main goroutine runs on whatever thread): until every thread sleeps
        and none is still in write(2), the marker's own system call, so the
        goroutine that wrote it has parked where the program says it does."""
        def write_nr(tid):
            return self.syscall_nr(tid) == 1

        def asleep():
            if self.proc.poll() is not None:
                raise TargetDied(self._describe_exit())
            try:
                tids = self.tids()
                return all(self.state(t) in ("S", "D") and not write_nr(t) for t in tids)
            except FileNotFoundError:
                return False        # a thread came or went: look again
        wait_until(asleep, timeout, 0.002, "%s: every thread asleep after its marker" % self)

    def tids(self) -> List[int]:
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % self.pid))

    def thread_names(self) -> Dict[int, str]:
        out = {}
        for t in self.tids():
            comm = _read("/proc/%d/task/%d/comm" % (self.pid, t))
            if comm is not None:
                out[t] = comm.rstrip("\n")
        return out

    names = thread_names

    def tid_of(self, name: str) -> int:
        tids = [t for t, n in self.thread_names().items() if n == name]
        assert len(tids) == 1, "%s: threads named %r: %r" % (self, name, tids)
        return tids[0]

    def state(self, tid: int) -> str:
        stat = _read("/proc/%d/task/%d/stat" % (self.pid, tid))
        if stat is None:
            return "?"
        return stat.rsplit(")", 1)[1].split()[0]

    def states(self) -> Dict[int, str]:
        return {t: self.state(t) for t in self.tids()}

    def tracer(self) -> int:
        m = re.search(r"^TracerPid:\s*(\d+)", _read("/proc/%d/status" % self.pid) or "", re.M)
        return int(m.group(1)) if m else 0

    def recorded_by(self, pid: int) -> bool:
        """Process pid is recording this one: it holds /proc/PID/task open
        (pmprof record lists the threads there at every sample; it is the
        ptracer only while it holds threads stopped for one)."""
        want = "/proc/%d/task" % self.pid
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            return False
        for fd in fds:
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == want:
                    return True
            except OSError:
                pass
        return False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL and reap; idempotent."""
        if self.proc.poll() is None:
            self.expect_exit = True
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._err.close()

    def check_unharmed(self) -> None:
        """At teardown: the target must still run unless a test ended it
        (a crash under pmprof is a bug, not noise)."""
        if self.proc.poll() is not None and not self.expect_exit:
            raise TargetDied("target died during the test: " + self._describe_exit())


# ---- pmprof and gdb ----------------------------------------------------------


def _check(r: subprocess.CompletedProcess, check) -> subprocess.CompletedProcess:
    if check is None or check is False:
        return r
    want = 0 if check is True else int(check)
    if r.returncode != want:
        raise AssertionError("%s: exit %d, wanted %d\n--- stdout\n%s--- stderr\n%s" % (
            " ".join(map(str, r.args)), r.returncode, want, r.stdout, r.stderr))
    return r


def run_pmprof(*args, check=None, timeout: float = RUN_TIMEOUT, env: Optional[dict] = None,
               input: Optional[str] = None, cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    """bin/pmprof ARGS... (text, pinned env).  check: None/False = any
    status, True = 0, an int = that status; a mismatch raises with both
    outputs."""
    r = subprocess.run([PMPROF] + [str(a) for a in args], input=input,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, env=env or ENV, cwd=cwd)
    return _check(r, check)


def _asan_skip(source: bool, debugger: str) -> None:
    """make asan: the module is built with ASan/UBSan, which gdb and lldb
    (not sanitized) cannot load; bin/pmprof preloads the runtime into the
    Python it starts, so the CLI tests run the same C core instead."""
    if source and os.environ.get("PMPROF_ASAN"):
        pytest.skip("make asan: the sanitized module does not load into %s" % debugger)


def gdb_argv(*cmds, pid=None, exe=None, core=None, source: bool = True,
             debug_dir=None, iex: Sequence[str] = ()) -> List[str]:
    argv = [GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off"]
    if debug_dir:
        argv += ["-iex", "set debug-file-directory %s:/usr/lib/debug" % debug_dir]
    for c in iex:
        argv += ["-iex", c]
    argv += ["-ex", "set width 0", "-ex", "set pagination off"]
    if source:
        argv += ["-ex", "source " + GDB_SCRIPT]
    if pid is not None:
        argv += ["-p", str(pid)]
    elif exe is not None:
        argv.append(str(exe))
        if core is not None:
            argv.append(str(core))
    elif core is not None:
        argv += ["-c", str(core)]
    for c in cmds:
        argv += ["-ex", c]
    return argv


def gdb_run(*cmds, pid=None, exe=None, core=None, timeout: float = RUN_TIMEOUT,
            source: bool = True, debug_dir=None, iex: Sequence[str] = (),
            check=None) -> subprocess.CompletedProcess:
    """`gdb -nx -batch` with width 0, no pagination, debuginfod off and
    gdb/pmprof.py sourced (source=False: plain gdb), on a pid, an
    executable, or an executable + core; runs each of cmds with -ex.
    debug_dir adds a debug-file-directory (before /usr/lib/debug)."""
    _asan_skip(source, "gdb")
    if pid is not None:
        reason = ptrace_skip_reason()
        if reason:
            pytest.skip(reason)
    r = subprocess.run(gdb_argv(*cmds, pid=pid, exe=exe, core=core, source=source,
                                debug_dir=debug_dir, iex=iex),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout, env=ENV)
    return _check(r, check)


def lldb_available() -> bool:
    return shutil.which(LLDB) is not None


def lldb_argv(*cmds, pid=None, exe=None, core=None, source: bool = True,
              debug_dir=None, pre: Sequence[str] = ()) -> List[str]:
    """`lldb -b --no-lldbinit` with lldb/pmprof.py imported (source) and
    debug_dir in target.debug-file-search-paths, both before the target
    is created; then the target (-p PID, or EXE [-c CORE]) and cmds."""
    argv = [LLDB, "--no-lldbinit", "-b", "-O", "settings set auto-confirm true"]
    if debug_dir:
        argv += ["-O", "settings set target.debug-file-search-paths %s" % debug_dir]
    for c in pre:
        argv += ["-O", c]
    if source:
        argv += ["-O", "command script import " + LLDB_SCRIPT]
    if pid is not None:
        argv += ["-p", str(pid)]
    elif exe is not None:
        argv.append(str(exe))
        if core is not None:
            argv += ["-c", str(core)]
    elif core is not None:
        argv += ["-c", str(core)]
    for c in cmds:
        argv += ["-o", c]
    return argv


def lldb_run(*cmds, pid=None, exe=None, core=None, timeout: float = RUN_TIMEOUT,
             source: bool = True, debug_dir=None, pre: Sequence[str] = (),
             env: Optional[dict] = None, check=None) -> subprocess.CompletedProcess:
    """`lldb -b` (lldb_argv) on a pid, an executable, or an executable +
    core; runs each of cmds with -o (lldb stops at the first that fails
    and exits 1)."""
    _asan_skip(source, "lldb")
    if not lldb_available():
        pytest.skip("%s is not installed (make deps)" % LLDB)
    if pid is not None:
        reason = ptrace_skip_reason()
        if reason:
            pytest.skip(reason)
    r = subprocess.run(lldb_argv(*cmds, pid=pid, exe=exe, core=core, source=source,
                                 debug_dir=debug_dir, pre=pre),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout, env=env or ENV)
    return _check(r, check)


def core_run(core, exe, *cmds, **kw) -> subprocess.CompletedProcess:
    """gdb_run on a core file (STYLE 8.5.2 spelling)."""
    return gdb_run(*cmds, exe=exe, core=core, **kw)


# ---- cores -------------------------------------------------------------------


def gcore(pid: int, path) -> str:
    """Core of a live process by gdb's `gcore -o PREFIX PID`; the process
    keeps running, untraced.  `path` is the core file to write, or an
    existing directory (the core is then DIR/core.PID).  Returns the path."""
    reason = ptrace_skip_reason()
    if reason:
        pytest.skip(reason)
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "core.%d" % pid)
    prefix = path + ".gcore"
    r = subprocess.run(["gcore", "-o", prefix, str(pid)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=120, env=ENV)
    made = "%s.%d" % (prefix, pid)
    if r.returncode != 0 or not os.path.exists(made):
        raise AssertionError("gcore %d failed (exit %d):\n%s" % (pid, r.returncode, r.stdout))
    os.replace(made, path)
    return path


def core_pattern() -> str:
    return (_read("/proc/sys/kernel/core_pattern") or "core").strip()


def core_glob(pattern: str, pid: int, exe: str, uses_pid: bool = False) -> str:
    """The file name the kernel gives a core for `pattern` (see core(5)), as
    a glob: specifiers we cannot know (time, ...) become '*'."""
    comm = os.path.basename(exe)[:15]
    known = {"p": str(pid), "P": str(pid), "i": str(pid), "I": str(pid),
             "e": comm, "f": os.path.basename(exe), "E": exe.replace("/", "!"),
             "s": str(int(signal.SIGABRT)), "u": str(os.getuid()), "g": str(os.getgid()),
             "h": socket.gethostname(), "%": "%"}
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "%" and i + 1 < len(pattern):
            v = known.get(pattern[i + 1])
            out.append("*" if v is None else re.sub(r"([*?\[])", r"[\1]", v))
            i += 2
            continue
        out.append("[%s]" % c if c in "*?[" else c)
        i += 1
    g = "".join(out)
    if uses_pid and "%p" not in pattern:
        g += ".%d" % pid
    return g


def kernel_core(name: str, *args, tmpdir=None, timeout: float = 60,
                stdout: Optional[list] = None) -> Tuple[str, str]:
    """Runs tests/targets/bin/NAME --gencore ARGS in tmpdir with
    RLIMIT_CORE unlimited, waits for it to die by SIGABRT, returns
    (core path, exe path); stdout, when a list, receives the target's
    stdout lines.  Skips if core_pattern pipes cores to a helper.
    kernel_core(name, tmpdir) (directory first) is accepted too."""
    if tmpdir is None and args and (isinstance(args[0], os.PathLike)
                                    or (isinstance(args[0], str) and os.path.isdir(args[0]))):
        tmpdir, args = args[0], args[1:]
    if tmpdir is None:
        raise TypeError("kernel_core needs tmpdir=")
    tmpdir = os.fspath(tmpdir)
    pattern = core_pattern()
    if pattern.startswith("|"):
        pytest.skip("kernel cores go to a helper (core_pattern %r), not to a file" % pattern)
    exe = os.path.join(TARGETS, name)
    if not os.path.exists(exe):
        if name.startswith("go") and not go_available():
            pytest.skip("%s is not built: go is not installed" % name)
        raise AssertionError("no target %s" % exe)

    def unlimited_core():
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        try:
            resource.setrlimit(resource.RLIMIT_CORE,
                               (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

    env = dict(ENV)
    env.pop("GOTRACEBACK", None)
    p = subprocess.Popen([exe, "--gencore"] + [str(a) for a in args], cwd=tmpdir,
                         preexec_fn=unlimited_core, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("%s --gencore still running after %.0f s" % (name, timeout))
    if stdout is not None:
        stdout.extend(_out.splitlines())
    if p.returncode != -signal.SIGABRT:
        raise AssertionError("%s --gencore: exit %d, wanted SIGABRT\n%s" % (
            name, p.returncode, err))
    uses_pid = (_read("/proc/sys/kernel/core_uses_pid") or "0").strip() == "1"
    g = core_glob(pattern, p.pid, exe, uses_pid)
    g = g if os.path.isabs(g) else os.path.join(tmpdir, g)
    found = [f for f in glob.glob(g) if os.path.isfile(f)]
    if not found:
        pytest.fail("%s --gencore died by SIGABRT but no core matches %s (core_pattern %r, "
                    "RLIMIT_CORE %r)" % (name, g, pattern,
                                          resource.getrlimit(resource.RLIMIT_CORE)))
    return max(found, key=os.path.getmtime), exe


# ---- gdb's own backtrace, the reference --------------------------------------


@dataclass
class BtFrame:
    level: int
    func: str                    # '??', '<signal handler called>' kept as is
    addr: Optional[int] = None   # None when gdb printed none (inline frames,
                                 # or a pc at the start of a line)
    file: Optional[str] = None
    line: Optional[int] = None
    lib: Optional[str] = None    # "from /lib/..." (no debug info)


@dataclass
class BtThread:
    num: str                     # gdb's thread number ("3" or "1.3")
    tid: int
    name: Optional[str] = None   # live only: cores carry no thread names
    frames: List[BtFrame] = field(default_factory=list)

    @property
    def funcs(self) -> List[str]:
        return [f.func for f in self.frames]


_THREAD_RE = re.compile(r"^Thread (\d+(?:\.\d+)?) \((.*)\):\s*$")
_TID_RE = re.compile(r"\bLWP (\d+)\b|\bprocess (\d+)\b")
_NAME_RE = re.compile(r'"((?:[^"\\]|\\.)*)"\)?\s*$')
_FRAME_RE = re.compile(r"^#(\d+)\s+(.*?)\s*$")
_ADDR_RE = re.compile(r"^(0x[0-9a-fA-F]+) in (.*)$")
_AT_RE = re.compile(r"\s+at\s+(\S+):(\d+)$")
_FROM_RE = re.compile(r"\s+from\s+(\S+)$")
_OPCHARS = set("<>=!+-*/%^&|~,")


def split_function(s: str) -> Tuple[str, str]:
    """'ns::W<int>::run()::{lambda()#1}::operator()() const (__closure=0x1)'
    -> (name, '(__closure=0x1)'): the argument list is the first ' ('
    outside <>, (), {}, [] not belonging to an operator name."""
    depth = 0
    i, n = 0, len(s)
    while i < n:
        if (s.startswith("operator", i) and (i == 0 or not (s[i - 1].isalnum() or s[i - 1] == "_"))
                and (i + 8 >= n or not (s[i + 8].isalnum() or s[i + 8] == "_"))):
            i += 8
            if s.startswith("()", i) or s.startswith("[]", i):
                i += 2
            else:
                while i < n and s[i] in _OPCHARS:
                    i += 1
            continue
        c = s[i]
        if c == "(" and depth == 0 and i > 0 and s[i - 1] == " ":
            return s[:i - 1].rstrip(), s[i:]
        if c in "<({[":
            depth += 1
        elif c in ">)}]":
            depth = max(0, depth - 1)
        i += 1
    return s.strip(), ""


def parse_frame(line: str) -> Optional[BtFrame]:
    """One '#N ...' line of gdb's bt, or None if it is not one."""
    m = _FRAME_RE.match(line)
    if not m:
        return None
    level, body = int(m.group(1)), m.group(2)
    addr = None
    a = _ADDR_RE.match(body)
    if a:
        addr, body = int(a.group(1), 16), a.group(2)
    if body.startswith("<") and body.endswith(">"):
        return BtFrame(level, body, addr)
    file = lib = None
    lineno = None
    at = _AT_RE.search(body)
    if at:
        file, lineno = at.group(1), int(at.group(2))
        body = body[:at.start()]
    else:
        fr = _FROM_RE.search(body)
        if fr:
            lib = fr.group(1)
            body = body[:fr.start()]
    name, _args = split_function(body)
    return BtFrame(level, name, addr, file, lineno, lib)


def parse_bt_threads(text: str) -> List[BtThread]:
    """gdb's `thread apply all bt` -> [BtThread] in gdb's order.  Lines
    before the first 'Thread N (...):' header (the attach banner, the
    current frame, 'Core was generated by') and anything that is neither
    a header nor a frame (warnings, 'Backtrace stopped') are skipped."""
    out: List[BtThread] = []
    cur: Optional[BtThread] = None
    for line in text.splitlines():
        m = _THREAD_RE.match(line)
        if m:
            inner = m.group(2)
            t = _TID_RE.search(inner)
            if not t:
                cur = None
                continue
            nm = _NAME_RE.search(inner)
            name = re.sub(r"\\(.)", r"\1", nm.group(1)) if nm else None
            cur = BtThread(m.group(1), int(t.group(1) or t.group(2)), name)
            out.append(cur)
            continue
        if cur is None or not line.startswith("#"):
            continue
        f = parse_frame(line)
        if f is not None:
            cur.frames.append(f)
    return out


def parse_bt(text: str) -> Dict[int, List[str]]:
    """gdb's `thread apply all bt` -> {tid: [function, ...]} innermost first."""
    return {t.tid: t.funcs for t in parse_bt_threads(text)}


def gdb_bt_text(pid=None, exe=None, core=None, debug_dir=None,
                timeout: float = RUN_TIMEOUT) -> str:
    r = gdb_run("thread apply all bt", pid=pid, exe=exe, core=core, source=False,
                debug_dir=debug_dir, timeout=timeout)
    if "Thread " not in r.stdout:
        raise AssertionError("gdb printed no threads (exit %d):\n%s\n%s" % (
            r.returncode, r.stdout, r.stderr))
    return r.stdout


def gdb_bt_threads(pid=None, exe=None, core=None, debug_dir=None) -> List[BtThread]:
    return parse_bt_threads(gdb_bt_text(pid, exe, core, debug_dir))


def gdb_bt(pid=None, exe=None, core=None, debug_dir=None) -> Dict[int, List[str]]:
    """gdb's own `thread apply all bt` (plain gdb, no pmprof) parsed to
    {tid: [function names, innermost first]}."""
    return parse_bt(gdb_bt_text(pid, exe, core, debug_dir))


def subsequence(want: Sequence[str], got: Sequence[str]) -> bool:
    """`want` appears in `got` in order (not necessarily adjacent)."""
    it = iter(got)
    return all(any(w == g for g in it) for w in want)


# ---- go tool pprof, the reference consumer -----------------------------------

_go_home: Optional[str] = None


def go_env() -> dict:
    """ENV with HOME, GOCACHE, GOPATH in a private temporary directory."""
    global _go_home
    if _go_home is None:
        _go_home = tempfile.mkdtemp(prefix="pmprof-test-go-")
    return dict(ENV, HOME=_go_home, GOCACHE=os.path.join(_go_home, "cache"),
                GOPATH=os.path.join(_go_home, "gopath"), PPROF_TMPDIR=_go_home,
                GOFLAGS="", GOTOOLCHAIN="local")


def pprof_tool(*args, timeout: float = 120) -> str:
    """`go tool pprof ARGS...` -> stdout; raises with stderr on failure."""
    if not go_available():
        pytest.skip("go is not installed: cannot run go tool pprof")
    r = subprocess.run(["go", "tool", "pprof"] + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout, env=go_env())
    if r.returncode != 0:
        raise AssertionError("go tool pprof %s: exit %d\n%s" % (
            " ".join(map(str, args)), r.returncode, r.stderr))
    return r.stdout


# Evaluated at import: go_env() must exist by now.
require_go = pytest.mark.skipif(not go_available(),
                                reason="go is not installed: `go tool pprof` and the Go "
                                       "target are unavailable")


def pprof_raw(path) -> str:
    """`go tool pprof -raw PATH` -> stdout (the profile must parse)."""
    return pprof_tool("-raw", os.fspath(path))


# ---- goldens ----------------------------------------------------------------


def check_golden(name: str, text: str, update: bool, golden_dir: str = GOLDEN_DIR) -> None:
    """Compares text with golden_dir/name; with update, rewrites it."""
    path = os.path.join(golden_dir, name)
    if update:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return
    if not os.path.exists(path):
        raise AssertionError("no golden %s: run pytest --update-goldens "
                             "(or make test UPDATE_GOLDENS=1) and review the diff" % path)
    with open(path) as f:
        want = f.read()
    if want != text:
        import difflib
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            "golden/" + name, "actual"))
        raise AssertionError("output differs from golden/%s (pytest --update-goldens "
                             "to accept):\n%s" % (name, diff))
