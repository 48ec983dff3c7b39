"""pmprof goroutines / pmprof go: a Go program's runtime from outside
(the releases ext/layouts/layout-go.h has a row for; docs/go.md).

The C core (ext/inspect/golang.c, ext/unwind/gopclntab.c) reads every goroutine while the
target is stopped and unwinds it with the binary's own function table;
this module applies Go's conventions (hidden runtime frames, "created by",
the wait header) so the output reads like /debug/pprof/goroutine?debug=2
of the target's own release (1.21+: "created by F in goroutine N").
"""

import json

from pmprof import PmprofError
from pmprof.commands import EXIT_OK, EXIT_PARTIAL, command, new_parser

SCHEMA = "pmprof.goroutines-1"

# Fields of the goroutine tuples Snapshot.go_info() returns (ext/python/module.c).
(GOID, STATUS, REASON, WAIT_NS, LOCKED, TID, SYSTEM, STACK, LABELS, GOPC, CHAN, SEMA,
 ERROR, PARENT) = range(14)
SCHEMA_MEMSTATS = "pmprof.go-memstats-1"
SCHEMA_SCHED = "pmprof.go-sched-1"

# What a goroutine waiting for one of these can only be woken by another
# goroutine (no timer, no network, no system call): if every user
# goroutine waits like that, the program is deadlocked.
ASLEEP_REASONS = {"chan receive", "chan send", "chan receive (nil chan)",
                  "chan send (nil chan)", "select", "select (no cases)",
                  "semacquire", "sync.Cond.Wait",
                  # 1.24+: sync's own reasons instead of "semacquire"
                  "sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.RWMutex.Lock",
                  "sync.WaitGroup.Wait"}

parser = new_parser(
    "goroutines",
    "Every goroutine of a Go program (Go 1.19, 1.21-1.24, 1.26; live or core,\n"
    "stripped binaries too), in its release's own traceback format, like\n"
    "/debug/pprof/goroutine?debug=2:\n"
    "the header [wait reason, N minutes] from the runtime's g.waitsince,\n"
    "frames with file:line (inlined calls expanded), `created by`.  Go's\n"
    "hiding rules apply: wrappers dropped, runtime.* frames and system\n"
    "goroutines hidden unless --runtime.\n"
    "\n"
    "The wait duration is what the runtime records: it is set by the first\n"
    "GC that sees the goroutine blocked, so it is a lower bound and is\n"
    "missing before any GC (Go prints it only from 1 minute on).",
)
parser.add_argument("--group", action="store_true",
                    help="merge goroutines with identical stacks and labels, "
                         "with counts (like debug=1)")
parser.add_argument("--runtime", action="store_true",
                    help="show runtime frames and system goroutines")
parser.add_argument("--state", metavar="STATE",
                    help="only goroutines in this status (waiting, runnable, "
                         "running, syscall, ...) or with this exact header")
parser.add_argument("--reason", metavar="TEXT",
                    help="only goroutines whose wait reason contains TEXT")
parser.add_argument("--depth", type=int, metavar="N", default=0,
                    help="at most N frames per goroutine")
parser.add_argument("-o", "--output", metavar="FILE.pb.gz",
                    help="also write a goroutine profile (pprof, "
                         "goroutine/count, with pprof labels)")
parser.add_argument("--format", choices=("text", "json"), default="text",
                    help="output format (default: text)")

go_parser = new_parser(
    "go",
    "The Go runtime's own figures, read from memory (no code in the\n"
    "program, no restart):\n"
    "\n"
    "  memstats  runtime.MemStats' GC fields and GC history: NumGC,\n"
    "            NumForcedGC, PauseTotalNs, LastGC, recent pauses, GOGC,\n"
    "            the memory limit (ReadMemStats and ReadGCStats without\n"
    "            code), and the GC controller's heap figures: live, marked,\n"
    "            in use, goal (= MemStats.NextGC); its live and allocated\n"
    "            bytes count the Ps' cached spans whole\n"
    "  sched     GOMAXPROCS, idle Ps, spinning and idle Ms, threads, the\n"
    "            global and per-P run queues (a GODEBUG=schedtrace line)",
)
go_parser.add_argument("view", choices=("memstats", "sched"),
                       help="what to show")
