"""The harness itself: gdb's bt parser on real captures, and the targets
being exactly where they say they are (checked with plain gdb, no pmprof).

If a test here fails, the tests built on the harness cannot be trusted:
fix this first.  Recapture the parser fixtures with
`python3 test_harness.py --capture-bt-fixtures` (see fixtures/gdb-bt/).
"""

import os
import signal
import subprocess
import sys

import pytest

from helpers import (DEBUG_DIR, TARGETS, TESTS, Target, TargetDied, _check, check_golden,
                     core_glob, gcore, gdb_bt, gdb_bt_text, gdb_bt_threads, go_available,
                     kernel_core, parse_bt, parse_bt_threads, parse_frame, require_go,
                     split_function, subsequence, wait_until)

FIXTURES = os.path.join(TESTS, "fixtures", "gdb-bt")

# Application frames of the `threads` target per role, innermost first:
# what gdb shows for every build (libc frames in between vary by build).
THREADS_APP = {
    "blocker": ["block_inner", "block_middle", "block_outer", "blocker_main"],
    "sleeper": ["sleep_inner", "sleep_outer", "sleeper_main"],
    "spinner": ["spin_b", "spin_a", "spinner_main"],
    "reader": ["read_pipe", "reader_main"],
    "sorter": ["cmp_block", "do_sort", "sorter_main"],
    "sighandler": ["in_handler", "on_sigusr1", "<signal handler called>",
                   "sig_wait_loop", "sig_main"],
    "main": ["main_wait", "main"],
}
THREADS_NAMES = ["blocker-0", "blocker-1", "blocker-2", "sleeper-0", "sleeper-1",
                 "spinner-0", "spinner-1", "reader", "sorter", "sighandler"]
APP_FUNCS = {f for chain in THREADS_APP.values() for f in chain} | {"main_abort"}


def app(funcs):
    return [f for f in funcs if f in APP_FUNCS]


def role_of(name):
    for r in THREADS_APP:
        if name.startswith(r):
            return r
    return "main"


def role_by_frames(funcs):
    """Role of a `threads` thread from its frames (cores have no names)."""
    a = app(funcs)
    for r, chain in THREADS_APP.items():
        if a == chain:
            return r
    if a == ["main_abort", "main"]:
        return "main"
    raise AssertionError("no role for %r" % funcs)


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


# ---- parser on real gdb output ------------------------------------------------

LIBC_FUTEX = ["__futex_abstimed_wait_common64", "__futex_abstimed_wait_common",
              "__GI___futex_abstimed_wait_cancelable64"]
LIBC_COND = LIBC_FUTEX + ["__pthread_cond_wait_common", "___pthread_cond_wait"]
LIBC_READ = ["__GI___libc_read", "__GI___libc_read"]
THREAD_BASE = ["start_thread", "clone3"]


def test_parse_live_threads_exact():
    ths = parse_bt_threads(fixture("threads-live.txt"))
    by_name = {t.name: t for t in ths}
    assert sorted(by_name) == sorted(THREADS_NAMES + ["threads"])
    assert [t.num for t in ths] == [str(n) for n in range(11, 0, -1)]
    assert len({t.tid for t in ths}) == 11
    assert by_name["blocker-1"].funcs == LIBC_COND + THREADS_APP["blocker"] + THREAD_BASE
    assert by_name["sleeper-0"].funcs == (["__GI___clock_nanosleep", "__GI___nanosleep"]
                                          + THREADS_APP["sleeper"] + THREAD_BASE)
    assert by_name["spinner-1"].funcs == THREADS_APP["spinner"] + THREAD_BASE
    assert by_name["reader"].funcs == LIBC_READ + THREADS_APP["reader"] + THREAD_BASE
    assert by_name["sorter"].funcs == (LIBC_COND + ["cmp_block"] + ["msort_with_tmp"] * 6
                                       + ["__GI___qsort_r", "do_sort", "sorter_main"]
                                       + THREAD_BASE)
    assert by_name["sighandler"].funcs == (
        LIBC_READ + ["in_handler", "on_sigusr1", "<signal handler called>",
                     "__pthread_kill_implementation", "sig_wait_loop", "sig_main"]
        + THREAD_BASE)
    assert by_name["threads"].funcs == LIBC_FUTEX + ["__pthread_clockjoin_ex", "main_wait",
                                                     "main"]
    # main is the thread whose tid is the pid: gdb's thread 1
    assert ths[-1].name == "threads" and ths[-1].tid == min(t.tid for t in ths)


