"""Go stacks on every Go release of the version matrix (tests/versions.py):
pmprof's per-thread Go frames against truths that are not pmprof.

goprog (tests/targets/goprog.go, --no-spin: every goroutine parked, the
threads quiet) is built by each release three ways: cgo with DWARF,
stripped (-ldflags='-s -w'), static (CGO_ENABLED=0).  The truths:

  gdb's own `bt`    plain gdb (no pmprof) on a gcore of the DWARF build:
                    every Go frame pmprof prints, function and file:line,
                    inlined calls included, is gdb's, in gdb's order; gdb
                    only adds the frames Go hides (go-statement wrappers)
                    and what lies past the end of a Go stack (past
                    goexit/mstart/mcall, where gdb walks into garbage);
  the program       goprog's own debug=2 dump: the thread blocked in
                    read(2) (extra.json syscall_tid) runs the goroutine in
                    main.parkSyscallRead, whose frames (function,
                    file:line) are the outer end of that thread's stack;
                    the stripped and static builds must show it too;
  go tool pprof     of the same release reads pmprof's snapshot profile;
  gochurn           record crosses runtime.systemstack into main.churn's
                    goroutine (the g/m offsets of the release).

GO_BEYOND (newer than every table): its pclntab has 1.26's magic and
format and its own table confirms 1.26's funcIDs, so stacks are read; they
must still equal gdb's.  Its g is not in the unwinder's table: a walk
reaching runtime.systemstack ends there marked "[unwind error]", never
with frames read at guessed offsets.
"""

import json
import os
import re
import shutil
import struct
import tempfile
from typing import Dict, List, Tuple

import pytest

from conftest import gcore, gdb_bt_threads, gdb_run, pprof_raw, require_ptrace, run_pmprof
from gotargets import parse_debug2
from helpers import Target
from versions import GO_BEYOND, GO_NAMES, build_go, entry, go_tool

pytestmark = [require_ptrace]

ALL_GO = GO_NAMES + [GO_BEYOND]
BUILDS = {"cgo": {}, "strip": {"ldflags": "-s -w"}, "static": {"cgo": False}}
MARKERS = ("[unwind error]", "[go: cannot unwind]", "[truncated]")
# Where Go's own traceback ends a stack (TOPFRAME functions; SPWRITE
# functions such as mcall, past which neither Go nor pmprof walks).
STACK_ENDS = ("runtime.goexit", "runtime.mstart", "runtime.rt0_go", "runtime.mcall",
              "runtime.morestack", "runtime.systemstack_switch")


def goprog(name: str, build: str) -> str:
    return build_go(entry(name), "goprog.go", "goprog", **BUILDS[build])


class Prog:
    """goprog --no-spin running, with what it wrote about itself."""

    def __init__(self, exe: str):
        self.dir = tempfile.mkdtemp(prefix="pmprof-gover-")
        self.target = Target(exe, ["--out", self.dir, "--no-spin"], settle=False)
        self.pid = self.target.pid
        self.exe = exe
        with open(os.path.join(self.dir, "goroutines.2.txt")) as f:
            self.dump = parse_debug2(f.read())
        with open(os.path.join(self.dir, "extra.json")) as f:
            self.extra = json.load(f)

    def close(self):
        try:
            self.target.check_unharmed()
        finally:
            self.target.kill()
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def run_prog():
    progs: List[Prog] = []

    def start(exe: str) -> Prog:
        p = Prog(exe)
        progs.append(p)
        return p
    yield start
    for p in progs:
        p.close()


def stacks_json(*args, beyond: bool = False) -> Dict[int, List[dict]]:
    """pmprof stacks --all --format json -> {tid: frames innermost first}.
    beyond (GO_BEYOND): a stack may end marked at the system stack, and
    the exit status then says the results are partial (1)."""
    r = run_pmprof("stacks", "--all", "--format", "json", *args, check=None)
    assert r.returncode in ((0, 1) if beyond else (0,)), (r.returncode, r.stderr)
    assert "warning" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    out = {}
    for st in doc["stacks"]:
        for th in st["threads"]:
            out[th["tid"]] = st["frames"]
    return out


