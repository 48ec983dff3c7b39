"""pmprof goroutines / pmprof go against tests/targets/goprog.go, the Go oracle.

goprog parks goroutines in known ways and writes what its own runtime says
about them (debug=2, debug=1 and proto goroutine profiles, MemStats,
GOMAXPROCS & co.) before READY; pmprof, reading from outside, must agree:
live and from a gcore core, standalone and inside gdb, on all four builds
(cgo dynamic with DWARF, -w, -s -w, static).  Expected values come from
those dumps; the only hard-coded facts are the structure of goprog.go
itself (test_oracle_*), which validate the parsers.

Some goroutines legitimately change between the program's dump and
pmprof's read; each exception is named where it is made:
  goroutine 1   wrote the dump (running in runtime/pprof), then parks in
                main.blockForever;
  spinners      runnable in the dump (it stops the world), running or
                runnable when read, at another line of main.spin.
"""

import json
import os
import subprocess
import time
from collections import Counter

import pytest

from conftest import (ROOT, TARGETS, gcore, gdb_run, pprof_raw, require_go, require_ptrace,
                      run_pmprof)
from gotargets import (BUILDS, GoProg, G, Frame, go_funcs, json_from_gdb, parse_debug2,
                       parse_group_text, pmprof_json, proc_tasks, traces_multiset)

pytestmark = [require_go, require_ptrace]

SCHEMAS = os.path.join(ROOT, "docs", "schemas")
MAIN_G = 1                        # goroutine 1: wrote the dump, then blockForever
SPIN = {"goprog": True, "goprog-w": False, "goprog-sw": False, "goprog-static": True}
CORE_BUILDS = BUILDS              # gcore of goprog: ~0.7 s, 1.2 GB (one on disk at a time)
SLACK_NS = 2_000_000              # clock reads on either side of a process boundary
CORE_SLACK_NS = 50_000_000        # a core's time comes from wall clock + the last GC
FORCEGC_PERIOD = 120              # sysmon forces a GC after 2 min without one


@pytest.fixture(scope="module", params=BUILDS)
def prog(request):
    """One goprog per build for the whole module (spinners on the default
    and static builds; the others are quiet so scheduler state is exact)."""
    p = GoProg(request.param, spin=SPIN[request.param])
    yield p
    try:
        p.check_unharmed()
    finally:
        p.kill()


@pytest.fixture(scope="module", params=CORE_BUILDS)
def cored(request, tmp_path_factory):
    """goprog gcore'd once, then killed: (GoProg, core path, monotonic
    time before and after gcore)."""
    p = GoProg(request.param, spin=SPIN[request.param])
    try:
        t0 = time.monotonic()
        core = gcore(p.pid, tmp_path_factory.mktemp("gocore"))
        t1 = time.monotonic()
        p.check_unharmed()
    finally:
        p.kill()
    yield p, core, t0, t1
    os.unlink(core)


# ---- comparing pmprof's goroutines with the program's own dump ---------------


def gs_from_json(doc):
    """pmprof JSON goroutines -> {goid: G} (for the same comparisons as text)."""
    out = {}
    for j in doc["goroutines"]:
        g = G(j["goid"], j["header"], None, j["locked_to_thread"],
              [Frame(f["function"], f["file"], f["line"], f["inlined"]) for f in j["frames"]],
              None, j["labels"])
        cb = j["created_by"]
        if cb is not None:
            g.created_by = Frame(cb["function"], cb["file"], cb["line"])
        assert g.goid not in out, "goroutine %d twice" % g.goid
        out[g.goid] = g
    return out


def fileline(frames):
    return [(f.function, f.file, f.line) for f in frames]


def compare_with_dump(p, mine, what):
    """mine ({goid: G}) says what the program's goroutines.2.txt says,
    goroutine by goroutine, except for the named exceptions."""
    assert sorted(mine) == sorted(p.dump), "%s: goroutine IDs differ from the dump\n" \
        "only in dump: %s\nonly in pmprof: %s" % (what, sorted(set(p.dump) - set(mine)),
                                                  sorted(set(mine) - set(p.dump)))
    spinners = p.spinners()
    assert len(spinners) == (2 if p.spin else 0)
    for goid, want in sorted(p.dump.items()):
        got = mine[goid]
        ctx = "%s: goroutine %d\n dump: [%s] %s\n ours: [%s] %s" % (
            what, goid, want.header, fileline(want.frames), got.header, fileline(got.frames))
        assert got.locked == want.locked, ctx
        if goid == MAIN_G:
            # Exception: wrote the dump; now parked in main.blockForever.
            assert want.header == "running", ctx
            assert got.header == "chan receive" and got.funcs[-2:] == (
                "main.blockForever", "main.main"), ctx
            assert got.created_by is None, ctx
            continue
        assert got.funcs == want.funcs, ctx
        assert got.created_by is not None and want.created_by is not None, ctx
        assert (got.created_by.function, got.created_by.file, got.created_by.line) == \
            (want.created_by.function, want.created_by.file, want.created_by.line), ctx
        if goid in spinners:
            # Exception: runnable in the dump, running (or runnable again)
            # now, somewhere else in main.spin's loop.
            assert want.header == "runnable" and got.header in ("running", "runnable"), ctx
            assert fileline(got.frames[1:]) == fileline(want.frames[1:]), ctx
            continue
        assert got.header == want.header, ctx
        assert fileline(got.frames) == fileline(want.frames), ctx


