"""pmprof heap on a process whose malloc is not glibc's: it names the
allocator in one line (exit 2) in every view, text and JSON, live and
from a gcore core, in the CLI and in gdb, instead of printing glibc's
untouched main_arena as an empty heap.

tests/targets/allocators.c prints which module defines the malloc it
calls (dladdr): the test first checks that the process really allocates
elsewhere (or, for the glibc build, in libc), then what pmprof says.
Built here against Debian's libjemalloc-dev, libgoogle-perftools-dev
(tcmalloc) and libmimalloc-dev (Makefile DEB_PACKAGES): shared, static
(jemalloc: its symbols, then stripped: only its messages are left), and
a glibc build run with LD_PRELOAD=libjemalloc.so.2."""

import json
import os
import subprocess

import pytest

from conftest import ENV, ROOT, gcore, gdb_run, run_pmprof

SRC = os.path.join(ROOT, "tests", "targets", "allocators.c")
LIB = "/usr/lib/x86_64-linux-gnu"
SCHEMA = os.path.join(ROOT, "docs", "schemas", "pmprof.heap-1.schema.json")
VIEWS = (["summary"], ["arenas"], ["bins"], ["tcache"], ["sizes"], ["chunk", "0x1000"],
         ["check"], ["malloc-info"])

# name: (allocator, link flags, the file that must exist, the Debian package)
BUILDS = {
    "glibc": (None, [], None, None),
    "jemalloc": ("jemalloc", ["-ljemalloc"], LIB + "/libjemalloc.so", "libjemalloc-dev"),
    "jemalloc-static": ("jemalloc", [LIB + "/libjemalloc_pic.a", "-lm", "-ldl", "-lstdc++"],
                        LIB + "/libjemalloc_pic.a", "libjemalloc-dev"),
    "jemalloc-static-stripped": ("jemalloc", None, LIB + "/libjemalloc_pic.a",
                                 "libjemalloc-dev"),
    "tcmalloc": ("tcmalloc", ["-ltcmalloc"], LIB + "/libtcmalloc.so",
                 "libgoogle-perftools-dev"),
    "tcmalloc-minimal": ("tcmalloc", ["-ltcmalloc_minimal"], LIB + "/libtcmalloc_minimal.so",
                         "libgoogle-perftools-dev"),
    "mimalloc": ("mimalloc", ["-lmimalloc"], LIB + "/libmimalloc.so", "libmimalloc-dev"),
}
PRELOAD = LIB + "/libjemalloc.so.2"


@pytest.fixture(scope="module")
def bindir(tmp_path_factory):
    return tmp_path_factory.mktemp("allocators")


def build(bindir, name):
    alloc, flags, need, pkg = BUILDS[name]
    if need and not os.path.exists(need):
        pytest.skip("%s is not installed (%s missing): make deps" % (pkg, need))
    exe = str(bindir / name)
    if os.path.exists(exe):
        return exe, alloc
    if flags is None:       # the stripped copy of the static build
        src, _ = build(bindir, name[:-len("-stripped")])
        subprocess.run(["strip", "-o", exe, src], check=True)
        return exe, alloc
    subprocess.run(["cc", "-g", "-O1", "-pthread", "-Wall", "-o", exe, SRC] + flags,
                   check=True, cwd=os.path.dirname(SRC))
    return exe, alloc


def malloc_module(t):
    """The file that defines the target's malloc, as it says itself."""
    line = [x for x in t.lines if x.startswith("MALLOC ")][0]
    return line.split(" ", 1)[1]


def check_refused(r, alloc, json_doc=False):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    if json_doc:
        doc = json.loads(r.stdout)
        assert doc["allocator"] == alloc and doc["refused"].startswith(
            "the process allocates with %s, not glibc's malloc (" % alloc), doc
        jsonschema = pytest.importorskip("jsonschema")
        with open(SCHEMA) as f:
            jsonschema.validate(doc, json.load(f))
        return doc
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and ("the process allocates with %s, not glibc's malloc (" % alloc
                                ) in lines[0], r.stderr
    assert r.stdout == ""
    return lines[0]


def refused_everywhere(where, alloc):
    for v in VIEWS:
        check_refused(run_pmprof("heap", *v, *where), alloc)
    doc = check_refused(run_pmprof("heap", *where, "--format", "json"), alloc, json_doc=True)
    check_refused(run_pmprof("heap", "check", *where, "--format", "json"), alloc,
                  json_doc=True)
    return doc


@pytest.mark.parametrize("name", [n for n in BUILDS if n != "glibc"])
def test_heap_names_another_allocator(name, bindir, target, tmp_path):
    exe, alloc = build(bindir, name)
    t = target(exe)
    mod = malloc_module(t)
    # the process's own word: its malloc is not libc's
    assert "libc.so" not in os.path.basename(mod), mod
    if "static" in name:
        assert os.path.basename(mod) == name, mod
    else:
        assert alloc in os.path.basename(mod), mod
    doc = refused_everywhere(["-p", t.pid], alloc)
    want = {"jemalloc-static": "defines mallctl()",
            "jemalloc-static-stripped": 'holds its message "<jemalloc>: "'}.get(name, "is mapped")
    assert doc["evidence"].endswith(want), doc
    core = gcore(t.pid, tmp_path)
    doc = refused_everywhere(["--core", core], alloc)
    assert doc["evidence"].endswith(want), doc
    assert t.alive() and t.tracer() == 0


def test_heap_names_a_preloaded_jemalloc(bindir, target, tmp_path):
    exe, _ = build(bindir, "glibc")
    if not os.path.exists(PRELOAD):
        pytest.skip("libjemalloc2 is not installed (%s missing): make deps" % PRELOAD)
    t = target(exe, env=dict(ENV, LD_PRELOAD=PRELOAD))
    assert os.path.realpath(malloc_module(t)) == os.path.realpath(PRELOAD)
    doc = refused_everywhere(["-p", t.pid], "jemalloc")
    assert doc["evidence"] == "%s is mapped" % PRELOAD, doc
    refused_everywhere(["--core", gcore(t.pid, tmp_path)], "jemalloc")
    # in gdb: the same one line, live and from the core
    for kw in (dict(pid=t.pid), dict(exe=exe, core=str(tmp_path / ("core.%d" % t.pid)))):
        r = gdb_run("pmprof heap", "pmprof heap --format json", **kw)
        out = r.stdout + r.stderr
        assert out.count("the process allocates with jemalloc, not glibc's malloc (") == 2, out
        assert "arenas" not in out and "Traceback" not in out, out


def test_heap_reads_glibc_when_malloc_is_glibcs(bindir, target):
    """The control: the same program on glibc's malloc is read, exit 0,
    though libstdc++ and the rest are mapped too."""
    exe, _ = build(bindir, "glibc")
    t = target(exe)
    assert os.path.basename(malloc_module(t)).startswith("libc.so"), t.lines
    r = run_pmprof("heap", "-p", t.pid, "--format", "json", check=True)
    doc = json.loads(r.stdout)
    assert doc["allocator"] == "glibc-ptmalloc2" and doc["errors"] == []
    assert doc["mallinfo2"]["uordblks"] > 4096 * 16
