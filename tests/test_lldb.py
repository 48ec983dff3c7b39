"""pmprof inside lldb (lldb-16 -b): every command, live and on cores.

The reference is lldb itself, in the same session and at the same stop:
a thread's frames as lldb's `bt all` lists them, read through the SB API
(SBFrame.GetFunctionName, the name lldb's unwinder and symbolizer give
each frame: `bt`'s text names an inlined innermost frame after its
caller, the SB name is the inlined function's, as gdb and pmprof say).
Other commands are compared with the program's own report or with the
standalone CLI on the same target.
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from helpers import (DEBUG_DIR, ENV, TARGETS, Target, gcore, lldb_argv,
                     lldb_available, lldb_run, run_pmprof, wait_until)

pytestmark = pytest.mark.skipif(not lldb_available(), reason="lldb-16 is not installed")

# lldb's own frames of every thread, as JSON after a marker.
LLDB_BT = ("script import json; print('LLDB-BT ' + json.dumps("
           "{t.GetThreadID(): [f.GetFunctionName() or '' for f in t if not f.IsArtificial()] for t in lldb.process}))")
# lldb's own selection: thread id and frame index.
LLDB_SEL = ("script print('LLDB-SEL %d %d' % (lldb.process.GetSelectedThread().GetThreadID(), "
            "lldb.process.GetSelectedThread().GetSelectedFrame().GetFrameID()))")


def json_docs(out):
    """Every JSON document in lldb's output (each starts a line with '{')."""
    dec = json.JSONDecoder()
    docs = []
    for m in re.finditer(r"^\{", out, re.M):
        try:
            doc, _ = dec.raw_decode(out[m.start():])
        except ValueError:
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def json_doc(out, schema, n=0):
    """The n-th JSON document of schema `schema` in lldb's output."""
    return [d for d in json_docs(out) if d.get("schema") == schema][n]


def lldb_bt(out):
    line = [x for x in out.splitlines() if x.startswith("LLDB-BT ")][-1]
    return {int(k): v for k, v in json.loads(line[len("LLDB-BT "):]).items()}


def _llvm_lambda(m):
    n = int(m.group(2))
    return "'lambda%s'(%s)" % ("" if n == 1 else n - 2, m.group(1))


def lldb_spelling(name):
    """pmprof (and gdb) spell names as GNU's demangler does, lldb as LLVM's:
    {lambda()#1} is 'lambda'(), {lambda()#2} 'lambda0'(); the signal
    trampoline is <signal handler called> to gdb and pmprof, __restore_rt
    to lldb; GNU writes "> >" where LLVM writes ">>"."""
    if name == "<signal handler called>":
        return "__restore_rt"
    while "> >" in name:
        name = name.replace("> >", ">>")
    return re.sub(r"\{lambda\(([^)]*)\)#(\d+)\}", _llvm_lambda, name)


def pm_funcs(group):
    """pmprof's frames as lldb 16 names them.  Frames rebuilt from DWARF
    tail-call sites are left out: lldb 16's bt shows none of those that
    gdb does (e.g. __GI___futex_abstimed_wait_cancelable64 in a join or
    condvar wait); test_tailcall.py compares them with gdb's."""
    return [lldb_spelling(f["function"]) for f in group["frames"]
            if not f.get("tail_call")]


def compare_with_lldb(out, tids=None):
    doc = json_doc(out, "pmprof.stacks/1")
    bt = lldb_bt(out)
    by_tid = {g["threads"][0]["tid"]: g for g in doc["stacks"]}
    assert sorted(by_tid) == sorted(bt)
    if tids is not None:
        assert sorted(bt) == sorted(tids)
    for tid, g in by_tid.items():
        assert not g["flags"], (tid, g)
        assert pm_funcs(g) == bt[tid], (tid, pm_funcs(g), bt[tid])
    return doc, by_tid


def no_traceback(r):
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr


STACKS = "pmprof stacks --all --format json"


@pytest.mark.parametrize("name", ["threads", "cxx", "threads-stripped"])
def test_stacks_equal_lldb_bt_live_and_core(name, tmp_path):
    dd = DEBUG_DIR if name == "threads-stripped" else None
    with Target(name) as t:
        r = lldb_run("thread select 3", "frame select 2", LLDB_SEL, STACKS, LLDB_BT,
                     "pmprof stacks", "pmprof threads", "pmprof locks", LLDB_SEL, pid=t.pid,
                     debug_dir=dd, check=0)
        no_traceback(r)
        doc, by_tid = compare_with_lldb(r.stdout, t.tids())
        assert doc["source"] == "live"
        if name == "threads-stripped":
            assert "main_wait" in pm_funcs(by_tid[t.pid])   # found by build-id
        if name == "cxx":
            fns = [f for g in by_tid.values() for f in pm_funcs(g)]
            assert any(f.startswith("ns::Worker<int>::run") for f in fns), fns
            assert any(f["inlined"] for g in by_tid.values() for f in g["frames"])
        # the selection lldb had is the selection it keeps
        sels = re.findall(r"^LLDB-SEL (\d+) (\d+)$", r.stdout, re.M)
        assert len(sels) == 2 and sels[0] == sels[1] and sels[0][1] == "2", sels
        assert "pid %d: %d threads" % (t.pid, len(t.tids())) in r.stdout
        core = gcore(t.pid, tmp_path)
        assert t.alive() and t.tracer() == 0     # lldb detached: it runs on
    snap = tmp_path / "core.pb.gz"
    r = lldb_run(STACKS, LLDB_BT, "pmprof stacks", "pmprof threads",
                 "pmprof snapshot -o %s" % snap, exe=t.exe, core=core, debug_dir=dd, check=0)
    no_traceback(r)
    cdoc, cby = compare_with_lldb(r.stdout)
    # the pprof file as its consumer reads it: a sample per thread
    from test_record import parse_raw
    from helpers import pprof_raw
    _types, samples, _locs = parse_raw(pprof_raw(snap))
    assert sum(x[0][0] for x in samples) == len(cby)
    assert len([x for x in r.stdout.splitlines() if re.match(r"^\s*%d\s" % t.pid, x)]) >= 1
    assert cdoc["source"] == "core"
    assert "core '%s'" % core in r.stdout
    assert {x: pm_funcs(g) for x, g in cby.items()} == {x: pm_funcs(g) for x, g in by_tid.items()}


def test_debug_file_search_paths_setting_is_honoured(target):
    t = target("threads-stripped")
    r = lldb_run(STACKS, pid=t.pid, check=0)
    doc = json_doc(r.stdout, "pmprof.stacks/1")
    fns = [f["function"] for g in doc["stacks"] for f in g["frames"]]
    assert "main_wait" not in fns          # no debug file without the setting


GO_TOPS = {"runtime.mstart", "runtime.mcall", "runtime.goexit", "runtime.rt0_go",
           "runtime.systemstack"}
GO_CMDS = [STACKS, LLDB_BT, "pmprof goroutines --format json", "pmprof goroutines",
           "pmprof go memstats --format json", "pmprof go sched --format json"]


def go_stacks_like_lldb(out):
    """Every thread of the Go program as lldb unwinds it, down to where
    Go's own traceback ends (lldb may go on into runtime.clone / the
    thread start)."""
    doc = json_doc(out, "pmprof.stacks/1")
    bt = lldb_bt(out)
    by_tid = {g["threads"][0]["tid"]: g for g in doc["stacks"]}
    assert sorted(by_tid) == sorted(bt)
    for tid, g in by_tid.items():
        funcs = pm_funcs(g)
        assert not g["flags"], (tid, g["flags"], funcs)
        assert funcs[-1] in GO_TOPS, (tid, funcs)
        # lldb names a Go assembly function by its ELF symbol, with the
        # ABI suffix (runtime.futex.abi0); Go, gdb and pmprof by its name.
        # lldb 16 shows no inlined call in Go code (Go's DWARF has them;
        # gdb and Go's traceback show them): pmprof's frames but those.
        # Go (and pmprof) hide the wrapper a `go f(args)` statement
        # compiles to (a closure main.main.funcN right above goexit); lldb
        # shows it.
        lb = [re.sub(r"\.abi0$", "", f) for f in bt[tid]]
        for k in range(1, len(lb)):
            if lb[k] == "runtime.goexit" and re.search(r"\.func\d+$", lb[k - 1]) \
                    and lb[k - 1] not in funcs:
                del lb[k - 1]
                break
        outer = [lldb_spelling(f["function"]) for f in g["frames"] if not f["inlined"]]
        assert lb[:len(outer)] == outer, (tid, bt[tid], funcs)
    return {x: pm_funcs(g) for x, g in by_tid.items()}


def go_text(out):
    """`pmprof goroutines` text inside lldb's output (lldb's own lines
    start with '(lldb)' or are not Go's format)."""
    i = out.index("(lldb) pmprof goroutines\n") + len("(lldb) pmprof goroutines\n")
    j = out.index("(lldb) ", i)
    return out[i:j]


@pytest.fixture(scope="module")
def go_live_and_core(tmp_path_factory):
    """goprog (Go 1.19, DWARF, quiet): pmprof's Go commands and stacks inside
    lldb, live, then on a gcore core; (GoProg, live out, core out, times)."""
    from gotargets import GoProg
    if not os.path.exists(os.path.join(TARGETS, "goprog")):
        pytest.skip("go is not installed")
    p = GoProg("goprog", spin=False)
    core = None
    try:
        t0 = time.monotonic()
        live = lldb_run(*GO_CMDS, pid=p.pid, check=0)
        t1 = time.monotonic()
        core = gcore(p.pid, tmp_path_factory.mktemp("golldb"))
        t2 = time.monotonic()
        assert p.target.tracer() == 0
        cored = lldb_run(*GO_CMDS, exe=p.exe, core=core, check=0)
        yield p, live, cored, (t0, t1, t2)
        p.check_unharmed()
    finally:
        p.kill()
        if core:
            os.unlink(core)


def test_go_stacks_equal_lldb_bt_live_and_core(go_live_and_core):
    p, live, cored, _ = go_live_and_core
    no_traceback(live)
    no_traceback(cored)
    # each against lldb at its own stop (idle Go threads move between
    # lldb's detach and gcore's attach: live and core differ)
    go_stacks_like_lldb(live.stdout)
    go_stacks_like_lldb(cored.stdout)


def test_goroutines_and_memstats_equal_the_programs_own(go_live_and_core):
    from gotargets import parse_debug2
    from test_go import (CORE_SLACK_NS, SLACK_NS, check_json_goroutines, check_memstats,
                         compare_with_dump)
    p, live, cored, (t0, t1, t2) = go_live_and_core
    check_json_goroutines(p, json_doc(live.stdout, "pmprof.goroutines-1"),
                          int((t0 - p.t_ready) * 1e9) - SLACK_NS,
                          int((t1 - p.t_start) * 1e9) + SLACK_NS)
    compare_with_dump(p, parse_debug2(go_text(live.stdout)), "lldb live text")
    check_memstats(p, json_doc(live.stdout, "pmprof.go-memstats-1"))
    sched = json_doc(live.stdout, "pmprof.go-sched-1")
    assert sched["gomaxprocs"] == p.extra["GOMAXPROCS"]
    assert sched["idle_ps"] == sched["gomaxprocs"]        # a quiet goprog
    check_json_goroutines(p, json_doc(cored.stdout, "pmprof.goroutines-1"),
                          int((t1 - p.t_ready) * 1e9) - CORE_SLACK_NS,
                          int((t2 - p.t_start) * 1e9) + CORE_SLACK_NS, live=False)
    compare_with_dump(p, parse_debug2(go_text(cored.stdout)), "lldb core text")
    check_memstats(p, json_doc(cored.stdout, "pmprof.go-memstats-1"))


# ---- memory through lldb: the same answers byte for byte ------------------

SET_READS = "script import os; os.environ['PMPROF_LLDB_READS'] = '%s'"
# which path each open session of this lldb took (the core's own flag)
SHOW_PATHS = ("script import sys; print('PATHS', sorted((k[3], e[0].via_debugger) for k, e in "
              "sys.modules['pmprof.frontends.lldb']._sessions.items()))")


@pytest.mark.parametrize("name,cmds", [
    ("threads", ["pmprof stacks", "pmprof stacks --all --format json", "pmprof threads"]),
    ("cxx", ["pmprof stacks --all"]),
    ("mallocs", ["pmprof heap --format json"]),
    ("locks", ["pmprof locks --format json"]),
])
def test_reads_through_lldb_equal_direct_reads(name, cmds, target):
    """In one lldb session at one stop: each command with memory read from
    /proc/PID/mem, then with PMPROF_LLDB_READS=lldb (SBProcess.ReadMemory
    in cached 32 KiB blocks): byte for byte the same output."""
    args = {"locks": ["abba"]}.get(name, [])
    t = target(name, *args)
    seq = []
    for mode in ("direct", "lldb"):
        seq.append(SET_READS % mode)
        for c in cmds:
            seq += ["script print('CMD-START')", c]
    r = lldb_run(*seq, SHOW_PATHS, pid=t.pid, check=0)
    no_traceback(r)
    # the second pass really read through lldb: a second session, flagged
    assert "PATHS [(False, False), (True, True)]" in r.stdout, r.stdout[-300:]
    parts = [p[:p.index("(lldb) script")] if "(lldb) script" in p else p
             for p in r.stdout.split("CMD-START\n")[1:]]
    # times are the only figures that may differ
    parts = [re.sub(r"target stopped [0-9.]+ ms|\"(stopped_ns|elapsed_ms)\": [0-9.]+", "", p)
             for p in parts]
    assert len(parts) == 2 * len(cmds)
    assert parts[:len(cmds)] == parts[len(cmds):]
    assert all(len(p) > 100 for p in parts)


# ---- locks and heap: the program's own truth, live and on a core ----------

# the scenarios whose decoding differs most (fs_base for join, the syscall
# for waitv and sem, C++ shared_mutex); test_locks.py runs them all standalone
LOCKS_SCENARIOS = ["abba", "pileup", "rw_readers", "robust", "join", "abandoned", "stdio",
                   "waitv", "cxx-shared"]


@pytest.mark.parametrize("scenario", LOCKS_SCENARIOS)
def test_locks_live_and_core(target, scenario, tmp_path):
    from test_locks import check_doc, start
    t, gt = start(target, scenario)
    r = lldb_run("pmprof locks --format json", "pmprof hang", LLDB_SEL, pid=t.pid, check=0)
    no_traceback(r)
    check_doc(json_doc(r.stdout, "pmprof.locks/1"), scenario, gt)
    assert "LLDB-SEL" in r.stdout          # lldb went on after pmprof
    core = gcore(t.pid, tmp_path)
    r = lldb_run("pmprof locks --format json", exe=t.exe, core=core, check=0)
    no_traceback(r)
    doc = json_doc(r.stdout, "pmprof.locks/1")
    check_doc(doc, scenario, gt)
    assert doc["target"]["source"] == "core"


def test_heap_every_view_live_and_core(target, tmp_path):
    from test_heap import check, oracle_malloc_info, oracle_mallinfo, oracle_stats
    t = target("mallocs")
    mi = oracle_mallinfo(t.lines)
    views = ["pmprof heap --format json", "pmprof heap", "pmprof heap bins",
             "pmprof heap arenas", "pmprof heap check", "pmprof heap sizes --top 3",
             "pmprof heap tcache %d" % t.pid, "pmprof heap chunk 0x10",
             "script print('XML-START')", "pmprof heap malloc-info", "script print('XML-END')"]
    want_xml = oracle_malloc_info(t.lines)
    core = gcore(t.pid, tmp_path)
    for kw in (dict(pid=t.pid), dict(exe=t.exe, core=core)):
        r = lldb_run(*views, check=0, **kw)
        no_traceback(r)
        check(json_doc(r.stdout, "pmprof.heap/1"), mi,
              oracle_stats(t.stderr_text()) if "pid" in kw else None)
        out = r.stdout
        assert "OK: every list is consistent and every arena adds up" in out, out
        assert re.search(r"^\s+1048592\s+67\s+70255664\s", out, re.M), out
        assert "thread %d: tcache 0x" % t.pid in out, out
        assert "is not inside any arena's heap" in out
        xml = out[out.index("XML-START\n") + 10:out.index("(lldb) script print('XML-END')")]
        assert [x for x in xml.splitlines() if not x.startswith("(lldb)")] == want_xml


# ---- record: lldb lets go, the core records, lldb takes the process back ---

def record_cmd(tmp_path, seconds):
    from test_record import FMT_FILES
    return "pmprof record --json -q -F 200 -d %s %s" % (
        seconds, " ".join("-o %s" % (tmp_path / f) for f in FMT_FILES))


LLDB_STATE = "script print('LLDB-STATE %d' % lldb.process.GetState())"


def test_record_in_lldb(target, tmp_path):
    from test_record import check_all
    t = target("workload")
    r = lldb_run("thread select 2", "frame select 1", LLDB_SEL, record_cmd(tmp_path, 1),
                 LLDB_SEL, LLDB_STATE, "pmprof threads", pid=t.pid, check=0)
    no_traceback(r)
    summary = json_doc(r.stdout, "pmprof.record/1")
    assert summary["stats"]["samples"] > 50 and not summary["interrupted"]
    check_all(tmp_path, summary)
    # lldb has the process again: stopped, thread 2 frame 1 still selected
    sels = re.findall(r"^LLDB-SEL (\d+) (\d+)$", r.stdout, re.M)
    assert len(sels) == 2 and sels[0] == sels[1] and sels[0][1] == "1", sels
    assert "LLDB-STATE %d" % 5 in r.stdout       # eStateStopped
    assert "pmprof record: lldb lets go of process %d" % t.pid in r.stderr
    assert "lldb attached to process %d again (stopped)" % t.pid in r.stderr
    after = r.stdout[r.stdout.index("(lldb) pmprof threads"):]
    # lldb still works: the cruncher, where it is (in burn_seventy or
    # burn_thirty, or timing them: thread_ns, workload.c)
    assert re.search(r"^\s*\d+\s+cruncher\s.*\bat workload\.c:\d+$", after, re.M), after
    assert t.tracer() == 0 and t.alive()


def _lldb_recording(t, tmp_path, *after):
    """lldb -p running `pmprof record` for 20 s; returns once the core has
    the process (lldb said it let go)."""
    p = subprocess.Popen(lldb_argv(record_cmd(tmp_path, 20), *after, pid=t.pid),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ENV)
    err = b""
    deadline = time.monotonic() + 30
    while b"lets go of process" not in err:
        assert time.monotonic() < deadline and p.poll() is None, err
        err += os.read(p.stderr.fileno(), 4096)
    # the core runs inside lldb: lldb itself, not lldb-server, records it now
    wait_until(lambda: t.recorded_by(p.pid), 5, 0.01, "the core records the target")
    return p, err


def test_record_ctrl_c_writes_the_files(target, tmp_path):
    from test_record import check_all
    t = target("workload")
    p, err = _lldb_recording(t, tmp_path, LLDB_STATE, "pmprof threads")
    time.sleep(0.5)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)          # what Ctrl-C sends lldb
    out, err2 = p.communicate(timeout=30)
    out = out.decode()
    assert time.monotonic() - t0 < 5 and p.returncode == 0, (out, err + err2)
    summary = json_doc(out, "pmprof.record/1")
    assert summary["interrupted"] is True
    check_all(tmp_path, summary)
    assert "LLDB-STATE 5" in out and "cruncher" in out.split("LLDB-STATE 5")[1]
    assert t.tracer() == 0 and t.alive()


