"""damage: real cores of tests/targets, damaged, and every command on each.

    python3 tests/damage.py [--count N] [--seed S] [--jobs J] [--keep DIR]
                            [--cores NAME,...] [--timeout SEC] [--per-variant K]

Cores are made now (tests/fuzz/seeds.py: gcore of a target in place, made
small with compact_core: the same memory).  Each variant is one core with
one kind of damage, drawn from a seeded RNG (the same --seed, the same
variants):

  flip-load    1-64 bytes of PT_LOAD data changed (random bytes, or a word
               made a pointer into another segment, or all ones)
  flip-note    1-16 bytes of the notes changed (threads, registers, NT_FILE)
  cut          the file cut short: inside the notes, inside the program
               headers, or anywhere in the memory
  phdr         one program header made wrong: p_offset or p_filesz past EOF,
               a huge p_filesz or p_memsz, p_vaddr overlapping another
               segment or near 2^64, e_phnum/e_phoff wrong
  zero-stack   a thread's stack zeroed around its sp (or filled with bytes)
  pointers     1-32 of the words that point into the core's memory (the
               links of lists, trees, stacks and tables) made to point to
               themselves, 16 bytes back (loops), to another such word's
               target, past the end of their segment, to 0 or to
               0x4141414141414140

Every command of the core's kind runs on each variant (bin/pmprof, under
--timeout, default 20 s): C cores stacks (the C fast path), stacks --format
json (the Python path), threads, snapshot, locks, hang, heap; Go cores
stacks, goroutines, go memstats, go sched, snapshot.  `record` reads live
processes only.  --per-variant K: K commands per variant instead, in
rotation (CI: tests/test_damage.py).  Counted per run:

  crash       killed by a signal
  hang        still running at the timeout
  traceback   "Traceback" on stderr (an uncaught Python exception)
  multiline   a stderr line that does not start with "pmprof" (every
              message pmprof prints is one line of its own)
  status      an exit status not documented for the command (docs/
              commands.md: 0, 1 partial, 2 failed; locks/hang 3, 4)

The bar is 0 of each.  Prints the counts and every finding (the variant's
seed and damage, so it can be made again: --keep DIR saves bad variants).
Exit status 0 when all counts are 0, 1 otherwise.
"""

import argparse
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "fuzz"))

import helpers  # noqa: E402
import seeds  # noqa: E402

PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS = 1
RSP = 112 + 19 * 8          # elf_prstatus.pr_reg[19] (user_regs_struct.rsp)

C_COMMANDS = [["stacks"], ["stacks", "--format", "json"], ["threads"], ["snapshot"],
              ["locks"], ["hang"], ["heap"]]
GO_COMMANDS = [["stacks"], ["goroutines"], ["go", "memstats"], ["go", "sched"], ["snapshot"]]
STATUS = {"locks": {0, 1, 2, 3, 4}, "hang": {0, 1, 2, 3, 4}}
DEFAULT_STATUS = {0, 1, 2}

KINDS = ["flip-load", "flip-note", "cut", "phdr", "zero-stack", "pointers", "pointers"]
DEFAULT_CORES = ["locks-abba", "threads", "mallocs-big", "goprog"]


