"""A thread's tcache_perthread_struct in a chunk larger than the struct
needs is a valid tcache (seen on mariadb: a 0x2a0 chunk holding glibc
2.36's 0x290 struct), on every glibc of the version matrix.

tests/targets/tcachebig.c (one arena) frees many chunks of SIZE, then a
new thread's first malloc makes glibc's tcache_init take one of them
whole; the program prints each of those chunks that is in use again, with
glibc's own malloc_usable_size().  The worker's tcache, as pmprof finds it
through the thread's TLS, must be one of them, of SIZE bytes, which the
version's own DWARF says is more than the struct needs; and heap check
must find nothing wrong, live and from a core, with and without the
version's debug info."""

import json
import re

import pytest

from conftest import gcore, gdb_run, run_pmprof
from test_heap_versions import FLAGS, HIDDEN
from versions import GLIBC_NAMES, build_c, entry

# The struct's chunk + 16: _int_malloc gives it whole (the rest would be
# under MINSIZE).  2.43's thread tcache asks for 0x300.
SIZE = {"glibc-2.31": 0x2a0, "glibc-2.36": 0x2a0, "glibc-2.41": 0x2a0, "glibc-2.43": 0x310}


def struct_chunk(g, pid):
    """request2size(sizeof(tcache_perthread_struct)), from the version's DWARF."""
    r = gdb_run("p sizeof(tcache_perthread_struct)", pid=pid, source=False,
                iex=["set debug-file-directory %s" % g["debug_dir"]])
    n = int(re.search(r"^\$1 = (\d+)$", r.stdout, re.M).group(1))
    return (n + 8 + 15) & ~15


def check_doc(doc, worker, inuse, size):
    assert doc["errors"] == [], doc["errors"]
    tc = [x for x in doc["tcaches"] if x["tid"] == worker][0]
    addr = int(tc["addr"], 16)
    assert inuse.get(addr) == size - 8, (hex(addr), inuse)
    assert tc["arena"] == 0 and len(doc["arenas"]) == 1
    # the worker freed the 24-byte block it malloc'd: one 32-byte chunk
    assert [(b["chunk_size"], b["count"]) for b in tc["bins"]] == [(32, 1)]
    return addr


@pytest.mark.parametrize("name", GLIBC_NAMES)
def test_heap_tcache_in_a_larger_chunk(name, target, tmp_path):
    g = entry(name)
    exe = build_c(g, "tcachebig.c", "tcachebig", FLAGS)
    size = SIZE[name]
    t = target(exe, "0x%x" % size)
    inuse = {int(p[1], 16): int(p[2]) for p in (x.split() for x in t.lines)
             if p and p[0] == "INUSE"}
    worker = t.tid_of("worker")
    assert size > struct_chunk(g, t.pid), "the layout does not reproduce it"
    cases = [("-p", t.pid)]
    if name != "glibc-2.43":
        # gcore of a 2.43 process has no thread TLS (docs/heap.md)
        cases.append(("--core", gcore(t.pid, tmp_path)))
    for where in cases:
        for dbg in ([], ["--debug-dir", g["debug_dir"]]):
            r = run_pmprof("heap", "--format", "json", *where, *dbg, env=HIDDEN)
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr
            addr = check_doc(json.loads(r.stdout), worker, inuse, size)
        r = run_pmprof("heap", "check", *where, env=HIDDEN)
        assert r.returncode == 0 and "does not point to a tcache" not in r.stdout, r.stdout
        assert " - OK: every list is consistent and every arena adds up" in r.stdout
        r = run_pmprof("heap", "chunk", "0x%x" % addr, *where, env=HIDDEN, check=True)
        assert r.stdout.startswith("0x%x is in chunk 0x%x (size %d, " % (
            addr, addr - 16, size)) and r.stdout.rstrip().endswith(": tcache struct"), r.stdout
    assert t.alive() and t.tracer() == 0
