"""pmprof record, perf method: who ran since the last tick is known from the
kernel's context switch records (docs/record.md), not from a read of
/proc per thread and tick.

The threads target has 2 threads that spin and 9 that block for good.  With
switch records the ticks read /proc (schedstat, the syscall file) about once
per CPU sample (a spinner's waits for a CPU, charged to its last sample) and
a few times per stop; without them (PMPROF_TEST_NO_SWITCHES=1, the path of
kernels without the records) every blocked thread's schedstat is read at
every tick.  Both ways every thread's wall time is whole and the blocked
threads have no CPU time.
"""
import json
import os
import re
import time

import pytest

from conftest import ENV, run_pmprof

BLOCKED = ("blocker-0", "blocker-1", "blocker-2", "sleeper-0", "sleeper-1",
           "reader", "sorter", "sighandler")
SPINNERS = ("spinner-0", "spinner-1")


def _record(t, tmp_path, no_switches):
    env = dict(ENV)
    env["PMPROF_TEST_NO_SWITCHES"] = "1" if no_switches else "0"
    r = run_pmprof("record", "--json", "-q", "-p", t.pid, "-F", 99, "-d", 2,
                   "-o", str(tmp_path / ("rec%d.pb.gz" % no_switches)), env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _check_totals(t, doc):
    st = doc["stats"]
    th = {x["tid"]: x for x in doc["threads"]}
    for name in BLOCKED:
        x = th[t.tid_of(name)]
        assert x["cpu_ns"] == 0, (name, x)
        assert abs(x["wall_ns"] - st["elapsed_ns"]) <= 0.1 * st["elapsed_ns"], (name, x, st)
    for name in SPINNERS:
        x = th[t.tid_of(name)]
        assert abs(x["wall_ns"] - st["elapsed_ns"]) <= 0.1 * st["elapsed_ns"], (name, x, st)
    assert sum(th[t.tid_of(n)]["cpu_ns"] for n in SPINNERS) > 0, doc["threads"]


def test_record_switch_records_replace_proc_reads(target, tmp_path):
    t = target("threads")
    doc = _record(t, tmp_path, False)
    st = doc["stats"]
    assert st["method"] == "perf" and st["switches"] is True, st
    assert st["switch_records"] > 0, st
    reads = st["state_reads"] + st["sched_reads"]
    nthreads = len(doc["threads"])
    # About one schedstat read per CPU sample, a few per stop and per
    # thread (its first look, before any record of it came).
    bound = st["cpu_samples"] + 4 * st["stops"] + 4 * nthreads
    assert reads <= bound, st
    # The blocked threads are not stopped again: their stack is reused.
    assert st["reused"] >= 0.8 * len(BLOCKED) * st["samples"], st
    # No thread is born or ends: /proc/PID/task is listed at the start
    # and once a second, not at every tick.
    assert 1 <= st["task_lists"] <= 3 + st["elapsed_ns"] / 1e9, st
    _check_totals(t, doc)

    # The same target without the records: the per-tick reads come back
    # (what the bound above is there to catch), the figures stay right.
    old = _record(t, tmp_path, True)
    ost = old["stats"]
    assert ost["method"] == "perf" and ost["switches"] is False, ost
    assert ost["switch_records"] == 0, ost
    oreads = ost["state_reads"] + ost["sched_reads"]
    assert oreads >= 0.8 * len(BLOCKED) * ost["samples"], ost
    assert oreads > 2 * bound, (ost, st)
    assert ost["task_lists"] >= ost["samples"], ost
    _check_totals(t, old)


@pytest.mark.serial
def test_record_sees_threads_born_and_ended_at_the_tick(target, tmp_path):
    """The tasks directory is listed only when a FORK record or the thread
    count says a thread was born or ended.  A target starts six threads
    every 500 ms that sleep 100-450 ms (most ends come with no birth near
    them; one of the six starts a thread of its own at once), and each
    prints its own start and end (CLOCK_MONOTONIC): every thread that
    lived inside the recording is in it, its birth and its end noticed
    within two periods (seen_ns, gone_ns), and its wall time within three
    periods of its life."""
    t = target("workload", "lifetimes", 4500)
    t.expect_exit = True
    hz, dur = 99, 3.0
    t0 = time.monotonic_ns()
    r = run_pmprof("record", "--json", "-q", "-p", t.pid, "-F", hz, "-d", dur,
                   "-o", str(tmp_path / "rec.pb.gz"))
    t1 = time.monotonic_ns()
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    st = doc["stats"]
    assert st["method"] == "perf" and st["switches"] is True, st
    t.proc.wait(timeout=30)
    out = (t._buf + t.proc.stdout.read()).decode()
    lives = {int(a): (int(b), int(c))
             for a, b, c in re.findall(r"^LIFE (\d+) (\d+) (\d+)$", out, re.M)}
    assert t.proc.returncode == 0 and len(lives) > 40, out[-2000:]
    period = 1e9 / hz
    th = {x["tid"]: x for x in doc["threads"]}
    # The recording began at or after t0 and ended at or before t1: a
    # life from t1 - dur to t0 + dur (less two periods each side) was
    # inside it.
    inside = [tid for tid, (a, b) in lives.items()
              if a >= t1 - dur * 1e9 + 2 * period and b <= t0 + dur * 1e9 - 2 * period]
    assert len(inside) >= 10, (len(inside), (t1 - t0) / 1e9)
    missing = [tid for tid in inside if tid not in th]
    assert not missing, (missing, st)
    assert {th[tid]["name"] for tid in inside} == {"life", "kid"}
    # Each thread's (seen, gone) on the recording's clock against its own
    # (start, end) on the target's: one offset (the recording's start),
    # the same for all; take it from the births (a birth is never noticed
    # before it happens), then every birth and end within two periods.
    offset = min(th[tid]["seen_ns"] - (lives[tid][0] - t0) for tid in inside)
    late_birth, late_end, walls = [], [], []
    for tid in inside:
        a, b = lives[tid][0] - t0 + offset, lives[tid][1] - t0 + offset
        x = th[tid]
        assert x["gone_ns"] is not None, x
        if x["seen_ns"] - a > 2 * period:
            late_birth.append((tid, x["name"], a, x["seen_ns"]))
        if not -period <= x["gone_ns"] - b <= 2 * period:
            late_end.append((tid, x["name"], b, x["gone_ns"]))
        if abs(x["wall_ns"] - (b - a)) > 3 * period:
            walls.append((tid, x["name"], b - a, x["wall_ns"]))
    # A stall of the machine can delay a tick: most, not all.
    for bad in (late_birth, late_end, walls):
        assert len(bad) <= 0.1 * len(inside), (bad, len(inside), st)
    assert st["task_lists"] >= len(inside), st


@pytest.mark.serial
def test_record_lost_switch_records_fall_back_to_proc_looks(target, tmp_path):
    """Two threads passing a byte back and forth switch tens of thousands
    of times a second; with a one-page switch ring (a test hook) the kernel
    drops their records.  The ticks that lost them look in /proc instead,
    and every thread's wall time stays whole: the blocked reader's stack
    is still reused, with no CPU time."""
    t = target("workload", "pingpong")
    env = dict(ENV)
    env["PMPROF_TEST_SWITCH_PAGES"] = "1"
    r = run_pmprof("record", "--json", "-q", "-p", t.pid, "-F", 99, "-d", 2,
                   "-o", str(tmp_path / "rec.pb.gz"), env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    st = doc["stats"]
    assert st["method"] == "perf" and st["switches"] is True, st
    assert st["switch_lost"] > 0, st
    assert st["state_reads"] + st["sched_reads"] > 0, st
    th = {x["name"]: x for x in doc["threads"]}
    for name in ("ping", "pong", "reader"):
        x = th[name]
        assert abs(x["wall_ns"] - st["elapsed_ns"]) <= 0.1 * st["elapsed_ns"], (name, x, st)
    assert th["reader"]["cpu_ns"] == 0, th["reader"]
    assert th["ping"]["cpu_ns"] + th["pong"]["cpu_ns"] > 0, th
    assert st["reused"] >= 0.8 * st["samples"], st


def _cpu_of(t, tid):
    with open("/proc/%d/task/%d/schedstat" % (t.pid, tid)) as f:
        return int(f.read().split()[0])


@pytest.mark.serial
def test_record_counts_cpu_spent_in_system_calls(target, tmp_path):
    """Two threads passing a byte over pipes spend most of their CPU in
    read(2) and write(2).  Their CPU samples count the timer's ticks in the
    kernel too (with the user stack of the call): the samples see most of
    each thread's CPU.  User-mode samples only (PMPROF_TEST_USER_ONLY=1,
    what perf_event_paranoid 2 leaves an unprivileged user) miss most of
    it, and the summary says so.  Either way the CPU no sample saw is
    charged to "[CPU not sampled]": each thread's CPU share of the
    recording is its share by the kernel's own count (schedstat, around
    the command) within a fifth, and its wall time is whole."""
    t = target("workload", "pingpong")
    tids = [t.tid_of("ping"), t.tid_of("pong")]

    def record(user_only):
        env = dict(ENV)
        env["PMPROF_TEST_USER_ONLY"] = "1" if user_only else "0"
        c0, t0 = [_cpu_of(t, x) for x in tids], time.monotonic_ns()
        r = run_pmprof("record", "-p", t.pid, "-F", 99, "-d", 2, "--json",
                       "-o", str(tmp_path / "rec.pb.gz"), env=env)
        c1, t1 = [_cpu_of(t, x) for x in tids], time.monotonic_ns()
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        th = {x["tid"]: x for x in doc["threads"]}
        st = doc["stats"]
        for i, x in enumerate(tids):
            assert abs(th[x]["wall_ns"] - st["elapsed_ns"]) <= 0.1 * st["elapsed_ns"], (
                th[x], st)
            got, truth = th[x]["cpu_ns"] / st["elapsed_ns"], (c1[i] - c0[i]) / (t1 - t0)
            assert truth > 0.1 and abs(got - truth) <= 0.2 * truth, (got, truth)
        top = {x["function"]: x["cpu_ns"] for x in doc["top_cpu"]}
        return top.get("[CPU not sampled]", 0) / sum(top.values()), st

    unseen, st = record(False)
    assert st["method"] == "perf" and st["perf_kernel"] is True, st
    assert unseen < 0.35, unseen
    unseen, st = record(True)
    assert st["perf_kernel"] is False, st
    assert unseen > 0.5, unseen