def test_parse_frame_fields_from_live():
    sig = {t.name: t for t in parse_bt_threads(fixture("threads-live.txt"))}["sighandler"]
    f = sig.frames
    assert [x.level for x in f] == list(range(10))
    assert f[0].addr is None and f[0].file == "../sysdeps/unix/sysv/linux/read.c"
    assert f[0].line == 26
    assert f[2].func == "in_handler" and f[2].addr > 0 and f[2].file == "threads.c"
    assert f[4].func == "<signal handler called>" and f[4].file is None
    assert f[9].func == "clone3" and f[9].file.endswith("clone3.S")


@pytest.mark.parametrize("name", ["threads-gcore.txt", "threads-kcore.txt"])
def test_parse_cores(name):
    ths = parse_bt_threads(fixture(name))
    assert len(ths) == 11
    assert all(t.name is None for t in ths), "cores carry no thread names"
    roles = sorted(role_by_frames(t.funcs) for t in ths)
    assert roles == sorted(["blocker"] * 3 + ["sleeper"] * 2 + ["spinner"] * 2
                           + ["reader", "sorter", "sighandler", "main"])
    main = [t for t in ths if t.num == "1"][0]
    if name == "threads-kcore.txt":
        # the kernel core: main aborted on purpose, the others in place
        assert main.funcs == ["__pthread_kill_implementation", "__pthread_kill_internal",
                              "__GI_raise", "__GI_abort", "main_abort", "main"]
    else:
        assert app(main.funcs) == ["main_wait", "main"]


def test_parse_omitfp():
    by_name = {t.name: t for t in parse_bt_threads(fixture("threads-omitfp-live.txt"))}
    for n, t in by_name.items():
        assert app(t.funcs) == THREADS_APP[role_of(n)], (n, t.funcs)
    # -O2 libc path differs from -O0's: gdb shows pthread_kill's frame here
    assert "__pthread_kill_esrch" in by_name["sighandler"].funcs
    assert "__GI_qsort" in by_name["sorter"].funcs


def test_parse_cxx_names():
    by_name = {t.name: t for t in parse_bt_threads(fixture("cxx-live.txt"))}
    assert sorted(by_name) == ["cxx", "unwinder", "worker", "worker-str"]
    w = by_name["worker"]
    assert w.funcs == LIBC_READ + [
        "inline_leaf", "inline_caller", "ns::Worker<int>::run()::{lambda()#1}::operator()() const",
        "ns::Worker<int>::run", "worker_main"] + THREAD_BASE
    leaf, caller = w.frames[2], w.frames[3]
    assert leaf.addr is not None and caller.addr is None    # inline_leaf is inlined
    assert leaf.file == "cxx.cpp" and caller.file == "cxx.cpp"
    s = "ns::Worker<std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > >"
    assert by_name["worker-str"].funcs == LIBC_COND + [
        "(anonymous namespace)::park_forever", s + "::run()::{lambda()#1}::operator()() const",
        s + "::run", "worker_str_main"] + THREAD_BASE
    assert by_name["unwinder"].funcs == LIBC_COND + [
        "dtor_block", "Guard::~Guard", "thrower", "catcher", "unwinder_main"] + THREAD_BASE


