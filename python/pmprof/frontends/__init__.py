"""The front-ends, at the edge of python/pmprof/: gdb (gdb.py), lldb
(lldb.py) and the standalone command line (cli.py, started by bin/pmprof),
and here the interface the commands use.

A front-end provides a Context that knows how to open a core Session on
"the current target" and registers the commands with its debugger.
Commands (pmprof.commands) never import a debugger or a front-end; only
gdb.py imports gdb and only lldb.py imports lldb (tools/layers.py checks
both).  A new debugger is a new module here.
"""


class Context:
    """What a command may ask of its front-end."""

    #: "gdb", "lldb" or "cli"
    frontend = "cli"

    def open_session(self):
        """Return a pmprof._core.Session for the current target.

        Raises PmprofError when there is no usable target.
        """
        raise NotImplementedError

    def target_description(self):
        """A short description, e.g. 'pid 1234' or "core 'core.1234'"."""
        raise NotImplementedError

    def write(self, text):
        raise NotImplementedError

    def warn(self, text):
        raise NotImplementedError

    def is_live(self):
        raise NotImplementedError

    def record_session(self):
        """A context manager giving a Session that may run record(): the
        core attaches itself (PTRACE_SEIZE).  A debugger front-end lets
        go of the process for that time and takes it back afterwards."""
        raise NotImplementedError

    def interactive(self):
        """True when a live progress line makes sense (a terminal)."""
        return False

    def progress(self, text):
        """Show text as the progress line (None: clear it)."""

    def interrupted(self):
        """True when the user asked to stop a long command (Ctrl-C) in a
        way no KeyboardInterrupt carries (lldb's command interrupt)."""
        return False


def proc_stat(pid, field):
    """Field `field` of /proc/PID/stat after the command name (0: the
    state letter, 19: the start time), None when there is no such
    process.  The start time tells a pid that was reused."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[field]
    except (OSError, IndexError):
        return None
