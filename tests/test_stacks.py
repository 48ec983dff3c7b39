"""Snapshots of live processes and cores: stacks, threads, pprof.

Facts are compared with gdb's own `bt` and with /proc, not hard-coded
output: function sequences of application frames must equal gdb's.
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import (ENV, TARGETS, gcore, gdb_bt, gdb_run, have_go, kernel_core,
                      parse_bt, pprof_tool, run_pmprof, wait_until)

APP = {
    "blocker": ["block_inner", "block_middle", "block_outer", "blocker_main"],
    "sleeper": ["sleep_inner", "sleep_outer", "sleeper_main"],
    "spinner": ["spin_b", "spin_a", "spinner_main"],
    "reader": ["read_pipe", "reader_main"],
    "sorter": ["cmp_block", "do_sort", "sorter_main"],
    "sighandler": ["in_handler", "on_sigusr1", "<signal handler called>",
                   "sig_wait_loop", "sig_main"],
    "main": ["main_wait", "main"],
}
APP_FUNCS = {f for chain in APP.values() for f in chain}


def role(name):
    for r in APP:
        if name.startswith(r):
            return r
    return "main"


def stacks_json(*args):
    r = run_pmprof("stacks", "--all", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "pmprof.stacks/1"
    return doc, {g["threads"][0]["tid"]: g for g in doc["stacks"]}


def app_seq(funcs):
    return [f for f in funcs if f in APP_FUNCS]


_SYMS = {}


def _func_symbols(path):
    """{name: address} of the FUNC symbols of an ELF file and of its
    debug file under /usr/lib/debug/.build-id (where .symtab lives)."""
    if path in _SYMS:
        return _SYMS[path]
    files = [path]
    note = subprocess.run(["readelf", "-n", path], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]{2})([0-9a-f]+)", note)
    if m:
        files.append("/usr/lib/debug/.build-id/%s/%s.debug" % m.groups())
    out = {}
    for f in files:
        if not os.path.exists(f):
            continue
        text = subprocess.run(["readelf", "-sW", f], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True).stdout
        for line in text.splitlines():
            p = line.split()
            if len(p) >= 8 and p[3] == "FUNC" and p[6] != "UND":
                out.setdefault(p[7], int(p[1], 16))
    _SYMS[path] = out
    return out


def same_function(module, a, b):
    """a (pmprof's name) and b (gdb's) name the same function: equal, gdb's
    without a numeric clone suffix, or two symbols of one
    address (gdb and pmprof choose differently among a function's ELF
    aliases, e.g. clone3/__clone3, pthread_cond_wait/___pthread_cond_wait
    in a static program)."""
    if a == b:
        return True
    if re.fullmatch(re.escape(b) + r"\.\d+", a):
        return True     # gdb prints msort_with_tmp.part.0 as msort_with_tmp.part
    syms = _func_symbols(module) if module and module.startswith("/") else {}
    return a in syms and b in syms and syms[a] == syms[b]


def gdb_compat_fix(bt, exe):
    """gdb finds a call's target by its bare name: for pthread_kill it
    takes pthread_kill@GLIBC_2.2.5 (the compat __pthread_kill_esrch) and
    rebuilds a tail-call frame of that, while a program linked against
    glibc >= 2.34 imports pthread_kill@GLIBC_2.34 (__pthread_kill, whose
    tail call is in its inlined __pthread_kill_internal: gdb names that
    frame __pthread_kill_internal, as its bt of raise -> pthread_kill_internal
    in an abort shows), the frame pmprof rebuilds.  Returns gdb's bt with
    that frame as the program's import makes it."""
    if "__pthread_kill_esrch" not in bt or exe is None:
        return bt
    dyn = subprocess.run(["readelf", "--dyn-syms", "-W", exe], stdout=subprocess.PIPE,
                         text=True).stdout
    if "pthread_kill@GLIBC_2.34" not in dyn:
        return bt
    i = bt.index("__pthread_kill_esrch")
    return bt[:i] + ["__pthread_kill_internal"] + bt[i + 1:]


def as_gdb_bt(frames):
    """pmprof's frames as gdb's `bt` lists them, [(name, module)]: a frame
    with no name is ??, and the walk stops at main (gdb's `backtrace
    past-main off`)."""
    out = []
    for f in frames:
        out.append((f["function"] or "??", f["module"]))
        if f["function"] == "main":
            break
    return out


