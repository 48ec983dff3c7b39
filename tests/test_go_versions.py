"""pmprof's Go runtime reader across Go releases (tests/versions.py GO_NAMES):
tests/targets/goprog.go built by each toolchain of the cache, with DWARF
and stripped (-s -w), read live and from a gcore core, compared with what
the program says about itself (its debug=2 and debug=1 dumps, MemStats,
GOMAXPROCS & co., written before READY), as tests/test_go.py does for the
system's Go; and ext/layouts/layout-go.c's row of each release checked against
that release's own DWARF.

The goroutines' state (IDs, headers, waits, threads, labels, what they
block on) is compared for every release; their stacks, `created by` and
the goroutine profile need the binary's function table: where pmprof
cannot read it yet (it says so per goroutine), that part is an xfail
naming the release, after the state checks passed.

Exceptions, as in test_go.py: goroutine 1 wrote the dump (running), then
parks in main.blockForever.  goprog runs here without spinners (--no-spin)
so every other goroutine stays as the dump shows it.
"""

import json
import os
import re
import time
from collections import Counter

import pytest

import golayout
import versions
from conftest import gcore, gdb_run, require_ptrace, run_pmprof
from gotargets import GoProg, parse_debug2, proc_tasks, split_header, traces_multiset

pytestmark = [require_ptrace]

MAIN_G = 1
FLAVORS = {"dwarf": "", "stripped": "-s -w"}
SLACK_NS = 2_000_000
CORE_SLACK_NS = 50_000_000
NO_TABLE = "the binary's function table is not readable: stack unavailable"
PARAMS = [(v, f) for v in versions.GO_NAMES for f in FLAVORS]
IDS = ["%s-%s" % p for p in PARAMS]


def build(name, flavor="dwarf"):
    return versions.build_go(versions.entry(name), "goprog.go", "goprog",
                             ldflags=FLAVORS[flavor])


# ---- the layout table against each release's DWARF ---------------------------------


@pytest.mark.parametrize("name", versions.GO_NAMES)
def test_layout_row_is_the_dwarf(name):
    """ext/layouts/layout-go.c's row for the release = the offsets gdb reads from
    the DWARF of a goprog that release built (and the g status constants
    of its runtime2.go)."""
    e = versions.entry(name)
    minor = int(name.split(".")[1])
    rows = [r for r in golayout.table_rows() if r["minor"] == minor]
    assert len(rows) == 1, "ext/layouts/layout-go.c has %d rows for go1.%d" % (len(rows), minor)
    want = golayout.dwarf_row(build(name))
    want.update(golayout.source_row(e["goroot"]))
    got = {k: rows[0].get(k, 0) for k in want}
    assert got == want, {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    # g.stack {lo, hi} opens the g in every release (golang.c's constants)
    st = golayout.dwarf_fields(build(name), {"lo": ["runtime.g", ["stack.lo"]],
                                            "hi": ["runtime.g", ["stack.hi"]]})
    assert st == {"lo": 0, "hi": 8}


def test_layout_table_has_no_other_rows():
    minors = sorted(r["minor"] for r in golayout.table_rows())
    assert minors == sorted(int(n.split(".")[1]) for n in versions.GO_NAMES)


def test_release_beyond_the_table(tmp_path):
    """go-1.27 (no row): the layout-dependent commands refuse in one line
    naming the release, exit 2; stacks still work."""
    e = versions.entry(versions.GO_BEYOND)
    p = GoProg(versions.build_go(e, "goprog.go", "goprog", ldflags="-s -w"), spin=False)
    try:
        v = p.extra["GoVersion"]
        for args in (["goroutines"], ["go", "memstats"], ["go", "sched"]):
            r = run_pmprof(*args, "-p", p.pid)
            assert r.returncode == 2, (args, r.returncode, r.stderr)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and "unsupported Go version %s" % v in lines[0], r.stderr
            assert r.stdout == ""
        r = run_pmprof("stacks", "-p", p.pid)
        assert r.returncode in (0, 1) and r.stdout.strip(), r.stderr
        r = run_pmprof("record", "-p", p.pid, "-d", "0.3", "-q", "-o", tmp_path / "r.pb.gz")
        assert r.returncode == 0 and os.path.getsize(tmp_path / "r.pb.gz") > 0, r.stderr
        p.check_unharmed()
    finally:
        p.kill()


# ---- one goprog per release and build ------------------------------------------------


@pytest.fixture(scope="module", params=PARAMS, ids=IDS)
def prog(request):
    name, flavor = request.param
    p = GoProg(build(name, flavor), spin=False)
    p.name = name
    yield p
    try:
        p.check_unharmed()
    finally:
        p.kill()


@pytest.fixture(scope="module", params=PARAMS, ids=IDS)
def cored(request, tmp_path_factory):
    name, flavor = request.param
    p = GoProg(build(name, flavor), spin=False)
    p.name = name
    try:
        t0 = time.monotonic()
        core = gcore(p.pid, tmp_path_factory.mktemp("gocore"))
        t1 = time.monotonic()
        p.check_unharmed()
    finally:
        p.kill()
    yield p, core, t0, t1, flavor
    os.unlink(core)


def goids_of(p, func):
    return sorted(g.goid for g in p.by_func(func))


SCHEMAS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "docs", "schemas")


