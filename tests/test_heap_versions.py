"""pmprof heap on every glibc of the version matrix (tests/versions.py):
tests/targets/mallocs.c built against each one prints its own
mallinfo2() (mallinfo() before 2.33), malloc_stats() and malloc_info();
pmprof's figures must equal them exactly, live and from a gcore core, in
the CLI and in gdb, with that glibc's debug info (--debug-dir, then the
row is also checked against libc's DWARF) and without it (found from the
stripped libc's code and data).  This machine's /usr/lib/debug is hidden
(PMPROF_DEBUG_PATH, gdb's debug-file-directory): only the version's own
debug_dir is ever used.

Also: each worker thread's tcache, through TLS, against the chunks the
worker freed; a damaged heap on every version; a libc whose banner names
a version without a row is refused by name, even with its DWARF."""

import json
import os
import re

import pytest

from conftest import ENV, gcore, gdb_run, kernel_core, run_pmprof
from test_heap import FIELDS, SCHEMA, oracle_malloc_info, oracle_stats
from versions import GLIBC_NAMES, build_c, entry

FLAGS = ["-g", "-pthread", "-O1", "-fno-builtin-malloc", "-fno-builtin-free"]
HIDDEN = dict(ENV, PMPROF_DEBUG_PATH="/nonexistent")     # no /usr/lib/debug
GDB_NODEBUG = ["set debug-file-directory /nonexistent"]


def mallocs(name):
    g = entry(name)
    return g, build_c(g, "mallocs.c", "mallocs", FLAGS)