def check_threads_target(by_tid, names, bt=None, exe=None):
    """The application frames are the ones the target was built to show;
    with gdb's bt, the whole sequence is gdb's, frame for frame (libc's
    inline and tail-call frames included)."""
    for tid, g in by_tid.items():
        funcs = [f["function"] for f in g["frames"]]
        r = role(names[tid])
        assert app_seq(funcs) == APP[r], (tid, names[tid], funcs)
        if bt is not None:
            assert_gdb_bt(g["frames"], bt[tid], exe, (tid, names[tid]))


def assert_gdb_bt(frames, bt_funcs, exe, what):
    """pmprof's frames are gdb's bt, frame for frame."""
    got = as_gdb_bt(frames)
    want = gdb_compat_fix(bt_funcs, exe)
    assert len(got) == len(want) and all(
        same_function(mod, f, w) for (f, mod), w in zip(got, want)), \
        (what, want, [f for f, _ in got])


@pytest.mark.parametrize("name", ["threads", "threads-nopie", "threads-omitfp",
                                  "threads-static"])
def test_live_stacks_match_gdb(target, name):
    t = target(name)
    names = t.names()
    doc, by_tid = stacks_json("-p", t.pid)
    assert sorted(by_tid) == t.tids()
    assert doc["nthreads"] == 11 and doc["source"] == "live"
    for g in doc["stacks"]:
        assert g["threads"][0]["name"] == names[g["threads"][0]["tid"]]
        assert not g["flags"], g
    bt = gdb_bt(pid=t.pid)
    check_threads_target(by_tid, names, bt, t.exe)
    # the target runs on, untraced, as before
    assert t.tracer() == 0
    assert t.proc.poll() is None
    assert "t" not in set(t.states().values())


def test_inline_file_line_and_main_alias(target):
    t = target("threads")
    doc, by_tid = stacks_json("-p", t.pid)
    main = by_tid[t.pid]["frames"]
    fns = [f["function"] for f in main]
    assert "main" in fns and "main_wait" in fns
    mw = main[fns.index("main_wait")]
    assert mw["file"].endswith("threads.c") and mw["line"] > 0
    assert mw["module"] == os.path.join(TARGETS, "threads")
    # libc frames come from libc6-dbg: an inlined frame precedes its caller
    blk = by_tid[[x for x, g in by_tid.items() if g["threads"][0]["name"] == "blocker-0"][0]]
    assert any(f["inlined"] for f in blk["frames"])


def _utime_ticks(pid, tid):
    with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
        return int(f.read().rsplit(")", 1)[1].split()[11])


def test_threads_command(target):
    t = target("threads")
    # The spinner must have been charged a clock tick (10 ms) of CPU time
    # before it can show one: on a loaded machine that can take a while.
    names = t.names()
    spin = [tid for tid, n in names.items() if role(n) == "spinner"]
    for tid in spin:
        wait_until(lambda: _utime_ticks(t.pid, tid) > 0, what="spinner CPU time")
    r = run_pmprof("threads", "--format", "json", "-p", t.pid)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "pmprof.threads/1"
    ths = {x["tid"]: x for x in doc["threads"]}
    assert sorted(ths) == t.tids()
    names = t.names()
    for tid, th in ths.items():
        assert th["name"] == names[tid]
        r_ = role(th["name"])
        sc = th["syscall"]
        if r_ in ("blocker", "sorter", "main"):
            assert sc["name"] == "futex", th
            assert th["state"] == "S"
        elif r_ == "sleeper":
            assert sc["name"] == "clock_nanosleep", th
        elif r_ in ("reader", "sighandler"):
            assert sc["name"] == "read", th
        elif r_ == "spinner":
            assert sc is None and th["state"] == "R", th
            assert th["cpu_user_ns"] > 0
        assert th["frame"]["function"] == APP[r_][0]
    # text form: one line per thread plus a header, sorted by tid
    r = run_pmprof("threads", "-p", t.pid, check=0)
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 + len(ths)
    assert [int(x.split()[0]) for x in lines[1:]] == sorted(ths)


def test_stacks_text_merges_identical(target):
    t = target("threads")
    r = run_pmprof("stacks", "-p", t.pid, check=0)
    assert "3 threads: " in r.stdout and "blocker-0" in r.stdout
    assert "2 threads: " in r.stdout
    r = run_pmprof("stacks", "--depth", "2", "--format", "json", "-p", t.pid, check=0)
    doc = json.loads(r.stdout)
    assert all(len(g["frames"]) <= 2 for g in doc["stacks"])


