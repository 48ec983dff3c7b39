#!/usr/bin/env python3
"""pmprof stacks inside lldb vs lldb's own `bt all`, in one lldb session.

    python3 bench/lldb.py [--threads 1,8,64] [--mode block|spin] [--runs 5]

For each thread count: start tests/targets/bin/deep N MODE, attach
`lldb-16 -b`, then inside that one session time (in lldb's Python, wall
clock around SBCommandInterpreter.HandleCommand):
  - `bt all` twice (lldb's unwinder and symbolizer; the 2nd is warm),
  - `pmprof stacks` cold (first call: opens the session, loads debug info),
  - `pmprof stacks` warm (median of --runs), with memory read from
    /proc/PID/mem and, again, read through lldb (PMPROF_LLDB_READS=lldb),
  - where a warm call goes: registers read from lldb (forced by bumping
    nothing: a new stop id would re-read them; measured alone here).
Prints a markdown table; bench/README.md keeps the figures.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEEP = os.path.join(ROOT, "tests", "targets", "bin", "deep")
SCRIPT = os.path.join(ROOT, "lldb", "pmprof.py")
LLDB = os.environ.get("LLDB", "lldb-16")

PROBE = r'''
import json, os, time, statistics, lldb
ci = lldb.debugger.GetCommandInterpreter()
def run(cmd):
    r = lldb.SBCommandReturnObject()
    t0 = time.perf_counter()
    ci.HandleCommand(cmd, r)
    dt = (time.perf_counter() - t0) * 1e3
    assert r.Succeeded(), (cmd, r.GetError())
    return dt, r.GetOutput()
out = {}
out["bt1"], bt = run("bt all")
out["bt2"], _ = run("bt all")
out["frames_bt"] = bt.count("frame #")
out["cold"], txt = run("pmprof stacks")
out["warm"] = statistics.median(run("pmprof stacks")[0] for _ in range(RUNS))
os.environ["PMPROF_LLDB_READS"] = "lldb"
out["via_cold"] = run("pmprof stacks")[0]
out["via_warm"] = statistics.median(run("pmprof stacks")[0] for _ in range(RUNS))
import sys
m = sys.modules["pmprof.frontends.lldb"]
p = lldb.process
t0 = time.perf_counter()
fs = m._thread_pointers(lldb.target, p)
regs = [m._thread_regs(t, fs) for t in p]
out["regs"] = (time.perf_counter() - t0) * 1e3
print("BENCH " + json.dumps(out))
'''


def one(n, mode, runs):
    t = subprocess.Popen([DEEP, str(n), mode], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        while b"READY" not in t.stdout.readline():
            pass
        time.sleep(0.3)
        probe = PROBE.replace("RUNS", str(runs))
        path = "/tmp/pmprof-bench-lldb-%d.py" % os.getpid()
        with open(path, "w") as f:
            f.write(probe)
        r = subprocess.run([LLDB, "--no-lldbinit", "-b", "-O", "command script import " + SCRIPT,
                            "-p", str(t.pid), "-o", "script exec(open(%r).read())" % path],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=600,
                           env=dict(os.environ, DEBUGINFOD_URLS=""))
        os.unlink(path)
        line = [x for x in r.stdout.splitlines() if x.startswith("BENCH ")]
        if not line:
            sys.exit("lldb run failed:\n%s\n%s" % (r.stdout[-2000:], r.stderr[-2000:]))
        return json.loads(line[0][6:])
    finally:
        t.kill()
        t.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,8,64")
    ap.add_argument("--mode", default="block", choices=("block", "spin"))
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    print("| threads | mode | lldb frames | bt all 1st / 2nd | pmprof cold | pmprof warm | "
          "bt 2nd / pmprof warm | warm, memory via lldb | registers from lldb |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in [int(x) for x in a.threads.split(",")]:
        o = one(n, a.mode, a.runs)
        print("| %d | %s | %d | %.1f / %.1f | %.1f | %.2f | %.0fx | %.2f | %.2f |" % (
            n, a.mode, o["frames_bt"], o["bt1"], o["bt2"], o["cold"], o["warm"],
            o["bt2"] / o["warm"], o["via_warm"], o["regs"]))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