class CoreInfo:
    """Where the parts of a core are (offsets in the file)."""

    def __init__(self, b: bytes):
        self.phoff, = struct.unpack_from("<Q", b, 32)
        self.phnum, = struct.unpack_from("<H", b, 56)
        self.phdrs = []
        for i in range(self.phnum):
            self.phdrs.append(struct.unpack_from("<IIQQQQQQ", b, self.phoff + 56 * i))
        self.loads = [(i, p) for i, p in enumerate(self.phdrs) if p[0] == PT_LOAD]
        self.notes = [(p[2], p[5]) for p in self.phdrs if p[0] == PT_NOTE]
        self.sps = []
        for off, size in self.notes:
            pos, end = off, off + size
            while pos + 12 <= end:
                namesz, descsz, ntype = struct.unpack_from("<III", b, pos)
                desc = pos + 12 + ((namesz + 3) & ~3)
                if ntype == NT_PRSTATUS and descsz >= RSP + 8:
                    self.sps.append(struct.unpack_from("<Q", b, desc + RSP)[0])
                pos = desc + ((descsz + 3) & ~3)

        self._ptrs = None

    def ptrs(self, b: bytes) -> List[Tuple[int, int, int]]:
        """(file offset, address, value) of every aligned word whose value
        is an address inside a PT_LOAD."""
        if self._ptrs is None:
            import bisect
            ranges = sorted((p[3], p[3] + p[6]) for _i, p in self.loads)
            starts = [r[0] for r in ranges]
            self._ptrs = []
            for _i, p in self.loads:
                off, n = p[2], p[5] - p[5] % 8
                for k, (v,) in enumerate(struct.iter_unpack("<Q", b[off:off + n])):
                    if v < 0x1000:
                        continue
                    j = bisect.bisect_right(starts, v) - 1
                    if j >= 0 and v < ranges[j][1]:
                        self._ptrs.append((off + 8 * k, p[3] + 8 * k, v))
        return self._ptrs

    @staticmethod
    def nt_file_paths(b: bytes, info: "CoreInfo") -> List[str]:
        """The paths NT_FILE names."""
        out = []
        for off, size in info.notes:
            pos, end = off, off + size
            while pos + 12 <= end:
                namesz, descsz, ntype = struct.unpack_from("<III", b, pos)
                desc = pos + 12 + ((namesz + 3) & ~3)
                if ntype == 0x46494C45 and descsz >= 16:
                    count, = struct.unpack_from("<Q", b, desc)
                    strs = b[desc + 16 + 24 * count:desc + descsz].split(b"\0")
                    out += [s.decode("utf-8", "replace") for s in strs[:count]]
                pos = desc + ((descsz + 3) & ~3)
        return out

    def file_off(self, addr: int) -> Optional[Tuple[int, int]]:
        """(file offset of addr, bytes of file data from there) or None."""
        for _i, p in self.loads:
            if p[3] <= addr < p[3] + p[5]:
                return p[2] + addr - p[3], p[5] - (addr - p[3])
        return None