def pmprof_doc(*args):
    """bin/pmprof ARGS --format json: the document, checked against its
    schema (docs/schemas); exit 1 exactly when a goroutine is partial."""
    r = run_pmprof(*args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    jsonschema = pytest.importorskip("jsonschema")
    with open(os.path.join(SCHEMAS, doc["schema"] + ".schema.json")) as f:
        jsonschema.validate(doc, json.load(f))
    if doc["schema"] == "pmprof.goroutines-1":
        partial = any(j.get("error") for j in doc["goroutines"])
        assert r.returncode == (1 if partial else 0), (r.returncode, r.stderr)
    return doc


def check_state(p, doc, lo_ns, hi_ns, live=True):
    """What does not need the function table: IDs, headers, lock, waits,
    threads, labels, what goroutines block on."""
    assert doc["schema"] == "pmprof.goroutines-1"
    assert doc["go_version"] == p.extra["GoVersion"]
    mine = {j["goid"]: j for j in doc["goroutines"]}
    assert set(p.dump) <= set(mine), sorted(set(p.dump) - set(mine))
    for goid, want in sorted(p.dump.items()):
        j = mine[goid]
        ctx = (p.name, goid, want.header, j)
        assert j["locked_to_thread"] == want.locked, ctx
        if goid == MAIN_G:
            assert want.header == "running" and j["header"] == "chan receive", ctx
            continue
        assert j["header"] == want.header, ctx
        w = j["wait_ns"]
        assert w is not None and lo_ns <= w <= hi_ns, (w, lo_ns, hi_ns, ctx)
        if j["status"] == "waiting" and not j["locked_to_thread"]:
            assert j["thread"] is None, ctx
    (sc,) = goids_of(p, "main.parkSyscallRead")
    assert mine[sc]["status"] == "syscall"
    assert mine[sc]["thread"] == p.extra["syscall_tid"], mine[sc]
    if live:
        assert p.extra["syscall_tid"] in proc_tasks(p.pid)
    # labels: the program's debug=1 groups (goroutine 1's group aside)
    want_l = Counter()
    for grp in p.d1:
        if "main.main" not in grp.funcs:
            want_l[tuple(sorted(grp.labels.items()))] += grp.count
    got_l = Counter(tuple(sorted(mine[g]["labels"].items())) for g in p.dump if g != MAIN_G)
    assert got_l == want_l
    # what they block on: goprog's channels and sync objects (goprog.go's
    # structure), the goroutine IDs from the program's own dump
    groups = {tuple(sorted(o["goroutines"])): o for o in doc["blocked_on"]}
    for func, kind in (("main.parkSend", "chan"), ("main.parkRecv", "chan"),
                       ("main.parkWaitGroup", "sema")):
        ids = tuple(goids_of(p, func))
        assert ids in groups and groups[ids]["kind"] == kind, (func, ids, doc["blocked_on"])
    mutex = set(goids_of(p, "main.parkMutex"))
    sizes = sorted(o["count"] for o in doc["blocked_on"]
                   if o["kind"] == "sema" and set(o["goroutines"]) <= mutex)
    assert sizes == [2, 3], doc["blocked_on"]       # mutexA: 3 waiters, mutexB: 2
    return mine


def table_missing(doc):
    return any(j.get("error") == NO_TABLE for j in doc["goroutines"])


def check_stacks(p, doc):
    """The part that needs the function table: the user goroutines only,
    frames and `created by` as the dump's."""
    if table_missing(doc):
        pytest.xfail("%s: pmprof does not read this release's function table yet" % p.name)
    mine = {j["goid"]: j for j in doc["goroutines"]}
    assert sorted(mine) == sorted(p.dump)
    assert doc["counts"]["user"] == p.extra["NumGoroutine"] == len(p.dump)
    for goid, want in p.dump.items():
        if goid == MAIN_G:
            continue
        j = mine[goid]
        got = [(f["function"], f["file"], f["line"], f["inlined"]) for f in j["frames"]]
        assert got == [(f.function, f.file, f.line, f.inlined) for f in want.frames], \
            (p.name, goid, got, want.frames)
        cb = j["created_by"]
        assert (cb["function"], cb["file"], cb["line"]) == (
            want.created_by.function, want.created_by.file, want.created_by.line)
        assert cb.get("goroutine") == want.created_in, (cb, want.created_in)


# ---- live ------------------------------------------------------------------------------------


def test_goroutines_live(prog):
    p = prog
    t0 = time.monotonic()
    doc = pmprof_doc("goroutines", "-p", p.pid)
    t1 = time.monotonic()
    check_state(p, doc, int((t0 - p.t_ready) * 1e9) - SLACK_NS,
                int((t1 - p.t_start) * 1e9) + SLACK_NS)
    check_stacks(p, doc)


def test_goroutines_text_live(prog):
    """The text is the release's own debug=2 format (1.21+: `created by F
    in goroutine N`): the program's dump parser reads it, same content."""
    p = prog
    r = run_pmprof("goroutines", "-p", p.pid)
    if r.returncode == 1 and NO_TABLE in r.stdout:
        # no frames: '# <why>' after each header; the headers still say
        # what the dump's say
        hdr = dict((int(m.group(1)), m.group(2)) for m in
                   re.finditer(r"^goroutine (\d+) \[(.*)\]:$", r.stdout, flags=re.M))
        for goid, want in p.dump.items():
            if goid != MAIN_G:
                assert split_header(hdr[goid])[0] == want.header, (goid, hdr[goid], want)
        pytest.xfail("%s: pmprof does not read this release's function table yet" % p.name)
    assert r.returncode == 0, r.stderr
    mine = parse_debug2(r.stdout)
    for goid, want in p.dump.items():
        if goid == MAIN_G:
            continue
        got = mine[goid]
        assert [(f.function, f.file, f.line, f.offset) for f in got.frames] == \
            [(f.function, f.file, f.line, f.offset) for f in want.frames], (goid, got, want)
        assert (got.created_by.function, got.created_by.offset, got.created_in) == \
            (want.created_by.function, want.created_by.offset, want.created_in)


def test_goroutine_profile_live(prog, tmp_path):
    p = prog
    out = tmp_path / "g.pb.gz"
    doc = pmprof_doc("goroutines", "-p", p.pid, "-o", out)
    if table_missing(doc):
        pytest.xfail("%s: pmprof does not read this release's function table yet" % p.name)
    mine, own = traces_multiset(out), traces_multiset(p.pb)

    def drop_main(c):
        return Counter({k: n for k, n in c.items() if "main.main" not in k[0]})
    assert drop_main(mine) == drop_main(own)


def check_memstats(p, doc):
    assert doc["schema"] == "pmprof.go-memstats-1"
    assert doc["go_version"] == p.extra["GoVersion"]
    for k in ["NumGC", "NumForcedGC", "PauseTotalNs", "LastGC", "PauseNs", "PauseEnd"]:
        assert doc[k] == p.memstats[k], (p.name, k, doc[k], p.memstats[k])
    assert doc["GCPercent"] == p.extra["GCPercent"]
    assert doc["MemoryLimit"] == p.extra["MemoryLimit"]
    # the GC controller's figures: those MemStats gives exactly (the goal;
    # the bytes freed, counted at sweep, which runtime.GC() completed
    # before the program read its MemStats) and the bounds of the others
    # (whole cached spans count as allocated there)
    m = p.memstats
    assert doc["HeapGoal"] == m["NextGC"], (doc["HeapGoal"], m["NextGC"])
    assert doc["TotalFree"] == m["TotalAlloc"] - m["HeapAlloc"], (doc["TotalFree"], m)
    assert doc["TotalAlloc"] >= m["TotalAlloc"] and doc["HeapLive"] >= m["HeapAlloc"]


def test_go_memstats_and_sched_live(prog):
    p = prog
    check_memstats(p, pmprof_doc("go", "memstats", "-p", p.pid))

    def quiet(doc):
        return (doc["idle_ps"] == doc["gomaxprocs"] and doc["runq"] == [0] * doc["gomaxprocs"]
                and doc["global_runq"] == 0 and doc["spinning_ms"] == 0)

    docs = []
    for _ in range(5):
        before = len(proc_tasks(p.pid))
        doc = pmprof_doc("go", "sched", "-p", p.pid)
        after = len(proc_tasks(p.pid))
        assert doc["schema"] == "pmprof.go-sched-1"
        assert doc["gomaxprocs"] == p.extra["GOMAXPROCS"] == len(doc["runq"])
        assert min(before, after) <= doc["threads"] <= max(before, after), doc
        docs.append(doc)
        if quiet(doc):
            break
        time.sleep(0.2)   # the runtime's own work (a GC worker, timers) for a moment
    # quiet goprog: every P idle, nothing queued (in one of the reads: a
    # CI run once caught one P busy)
    assert quiet(docs[-1]), docs


# ---- cores -----------------------------------------------------------------------------------


def test_from_core(cored, tmp_path):
    p, core, t0, t1, _ = cored
    prof = tmp_path / "g.pb.gz"
    doc = pmprof_doc("goroutines", "--core", core, "--exe", p.exe, "-o", prof)
    check_state(p, doc, int((t0 - p.t_ready) * 1e9) - CORE_SLACK_NS,
                int((t1 - p.t_start) * 1e9) + CORE_SLACK_NS, live=False)
    check_memstats(p, pmprof_doc("go", "memstats", "--core", core, "--exe", p.exe))
    sc = pmprof_doc("go", "sched", "--core", core, "--exe", p.exe)
    assert sc["gomaxprocs"] == p.extra["GOMAXPROCS"]
    check_stacks(p, doc)
    mine, own = traces_multiset(prof), traces_multiset(p.pb)
    assert Counter({k: n for k, n in mine.items() if "main.main" not in k[0]}) == \
        Counter({k: n for k, n in own.items() if "main.main" not in k[0]})


# ---- gdb (a subset: the oldest and newest release, stripped) -------------------------------


def test_in_gdb_core(cored):
    """gdb on the cores of the subset (the others' cores are read by the
    CLI above)."""
    p, core, t0, t1, flavor = cored
    if flavor != "stripped" or p.name not in (versions.GO_NAMES[0], versions.GO_NAMES[-1]):
        pytest.skip("gdb runs on the oldest and newest release's stripped build")
    r = gdb_run("pmprof goroutines --format json", "pmprof go memstats --format json",
                exe=p.exe, core=core)
    assert "Traceback" not in r.stderr, r.stderr
    doc, ms = json_docs(r.stdout, 2)
    check_state(p, doc, int((t0 - p.t_ready) * 1e9) - CORE_SLACK_NS,
                int((t1 - p.t_start) * 1e9) + CORE_SLACK_NS, live=False)
    check_memstats(p, ms)
    check_stacks(p, doc)


def json_docs(stdout, n):
    """The n JSON documents in gdb's stdout (lines opening with '{'
    start one; gdb's notices around them are skipped)."""
    dec = json.JSONDecoder()
    docs, pos = [], 0
    while len(docs) < n:
        pos = stdout.index("{", pos) if stdout.startswith("{", pos) else \
            stdout.index("\n{", pos) + 1
        d, pos = dec.raw_decode(stdout, pos)
        docs.append(d)
    return docs


@pytest.mark.parametrize("name", [versions.GO_NAMES[0], versions.GO_NAMES[-1]])
def test_in_gdb_live(name):
    p = GoProg(build(name, "stripped"), spin=False)
    p.name = name
    try:
        t0 = time.monotonic()
        r = gdb_run("pmprof goroutines --format json", "pmprof go memstats --format json",
                    pid=p.pid)
        t1 = time.monotonic()
        assert "Traceback" not in r.stderr, r.stderr
        first, ms = json_docs(r.stdout, 2)
        check_state(p, first, int((t0 - p.t_ready) * 1e9) - SLACK_NS,
                    int((t1 - p.t_start) * 1e9) + SLACK_NS)
        check_memstats(p, ms)
        p.check_unharmed()
        assert p.target.tracer() == 0
        check_stacks(p, first)
    finally:
        p.kill()


# ---- record and the Go section of locks -----------------------------------------------------


@pytest.mark.parametrize("name", versions.GO_NAMES)
def test_record_goroutine_labels(name, tmp_path):
    """goprog with its two spinners (pprof.Do labels role=spinner,
    idx=0/1): `record`'s samples in main.spin carry the goroutine's
    labels and ID, as the program's own dump gives them (stripped build)."""
    from test_record import parse_raw, sample_functions
    from conftest import pprof_raw
    p = GoProg(build(name, "stripped"), spin=True)
    try:
        spinners = set(p.spinners())
        assert len(spinners) == 2
        out = tmp_path / "rec.pb.gz"
        r = run_pmprof("record", "-p", p.pid, "-d", "1", "-F", "199", "-q", "-o", str(out))
        assert r.returncode == 0, r.stderr
        p.check_unharmed()
    finally:
        p.kill()
    _, samples, locs = parse_raw(pprof_raw(out))
    spin = [s for s in samples if "main.spin" in sample_functions(s, locs)]
    assert spin, "no sample in main.spin"
    idx_of = {}
    for s in spin:
        assert s[2].get("role") == "spinner" and s[2].get("idx") in ("0", "1"), s
        goid = int(s[2]["goid"].split()[0])
        assert goid in spinners, (goid, sorted(spinners))
        # one goroutine, one label set
        assert idx_of.setdefault(goid, s[2]["idx"]) == s[2]["idx"], (goid, idx_of, s)


def test_locks_go_section(prog):
    """`pmprof locks`' Go section: the user goroutines by header, as the
    program's own dump counts them (goroutine 1 aside)."""
    p = prog
    r = run_pmprof("locks", "--format", "json", "-p", p.pid)
    assert r.returncode == 0, r.stderr
    go = json.loads(r.stdout)["go"]
    assert go["version"] == p.extra["GoVersion"]
    assert go["counts"]["user"] == len(p.dump)
    want = Counter(g.header for goid, g in p.dump.items() if goid != MAIN_G)
    want["chan receive"] += 1                   # goroutine 1, in main.blockForever
    assert Counter(go["headers"]) == want
    assert go["all_asleep"] is False            # IO wait, sleep, syscall
