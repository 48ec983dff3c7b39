# Run inside gdb (`gdb -batch -ex 'python exec(...)'`): prints make variables
# describing the Python gdb embeds, so ext/ is built for exactly that one.
import os
import sys
import sysconfig

v = sysconfig.get_config_var
exe = os.path.join(v("BINDIR") or sys.prefix + "/bin", "python" + (v("LDVERSION") or "3"))
if not os.path.exists(exe):
    exe = os.path.join(v("BINDIR") or "/usr/bin", "python%d.%d" % sys.version_info[:2])
print("PY_INCLUDE := %s" % sysconfig.get_paths()["include"])
print("EXT_SUFFIX := %s" % v("EXT_SUFFIX"))
print("PY_EXE := %s" % exe)
print("PY_VERSION := %d.%d" % sys.version_info[:2])
