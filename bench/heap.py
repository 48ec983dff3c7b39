#!/usr/bin/env python3
"""pmprof heap benchmark: prints figures, asserts nothing.

tests/targets/bin/mallocs big N: the main arena holds N chunks of
96..160 bytes (every 7th freed: full tcaches, long fastbins, small bins);
with N = 10,000,000 that is a 1.2 GB heap, the issue's reference size.
Times `bin/pmprof heap sizes` (full walk + size histogram) live and on a
gcore core of the same process, and `heap check` (every list link
followed as well).  Goals (issue 5): 1.5 s live, 0.5 s from a core.

Usage: python3 bench/heap.py [--chunks N] [--runs N]
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
MALLOCS = os.path.join(ROOT, "tests", "targets", "bin", "mallocs")
PMPROF = os.path.join(ROOT, "bin", "pmprof")


def row(name, cmd, runs):
    ts = []
    for _ in range(runs):
        dt, r = timed(cmd)
        ts.append(dt)
    print("%-34s %8.2f %8.2f %8.2f  exit %d" % (name, statistics.median(ts), min(ts), max(ts),
                                               r.returncode))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    p = subprocess.Popen([MALLOCS, "--timeout", "1800", "big", str(a.chunks)],
                         stdout=subprocess.PIPE, text=True)
    tmp = tempfile.mkdtemp(prefix="pmprof-bench-heap-")
    try:
        if p.stdout.readline().strip() != "READY":
            sys.exit("bench/heap.py: target did not start")
        print("pmprof heap: main arena of %d chunks, %d runs (wall s)" % (a.chunks, a.runs))
        print("%-34s %8s %8s %8s" % ("command", "median", "min", "max"))
        row("heap sizes -p (live)", [PMPROF, "heap", "sizes", "-p", str(p.pid)], a.runs)
        row("heap check -p (live, every link)", [PMPROF, "heap", "check", "-p", str(p.pid)],
            a.runs)
        core = os.path.join(tmp, "core")
        t0 = time.perf_counter()
        subprocess.run(["gcore", "-o", core, str(p.pid)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=900)
        core += ".%d" % p.pid
        print("(gcore: %.1f s, %.0f MB)" % (time.perf_counter() - t0,
                                            os.path.getsize(core) / 1e6))
        row("heap sizes --core", [PMPROF, "heap", "sizes", "--core", core], a.runs)
    finally:
        stop_and_clean(p, tmp)


if __name__ == "__main__":
    main()