@pytest.mark.skipif(not have_go(), reason="go is not installed: cannot validate pprof")
def test_snapshot_pprof_read_by_go_tool(target, tmp_path):
    t = target("threads")
    out = tmp_path / "s.pb.gz"
    run_pmprof("snapshot", "-p", t.pid, "-o", out, check=0)
    with open(out, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"
    raw = pprof_tool("-raw", str(out))
    assert "threads/count" in raw
    traces = pprof_tool("-traces", str(out))
    # one sample per thread, each with its thread label and tid
    assert traces.count("-----------+") >= 7
    for tid, name in t.names().items():
        assert "%s" % name in traces
    for fn in ("block_inner", "sleep_inner", "spin_b", "read_pipe", "cmp_block",
               "in_handler", "main_wait"):
        assert fn in traces
    top = pprof_tool("-top", str(out))
    assert "block_inner" in top or "pthread_cond_wait" in top


def test_core_gcore_matches_live(target, tmp_path):
    t = target("threads")
    names = t.names()
    live_doc, live = stacks_json("-p", t.pid)
    core = gcore(t.pid, tmp_path)
    doc, by_tid = stacks_json("--core", core)
    assert doc["source"] == "core"
    assert sorted(by_tid) == t.tids()
    check_threads_target(by_tid, names, gdb_bt(exe=t.exe, core=core), t.exe)
    r = run_pmprof("threads", "--core", core, check=0)
    assert "core" in r.stdout


def test_kernel_core(tmp_path):
    core, exe = kernel_core("threads", tmp_path)
    doc, by_tid = stacks_json("--core", core, "--exe", exe)
    bt = gdb_bt(exe=exe, core=core)
    assert sorted(by_tid) == sorted(bt)
    for tid, g in by_tid.items():
        assert_gdb_bt(g["frames"], bt[tid], exe, tid)
    aborting = [g for g in doc["stacks"] if any(f["function"] == "main_abort" for f in g["frames"])]
    assert len(aborting) == 1


def test_stripped_exe_debug_by_build_id(target):
    t = target("threads-stripped")
    doc, by_tid = stacks_json("-p", t.pid)
    fns = [f["function"] for f in by_tid[t.pid]["frames"]]
    assert "main_wait" not in fns      # no symbols without the debug file
    doc, by_tid = stacks_json("-p", t.pid, "--debug-dir", os.path.join(TARGETS, "debug"))
    names = t.names()
    check_threads_target(by_tid, names)
    mw = [f for f in by_tid[t.pid]["frames"] if f["function"] == "main_wait"][0]
    assert mw["file"].endswith("threads.c")


def test_cxx_demangled_inline_and_exception(target, tmp_path):
    t = target("cxx")
    doc, by_tid = stacks_json("-p", t.pid)
    names = t.names()
    bt = gdb_bt(pid=t.pid)
    worker = [g for x, g in by_tid.items() if names[x] == "worker"][0]
    fns = [f["function"] for f in worker["frames"]]
    assert any(f.startswith("inline_leaf") for f in fns), fns
    leaf = [f for f in worker["frames"] if f["function"].startswith("inline_leaf")][0]
    assert leaf["inlined"]
    assert any(f.startswith("inline_caller") for f in fns)
    assert any(f.startswith("ns::Worker<int>::run") for f in fns), fns
    assert any("lambda" in f for f in fns), fns
    sysn = [f["system_name"] for f in worker["frames"]
            if f["function"].startswith("ns::Worker<int>::run()") and "lambda" not in f["function"]]
    assert sysn == ["_ZN2ns6WorkerIiE3runEv"], sysn
    unw = [g for x, g in by_tid.items() if names[x] == "unwinder"][0]
    ufns = [f["function"] for f in unw["frames"]]
    i = [k for k, f in enumerate(ufns) if f.startswith("dtor_block")][0]
    assert any(f.startswith("Guard::~Guard") for f in ufns[i:]), ufns
    assert any(f.startswith("thrower") for f in ufns[i:]), ufns
    assert any(f.startswith("catcher") for f in ufns[i:]), ufns
    # same order as gdb for the named application functions
    for tid, g in by_tid.items():
        want = [f.split("(")[0] for f in bt[tid]
                if f.split("(")[0] in ("inline_leaf", "inline_caller", "dtor_block",
                                      "Guard::~Guard", "thrower", "catcher")]
        got = [f["function"].split("(")[0] for f in g["frames"]
               if f["function"].split("(")[0] in ("inline_leaf", "inline_caller", "dtor_block",
                                                  "Guard::~Guard", "thrower", "catcher")]
        assert got == want, (got, want)
    core = gcore(t.pid, tmp_path)
    cdoc, cby = stacks_json("--core", core)
    assert [[f["function"] for f in cby[x]["frames"]] for x in sorted(cby)] == \
        [[f["function"] for f in by_tid[x]["frames"]] for x in sorted(by_tid)]


def test_dlopen_plugin_and_late_refresh(target):
    t = target("dlopen")
    doc, by_tid = stacks_json("-p", t.pid)
    plugin = [g for x, g in by_tid.items() if g["threads"][0]["name"] == "plugin"][0]
    fns = [f["function"] for f in plugin["frames"]]
    assert fns.index("plugin_block") < fns.index("plugin_entry")
    assert plugin["frames"][fns.index("plugin_entry")]["module"].endswith("libplugin.so")
    late = target("dlopen", "--late")
    from pmprof_session import open_session  # noqa: E402  (same session before and after)
    s = open_session(late.pid)
    s.snapshot()
    late.proc.send_signal(signal.SIGUSR2)
    late.wait_line("LOADED")
    snap = s.snapshot()
    ths = snap.threads()
    plug = [th for th in ths if th["name"] == "plugin"][0]
    frames = [f for fs in snap.symbolize(plug["pcs"]) for f in fs]
    assert "plugin_block" in [f[1] for f in frames]
    s.close()


def test_go_threads_unwound_like_gdb(target):
    """Go code is unwound with the binary's pclntab (gohello has DWARF, so
    gdb names every frame): each thread's functions equal gdb's `bt` up to
    the frame where Go's own traceback stops (runtime.mstart / mcall),
    after which gdb may go on into runtime.clone or `??`."""
    if not os.path.exists(os.path.join(TARGETS, "gohello")):
        pytest.skip("go is not installed")
    t = target("gohello")
    # One gdb session, one stop: pmprof's stacks and gdb's bt see the same
    # moment (two separate stops raced with Go threads still moving after
    # READY).  The standalone path is compared with this one in
    # test_cli_fast.py.
    r = gdb_run("pmprof stacks --all --format json", "thread apply all bt", pid=t.pid)
    assert r.returncode == 0, r.stderr
    start = r.stdout.index("{")
    doc, end = json.JSONDecoder().raw_decode(r.stdout, start)
    assert doc["schema"] == "pmprof.stacks/1"
    by_tid = {g["threads"][0]["tid"]: g for g in doc["stacks"]}
    assert sorted(by_tid) == t.tids()
    bt = parse_bt(r.stdout[end:])
    tops = {"runtime.mstart", "runtime.mcall", "runtime.goexit", "runtime.rt0_go",
            "runtime.systemstack"}
    for tid, g in by_tid.items():
        funcs = [f["function"] for f in g["frames"]]
        assert not g["flags"], (tid, g["flags"], funcs)
        assert funcs[-1] in tops, (tid, funcs)
        assert bt[tid][:len(funcs)] == funcs, (tid, bt[tid], funcs)
        assert all(f["file"].endswith((".go", ".s")) and f["line"] > 0
                   for f in g["frames"]), g["frames"]


# bin/pmprof runs `stacks` in C; PMPROF_NO_FAST=1 runs it in the Python CLI.
@pytest.mark.parametrize("path_env", [{}, {"PMPROF_NO_FAST": "1"}], ids=["c", "python"])
def test_target_survives_sigkill_while_stopped(target, path_env):
    t = target("threads")
    env = dict(ENV, PMPROF_TEST_HOLD_MS="3000", **path_env)
    p = __import__("subprocess").Popen(["bin/pmprof".join([os.path.dirname(TARGETS).rsplit("/tests", 1)[0] + "/", ""]),
                                        "stacks", "-p", str(t.pid)], env=env)
    # wait until pmprof holds the target (threads in tracing stop)
    for _ in range(200):
        if "t" in set(t.states().values()):
            break
        time.sleep(0.01)
    assert "t" in set(t.states().values())
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(0.2)
    states = t.states()
    assert "t" not in states.values() and "T" not in states.values(), states
    assert t.tracer() == 0
    # spinners make progress again
    with open("/proc/%d/task/%d/stat" % (t.pid, [x for x, n in t.names().items() if n == "spinner-0"][0])) as f:
        u1 = int(f.read().rsplit(")", 1)[1].split()[11])
    time.sleep(0.3)
    with open("/proc/%d/task/%d/stat" % (t.pid, [x for x, n in t.names().items() if n == "spinner-0"][0])) as f:
        u2 = int(f.read().rsplit(")", 1)[1].split()[11])
    assert u2 > u1


class _Ctx:
    def target_description(self):
        return "T"


def render_text(ctx, session, snap, ths, groups, all_):
    """The merged-stacks text as Python renders it from report.py's plain
    data (what `pmprof stacks` printed before ext/output/render.c): the reference
    the C renderer is compared with."""
    from pmprof.commands.stacks import _frame_line, _thread_list
    out = ["%s: %d threads, %d %s%s" % (
        ctx.target_description(), len(ths), len(groups),
        "threads" if all_ else "distinct stacks",
        "" if session.is_core else
        " (target stopped %.2f ms)" % (snap.stopped_ns / 1e6))]
    for g in groups:
        out.append("")
        label = "thread" if g["count"] == 1 else "threads"
        out.append("%d %s: %s" % (g["count"], label, _thread_list(g["threads"])))
        for i, f in enumerate(g["frames"]):
            out.append(_frame_line(i, f))
        for t in ths:
            if t["tid"] == g["threads"][0]["tid"] and t["error"] and \
                    ("unwind-error" in t["flags"] or "no-registers" in t["flags"]):
                out.append("  (%s)" % t["error"])
        if "go" in g["flags"]:
            out.append("  (Go code this pmprof cannot read: unsupported Go version)")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("name,args", [("threads", {}), ("cxx", {}), ("deep", {}),
                                       ("threads", {"all": True}), ("deep", {"depth": 5}),
                                       ("threads-stripped", {})])
def test_c_rendering_equals_python_rendering(target, name, args):
    """`pmprof stacks` text is built in C (ext/output/render.c); the Python
    renderer (group_stacks + render_text) is the reference: for the same
    snapshot both must print the same bytes."""
    from pmprof_session import open_session  # noqa: E402
    from pmprof import report
    t = target(name, *(["16", "block"] if name == "deep" else []))
    s = open_session(t.pid)
    snap = s.snapshot()
    ths = snap.threads()
    report.symbolize_threads(snap, ths, args.get("depth"))
    groups = ([{"count": 1, "threads": [{"tid": x["tid"], "name": x["name"]}],
                "frames": x["frames"], "flags": x["flags"]} for x in ths]
              if args.get("all") else report.group_stacks(ths))
    want = render_text(_Ctx(), s, snap, ths, groups, args.get("all", False))
    body, ng = snap.render_stacks(all=args.get("all", False), depth=args.get("depth", 0))
    got = "T: %d threads, %d %s (target stopped %.2f ms)\n%s" % (
        snap.nthreads, ng, "threads" if args.get("all") else "distinct stacks",
        snap.stopped_ns / 1e6, body)
    assert got == want
    assert ng == len(groups) and snap.nthreads == len(ths)
    s.close()


def test_debug_cache_serves_decompressed_debug_info(target, tmp_path):
    """libc6-dbg's DWARF is zlib-compressed: a first run notes it, the CLI
    decompresses it into the cache in the background (eu-elfcompress), and
    later sessions map the copy.  The frames are the same; a session that
    hides the debug directories gets no libc lines although the cache
    holds them (the cache never adds debug info the search would not
    find)."""
    import shutil as _sh
    import pmprof_session  # noqa: F401  (puts python/ on sys.path)
    from pmprof import load_core
    if not _sh.which("eu-elfcompress"):
        pytest.skip("eu-elfcompress (elfutils) is not installed")
    core = load_core()
    cache = str(tmp_path / "cache")
    t = target("threads")
    s1 = core.open_pid(t.pid, cache_dir=cache)
    snap = s1.snapshot()
    keys = sorted({pc for th in snap.threads() for pc in th["pcs"]})
    want = snap.symbolize(keys)
    todo = s1.cache_todo()
    s1.close()
    libc = [x for x in todo if x[1].startswith("/usr/lib/debug/")]
    if not libc:
        pytest.skip("libc's debug info is not compressed here")
    env = dict(ENV, PMPROF_CACHE_DIR=cache)
    r = run_pmprof("stacks", "-p", t.pid, env=env)
    assert r.returncode == 0, r.stderr
    dest = libc[0][2]
    assert dest.startswith(cache + "/")
    wait_until(lambda: os.path.exists(dest), timeout=30, what="the cached copy")
    s2 = core.open_pid(t.pid, cache_dir=cache)
    snap2 = s2.snapshot()
    assert snap2.symbolize(keys) == want
    assert s2.cache_todo() == [x for x in todo if not os.path.exists(x[2])]
    s2.close()
    s3 = core.open_pid(t.pid, cache_dir=cache, debug_path=str(tmp_path / "none"))
    got = s3.snapshot().symbolize(keys)
    libc_lines = [f for fs in got for f in fs if "libc.so" in f[6] and f[4] > 0]
    assert libc_lines == [], libc_lines[:3]
    s3.close()