go_parser.add_argument("--format", choices=("text", "json"), default="text",
                       help="output format (default: text)")


def is_exported_runtime(name):
    rest = name[len("runtime."):]
    return bool(rest) and rest[0].isupper()


def shown(name, first, runtime):
    """Go's showfuncinfo at GOTRACEBACK=single (traceback level 1)."""
    if runtime:
        return True
    if name == "runtime.gopanic" and not first:
        return True
    return "." in name and (not name.startswith("runtime.") or is_exported_runtime(name))


def header(g):
    if g[STATUS] == "waiting" and g[REASON]:
        return g[REASON]
    if g[STATUS] == "leaked":       # 1.26+: "[<reason> (leaked)]"
        return (g[REASON] or "leaked") + " (leaked)"
    return g[STATUS]


class Stacks:
    """The distinct goroutine stacks of one read, symbolized once each;
    goroutines refer to them by index (100 000 goroutines parked in a few
    places share a few stacks)."""

    def __init__(self, snap, info):
        raw = snap.go_stacks()
        keys = {}
        for st in raw:
            for pc in st:
                keys.setdefault(pc, None)
        gopcs = {(g[GOPC], False) for g in info["goroutines"] if g[GOPC]}
        for k in gopcs:
            keys.setdefault(k, None)
        order = list(keys)
        for k, frames in zip(order, snap.symbolize(order)):
            keys[k] = frames
        self.all = []
        # pc - function start of each physical frame, for the text's
        # "+0x.." (kept apart: the JSON frames have a fixed schema)
        self.offset = {}
        for st in raw:
            frames = []
            for pc in st:
                for f in keys[pc]:
                    d = {"function": f[1], "file": f[3], "line": f[4],
                         "inlined": bool(f[5])}
                    if not f[5] and f[8]:
                        self.offset[id(d)] = f[8]
                    frames.append(d)
            self.all.append(frames)
        self.created = {}
        for gopc, _ in gopcs:
            lines = keys[(gopc, False)]
            if lines and lines[-1][1]:
                # Go prints the physical function with the innermost
                # (inlined) position of the go statement.
                d = {"function": lines[-1][1], "file": lines[0][3], "line": lines[0][4]}
                if lines[-1][8]:
                    self.offset[id(d)] = lines[-1][8]
                self.created[gopc] = d
        self._vis = {}
        self._created_in = {}

    def created_in(self, gopc, parent):
        """`created by` with the creator's goroutine ID (1.21+ prints
        "in goroutine N", from g.parentGoid); one dict per pair."""
        d = self._created_in.get((gopc, parent))
        if d is None:
            base = self.created[gopc]
            d = self._created_in[(gopc, parent)] = dict(base, goroutine=parent)
            if id(base) in self.offset:
                self.offset[id(d)] = self.offset[id(base)]
        return d

    def visible(self, sid, runtime, depth=0):
        """Frames after Go's hiding rules (cached per stack)."""
        key = (sid, runtime, depth)
        v = self._vis.get(key)
        if v is None:
            if sid < 0:
                v = []
            else:
                v = [f for i, f in enumerate(self.all[sid])
                     if shown(f["function"], i == 0, runtime)]
            if depth > 0:
                v = v[:depth]
            self._vis[key] = v
        return v


def collect(ctx):
    """Read the goroutines once: (session, snapshot, info, stacks)."""
    session = ctx.open_session()
    snap = session.goroutines()
    info = snap.go_info()
    stacks = Stacks(snap, info)
    for w in session.warnings():
        ctx.warn(w)
    return session, snap, info, stacks


