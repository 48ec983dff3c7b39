# pmprof for gdb: `source /path/to/pmprof/gdb/pmprof.py`.
# Bootstrap only: locate python/, check the C core matches gdb's Python,
# register the commands.  Installs nothing.
import os
import sys
import sysconfig

_here = os.path.dirname(os.path.abspath(os.path.realpath(__file__)))
_pydir = os.path.join(os.path.dirname(_here), "python")
if _pydir not in sys.path:
    sys.path.insert(0, _pydir)

_suffix = sysconfig.get_config_var("EXT_SUFFIX")
if not os.path.exists(os.path.join(_pydir, "pmprof", "_core" + _suffix)):
    import gdb
    built = [f for f in os.listdir(os.path.join(_pydir, "pmprof")) if f.startswith("_core")]
    gdb.write("pmprof: the C core is not built for this gdb's Python %d.%d (%s)%s: "
              "run 'make' in %s\n" % (sys.version_info[0], sys.version_info[1], _suffix,
                                      " (found %s)" % ", ".join(built) if built else "",
                                      os.path.dirname(_here)), gdb.STDERR)
else:
    from pmprof.frontends import gdb as _pmprof_gdb

    _pmprof_gdb.register()
