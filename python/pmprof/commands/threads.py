"""pmprof threads: one line per thread."""

import json

from pmprof import report
from pmprof.commands import command, new_parser, snapshot_status

parser = new_parser(
    "threads",
    "List every thread: TID, name, state, CPU time (user+system), the\n"
    "system call it is in (decoded from its registers) and its innermost\n"
    "application frame.  Sorted by TID.\n\n"
    "States: R running, S sleeping, D disk wait, T stopped, t stopped by a\n"
    "tracer (inside gdb every thread is t), core: read from a core file.",
)
parser.add_argument("--format", choices=("text", "json"), default="text",
                    help="output format (default: text)")


def collect(ctx, depth=None):
    session = ctx.open_session()
    snap = session.snapshot()
    threads = snap.threads()
    report.symbolize_threads(snap, threads, depth)
    for w in session.warnings():
        ctx.warn(w)
    return session, snap, threads


@command(parser, "one line per thread: state, CPU, syscall, where")
def threads(ctx, args):
    session, snap, ths = collect(ctx)
    if args.format == "json":
        doc = {
            "schema": report.SCHEMA_THREADS,
            "pid": session.pid,
            "source": "core" if session.is_core else "live",
            "threads": [],
        }
        for th in ths:
            rec = report.thread_record(th)
            f = report.app_frame(th["frames"])
            rec["frame"] = f
            doc["threads"].append(rec)
        ctx.write(json.dumps(doc, indent=2) + "\n")
    else:
        rows = [("TID", "NAME", "STATE", "CPU(u+s)s", "SYSCALL", "WHERE")]
        for th in ths:
            rows.append((
                str(th["tid"]),
                th["name"] or "-",
                th["state"],
                "%s+%s" % (report.fmt_cpu(th["utime_ns"]), report.fmt_cpu(th["stime_ns"])),
                report.fmt_syscall(th["syscall"]),
                report.fmt_where(report.app_frame(th["frames"])) if th["regs_ok"]
                else "[%s]" % th["error"],
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        out = []
        for r in rows:
            out.append("  ".join(
                (r[i].rjust(widths[i]) if i == 0 else r[i].ljust(widths[i]))
                for i in range(5)) + "  " + r[5])
        ctx.write("\n".join(line.rstrip() for line in out) + "\n")
    return snapshot_status(snap)
