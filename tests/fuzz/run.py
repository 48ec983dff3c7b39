"""run: every libFuzzer harness of build/fuzz for a fixed time (make fuzz).

    python3 tests/fuzz/run.py [--seconds N] [--only NAME,...] [--build DIR]

Seeds are made first (tests/fuzz/seeds.py: compact cores of tests/targets;
.gopclntab sections of the Go targets), then each harness runs N seconds
(-timeout 30: an input taking longer is a hang) over its corpus
(DIR/corpus/NAME, kept between runs) and the seeds.  After a crash the
harness is started again until its time is used, so every crash is
counted.  Prints one line per harness: executions, exec/s, crashes, hangs,
ooms, corpus size; crashing inputs are in DIR/crashes/NAME/.  Exit status 1
when anything crashed or hung.
"""

import argparse
import functools
import glob
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import memimage  # noqa: E402
import seeds  # noqa: E402

print = functools.partial(print, flush=True)  # noqa: A001 (make fuzz shows progress)

# harness -> kinds of core it gets as seeds (gopclntab: sections)
HARNESSES = {
    "stacks": ("c-locks", "c-threads", "go"),
    "locks": ("c-locks",),
    "heap": ("c-heap",),
    "go": ("go",),
    "gopclntab": (),
    "mem-heap": ("c-heap",),      # memory images of the cores (memimage.py)
    "mem-locks": ("c-locks",),
}


def gopclntab_seeds(dst):
    os.makedirs(dst, exist_ok=True)
    for name in ("gohello", "goprog", "gochurn"):
        exe = os.path.join(ROOT, "tests", "targets", "bin", name)
        out = os.path.join(dst, name + ".gopclntab")
        if os.path.exists(exe) and not os.path.exists(out):
            subprocess.run(["objcopy", "-O", "binary", "--only-section=.gopclntab", exe, out],
                           check=True)


def run_one(binary, name, seconds, build, seed_dir, env):
    corpus = os.path.join(build, "corpus", name)
    crashes = os.path.join(build, "crashes", name)
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    before = set(os.listdir(crashes))
    execs, crash, hang, oom, starts = 0, 0, 0, 0, 0
    deadline = time.monotonic() + seconds
    while True:
        left = int(deadline - time.monotonic())
        if left < 1:
            break
        starts += 1
        argv = [binary, "-max_total_time=%d" % left, "-timeout=30", "-rss_limit_mb=4096",
                "-print_final_stats=1", "-artifact_prefix=%s/" % crashes, corpus, seed_dir]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, errors="replace", env=env, cwd=ROOT,
                           timeout=left + 120)
        out = p.stdout
        m = re.search(r"stat::number_of_executed_units:\s+(\d+)", out)
        if m:
            execs += int(m.group(1))
        else:
            ms = re.findall(r"^#(\d+)\s", out, re.M)
            execs += int(ms[-1]) if ms else 0
        if p.returncode == 0:
            break
        if "ERROR: libFuzzer: timeout" in out:
            hang += 1
        elif "out-of-memory" in out:
            oom += 1
        else:
            crash += 1
        with open(os.path.join(build, "last-%s.log" % name), "w") as f:
            f.write(out)
        tail = [l for l in out.splitlines() if "ERROR" in l or "SUMMARY" in l or "runtime error" in l]
        print("  %s: %s" % (name, "; ".join(tail[:3]) or "exit %d" % p.returncode))
        if starts > 50:
            break
    new = sorted(set(os.listdir(crashes)) - before)
    return execs, crash, hang, oom, len(os.listdir(corpus)), new


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--only", default="")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "fuzz"))
    a = ap.parse_args()
    only = [x for x in a.only.split(",") if x]
    wanted = set(k for n, ks in HARNESSES.items() if not only or n in only for k in ks)
    cores = seeds.make_cores(os.path.join(a.build, "cores"),
                             [c[0] for c in seeds.CORES if c[3] in wanted]) if wanted else []
    env = dict(os.environ, DEBUGINFOD_URLS="",
               PMPROF_FUZZ_CACHE=os.path.join(a.build, "debug-cache"),
               PMPROF_FUZZ_GOEXE=os.path.join(ROOT, "tests", "targets", "bin", "gohello"),
               ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    os.makedirs(env["PMPROF_FUZZ_CACHE"], exist_ok=True)
    bad = 0
    total_execs = 0
    t0 = time.monotonic()
    for name, kinds in HARNESSES.items():
        if only and name not in only:
            continue
        binary = os.path.join(a.build, "fuzz-" + name)
        seed_dir = os.path.join(a.build, "seeds", name)
        shutil.rmtree(seed_dir, ignore_errors=True)
        os.makedirs(seed_dir)
        if name == "gopclntab":
            gopclntab_seeds(seed_dir)
        for c in cores:
            if c.kind not in kinds:
                continue
            if name.startswith("mem-"):
                with open(os.path.join(seed_dir, c.name), "wb") as f:
                    f.write(memimage.image(c.path, c.exe, name[4:]))
            else:
                os.link(c.path, os.path.join(seed_dir, c.name))
        if not os.listdir(seed_dir):
            print("fuzz-%s: no seeds (targets not built?), skipped" % name)
            continue
        execs, crash, hang, oom, ncorpus, new = run_one(binary, name, a.seconds, a.build,
                                                        seed_dir, env)
        total_execs += execs
        print("fuzz-%-10s %3d s  %8d executions  %6.0f exec/s  crashes %d  hangs %d  "
              "ooms %d  corpus %d  seeds %d" % (name, a.seconds, execs, execs / max(a.seconds, 1),
                                                crash, hang, oom, ncorpus,
                                                len(os.listdir(seed_dir))))
        for f in new:
            print("  saved: %s" % os.path.join(a.build, "crashes", name, f))
        bad += crash + hang
    print("fuzz: %d executions in %.0f s, %d crashes/hangs" % (total_execs, time.monotonic() - t0,
                                                              bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
