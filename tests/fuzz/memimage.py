"""memimage: seeds for fuzz-mem (tests/fuzz/fuzz-mem.c) from a real core.

    images(core, exe, kind) -> bytes   kind "heap" or "locks"

The image holds every thread's registers (NT_PRSTATUS), three parameters
and the core's writable memory (PT_LOADs with PF_W and bytes in the core;
each cut to 256 KiB, 2 MiB in all).  heap: main_arena, mp_ and the
tcache's offset from the thread pointer, asked from gdb (the libc's debug
info, libc6-dbg).  locks: no parameters.
"""

import re
import struct
import subprocess
import sys
import os

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import helpers  # noqa: E402

PT_LOAD, PT_NOTE, NT_PRSTATUS, PF_W = 1, 4, 1, 2
SEG_CAP, TOTAL_CAP = 256 << 10, 2 << 20


def _gdb_params(core, exe):
    r = subprocess.run([helpers.GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off",
                        "-ex", "p/x (long)&main_arena", "-ex", "p/x (long)&mp_",
                        "-ex", "p/x (long)&tcache - (long)$fs_base", exe, core],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120, env=helpers.ENV)
    vals = re.findall(r"^\$\d+ = (0x[0-9a-f]+)", r.stdout, re.M)
    if len(vals) != 3:
        raise RuntimeError("gdb did not find main_arena/mp_/tcache:\n" + r.stdout)
    return [int(v, 16) for v in vals]


def image(core, exe, kind):
    with open(core, "rb") as f:
        b = f.read()
    phoff, = struct.unpack_from("<Q", b, 32)
    phnum, = struct.unpack_from("<H", b, 56)
    phs = [struct.unpack_from("<IIQQQQQQ", b, phoff + 56 * i) for i in range(phnum)]
    threads = []
    for p in phs:
        if p[0] != PT_NOTE:
            continue
        pos, end = p[2], p[2] + p[5]
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", b, pos)
            desc = pos + 12 + ((namesz + 3) & ~3)
            if ntype == NT_PRSTATUS and descsz >= 112 + 27 * 8 and len(threads) < 64:
                tid, = struct.unpack_from("<i", b, desc + 32)
                threads.append(struct.pack("<iI", tid, 0) + b[desc + 112:desc + 112 + 216])
            pos = desc + ((descsz + 3) & ~3)
    params = _gdb_params(core, exe) if kind == "heap" else [0, 0, 0]
    segs, total = [], 0
    for p in phs:
        if p[0] != PT_LOAD or not p[1] & PF_W or p[5] == 0 or len(segs) >= 256:
            continue
        n = min(p[5], SEG_CAP, TOTAL_CAP - total)
        if n <= 0:
            break
        segs.append(struct.pack("<QI", p[3], n) + b[p[2]:p[2] + n])
        total += n
    return (b"PMPM" + struct.pack("<I", len(threads)) + b"".join(threads) +
            struct.pack("<QQQI", params[0], params[1], params[2] % (1 << 64), len(segs)) +
            b"".join(segs))