def test_parse_go_headers_and_unknown_frames():
    ths = parse_bt_threads(fixture("gohello-live.txt"))
    assert len(ths) == 4 and {t.name for t in ths} == {"gohello"}
    assert all(t.tid > 0 for t in ths)
    assert all(t.funcs[-1] == "??" for t in ths)
    assert any("runtime.futex" in t.funcs for t in ths)
    assert parse_bt(fixture("gohello-live.txt")) == {t.tid: t.funcs for t in ths}


# Table: a line of gdb's bt -> (func, addr given?, file, line, lib).
FRAME_TABLE = [
    ("#0  0x00007f0000001234 in ?? ()", ("??", True, None, None, None)),
    ("#3  0x00007f0000001234 in clock_nanosleep () from /lib/x86_64-linux-gnu/libc.so.6",
     ("clock_nanosleep", True, None, None, "/lib/x86_64-linux-gnu/libc.so.6")),
    ("#4  <signal handler called>", ("<signal handler called>", False, None, None, None)),
    ("#1  0x0000000000401000 in <function called from gdb>",
     ("<function called from gdb>", True, None, None, None)),
    ("#2  inline_caller () at cxx.cpp:60", ("inline_caller", False, "cxx.cpp", 60, None)),
    ("#5  0x1 in f (s=0x2 \"x at y.c:9 (z\") at a.c:3", ("f", True, "a.c", 3, None)),
    ("#6  0x1 in (anonymous namespace)::park () at cxx.cpp:36",
     ("(anonymous namespace)::park", True, "cxx.cpp", 36, None)),
    ("#7  0x1 in ns::(anonymous namespace)::W<(anonymous namespace)::K>::go (this=0x0) at x.cc:1",
     ("ns::(anonymous namespace)::W<(anonymous namespace)::K>::go", True, "x.cc", 1, None)),
    ("#8  0x1 in std::operator<< <std::char_traits<char> > (__out=..., __s=0x0) at o.h:2",
     ("std::operator<< <std::char_traits<char> >", True, "o.h", 2, None)),
    ("#9  0x1 in S::operator() (this=0x0) at s.cc:4", ("S::operator()", True, "s.cc", 4, None)),
    ("#10 0x1 in S::operator< (this=0x0, o=...) at s.cc:5", ("S::operator<", True, "s.cc", 5, None)),
    ("#11 0x1 in S::operator-> (this=0x0) at s.cc:6", ("S::operator->", True, "s.cc", 6, None)),
    ("#12 0x1 in operator new (sz=8) at new_op.cc:50", ("operator new", True, "new_op.cc", 50, None)),
    ("#13 0x1 in f<void (*)(int)> (p=0x0) at t.cc:7", ("f<void (*)(int)>", True, "t.cc", 7, None)),
    ("#14 0x1 in ns::Worker<int>::run()::{lambda(int (*)(int))#2}::operator()(int (*)(int)) const "
     "(__closure=0x0) at l.cc:8",
     ("ns::Worker<int>::run()::{lambda(int (*)(int))#2}::operator()(int (*)(int)) const", True,
      "l.cc", 8, None)),
    ("#15 0x1 in runtime.newproc (fn=0x0) at <autogenerated>:1",
     ("runtime.newproc", True, "<autogenerated>", 1, None)),
    ("#16 0x1 in runtime[scavenger] ()", ("runtime[scavenger]", True, None, None, None)),
]


@pytest.mark.parametrize("line,want", FRAME_TABLE, ids=[w[0] for _, w in FRAME_TABLE])
def test_parse_frame_table(line, want):
    f = parse_frame(line)
    assert (f.func, f.addr is not None, f.file, f.line, f.lib) == want