def park_key(funcs):
    """The outermost shown function: goprog starts each goroutine with a
    `go` statement on its park function (goroutine 1: main.main)."""
    shown = go_funcs(funcs)
    return shown[-1] if shown else None


def labels_from_debug1(p):
    c = Counter()
    for grp in p.d1:
        key = park_key(grp.funcs)
        if key != "main.main":          # goroutine 1, in the dump writer
            c[(key, tuple(sorted(grp.labels.items())))] += grp.count
    return c


def check_json_goroutines(p, doc, now_lo_ns, now_hi_ns, live=True):
    """The JSON-only facts: schema, counts, labels, wait_ns, threads.
    now_lo_ns/now_hi_ns bound the moment pmprof read the program, as
    nanoseconds since READY was seen / since the program was started."""
    assert doc["schema"] == "pmprof.goroutines-1"
    assert doc["go_version"] == p.extra["GoVersion"]
    assert doc["counts"]["user"] == p.extra["NumGoroutine"] == len(p.dump), doc["counts"]
    mine = {j["goid"]: j for j in doc["goroutines"]}
    compare_with_dump(p, gs_from_json(doc), "%s json" % p.build)
    # labels: the program's own debug=1 groups, per park function
    ours = Counter()
    for j in doc["goroutines"]:
        key = park_key([f["function"] for f in j["frames"]])
        if j["goid"] != MAIN_G:
            ours[(key, tuple(sorted(j["labels"].items())))] += 1
    assert ours == labels_from_debug1(p)
    spinners = p.spinners()
    tids = set(proc_tasks(p.pid)) if live else None
    for goid, j in sorted(mine.items()):
        ctx = (p.build, j)
        assert j["system"] is False, ctx
        if j["status"] == "waiting" and j["wait_reason"]:
            assert j["header"] == j["wait_reason"], ctx
        else:
            assert j["header"] == j["status"], ctx
        if goid == MAIN_G or goid in spinners:
            pass        # ran after the GCs: no wait stamp to check
        else:
            # blocked before the two GCs that ran before READY: stamped
            # with a GC start, so now - waitsince lies between "time since
            # READY was seen" and "time since the program was started".
            w = j["wait_ns"]
            assert w is not None, ctx
            assert now_lo_ns <= w <= now_hi_ns, (w, now_lo_ns, now_hi_ns, ctx)
        if j["status"] == "running":
            assert j["thread"] is not None and (tids is None or j["thread"] in tids), ctx
    (sc,) = [j for j in mine.values() if "main.parkSyscallRead" in
             [f["function"] for f in j["frames"]]]
    assert sc["status"] == "syscall" and sc["thread"] == p.extra["syscall_tid"], sc
    (lk,) = [j for j in mine.values() if j["locked_to_thread"]]
    assert "main.parkLocked" in [f["function"] for f in lk["frames"]], lk
    # A parked goroutine runs on no thread; the locked one may name the
    # thread it is wired to (g.lockedm), and only that one.
    assert lk["thread"] in (None, p.extra["locked_tid"]), lk
    for j in mine.values():
        if j["status"] == "waiting" and j is not lk:
            assert j["thread"] is None, j
    # Go prints the frame of an inlined call with (...): the same frames
    # must be marked inlined (the inlined sleep and sync's fast paths).
    for goid, want in p.dump.items():
        if goid == MAIN_G:
            continue
        got = [f["inlined"] for f in mine[goid]["frames"]]
        assert got == [f.inlined for f in want.frames], (goid, want.frames, mine[goid])


# ---- the oracle itself (no pmprof): structure of goprog.go, parsers ----------


def test_oracle_builds():
    """The four builds are what their names promise (file/readelf facts)."""
    def sections(name):
        r = subprocess.run(["readelf", "-S", "-W", "-l", os.path.join(TARGETS, name)],
                           stdout=subprocess.PIPE, text=True, check=True)
        return r.stdout
    full, w, sw, static = (sections(b) for b in BUILDS)
    for s in (full, w, sw):
        assert "INTERP" in s, "cgo builds are dynamically linked"
    assert "INTERP" not in static
    assert ".debug_info" in full and ".symtab" in full
    assert ".debug_info" in static and ".symtab" in static
    assert ".debug_" not in w and ".symtab" in w
    assert ".debug_" not in sw and ".symtab" not in sw
    for s in (full, w, sw, static):
        assert ".gopclntab" in s
    for b in BUILDS:
        v = subprocess.run(["go", "version", "-m", os.path.join(TARGETS, b)],
                           stdout=subprocess.PIPE, text=True, check=True).stdout
        assert ("CGO_ENABLED=0" in v) == (b == "goprog-static"), v
        assert "-gcflags" not in v, "goprog is built optimized: " + v


