"""pmprof heap against tests/targets/mallocs.c, which prints its own
mallinfo2() and malloc_stats() once its heap is in place (the oracle):
pmprof's figures must equal them exactly, live (standalone and in gdb),
from gcore and kernel cores, with libc's debug info visible and hidden.
A damaged heap gives listed problems with addresses, never a hang."""

import json
import os
import re

import pytest

from conftest import ENV, ROOT, gcore, gdb_run, kernel_core, run_pmprof

SCHEMA = os.path.join(ROOT, "docs", "schemas", "pmprof.heap-1.schema.json")
FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
          "uordblks", "fordblks", "keepcost")
HIDDEN = dict(ENV, PMPROF_DEBUG_PATH="/nonexistent")


def oracle_mallinfo(lines):
    line = [x for x in lines if x.startswith("MALLINFO2 ")][0]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def oracle_stats(stderr):
    """malloc_stats(): per arena (system, in use), then the totals."""
    ar = [(int(a), int(b)) for a, b in re.findall(
        r"Arena \d+:\nsystem bytes\s+=\s+(\d+)\nin use bytes\s+=\s+(\d+)", stderr)]
    tot = re.search(r"Total \(incl. mmap\):\nsystem bytes\s+=\s+(\d+)\nin use bytes\s+=\s+(\d+)\n"
                    r"max mmap regions\s+=\s+(\d+)\nmax mmap bytes\s+=\s+(\d+)", stderr)
    return ar, tuple(int(x) for x in tot.groups())


def check(doc, mi, stats=None):
    jsonschema = pytest.importorskip("jsonschema")
    with open(SCHEMA) as f:
        jsonschema.validate(doc, json.load(f))
    assert doc["errors"] == []
    assert {k: doc["mallinfo2"][k] for k in FIELDS} == mi
    if stats is not None:
        ar, tot = stats
        ms = doc["malloc_stats"]
        assert [(a["system_bytes"], a["in_use_bytes"]) for a in ms["arenas"]] == ar
        assert (ms["total_system_bytes"], ms["total_in_use_bytes"], ms["max_mmap_regions"],
                ms["max_mmap_bytes"]) == tot
    # the shape the target built: 5 arenas, one thread arena with 2 heaps
    assert len(doc["arenas"]) == 5 and doc["arenas"][0]["main"]
    assert sorted(a["nheaps"] for a in doc["arenas"]) == [1, 1, 1, 1, 2]
    assert doc["mmapped"]["chunks"] == 3
    found = doc["mmapped"]["found"]
    if found is not None:   # the scan of anonymous mappings finds them all
        assert (found["chunks"], found["bytes"]) == (3, doc["mmapped"]["bytes"]), found
    main = doc["arenas"][0]
    kinds = {b["kind"] for b in main["bins"]}
    assert main["fast"]["chunks"] > 0 and {"unsorted", "small", "large"} <= kinds, main


def test_heap_live_equals_mallinfo2_and_malloc_stats(target):
    t = target("mallocs")
    mi = oracle_mallinfo(t.lines)
    r = run_pmprof("heap", "-p", t.pid, "--format", "json", check=True)
    doc = json.loads(r.stdout)
    check(doc, mi, oracle_stats(t.stderr_text()))
    assert doc["resolution"]["main_arena"]["method"].startswith("symbol")
    assert doc["glibc"]["layout"] == "table 2.36 x86_64, checked against libc's DWARF"
    # libc's debug info hidden: found from code and data, same figures
    r = run_pmprof("heap", "-p", t.pid, "--format", "json", env=HIDDEN, check=True)
    doc = json.loads(r.stdout)
    check(doc, mi, oracle_stats(t.stderr_text()))
    assert doc["resolution"]["main_arena"]["method"] == "mallinfo2 lea"
    assert doc["resolution"]["mp_"]["method"] == ".data initialiser"
    assert doc["glibc"]["layout"] == "table 2.36 x86_64"
    assert t.tracer() == 0