def damage(b: bytes, info: CoreInfo, kind: str, rng: random.Random) -> Tuple[bytes, str]:
    d = bytearray(b)
    loads = [(i, p) for i, p in info.loads if p[5] > 0]
    if kind == "flip-load":
        n = rng.randint(1, 64)
        how = rng.choice(["bytes", "pointer", "ones"])
        for _ in range(n):
            _i, p = rng.choice(loads)
            at = p[2] + rng.randrange(p[5])
            if how == "bytes":
                d[at] = rng.randrange(256)
            elif at + 8 <= p[2] + p[5]:
                _j, q = rng.choice(info.loads)
                v = q[3] + rng.randrange(max(q[6], 1)) if how == "pointer" else 2 ** 64 - 1
                struct.pack_into("<Q", d, at, v)
        return bytes(d), "%d %s in PT_LOAD data" % (n, how)
    if kind == "flip-note":
        off, size = rng.choice(info.notes)
        n = rng.randint(1, 16)
        for _ in range(n):
            at = off + rng.randrange(size)
            d[at] = rng.choice([0, 0xff, rng.randrange(256)])
        return bytes(d), "%d bytes of the notes" % n
    if kind == "cut":
        where = rng.choice(["notes", "phdrs", "memory", "memory"])
        if where == "notes":
            off, size = rng.choice(info.notes)
            at = off + rng.randrange(size)
        elif where == "phdrs":
            at = info.phoff + rng.randrange(56 * info.phnum)
        else:
            at = rng.randrange(info.notes[0][0] + info.notes[0][1], len(b))
        return bytes(d[:at]), "cut at %d of %d (%s)" % (at, len(b), where)
    if kind == "phdr":
        i, p = rng.choice(info.loads + [(j, q) for j, q in enumerate(info.phdrs)
                                        if q[0] == PT_NOTE])
        base = info.phoff + 56 * i
        what = rng.choice(["offset-past-eof", "filesz-past-eof", "filesz-huge", "memsz-huge",
                           "overlap", "vaddr-top", "phnum", "phoff", "offset-zero",
                           "filesz-odd"])
        if what == "offset-past-eof":
            struct.pack_into("<Q", d, base + 8, len(b) + rng.randrange(1, 1 << 20))
        elif what == "filesz-past-eof":
            struct.pack_into("<Q", d, base + 32, len(b) - p[2] + rng.randrange(1, 1 << 20))
        elif what == "filesz-huge":
            struct.pack_into("<Q", d, base + 32, rng.choice([2 ** 63, 2 ** 64 - 1, 1 << 40]))
        elif what == "memsz-huge":
            struct.pack_into("<Q", d, base + 40, rng.choice([2 ** 63, 2 ** 64 - 1, 1 << 40]))
        elif what == "overlap":
            _j, q = rng.choice(info.loads)
            struct.pack_into("<Q", d, base + 16, q[3] + rng.randrange(max(q[6], 1)))
        elif what == "vaddr-top":
            struct.pack_into("<Q", d, base + 16, 2 ** 64 - rng.randrange(1, 1 << 16))
        elif what == "phnum":
            struct.pack_into("<H", d, 56, rng.choice([0, 0xffff, info.phnum + 1,
                                                      info.phnum * 2]))
        elif what == "phoff":
            struct.pack_into("<Q", d, 32, rng.choice([len(b) - 10, len(b) + 8, 2 ** 63, 1]))
        elif what == "offset-zero":
            struct.pack_into("<Q", d, base + 8, 0)
        else:
            struct.pack_into("<Q", d, base + 32, max(p[5] - rng.randrange(1, 4096), 0))
        return bytes(d), "program header %d: %s" % (i, what)
    if kind == "pointers":
        ptrs = info.ptrs(b)
        n = rng.randint(1, 32)
        hows = []
        for _ in range(n):
            off, addr, v = rng.choice(ptrs)
            how = rng.choice(["self", "back16", "other", "past", "zero", "AAAA"])
            nv = {"self": addr, "back16": addr - 16, "other": rng.choice(ptrs)[2],
                  "past": v + (1 << 20) * rng.randint(1, 64), "zero": 0,
                  "AAAA": 0x4141414141414140}[how]
            struct.pack_into("<Q", d, off, nv % (1 << 64))
            hows.append(how)
        return bytes(d), "%d pointers (%s)" % (n, ",".join(sorted(set(hows))))
    # zero-stack
    if not info.sps:
        return bytes(d), "no thread to zero"
    sp = rng.choice(info.sps)
    loc = info.file_off(sp - 256)
    fill = rng.choice(["zeros", "bytes", "ones"])
    if loc is None:
        return bytes(d), "stack of sp %#x not in the core" % sp
    off, avail = loc
    n = min(avail, rng.choice([512, 4096, 65536]))
    if fill == "zeros":
        d[off:off + n] = bytes(n)
    elif fill == "ones":
        d[off:off + n] = b"\xff" * n
    else:
        d[off:off + n] = bytes(rng.randrange(256) for _ in range(n))
    return bytes(d), "%d bytes of %s at sp-256 (sp %#x)" % (n, fill, sp)


def check_run(cmd: List[str], r, timeout_hit: bool) -> List[Tuple[str, str]]:
    out = []
    if timeout_hit:
        return [("hang", "still running at the timeout")]
    if r.returncode < 0:
        out.append(("crash", "signal %d" % -r.returncode))
    err = r.stderr
    if "Traceback" in err:
        out.append(("traceback", err.strip().splitlines()[-1] if err.strip() else ""))
    bad = [l for l in err.splitlines() if l and not l.startswith("pmprof")]
    if bad and "Traceback" not in err:
        out.append(("multiline", bad[0][:160]))
    ok = STATUS.get(cmd[0], DEFAULT_STATUS)
    if r.returncode >= 0 and r.returncode not in ok:
        out.append(("status", "exit %d" % r.returncode))
    return out


def run_variant(path: str, exe: Optional[str], commands, timeout: float, tmp: str,
                hist: Optional[dict] = None):
    findings = []
    for cmd in commands:
        argv = [helpers.PMPROF] + cmd + ["--core", path]
        if exe:
            argv += ["--exe", exe]
        if cmd[0] == "snapshot":
            argv += ["-o", os.path.join(tmp, "s.pb.gz")]
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, errors="replace",
                               env=helpers.ENV, timeout=timeout)
            found = check_run(cmd, r, False)
            if hist is not None:
                hist[r.returncode] = hist.get(r.returncode, 0) + 1
        except subprocess.TimeoutExpired:
            found = check_run(cmd, None, True)
        findings += [(" ".join(cmd), k, m) for k, m in found]
    return findings