def goroutine_record(g, runtime, depth, stacks):
    cb = stacks.created.get(g[GOPC]) if stacks else None
    if cb and (g[GOID] == 1 or not shown(cb["function"], False, runtime)):
        cb = None
    if cb and g[PARENT] > 0:
        cb = stacks.created_in(g[GOPC], g[PARENT])
    rec = {
        "goid": g[GOID],
        "status": g[STATUS],
        "wait_reason": g[REASON],
        "header": header(g),
        "wait_ns": g[WAIT_NS] if g[WAIT_NS] >= 0 else None,
        "locked_to_thread": g[LOCKED],
        "thread": g[TID] or None,
        "system": g[SYSTEM],
        "labels": dict(sorted(g[LABELS].items())) if g[LABELS] else {},
        "frames": stacks.visible(g[STACK], runtime, depth) if stacks else [],
        "created_by": cb,
    }
    if g[CHAN]:
        rec["waiting_on"] = {"kind": "chan", "address": g[CHAN]}
    elif g[SEMA]:
        rec["waiting_on"] = {"kind": "sema", "address": g[SEMA]}
    if g[ERROR]:
        rec["error"] = g[ERROR]
    return rec


def select(gs, args):
    out = []
    for g in gs:
        if g[SYSTEM] and not args.runtime:
            continue
        if args.state and args.state not in (g[STATUS], header(g)):
            continue
        if args.reason and args.reason not in g[REASON]:
            continue
        out.append(g)
    return out


