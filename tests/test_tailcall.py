"""Tail-call frames: the functions that left by a tail call, rebuilt from
DWARF call sites exactly where gdb rebuilds them.

The truth is gdb itself: its Python API walks every thread's frames and
says which are tail-call frames (gdb.TAILCALL_FRAME; `bt` prints them like
any other).  Per thread, pmprof's whole frame sequence (function names,
inline frames included, and which frames are tail calls) must equal gdb's,
live and on a core, with and without libc's debug info, in the CLI and
inside gdb.  targets/tailcall.c and tailcall_cxx.cpp (-O2) park threads
behind unique chains of tail calls, two different tail-call routes (gdb
shows none of them), and a tail call through a pointer (no static target:
none); every condition-variable and join wait in glibc 2.36 also passes
through one (__futex_abstimed_wait_cancelable64).
"""

import json
import os
import re

import pytest

from conftest import ENV, gcore, gdb_run, pprof_tool, run_pmprof
from test_stacks import same_function

# gdb's own walk: per thread, [name, is-tail-call] innermost first, past
# main (pmprof shows the frames below main too).
FRAMES_PY = r'''
import gdb, json
gdb.execute("set backtrace past-main on")
for inf in gdb.inferiors():
    for th in sorted(inf.threads(), key=lambda t: t.ptid[1]):
        th.switch()
        f = gdb.newest_frame()
        out = []
        while f is not None and len(out) < 300:
            out.append([f.name() or "??", f.type() == gdb.TAILCALL_FRAME])
            try:
                f = f.older()
            except gdb.error:
                break
        print("PMPTC %d %s" % (th.ptid[1], json.dumps(out)))
'''

# What the targets are built to show (a sanity floor: the comparison with
# gdb must not pass because neither rebuilt anything).
WANT_TAIL = {
    "chain-0": ["chain_c", "chain_b", "chain_a"],
    "single-0": ["single"],
    "member-0": ["tc::Worker::step", "tc::Worker::run"],
    "inline-0": ["inl_helper"],
}
NEVER = {"ambig-0": ["ambig_top", "ambig_x", "ambig_y"],
         "indirect": ["indirect_jump"]}


def _plain(name):
    """A C++ name as gdb's frame.name() has it: no parameter list, no
    return type ('int tc::park<int>(int)' -> 'tc::park<int>')."""
    if name.endswith(")"):
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(name[i], 0)
            if depth == 0:
                name = name[:i]
                break
    depth = 0
    cut = 0
    for i, c in enumerate(name):
        if c in "<(":
            depth += 1
        elif c in ">)":
            depth -= 1
        elif c == " " and depth == 0:
            cut = i + 1
    return name[cut:]


@pytest.fixture
def empty_dir(tmp_path):
    d = tmp_path / "no-debug"
    d.mkdir()
    return str(d)


def gdb_frames(tmp_path, debug, empty, **where):
    script = tmp_path / "frames.py"
    script.write_text(FRAMES_PY)
    iex = [] if debug else ["set debug-file-directory " + empty]
    r = gdb_run("source %s" % script, source=False, iex=iex, **where)
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^PMPTC (\d+) (.*)$", line)
        if m:
            out[int(m.group(1))] = [tuple(x) for x in json.loads(m.group(2))]
    assert out, r.stdout + r.stderr
    return out


def pmprof_frames(doc):
    out = {}
    for g in doc["stacks"]:
        out[g["threads"][0]["tid"]] = [
            (_plain(f["function"]) or "??", f["tail_call"], f["module"])
            for f in g["frames"]]
    return out


