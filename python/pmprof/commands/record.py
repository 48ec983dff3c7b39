"""pmprof record: a sampling profiler by interrupt-and-unwind.

The C core does the loop (stop all threads together, copy registers and
the live stack, resume, then unwind); this module parses options, shows
progress, writes the files and prints the summary.
"""

import json
import os
import re

from pmprof import PmprofError
from pmprof.commands import EXIT_OK, UsageError, command, new_parser

FORMATS = ("pprof", "folded", "speedscope", "chrome")
DEFAULT_NAMES = {
    "pprof": "pmprof-record.pb.gz",
    "folded": "pmprof-record.folded",
    "speedscope": "pmprof-record.speedscope.json",
    "chrome": "pmprof-record.trace.json",
}

parser = new_parser(
    "record",
    "Sample every thread of a live process: at each tick all threads are\n"
    "stopped together (PTRACE_INTERRUPT), their registers and live stacks\n"
    "copied, and the process resumed; unwinding happens while it runs.\n"
    "Each sample carries the thread's state (running or sleeping in a\n"
    "syscall) and its CPU time since its previous sample, so one pprof file\n"
    "holds a CPU profile (cpu), a wall-clock profile (wall) and sample\n"
    "counts (samples).  Ctrl-C stops early and still writes the files.\n"
    "\n"
    "Output formats, from the file name or --format (several -o at once):\n"
    "  FILE.pb.gz           pprof (go tool pprof; default)\n"
    "  FILE.folded          collapsed stacks (flamegraph.pl, speedscope)\n"
    "  FILE.speedscope.json speedscope, one profile per thread\n"
    "  FILE.json            Chrome Trace Event JSON (Perfetto UI), a track\n"
    "                       per thread plus a track with its state\n"
    "\n"
    "Inside gdb the inferior is detached while recording (gdb's own\n"
    "stop/continue per sample is far slower) and attached again at the end,\n"
    "stopped, with the same thread selected.",
)
parser.add_argument("-d", "--duration", type=float, metavar="SECONDS", default=0.0,
                    help="stop after SECONDS (default: until Ctrl-C or the process exits)")
parser.add_argument("-F", "--frequency", type=float, metavar="HZ", default=99.0,
                    help="samples per second (default: 99)")
parser.add_argument("-o", "--output", action="append", metavar="FILE", default=[],
                    help="output file; repeat for several (default: pmprof-record.pb.gz)")
parser.add_argument("--format", action="append", choices=FORMATS, default=[],
                    help="format of the -o file at the same position (default: "
                         "from its name); without -o, writes pmprof-record.<ext>")
parser.add_argument("--threads", metavar="TIDS|REGEX",
                    help="sample only these threads: a comma-separated TID list, "
                         "or an extended regex matched against thread names")
parser.add_argument("--depth", type=int, metavar="N", default=0,
                    help="at most N frames per stack (default: 256)")
parser.add_argument("--stack-bytes", type=int, metavar="N", default=0,
                    help="most stack bytes copied per thread and sample "
                         "(default: 16384 per CPU sample with perf events; "
                         "65536 per stop, adapting to the stack depth)")
parser.add_argument("--method", choices=("auto", "ptrace"), default="auto",
                    help="auto: CPU samples from perf events (no thread is "
                         "stopped for them) where perf_event_open is allowed, "
                         "else ptrace; ptrace: stop and unwind threads only")
parser.add_argument("--top", type=int, metavar="N", default=10,
                    help="functions in each table of the summary (default: 10)")
parser.add_argument("--json", action="store_true",
                    help="print the summary as JSON (schema pmprof.record/1)")
parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")


def format_of(path):
    p = path.lower()
    if p.endswith((".pb.gz", ".pb", ".pprof", ".prof")):
        return "pprof"
    if p.endswith((".folded", ".collapsed")):
        return "folded"
    if p.endswith(".speedscope.json"):
        return "speedscope"
    if p.endswith(".json"):
        return "chrome"
    return None


def outputs(args):
    """[(path, format)] from -o and --format."""
    if not args.output:
        fmts = args.format or ["pprof"]
        return [(DEFAULT_NAMES[f], f) for f in dict.fromkeys(fmts)]
    if len(args.format) > len(args.output):
        raise UsageError("more --format than -o: give one -o FILE per format")
    out = []
    for i, path in enumerate(args.output):
        f = args.format[i] if i < len(args.format) else format_of(path)
        if f is None:
            raise UsageError("cannot tell the format of '%s' from its name: "
                             "use .pb.gz, .folded, .speedscope.json or .json, "
                             "or --format" % path)
        d = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(d):
            raise UsageError("no such directory: '%s'" % d)
        out.append((path, f))
    return out


def thread_filter(spec):
    """--threads: (tids, regex)."""
    if not spec:
        return None, None
    if re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", spec):
        return [int(x) for x in spec.split(",")], None
    return None, spec


def _ms(ns):
    return ns / 1e6


class Progress:
    def __init__(self, ctx, quiet):
        self.ctx = ctx
        self.on = not quiet and ctx.interactive()
        self.shown = False

    def __call__(self, st):
        if self.ctx.interrupted():
            raise KeyboardInterrupt     # as a Ctrl-C the Python runtime saw
        if not self.on:
            return False
        self.ctx.progress(
            "recording: %d samples, %.1f s, %.1f Hz, pause median %.2f ms, "
            "%d threads, %d lost" % (st["samples"], st["elapsed_ns"] / 1e9,
                                     st["rate_hz"], _ms(st["pause_median_ns"]),
                                     st["nthreads"], st["lost"]))
        self.shown = True
        return False

    def done(self):
        if self.shown:
            self.ctx.progress(None)