def run(count: int = 200, seed: int = 1, jobs: int = 2, keep: Optional[str] = None,
        cores: Optional[List[str]] = None, timeout: float = 20.0,
        core_dir: Optional[str] = None, out=sys.stdout, per_variant: int = 0) -> dict:
    """Makes the cores, `count` variants spread over them, runs them; returns
    {"variants", "runs", "seconds", counts per finding kind, "findings"}."""
    t0 = time.monotonic()
    core_dir = core_dir or os.path.join(helpers.ROOT, "build", "damage", "cores")
    made = seeds.make_cores(core_dir, cores or DEFAULT_CORES)
    if not made:
        raise RuntimeError("no cores: build the targets (make targets)")
    bases = []
    for c in made:
        with open(c.path, "rb") as f:
            b = f.read()
        bases.append((c, b, CoreInfo(b)))
    rng = random.Random(seed)
    plan = []
    for v in range(count):
        c, b, info = bases[v % len(bases)]
        kind = KINDS[(v // len(bases)) % len(KINDS)]
        vseed = rng.randrange(1 << 32)
        plan.append((v, c, b, info, kind, vseed))
    tmp = tempfile.mkdtemp(prefix="pmprof-damage-")
    counts = {"crash": 0, "hang": 0, "traceback": 0, "multiline": 0, "status": 0}
    findings = []
    runs = [0]
    hist = {}

    def one(item):
        v, c, b, info, kind, vseed = item
        data, what = damage(b, info, kind, random.Random(vseed))
        vdir = os.path.join(tmp, str(v))
        os.makedirs(vdir)
        path = os.path.join(vdir, "core")
        with open(path, "wb") as f:
            f.write(data)
        commands = GO_COMMANDS if c.kind == "go" else C_COMMANDS
        if per_variant:     # a rotating subset: every command meets every damage
            k = v // len(bases)
            commands = [commands[(k * per_variant + i) % len(commands)]
                        for i in range(min(per_variant, len(commands)))]
        # half the runs name the executable, half trust the core's NT_FILE
        fs = run_variant(path, c.exe if v % 2 == 0 else None, commands, timeout, vdir, hist)
        runs[0] += len(commands)
        if fs and keep:
            os.makedirs(keep, exist_ok=True)
            os.replace(path, os.path.join(keep, "%s-%d-%s.core" % (c.name, v, kind)))
        else:
            os.unlink(path)
        return v, c, kind, vseed, what, fs

    with ThreadPoolExecutor(max_workers=jobs) as ex:
        for v, c, kind, vseed, what, fs in ex.map(one, plan):
            for cmd, k, msg in fs:
                counts[k] += 1
                findings.append("variant %d (%s, %s, seed %d: %s) %s: %s %s" % (
                    v, c.name, kind, vseed, what, cmd, k, msg))
    subprocess.run(["rm", "-rf", tmp])
    res = dict(counts, variants=count, runs=runs[0], seconds=time.monotonic() - t0,
               findings=findings, statuses=hist)
    print("damage: %d variants of %d cores (%s), %d command runs in %.0f s, seed %d, jobs %d" % (
        count, len(made), ",".join(c.name for c in made), res["runs"], res["seconds"], seed,
        jobs), file=out)
    print("damage: crashes %(crash)d  hangs %(hang)d  tracebacks %(traceback)d  "
          "multi-line errors %(multiline)d  undocumented exit status %(status)d" % counts,
          file=out)
    print("damage: exit statuses %s" % "  ".join("%d: %d" % kv for kv in sorted(hist.items())),
          file=out)
    for f in findings:
        print("  " + f, file=out)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep")
    ap.add_argument("--cores", default=",".join(DEFAULT_CORES))
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--per-variant", type=int, default=0,
                    help="commands run on each variant, rotating (0: all)")
    a = ap.parse_args()
    res = run(a.count, a.seed, a.jobs, a.keep, [c for c in a.cores.split(",") if c],
              a.timeout, per_variant=a.per_variant)
    bad = sum(res[k] for k in ("crash", "hang", "traceback", "multiline", "status"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