def test_heap_walk_splits_every_arena_exactly(target):
    """Every chunk walked: app in use + tcache + fastbins + bins + top +
    overhead = system_mem per arena, and each worker's arena holds exactly
    the chunks (and bytes) the worker says it still holds."""
    t = target("mallocs")
    live = {p[1]: (int(p[2]), int(p[3])) for p in (x.split() for x in t.lines)
            if p[0] == "LIVE"}
    doc = json.loads(run_pmprof("heap", "-p", t.pid, "--format", "json", check=True).stdout)
    check(doc, oracle_mallinfo(t.lines))
    names = t.names()
    for a in doc["arenas"]:
        w = a["walked"]
        assert w["complete"]
        assert (w["app"]["bytes"] + w["tcache"]["bytes"] + a["fast"]["bytes"]
                + a["binned"]["bytes"] + a["top_bytes"] + w["overhead_bytes"]) == a["system_mem"]
        if not a["main"]:
            (tid,) = w["threads"]
            assert (w["app"]["chunks"], w["app"]["bytes"]) == live[names[tid]], (a, live)
    # mallinfo2's "in use" is app + tcache + overhead, summed
    assert doc["mallinfo2"]["uordblks"] == sum(
        a["walked"]["app"]["bytes"] + a["walked"]["tcache"]["bytes"]
        + a["walked"]["overhead_bytes"] for a in doc["arenas"])
    tc = {x["tid"]: x for x in doc["tcaches"]}
    assert set(tc) == set(t.tids())
    assert all(sum(b["count"] for b in x["bins"]) == x["chunks"] for x in tc.values())
    # sizes: the histogram covers every walked chunk
    assert sum(z["used"] + z["free"] + z["cached"] for z in doc["sizes"]) + sum(
        1 for x in tc.values() if x["addr"]) == sum(a["walked"]["chunks"] for a in doc["arenas"])


def test_heap_views(target):
    t = target("mallocs")
    r = run_pmprof("heap", "check", "-p", t.pid, check=True)
    assert "OK: every list is consistent and every arena adds up" in r.stdout
    main_tid = t.pid
    r = run_pmprof("heap", "tcache", main_tid, "-p", t.pid, check=True)
    assert r.stdout.startswith("thread %d: tcache 0x" % main_tid)
    assert re.search(r"^\s+48 bytes x 7$", r.stdout, re.M), r.stdout
    r = run_pmprof("heap", "sizes", "--top", 3, "-p", t.pid, check=True)
    assert re.search(r"^\s+1048592\s+67\s+70255664\s", r.stdout, re.M), r.stdout
    doc = json.loads(run_pmprof("heap", "-p", t.pid, "--format", "json").stdout)
    top = doc["arenas"][0]["top"]
    r = run_pmprof("heap", "chunk", "0x%x" % (int(top, 16) + 100), "-p", t.pid, check=True)
    assert "is in chunk %s" % top in r.stdout and r.stdout.rstrip().endswith(": top")
    r = run_pmprof("heap", "chunk", "0x10", "-p", t.pid, check=True)
    assert "is not inside any arena's heap" in r.stdout
    r = run_pmprof("heap", "chunk", "-p", t.pid)
    assert r.returncode == 64


def oracle_malloc_info(lines):
    i = lines.index('<malloc version="1">')
    return lines[i:lines.index("</malloc>", i) + 1]


def test_heap_malloc_info_xml_equals_the_process_own(target, tmp_path):
    """Line for line, the XML the process's malloc_info() wrote."""
    t = target("mallocs")
    want = oracle_malloc_info(t.lines)
    assert len(want) > 40
    for env in (ENV, HIDDEN):
        r = run_pmprof("heap", "malloc-info", "-p", t.pid, env=env, check=True)
        assert r.stdout.splitlines() == want
    core = gcore(t.pid, tmp_path)
    r = run_pmprof("heap", "malloc-info", "--core", core, check=True)
    assert r.stdout.splitlines() == want


def test_heap_text(target):
    t = target("mallocs")
    mi = oracle_mallinfo(t.lines)
    r = run_pmprof("heap", "-p", t.pid, check=True)
    assert r.stdout.startswith("glibc 2.36 malloc - ")
    assert "layout: table 2.36 x86_64, checked against libc's DWARF" in r.stdout.splitlines()[0]
    assert "5 arenas - 3 mmapped chunks (9.0M), all found - integrity: OK" in r.stdout
    assert "mallinfo2   " + " ".join("%s=%d" % (k, mi[k]) for k in FIELDS) in r.stdout
    r = run_pmprof("heap", "bins", "-p", t.pid, check=True)
    assert re.search(r"^\s+fast\s+-\s+\d+\s+\d+\s+48\s+48$", r.stdout, re.M), r.stdout
    r = run_pmprof("heap", "arenas", "-p", t.pid, check=True)
    assert len(re.findall(r"^\s+heap 0x[0-9a-f]+  size", r.stdout, re.M)) == 5
    assert "each arena's row adds up to its system bytes" in run_pmprof(
        "heap", "-p", t.pid).stdout