def test_oracle_dump(prog):
    """goprog's own dumps hold exactly the goroutines goprog.go parks, and
    the parsers read them (the tests below rely on both)."""
    p = prog
    headers = Counter(g.header for g in p.dump.values() if g.goid != MAIN_G)
    n_spin = 2 if p.spin else 0
    want = {"chan send": 3, "chan receive": 4 + 1 + 1, "chan receive (nil chan)": 1,
            "select": 2, "select (no cases)": 1, "semacquire": 5 + 1 + 2,
            "sync.Cond.Wait": 2, "sleep": 3 + 1, "IO wait": 2, "syscall": 1}
    if n_spin:
        want["runnable"] = n_spin
    assert headers == want, headers
    assert p.dump[MAIN_G].header == "running"
    by = {k: len(p.by_func(k)) for k in ["main.parkSend", "main.parkRecv", "main.parkMutex",
                                          "main.parkWaitGroup", "main.parkCond",
                                          "main.sleepHour", "main.parkNetRead"]}
    assert by == {"main.parkSend": 3, "main.parkRecv": 4, "main.parkMutex": 5,
                  "main.parkWaitGroup": 2, "main.parkCond": 2, "main.sleepHour": 3,
                  "main.parkNetRead": 2}
    (inl,) = p.by_func("main.sleepInlined")
    assert [f.function for f in inl.frames if f.inlined] == ["main.sleepInlined"]
    assert inl.funcs[-2:] == ("main.sleepInlined", "main.parkSleepInlined")
    (lk,) = [g for g in p.dump.values() if g.locked]
    assert lk.funcs == ("main.parkLocked",) and lk.header == "chan receive"
    for g in p.dump.values():
        if g.goid != MAIN_G:
            assert g.created_by.function == "main.main", g
            assert g.minutes is None, g      # a young program: no ", N minutes"
    # debug=1: same total, labels of the pprof.Do goroutines
    assert p.d1_total == sum(grp.count for grp in p.d1) == len(p.dump) == \
        p.extra["NumGoroutine"]
    labelled = sorted(tuple(sorted(grp.labels.items())) for grp in p.d1 if grp.labels)
    want_l = [(("idx", str(i)), ("role", "sleeper")) for i in range(3)]
    want_l += [(("idx", str(i)), ("role", "spinner")) for i in range(n_spin)]
    assert labelled == sorted(want_l)
    # proto: go tool pprof reads it, same labels, same total
    c = traces_multiset(p.pb)
    assert sum(c.values()) == len(p.dump)
    assert sorted(lab for (f, lab), n in c.items() for _ in range(n) if lab) == sorted(want_l)
    # MemStats: two forced GCs before the dump
    assert p.memstats["NumGC"] >= 2 and p.memstats["NumForcedGC"] >= 2
    assert p.extra["syscall_tid"] in proc_tasks(p.pid)
    assert p.extra["locked_tid"] in proc_tasks(p.pid)


# ---- goroutines, live ------------------------------------------------------------


def test_goroutines_json_live(prog):
    p = prog
    t0 = time.monotonic()
    doc, r = pmprof_json("goroutines", "-p", p.pid)
    t1 = time.monotonic()
    check_json_goroutines(p, doc, int((t0 - p.t_ready) * 1e9) - SLACK_NS,
                          int((t1 - p.t_start) * 1e9) + SLACK_NS)
    assert p.target.tracer() == 0


def test_goroutines_text_live(prog):
    """Text is Go's debug=2 format: it parses with the parser of the
    program's own dump and says the same."""
    p = prog
    r = run_pmprof("goroutines", "-p", p.pid, check=0)
    mine = parse_debug2(r.stdout)
    compare_with_dump(p, mine, "%s text" % p.build)
    # Go's "+0x.." (pc - function start) after each physical frame and
    # after `created by`: the same numbers (goroutine 1 and the spinners
    # excepted, as in compare_with_dump).
    skip = {MAIN_G} | set(p.spinners())
    for goid, want in p.dump.items():
        if goid in skip:
            continue
        got = mine[goid]
        assert [f.offset for f in got.frames] == [f.offset for f in want.frames], \
            (goid, got.frames, want.frames)
        assert got.created_by.offset == want.created_by.offset, (goid, got.created_by,
                                                                want.created_by)


