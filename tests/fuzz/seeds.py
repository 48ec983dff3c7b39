"""seeds: small real cores of tests/targets, for the fuzzers and damage.py.

    make_cores(outdir, names=None) -> [Core]

Each core is made now, by gdb's gcore of the running target (in place:
READY read), then shrunk with compact_core (same memory, zero pages left
out).  Nothing is committed: the cores name this machine's files.

Owns: which targets, in which situation, make the seeds.  Must not: keep
a target running after it returns.
"""

import os
import sys
from dataclasses import dataclass
from typing import List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))      # tests/ (helpers)
sys.path.insert(0, HERE)

import compact_core  # noqa: E402
import helpers  # noqa: E402


@dataclass
class Core:
    name: str       # e.g. "locks-abba"
    path: str       # the compact core
    exe: str
    kind: str       # "c-locks", "c-heap", "c-threads", "go"


# name, target, args, kind, cap of the memory kept (bytes; 0: all)
CORES = [
    ("locks-abba", "locks", ["abba"], "c-locks", 0),
    ("locks-rw_writer", "locks", ["rw_writer"], "c-locks", 0),
    ("locks-cond", "locks", ["cond"], "c-locks", 0),
    ("locks-robust", "locks", ["robust"], "c-locks", 0),
    ("locks-stdio", "locks", ["stdio"], "c-locks", 0),
    ("threads", "threads", [], "c-threads", 0),
    ("mallocs-big", "mallocs", ["big", "2000"], "c-heap", 0),
    ("mallocs", "mallocs", [], "c-heap", 2 << 20),
    ("gohello", "gohello", [], "go", 0),
    ("goprog", "goprog", ["--out", None, "--no-spin"], "go", 0),
]


def make_cores(outdir: str, names: Optional[List[str]] = None) -> List[Core]:
    os.makedirs(outdir, exist_ok=True)
    out = []
    for name, target, args, kind, cap in CORES:
        if names and name not in names:
            continue
        exe = os.path.join(helpers.TARGETS, target)
        if not os.path.exists(exe):
            print("seeds: %s not built, skipped" % target)
            continue
        small = os.path.join(outdir, name + ".core")
        if os.path.exists(small):
            out.append(Core(name, small, exe, kind))
            continue
        if None in args:        # goprog --out DIR: its own report, unused here
            os.makedirs(os.path.join(outdir, name + ".out"), exist_ok=True)
            args = [os.path.join(outdir, name + ".out") if a is None else a for a in args]
        t = helpers.Target(target, args)
        try:
            big = helpers.gcore(t.pid, os.path.join(outdir, name + ".big"))
        finally:
            t.kill()
        with open(big, "rb") as f:
            data = compact_core.compact(f.read(), cap)
        os.unlink(big)
        with open(small + ".tmp", "wb") as f:
            f.write(data)
        os.replace(small + ".tmp", small)
        out.append(Core(name, small, exe, kind))
    return out