def pmprof_json(debug, empty, *where):
    env = dict(ENV)
    if not debug:
        env["PMPROF_DEBUG_PATH"] = empty
    r = run_pmprof("stacks", "--all", "--format", "json", *where, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def check_same(got, want, names):
    assert sorted(got) == sorted(want)
    for tid in want:
        g, w = got[tid], want[tid]
        assert len(g) == len(w) and all(
            gt == wt and same_function(mod, gf, wf)
            for (gf, gt, mod), (wf, wt) in zip(g, w)), (tid, names.get(tid), g, w)
    for tid, name in names.items():
        fs = want[tid]
        for fn in WANT_TAIL.get(name, []):
            assert (fn, True) in fs, (name, fs)
        for fn in NEVER.get(name, []):
            assert fn not in [f for f, _ in fs], (name, fs)


@pytest.mark.parametrize("name", ["tailcall", "tailcall-cxx"])
@pytest.mark.parametrize("debug", [True, False], ids=["libc-dbg", "no-libc-dbg"])
def test_live_equals_gdb(target, tmp_path, empty_dir, name, debug):
    t = target(name)
    names = t.names()
    want = gdb_frames(tmp_path, debug, empty_dir, pid=t.pid)
    got = pmprof_frames(pmprof_json(debug, empty_dir, "-p", t.pid))
    if debug:
        # libc's own tail call, in every cond-var and join wait
        for tid in want:
            assert ("__GI___futex_abstimed_wait_cancelable64", True) in want[tid]
    check_same(got, want, names)


@pytest.mark.parametrize("name", ["tailcall", "tailcall-cxx"])
@pytest.mark.parametrize("debug", [True, False], ids=["libc-dbg", "no-libc-dbg"])
def test_core_equals_gdb(target, tmp_path, empty_dir, name, debug):
    t = target(name)
    names = t.names()
    core = gcore(t.pid, tmp_path)
    want = gdb_frames(tmp_path, debug, empty_dir, exe=t.exe, core=core)
    got = pmprof_frames(pmprof_json(debug, empty_dir, "--core", core, "--exe", t.exe))
    check_same(got, want, names)


def test_inside_gdb_equals_gdb(target, tmp_path):
    t = target("tailcall")
    script = tmp_path / "frames.py"
    script.write_text(FRAMES_PY)
    r = gdb_run("pmprof stacks --all --format json", "source %s" % script, pid=t.pid)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    doc = json.loads(out[out.index("{"):out.rindex("}") + 1])
    want = {}
    for line in out.splitlines():
        m = re.match(r"^PMPTC (\d+) (.*)$", line)
        if m:
            want[int(m.group(1))] = [tuple(x) for x in json.loads(m.group(2))]
    check_same(pmprof_frames(doc), want, t.names())


def test_marked_in_text_and_pprof(target, tmp_path):
    """The tail-call frames of the JSON are the ones the text marks
    [tail call], and the ones the pprof snapshot names so."""
    t = target("tailcall")
    doc = pmprof_json(True, None, "-p", t.pid)
    tails = {(g["threads"][0]["tid"], i) for g in doc["stacks"]
             for i, f in enumerate(g["frames"]) if f["tail_call"]}
    assert tails
    r = run_pmprof("stacks", "--all", "-p", t.pid)
    assert r.returncode == 0, r.stderr
    marked = set()
    tid = None
    for line in r.stdout.splitlines():
        m = re.match(r"^1 thread: (\d+)", line)
        if m:
            tid = int(m.group(1))
        m = re.match(r"^  #(\d+)\s", line)
        if m and "[tail call]" in line:
            marked.add((tid, int(m.group(1))))
    assert marked == tails
    prof = tmp_path / "s.pb.gz"
    run_pmprof("snapshot", "-p", t.pid, "-o", prof, check=True)
    traces = pprof_tool("-traces", prof)
    named = {ln.strip() for ln in traces.splitlines() if "[tail call]" in ln}
    want = {f["function"] + " [tail call]" for g in doc["stacks"]
            for f in g["frames"] if f["tail_call"]}
    assert named == want


def test_record_has_the_frames(target, tmp_path):
    """`record` rebuilds the same frames (after the recording): every
    parked thread's stack in the folded file is its snapshot stack, tail
    calls marked as in text."""
    t = target("tailcall")
    doc = pmprof_json(True, None, "-p", t.pid)
    folded = tmp_path / "r.folded"
    r = run_pmprof("record", "-p", t.pid, "-d", "0.3", "-o", folded)
    assert r.returncode == 0, r.stderr
    lines = {ln.rsplit(" ", 1)[0] for ln in folded.read_text().splitlines()}
    names = t.names()
    for g in doc["stacks"]:
        if names[g["threads"][0]["tid"]] not in WANT_TAIL:
            continue
        want = ";".join(f["function"] + (" [tail call]" if f["tail_call"] else "")
                        for f in reversed(g["frames"]))
        assert want in lines, (want, sorted(lines))
