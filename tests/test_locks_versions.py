"""pmprof locks across glibc releases: tests/targets/locks.c built against
each glibc of the version matrix (tests/versions.py), its scenarios run on
that glibc, and the report checked exactly against the program's own
ground truth (test_locks.GT, test_locks.check_doc: every waiter -> object
-> owner edge, kinds, symbols, verdicts, root blockers), live and from a
gcore core, by bin/pmprof with and without that release's libc debug info
and inside gdb.

The layout table itself (ext/layouts/layout-glibc-nptl.h, pmprof._core.nptl_layouts)
is checked member by member against each release's DWARF (libc6-dbg), and
a glibc release outside the table (a libc whose banner says 2.99) gets the
one-line refusal, exit status 1, and no lock kind or owner but the
kernel-defined PI owner.
"""

import json
import os
import re
import struct
import subprocess

import pytest

import test_locks as TL
import versions
from conftest import ENV, gcore, gdb_run, kernel_core, run_pmprof
from helpers import GDB, Target, wait_until

NAMES = versions.GLIBC_NAMES
# locks.c as the targets Makefile builds it
FLAGS = ["-g", "-O0", "-fPIE", "-pie", "-pthread", "-Wall", "-Wextra",
         "-Wno-unused-parameter"]
# every kind and owner source; cores and gdb take the subsets below
LIVE = sorted(s for s in TL.VERDICT if s not in ("net",))
KERNEL_CORE = ["abba", "join", "stdio", "cond", "rw_writer", "robust", "sem", "waitv"]
CORE = ["abba", "robust", "pi", "timedlock", "abandoned", "rw_writer", "rw_readers",
        "rw_pw_writer", "rw_pw_readers", "join", "stdio", "cond", "sem", "waitv"]
IN_GDB = ["abba", "join", "stdio", "cond"]
NODEBUG = dict(ENV, PMPROF_DEBUG_PATH="/nonexistent")


def exe_for(name):
    return versions.build_c(versions.entry(name), "locks.c", "locks", FLAGS)


def start(name, scenario):
    t = Target(exe_for(name), [scenario])
    return t, TL.GT(t.lines)


def cli(*args, debug_dir=None):
    argv = ["locks"] + [str(a) for a in args] + ["--format", "json"]
    if debug_dir:
        argv += ["--debug-dir", debug_dir]
    r = run_pmprof(*argv, env=NODEBUG)
    assert r.stdout.startswith("{"), r.stderr
    doc = json.loads(r.stdout)
    assert r.returncode == TL.STATUS[doc["verdict"]], (r.returncode, r.stderr)
    return doc


def settled(t, gt):
    """Every waiter asleep in its system call again.  A pmprof run stops
    the process; the next one keeps only waits seen both in its first
    (unstopped) read and in its snapshot, so a waiter still on its way
    back into the kernel after the previous stop (a loaded machine) would
    be left out of the second report."""
    tids = {gt.tid[w] for w, _, _, _ in gt.edges}

    def asleep():
        for tid in tids:
            try:
                with open("/proc/%d/task/%d/syscall" % (t.pid, tid)) as f:
                    if not f.read()[:1].isdigit():
                        return False
            except OSError:
                return False
        return all(t.state(tid) in ("S", "D") for tid in tids)

    wait_until(asleep, 10, 0.01, "the waiters of %r back in their waits" % t)


def check(doc, scenario, gt, release, with_debug):
    TL.check_doc(doc, scenario, gt)
    assert doc["target"]["glibc"] == release and doc["target"]["glibc_layout"] is True
    for e in doc["edges"]:
        # the waiting call is on the stack: exported names say so even
        # without debug info; nothing may contradict the decoded kind
        assert e["stack_agrees"] is not False, e
        if with_debug and not e.get("memory_kind"):
            assert e["stack_agrees"] is True, e
        if e["object_kind"] == "stdio":
            # locks.c's stdio_park takes stdout's lock once
            assert e["count"] == 1, e