def key(frames) -> List[Tuple[str, str, int]]:
    """(function, file basename, line) of pmprof's frames."""
    return [(f["function"], os.path.basename(f.get("file") or "?"), f.get("line") or 0)
            for f in frames]


SYSTEM_STACK_SWITCHES = ("runtime.systemstack", "runtime.morestack", "runtime.asmcgocall")


def check_ends(tid, frames, beyond: bool = False) -> List[dict]:
    """A Go stack ends where Go's traceback ends it, with no marker.  For
    a release the unwinder's g table does not name (beyond), a walk that
    must leave the system stack for the goroutine ends there instead,
    marked; returns the frames without that marker."""
    names = [f["function"] for f in frames]
    if (beyond and len(names) >= 2 and names[-1] == "[unwind error]" and
            names[-2] in SYSTEM_STACK_SWITCHES):
        frames, names = frames[:-1], names[:-1]
    else:
        assert names and names[-1] in STACK_ENDS, (tid, names)
    assert not any(n in MARKERS for n in names), (tid, names)
    return frames


def compare_with_gdb(tid, mine: List[dict], gdb_frames, outermost) -> None:
    """pmprof's frames of one thread against gdb's bt of the same thread:
    every frame pmprof prints is gdb's, in gdb's order.  gdb may have more
    only where Go hides frames: between a goroutine's outermost frame as
    the program's own dump shows it (`outermost`: those functions) and
    runtime.goexit (the go statement's wrapper, Go's funcID wrapper), and
    past pmprof's last frame, where Go's traceback ends."""
    want = []
    for f in gdb_frames:
        if f.func == "??" or f.func.startswith("<"):
            break
        want.append((f.func, os.path.basename(f.file or "?"), f.line or 0))
    got = key(mine)
    i = 0
    for k, g in enumerate(got):
        while i < len(want) and want[i] != g:
            hidden = (g[0] == "runtime.goexit" and k > 0 and got[k - 1][0] in outermost)
            assert hidden, (tid, "gdb has a frame pmprof lacks", want[i], got, want)
            i += 1
        assert i < len(want), (tid, "pmprof frame not in gdb's bt", g, got, want)
        i += 1


def dump_of_syscall_goroutine(p: Prog):
    (g,) = [g for g in p.dump.values() if "main.parkSyscallRead" in g.funcs]
    return [(f.function, os.path.basename(f.file), f.line) for f in g.frames]


def check_syscall_thread(p: Prog, stacks) -> List[Tuple[str, str, int]]:
    """The thread in read(2) ends with its goroutine's frames as the
    program dumped them (function, file:line), and goexit.  The dump's
    innermost frame is where the goroutine entered the syscall
    (g.syscallpc: the call of entersyscall), the thread is further on in
    that function: its line differs."""
    tid = p.extra["syscall_tid"]
    mine = key(stacks[tid])
    want = dump_of_syscall_goroutine(p)
    assert mine[-1][0] == "runtime.goexit", mine
    tail = mine[-1 - len(want):-1]
    assert tail[0][0] == want[0][0] and tail[1:] == want[1:], (mine, want)
    return mine


# ---- every release x build: live, the program's own dump -------------------