def test_parse_ignores_noise_and_headerless_frames():
    text = "\n".join([
        "#0  0x1 in before_any_header () at x.c:1",       # attach/core banner frame
        "Thread 2 (Thread 0x7f (LWP 12) \"a \\\"q\\\"\"):",
        "warning: Section `.reg-xstate/12' in core file too small.",
        "#0  0x1 in f () at x.c:1",
        "Backtrace stopped: previous frame inner to this frame (corrupt stack?)",
        "",
        "Thread 1.3 (process 11):",
        "#0  g () at y.c:2",
        "[Inferior 1 (process 11) detached]",
    ])
    ths = parse_bt_threads(text)
    assert [(t.num, t.tid, t.name, t.funcs) for t in ths] == [
        ("2", 12, 'a "q"', ["f"]), ("1.3", 11, None, ["g"])]


def test_split_function_without_args():
    assert split_function("??") == ("??", "")
    assert split_function("f (a=1)") == ("f", "(a=1)")


def test_subsequence():
    assert subsequence(["a", "c"], ["a", "b", "c"])
    assert not subsequence(["c", "a"], ["a", "b", "c"])


# ---- small helpers ---------------------------------------------------------------


@pytest.mark.parametrize("pattern,uses_pid,want", [
    ("core", False, "core"),
    ("core", True, "core.42"),
    ("core.%p", True, "core.42"),
    ("core.%e.%p.%t", False, "core.threads-strippe.42.*"),
    ("/var/crash/%E-%s", False, "/var/crash/!x!threads-stripped-6"),
    ("c[%%]", False, "c[[]%]"),
])
def test_core_glob(pattern, uses_pid, want):
    assert core_glob(pattern, 42, "/x/threads-stripped", uses_pid) == want


def test_check_semantics():
    r = subprocess.CompletedProcess(["x"], 1, "out", "err")
    assert _check(r, None) is r and _check(r, False) is r and _check(r, 1) is r
    with pytest.raises(AssertionError, match="exit 1, wanted 0"):
        _check(r, True)
    with pytest.raises(AssertionError, match="exit 1, wanted 0"):
        _check(r, 0)


def test_golden_roundtrip(tmp_path):
    with pytest.raises(AssertionError, match="no golden"):
        check_golden("a.txt", "x\n", False, str(tmp_path))
    check_golden("a.txt", "x\n", True, str(tmp_path))
    check_golden("a.txt", "x\n", False, str(tmp_path))
    with pytest.raises(AssertionError, match="-x"):
        check_golden("a.txt", "y\n", False, str(tmp_path))


def test_wait_until():
    assert wait_until(lambda: 7, 0.1) == 7
    with pytest.raises(AssertionError, match="timed out .* nothing"):
        wait_until(lambda: 0, 0.05, what="nothing")


# ---- the targets are where they say they are -------------------------------------


def assert_threads_in_place(t, bt):
    names = t.thread_names()
    assert sorted(names.values()) == sorted(THREADS_NAMES + [t.name[:15]])
    assert names[t.pid] == t.name[:15]
    assert sorted(bt) == t.tids()
    for tid, name in names.items():
        assert app(bt[tid]) == THREADS_APP[role_of(name)], (name, bt[tid])


@pytest.mark.parametrize("name", ["threads", "threads-nopie", "threads-omitfp",
                                  "threads-static"])
def test_threads_target(target, name):
    t = target(name)
    # READY means: every blocking thread asleep, spinners running
    for tid, name_ in t.thread_names().items():
        want = "R" if name_.startswith("spinner") else "S"
        assert t.state(tid) == want, (name_, t.states())
    assert_threads_in_place(t, gdb_bt(pid=t.pid))
    assert t.alive() and t.tracer() == 0


def test_threads_stripped_needs_its_debug_file(target):
    t = target("threads-stripped")
    out = subprocess.run(["file", "-L", t.exe], stdout=subprocess.PIPE, text=True).stdout
    assert "stripped" in out and "not stripped" not in out
    bare = gdb_bt(pid=t.pid)
    assert not any("block_inner" in fs for fs in bare.values())
    assert_threads_in_place(t, gdb_bt(pid=t.pid, debug_dir=DEBUG_DIR))