@pytest.fixture
def started():
    ts = []

    def run(name, scenario):
        t, gt = start(name, scenario)
        ts.append(t)
        return t, gt

    yield run
    for t in ts:
        t.check_unharmed()
        t.kill()


@pytest.mark.parametrize("scenario", LIVE)
@pytest.mark.parametrize("name", NAMES)
def test_live(started, name, scenario):
    """bin/pmprof on the live process, without and with the release's
    libc debug info."""
    g = versions.entry(name)
    t, gt = started(name, scenario)
    check(cli("-p", t.pid), scenario, gt, g["version"], False)
    settled(t, gt)
    check(cli("-p", t.pid, debug_dir=g["debug_dir"]), scenario, gt, g["version"], True)
    if scenario == "pileup":
        settled(t, gt)
        # pmprof hang: the same verdict, then the holder's stack
        r = run_pmprof("hang", "-p", t.pid, env=NODEBUG)
        assert r.returncode == 3 and r.stdout.startswith("HANG:"), r.stderr
        rest = r.stdout.split("THREADS NOT WAITING FOR A LOCK", 1)[1]
        assert "park_read" in rest and "%d holder" % gt.tid["holder"] in rest, rest
    assert t.tracer() == 0


def tcbs_in_core(core):
    """Whether every thread's TCB is in the core: x86_64 keeps the thread
    pointer (fs_base, from NT_PRSTATUS) at fs_base itself
    (tcbhead_t.tcb).  gdb 13's gcore writes a mapping it cannot read
    whole as zeros, and glibc 2.43 puts its stack guards inside the stack
    mapping (MADV_GUARD_INSTALL): the thread stacks, struct pthread
    included, are then zeros in the core."""
    with open(core, "rb") as f:
        data = f.read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phnum, = struct.unpack_from("<H", data, 0x38)
    loads, fs = [], []
    for i in range(phnum):
        ptype, _, off, vaddr, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data,
                                                                   phoff + 56 * i)
        if ptype == 1:
            loads.append((vaddr, off, filesz))
        elif ptype == 4:
            p = off
            while p < off + filesz:
                nsz, dsz, ntype = struct.unpack_from("<III", data, p)
                desc = p + 12 + (nsz + 3) // 4 * 4
                if ntype == 1:      # NT_PRSTATUS: pr_reg at 112, fs_base is reg 21
                    fs.append(struct.unpack_from("<Q", data, desc + 112 + 21 * 8)[0])
                p = desc + (dsz + 3) // 4 * 4
    for a in fs:
        seg = [(v, o) for v, o, n in loads if v <= a < v + n - 8]
        if not seg or struct.unpack_from("<Q", data, seg[0][1] + a - seg[0][0])[0] != a:
            return False
    return bool(fs)


def no_wrong_owner(doc, gt):
    """What a core without the thread stacks still promises: no owner that
    is not the true one."""
    truth = {gt.tid[w]: (gt.tid.get(o) if o != "-" else None) for w, _, _, o in gt.edges}
    for e in doc["edges"]:
        assert e["waiter"] in truth, e
        assert e["owners"] in ([], [truth[e["waiter"]]]), (e, truth)