@pytest.mark.parametrize("build", list(BUILDS))
@pytest.mark.parametrize("name", ALL_GO)
def test_go_thread_stacks_live(name, build, run_prog):
    p = run_prog(goprog(name, build))
    stacks = stacks_json("-p", p.pid, beyond=name == GO_BEYOND)
    assert sorted(stacks) == p.target.tids()
    for tid, frames in stacks.items():
        check_ends(tid, frames, name == GO_BEYOND)
    check_syscall_thread(p, stacks)
    # `threads`: one frame a thread (where it is), from the same unwinder:
    # for the thread blocked in read(2), a frame of its stack (sysmon and
    # idle Ms may move between two stops)
    r = run_pmprof("threads", "-p", p.pid, "--format", "json", check=None)
    assert r.returncode in ((0, 1) if name == GO_BEYOND else (0,)), r.stderr
    doc = json.loads(r.stdout)
    assert sorted(t["tid"] for t in doc["threads"]) == sorted(stacks)
    (t,) = [t for t in doc["threads"] if t["tid"] == p.extra["syscall_tid"]]
    assert t["frame"] and key([t["frame"]])[0] in key(stacks[t["tid"]]), (t, stacks[t["tid"]])


@pytest.mark.parametrize("name", ALL_GO)
def test_stripped_equals_unstripped(name, run_prog):
    """The same program stripped shows the same frames for the thread in
    read(2): addresses differ, function and file:line may not.  (The idle
    Ms' stacks are not compared: how many park where varies run to run.)"""
    a = run_prog(goprog(name, "cgo"))
    b = run_prog(goprog(name, "strip"))
    beyond = name == GO_BEYOND
    sa, sb = stacks_json("-p", a.pid, beyond=beyond), stacks_json("-p", b.pid, beyond=beyond)
    assert check_syscall_thread(a, sa) == check_syscall_thread(b, sb)


# ---- gdb's bt on a core: every frame ---------------------------------------


def pmprof_then_bt_in_gdb(**target):
    """One gdb session, one stop: `pmprof stacks` (JSON) then gdb's own
    `thread apply all bt` -> ({tid: pmprof frames}, {tid: gdb frames})."""
    from helpers import parse_bt_threads
    r = gdb_run("pmprof stacks --all --format json", "thread apply all bt", **target)
    start = r.stdout.index("{")
    doc, end = json.JSONDecoder().raw_decode(r.stdout, start)
    mine = {th["tid"]: st["frames"] for st in doc["stacks"] for th in st["threads"]}
    gdb = {t.tid: t.frames for t in parse_bt_threads(r.stdout[end:])}
    return mine, gdb


@pytest.mark.parametrize("name", ALL_GO)
def test_go_stacks_equal_gdb_bt(name, run_prog, tmp_path):
    """pmprof's frames of every thread are gdb's own bt of that thread:
    live (pmprof inside gdb, then gdb's bt, in the same stop) and from a
    gcore core (bin/pmprof on the core, plain gdb's bt on it)."""
    beyond = name == GO_BEYOND
    p = run_prog(goprog(name, "cgo"))
    outermost = {g.frames[-1].function for g in p.dump.values() if g.frames}
    live, gdb_live = pmprof_then_bt_in_gdb(pid=p.pid)
    core = gcore(p.pid, tmp_path)
    try:
        fromcore = stacks_json("--core", core, "--exe", p.exe, beyond=beyond)
        gdb = {t.tid: t.frames for t in gdb_bt_threads(core=core, exe=p.exe)}
    finally:
        os.unlink(core)
    assert sorted(fromcore) == sorted(gdb) and sorted(live) == sorted(gdb_live)
    for mine, theirs in ((live, gdb_live), (fromcore, gdb)):
        for tid in sorted(theirs):
            frames = check_ends(tid, mine[tid], beyond)
            compare_with_gdb(tid, frames, theirs[tid], outermost)
    check_syscall_thread(p, fromcore)
    check_syscall_thread(p, live)