def test_lldb_killed_while_recording_target_runs_on(target, tmp_path):
    from test_record import _assert_running_untraced
    t = target("workload")
    p, _ = _lldb_recording(t, tmp_path)
    time.sleep(0.3)
    p.kill()
    p.wait(timeout=10)
    _assert_running_untraced(t)


# ---- bad input: one line each, lldb survives -----------------------------

def wait_state(state, timeout=10.0):
    """A script line that polls lldb's process state until it is `state`
    (an lldb.eState* name), for at most `timeout` seconds."""
    n = int(timeout / 0.005)
    return ("script import time; [time.sleep(0.005) for _ in range(%d) "
            "if lldb.process.GetState() != %s]" % (n, state))


def go_on(cmd):
    """cmd run by lldb's interpreter from a script: its error is printed
    and lldb -b goes on to the next command (as an interactive lldb does)."""
    return "script lldb.debugger.HandleCommand(%r)" % cmd


def pmprof_errors(stderr):
    return [x for x in stderr.splitlines() if "pmprof" in x]


def test_errors_are_one_line_and_lldb_survives(target, tmp_path):
    """Each bad input: one `error: pmprof ...` line, no traceback, and
    lldb runs the next command; one lldb session goes through them all."""
    t = target("threads")
    core = gcore(t.pid, tmp_path / "core")
    cut = str(tmp_path / "cut")
    with open(core, "rb") as f, open(cut, "wb") as g:
        g.write(f.read(os.path.getsize(core) // 2))
    bad = tmp_path / "notacore"
    bad.write_bytes(open(t.exe, "rb").read()[:4096])
    steps = [
        (None, "pmprof stacks", "error: pmprof stacks: no target: attach to a process"),
        (None, "pmprof stacks --bogus", "error: pmprof stacks: unrecognized arguments: --bogus"),
        (None, "pmprof nonsense", "error: pmprof: unknown subcommand 'nonsense'"),
        (None, "pmprof heap chunk", "error: pmprof heap: "),
        ("target create %s" % t.exe, "pmprof locks",
         "error: pmprof locks: no process: attach to one"),
        (None, "pmprof record -d 1", "error: pmprof record: no process"),
        ("target create %s --core %s" % (t.exe, core), "pmprof record -d 1",
         "error: pmprof record: record needs a live process, not a core file"),
        ("target create %s --core %s" % (t.exe, cut), "pmprof stacks",
         "error: pmprof stacks: lldb could not read this core file"),
        # not a core: lldb refuses it (its own error), pmprof finds no process
        ("target create %s --core %s" % (t.exe, bad), "pmprof stacks",
         "error: pmprof stacks: no process"),
    ]
    seq = []
    for pre, cmd, _ in steps:
        if pre:
            seq.append(go_on(pre))
        seq += [go_on(cmd), "script print('LLDB-ALIVE')"]
    r = lldb_run(*seq, check=0)
    no_traceback(r)
    errs = [x for x in r.stderr.splitlines() if x.startswith("error: pmprof")]
    assert len(errs) == len(steps), r.stderr
    for e, (_, cmd, want) in zip(errs, steps):
        assert e.startswith(want), (cmd, e)
    assert r.stdout.count("LLDB-ALIVE\n") == len(steps), r.stdout
    assert "Unable to find process plug-in for core file" in r.stderr
    assert t.alive() and t.tracer() == 0


def test_running_process_is_refused_and_help(target):
    t = target("threads")
    # lldb's async Continue() returns before the process runs: wait for
    # the running state before asking, and for the stop before lldb quits.
    r = lldb_run("help pmprof", "pmprof stacks -h",
                 "script lldb.debugger.SetAsync(True); lldb.process.Continue()",
                 wait_state("lldb.eStateRunning"),
                 go_on("pmprof stacks"),
                 "script lldb.process.Stop()",
                 wait_state("lldb.eStateStopped"),
                 "script lldb.debugger.SetAsync(False)",
                 LLDB_STATE, pid=t.pid)
    no_traceback(r)
    for sub in ("stacks", "threads", "snapshot", "locks", "hang", "record", "heap",
                "goroutines", "go "):
        assert re.search(r"^  %s" % sub, r.stdout, re.M), sub
    assert "usage: pmprof stacks" in r.stdout
    assert pmprof_errors(r.stderr) == ["error: pmprof stacks: the process is running: "
                                       "interrupt it first (process interrupt, or Ctrl-C)"]
    assert "LLDB-STATE 5" in r.stdout
    assert t.alive()


def test_lldbinit_line_and_no_pythonpath(tmp_path):
    """The README's ~/.lldbinit line is all it takes: no PYTHONPATH, any
    working directory."""
    from helpers import LLDB, LLDB_SCRIPT
    (tmp_path / ".lldbinit").write_text("command script import %s\n" % LLDB_SCRIPT)
    env = dict(ENV, HOME=str(tmp_path))
    env.pop("PYTHONPATH", None)
    r = subprocess.run([LLDB, "-b", "-o", "pmprof stacks -h", "-o", "help pmprof"],
                       cwd=str(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60, env=env)
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert "usage: pmprof stacks" in r.stdout and "  goroutines  -- " in r.stdout


def test_same_text_and_json_as_gdb_on_a_core(target, tmp_path):
    """On one core, where gdb and lldb see the same thing: each command's
    output in lldb is byte for byte its output in gdb."""
    from helpers import gdb_run
    t = target("mallocs")
    core = gcore(t.pid, tmp_path)
    cmds = ["pmprof stacks", "pmprof stacks --all --format json", "pmprof threads",
            "pmprof heap", "pmprof heap bins", "pmprof locks --format json"]
    mark = "MARK-%d"
    lseq, gseq = [], []
    for i, c in enumerate(cmds):
        lseq += ["script print('%s')" % (mark % i), c]
        gseq += ["echo %s\\n" % (mark % i), c]
    lr = lldb_run(*lseq, exe=t.exe, core=core, check=0)
    gr = gdb_run(*gseq, exe=t.exe, core=core)
    no_traceback(lr)

    def outputs(text, lldb_echo):
        out = []
        for i in range(len(cmds)):
            s = text.index(mark % i + "\n") + len(mark % i) + 1
            e = text.index(mark % (i + 1)) if i + 1 < len(cmds) else len(text)
            part = text[s:e]
            if lldb_echo:   # lldb echoes each command: "(lldb) CMD"
                part = part.replace("(lldb) %s\n" % cmds[i], "")
                part = part[:part.rindex("(lldb) script")] if i + 1 < len(cmds) else part
            out.append(part)
        return out
    def untimed(parts):     # how long a call took is the only difference
        return [re.sub(r"\"(stopped_ns|elapsed_ms)\": [0-9.]+|in [0-9.]+ ms", "", p)
                for p in parts]
    lo, go = untimed(outputs(lr.stdout, True)), untimed(outputs(gr.stdout, False))
    assert all(len(a) > 100 for a in lo), lo
    for c, a, b in zip(cmds, lo, go):
        assert a == b, "%s differs:\n--- lldb\n%s\n--- gdb\n%s" % (c, a[:1500], b[:1500])
