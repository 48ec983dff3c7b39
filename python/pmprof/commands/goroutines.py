"""pmprof goroutines / pmprof go: a Go 1.19 program's runtime from outside.

The C core (ext/golang.c, ext/gopclntab.c) reads every goroutine while the
target is stopped and unwinds it with the binary's own function table;
this module applies Go's conventions (hidden runtime frames, "created by",
the wait header) so the output reads like /debug/pprof/goroutine?debug=2.
"""

import json

from pmprof import PmprofError
from pmprof.commands import EXIT_OK, EXIT_PARTIAL, command, new_parser

SCHEMA = "pmprof.goroutines-1"
SCHEMA_MEMSTATS = "pmprof.go-memstats-1"
SCHEMA_SCHED = "pmprof.go-sched-1"

# What a goroutine waiting for one of these can only be woken by another
# goroutine (no timer, no network, no system call): if every user
# goroutine waits like that, the program is deadlocked.
ASLEEP_REASONS = {"chan receive", "chan send", "chan receive (nil chan)",
                  "chan send (nil chan)", "select", "select (no cases)",
                  "semacquire", "sync.Cond.Wait"}

parser = new_parser(
    "goroutines",
    "Every goroutine of a Go 1.19 program (live or core, stripped binaries\n"
    "too), in Go's own traceback format, like /debug/pprof/goroutine?debug=2:\n"
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
    "            the memory limit, live/in-use heap (ReadMemStats and\n"
    "            ReadGCStats without code)\n"
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
    if g["status"] == "waiting" and g["wait_reason"]:
        return g["wait_reason"]
    return g["status"]


def collect(ctx, depth=0):
    """Read the goroutines once; returns (session, snapshot, info, goroutines)
    where each goroutine has `all_frames` (every frame, innermost first)."""
    session = ctx.open_session()
    snap = session.goroutines()
    info = snap.go_info()
    # One symbolization for every distinct pc.
    uniq = {}
    for g in info["goroutines"]:
        for pc in g["pcs"]:
            uniq.setdefault(tuple(pc), None)
        if g["gopc"]:
            uniq.setdefault((g["gopc"], False), None)
    keys = list(uniq)
    for k, frames in zip(keys, snap.symbolize(keys)):
        uniq[k] = frames
    for g in info["goroutines"]:
        frames = []
        for pc in g["pcs"]:
            for f in uniq[tuple(pc)]:
                frames.append({"function": f[1], "file": f[3], "line": f[4],
                               "inlined": bool(f[5]), "pc": f[0]})
        g["all_frames"] = frames
        g["created_by"] = None
        if g["gopc"]:
            lines = uniq[(g["gopc"], False)]
            if lines and lines[-1][1]:
                # Go prints the physical function with the innermost
                # (inlined) position of the go statement.
                g["created_by"] = {"function": lines[-1][1], "file": lines[0][3],
                                   "line": lines[0][4]}
    for w in session.warnings():
        ctx.warn(w)
    return session, snap, info


def visible_frames(g, runtime, depth=0):
    out = []
    for i, f in enumerate(g["all_frames"]):
        if shown(f["function"], i == 0, runtime):
            out.append(f)
    return out[:depth] if depth > 0 else out


def goroutine_record(g, runtime, depth):
    cb = g["created_by"]
    if cb and (g["goid"] == 1 or not shown(cb["function"], False, runtime)):
        cb = None
    rec = {
        "goid": g["goid"],
        "status": g["status"],
        "wait_reason": g["wait_reason"],
        "header": header(g),
        "wait_ns": g["wait_ns"] if g["wait_ns"] >= 0 else None,
        "locked_to_thread": g["locked"],
        "thread": g["tid"] or None,
        "system": g["system"],
        "labels": dict(sorted(g["labels"].items())),
        "frames": [{"function": f["function"], "file": f["file"], "line": f["line"],
                    "inlined": f["inlined"]} for f in visible_frames(g, runtime, depth)],
        "created_by": cb,
    }
    if g["chan"]:
        rec["waiting_on"] = {"kind": "chan", "address": g["chan"]}
    elif g["sema"]:
        rec["waiting_on"] = {"kind": "sema", "address": g["sema"]}
    if g["error"]:
        rec["error"] = g["error"]
    return rec


def select(gs, args):
    out = []
    for g in gs:
        if g["system"] and not args.runtime:
            continue
        if args.state and args.state not in (g["status"], header(g)):
            continue
        if args.reason and args.reason not in g["wait_reason"]:
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


def fmt_frames(frames, created_by):
    out = []
    for f in frames:
        out.append("%s(...)" % f["function"])
        out.append("\t%s:%d" % (f["file"], f["line"]))
    if created_by:
        out.append("created by %s" % created_by["function"])
        out.append("\t%s:%d" % (created_by["file"], created_by["line"]))
    return out


def group_records(recs):
    groups = {}
    for r in recs:
        key = (tuple((f["function"], f["file"], f["line"]) for f in r["frames"]),
               tuple(sorted(r["labels"].items())))
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"count": 0, "labels": r["labels"], "headers": {},
                               "frames": r["frames"], "created_by": r["created_by"],
                               "goroutines": []}
        g["count"] += 1
        g["headers"][r["header"]] = g["headers"].get(r["header"], 0) + 1
        g["goroutines"].append(r["goid"])
    return sorted(groups.values(), key=lambda g: (-g["count"], g["goroutines"][0]))