@pytest.mark.parametrize("scenario", CORE)
@pytest.mark.parametrize("name", NAMES)
def test_core(started, name, scenario, tmp_path):
    """A gcore core of it: bin/pmprof without and with debug info, and
    gdb on the same core for a few scenarios."""
    g = versions.entry(name)
    t, gt = started(name, scenario)
    core = gcore(t.pid, tmp_path)
    exe = exe_for(name)
    whole = tcbs_in_core(core)
    for dbg in (None, g["debug_dir"]):
        doc = cli("--core", core, "--exe", exe, debug_dir=dbg)
        assert doc["target"]["source"] == "core"
        if whole:
            check(doc, scenario, gt, g["version"], dbg is not None)
        else:
            no_wrong_owner(doc, gt)
    if scenario in IN_GDB:
        r = gdb_run("pmprof locks --format json", exe=exe, core=core,
                    iex=["set debug-file-directory /nonexistent"])
        assert "Traceback" not in r.stderr, r.stderr
        doc = json.loads(r.stdout[r.stdout.index("{"):r.stdout.rindex("}") + 1])
        if whole:
            check(doc, scenario, gt, g["version"], False)
        else:
            no_wrong_owner(doc, gt)
    if not whole:
        pytest.skip("gcore left the thread stacks out of the core (zeros: gdb's gcore and "
                    "glibc %s's in-mapping stack guards); no wrong owner was reported; "
                    "test_kernel_core checks this release exactly" % g["version"])


RW = ["rw_writer", "rw_readers", "rw_pw_writer", "rw_pw_readers"]


@pytest.mark.parametrize("scenario", RW)
@pytest.mark.parametrize("name", NAMES)
def test_rwlock_text(started, name, scenario, tmp_path):
    """The text report lists every rwlock waiter under the access it asked
    for, live and from a gcore core, without and with the release's libc
    debug info (without it every waiter sits at the same libc address,
    and readers and writers were once grouped as one)."""
    g = versions.entry(name)
    t, gt = started(name, scenario)
    for dbg in (None, g["debug_dir"]):
        settled(t, gt)
        argv = ["locks", "-p", t.pid] + (["--debug-dir", dbg] if dbg else [])
        r = run_pmprof(*argv, env=NODEBUG)
        assert r.returncode == 3, r.stderr
        TL.check_text_rwmodes(r.stdout, gt)
    core = gcore(t.pid, tmp_path)
    if not tcbs_in_core(core):
        pytest.skip("gcore left the thread stacks out of the core (see test_core)")
    for dbg in (None, g["debug_dir"]):
        argv = ["locks", "--core", core, "--exe", exe_for(name)]
        r = run_pmprof(*argv + (["--debug-dir", dbg] if dbg else []), env=NODEBUG)
        assert r.returncode == 3, r.stderr
        TL.check_text_rwmodes(r.stdout, gt)


@pytest.mark.parametrize("scenario", KERNEL_CORE)
@pytest.mark.parametrize("name", NAMES)
def test_kernel_core(name, scenario, tmp_path):
    """A core the kernel wrote (locks --gencore: main aborts after READY,
    so main's own final wait is not in it)."""
    g = versions.entry(name)
    out = []
    core, exe = kernel_core(exe_for(name), scenario, tmpdir=tmp_path, stdout=out)
    assert tcbs_in_core(core)
    gt = TL.GT(out).without_main()
    for dbg in (None, g["debug_dir"]):
        check(cli("--core", core, "--exe", exe, debug_dir=dbg), scenario, gt, g["version"],
              dbg is not None)
    if scenario in IN_GDB:
        r = gdb_run("pmprof locks --format json", exe=exe, core=core, debug_dir=g["debug_dir"])
        assert "Traceback" not in r.stderr, r.stderr
        doc = json.loads(r.stdout[r.stdout.index("{"):r.stdout.rindex("}") + 1])
        check(doc, scenario, gt, g["version"], True)


@pytest.mark.parametrize("scenario", IN_GDB)
@pytest.mark.parametrize("name", NAMES)
def test_in_gdb_live(started, name, scenario, tmp_path):
    """Inside gdb attached to the live process, with the release's debug
    info in gdb's debug-file-directory."""
    g = versions.entry(name)
    t, gt = started(name, scenario)
    out = tmp_path / "l.json"
    r = gdb_run("pmprof locks --format json -o %s" % out, pid=t.pid,
                iex=["set debug-file-directory %s" % g["debug_dir"]])
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    with open(out) as f:
        check(json.load(f), scenario, gt, g["version"], True)