def oracle_mallinfo(lines):
    """(fields, 'mallinfo2' or 'mallinfo'): mallinfo's fields are int."""
    for x in lines:
        m = re.match(r"(MALLINFO2?) ", x)
        if m:
            return ({k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", x)},
                    m.group(1).lower())
    raise AssertionError("no MALLINFO line in %r" % lines[:5])


def heap_json(*args, dbg=None, env=HIDDEN, check=True):
    extra = ["--debug-dir", dbg] if dbg else []
    r = run_pmprof("heap", *args, "--format", "json", *extra, env=env, check=check)
    doc = json.loads(r.stdout)
    assert r.returncode == (1 if doc["errors"] else 0), r.stderr
    return doc


TLS_LOST = re.compile(r"thread (\d+): its thread control block is not in the target "
                      r"\(reads as 0x0\): its tcache is unknown$")


def tls_lost_in_core(doc, exe, core):
    """The threads whose TLS the core lacks, as pmprof lists them; gdb
    must read the same: a thread control block (x86_64: its first word
    points to itself) of zeros.  gcore of a glibc 2.43 process writes the
    thread stacks as zeros (they carry MADV_GUARD_INSTALL guard pages)."""
    lost = set()
    for e in doc["errors"]:
        m = TLS_LOST.match(e["msg"])
        assert m, e
        lost.add(int(m.group(1)))
    if lost:
        r = gdb_run("thread apply all p/x *(unsigned long *)$fs_base", exe=exe, core=core,
                    source=False, iex=GDB_NODEBUG)
        tcb = {int(t): int(v, 16) for t, v in re.findall(
            r"^Thread \d+ \(LWP (\d+)\)[^\n]*\n\$\d+ = (0x[0-9a-f]+)$", r.stdout, re.M)}
        for tid in lost:
            assert tcb[tid] == 0, (tid, r.stdout)
    return lost


def gdb_json(r):
    assert "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout[r.stdout.index("{"):r.stdout.rindex("}") + 1])


def check(doc, t, g, dbg, stats=True, core=None, exe=None):
    """doc against what the process printed about itself.  From a core,
    the only problem allowed is a thread whose TLS the core lacks (gdb
    reading the same), whose tcache chunks then count as in use."""
    jsonschema = pytest.importorskip("jsonschema")
    with open(SCHEMA) as f:
        jsonschema.validate(doc, json.load(f))
    version = g["name"].split("-", 1)[1]
    lost = tls_lost_in_core(doc, exe, core) if core else set()
    if not core:
        assert doc["errors"] == []
    assert doc["glibc"]["version"] == version
    # the layout: the version's row, checked against its DWARF when given
    want = "table %s x86_64" % version + (", checked against libc's DWARF" if dbg else "")
    assert doc["glibc"]["layout"] == want
    anchor = "mallinfo2" if "MALLINFO2 " in "\n".join(t.lines) else "mallinfo"
    if dbg:
        assert doc["resolution"]["main_arena"]["method"] == "symbol (= %s lea)" % anchor
        assert doc["resolution"]["mp_"]["method"] == "symbol (= .data initialiser)"
    else:
        assert doc["resolution"]["main_arena"]["method"] == "%s lea" % anchor
        assert doc["resolution"]["mp_"]["method"] == ".data initialiser"
    mi, kind = oracle_mallinfo(t.lines)
    got = {k: doc["mallinfo2"][k] for k in FIELDS}
    if kind == "mallinfo":      # int fields
        got = {k: v & 0xffffffff for k, v in got.items()}
    assert got == mi
    if stats:
        ar, tot = oracle_stats(t.stderr_text())
        ms = doc["malloc_stats"]
        assert [(a["system_bytes"], a["in_use_bytes"]) for a in ms["arenas"]] == ar
        assert (ms["total_system_bytes"], ms["total_in_use_bytes"], ms["max_mmap_regions"],
                ms["max_mmap_bytes"]) == tot
    # fastbins exist where the version's malloc_info reports them
    assert doc["glibc"]["fastbins"] == any(
        x.startswith('<total type="fast"') for x in oracle_malloc_info(t.lines))
    # the shape mallocs builds: 5 arenas, one thread arena of 2 heaps,
    # 3 mmapped chunks, all found by the scan
    assert len(doc["arenas"]) == 5 and doc["arenas"][0]["main"]
    assert sorted(a["nheaps"] for a in doc["arenas"]) == [1, 1, 1, 1, 2]
    assert doc["mmapped"]["chunks"] == 3
    found = doc["mmapped"]["found"]
    assert (found["chunks"], found["bytes"]) == (3, doc["mmapped"]["bytes"]), found
    # every arena walked, its parts adding up; each worker's arena holds
    # what the worker says it holds
    live = {p[1]: (int(p[2]), int(p[3])) for p in (x.split() for x in t.lines)
            if p and p[0] == "LIVE"}
    names = t.names()
    unclaimed = []
    for a in doc["arenas"]:
        w = a["walked"]
        assert w["complete"], a
        assert (w["app"]["bytes"] + w["tcache"]["bytes"] + a["fast"]["bytes"]
                + a["binned"]["bytes"] + a["top_bytes"] + w["overhead_bytes"]) == a["system_mem"]
        if not a["main"] and w["threads"]:
            (tid,) = w["threads"]
            assert (w["app"]["chunks"], w["app"]["bytes"]) == live.pop(names[tid]), (a, live)
        elif not a["main"]:
            unclaimed.append((w["app"]["chunks"], w["app"]["bytes"]))
    # an arena none of whose threads has a tcache there: bigheap only frees
    # 1 MiB chunks, which 2.43 never puts in a tcache, so it never made one
    if not lost:
        assert sorted(unclaimed) == sorted(live.values())
    assert {x["tid"] for x in doc["tcaches"]} == set(t.tids())
    for x in doc["tcaches"]:
        assert x["unknown"] == (x["tid"] in lost), x
        if x["addr"] is None and not x["unknown"]:
            assert names[x["tid"]] in live, x


def check_views(t, g):
    """The other views exit 0 on this version; malloc-info is the
    process's own XML, line for line."""
    dbg = g["debug_dir"]
    r = run_pmprof("heap", "malloc-info", "-p", t.pid, env=HIDDEN, check=True)
    assert r.stdout.splitlines() == oracle_malloc_info(t.lines)
    r = run_pmprof("heap", "check", "-p", t.pid, "--debug-dir", dbg, env=HIDDEN, check=True)
    assert "OK: every list is consistent and every arena adds up" in r.stdout
    r = run_pmprof("heap", "arenas", "-p", t.pid, env=HIDDEN, check=True)
    assert len(re.findall(r"^\s+heap 0x[0-9a-f]+  size", r.stdout, re.M)) == 5
    r = run_pmprof("heap", "bins", "-p", t.pid, env=HIDDEN, check=True)
    assert re.search(r"^\s+unsorted\s+1\s", r.stdout, re.M), r.stdout
    r = run_pmprof("heap", "sizes", "--top", 3, "-p", t.pid, env=HIDDEN, check=True)
    assert re.search(r"^\s+1048592\s+67\s+70255664\s", r.stdout, re.M), r.stdout
    r = run_pmprof("heap", "tcache", t.pid, "-p", t.pid, env=HIDDEN, check=True)
    assert r.stdout.startswith("thread %d: tcache 0x" % t.pid), r.stdout
    top = heap_json("-p", t.pid)["arenas"][0]["top"]
    r = run_pmprof("heap", "chunk", "0x%x" % (int(top, 16) + 100), "-p", t.pid, env=HIDDEN,
                   check=True)
    assert "is in chunk %s" % top in r.stdout and r.stdout.rstrip().endswith(": top")


@pytest.mark.parametrize("name", GLIBC_NAMES)
def test_heap_cli_live_and_core(name, target, tmp_path):
    g, exe = mallocs(name)
    t = target(exe)
    for dbg in (g["debug_dir"], None):
        check(heap_json("-p", t.pid, dbg=dbg), t, g, dbg)
    check_views(t, g)
    core = gcore(t.pid, tmp_path)
    for dbg in (g["debug_dir"], None):
        check(heap_json("--core", core, dbg=dbg, check=None), t, g, dbg, core=core, exe=exe)
    r = run_pmprof("heap", "malloc-info", "--core", core, env=HIDDEN, check=True)
    assert r.stdout.splitlines() == oracle_malloc_info(t.lines)
    assert t.tracer() == 0


@pytest.mark.parametrize("name", GLIBC_NAMES)
def test_heap_gdb_live_and_core(name, target, tmp_path):
    g, exe = mallocs(name)
    t = target(exe)
    r = gdb_run("pmprof heap --format json", pid=t.pid, iex=GDB_NODEBUG)
    check(gdb_json(r), t, g, None)
    core = gcore(t.pid, tmp_path)
    r = gdb_run("pmprof heap --format json", exe=exe, core=core,
                iex=["set debug-file-directory %s" % g["debug_dir"]])
    check(gdb_json(r), t, g, g["debug_dir"], core=core, exe=exe)
    r = gdb_run("pmprof heap --format json", exe=exe, core=core, iex=GDB_NODEBUG)
    check(gdb_json(r), t, g, None, core=core, exe=exe)
    assert t.alive() and t.tracer() == 0


@pytest.mark.parametrize("name", GLIBC_NAMES)
def test_heap_kernel_core(name, tmp_path):
    """A kernel core (mallocs --gencore aborts once its report is out),
    with and without the version's debug info: the same figures as the
    process printed, every thread's TLS there (unlike gcore's on 2.43),
    and malloc-info line for line."""
    g, exe = mallocs(name)
    out = []
    core, _ = kernel_core(exe, tmpdir=tmp_path, stdout=out)
    mi, kind = oracle_mallinfo(out)
    live = sorted((int(p[2]), int(p[3])) for p in (x.split() for x in out)
                  if p and p[0] == "LIVE")
    for dbg in (g["debug_dir"], None):
        doc = heap_json("--core", core, "--exe", exe, dbg=dbg)
        assert doc["errors"] == [] and doc["glibc"]["layout"].startswith(
            "table %s x86_64" % g["name"].split("-", 1)[1])
        got = {k: doc["mallinfo2"][k] for k in FIELDS}
        if kind == "mallinfo":
            got = {k: v & 0xffffffff for k, v in got.items()}
        assert got == mi
        assert sorted((a["walked"]["app"]["chunks"], a["walked"]["app"]["bytes"])
                      for a in doc["arenas"] if not a["main"]) == live
        assert not any(t["unknown"] for t in doc["tcaches"])
        assert sum(1 for t in doc["tcaches"] if t["addr"]) >= 4     # main + 3 workers
    r = run_pmprof("heap", "malloc-info", "--core", core, "--exe", exe, env=HIDDEN, check=True)
    assert r.stdout.splitlines() == oracle_malloc_info(out)


def expected_tcache(sizes, count, large_below):
    """The tcache a worker's frees leave (nothing allocates after them):
    the first `count` chunks of each bin.  Small bins: one chunk size,
    up to 1040 bytes, on every version.  glibc 2.42+ also has large bins
    for chunks below mp_.tcache_max_bytes (large_below; 0: none), one per
    power of two (the first from 1056): {smallest size of the bin:
    (count, bytes)}."""
    bins = {}
    for cs in sizes:
        if cs <= 1040:
            key = cs
        elif cs < large_below:
            key = 1056 if cs < 2048 else 1 << (cs.bit_length() - 1)
        else:
            continue
        n, b = bins.get(key, (0, 0))
        if n < count:
            bins[key] = (n + 1, b + cs)
    return bins


@pytest.mark.parametrize("name", GLIBC_NAMES)
def test_heap_worker_tcache_through_tls(name, target):
    """Each worker's tcache, found through its own thread pointer, holds
    exactly the first tcache_count chunks of each bin it freed into.  The
    test sets the count, and asks for tcache bins up to 4096 bytes (only
    glibc 2.42+ has the large bins that honour it; gdb reads the
    resulting mp_.tcache_max_bytes with the version's debug info), so the
    truth does not depend on a version's defaults."""
    g, exe = mallocs(name)
    t = target(exe, env=dict(ENV, GLIBC_TUNABLES="glibc.malloc.tcache_count=5:"
                                                 "glibc.malloc.tcache_max=4096"))
    freed = {p[1]: [int(x) for x in p[2:]] for p in (x.split() for x in t.lines)
             if p and p[0] == "FREED"}
    assert len(freed) == 3 and all(len(v) == 500 for v in freed.values())
    version = tuple(int(x) for x in g["name"].split("-", 1)[1].split("."))
    large_below = 0
    if version >= (2, 42):
        r = gdb_run("p mp_.tcache_max_bytes", pid=t.pid, source=False,
                    iex=["set debug-file-directory %s" % g["debug_dir"]])
        large_below = int(re.search(r"^\$1 = (\d+)$", r.stdout, re.M).group(1))
        assert large_below == 4113, r.stdout        # request2size(4096) + 1
    for dbg in (g["debug_dir"], None):
        doc = heap_json("-p", t.pid, dbg=dbg)
        assert doc["errors"] == [] and doc["mp_"]["tcache_count"] == 5
        names = t.names()
        tcs = {names[x["tid"]]: x for x in doc["tcaches"]}
        for worker, sizes in freed.items():
            tc = tcs[worker]
            assert tc["addr"] and tc["arena"] not in (None, 0), tc
            want = expected_tcache(sizes, 5, large_below)
            got = {b["chunk_size"]: (b["count"], b["bytes"]) for b in tc["bins"]}
            assert got == want, worker
            assert {b["chunk_size"] for b in tc["bins"] if b.get("large")} == {
                k for k in want if k > 1040}
            assert (tc["chunks"], tc["bytes"]) == (sum(n for n, _ in want.values()),
                                                  sum(b for _, b in want.values()))
            # the worker's arena: its tcache chunks are the worker's
            a = doc["arenas"][tc["arena"]]
            assert a["walked"]["tcache"] == {"chunks": tc["chunks"], "bytes": tc["bytes"]}
    r = run_pmprof("heap", "tcache", t.tid_of("worker-0"), "-p", t.pid, env=HIDDEN, check=True)
    assert r.stdout.startswith("thread %d: tcache 0x" % t.tid_of("worker-0")), r.stdout
    if large_below:
        assert re.search(r"^  >=  2048 bytes x 5 \(\d+ bytes\)$", r.stdout, re.M), r.stdout


@pytest.mark.parametrize("name", GLIBC_NAMES)
def test_heap_corrupt_is_reported_not_fatal(name, target):
    g, exe = mallocs(name)
    t = target(exe, "corrupt")
    r = run_pmprof("heap", "-p", t.pid, env=HIDDEN, timeout=30)
    assert r.returncode == 1, r.stderr
    assert "partial result" in r.stderr
    assert re.search(r"^  0x4141414141414140 arena 0x[0-9a-f]+ bin 1: unreadable chunk$",
                     r.stdout, re.M), r.stdout
    doc = heap_json("-p", t.pid, check=1)
    if doc["glibc"]["fastbins"]:    # the 48-byte fastbin made a loop
        assert re.search(r"^  0x[0-9a-f]+ arena 0x[0-9a-f]+ fastbin 1: loop$", r.stdout,
                         re.M), r.stdout
    assert t.alive() and t.tracer() == 0


def patched_libc(g, tmp_path, banner):
    """A copy of glibc g's libc whose banner names another version
    (nothing else changed: same code, same build-id, so g's DWARF still
    matches it), in a directory for LD_LIBRARY_PATH."""
    libdir = tmp_path / "lib"
    libdir.mkdir()
    src = os.path.join(g["libdir"], "libc.so.6")
    data = bytearray(open(os.path.realpath(src), "rb").read())
    old = ("release version %s" % g["name"].split("-", 1)[1]).encode()
    new = ("release version %s" % banner).encode()
    assert data.count(old) == 1 and len(new) == len(old)
    data[data.index(old):data.index(old) + len(old)] = new
    (libdir / "libc.so.6").write_bytes(bytes(data))
    return str(libdir)


def test_heap_refuses_a_version_without_a_row(target, tmp_path):
    """glibc 2.43's libc with the banner of a 2.99: the process runs on
    it, and pmprof heap refuses it by name in one line (exit 2), with and
    without 2.43's DWARF; commands that need no malloc layout still work."""
    g, exe = mallocs("glibc-2.43")
    libdir = patched_libc(g, tmp_path, "2.99")
    t = target(exe, env=dict(ENV, LD_LIBRARY_PATH=libdir))
    assert os.path.join(libdir, "libc.so.6") in open("/proc/%d/maps" % t.pid).read()
    for dbg in (g["debug_dir"], None):
        extra = ["--debug-dir", dbg] if dbg else []
        r = run_pmprof("heap", "-p", t.pid, *extra, env=HIDDEN)
        assert r.returncode == 2, (r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "glibc 2.99 " in lines[0], r.stderr
        assert "Traceback" not in r.stderr and r.stdout == ""
    r = run_pmprof("threads", "-p", t.pid, env=HIDDEN, check=True)
    assert str(t.pid) in r.stdout
    assert t.alive() and t.tracer() == 0


def test_heap_a_lying_banner_gives_no_figures(target, tmp_path):
    """glibc 2.43's libc with the banner of 2.36, whose row is wrong for
    it: with 2.43's DWARF the row is refused, the differing member named;
    without it the 2.36 row finds no mp_ initialiser / arena ring of its
    shape there: refused too.  Never a figure."""
    g, exe = mallocs("glibc-2.43")
    libdir = patched_libc(g, tmp_path, "2.36")
    t = target(exe, env=dict(ENV, LD_LIBRARY_PATH=libdir))
    r = run_pmprof("heap", "-p", t.pid, "--debug-dir", g["debug_dir"], env=HIDDEN)
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    assert re.search(r"libc's DWARF .* the 2\.36 table", r.stderr), r.stderr
    r = run_pmprof("heap", "-p", t.pid, env=HIDDEN)
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    assert "cannot find glibc's" in r.stderr, r.stderr
    assert t.alive() and t.tracer() == 0


def test_the_table_names_every_version_of_the_matrix():
    """Every glibc the matrix runs has a row (and no row without a run)."""
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "ext", "layouts", "layout-glibc-malloc.h")) as f:
        rows = re.findall(r'\.version = "([0-9.]+)"', f.read())
    assert sorted(rows) == sorted(n.split("-", 1)[1] for n in GLIBC_NAMES)