def test_heap_in_gdb_live_and_core(target, tmp_path):
    t = target("mallocs")
    mi = oracle_mallinfo(t.lines)
    r = gdb_run("pmprof heap --format json", pid=t.pid)
    assert "Traceback" not in r.stderr
    check(json.loads(r.stdout[r.stdout.index("{"):r.stdout.rindex("}") + 1]), mi,
          oracle_stats(t.stderr_text()))
    core = gcore(t.pid, tmp_path)
    for env in (ENV, HIDDEN):
        r = run_pmprof("heap", "--core", core, "--format", "json", env=env, check=True)
        check(json.loads(r.stdout), mi, oracle_stats(t.stderr_text()))
    r = gdb_run("pmprof heap --format json", exe=t.exe, core=core,
                iex=["set debug-file-directory /nonexistent"])
    doc = json.loads(r.stdout[r.stdout.index("{"):r.stdout.rindex("}") + 1])
    check(doc, mi)
    assert doc["resolution"]["main_arena"]["method"] == "mallinfo2 lea"


def test_heap_kernel_core(tmp_path):
    out = []
    core, exe = kernel_core("mallocs", tmpdir=tmp_path, stdout=out)
    r = run_pmprof("heap", "--core", core, "--exe", exe, "--format", "json", check=True)
    check(json.loads(r.stdout), oracle_mallinfo(out))


def test_heap_corrupt_is_reported_not_fatal(target):
    t = target("mallocs", "corrupt")
    r = run_pmprof("heap", "-p", t.pid, timeout=30)
    assert r.returncode == 1, r.stderr
    assert re.search(r"^  0x[0-9a-f]+ arena 0x[0-9a-f]+ fastbin 1: loop$", r.stdout, re.M), r.stdout
    assert re.search(r"^  0x4141414141414140 arena 0x[0-9a-f]+ bin 1: unreadable chunk$",
                     r.stdout, re.M), r.stdout
    assert "partial result" in r.stderr
    doc = json.loads(run_pmprof("heap", "-p", t.pid, "--format", "json").stdout)
    assert len(doc["errors"]) == 2
    assert t.alive() and t.tracer() == 0


def test_heap_refuses_clearly(target, tmp_path):
    t = target("threads-static")
    r = run_pmprof("heap", "-p", t.pid)
    assert r.returncode == 2
    assert "no libc.so in the process" in r.stderr and "Traceback" not in r.stderr


def test_big_heap_summary_agrees_with_the_list_walk(tmp_path):
    """mallocs big N: a main arena of N small chunks (every 7th freed: full
    tcaches, long fastbins and an unsorted list of ~N/14 chunks), large
    enough that the summary's 4 MiB windows move many times inside free
    chunks.  The summary (bins from the chunk walk, the unsorted list
    followed through the words it recorded) must give exactly the bins
    and mallinfo2 figures of `heap check`, which follows every list
    through the target's memory; live and from a gcore core."""
    from conftest import TARGETS, Target, gcore  # noqa: F401
    import subprocess
    p = subprocess.Popen([os.path.join(TARGETS, "mallocs"), "--timeout", "120", "big",
                          "300000"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "READY"

        def both(*target):
            s = json.loads(run_pmprof("heap", *target, "--format", "json",
                                      check=True).stdout)
            c = json.loads(run_pmprof("heap", "check", *target, "--format", "json",
                                      check=True).stdout)
            return s, c

        core = gcore(p.pid, tmp_path)
        for target in (("-p", p.pid), ("--core", core)):
            s, c = both(*target)
            assert s["errors"] == [] and c["errors"] == [], (s["errors"], c["errors"])
            assert s["mallinfo2"] == c["mallinfo2"]
            main_s, main_c = s["arenas"][0], c["arenas"][0]
            assert main_s["bins"] == main_c["bins"]
            unsorted = [b for b in main_s["bins"] if b["kind"] == "unsorted"]
            assert unsorted and unsorted[0]["count"] > 10000, main_s["bins"][:3]
    finally:
        p.kill()
        p.wait()