def test_cxx_target(target):
    t = target("cxx")
    names = t.thread_names()
    assert sorted(names.values()) == ["cxx", "unwinder", "worker", "worker-str"]
    ths = {th.name: th for th in gdb_bt_threads(pid=t.pid)}
    assert subsequence(["inline_leaf", "inline_caller",
                        "ns::Worker<int>::run()::{lambda()#1}::operator()() const",
                        "ns::Worker<int>::run", "worker_main"], ths["worker"].funcs)
    leaf = ths["worker"].funcs.index("inline_leaf")
    assert ths["worker"].frames[leaf + 1].addr is None       # inline_caller: inlined into
    assert subsequence(["(anonymous namespace)::park_forever", "worker_str_main"],
                       ths["worker-str"].funcs)
    assert subsequence(["dtor_block", "Guard::~Guard", "thrower", "catcher", "unwinder_main"],
                       ths["unwinder"].funcs)
    assert subsequence(["main_wait", "main"], ths["cxx"].funcs)


def test_dlopen_target(target):
    t = target("dlopen")
    assert sorted(t.thread_names().values()) == ["dlopen", "host", "plugin"]
    ths = {th.name: th for th in gdb_bt_threads(pid=t.pid)}
    plug = ths["plugin"]
    assert subsequence(["plugin_block", "plugin_entry", "plugin_thread_main"], plug.funcs)
    assert plug.frames[plug.funcs.index("plugin_entry")].file == "plugin.c"
    assert subsequence(["host_block", "host_main"], ths["host"].funcs)
    with open("/proc/%d/maps" % t.pid) as f:
        assert os.path.join(TARGETS, "libplugin.so") in f.read()


def test_dlopen_late_target(target):
    t = target("dlopen", "--late")
    with open("/proc/%d/maps" % t.pid) as f:
        assert "libplugin.so" not in f.read()
    ths = {th.name: th for th in gdb_bt_threads(pid=t.pid)}
    assert sorted(ths) == ["dlopen", "host"]
    assert subsequence(["wait_for_sigusr2", "main"], ths["dlopen"].funcs)
    t.signal(signal.SIGUSR2)
    t.wait_line("LOADED")
    ths = {th.name: th for th in gdb_bt_threads(pid=t.pid)}
    assert sorted(ths) == ["dlopen", "host", "plugin"]
    assert subsequence(["plugin_block", "plugin_entry"], ths["plugin"].funcs)
    assert subsequence(["main_wait", "main"], ths["dlopen"].funcs)


@pytest.mark.parametrize("mode", ["block", "spin"])
def test_deep_target(target, mode):
    t = target("deep", 3, mode, 7)
    names = t.thread_names()
    assert sorted(names.values()) == ["deep", "deep-0", "deep-1", "deep-2"]
    bt = gdb_bt(pid=t.pid)
    leaf = "deep_block" if mode == "block" else "deep_spin"
    rec = ["rec_b", "rec_a", "rec_c", "rec_b", "rec_a", "rec_c", "rec_b", "rec_a"]
    for tid, name in names.items():
        if name == "deep":
            assert subsequence(["main_wait", "main"], bt[tid])
            continue
        fs = [f for f in bt[tid] if f.startswith(("rec_", "bottom", "deep_"))]
        assert fs == [leaf, "bottom"] + rec + ["deep_main"], fs
        assert t.state(tid) == ("S" if mode == "block" else "R")


def test_deep_default_depth_for_benchmarks(target):
    t = target("deep", 2)
    bt = gdb_bt(pid=t.pid)
    for tid, name in t.thread_names().items():
        if name.startswith("deep-"):
            assert len(bt[tid]) == 35, bt[tid]
            assert sum(f.startswith("rec_") for f in bt[tid]) == 25


