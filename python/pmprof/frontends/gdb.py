"""The gdb front-end: the `pmprof` prefix command and its subcommands.

With frontends/gdb.py's sibling gdb/pmprof.py, the only module that imports gdb.
Inside gdb the core reads the inferior directly: gdb's main thread (the
one running Python commands) is the ptracer, so the core runs in TRACED
mode and only reads registers and memory; it never resumes, stops or
detaches anything gdb owns.
"""

import contextlib
import os
import re
import traceback

import gdb  # noqa: F401  (only here and in gdb/pmprof.py)

from pmprof import PmprofError, debug_cache_dir, load_core
from pmprof.commands import load_all, translate_core_error
from pmprof.frontends import Context, proc_stat

_sessions = {}
_debug = [False]


def _connection_type(inf):
    conn = getattr(inf, "connection", None)
    if conn is not None:
        return conn.type
    out = gdb.execute("info target", to_string=True)  # gdb < 11: no API
    if "core dump file" in out:
        return "core"
    return "native"


def _debug_path():
    """gdb's own debug-file-directory: `set debug-file-directory` applies."""
    try:
        return gdb.parameter("debug-file-directory") or None
    except gdb.error:
        return None


def _core_path():
    # gdb 13 has no Python API for the core file name: read `info target`.
    out = gdb.execute("info target", to_string=True)
    m = re.search(r"core dump file:\s*\n?\s*`(.*?)'", out)
    if not m:
        raise PmprofError("cannot find the core file name in 'info target'")
    return m.group(1)


class GdbContext(Context):
    frontend = "gdb"

    def __init__(self):
        self.core = load_core()
        self._desc = None
        self._live = None

    def is_live(self):
        return self._live

    def target_description(self):
        return self._desc or "inferior"

    def open_session(self):
        inf = gdb.selected_inferior()
        if inf is None or inf.pid == 0:
            raise PmprofError("no process: attach to one or open a core file")
        ctype = _connection_type(inf)
        if ctype == "core":
            path = _core_path()
            exe = gdb.current_progspace().filename
            key = ("core", path, exe)
            self._desc = "core '%s'" % path
            self._live = False
            if key not in _sessions:
                _sessions[key] = self.core.open_core(path, exe=exe, debug_path=_debug_path(),
                                                     cache_dir=debug_cache_dir())
            return _sessions[key]
        if ctype != "native":
            raise PmprofError("unsupported target '%s': pmprof needs a native "
                              "process or a core file" % ctype)
        threads = inf.threads()
        if any(t.is_running() for t in threads):
            raise PmprofError("the process is running: interrupt it first (Ctrl-C)")
        pid = inf.pid
        self._desc = "pid %d" % pid
        self._live = True
        key = ("pid", pid, proc_stat(pid, 19))
        if key not in _sessions:
            for k in [k for k in _sessions if k[0] == "pid" and k[1] == pid]:
                _sessions.pop(k).close()
            _sessions[key] = self.core.open_pid(pid, traced=True, debug_path=_debug_path(),
                                                    cache_dir=debug_cache_dir())
        return _sessions[key]

    @contextlib.contextmanager
    def record_session(self):
        """Detach gdb, let the core seize the process, attach gdb again.

        Driving gdb's own stop/continue per sample keeps the target
        stopped for milliseconds per sample (docs/record.md); the core's
        PTRACE_SEIZE loop pauses it for ~0.1 ms.  Afterwards gdb is
        attached again, the process stopped, the same thread selected."""
        inf = gdb.selected_inferior()
        if inf is None or inf.pid == 0:
            raise PmprofError("no process: attach to one or start one")
        if _connection_type(inf) != "native":
            raise PmprofError("record needs a live process, not a core file")
        threads = inf.threads()
        if any(t.is_running() for t in threads):
            raise PmprofError("the process is running: interrupt it first (Ctrl-C)")
        pid = inf.pid
        sel = gdb.selected_thread()
        sel_tid = sel.ptid[1] if sel is not None else None
        self._desc = "pid %d" % pid
        self._live = True
        for k in [k for k in _sessions if k[0] == "pid" and k[1] == pid]:
            _sessions.pop(k).close()
        gdb.execute("detach", to_string=True)
        try:
            session = self.core.open_pid(pid, debug_path=_debug_path(),
                                             cache_dir=debug_cache_dir())
            try:
                yield session
            finally:
                session.close()
        finally:
            _reattach(inf, pid, sel_tid)

    def interactive(self):
        try:
            return os.isatty(1)
        except OSError:
            return False

    def progress(self, text):
        gdb.write("\r\033[K" + (text or ""))
        gdb.flush()

    def write(self, text):
        gdb.write(text)

    def warn(self, text):
        gdb.write("pmprof: warning: %s\n" % text, gdb.STDERR)


