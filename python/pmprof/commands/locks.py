"""pmprof locks: who waits on which lock, held by whom; deadlock cycles
and root blockers first (the jstack deadlock report, for native code)."""

import json
import os
import re
import time

from pmprof import load_core, locks, report
from pmprof.commands import EXIT_PARTIAL, UsageError, command, new_parser

parser = new_parser(
    "locks",
    "Decode every blocked thread's wait from its registers and the lock's\n"
    "memory (no libc debug info needed): mutexes of every kind, rwlocks,\n"
    "condition variables, semaphores, pthread_join, stdio stream locks,\n"
    "futex_waitv; C++ std::mutex, shared_mutex and condition_variable sit on\n"
    "these.  Then follow each waiter to the end of its chain: a cycle\n"
    "(DEADLOCK), a lock holder that waits for no lock (what it does instead\n"
    "is shown), a wait with no recorded owner, or an owner that exited.\n"
    "\n"
    "Line 1 is the verdict: 'no lock waits', HANG or DEADLOCK.  Live, the\n"
    "process is read twice 50 ms apart and only waits seen both times are\n"
    "kept; 'blocked >= T' is the time since the waiter last ran.\n"
    "\n"
    "The layouts are glibc's, per release (2.31, 2.36, 2.41, 2.43 x86_64),\n"
    "the release read from the target's libc.  Another release: one warning\n"
    "line naming it, and waits are listed as unnamed futexes with their\n"
    "stacks; only PI mutexes (whose owner the kernel defines) keep theirs.\n"
    "\n"
    "bin/pmprof exit status: 0 no lock waits with an owner, 3 hang,\n"
    "4 deadlock, 1 no hang found but the glibc release is not in the\n"
    "layout table (lock kinds and owners unknown), 2 analysis failed.",
)
parser.add_argument("--all", action="store_true",
                    help="list every waiting thread instead of grouping them")
parser.add_argument("--format", choices=("text", "json", "dot"), default="text",
                    help="output format (default: text)")
parser.add_argument("-o", "--output", metavar="FILE",
                    help="write the report to FILE instead of the terminal")


def _sched_clock_ms(path):
    try:
        with open(path) as f:
            m = re.search(r"^se\.exec_start\s*:\s*([\d.]+)", f.read(), re.M)
        return float(m.group(1)) if m else None
    except OSError:
        return None


def last_ran_ns(pid):
    """Live: {tid: ns since the thread last ran}, read before any stop (our
    own stop makes every thread run).  Our thread's exec_start is "now" on
    the same scheduler clock."""
    now = _sched_clock_ms("/proc/thread-self/sched")
    out = {}
    if now is None:
        return out
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tids:
        v = _sched_clock_ms("/proc/%d/task/%s/sched" % (pid, t))
        if v is not None and now >= v:
            out[int(t)] = int((now - v) * 1e6)
    return out


def analyze_target(ctx):
    """Snapshot (twice, live standalone), decode, analyze: (doc, session)."""
    session = ctx.open_session()
    live = not session.is_core
    standalone = ctx.frontend == "cli"   # a debugger holds the process stopped
    durations = last_ran_ns(session.pid) if live and standalone else {}
    stable = None
    if live and standalone:
        # First read without stopping anything (/proc/PID/task/*/syscall):
        # cheap, and it leaves the waits' durations intact.
        stable = {(tid, w["object"] or w["futex"], w["owner"])
                  for tid, w in session.peek_waits() if w}
        time.sleep(0.05)
    snap = session.snapshot(decode_waits=True)
    threads = snap.threads()
    report.symbolize_threads(snap, threads)
    doc = locks.analyze(threads, snap, live=live, pid=session.pid, stable=stable)
    for e in doc["edges"]:
        e["blocked_ns"] = durations.get(e["waiter"])
    glibc = session.glibc()
    doc["target"] = {"pid": session.pid, "source": "live" if live else "core",
                     "description": ctx.target_description(),
                     "glibc": glibc["version"], "glibc_layout": glibc["layout"]}
    doc["limitations"] = [] if live else [
        "core file: no wait durations; socket and fd targets unknown"]
    from pmprof.commands.goroutines import go_section
    go = go_section(session)
    if go is not None:
        doc["go"] = go
        if go.get("all_asleep") and doc["verdict"] != "deadlock":
            doc["verdict"] = "deadlock"
    nfailed = snap.nfailed
    doc["errors"] = ["%d thread(s) could not be read" % nfailed] if nfailed else []
    if glibc["version"] is not None and not glibc["layout"]:
        msg = layout_unknown(glibc["version"])
        doc["errors"].append(msg)
        ctx.warn(msg)
    for w in session.warnings():
        ctx.warn(w)
    return doc, threads, session


def emit(ctx, args, text):
    if args.output:
        d = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(d):
            raise UsageError("no such directory: '%s'" % d)
        tmp = args.output + ".tmp.%d" % os.getpid()
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.output)
        ctx.write("pmprof locks: verdict written to %s\n" % args.output)
    else:
        ctx.write(text)


def layout_unknown(version):
    known = ", ".join(r["version"] for r in load_core().nptl_layouts())
    return ("glibc %s is not in pmprof's lock layout table (%s): futex waits are "
            "listed without lock kinds or owners" % (version or "(release unreadable)", known))


def verdict_status(doc):
    if doc["verdict"] == "none" and doc["target"].get("glibc_layout") is False and \
            doc["target"].get("glibc") is not None:
        return EXIT_PARTIAL
    return {"none": locks.EXIT_NONE, "hang": locks.EXIT_HANG,
            "deadlock": locks.EXIT_DEADLOCK}[doc["verdict"]]


def render(doc, fmt, ctx, show_all):
    if fmt == "json":
        return json.dumps(doc, indent=1) + "\n"
    if fmt == "dot":
        return locks.render_dot(doc)
    return locks.render_text(doc, ctx.target_description(), show_all,
                             live=doc["target"]["source"] == "live")


@command(parser, "lock waits: who waits for whom, deadlocks, root blockers")
def locks_cmd(ctx, args):
    doc, _, _ = analyze_target(ctx)
    emit(ctx, args, render(doc, args.format, ctx, args.all))
    return verdict_status(doc)