@pytest.mark.parametrize("name", ["go-1.21", "go-1.26"])
def test_go_stacks_in_gdb(name, run_prog, tmp_path):
    """pmprof stacks inside gdb on the core prints the CLI's frames."""
    p = run_prog(goprog(name, "strip"))
    core = gcore(p.pid, tmp_path)
    try:
        cli = stacks_json("--core", core, "--exe", p.exe)
        r = gdb_run("pmprof stacks --all --format json", core=core, exe=p.exe)
    finally:
        os.unlink(core)
    start = r.stdout.index("{")
    doc = json.loads(r.stdout[start:r.stdout.rindex("}") + 1])
    ing = {th["tid"]: st["frames"] for st in doc["stacks"] for th in st["threads"]}
    assert {t: key(f) for t, f in ing.items()} == {t: key(f) for t, f in cli.items()}


# ---- snapshot: the release's own go tool pprof -----------------------------


@pytest.mark.parametrize("name", GO_NAMES)
def test_snapshot_read_by_go_tool_pprof(name, run_prog, tmp_path):
    p = run_prog(goprog(name, "static"))
    out = tmp_path / "snap.pb.gz"
    r = run_pmprof("snapshot", "-p", p.pid, "-o", str(out), check=0)
    assert r.returncode == 0, r.stderr
    t = go_tool(entry(name), "tool", "pprof", "-traces", str(out))
    assert t.returncode == 0, t.stderr
    want = [f for f, _, _ in dump_of_syscall_goroutine(p)]
    # -traces: each sample's labels ("key:  value") then its frames,
    # innermost first, the first after the count, inlined ones "(inline)"
    blocks = []
    for b in t.stdout.split("-----------+"):
        frames = []
        for ln in b.splitlines():
            ln = ln.strip()
            if not ln or ":  " in ln or ln.startswith("File:") or ln.startswith("---"):
                continue
            if ln.endswith(" (inline)"):
                ln = ln[:-len(" (inline)")]
            frames.append(ln.split()[-1])
        blocks.append(frames)
    n = len(want)
    assert any(b[k:k + n] == want for b in blocks for k in range(len(b))), \
        (want, t.stdout[-3000:])


# ---- record across runtime.systemstack --------------------------------------