def test_goroutines_group(prog):
    """--group: the counts per (stack, labels) of the program's debug=1."""
    p = prog

    def key_ok(funcs):
        return "main.main" not in funcs         # goroutine 1 (dump writer / blockForever)

    want = Counter()
    for grp in p.d1:
        f = go_funcs(grp.funcs)
        if key_ok(f):
            want[(f, tuple(sorted(grp.labels.items())))] += grp.count
    doc, _ = pmprof_json("goroutines", "--group", "-p", p.pid)
    assert doc["schema"] == "pmprof.goroutines-1" and "groups" in doc
    got = Counter()
    for grp in doc["groups"]:
        f = go_funcs([fr["function"] for fr in grp["frames"]])
        if key_ok(f):
            got[(f, tuple(sorted(grp["labels"].items())))] += grp["count"]
    assert got == want
    assert sum(grp["count"] for grp in doc["groups"]) == doc["counts"]["user"] == len(p.dump)
    # text --group: counts per function list
    r = run_pmprof("goroutines", "--group", "-p", p.pid, check=0)
    got_t = Counter()
    for n, funcs in parse_group_text(r.stdout):
        f = go_funcs(funcs)
        if key_ok(f):
            got_t[f] += n
    want_t = Counter()
    for (f, _lab), n in want.items():
        want_t[f] += n
    assert got_t == want_t


def test_goroutine_profile(prog, tmp_path):
    """-o: a goroutine profile go tool pprof reads, with the same (stack,
    labels) -> count as the program's own goroutines.pb.gz."""
    p = prog
    out = tmp_path / "g.pb.gz"
    doc, _ = pmprof_json("goroutines", "-p", p.pid, "-o", out)
    mine, own = traces_multiset(out), traces_multiset(p.pb)
    assert sum(mine.values()) == doc["counts"]["user"] == len(p.dump)

    def drop_main(c):       # goroutine 1: in the dump writer / in blockForever
        return Counter({k: n for k, n in c.items() if "main.main" not in k[0]})
    assert drop_main(mine) == drop_main(own)


def test_goroutines_filters(prog):
    p = prog
    doc, _ = pmprof_json("goroutines", "-p", p.pid)
    alls = doc["goroutines"]

    def goids(js):
        return sorted(j["goid"] for j in js)

    def run(*a):
        d, _ = pmprof_json("goroutines", "-p", p.pid, *a)
        return goids(d["goroutines"])
    # statuses that cannot change while goprog is idle (spinners flip
    # between running and runnable: not filtered on here)
    for st in ("waiting", "syscall"):
        assert run("--state", st) == goids(j for j in alls if j["status"] == st), st
    assert run("--state", "syscall") == sorted(
        g.goid for g in p.dump.values() if g.header == "syscall")
    for reason in ("chan", "semacquire", "sleep", "IO wait"):
        got = run("--reason", reason)
        assert got == goids(j for j in alls if reason in j["wait_reason"]), reason
        in_dump = sorted(g.goid for g in p.dump.values()
                         if g.goid != MAIN_G and reason in g.header)
        # goroutine 1 waits on a chan receive now (it was running)
        assert [x for x in got if x != MAIN_G] == in_dump, reason
    assert run("--reason", "no such wait reason") == []


# ---- go memstats / go sched -----------------------------------------------------------

MEMSTATS_FIELDS = ["NumGC", "NumForcedGC", "PauseTotalNs", "LastGC", "PauseNs"]


def check_memstats(p, doc):
    """Equal to what the program read itself before READY: goprog is idle
    after READY (no allocation, no goroutine), so only sysmon's forced GC,
    2 minutes after the last one, could change these; the target is younger."""
    assert doc["schema"] == "pmprof.go-memstats-1"
    for k in MEMSTATS_FIELDS:
        assert doc[k] == p.memstats[k], (k, doc[k], p.memstats[k])
    assert len(doc["PauseNs"]) == 256
    assert doc["GCPercent"] == p.extra["GCPercent"]
    assert doc["MemoryLimit"] == p.extra["MemoryLimit"]


def test_go_memstats_live(prog):
    p = prog
    assert time.monotonic() - p.t_ready < FORCEGC_PERIOD, \
        "target older than forcegcperiod: a forced GC may have run since READY"
    doc, _ = pmprof_json("go", "memstats", "-p", p.pid)
    check_memstats(p, doc)


