"""The soak and kill harness (tests/soak.py), short: pmprof killed at random
moments while the soak target takes a SIGUSR1 every millisecond; the
target's own counts and checks decide.  `make soak` runs the long one."""

import pytest

from conftest import require_ptrace

import soak

pytestmark = [pytest.mark.serial, require_ptrace]


def _run(**kw):
    lines = []
    fig = soak.soak(log=lines.append, **kw)
    text = "\n".join(lines + [soak.report(fig)])
    print(text)
    return fig, text


def test_soak_kills_lose_no_signal():
    """50 kills of record/stacks/snapshot/locks/heap and 1500 sample
    cycles of record -F 997: after each kill the target is untraced and
    running within 100 ms; every signal sent was counted, the target's
    arithmetic, sleeps and pipe reads held, it exited 0; no thread was
    held stopped past the 10 ms bound."""
    fig, text = _run(kills=50, cycles=1500, run_s=1.0)
    assert fig["ok"], text
    assert fig["signals_sent"] > 200 and fig["target"]["churned"] > 100, text


def test_soak_signals_in_the_seize_window_are_handed_back():
    """With 300 us between each seize and its interrupt (test hook), signals
    land in that window and meet pmprof in a signal-delivery-stop: each is
    handed back at once, and kills still lose none."""
    fig, text = _run(kills=15, cycles=600, run_s=1.0, seize_gap_us=300)
    assert fig["ok"], text
    assert fig["sig_passed"] > 0, text


HOG = r'''
import os, sys, time
cpu, t0, period, busy, n = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
os.sched_setaffinity(0, {cpu})
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
for k in range(n):
    a = t0 + k * period
    while time.monotonic() < a:
        time.sleep(min(0.002, max(0.0, a - time.monotonic())))
    s = time.monotonic()
    while time.monotonic() < a + busy:
        pass
    print("%.6f %.6f" % (s, time.monotonic()), flush=True)
'''


def test_stops_the_machine_stretches_are_told_apart():
    """A real-time hog (SCHED_FIFO 50, one per CPU, above pmprof's
    sampler) takes both CPUs for 40 ms every 250 ms while record -F 997
    runs: pmprof's sampler sees itself woken late by about that much, and
    every stop over the 10 ms bound it reports is, less the hogs' time
    inside it (their own log of when they ran), within the bound."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    import time
    with tempfile.TemporaryDirectory(prefix="pmprof-hog-") as tmp:
        target = soak.Target(tmp, 4)
        try:
            t0 = time.monotonic() + 1.0
            hogs = [subprocess.Popen([sys.executable, "-c", HOG, str(c), repr(t0), "0.25",
                                      "0.04", "10"], stdout=subprocess.PIPE, text=True)
                    for c in sorted(os.sched_getaffinity(0))]
            r = subprocess.run([soak.PMPROF, "record", "-p", str(target.pid), "-F", "997",
                                "-d", "3.5", "-q", "--json", "-o",
                                os.path.join(tmp, "hog.pb.gz")],
                               capture_output=True, text=True, timeout=60)
            busy = [[tuple(map(float, l.split())) for l in h.communicate(timeout=30)[0].split("\n")
                     if l.strip()] for h in hogs]
        finally:
            target.proc.kill()
            target.proc.wait()
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)["stats"]
    assert all(len(b) == 10 for b in busy), busy
    # The sampler was kept off the CPU about 40 ms at least once (it is
    # woken late whenever a hog starts while it sleeps).
    assert st["stall_max_ns"] > 30e6, st
    assert st["stall_ns"] > 100e6, st
    errs = []
    for o in st["stops_over_list"]:
        at, ns = o["at_ns"] / 1e9, o["ns"] / 1e9
        took = soak.explained((at, at + ns), busy)
        assert (ns - took) * 1e3 <= soak.BOUND_MS, (o, took, st)
        # pmprof's own measure of the machine's part (its late wake-ups
        # and run-queue wait) against the hogs' log: never much more;
        # mostly within a few ms (the two hogs do not start at the same
        # instant, and the sampler moves between CPUs: seen up to 4-5 ms
        # more; it may miss some: then counted as pmprof's, the safe side).
        assert o["stall_ns"] / 1e9 <= took + 0.006, (o, took)
        if took > 0.03:
            errs.append(abs(o["stall_ns"] / 1e9 - took))
    if errs:
        errs.sort()
        assert errs[(len(errs) - 1) // 2] < 0.005, errs   # at least half
    assert st["max_stop_own_ns"] <= st["max_stop_ns"], st