@pytest.mark.parametrize("name", ALL_GO)
def test_record_crosses_the_system_stack(name, tmp_path):
    """gochurn keeps the runtime on the system stack for main.churn: some
    samples cross runtime.systemstack into the goroutine (its g/m at the
    release's offsets) down to goexit; a release the unwinder's g table
    does not name ends there, marked."""
    from test_record import parse_raw, sample_functions
    from helpers import Target as T
    exe = build_go(entry(name), "gochurn.go", "gochurn")
    t = T(exe, settle=False)
    try:
        out = tmp_path / "churn.pb.gz"
        # ptrace method: every thread is stopped at every tick, so the
        # churners are caught on the system stack (with perf events a
        # running thread's CPU samples end at systemstack by design, and
        # only threads asleep there are stopped: a few per run; the
        # crossings seen before came from threads held in SIGURG
        # signal-delivery stops, which record no longer causes)
        r = run_pmprof("record", "-p", t.pid, "-d", "2", "-F", "499", "-q",
                       "--method", "ptrace", "-o", str(out))
        assert r.returncode == 0, r.stderr
        assert "warning" not in r.stderr, r.stderr
        raw = pprof_raw(out)
        _, samples, locs = parse_raw(raw)
    finally:
        t.kill()
    # parse_raw keeps locations with a mapping; the synthetic frames
    # ("[unwind error]") have none
    for m in re.finditer(r"^\s+(\d+): 0x[0-9a-f]+ (\[[^\]]+\]) ", raw, re.M):
        locs[int(m.group(1))] = [m.group(2)]
    crossed = through = stale = 0
    for s in samples:
        funcs = sample_functions(s, locs)
        if "runtime.systemstack" not in funcs:
            continue
        i = funcs.index("runtime.systemstack")
        through += s[0][0]
        if name == GO_BEYOND:
            # (a thread caught inside systemstack itself, i == 0, has no
            # goroutine frames to reach: the walk ends there as for every
            # release)
            assert i == 0 or funcs[i:] == ["runtime.systemstack", "[unwind error]"], funcs
            continue
        if funcs[-1] == "[unwind error]":
            stale += s[0][0]       # a stale saved context (test_go.py)
            assert funcs[i:-1] == ["runtime.systemstack"], funcs
            continue
        assert funcs[-1] in ("runtime.goexit", "runtime.systemstack", "runtime.mstart"), funcs
        crossed += "main.churn" in funcs[i:]
    assert through >= 1, "no sample in runtime.systemstack"
    if name != GO_BEYOND:
        assert crossed >= 1, "no sample crossed runtime.systemstack"
        assert stale <= max(2, through // 50), (stale, through)


# ---- a table whose funcIDs are not its row's --------------------------------


def _pclntab_func(data: bytes, want: str) -> Tuple[int, int]:
    """(offset in the file of the _func of `want`, of its funcID byte) in a
    Go 1.20+ binary, read with the format of runtime/symtab.go."""
    # section headers
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    secs = []
    for i in range(shnum):
        sh = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        secs.append(sh)
    stroff = secs[shstrndx][4]
    tab = None
    for sh in secs:
        nm = data[stroff + sh[0]:data.index(b"\0", stroff + sh[0])].decode()
        if nm == ".gopclntab":
            tab = sh[4]
    assert tab is not None
    nfunc, = struct.unpack_from("<Q", data, tab + 8)
    funcname, = struct.unpack_from("<Q", data, tab + 32)
    pcln, = struct.unpack_from("<Q", data, tab + 64)
    for i in range(nfunc):
        _, foff = struct.unpack_from("<II", data, tab + pcln + i * 8)
        f = tab + pcln + foff
        nameoff, = struct.unpack_from("<i", data, f + 4)
        s = tab + funcname + nameoff
        if data[s:data.index(b"\0", s)].decode() == want and data[f + 40] != 0:
            return f, f + 40
    raise AssertionError("no %s in the table" % want)


def test_table_disagreeing_with_its_row_is_refused(tmp_path, run_prog):
    """A Go 1.26 binary whose runtime.systemstack carries another funcID
    (as a release that renumbered them would): pmprof names the problem
    once and marks the Go stacks; no frame is read with the wrong IDs."""
    exe = goprog("go-1.26", "static")
    data = bytearray(open(exe, "rb").read())
    _, fid = _pclntab_func(bytes(data), "runtime.systemstack")
    data[fid] = (data[fid] + 1) & 0xff
    bad = tmp_path / "goprog-badids"
    bad.write_bytes(bytes(data))
    bad.chmod(0o755)
    p = run_prog(str(bad))
    r = run_pmprof("stacks", "-p", p.pid, check=1)     # partial: stacks cut short
    assert "its funcIDs are not Go 1.26's" in r.stderr and "go1.26" in r.stderr, r.stderr
    assert "runtime.systemstack" in r.stderr, r.stderr
    assert "[go: cannot unwind]" in r.stdout, r.stdout
    assert "main.parkSyscallRead" not in r.stdout, r.stdout


# ---- the layout tables against each release's DWARF --------------------------

_DWARF_PROBE = r'''
import gdb, json
def off(tname, path):
    t = gdb.lookup_type(tname)
    o = 0
    for p in path.split("."):
        f = [x for x in t.strip_typedefs().fields() if x.name == p][0]
        o += f.bitpos // 8
        t = f.type
    return o
out = {"off": {}, "const": {}, "size": {}}
for k in %(offs)r:
    t, p = k.split(":")
    try:
        out["off"][k] = off(t, p)
    except Exception:
        out["off"][k] = None
for t in %(sizes)r:
    out["size"][t] = gdb.lookup_type(t).sizeof
for n in %(consts)r:
    try:
        out["const"][n] = int(gdb.parse_and_eval("'%%s'" %% n))
    except Exception:
        pass
print("PMP-DWARF=" + json.dumps(out))
'''

# pmprof's funcID names (gopclntab.h PMP_GOFUNC_*) for each release's
# FuncID constant suffix
_FUNCID_NAMES = ["abort", "asmcgocall", "asyncPreempt", "cgocallback", "corostart",
                 "debugCallV2", "gcBgMarkWorker", "goexit", "gogo", "gopanic",
                 "handleAsyncEvent", "mcall", "morestack", "mstart", "panicwrap", "rt0_go",
                 "runfinq", "runFinalizers", "runCleanups", "runtime_main", "sigpanic",
                 "systemstack", "systemstack_switch"]


def _canonical(suffix: str) -> str:
    return {"runFinalizers": "RUNFINQ"}.get(suffix, suffix.upper())


def _c_source(name: str) -> str:
    from helpers import ROOT
    with open(os.path.join(ROOT, "ext", "unwind", name)) as f:
        return f.read().replace("\\\n", " ")


def _table_rows(text: str, array: str) -> List[List[str]]:
    body = text[text.index(array):]
    body = body[body.index("{") + 1:body.index("};")]
    return [[x.strip() for x in row.split(",")] for row in re.findall(r"\{([^{}]*)\}", body)]


def _row_for(rows, minor: int):
    for r in rows:
        if int(r[0]) <= minor <= int(r[1]):
            return r
    return None


@pytest.mark.parametrize("name", ALL_GO)
def test_layout_tables_match_dwarf(name):
    """Each row of gopclntab.c's `layouts` and ext/layouts/layout-go.c's row
    against the DWARF of a binary that release built: _func's funcID
    offset and size, inlinedCall's fields, moduledata.gofunc, every FuncID
    constant through the row's raw -> pmprof translation, and the g/m
    fields the system-stack jump reads.  A release no row names (1.27)
    has no row: checked to be so."""
    exe = goprog(name, "cgo")
    minor = int(entry(name)["version"].split(".")[1])
    offs = ["runtime._func:funcID", "runtime._func:flag", "runtime._func:nfuncdata",
            "runtime.inlinedCall:funcID", "runtime.inlinedCall:nameOff",
            "runtime.inlinedCall:func_", "runtime.inlinedCall:parentPc",
            "runtime.moduledata:gofunc", "runtime.moduledata:text",
            "runtime.g:sched.bp", "runtime.g:syscallsp", "runtime.g:syscallpc",
            "runtime.m:curg", "runtime.g:sched.sp", "runtime.g:sched.pc", "runtime.g:m"]
    consts = (["internal/abi.FuncID_" + n for n in _FUNCID_NAMES] +
              ["runtime.funcID_" + n for n in _FUNCID_NAMES] +
              ["internal/abi.FuncIDWrapper", "runtime.funcID_wrapper"])
    probe = _DWARF_PROBE % {"offs": offs, "consts": consts,
                            "sizes": ["runtime._func", "runtime.inlinedCall"]}
    with tempfile.NamedTemporaryFile("w", suffix=".py") as f:
        f.write(probe)
        f.flush()
        r = gdb_run("source " + f.name, exe=exe, source=False)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("PMP-DWARF=")]
    assert line, r.stdout + r.stderr
    dw = json.loads(line[0][len("PMP-DWARF="):])
    off, const, size = dw["off"], dw["const"], dw["size"]

    src = _c_source("gopclntab.c")
    hdr = _c_source("gopclntab.h")
    canon = {m[0]: int(m[1]) for m in re.findall(r"PMP_GOFUNC_(\w+) = (\d+)", hdr)}
    ids = {m[0]: [int(x) for x in m[1].split(",")]
           for m in re.findall(r"#define (IDS_\w+)\s+\{([^}]*)\}", src)}
    row = _row_for(_table_rows(src, "layouts[] ="), minor)
    import golayout
    grows = [r for r in golayout.table_rows() if r["minor"] == minor]
    grow = grows[0] if grows else None
    if name == GO_BEYOND:
        assert row is None and grow is None, (row, grow)
        return
    assert row and grow, (name, row, grow)
    (_, _, _, func_size, func_funcid, inl_size, inl_funcid, inl_name, inl_parentpc,
     md_gofunc, nids, idsname) = row
    assert size["runtime._func"] == int(func_size)
    assert off["runtime._func:funcID"] == int(func_funcid)
    assert off["runtime._func:flag"] == int(func_funcid) + 1
    assert off["runtime._func:nfuncdata"] == int(func_funcid) + 3
    assert size["runtime.inlinedCall"] == int(inl_size)
    assert off["runtime.inlinedCall:funcID"] == int(inl_funcid)
    assert (off["runtime.inlinedCall:nameOff"] if minor >= 20
            else off["runtime.inlinedCall:func_"]) == int(inl_name)
    assert off["runtime.inlinedCall:parentPc"] == int(inl_parentpc)
    assert off["runtime.moduledata:gofunc"] == int(md_gofunc)
    assert off["runtime.moduledata:text"] == 176          # MD_TEXT
    table = ids[idsname]
    assert len(table) == int(nids)
    for n, v in const.items():
        suffix = n.split("_", 1)[1] if "FuncID_" in n or "funcID_" in n else "WRAPPER"
        assert v < len(table), (n, v)
        assert table[v] == canon[_canonical(suffix)], (n, v, table[v])
    # every raw funcID but normal (0) is a constant of the release
    assert sorted(const.values()) == list(range(1, len(table))), const
    wrapper = max(v for n, v in const.items() if "rapper" in n)
    assert wrapper == len(table) - 1
    # ext/layouts/layout-go.c (the runtime reader's table, whose every field
    # test_go_versions.py checks): the fields the system-stack jump reads
    vals = [grow.get(k, 0) for k in ("g_sched_bp", "g_syscallsp", "g_syscallpc", "m_curg",
                                     "g_m", "g_sched_sp", "g_sched_pc")]
    assert vals == [off["runtime.g:sched.bp"], off["runtime.g:syscallsp"],
                    off["runtime.g:syscallpc"], off["runtime.m:curg"], off["runtime.g:m"],
                    off["runtime.g:sched.sp"], off["runtime.g:sched.pc"]], (vals, off)