def test_go_sched_live(prog):
    """gomaxprocs as the program read it; threads = the OS threads of the
    process (every one of them is an M; the cgo extra M has none and is
    not a thread); a quiet goprog has every P idle and nothing queued."""
    p = prog
    before = len(proc_tasks(p.pid))
    doc, _ = pmprof_json("go", "sched", "-p", p.pid)
    after = len(proc_tasks(p.pid))
    assert doc["schema"] == "pmprof.go-sched-1"
    assert doc["gomaxprocs"] == p.extra["GOMAXPROCS"]
    assert len(doc["runq"]) == doc["gomaxprocs"]
    # Not sched.mnext - nmfreed (mcount()): in a cgo binary that includes
    # the extra M kept for callbacks from C threads, which has no thread.
    assert min(before, after) <= doc["threads"] <= max(before, after), \
        "threads %d, but the process has %d..%d OS threads: %r" % (
            doc["threads"], before, after, doc)
    assert 0 <= doc["idle_ps"] <= doc["gomaxprocs"]
    if not p.spin:
        assert doc["idle_ps"] == doc["gomaxprocs"], doc
        assert doc["spinning_ms"] == 0 and doc["global_runq"] == 0, doc
        assert doc["runq"] == [0] * doc["gomaxprocs"], doc


# ---- stacks of Go threads ---------------------------------------------------------------


def test_stacks_go_threads(prog):
    """pmprof stacks names Go frames: the thread blocked in read(2) shows
    its goroutine's frames (after Go's hiding rules) as the outer end of
    its stack; the LockOSThread thread, parked in the scheduler, shows
    named Go frames."""
    p = prog
    doc, _ = pmprof_json("goroutines", "-p", p.pid)
    (sc,) = [j for j in doc["goroutines"] if j["status"] == "syscall"]
    r = run_pmprof("stacks", "--all", "-p", p.pid, "--format", "json", check=0)
    st = json.loads(r.stdout)
    by_tid = {g["threads"][0]["tid"]: g for g in st["stacks"]}
    assert sorted(by_tid) == proc_tasks(p.pid)
    tfuncs = go_funcs(f["function"] for f in by_tid[sc["thread"]]["frames"])
    gfuncs = go_funcs(f["function"] for f in sc["frames"])
    assert gfuncs and tfuncs[-len(gfuncs):] == gfuncs, (tfuncs, gfuncs)
    locked = [f["function"] for f in by_tid[p.extra["locked_tid"]]["frames"]]
    assert locked and all(f and f != "??" for f in locked[:3]), locked
    assert any(f.startswith("runtime.") for f in locked), locked


# ---- errors -------------------------------------------------------------------------------


def test_not_a_go_program(target):
    t = target("threads")
    r = run_pmprof("goroutines", "-p", t.pid)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Go" in lines[0], r.stderr
    assert r.stdout == ""


# ---- cores ---------------------------------------------------------------------------------


def core_bounds(p, t0, t1):
    return (int((t0 - p.t_ready) * 1e9) - CORE_SLACK_NS,
            int((t1 - p.t_start) * 1e9) + CORE_SLACK_NS)


def test_goroutines_from_core(cored):
    p, core, t0, t1 = cored
    doc, _ = pmprof_json("goroutines", "--core", core, "--exe", p.exe)
    lo, hi = core_bounds(p, t0, t1)
    check_json_goroutines(p, doc, lo, hi, live=False)
    r = run_pmprof("goroutines", "--core", core, "--exe", p.exe, check=0)
    compare_with_dump(p, parse_debug2(r.stdout), "%s core text" % p.build)


def test_go_memstats_from_core(cored):
    p, core, t0, t1 = cored
    doc, _ = pmprof_json("go", "memstats", "--core", core, "--exe", p.exe)
    check_memstats(p, doc)


def test_goroutine_profile_from_core(cored, tmp_path):
    p, core, _, _ = cored
    out = tmp_path / "g.pb.gz"
    doc, _ = pmprof_json("goroutines", "--core", core, "--exe", p.exe, "-o", out)
    mine = traces_multiset(out)
    assert sum(mine.values()) == doc["counts"]["user"] == len(p.dump)


# ---- inside gdb ------------------------------------------------------------------------------


def test_goroutines_in_gdb_live(tmp_path):
    p = GoProg("goprog-w", spin=False)
    try:
        t0 = time.monotonic()
        r = gdb_run("pmprof goroutines --format json", pid=p.pid)
        t1 = time.monotonic()
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        check_json_goroutines(p, json_from_gdb(r.stdout), int((t0 - p.t_ready) * 1e9)
                              - SLACK_NS, int((t1 - p.t_start) * 1e9) + SLACK_NS)
        r = gdb_run("pmprof goroutines", pid=p.pid)
        # gdb's own notices ('[Inferior 1 (process N) detached]', thread
        # events) start with '[': never a line of Go's format
        text = "\n".join(ln for ln in r.stdout[r.stdout.index("goroutine "):].splitlines()
                         if not ln.startswith("["))
        compare_with_dump(p, parse_debug2(text), "gdb text")
        p.check_unharmed()
        assert p.target.tracer() == 0
    finally:
        p.kill()


