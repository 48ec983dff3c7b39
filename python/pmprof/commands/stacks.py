"""pmprof stacks: every thread's stack, merged like a poor man's profiler."""

import json
import os

from pmprof import report
from pmprof.commands import command, new_parser, snapshot_status
from pmprof.commands.threads import collect

parser = new_parser(
    "stacks",
    "Unwind and symbolize every thread's stack (inline frames, demangled\n"
    "names, file:line; module+0xoffset where there is no symbol), then merge\n"
    "identical stacks, most frequent first, with their threads.  Functions\n"
    "that left by a tail call are rebuilt from DWARF call sites, as gdb\n"
    "does, where every path agrees, and marked [tail call].",
)
parser.add_argument("--all", action="store_true",
                    help="print every thread separately instead of merging")
parser.add_argument("--depth", type=int, metavar="N", default=None,
                    help="keep only the N innermost frames of each stack")
parser.add_argument("--format", choices=("text", "json"), default="text",
                    help="output format (default: text)")


def _frame_line(i, f):
    s = "  #%-3d %s" % (i, report.frame_label(f))
    if f["inlined"]:
        s += " [inlined]"
    if f.get("tail_call"):
        s += " [tail call]"
    if f["file"]:
        s += " at %s:%d" % (f["file"], f["line"])
    if f["module"] and report.is_system_module(f["module"]) and f["function"]:
        s += "  (%s)" % os.path.basename(f["module"])
    return s


def _thread_list(ths, limit=8):
    names = ["%d %s" % (t["tid"], t["name"]) if t["name"] else str(t["tid"])
             for t in ths]
    if len(names) > limit:
        names = names[:limit] + ["... %d more" % (len(names) - limit)]
    return ", ".join(names)


@command(parser, "all stacks, symbolized and merged (poor man's profiler)")
def stacks(ctx, args):
    if args.depth is not None and args.depth <= 0:
        from pmprof.commands import UsageError
        raise UsageError("--depth must be a positive number")
    if args.format == "text":
        # The merged text is built in C (ext/output/render.c): no per-frame
        # Python object, which is most of a warm call inside gdb.
        session = ctx.open_session()
        snap = session.snapshot()
        body, ngroups = snap.render_stacks(all=args.all, depth=args.depth or 0)
        for w in session.warnings():
            ctx.warn(w)
        ctx.write("%s: %d threads, %d %s%s\n%s" % (
            ctx.target_description(), snap.nthreads, ngroups,
            "threads" if args.all else "distinct stacks",
            "" if session.is_core else
            " (target stopped %.2f ms)" % (snap.stopped_ns / 1e6), body))
        return snapshot_status(snap)
    session, snap, ths = collect(ctx, args.depth)
    if args.all:
        groups = [{"count": 1, "threads": [{"tid": t["tid"], "name": t["name"]}],
                   "frames": t["frames"], "flags": t["flags"]} for t in ths]
    else:
        groups = report.group_stacks(ths)
    doc = {
        "schema": report.SCHEMA_STACKS,
        "pid": session.pid,
        "source": "core" if session.is_core else "live",
        "nthreads": len(ths),
        "stopped_ns": snap.stopped_ns,
        "stacks": groups,
    }
    ctx.write(json.dumps(doc, indent=2) + "\n")
    return snapshot_status(snap)
