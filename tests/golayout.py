"""The Go runtime layouts of ext/layouts/layout-go.c from the test side: where
each field of the table comes from in a Go version's own DWARF and
runtime source, and a reader of the table's rows.

Owns: FIELDS (table field -> DWARF type and member path), dwarf_row()
(one version's figures read by gdb from an unstripped binary built with
that toolchain, through tests/golayout_gdb.py), source_row() (the
figures DWARF does not carry: the g status constants), table_rows() (the
rows of ext/layouts/layout-go.c as dicts).

Must not: import gdb or pmprof; know any offset (they come from DWARF).
"""

import json
import os
import re
import subprocess
from typing import Dict, List

from helpers import ROOT

HEADER = os.path.join(ROOT, "ext", "layouts", "layout-go.c")   # the rows
GDB_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golayout_gdb.py")

# table field -> (DWARF type, [member paths, the first one present wins];
# "" = the type's size).  A field whose paths are all absent must be 0 in
# the table (no member at offset 0 is ever optional).
FIELDS: Dict[str, tuple] = {
    "g_size": ("runtime.g", [""]),
    "g_m": ("runtime.g", ["m"]),
    "g_sched_sp": ("runtime.g", ["sched.sp"]),
    "g_sched_pc": ("runtime.g", ["sched.pc"]),
    "g_sched_bp": ("runtime.g", ["sched.bp"]),
    "g_syscallsp": ("runtime.g", ["syscallsp"]),
    "g_syscallpc": ("runtime.g", ["syscallpc"]),
    "g_status": ("runtime.g", ["atomicstatus"]),
    "g_goid": ("runtime.g", ["goid"]),
    "g_waitsince": ("runtime.g", ["waitsince"]),
    "g_waitreason": ("runtime.g", ["waitreason"]),
    "g_lockedm": ("runtime.g", ["lockedm"]),
    "g_gopc": ("runtime.g", ["gopc"]),
    "g_startpc": ("runtime.g", ["startpc"]),
    "g_waiting": ("runtime.g", ["waiting"]),
    "g_labels": ("runtime.g", ["labels"]),
    "g_parentgoid": ("runtime.g", ["parentGoid"]),
    "sudog_g": ("runtime.sudog", ["g"]),
    "sudog_next": ("runtime.sudog", ["next"]),
    "sudog_prev": ("runtime.sudog", ["prev"]),
    # 1.26: maybeTraceablePtr{vp, vu}; vu is the source of truth
    "sudog_elem": ("runtime.sudog", ["elem.vu", "elem"]),
    "sudog_waitlink": ("runtime.sudog", ["waitlink"]),
    "sudog_c": ("runtime.sudog", ["c.maybeTraceablePtr.vu", "c"]),
    "m_g0": ("runtime.m", ["g0"]),
    "m_procid": ("runtime.m", ["procid"]),
    "m_curg": ("runtime.m", ["curg"]),
    "m_id": ("runtime.m", ["id"]),
    "m_alllink": ("runtime.m", ["alllink"]),
    "p_id": ("runtime.p", ["id"]),
    "p_status": ("runtime.p", ["status"]),
    "p_runqhead": ("runtime.p", ["runqhead"]),
    "p_runqtail": ("runtime.p", ["runqtail"]),
    "p_runnext": ("runtime.p", ["runnext"]),
    "sched_goidgen": ("runtime.schedt", ["goidgen"]),
    "sched_nmidle": ("runtime.schedt", ["nmidle"]),
    "sched_mnext": ("runtime.schedt", ["mnext"]),
    "sched_maxmcount": ("runtime.schedt", ["maxmcount"]),
    "sched_nmfreed": ("runtime.schedt", ["nmfreed"]),
    "sched_npidle": ("runtime.schedt", ["npidle"]),
    "sched_nmspinning": ("runtime.schedt", ["nmspinning"]),
    # 1.26: the global run queue's length is runq.size (a gQueue)
    "sched_runqsize": ("runtime.schedt", ["runqsize", "runq.size"]),
    "ms_last_gc_unix": ("runtime.mstats", ["last_gc_unix"]),
    "ms_pause_total": ("runtime.mstats", ["pause_total_ns"]),
    "ms_pause_ns": ("runtime.mstats", ["pause_ns"]),
    "ms_pause_end": ("runtime.mstats", ["pause_end"]),
    "ms_numgc": ("runtime.mstats", ["numgc"]),
    "ms_numforcedgc": ("runtime.mstats", ["numforcedgc"]),
    "ms_last_gc_nanotime": ("runtime.mstats", ["last_gc_nanotime"]),
    "gc_percent": ("runtime.gcControllerState", ["gcPercent"]),
    "gc_memlimit": ("runtime.gcControllerState", ["memoryLimit"]),
    "gc_heapmin": ("runtime.gcControllerState", ["heapMinimum"]),
    "gc_lastgoal": ("runtime.gcControllerState", ["lastHeapGoal"]),
    "gc_heaplive": ("runtime.gcControllerState", ["heapLive"]),
    "gc_heapmarked": ("runtime.gcControllerState", ["heapMarked"]),
    "gc_heapinuse": ("runtime.gcControllerState", ["heapInUse"]),
    "gc_totalalloc": ("runtime.gcControllerState", ["totalAlloc"]),
    "gc_totalfree": ("runtime.gcControllerState", ["totalFree"]),
    "gc_mappedready": ("runtime.gcControllerState", ["mappedReady"]),
    "semroot_treap": ("runtime.semaRoot", ["treap"]),
    "semroot_nwait": ("runtime.semaRoot", ["nwait"]),
}
# Read from the variable runtime.semtable's type: entries and entry size.
SPECIAL = ["semtab_n", "semtab_entry", "labels_slice", "status_max", "status_deadextra"]