def test_goroutine_running_in_a_signal_handler_starts_at_the_interrupted_code(tmp_path):
    """A spinning goroutine's thread held inside Go's signal handler (sysmon
    preempts a goroutine that ran 10 ms with SIGURG; the handler's
    isAsyncSafePoint reads the function's name with
    internal/bytealg.IndexByteString, a frame Go's hiding rules show).  The
    handler's frames are the M's: the goroutine's stack starts at main.spin,
    where the signal interrupted it (once a flaky extra leaf frame)."""
    p = GoProg("goprog", spin=True)
    try:
        r = gdb_run("break internal/bytealg.IndexByteString if "
                    "$_any_caller_matches(\"runtime.sighandler\", 12)",
                    "continue",
                    "python print('HELD', gdb.selected_thread().ptid[1])",
                    "pmprof goroutines --format json", pid=p.pid, timeout=120)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        held = int(r.stdout.split("HELD ", 1)[1].split()[0])
        doc = json_from_gdb(r.stdout[r.stdout.index("HELD "):])
        mine = [g for g in doc["goroutines"] if g["thread"] == held]
        assert len(mine) == 1, (held, [(g["goid"], g["thread"]) for g in doc["goroutines"]])
        g = mine[0]
        assert g["goid"] in p.spinners(), g
        assert g["frames"][0]["function"] == "main.spin", g["frames"]
        p.check_unharmed()
    finally:
        p.kill()


def test_goroutines_in_gdb_core(cored):
    p, core, t0, t1 = cored
    r = gdb_run("pmprof goroutines --format json", exe=p.exe, core=core)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    lo, hi = core_bounds(p, t0, t1)
    check_json_goroutines(p, json_from_gdb(r.stdout), lo, hi, live=False)


# ---- JSON schemas (docs/schemas, when they exist) ---------------------------------------------


def test_json_schemas(prog):
    jsonschema = pytest.importorskip("jsonschema")
    p = prog
    docs = {
        "pmprof.goroutines-1": [pmprof_json("goroutines", "-p", p.pid)[0],
                                pmprof_json("goroutines", "--group", "-p", p.pid)[0],
                                pmprof_json("goroutines", "--runtime", "-p", p.pid)[0]],
        "pmprof.go-memstats-1": [pmprof_json("go", "memstats", "-p", p.pid)[0]],
        "pmprof.go-sched-1": [pmprof_json("go", "sched", "-p", p.pid)[0]],
    }
    found = 0
    for name, ds in docs.items():
        path = os.path.join(SCHEMAS, name + ".schema.json")
        if not os.path.exists(path):
            continue
        found += 1
        with open(path) as f:
            schema = json.load(f)
        for d in ds:
            jsonschema.validate(d, schema)
    if not found:
        pytest.skip("no Go schemas in docs/schemas yet")


def test_runtime_shows_system_goroutines(prog):
    """--runtime adds the system goroutines (counted apart) and runtime.*
    frames; the user goroutines are the same ones."""
    p = prog
    doc, _ = pmprof_json("goroutines", "--runtime", "-p", p.pid)
    sys_ = [j for j in doc["goroutines"] if j["system"]]
    user = [j for j in doc["goroutines"] if not j["system"]]
    assert len(sys_) == doc["counts"]["system"] > 0
    assert sorted(j["goid"] for j in user) == sorted(p.dump)
    for j in sys_:
        assert j["frames"] and j["frames"][-1]["function"].startswith("runtime."), j
    parked = [j for j in user if j["status"] == "waiting"]
    assert all(any(f["function"] == "runtime.gopark" for f in j["frames"]) for j in parked), \
        "with --runtime, parked goroutines show runtime.gopark"


# ---- record: goroutine labels on samples ------------------------------------------


def test_record_samples_carry_goroutine_and_labels(prog, tmp_path):
    """pmprof record on a Go program: samples of the two spinners (pprof.Do
    role=spinner, idx=N) carry goid = a spinner's goroutine ID and its
    labels, like Go's own CPU profiles; the stacks show main.spin.  The
    quiet builds have no running goroutine: their samples carry none."""
    p = prog
    from test_record import parse_raw, sample_functions
    out = tmp_path / "cpu.pb.gz"
    r = run_pmprof("record", "-p", p.pid, "-d", "1", "-F", "199", "-q", "-o", str(out))
    assert r.returncode == 0, r.stderr
    types, samples, locs = parse_raw(pprof_raw(out))
    assert samples
    spinners = {str(g) for g in p.spinners()}
    labelled = [s for s in samples if "goid" in s[2]]
    for s in labelled:
        s[2]["goid"] = s[2]["goid"].split()[0]     # "50 goid": num + unit
    for s in labelled:
        funcs = sample_functions(s, locs)
        if s[2].get("role") == "spinner":
            assert s[2]["goid"] in spinners, s
            # In the spinner, or on the thread's g0 stack on its behalf
            # (preempted: mcall into the scheduler before it drops the g).
            assert "main.spin" in funcs or funcs and funcs[-1] in (
                "runtime.mcall", "runtime.systemstack", "runtime.morestack"), (s, funcs)
    if not p.spin:
        assert not [s for s in labelled if s[2].get("role") == "spinner"]
        return
    spun = [s for s in labelled if s[2].get("role") == "spinner"]
    # Both spinners ran (2 threads, GOMAXPROCS >= 2) and were seen.
    assert {s[2]["goid"] for s in spun} == spinners, (spinners, len(spun))
    assert {s[2]["idx"] for s in spun} == {"0", "1"}
    # Most samples of threads running main.spin carry the label (a sample
    # taken while the goroutine was switched out may not).
    on_spin = [s for s in samples if "main.spin" in sample_functions(s, locs)]
    assert len(spun) >= 0.8 * len(on_spin), (len(spun), len(on_spin))