def method_text(st):
    if st["method"] == "perf":
        return ("perf events (%d CPU samples taken by the kernel, no stop%s); "
                "%d thread stops for off-CPU stacks, %d reused"
                % (st["cpu_samples"], "" if st.get("perf_kernel", True) else
                   "; user-mode time only: CPU in system calls is not counted "
                   "(perf_event_paranoid)", st["stops"], st["reused"]))
    why = (" (perf_event_open: %s)" % os.strerror(st["perf_errno"])
           if st["perf_errno"] else "")
    return ("ptrace%s: %d thread stops, %d off-CPU stacks reused"
            % (why, st["stops"], st["reused"]))


def summary_text(st, threads, top_cpu, top_wall, files, interrupted):
    lines = []
    how = "interrupted" if interrupted else (
        "the process exited" if st["exited"] else
        "the process called execve" if st["exec"] else
        "sample limit reached (or out of memory)" if st["full"] else "done")
    lines.append("pmprof record: %s: %d samples of %d threads in %.2f s (%.1f Hz), "
                 "pause median %.3f ms, p99 %.3f ms, longest stop %.3f ms; %d lost, %d late"
                 % (how, st["samples"], len(threads), st["elapsed_ns"] / 1e9,
                    st["rate_hz"], _ms(st["pause_median_ns"]), _ms(st["pause_p99_ns"]),
                    _ms(st["max_stop_ns"]), st["lost"], st["late"]))
    if st.get("max_stop_ns", 0) > st.get("max_stop_own_ns", 0) + 1000000:
        lines.append("pmprof record: the machine kept the sampler off the CPU up to %.3f ms "
                     "while threads were held (it woke late); longest stop less that: %.3f ms"
                     % (_ms(st["stall_max_ns"]), _ms(st["max_stop_own_ns"])))
    lines.append("pmprof record: method: %s" % method_text(st))
    if not st["rt"]:
        lines.append("pmprof record: note: not running SCHED_FIFO (not permitted); "
                     "pauses are longer when the target keeps the CPUs busy")
    tot_cpu = sum(t["cpu_ns"] for t in threads) or 1
    tot_wall = sum(t["wall_ns"] for t in threads) or 1
    for title, rows, key, tot in (("cpu", top_cpu, 2, tot_cpu), ("wall", top_wall, 3, tot_wall)):
        lines.append("")
        lines.append("top functions by %s (leaf):" % title)
        lines.append("  %10s %6s %10s %8s  %s" % ("cpu ms", "cpu%", "wall ms", "samples", "function"))
        for fn, n, cpu, wall in rows:
            if not (cpu if key == 2 else wall):
                continue
            lines.append("  %10.1f %5.1f%% %10.1f %8d  %s"
                         % (_ms(cpu), 100.0 * (cpu if key == 2 else wall) / tot,
                            _ms(wall), n, fn))
    lines.append("")
    for path, fmt in files:
        lines.append("wrote %s (%s)" % (path, fmt))
    return "\n".join(lines) + "\n"


@command(parser, "sample a live process into pprof, folded, speedscope or Chrome trace files")
def record(ctx, args):
    files = outputs(args)
    if args.frequency <= 0 or args.frequency > 10000:
        raise UsageError("-F must be in (0, 10000]")
    if args.duration < 0:
        raise UsageError("-d must be >= 0")
    if args.depth < 0 or args.depth > 4096:
        raise UsageError("--depth must be 0..4096")
    if args.stack_bytes < 0:
        raise UsageError("--stack-bytes must be >= 0")
    tids, regex = thread_filter(args.threads)
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as e:
            raise UsageError("bad --threads regex: %s" % e)
    progress = Progress(ctx, args.quiet or args.json)
    with ctx.record_session() as session:
        try:
            rec = session.record(hz=args.frequency, duration=args.duration,
                                 max_frames=args.depth, stack_bytes=args.stack_bytes,
                                 tids=tids, thread_regex=regex, progress=progress,
                                 progress_interval=0.25,
                                 ptrace_only=args.method == "ptrace")
        finally:
            progress.done()
        st = rec.stats()
        threads = rec.threads()
        if st["samples"] == 0:
            raise PmprofError("no sample was taken (the process exited or the "
                              "recording was stopped at once)")
        for path, fmt in files:
            rec.write(path, fmt)
        top_cpu = rec.top(args.top, by="cpu")
        top_wall = rec.top(args.top, by="wall")
        for w in session.warnings():
            ctx.warn(w)
    if args.json:
        doc = {
            "schema": "pmprof.record/1",
            "target": ctx.target_description(),
            "interrupted": rec.interrupted,
            "stats": st,
            "threads": threads,
            "top_cpu": [dict(zip(("function", "samples", "cpu_ns", "wall_ns"), r)) for r in top_cpu],
            "top_wall": [dict(zip(("function", "samples", "cpu_ns", "wall_ns"), r)) for r in top_wall],
            "files": [{"path": p, "format": f} for p, f in files],
        }
        ctx.write(json.dumps(doc, indent=1) + "\n")
    else:
        ctx.write(summary_text(st, threads, top_cpu, top_wall, files, rec.interrupted))
    return EXIT_OK