# ---- the table against each release's DWARF ---------------------------------

# table member -> C expression gdb evaluates in the release's debug info
MEMBERS = {
    "pd_tid": "&((struct pthread *)0)->tid",
    "mutex_size": "sizeof(struct __pthread_mutex_s)",
    "m_count": "&((struct __pthread_mutex_s *)0)->__count",
    "m_owner": "&((struct __pthread_mutex_s *)0)->__owner",
    "m_kind": "&((struct __pthread_mutex_s *)0)->__kind",
    "rw_size": "sizeof(struct __pthread_rwlock_arch_t)",
    "rw_wrphase_futex": "&((struct __pthread_rwlock_arch_t *)0)->__wrphase_futex",
    "rw_writers_futex": "&((struct __pthread_rwlock_arch_t *)0)->__writers_futex",
    "rw_pad3": "&((struct __pthread_rwlock_arch_t *)0)->__pad3",
    "rw_pad4": "&((struct __pthread_rwlock_arch_t *)0)->__pad4",
    "rw_cur_writer": "&((struct __pthread_rwlock_arch_t *)0)->__cur_writer",
    "rw_shared": "&((struct __pthread_rwlock_arch_t *)0)->__shared",
    "rw_elision": "&((struct __pthread_rwlock_arch_t *)0)->__rwelision",
    "rw_pad2": "&((struct __pthread_rwlock_arch_t *)0)->__pad2",
    "rw_flags": "&((struct __pthread_rwlock_arch_t *)0)->__flags",
    "cond_size": "sizeof(struct __pthread_cond_s)",
    "c_wseq": "&((struct __pthread_cond_s *)0)->__wseq",
    "c_g_refs": "&((struct __pthread_cond_s *)0)->__g_refs",
    "c_wrefs": "&((struct __pthread_cond_s *)0)->__wrefs",
    "c_g_signals": "&((struct __pthread_cond_s *)0)->__g_signals",
    "c_unused": "&((struct __pthread_cond_s *)0)->__unused_initialized_1",
    "sem_value": "&((struct new_sem *)0)->data",
    "sem_private": "&((struct new_sem *)0)->private",
    "io_cnt": "&((_IO_lock_t *)0)->cnt",
    "io_owner": "&((_IO_lock_t *)0)->owner",
}
NONE = 0xffff


def debug_files(g):
    """The release's libc (and, where separate, libpthread) debug files."""
    out = []
    for lib in ("libc.so.6", "libpthread.so.0"):
        path = os.path.join(g["libdir"], lib)
        if not os.path.exists(path):
            continue
        r = subprocess.run(["readelf", "-n", path], capture_output=True, text=True)
        m = re.search(r"Build ID: ([0-9a-f]+)", r.stdout)
        dbg = os.path.join(g["debug_dir"], ".build-id", m.group(1)[:2], m.group(1)[2:] + ".debug")
        if os.path.exists(dbg):
            out.append(dbg)
    return out


def dwarf_values(dbg, exprs):
    """{name: int or None (not in this file)} for C expressions."""
    argv = [GDB, "-nx", "-batch", dbg]
    for name, ex in exprs.items():
        argv += ["-ex", "echo @%s \n" % name, "-ex", "output (long)(%s)" % ex, "-ex", "echo \\n"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=ENV)
    vals = {}
    for m in re.finditer(r"^@(\w+) \n(-?\d+)?", r.stdout, re.M):
        vals[m.group(1)] = int(m.group(2)) if m.group(2) is not None else None
    return vals