# ---- what goroutines block on; the Go section of locks/hang ----------------------


def test_blocked_on_groups_goroutines_by_object(prog):
    """blocked_on: the goroutines that wait on the same channel (sudog.c)
    or semaphore (sudog.elem) — goprog's 3 senders share a channel, its 4
    receivers another, 3 mutex waiters mutexA, 2 mutexB, 2 WaitGroup
    waiters one WaitGroup (goroutine 1, parkHoldMutex and parkLocked
    receive from one `never` channel: a group of mixed functions)."""
    p = prog
    doc, r = pmprof_json("goroutines", "-p", p.pid)
    assert r.returncode == 0, r.stderr
    park = {j["goid"]: park_key([f["function"] for f in j["frames"]])
            for j in doc["goroutines"]}
    got = Counter()
    for o in doc["blocked_on"]:
        fns = {park[g] for g in o["goroutines"]}
        assert o["count"] == len(o["goroutines"]) >= 2, o
        if len(fns) == 1:
            got[(o["kind"], fns.pop(), o["count"])] += 1
    want = Counter({("chan", "main.parkSend", 3): 1, ("chan", "main.parkRecv", 4): 1,
                    ("sema", "main.parkMutex", 3): 1, ("sema", "main.parkMutex", 2): 1,
                    ("sema", "main.parkWaitGroup", 2): 1})
    assert {k: v for k, v in got.items() if k in want} == dict(want), got
    # A program with sleepers, network readers and a syscall is not
    # "all asleep".
    assert doc["all_asleep"] is False


def test_locks_and_hang_have_a_go_section(prog):
    """pmprof locks on a Go program: the runtime's own futexes (idle Ms
    parked in runtime.futex) are not reported as glibc lock waits, and
    the Go section counts the user goroutines by header as the program's
    own dump does (goroutine 1 and the spinners excepted)."""
    p = prog
    r = run_pmprof("locks", "--format", "json", "-p", p.pid, check=None)
    assert r.returncode == 0, r.stderr          # no native lock waits
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "none" and doc["edges"] == [], doc["edges"]
    go = doc["go"]
    assert go["version"] == p.extra["GoVersion"]
    assert go["counts"]["user"] == len(p.dump)
    want = Counter(g.header for goid, g in p.dump.items()
                   if goid != MAIN_G and goid not in p.spinners())
    got = Counter(go["headers"])
    for h in ("running", "runnable", "chan receive"):
        got.pop(h, None)
        want.pop(h, None)
    assert got == want, (got, want)
    import jsonschema
    with open(os.path.join(ROOT, "docs", "schemas", "pmprof.locks-1.schema.json")) as f:
        jsonschema.validate(doc, json.load(f))
    r = run_pmprof("hang", "-p", p.pid, check=None)
    assert r.returncode == 0, r.stderr
    assert "GO (%s): %d goroutines" % (p.extra["GoVersion"], len(p.dump)) in r.stdout


