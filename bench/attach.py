#!/usr/bin/env python3
"""pmprof record's attach lifecycle, old vs new: prints figures, asserts nothing.

Issue 15 changed `record` from "seize every thread once, then per sample
interrupt -> read -> resume" (traced for the whole recording, clone events
followed) to "per sample seize -> interrupt -> read -> detach" (traced only
while stopped).  This measures what that costs per sample, on the bare
ptrace floor (the C core's `record(floor=True)`: no unwinding, 256-byte
stack read, ptrace method) of two builds side by side: this tree and an
older revision (default HEAD~N where the old design is; --old-rev), built
from `git archive` into a temporary directory.

Per configuration (bench/targets/bin/spinner, N threads spinning or
blocked; 997 Hz for --duration s), alternating old and new runs (--tries
pairs), medians of:
  - pause: the time the target is held per cycle (first interrupt or seize
    to the last resume or detach), median and p99;
  - sampler CPU per cycle: the sampler process's user+system CPU time
    divided by its cycles (what a sample costs the machine);
  - achieved rate and lost (cycle, thread) samples.

Then the ptrace calls alone, for one sleeping thread (bench/attach_cost.c,
built here with cc): old interrupt+waitpid+cont against new
seize+interrupt+waitid+detach, 20000 samples each, 3 runs.

Usage: python3 bench/attach.py [--old-rev REV] [--threads 1,8,64]
       [--duration S] [--tries N] [--hz HZ]
Needs root (ptrace), `make build` and `make -C bench/targets`.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPINNER = os.path.join(ROOT, "bench", "targets", "bin", "spinner")
PYTHON = "/usr/bin/python3.11"

FLOOR = r'''
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from pmprof import load_core
core = load_core()
s = core.open_pid(int(sys.argv[2]))
r0 = resource.getrusage(resource.RUSAGE_SELF)
rec = s.record(hz=float(sys.argv[3]), duration=float(sys.argv[4]), floor=True)
r1 = resource.getrusage(resource.RUSAGE_SELF)
st = rec.stats()
st["cpu_s"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps(st))
s.close()
'''


def build_old(rev, tmp):
    d = os.path.join(tmp, "old")
    os.makedirs(d)
    arch = subprocess.run(["git", "-C", ROOT, "archive", rev], stdout=subprocess.PIPE,
                          check=True).stdout
    subprocess.run(["tar", "-x", "-C", d], input=arch, check=True)
    r = subprocess.run(["make", "build"], cwd=d, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("bench: building %s failed:\n%s" % (rev, r.stdout[-2000:]))
    return os.path.join(d, "python")


def floor(pypath, pid, hz, dur):
    r = subprocess.run([PYTHON, "-c", FLOOR, pypath, str(pid), str(hz), str(dur)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=dur + 120)
    if r.returncode != 0:
        print("bench: floor failed: " + r.stderr.strip()[-500:], file=sys.stderr)
        return None
    return json.loads(r.stdout)


def med(v):
    return statistics.median(v) if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old-rev", default="790b962",
                    help="a revision with the old design (default: the last one)")
    ap.add_argument("--threads", default="1,8,64")
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--hz", type=float, default=997)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pmprof-bench-attach-") as tmp:
        builds = [("old " + a.old_rev, build_old(a.old_rev, tmp)),
                  ("new (this tree)", os.path.join(ROOT, "python"))]
        print("## record attach lifecycle, bare ptrace floor, %.0f Hz, %.1f s runs, "
              "medians of %d runs each (load average at start: %s)\n"
              % (a.hz, a.duration, a.tries, open("/proc/loadavg").read().split()[0]))
        print("| threads | mode | build | Hz | pause med / p99 (us) | sampler CPU per cycle (us) "
              "| lost / cycle |")
        print("|---|---|---|---|---|---|---|")
        for n in [int(x) for x in a.threads.split(",")]:
            for mode in ("spin", "block"):
                tg = subprocess.Popen([SPINNER, "--timeout", "600", str(n), mode],
                                      stdout=subprocess.PIPE, text=True)
                tg.stdout.readline()          # its first line: ready
                time.sleep(0.3)
                res = {b: [] for b, _ in builds}
                for _ in range(a.tries):
                    for b, py in builds:
                        st = floor(py, tg.pid, a.hz, a.duration)
                        if st and st["samples"]:
                            res[b].append(st)
                tg.kill()
                tg.wait()
                for b, _ in builds:
                    v = res[b]
                    if not v:
                        print("| %d | %s | %s | failed | | | |" % (n, mode, b))
                        continue
                    print("| %d | %s | %s | %.0f | %.0f / %.0f | %.1f | %.2f |" % (
                        n, mode, b, med([s["rate_hz"] for s in v]),
                        med([s["pause_median_ns"] / 1e3 for s in v]),
                        med([s["pause_p99_ns"] / 1e3 for s in v]),
                        med([s["cpu_s"] * 1e6 / s["samples"] for s in v]),
                        med([s["lost"] / s["samples"] for s in v])))
                sys.stdout.flush()
        exe = os.path.join(tmp, "attach_cost")
        subprocess.run(["cc", "-O2", "-o", exe, os.path.join(ROOT, "bench", "attach_cost.c")],
                       check=True)
        print("\n## the ptrace calls of one thread sample (bench/attach_cost.c, 20000 "
              "samples of a thread in pause(), 3 runs)\n")
        for _ in range(3):
            print(subprocess.run([exe, "20000"], stdout=subprocess.PIPE, text=True,
                                 check=True).stdout.rstrip())


if __name__ == "__main__":
    main()