@pytest.mark.parametrize("name", NAMES)
def test_layout_matches_dwarf(name):
    from pmprof_session import load_core
    g = versions.entry(name)
    rows = {r["version"]: r for r in load_core().nptl_layouts()}
    assert g["version"] in rows, "no layout row for %s" % name
    row = rows[g["version"]]
    files = debug_files(g)
    assert files, "no debug file for %s's libc" % name
    exprs = dict(MEMBERS)
    exprs["joinstate"] = "&((struct pthread *)0)->joinstate"
    exprs["joinable"] = "THREAD_STATE_JOINABLE"
    exprs["pad1"] = "&((struct __pthread_rwlock_arch_t *)0)->__pad1"
    exprs["sem_data_size"] = "sizeof(((struct new_sem *)0)->data)"
    exprs["io_size"] = "sizeof(_IO_lock_t)"
    got = {}
    for f in files:     # libc first; 2.31 keeps the pthread types in libpthread
        for k, v in dwarf_values(f, exprs).items():
            if got.get(k) is None:
                got[k] = v
    bad = []
    for k in MEMBERS:
        want = row[k]
        have = got.get(k)
        if k == "rw_elision" and have is None:
            have = got.get("pad1")     # 2.43: __rwelision merged into __pad1
        if have is None:
            have = NONE
        if have != want:
            bad.append("%s: table %d, DWARF %d" % (k, want, have))
    # pthread_join's word: tid (its value the TID), or joinstate
    if got.get("joinstate") is None:
        assert row["pd_join"] == row["pd_tid"] and row["join_val"] == -1, row
    else:
        assert (row["pd_join"], row["join_val"]) == (got["joinstate"], got["joinable"]), got
    # sem_t: value and nwaiters are the low and high halves of data
    assert got["sem_data_size"] == 8 and (row["sem_value"], row["sem_nwaiters"]) == (0, 4)
    assert got["io_size"] == 16
    assert not bad, "%s: %s" % (name, "; ".join(bad))


# ---- a release outside the table ----------------------------------------------


def test_unknown_release(tmp_path):
    """glibc 2.43's libc with its banner rewritten to 2.99: one warning line
    naming 2.99, exit 1 when no hang is found, every wait listed with its
    stack but without a kind or owner, except a PI mutex (the kernel
    defines its owner)."""
    g = versions.entry(versions.GLIBC_NAMES[-1])
    lib = tmp_path / "lib"
    lib.mkdir()
    for f in os.listdir(g["libdir"]):
        src = os.path.join(g["libdir"], f)
        if f == "libc.so.6":
            data = open(os.path.realpath(src), "rb").read()
            old = b"release version %s." % g["version"].encode()
            assert data.count(old) == 1
            (lib / f).write_bytes(data.replace(old, b"release version 2.99."))
        elif os.path.isfile(src):
            os.symlink(os.path.realpath(src), lib / f)
    exe = exe_for(g["name"])
    for scenario, status in (("abba", 1), ("pi", 3)):
        t = Target(g["loader"], ["--library-path", str(lib), exe, scenario])
        try:
            gt = TL.GT(t.lines)
            r = run_pmprof("locks", "-p", t.pid, "--format", "json", env=NODEBUG)
            doc = json.loads(r.stdout)
            assert r.returncode == status, r.stderr
            warn = [ln for ln in r.stderr.splitlines() if "2.99" in ln]
            assert len(warn) == 1 and "not in pmprof's lock layout table" in warn[0], r.stderr
            assert doc["target"]["glibc"] == "2.99" and doc["target"]["glibc_layout"] is False
            waiters = {gt.tid[w] for w, _, _, _ in gt.edges}
            assert {e["waiter"] for e in doc["edges"]} == waiters
            for e in doc["edges"]:
                if scenario == "pi" and e["waiter"] == gt.tid["w"]:
                    assert e["object_kind"] == "mutex" and e["owners"] == [gt.tid["o"]], e
                else:
                    assert e["object_kind"] == "futex" and e["owners"] == [], e
            settled(t, gt)
            text = run_pmprof("locks", "-p", t.pid, env=NODEBUG)
            assert text.returncode == status
            assert "futex" in text.stdout
        finally:
            t.kill()
