#!/usr/bin/env python3
"""pmprof benchmarks: prints figures, asserts nothing.

Side by side in one run, on tests/targets/bin/deep (N threads ~30 frames
deep, spinning or blocked):

  1. standalone whole-process snapshot: `bin/pmprof stacks -p PID` vs
     `gdb -p PID -batch -ex 'thread apply all bt'` vs `eu-stack -p PID`;
  2. inside one attached gdb, target stopped: `pmprof stacks` cold and
     warm vs `thread apply all bt` vs a gdb-Python frame walk;
  3. where the time goes, through the C core directly: stop+unwind+resume
     (time the target was stopped), symbolize, pprof write.

Usage: python3 bench/bench.py [--quick] [--threads 1,8,64,256] [--runs N]
Results are recorded in bench/README.md.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEEP = os.path.join(ROOT, "tests", "targets", "bin", "deep")
PMPROF = os.path.join(ROOT, "bin", "pmprof")
GDB_SCRIPT = os.path.join(ROOT, "gdb", "pmprof.py")
TIMEOUT = 300


def start_target(n, mode):
    p = subprocess.Popen([DEEP, str(n), mode], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if "READY" not in line:
        p.kill()
        raise SystemExit("bench: target did not start: %r" % line)
    time.sleep(0.2)
    return p


def stop_target(p):
    p.send_signal(signal.SIGKILL)
    p.wait()


def stop_and_clean(p, tmp):
    """Kill and reap a benchmark's target, remove its temporary directory."""
    p.kill()
    p.wait()
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)


def timed(cmd, env=None):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=TIMEOUT, env=env)
    dt = time.perf_counter() - t0
    return dt, r


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_ms(x):
    return "%.1f" % (x * 1e3)