def _reattach(inf, pid, sel_tid):
    """Attach gdb to pid again (stopped) and select thread sel_tid."""
    if not os.path.exists("/proc/%d" % pid):
        gdb.write("pmprof record: process %d exited; gdb is no longer attached\n" % pid,
                  gdb.STDERR)
        return
    gdb.execute("attach %d" % pid, to_string=True)
    for t in gdb.selected_inferior().threads():
        if t.ptid[1] == sel_tid:
            t.switch()
            break


def _drop_sessions(event=None):
    for s in _sessions.values():
        try:
            s.close()
        except Exception:
            pass
    _sessions.clear()


class PmprofPrefix(gdb.Command):
    """See inside the process: threads, stacks, profiles.

Subcommands list below; `pmprof <subcommand> -h` gives each one's options."""

    def __init__(self):
        super().__init__("pmprof", gdb.COMMAND_STATUS, gdb.COMPLETE_NONE, True)


class PmprofSet(gdb.Parameter):
    """Show Python tracebacks of pmprof errors."""

    set_doc = "Set whether pmprof errors show a Python traceback."
    show_doc = "Show whether pmprof errors show a Python traceback."

    def __init__(self):
        super().__init__("pmprof-debug", gdb.COMMAND_MAINTENANCE, gdb.PARAM_BOOLEAN)
        self.value = False

    def get_set_string(self):
        _debug[0] = bool(self.value)
        return ""


def _make_subcommand(name, cmd):
    class Sub(gdb.Command):
        def __init__(self):
            super().__init__("pmprof " + name, gdb.COMMAND_STATUS)

        def invoke(self, arg, from_tty):
            self.dont_repeat()
            try:
                argv = gdb.string_to_argv(arg)
                ctx = GdbContext()
                try:
                    cmd.run(ctx, argv)
                except ctx.core.Error as e:
                    raise translate_core_error(e) from None
            except PmprofError as e:
                raise gdb.GdbError("pmprof %s: %s" % (name, e)) from None
            except gdb.GdbError:
                raise
            except KeyboardInterrupt:
                raise gdb.GdbError("pmprof %s: interrupted" % name) from None
            except Exception as e:  # never a traceback unless asked for
                if _debug[0]:
                    traceback.print_exc()
                raise gdb.GdbError("pmprof %s: internal error: %s: %s "
                                   "(`set pmprof-debug on` shows the traceback)"
                                   % (name, e.__class__.__name__, e)) from None

    # The parser is the only help text; gdb lists the first line.
    Sub.__doc__ = cmd.summary[0].upper() + cmd.summary[1:] + ".\n\n" + cmd.parser.format_help()
    return Sub()


_registered = []


def register():
    if _registered:
        return
    _registered.append(PmprofPrefix())
    _registered.append(PmprofSet())
    for name, cmd in sorted(load_all().items()):
        _registered.append(_make_subcommand(name, cmd))
    gdb.events.exited.connect(_drop_sessions)
    os.environ.setdefault("PMPROF_FRONTEND", "gdb")
