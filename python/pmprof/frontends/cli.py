"""The standalone command line: bin/pmprof <command> -p PID | --core CORE.

Runs the same C core as the gdb commands, without gdb.  Exit status:
0 done, 1 partial (some threads or frames failed; said on stderr),
2 failed, 64 usage error.
"""

import contextlib
import os
import signal
import sys

from pmprof import PmprofError, __version__, debug_cache_dir, load_core
from pmprof.commands import (EXIT_OK, EXIT_PARTIAL, EXIT_USAGE,
                             UsageError, load_all, load_one, translate_core_error)
from pmprof.frontends import Context


class CliContext(Context):
    frontend = "cli"

    def __init__(self, args, core):
        self.args = args
        self.core = core
        self.session = None

    def is_live(self):
        return self.args.core is None

    def target_description(self):
        if self.args.core:
            return "core '%s'" % self.args.core
        return "pid %d" % self.args.pid

    def debug_path(self):
        """--debug-dir, then $PMPROF_DEBUG_PATH or /usr/lib/debug."""
        base = os.environ.get("PMPROF_DEBUG_PATH") or "/usr/lib/debug"
        return "%s:%s" % (self.args.debug_dir, base) if self.args.debug_dir else base

    def open_session(self):
        if self.session is not None:
            return self.session
        a = self.args
        cache = debug_cache_dir()
        if a.core:
            if not os.path.exists(a.core):
                raise PmprofError("no such core file: '%s'" % a.core)
            if a.exe and not os.path.exists(a.exe):
                raise PmprofError("no such executable: '%s'" % a.exe)
            self.session = self.core.open_core(
                a.core, exe=a.exe, solib_path=a.solib_search, debug_path=self.debug_path(),
                cache_dir=cache)
        else:
            self.session = self.core.open_pid(a.pid, debug_path=self.debug_path(),
                                              cache_dir=cache)
        return self.session

    @contextlib.contextmanager
    def record_session(self):
        if not self.is_live():
            raise PmprofError("record needs a live process, not a core file")
        yield self.open_session()

    def interactive(self):
        return sys.stderr.isatty()

    def progress(self, text):
        if text is None:
            sys.stderr.write("\r\033[K")
        else:
            sys.stderr.write("\r\033[K" + text)
        sys.stderr.flush()

    def write(self, text):
        sys.stdout.write(text)

    def warn(self, text):
        sys.stderr.write("pmprof: warning: %s\n" % text)


def add_target_options(parser):
    g = parser.add_argument_group("target (one of)")
    g.add_argument("-p", "--pid", type=int, help="a live process to attach to")
    g.add_argument("--core", metavar="CORE", help="a core file")
    g.add_argument("--exe", metavar="EXE",
                   help="the executable of the core (default: from the core)")
    g.add_argument("--solib-search", metavar="DIRS",
                   help="':'-separated directories to find the core's libraries in")
    g.add_argument("--debug-dir", metavar="DIRS",
                   help="':'-separated extra debug-file directories "
                        "(searched like /usr/lib/debug, by build-id)")


USAGE = """usage: pmprof <command> (-p PID | --core CORE [--exe EXE]) [options]

Commands:
%s

`pmprof <command> -h` describes a command.  Exit status: 0 done,
1 partial (some threads failed), 2 failed, 64 usage error.
"""


def _normal_priority():
    # The child must not inherit pmprof's SCHED_FIFO (it would compete
    # with the target for the CPU); it runs niced, in its own session.
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass
    os.nice(10)


def fill_debug_cache(todo):
    """Decompress the debug files the session inflated into the cache, in
    the background (eu-elfcompress; temp file + rename): the next run maps
    them as they are.  Best effort: nothing is waited for or reported."""
    import shutil
    import subprocess
    tool = shutil.which("eu-elfcompress")
    if not tool:
        return
    for _bid, src, dest in todo:
        try:
            if os.path.getsize(src) > (512 << 20):
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            tmp = "%s.tmp.%d" % (dest, os.getpid())
            subprocess.Popen(
                ["/bin/sh", "-c", '"$0" -q -t none -o "$1" "$2" && mv -f "$1" "$3"'
                 ' || rm -f "$1"', tool, tmp, src, dest],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_normal_priority)
        except OSError:
            pass


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # Import only the command asked for (start-up time is most of a short
    # command's run); the list of all of them only for help and errors.
    registry = load_one(argv[0]) if argv else {}
    if not argv or argv[0] not in registry:
        registry = load_all()
    if not argv or argv[0] in ("-h", "--help", "help"):
        cmds = "\n".join("  %-10s %s" % (n, c.summary) for n, c in sorted(registry.items()))
        sys.stdout.write(USAGE % cmds)
        return EXIT_OK if argv else EXIT_USAGE
    if argv[0] == "--version":
        sys.stdout.write("pmprof %s\n" % __version__)
        return EXIT_OK
    name = argv[0]
    cmd = registry.get(name)
    if cmd is None:
        sys.stderr.write("pmprof: unknown command '%s' (try: %s)\n"
                         % (name, ", ".join(sorted(registry))))
        return EXIT_USAGE
    add_target_options(cmd.parser)
    try:
        try:
            args = cmd.parser.parse_args(argv[1:])
        except Exception as e:
            if e.__class__.__name__ == "_HelpShown":
                return EXIT_OK
            raise
        if (args.pid is None) == (args.core is None):
            raise UsageError("give exactly one target: -p PID or --core CORE")
        if args.pid is not None and args.exe:
            raise UsageError("--exe goes with --core")
        core = load_core()
        ctx = CliContext(args, core)
        # SIGTERM ends a long command like Ctrl-C (record still writes
        # its files); the core checks for it between samples.
        signal.signal(signal.SIGTERM, _sigterm)
        try:
            status = cmd.func(ctx, args)
        except core.Error as e:
            raise translate_core_error(e) from None
        finally:
            if ctx.session is not None:
                todo = ctx.session.cache_todo() if debug_cache_dir() else []
                ctx.session.close()
                if todo:
                    fill_debug_cache(todo)
        if status == EXIT_PARTIAL:
            sys.stderr.write("pmprof %s: partial result: some parts could not be read "
                             "(marked in the output)\n" % name)
        return status
    except PmprofError as e:
        sys.stderr.write("pmprof %s: %s\n" % (name, e))
        return e.status
    except KeyboardInterrupt:
        sys.stderr.write("pmprof %s: interrupted\n" % name)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
