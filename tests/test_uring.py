"""io_uring worker threads (iou-wrk-N): kernel threads inside the process,
with no user context.  pmprof shows each as one frame, "[io_uring worker]"
live (the kernel's PF_IO_WORKER flag in /proc/PID/task/TID/stat) and
"[kernel worker]" on a core (pc and sp 0: the kernel's mark, which a core
keeps but which does not say io_uring from vhost), never a made-up stack;
they make no result partial, and `record` does not sample them (they are
not the application's CPU or wall time).

The truth: /proc says which threads are io workers; gdb's own bt shows one
frame at pc 0 for exactly those.  targets/uring.c parks one worker in a
read of a pipe nobody writes (IOSQE_ASYNC).  Where io_uring cannot run
(kernel.io_uring_disabled, seccomp, liburing-dev missing), the tests skip
and say why.
"""

import json
import os

import pytest

from conftest import TARGETS, ENV, TargetDied, gcore, gdb_bt_threads, gdb_run, run_pmprof

PF_IO_WORKER = 0x10


def _disabled_reason():
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            v = f.read().strip()
        if v != "0":
            return "kernel.io_uring_disabled = %s" % v
    except OSError:
        pass
    return None


@pytest.fixture
def uring(target):
    if not os.path.exists(os.path.join(TARGETS, "uring")):
        pytest.skip("tests/targets/bin/uring is not built: liburing-dev is not installed")
    reason = _disabled_reason()
    if reason:
        pytest.skip("io_uring cannot run here: " + reason)
    try:
        return target("uring")
    except TargetDied as e:
        if "io_uring unavailable" in str(e) or "made no worker" in str(e):
            pytest.skip("io_uring cannot run here: %s" % e)
        raise


def io_workers(pid):
    """TIDs whose stat flags have PF_IO_WORKER."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if int(fields[6]) & PF_IO_WORKER:       # field 9
            out.append(int(tid))
    return sorted(out)


def gdb_pc0(bt):
    """TIDs whose gdb backtrace is one frame at pc 0."""
    return sorted(t.tid for t in bt if len(t.frames) == 1 and t.frames[0].addr == 0)


def stacks(*where):
    r = run_pmprof("stacks", "--all", "--format", "json", *where)
    assert r.returncode == 0, r.stderr
    return {g["threads"][0]["tid"]: g for g in json.loads(r.stdout)["stacks"]}


def check_workers(by_tid, workers, label):
    for tid, g in by_tid.items():
        fns = [f["function"] for f in g["frames"]]
        if tid in workers:
            assert fns == [label] and g["flags"] == ["kernel-worker"], (tid, g)
        else:
            assert label not in fns and "kernel-worker" not in g["flags"], (tid, g)
            assert not any(f.startswith("[") for f in fns), (tid, fns)


def test_live(uring, tmp_path):
    t = uring
    workers = io_workers(t.pid)
    assert len(workers) == 1, workers
    assert gdb_pc0(gdb_bt_threads(pid=t.pid)) == workers
    check_workers(stacks("-p", t.pid), workers, "[io_uring worker]")
    # every command: complete, exit 0
    for args in (["stacks"], ["threads"], ["threads", "--format", "json"],
                 ["snapshot", "-o", str(tmp_path / "s.pb.gz")]):
        for fast in ("", "1"):
            env = dict(ENV, PMPROF_NO_FAST=fast)
            r = run_pmprof(*(args + ["-p", t.pid]), env=env)
            assert r.returncode == 0, (args, fast, r.stderr)
            assert "partial" not in r.stderr
    r = run_pmprof("threads", "--format", "json", "-p", t.pid)
    ths = {x["tid"]: x for x in json.loads(r.stdout)["threads"]}
    w = ths[workers[0]]
    assert w["syscall"] is None and w["frame"]["function"] == "[io_uring worker]"
    r = run_pmprof("stacks", "-p", t.pid)
    assert "  #0   [io_uring worker]\n\n" in r.stdout + "\n"


def test_core(uring, tmp_path):
    t = uring
    workers = io_workers(t.pid)
    core = gcore(t.pid, tmp_path)
    assert gdb_pc0(gdb_bt_threads(exe=t.exe, core=core)) == workers
    check_workers(stacks("--core", core, "--exe", t.exe), workers, "[kernel worker]")
    r = run_pmprof("threads", "--core", core, "--exe", t.exe)
    assert r.returncode == 0, r.stderr


def test_inside_gdb(uring):
    t = uring
    workers = io_workers(t.pid)
    r = gdb_run("pmprof stacks --all --format json", pid=t.pid)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    doc = json.loads(out[out.index("{"):out.rindex("}") + 1])
    by_tid = {g["threads"][0]["tid"]: g for g in doc["stacks"]}
    check_workers(by_tid, workers, "[io_uring worker]")


def test_record_leaves_workers_out(uring, tmp_path):
    t = uring
    workers = io_workers(t.pid)
    r = run_pmprof("record", "-p", t.pid, "-d", "0.5", "--json", "-o",
                   str(tmp_path / "r.pb.gz"))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    tids = {x["tid"] for x in doc["threads"]}
    assert tids and not tids & set(workers), doc["threads"]
    for row in doc["top_cpu"] + doc["top_wall"]:
        assert row["function"] not in ("0x0", "[io_uring worker]"), row


def test_kernel_core(tmp_path):
    """The kernel's own core (--gencore: main aborts, the worker stays)."""
    from conftest import kernel_core
    if not os.path.exists(os.path.join(TARGETS, "uring")):
        pytest.skip("tests/targets/bin/uring is not built: liburing-dev is not installed")
    reason = _disabled_reason()
    if reason:
        pytest.skip("io_uring cannot run here: " + reason)
    core, exe = kernel_core("uring", tmp_path)
    workers = gdb_pc0(gdb_bt_threads(exe=exe, core=core))
    assert len(workers) == 1, workers
    by_tid = stacks("--core", core, "--exe", exe)
    assert len(by_tid) == 3
    check_workers(by_tid, workers, "[kernel worker]")