def test_unknown_table_magic_is_refused(tmp_path, run_prog):
    """A table with a magic no row has (a future Go's): one warning naming
    the magic and the binary's Go version, the Go stacks marked, no Go
    frame.  (Go's runtime checks its own magic at start: the program runs
    as built, and its file is altered in place before its core is read.)"""
    exe = goprog("go-1.26", "static")
    data = bytearray(open(exe, "rb").read())
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    stroff = secs[shstrndx][4]
    (tab,) = [sh[4] for sh in secs
              if data[stroff + sh[0]:data.index(b"\0", stroff + sh[0])] == b".gopclntab"]
    assert struct.unpack_from("<I", data, tab)[0] == 0xfffffff1
    struct.pack_into("<I", data, tab, 0xfffffff2)
    mine = tmp_path / "goprog-magic"
    shutil.copy(exe, mine)
    p = run_prog(str(mine))
    core = gcore(p.pid, tmp_path)
    try:
        good = run_pmprof("stacks", "--core", core, check=None)
        p.close()
        os.unlink(mine)
        mine.write_bytes(bytes(data))
        r = run_pmprof("stacks", "--core", core, check=None)
    finally:
        os.unlink(core)
    assert "main.parkSyscallRead" in good.stdout, good.stdout    # the core is sound
    assert "magic 0xfffffff2" in r.stderr and "go1.26" in r.stderr, r.stderr
    assert "[go: cannot unwind]" in r.stdout, r.stdout
    assert "main." not in r.stdout, r.stdout
