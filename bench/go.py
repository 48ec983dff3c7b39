#!/usr/bin/env python3
"""pmprof goroutines benchmark: prints figures, asserts nothing.

bench/targets/bin/parked N parks N goroutines 12 frames deep (channel,
select, sync.Mutex, labelled sleep).  Times, on the same process:
`pmprof goroutines --group` (the issue's goal: under 1 s for 100 000,
live and from a core), the full debug=2-style dump, and gdb with Go's own
runtime-gdb.py `info goroutines` (id, status and top function only).

Usage: python3 bench/go.py [--goroutines N] [--runs N] [--gdb-timeout S]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench import stop_and_clean, timed  # bench/bench.py, in this directory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARKED = os.path.join(ROOT, "bench", "targets", "bin", "parked")
PMPROF = os.path.join(ROOT, "bin", "pmprof")
RUNTIME_GDB = "/usr/share/go-1.19/src/runtime/runtime-gdb.py"


def row(name, cmd, runs, ref=None):
    ts = []
    for _ in range(runs):
        dt, r = timed(cmd)
        ts.append(dt)
    m = statistics.median(ts)
    print("%-44s %8.2f %8.2f %8.2f  exit %d%s" % (
        name, m, min(ts), max(ts), r.returncode,
        "" if ref is None else "  (%.0fx faster than gdb)" % (ref / m)))
    return m


def gdb_info_goroutines(args, timeout):
    cmd = ["gdb", "-nx", "-batch"] + args + [
        "-ex", "set auto-load safe-path /", "-ex", "source " + RUNTIME_GDB,
        "-ex", "info goroutines"]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, 0
    return time.perf_counter() - t0, sum(1 for ln in r.stdout.splitlines()
                                         if ln.lstrip("* ").split(" ")[0].isdigit())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--goroutines", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gdb-timeout", type=float, default=900)
    a = ap.parse_args()
    if not os.path.exists(PARKED):
        sys.exit("bench/go.py: build bench/targets first (make -C bench/targets; needs go)")
    p = subprocess.Popen([PARKED, str(a.goroutines)], stdout=subprocess.PIPE, text=True)
    tmp = tempfile.mkdtemp(prefix="pmprof-bench-go-")
    try:
        if p.stdout.readline().strip() != "READY":
            sys.exit("bench/go.py: target did not start")
        pid = str(p.pid)
        print("pmprof goroutines: %d parked goroutines, %d runs (wall s)" % (
            a.goroutines, a.runs))
        gdb_t, gdb_n = gdb_info_goroutines(["-p", pid], a.gdb_timeout)
        print("%-44s %8s %8s %8s" % ("command", "median", "min", "max"))
        if gdb_t is None:
            print("%-44s  > %.0f s (timed out)" % ("gdb runtime-gdb.py info goroutines -p",
                                                  a.gdb_timeout))
        else:
            print("%-44s %8.2f  (one run, %d goroutines listed)" % (
                "gdb runtime-gdb.py info goroutines -p", gdb_t, gdb_n))
        row("pmprof goroutines --group -p", [PMPROF, "goroutines", "--group", "-p", pid],
            a.runs, gdb_t)
        row("pmprof goroutines -p (every stack, text)", [PMPROF, "goroutines", "-p", pid],
            a.runs, gdb_t)
        row("pmprof goroutines -o profile.pb.gz -p",
            [PMPROF, "goroutines", "--group", "-o", os.path.join(tmp, "g.pb.gz"), "-p", pid],
            a.runs)
        core = os.path.join(tmp, "core")
        t0 = time.perf_counter()
        subprocess.run(["gcore", "-o", core, pid], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=900)
        core += "." + pid
        print("(gcore: %.1f s, %.0f MB)" % (time.perf_counter() - t0,
                                            os.path.getsize(core) / 1e6))
        row("pmprof goroutines --group --core", [PMPROF, "goroutines", "--group", "--core",
                                                  core, "--exe", PARKED], a.runs)
    finally:
        stop_and_clean(p, tmp)


if __name__ == "__main__":
    main()
