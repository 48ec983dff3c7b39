# pmprof for lldb: `command script import /path/to/pmprof/lldb/pmprof.py`
# (or that line in ~/.lldbinit).  Bootstrap only: locate python/, check the
# C core matches lldb's Python, register the `pmprof` command.  Installs
# nothing.
import os
import sys
import sysconfig

_here = os.path.dirname(os.path.abspath(os.path.realpath(__file__)))
_pydir = os.path.join(os.path.dirname(_here), "python")
if _pydir not in sys.path:
    sys.path.insert(0, _pydir)


def __lldb_init_module(debugger, internal_dict):
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if not os.path.exists(os.path.join(_pydir, "pmprof", "_core" + suffix)):
        built = [f for f in os.listdir(os.path.join(_pydir, "pmprof")) if f.startswith("_core")]
        sys.stderr.write("pmprof: the C core is not built for this lldb's Python %d.%d (%s)%s: "
                         "run 'make' in %s\n" % (sys.version_info[0], sys.version_info[1], suffix,
                                                 " (found %s)" % ", ".join(built) if built else "",
                                                 os.path.dirname(_here)))
        return
    # lldb imported this file as the module `pmprof`; the package of the
    # same name takes its place in sys.modules (lldb keeps this module in
    # its own namespace, and finds the command class here).
    me = sys.modules.get("pmprof")
    if me is not None and not hasattr(me, "__path__"):
        del sys.modules["pmprof"]
    from pmprof.frontends import lldb as _pmprof_lldb

    global PmprofCommand
    PmprofCommand = _pmprof_lldb.PmprofCommand
    _pmprof_lldb.register(debugger, __name__ + ".PmprofCommand")