def test_record_crosses_the_system_stack(target, tmp_path):
    """gochurn allocates without pause: the runtime keeps running on the
    system stack (span allocation, GC work) on behalf of main.churn.  Some
    samples must cross runtime.systemstack back into the goroutine (Go's
    own traceback jumps to m.curg there), and the target survives 2 s of
    sampling at 499 Hz running."""
    from test_record import parse_raw, sample_functions
    t = target("gochurn")
    out = tmp_path / "churn.pb.gz"
    # ptrace method: every thread is stopped at every tick, so churners are
    # caught on the system stack (with perf events a running thread's CPU
    # samples end at runtime.systemstack: docs/record.md)
    r = run_pmprof("record", "-p", t.pid, "-d", "2", "-F", "499", "-q",
                   "--method", "ptrace", "-o", str(out))
    assert r.returncode == 0, r.stderr
    _, samples, locs = parse_raw(pprof_raw(out))
    crossed = through = stale = 0
    for s in samples:
        funcs = sample_functions(s, locs)
        if "runtime.systemstack" in funcs:
            i = funcs.index("runtime.systemstack")
            through += s[0][0]
            if funcs[-1] == "[unwind error]":
                # The goroutine's saved context led outside every Go
                # function (stale: seen once in a loaded run): the walk
                # ends there, marked, never with a wrong frame.
                stale += s[0][0]
                assert funcs[i:-1] == ["runtime.systemstack"], funcs
                continue
            # above systemstack (toward the root): a goroutine's frames
            # down to runtime.goexit, or the walk stopped on g0
            assert funcs[-1] in ("runtime.goexit", "runtime.systemstack",
                                 "runtime.mstart"), funcs
            crossed += "main.churn" in funcs[i:]
    assert crossed >= 1, "no sample crossed runtime.systemstack"
    assert stale <= max(2, through // 50), (stale, through)
    assert t.proc.poll() is None


def test_kernel_core_of_a_go_crash(tmp_path):
    """gohello --gencore panics with GOTRACEBACK=crash: the kernel writes
    the core while the runtime kills itself from inside its signal
    handler.  From that core: the panicking goroutine 1 (runtime.gopanic
    is shown below main.main, as Go shows it), the three parkers in
    main.parkOn, and the crashing thread's stack crosses the signal frame
    (runtime.sigtramp) back into gopanic and main.main."""
    from conftest import kernel_core
    core, exe = kernel_core("gohello", tmpdir=tmp_path)
    doc, r = pmprof_json("goroutines", "--core", core, "--exe", exe)
    assert r.returncode == 0, r.stderr
    gs = {g["goid"]: g for g in doc["goroutines"]}
    assert [f["function"] for f in gs[1]["frames"]] == ["runtime.gopanic", "main.main"]
    parkers = [g for g in gs.values()
               if [f["function"] for f in g["frames"]] == ["main.parkOn", "main.parker"]]
    assert len(parkers) == 3 and all(g["header"] == "chan receive" for g in parkers)
    r = run_pmprof("stacks", "--all", "--core", core, "--exe", exe, "--format", "json")
    assert r.returncode == 0, r.stderr
    crashed = [g for g in json.loads(r.stdout)["stacks"]
               if "runtime.sigtramp" in [f["function"] for f in g["frames"]]]
    assert len(crashed) == 1
    funcs = [f["function"] for f in crashed[0]["frames"]]
    i = funcs.index("runtime.sigtramp")
    assert "runtime.gopanic" in funcs[i:] and "main.main" in funcs[i:], funcs
    assert funcs[-1] == "runtime.goexit", funcs


def _load_segments(data):
    """(file offset, size) of a core's PT_LOAD segments (ELF64 LE)."""
    import struct
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    segs = []
    for i in range(phnum):
        p_type, _flags, off, _va, _pa, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and filesz:
            segs.append((off, filesz))
    return segs


def test_hostile_go_cores(tmp_path):
    """Damaged Go cores (random bytes overwritten in every dumped segment:
    g structs, allgs, the label maps, the semaphore table, stacks; and
    cores cut short): goroutines, go memstats, go sched and stacks end
    with a status 0/1/2 and, on failure, one line on stderr: no traceback,
    no hang, no crash."""
    import random
    from conftest import kernel_core
    core, exe = kernel_core("gohello", tmpdir=tmp_path)
    with open(core, "rb") as f:
        clean = f.read()
    segs = _load_segments(clean)
    assert segs
    rnd = random.Random(1234)
    variants = []
    for k in range(8):
        b = bytearray(clean)
        density = 2048 if k < 4 else 64      # light, then heavy damage
        for off, size in segs:
            for _ in range(max(8, size // density)):
                at = off + rnd.randrange(size)
                b[at:at + 8] = rnd.getrandbits(64).to_bytes(8, "little")
        variants.append(("flip%d" % k, bytes(b)))
    for frac in (0.3, 0.6, 0.9):
        variants.append(("cut%d" % int(frac * 100), clean[:int(len(clean) * frac)]))
    codes = {}
    cmds = [("goroutines", "--format", "json"), ("goroutines", "--group"),
            ("go", "memstats"), ("go", "sched"), ("stacks",)]
    for name, data in variants:
        path = tmp_path / ("core-" + name)
        path.write_bytes(data)
        for c in cmds:
            r = run_pmprof(*c, "--core", str(path), "--exe", exe, timeout=30)
            what = (name, c, r.returncode, r.stderr[-500:])
            codes[r.returncode] = codes.get(r.returncode, 0) + 1
            assert r.returncode in (0, 1, 2), what
            assert "Traceback" not in r.stderr, what
            if r.returncode == 2:
                assert len(r.stderr.strip().splitlines()) == 1, what
        path.unlink()
    # the damage must have mattered somewhere (else this tests nothing)
    assert codes.get(1, 0) + codes.get(2, 0) > 0, codes
