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
    _check_totals(t, old)