def dwarf_fields(binary: str, want: Dict[str, list], extra: bool = False) -> Dict[str, int]:
    """{name: [type, [paths]]} -> {name: offset} from binary's DWARF through
    gdb (extra: also the table's semtable and labels figures)."""
    env = dict(os.environ, PMPROF_GOLAYOUT=json.dumps(want),
               PMPROF_GOLAYOUT_EXTRA="1" if extra else "")
    r = subprocess.run(["gdb", "-nx", "-batch", "-ex", "source " + GDB_SCRIPT, binary],
                       capture_output=True, text=True, env=env, timeout=300)
    for ln in r.stdout.splitlines():
        if ln.startswith("GOLAYOUT "):
            return json.loads(ln[len("GOLAYOUT "):])
    raise AssertionError("gdb gave no layout for %s:\n%s%s" % (binary, r.stdout, r.stderr))


def dwarf_row(binary: str) -> Dict[str, int]:
    """The table's figures for the toolchain that built `binary`
    (unstripped), from its DWARF."""
    return dwarf_fields(binary, {k: [t, paths] for k, (t, paths) in FIELDS.items()}, True)


def source_row(goroot: str) -> Dict[str, int]:
    """The g status constants from the version's runtime2.go (Go emits no
    DWARF for constants): the highest status and _Gdeadextra (1.26+)."""
    with open(os.path.join(goroot, "src", "runtime", "runtime2.go")) as f:
        text = f.read()
    start = text.index("_Gidle = iota")
    block = text[start:text.index("_Gscan ", start)]
    names = re.findall(r"^\t(_G\w+)\b", "\t" + block, flags=re.M)
    return {"status_max": len(names) - 1,
            "status_deadextra": names.index("_Gdeadextra") if "_Gdeadextra" in names else 0}


def table_rows() -> List[Dict[str, int]]:
    """The rows of ext/layouts/layout-go.c: [{field: value}] (with "minor")."""
    with open(HEADER) as f:
        text = f.read()
    body = text[text.index("pmp_go_layouts[] = {"):]
    rows = []
    for m in re.finditer(r"\{\s*(\.minor\s*=.*?)\}", body, flags=re.S):
        rows.append({k: int(v, 0) for k, v in
                     re.findall(r"\.(\w+)\s*=\s*(-?(?:0x)?[0-9a-fA-F]+)", m.group(1))})
    return rows
