"""pmprof: see inside a live process or a core file.

The heavy lifting is in the C extension ``pmprof._core``; this package only
parses arguments, calls the core and renders results.  Lowest first:
this module (errors, loading the core), report.py and locks.py (plain
data), commands/ (one module per command), frontends/ (gdb, lldb, the
CLI); no module imports one after it (tools/layers.py).
"""

__version__ = "0.1.0"


class PmprofError(Exception):
    """A user-facing error: printed as one line, never with a traceback."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


def debug_cache_dir():
    """Where decompressed copies of compressed debug files are kept, by
    build-id: $PMPROF_CACHE_DIR, else $XDG_CACHE_HOME/pmprof/debug (or
    ~/.cache/...); None with PMPROF_NO_CACHE=1."""
    import os
    if os.environ.get("PMPROF_NO_CACHE"):
        return None
    d = os.environ.get("PMPROF_CACHE_DIR")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pmprof", "debug")


def load_core():
    """Import pmprof._core, explaining clearly what is wrong if it fails."""
    try:
        from pmprof import _core
    except ImportError as e:
        import sys
        import sysconfig

        raise PmprofError(
            "cannot load the pmprof C core (%s): run 'make' in the pmprof "
            "directory; it must be built for this Python %d.%d (%s)"
            % (e, sys.version_info[0], sys.version_info[1],
               sysconfig.get_config_var("EXT_SUFFIX"))
        ) from None
    return _core