def fmt_header(r):
    h = "goroutine %d [%s" % (r["goid"], r["header"])
    if r["wait_ns"] is not None and r["wait_ns"] >= 60 * 10**9 and \
            r["status"] in ("waiting", "syscall"):
        h += ", %d minutes" % (r["wait_ns"] // (60 * 10**9))
    if r["locked_to_thread"]:
        h += ", locked to thread"
    return h + "]:"


def fmt_frames(frames, created_by, offsets):
    """Go's traceback lines: `function(...)`, then the file:line and, for
    a physical frame, `+0x..` (pc - the function's start) as Go prints."""
    out = []
    for f in frames + ([created_by] if created_by else []):
        off = offsets.get(id(f))
        if f is created_by:
            out.append("created by %s%s" % (f["function"], " in goroutine %d" % f["goroutine"]
                                            if f.get("goroutine") else ""))
        else:
            out.append("%s(...)" % f["function"])
        out.append("\t%s:%d%s" % (f["file"], f["line"], " +0x%x" % off if off else ""))
    return out


def group_goroutines(gs, args, stacks):
    """Goroutines with the same visible stack and labels, with counts
    (Go's debug=1), without building a record per goroutine."""
    groups = {}
    vkey = {}
    for g in gs:
        sid = g[STACK]
        k1 = vkey.get(sid)
        if k1 is None:
            k1 = vkey[sid] = tuple((f["function"], f["file"], f["line"])
                                   for f in stacks.visible(sid, args.runtime, args.depth))
        lab = tuple(sorted(g[LABELS].items())) if g[LABELS] else ()
        key = (k1, lab)
        grp = groups.get(key)
        if grp is None:
            rec = goroutine_record(g, args.runtime, args.depth, stacks)
            grp = groups[key] = {"count": 0, "labels": rec["labels"], "headers": {},
                                 "frames": rec["frames"], "created_by": rec["created_by"],
                                 "goroutines": []}
        grp["count"] += 1
        h = header(g)
        grp["headers"][h] = grp["headers"].get(h, 0) + 1
        grp["goroutines"].append(g[GOID])
    return sorted(groups.values(), key=lambda x: (-x["count"], x["goroutines"][0]))


def blocked_on(gs):
    """Goroutines waiting on the same channel or semaphore, with counts."""
    objs = {}
    for g in gs:
        if g[CHAN]:
            objs.setdefault(("chan", g[CHAN]), []).append(g)
        elif g[SEMA]:
            objs.setdefault(("sema", g[SEMA]), []).append(g)
    out = []
    for (kind, addr), rs in objs.items():
        if len(rs) < 2:
            continue
        out.append({"kind": kind, "address": addr, "count": len(rs),
                    "reasons": sorted({header(g) for g in rs}),
                    "goroutines": [g[GOID] for g in rs]})
    return sorted(out, key=lambda o: -o["count"])


def name_objects(snap, bo):
    """Global objects get their symbol (a sync.Mutex's semaphore is its
    address + 4: "main.mu+4")."""
    if not bo:
        return
    for o, (name, off) in zip(bo, snap.data_symbols([o["address"] for o in bo])):
        if name:
            o["symbol"] = name + ("+%d" % off if off else "")


def all_asleep(user):
    return bool(user) and all(g[STATUS] == "waiting" and g[REASON] in ASLEEP_REASONS
                              for g in user)


@command(parser, "every goroutine of a Go program, like Go's debug=2 dump")
def goroutines(ctx, args):
    session, snap, info, stacks = collect(ctx)
    gs = info["goroutines"]
    sel = select(gs, args)
    user = [g for g in gs if not g[SYSTEM]]
    nsys = len(gs) - len(user)
    asleep = all_asleep(user)
    bo = blocked_on(sel)
    name_objects(snap, bo)
    if args.output:
        try:
            snap.write_go_profile(args.output)
        except Exception as e:  # _core errors: one line
            raise PmprofError("cannot write %s: %s" % (args.output, e)) from None
    partial = any(g[ERROR] for g in sel)
    if args.group:
        groups = group_goroutines(sel, args, stacks)
    else:
        recs = [goroutine_record(g, args.runtime, args.depth, stacks) for g in sel]
    if args.format == "json":
        doc = {"schema": SCHEMA, "go_version": info["version"],
               "counts": {"user": len(user), "system": nsys},
               "all_asleep": asleep, "blocked_on": bo}
        if args.group:
            doc["groups"] = groups
        else:
            doc["goroutines"] = recs
        ctx.write(json.dumps(doc, indent=1) + "\n")
        return EXIT_PARTIAL if partial else EXIT_OK
    out = []
    if args.group:
        out.append("goroutine profile: total %d" % len(sel))
        for grp in groups:
            hdr = ", ".join("%s%s" % (h, "" if n == grp["count"] else " x%d" % n)
                            for h, n in sorted(grp["headers"].items()))
            line = "%d @ [%s]" % (grp["count"], hdr)
            if grp["labels"]:
                line += " labels: {%s}" % ", ".join(
                    '"%s":"%s"' % kv for kv in sorted(grp["labels"].items()))
            out.append("")
            out.append(line)
            out.extend(fmt_frames(grp["frames"], grp["created_by"], stacks.offset))
    else:
        for r in recs:
            if out:
                out.append("")
            out.append(fmt_header(r))
            if r["labels"]:
                out.append("# labels: {%s}" % ", ".join(
                    '"%s":"%s"' % kv for kv in sorted(r["labels"].items())))
            if r.get("error"):
                out.append("# %s" % r["error"])
            out.extend(fmt_frames(r["frames"], r["created_by"], stacks.offset))
    if bo or asleep:
        out.append("")
    for o in bo[:10]:
        out.append("# %d goroutines wait on %s %s (%s): %s" % (
            o["count"], "channel" if o["kind"] == "chan" else "semaphore",
            o.get("symbol") or "0x%x" % o["address"],
            ", ".join(o["reasons"]), " ".join(map(str, o["goroutines"][:12])) +
            (" ..." if o["count"] > 12 else "")))
    if asleep:
        out.append("# all goroutines are asleep - deadlock! (every user goroutine waits "
                   "for another one)")
    ctx.write("\n".join(out) + "\n")
    return EXIT_PARTIAL if partial else EXIT_OK


def go_section(session):
    """The Go part of `pmprof locks`/`hang`: None for a program that is
    not Go; else goroutine counts by header, what they block on, and
    whether all are asleep."""
    from pmprof import _core as core
    try:
        snap = session.goroutines(max_frames=1)
    except core.Unsupported as e:
        if "not a Go program" in str(e):
            return None
        return {"error": str(e)}
    except core.Error as e:
        return {"error": str(e)}
    info = snap.go_info()
    user = [g for g in info["goroutines"] if not g[SYSTEM]]
    headers = {}
    for g in user:
        h = header(g)
        headers[h] = headers.get(h, 0) + 1
    bo = blocked_on(user)
    name_objects(snap, bo)
    for o in bo:
        o["goroutines"] = o["goroutines"][:100]
    return {"version": info["version"],
            "counts": {"user": len(user), "system": len(info["goroutines"]) - len(user)},
            "headers": headers, "all_asleep": all_asleep(user), "blocked_on": bo}


def memstats_doc(info):
    m = info["memstats"]
    if not m:
        raise PmprofError("cannot find runtime.memstats nor runtime.gcController "
                          "(stripped binary before its first GC?)")
    doc = {"schema": SCHEMA_MEMSTATS, "go_version": info["version"]}
    if m["found"]:
        n = m["numgc"]
        doc.update({
            "NumGC": n, "NumForcedGC": m["numforcedgc"], "PauseTotalNs": m["pause_total_ns"],
            "LastGC": m["last_gc_unix"], "PauseNs": m["pause_ns"], "PauseEnd": m["pause_end"],
            "RecentPausesNs": [m["pause_ns"][(n - 1 - i) % 256] for i in range(min(n, 16))],
        })
    if m["controller"]:
        doc.update({
            "GCPercent": m["gc_percent"], "MemoryLimit": m["memory_limit"],
            "HeapLive": m["heap_live"], "HeapMarked": m["heap_marked"],
            "HeapInUse": m["heap_inuse"], "HeapGoal": m["heap_goal"],
            "TotalAlloc": m["total_alloc"], "TotalFree": m["total_free"],
        })
    return doc


def sched_doc(info):
    s = info["sched"]
    if not s:
        raise PmprofError("cannot find runtime.allp and runtime.sched")
    return {"schema": SCHEMA_SCHED, "go_version": info["version"],
            "gomaxprocs": s["gomaxprocs"], "idle_ps": s["idle_ps"],
            "spinning_ms": s["spinning_ms"], "idle_ms": s["idle_ms"],
            "threads": s["threads"], "ms": s["ms"], "global_runq": s["global_runq"],
            "runq": s["runq"], "goroutines": len(info["goroutines"])}


def ns(v):
    if v >= 10**9:
        return "%.3fs" % (v / 1e9)
    if v >= 10**6:
        return "%.3fms" % (v / 1e6)
    return "%.1fus" % (v / 1e3)


@command(go_parser, "Go runtime figures: memstats (GC) or sched")
def go(ctx, args):
    session = ctx.open_session()
    info = session.goroutines(max_frames=1).go_info()
    if args.view == "memstats":
        doc = memstats_doc(info)
        if args.format == "json":
            ctx.write(json.dumps(doc, indent=2) + "\n")
            return EXIT_OK
        out = ["%s memstats" % (info["version"] or "Go")]
        if "NumGC" in doc:
            import time
            out.append("NumGC %d (forced %d), pauses total %s" % (
                doc["NumGC"], doc["NumForcedGC"], ns(doc["PauseTotalNs"])))
            if doc["LastGC"]:
                out.append("LastGC %s (%s)" % (
                    doc["LastGC"], time.strftime("%Y-%m-%d %H:%M:%S",
                                                 time.localtime(doc["LastGC"] / 1e9))))
            if doc["RecentPausesNs"]:
                out.append("recent pauses: " + " ".join(ns(p) for p in doc["RecentPausesNs"]))
        else:
            out.append("GC history: not found (no GC yet, stripped binary)")
        if "GCPercent" in doc:
            lim = doc["MemoryLimit"]
            out.append("GOGC %s, memory limit %s" % (
                "off" if doc["GCPercent"] < 0 else doc["GCPercent"],
                "none" if lim >= (1 << 63) - 1 else "%d bytes" % lim))
            out.append("heap live %d, marked %d, in use %d, goal %d bytes" % (
                doc["HeapLive"], doc["HeapMarked"], doc["HeapInUse"], doc["HeapGoal"]))
        ctx.write("\n".join(out) + "\n")
        return EXIT_OK
    doc = sched_doc(info)
    if args.format == "json":
        ctx.write(json.dumps(doc, indent=2) + "\n")
        return EXIT_OK
    ctx.write("SCHED gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d "
              "idlethreads=%d runqueue=%d [%s] goroutines=%d\n" % (
                  doc["gomaxprocs"], doc["idle_ps"], doc["threads"], doc["spinning_ms"],
                  doc["idle_ms"], doc["global_runq"], " ".join(map(str, doc["runq"])),
                  doc["goroutines"]))
    return EXIT_OK



