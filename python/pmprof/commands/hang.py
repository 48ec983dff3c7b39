"""pmprof hang: the one screen to read first on a hung process."""

import json

from pmprof import locks, report
from pmprof.commands import command, new_parser
from pmprof.commands.locks import analyze_target, verdict_status
from pmprof.commands.stacks import _frame_line, _thread_list

parser = new_parser(
    "hang",
    "Why is it stuck?  The lock verdict and root blockers of `pmprof locks`,\n"
    "then the merged stacks of every thread that is not waiting for a lock\n"
    "(running, in I/O, sleeping): where the work that should release the\n"
    "locks is, or is not, happening.\n"
    "\n"
    "bin/pmprof exit status as for locks: 0, 3 hang, 4 deadlock, 1 glibc\n"
    "release not in the layout table and no hang found, 2 failed.",
)
parser.add_argument("--all", action="store_true",
                    help="list every waiting thread instead of grouping them")
parser.add_argument("--depth", type=int, metavar="N", default=16,
                    help="frames per stack of the other threads (default: 16)")
parser.add_argument("--format", choices=("text", "json"), default="text",
                    help="output format (default: text)")


@command(parser, "why is it stuck: lock verdict, root blockers, the other stacks")
def hang(ctx, args):
    doc, threads, _ = analyze_target(ctx)
    waiting = {e["waiter"] for e in doc["edges"]}
    others = [t for t in threads if t["tid"] not in waiting]
    groups = report.group_stacks(others)
    if args.format == "json":
        doc = dict(doc, schema="pmprof.hang/1", other_stacks=[
            dict(g, frames=[dict(f) for f in g["frames"][:args.depth]]) for g in groups])
        ctx.write(json.dumps(doc, indent=1) + "\n")
        return verdict_status(doc)
    out = [locks.render_text(doc, ctx.target_description(), args.all,
                             live=doc["target"]["source"] == "live").rstrip("\n")]
    out.append("")
    out.append("THREADS NOT WAITING FOR A LOCK (%d), merged:" % len(others))
    for g in groups:
        out.append("")
        out.append("%d %s: %s" % (g["count"], "thread" if g["count"] == 1 else "threads",
                                  _thread_list(g["threads"])))
        for i, f in enumerate(g["frames"][:args.depth]):
            out.append(_frame_line(i, f))
        if len(g["frames"]) > args.depth:
            out.append("  ... %d more frames" % (len(g["frames"]) - args.depth))
    ctx.write("\n".join(out) + "\n")
    return verdict_status(doc)