def blocked_on(recs):
    """Goroutines waiting on the same channel or semaphore, with counts."""
    objs = {}
    for r in recs:
        w = r.get("waiting_on")
        if w:
            objs.setdefault((w["kind"], w["address"]), []).append(r)
    out = []
    for (kind, addr), rs in objs.items():
        if len(rs) < 2:
            continue
        out.append({"kind": kind, "address": addr, "count": len(rs),
                    "reasons": sorted({r["header"] for r in rs}),
                    "goroutines": [r["goid"] for r in rs]})
    return sorted(out, key=lambda o: -o["count"])


def all_asleep(user):
    return bool(user) and all(r["status"] == "waiting" and r["wait_reason"] in ASLEEP_REASONS
                              for r in user)


@command(parser, "every goroutine of a Go program, like Go's debug=2 dump")
def goroutines(ctx, args):
    session, snap, info = collect(ctx)
    gs = info["goroutines"]
    recs = [goroutine_record(g, args.runtime, args.depth) for g in select(gs, args)]
    user = [goroutine_record(g, False, 0) for g in gs if not g["system"]]
    nsys = sum(1 for g in gs if g["system"])
    asleep = all_asleep(user)
    if args.output:
        try:
            snap.write_go_profile(args.output)
        except Exception as e:  # _core errors: one line
            raise PmprofError("cannot write %s: %s" % (args.output, e)) from None
    partial = any(r.get("error") for r in recs)
    if args.format == "json":
        doc = {"schema": SCHEMA, "go_version": info["version"],
               "counts": {"user": len(user), "system": nsys},
               "all_asleep": asleep,
               "blocked_on": blocked_on(recs)}
        if args.group:
            doc["groups"] = group_records(recs)
        else:
            doc["goroutines"] = recs
        ctx.write(json.dumps(doc, indent=2) + "\n")
        return EXIT_PARTIAL if partial else EXIT_OK
    out = []
    if args.group:
        out.append("goroutine profile: total %d" % len(recs))
        for g in group_records(recs):
            hdr = ", ".join("%s%s" % (h, "" if n == g["count"] else " x%d" % n)
                            for h, n in sorted(g["headers"].items()))
            line = "%d @ [%s]" % (g["count"], hdr)
            if g["labels"]:
                line += " labels: {%s}" % ", ".join(
                    '"%s":"%s"' % kv for kv in sorted(g["labels"].items()))
            out.append("")
            out.append(line)
            out.extend(fmt_frames(g["frames"], g["created_by"]))
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
            out.extend(fmt_frames(r["frames"], r["created_by"]))
    bo = blocked_on(recs)
    if bo or asleep:
        out.append("")
    for o in bo[:10]:
        out.append("# %d goroutines wait on %s 0x%x (%s): %s" % (
            o["count"], "channel" if o["kind"] == "chan" else "semaphore", o["address"],
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
    for g in info["goroutines"]:
        g["all_frames"], g["created_by"] = [], None
    user = [goroutine_record(g, False, 0) for g in info["goroutines"]
            if not g["system"]]
    headers = {}
    for r in user:
        headers[r["header"]] = headers.get(r["header"], 0) + 1
    return {"version": info["version"],
            "counts": {"user": len(user), "system": len(info["goroutines"]) - len(user)},
            "headers": headers, "all_asleep": all_asleep(user),
            "blocked_on": blocked_on(user)}


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
            "threads": s["threads"], "global_runq": s["global_runq"],
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



