#!/usr/bin/env python3
"""pmprof locks benchmark: prints figures, asserts nothing.

1050 waiting threads on 50 mutexes (tests/targets/bin/locks many: 50
holders parked in read(), 1000 waiters, 20 per mutex).  Times, side by
side in one run:
  - `bin/pmprof locks -p PID` (standalone, whole command: Python start-up,
    the unstopped first read, the stopped snapshot, unwinding, symbols,
    analysis, text);
  - the same with --format json;
  - `gdb -p PID -batch -ex 'pmprof locks'` (whole gdb run, attach included)
    and, for scale, `gdb -p PID -batch -ex 'thread apply all bt'`.
Goal (issue 4): the standalone report in under 0.5 s.

Usage: python3 bench/locks.py [--runs N]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from bench import timed  # bench/bench.py, in this directory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCKS = os.path.join(ROOT, "tests", "targets", "bin", "locks")
PMPROF = os.path.join(ROOT, "bin", "pmprof")
GDB_SCRIPT = os.path.join(ROOT, "gdb", "pmprof.py")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if not os.path.exists(LOCKS):
        sys.exit("bench/locks.py: build the targets first: make targets")
    p = subprocess.Popen([LOCKS, "--timeout", "600", "many"], stdout=subprocess.PIPE, text=True)
    try:
        for line in p.stdout:
            if line.strip() == "READY":
                break
        else:
            sys.exit("bench/locks.py: target did not start")
        time.sleep(0.5)
        nthreads = len(os.listdir("/proc/%d/task" % p.pid))
        gdb = ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off", "-p", str(p.pid)]
        rows = [
            ("bin/pmprof locks", [PMPROF, "locks", "-p", str(p.pid)]),
            ("bin/pmprof locks --format json", [PMPROF, "locks", "-p", str(p.pid),
                                                "--format", "json"]),
            ("gdb -p: pmprof locks", gdb[:5] + ["-ex", "source " + GDB_SCRIPT] + gdb[5:]
             + ["-ex", "pmprof locks"]),
            ("gdb -p: thread apply all bt", gdb + ["-ex", "thread apply all bt"]),
        ]
        print("pmprof locks: %d threads (1000 waiting on 50 mutexes), %d runs each"
              % (nthreads, a.runs))
        print("%-34s %10s %10s %10s  %s" % ("command", "median s", "min s", "max s", "check"))
        for name, cmd in rows:
            ts, ok = [], True
            for _ in range(a.runs if "thread apply" not in name else max(1, a.runs // 2)):
                dt, r = timed(cmd)
                ts.append(dt)
                ok = ok and (r.returncode in (0, 3) and
                             ("HANG" in r.stdout or '"hang"' in r.stdout
                              or "thread apply" in name))
            print("%-34s %10.3f %10.3f %10.3f  %s" % (name, statistics.median(ts), min(ts),
                                                      max(ts), "ok" if ok else "UNEXPECTED"))
    finally:
        p.kill()
        p.wait()


if __name__ == "__main__":
    main()