@require_go
def test_gohello_target(target):
    t = target("gohello")
    assert set(t.thread_names().values()) == {"gohello"}
    assert any("runtime.futex" in fs for fs in gdb_bt(pid=t.pid).values())


def test_bad_arguments_fail_loudly(target):
    with pytest.raises(TargetDied, match="usage: deep"):
        target("deep", "many")


def test_timeout_option_ends_target(target):
    t = target("threads", "--timeout", "1")
    t.expect_exit = True
    assert t.proc.wait(timeout=10) == -signal.SIGALRM


def test_teardown_reports_a_target_that_died():
    t = Target("threads")
    try:
        os.kill(t.pid, signal.SIGTERM)
        t.proc.wait(timeout=10)
        with pytest.raises(TargetDied, match="SIGTERM"):
            t.check_unharmed()
    finally:
        t.kill()


# ---- cores -----------------------------------------------------------------------


def test_gcore_leaves_target_running(target, tmp_path):
    t = target("threads")
    path = gcore(t.pid, tmp_path / "threads.core")
    assert path == str(tmp_path / "threads.core") and os.path.getsize(path) > 0
    assert t.alive() and t.tracer() == 0
    bt = gdb_bt(exe=t.exe, core=path)
    assert sorted(bt) == t.tids()
    assert sorted(role_by_frames(fs) for fs in bt.values()).count("blocker") == 3
    # a directory works too (core.PID inside)
    assert gcore(t.pid, tmp_path) == str(tmp_path / ("core.%d" % t.pid))


@pytest.mark.parametrize("name,threads", [("threads", 11), ("cxx", 4), ("dlopen", 3)])
def test_kernel_core(tmp_path, name, threads):
    core, exe = kernel_core(name, tmpdir=tmp_path)
    assert os.path.isfile(core)
    assert exe == os.path.join(TARGETS, name)
    with open(core, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    ths = gdb_bt_threads(exe=exe, core=core)
    assert len(ths) == threads
    aborting = [th for th in ths if "main_abort" in th.funcs]
    assert len(aborting) == 1 and subsequence(["__GI_abort", "main_abort", "main"],
                                              aborting[0].funcs)


def test_kernel_core_directory_first_form(tmp_path):
    core, exe = kernel_core("deep", tmp_path, 2)
    assert len(gdb_bt(exe=exe, core=core)) == 3


@require_go
def test_kernel_core_go(tmp_path):
    core, exe = kernel_core("gohello", tmpdir=tmp_path)
    assert os.path.getsize(core) > 0


# ---- recapture -------------------------------------------------------------------


def capture_bt_fixtures():
    import tempfile
    os.makedirs(FIXTURES, exist_ok=True)

    def save(name, text):
        with open(os.path.join(FIXTURES, name), "w") as f:
            f.write(text)
        print("wrote", os.path.join(FIXTURES, name))

    with Target("threads") as t:
        save("threads-live.txt", gdb_bt_text(pid=t.pid))
        core = gcore(t.pid, tempfile.mkdtemp())
        save("threads-gcore.txt", gdb_bt_text(exe=t.exe, core=core))
    core, exe = kernel_core("threads", tmpdir=tempfile.mkdtemp())
    save("threads-kcore.txt", gdb_bt_text(exe=exe, core=core))
    with Target("threads-omitfp") as t:
        save("threads-omitfp-live.txt", gdb_bt_text(pid=t.pid))
    with Target("cxx") as t:
        save("cxx-live.txt", gdb_bt_text(pid=t.pid))
    if go_available():
        with Target("gohello") as t:
            save("gohello-live.txt", gdb_bt_text(pid=t.pid))


if __name__ == "__main__":
    if sys.argv[1:] == ["--capture-bt-fixtures"]:
        subprocess.run(["make", "-s", "-C", os.path.join(TESTS, "targets")], check=True)
        capture_bt_fixtures()
    else:
        sys.exit("usage: python3 test_harness.py --capture-bt-fixtures")