def standalone(ns, modes, runs, skip_slow):
    print("\n## 1. Standalone whole-process snapshot (wall ms, median of %d)" % runs)
    print("| threads | mode | pmprof stacks | (via the Python CLI) | gdb thread apply all bt | "
          "eu-stack | eu-stack -i -s | gdb/pmprof | eu-stack/pmprof | eu-stack -i -s/pmprof |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in ns:
        for mode in modes:
            p = start_target(n, mode)
            try:
                res = {"pmprof": [], "py": [], "gdb": [], "eu": [], "eus": []}
                for _ in range(runs):
                    dt, r = timed([PMPROF, "stacks", "-p", str(p.pid)])
                    if r.returncode not in (0, 1):
                        print("pmprof failed:", r.stderr.strip(), file=sys.stderr)
                    res["pmprof"].append(dt)
                    # bin/pmprof runs `stacks` in C; the same through Python:
                    dt, _ = timed([PMPROF, "stacks", "-p", str(p.pid)],
                                  env=dict(os.environ, PMPROF_NO_FAST="1"))
                    res["py"].append(dt)
                    slow = skip_slow and n >= 256 and mode == "spin"
                    if not slow or not res["gdb"]:
                        dt, _ = timed(["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                                       "-p", str(p.pid), "-ex", "thread apply all bt"])
                        res["gdb"].append(dt)
                    if not slow or not res["eu"]:
                        dt, _ = timed(["eu-stack", "-p", str(p.pid)])
                        res["eu"].append(dt)
                        # the same work as pmprof: inline frames, file:line
                        dt, _ = timed(["eu-stack", "-i", "-s", "-p", str(p.pid)])
                        res["eus"].append(dt)
                pm, g, e = med(res["pmprof"]), med(res["gdb"]), med(res["eu"])
                es = med(res["eus"])
                print("| %d | %s | %s | %s | %s | %s | %s | %.1fx | %.1fx | %.1fx |" % (
                    n, mode, fmt_ms(pm), fmt_ms(med(res["py"])), fmt_ms(g), fmt_ms(e),
                    fmt_ms(es), g / pm, e / pm, es / pm))
                sys.stdout.flush()
            finally:
                stop_target(p)


GDB_INSIDE = r'''
import time, gdb
def walk():
    n = 0
    for th in gdb.selected_inferior().threads():
        th.switch()
        f = gdb.newest_frame()
        while f is not None:
            f.pc(); f.name(); n += 1
            f = f.older()
    return n
def t(fn):
    t0 = time.perf_counter(); fn(); return time.perf_counter() - t0
def cont():
    gdb.execute("continue &", to_string=True)
    time.sleep(0.05)
    gdb.execute("interrupt", to_string=True)
    time.sleep(0.05)
out = {}
out["pmprof_cold"] = t(lambda: gdb.execute("pmprof stacks", to_string=True))
out["pmprof_warm"] = t(lambda: gdb.execute("pmprof stacks", to_string=True))
out["bt_1"] = t(lambda: gdb.execute("thread apply all bt", to_string=True))
gdb.execute("flushregs", to_string=True)
out["bt_2"] = t(lambda: gdb.execute("thread apply all bt", to_string=True))
gdb.execute("flushregs", to_string=True)
out["walk"] = t(walk)
gdb.execute("flushregs", to_string=True)
out["pmprof_warm2"] = t(lambda: gdb.execute("pmprof stacks", to_string=True))
print("BENCH", " ".join("%s=%.6f" % kv for kv in out.items()))
'''


def inside_gdb(ns, modes, runs):
    print("\n## 2. Inside an attached gdb, target stopped (ms, median of %d)" % runs)
    print("| threads | mode | pmprof cold | pmprof warm | thread apply all bt (1st / 2nd) | Python walk | bt/pmprof warm | walk/pmprof warm |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(GDB_INSIDE)
        script = f.name
    try:
        for n in ns:
            for mode in modes:
                p = start_target(n, mode)
                try:
                    rows = []
                    for _ in range(runs):
                        r = subprocess.run(
                            ["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                             "-p", str(p.pid), "-ex", "set pagination off",
                             "-ex", "source " + GDB_SCRIPT, "-x", script],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            timeout=TIMEOUT)
                        line = [x for x in r.stdout.splitlines() if x.startswith("BENCH")]
                        if not line:
                            print("gdb run failed:", r.stderr[-500:], file=sys.stderr)
                            continue
                        rows.append(dict((k, float(v)) for k, v in
                                         (kv.split("=") for kv in line[0].split()[1:])))
                    if not rows:
                        continue
                    m = {k: med([r[k] for r in rows]) for k in rows[0]}
                    warm = min(m["pmprof_warm"], m["pmprof_warm2"])
                    print("| %d | %s | %s | %s | %s / %s | %s | %.0fx | %.0fx |" % (
                        n, mode, fmt_ms(m["pmprof_cold"]), fmt_ms(warm), fmt_ms(m["bt_1"]),
                        fmt_ms(m["bt_2"]), fmt_ms(m["walk"]), m["bt_2"] / warm, m["walk"] / warm))
                    sys.stdout.flush()
                finally:
                    stop_target(p)
    finally:
        os.unlink(script)


def breakdown(ns, modes, runs):
    sys.path.insert(0, os.path.join(ROOT, "python"))
    from pmprof import debug_cache_dir, load_core
    core = load_core()
    print("\n## 3. Where the time goes (C core directly, ms, median of %d; warm = second snapshot of one session)" % runs)
    print("| threads | mode | frames | stopped cold | stopped warm | per frame warm (us) | symbolize cold | symbolize warm | pprof write |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in ns:
        for mode in modes:
            p = start_target(n, mode)
            try:
                acc = {k: [] for k in ("cold", "warm", "symc", "symw", "write")}
                frames = 0
                for _ in range(runs):
                    # the debug cache the CLI and gdb use (decompressed libc DWARF)
                    s = core.open_pid(p.pid, cache_dir=debug_cache_dir())
                    snap = s.snapshot()
                    acc["cold"].append(snap.stopped_ns / 1e9)
                    keys = sorted({k for th in snap.threads() for k in th["pcs"]})
                    t0 = time.perf_counter()
                    snap.symbolize(keys)
                    acc["symc"].append(time.perf_counter() - t0)
                    snap = s.snapshot()
                    acc["warm"].append(snap.stopped_ns / 1e9)
                    frames = snap.nframes
                    keys = sorted({k for th in snap.threads() for k in th["pcs"]})
                    t0 = time.perf_counter()
                    snap.symbolize(keys)
                    acc["symw"].append(time.perf_counter() - t0)
                    with tempfile.TemporaryDirectory() as d:
                        t0 = time.perf_counter()
                        snap.write_pprof(os.path.join(d, "x.pb.gz"))
                        acc["write"].append(time.perf_counter() - t0)
                    s.close()
                m = {k: med(v) for k, v in acc.items()}
                print("| %d | %s | %d | %s | %s | %.2f | %s | %s | %s |" % (
                    n, mode, frames, fmt_ms(m["cold"]), fmt_ms(m["warm"]),
                    m["warm"] * 1e6 / max(frames, 1), fmt_ms(m["symc"]), fmt_ms(m["symw"]),
                    fmt_ms(m["write"])))
                sys.stdout.flush()
            finally:
                stop_target(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 run, 8 and 64 threads")
    ap.add_argument("--threads", default="1,8,64,256")
    ap.add_argument("--modes", default="block,spin")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=("standalone", "gdb", "breakdown"))
    a = ap.parse_args()
    if not os.path.exists(DEEP) or not os.path.exists(PMPROF):
        raise SystemExit("bench: run `make build targets` first")
    ns = [8, 64] if a.quick else [int(x) for x in a.threads.split(",")]
    runs = 1 if a.quick else a.runs
    modes = a.modes.split(",")
    print("# pmprof bench: %s, %d CPUs, %s" % (time.strftime("%Y-%m-%d"), os.cpu_count(),
                                             os.uname().release))
    if a.only in (None, "breakdown"):
        breakdown(ns, modes, runs)
    if a.only in (None, "standalone"):
        standalone(ns, modes, runs, skip_slow=True)
    if a.only in (None, "gdb"):
        inside_gdb(ns, modes, runs)


if __name__ == "__main__":
    main()
