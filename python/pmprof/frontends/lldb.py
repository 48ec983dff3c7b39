"""The lldb front-end: the `pmprof` command and its subcommands.

With lldb/pmprof.py, the only module that imports lldb.  On Linux lldb
drives the process through lldb-server, a separate process: lldb is not
the ptracer, so the core opens the process in EXTERNAL mode.  Registers
of every thread come from lldb (SB API, frame 0 of each thread, cached
per stop id); the syscall number and memory are read from /proc/PID
directly where the kernel allows it, and otherwise (or with
PMPROF_LLDB_READS=lldb) memory is read through SBProcess.ReadMemory in
32 KiB blocks the core caches for the stop.  Nothing here resumes,
stops, or selects anything in the process lldb holds, except `record`,
which detaches lldb for its duration and attaches it again.
"""

import contextlib
import os
import re
import shlex
import struct
import traceback

import lldb  # noqa: F401  (only here and in lldb/pmprof.py)

from pmprof import PmprofError, debug_cache_dir, load_core
from pmprof.commands import (EXIT_OK, UsageError, _HelpShown, load_all,
                             translate_core_error)
from pmprof.frontends import Context, proc_stat

_sessions = {}
_debug = [os.environ.get("PMPROF_DEBUG") == "1"]

# lldb's general-purpose register names in pmprof's DWARF order.
_GPR_DWARF = ("rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip")


def _reads_via_lldb():
    """PMPROF_LLDB_READS=lldb: read memory through lldb even where
    /proc/PID/mem is readable (tests compare both paths)."""
    return os.environ.get("PMPROF_LLDB_READS", "") == "lldb"


def _debug_path(debugger):
    """target.debug-file-search-paths (then /usr/lib/debug, as lldb
    itself looks there too)."""
    # lldb 16's GetSetting() returns nothing for file lists: read what
    # `settings show` prints ("  [0]: /path" a line).
    ret = lldb.SBCommandReturnObject()
    debugger.GetCommandInterpreter().HandleCommand(
        "settings show target.debug-file-search-paths", ret)
    paths = [m.group(1) for m in re.finditer(r"^\s*\[\d+\]: (.*?)\s*$",
                                             ret.GetOutput() or "", re.M)]
    if not paths:
        return None
    return ":".join(paths + ["/usr/lib/debug"])


def _elf_core_pid(path):
    """The pid in an ELF core's NT_PRSTATUS, or None if path is not one."""
    try:
        with open(path, "rb") as f:
            eh = f.read(64)
            if len(eh) < 64 or eh[:4] != b"\x7fELF" or eh[4] != 2:
                return None
            e_type, = struct.unpack_from("<H", eh, 16)
            if e_type != 4:
                return None
            phoff, = struct.unpack_from("<Q", eh, 32)
            phentsize, phnum = struct.unpack_from("<HH", eh, 54)
            f.seek(phoff)
            ph = f.read(phentsize * min(phnum, 4096))
            for i in range(min(phnum, 4096)):
                p_type, = struct.unpack_from("<I", ph, i * phentsize)
                if p_type != 4:   # PT_NOTE
                    continue
                off, = struct.unpack_from("<Q", ph, i * phentsize + 8)
                size, = struct.unpack_from("<Q", ph, i * phentsize + 32)
                f.seek(off)
                notes = f.read(min(size, 1 << 20))
                o = 0
                while o + 12 <= len(notes):
                    nsz, dsz, nty = struct.unpack_from("<III", notes, o)
                    d = o + 12 + ((nsz + 3) & ~3)
                    if nty == 1 and d + 36 <= len(notes):   # NT_PRSTATUS
                        return struct.unpack_from("<i", notes, d + 32)[0]
                    o = d + ((dsz + 3) & ~3)
    except (OSError, struct.error):
        return None
    return None


def _core_path(process):
    """The core file lldb loaded for `process`.  lldb 16 has no API for
    it; lldb maps the core file whole, so it is the ELF core among this
    process's file mappings whose pid is the process's."""
    pid = process.GetProcessID()
    seen = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[2] == "00000000" and parts[5].startswith("/"):
                    p = parts[5].rstrip("\n")
                    if p not in seen:
                        seen.append(p)
    except OSError:
        pass
    found = [p for p in seen if _elf_core_pid(p) == pid] if pid else []
    if not found and pid == 0:
        raise PmprofError("lldb could not read this core file (no process and no "
                          "threads in it): damaged or truncated?")
    if not found:
        raise PmprofError("cannot find the core file lldb loaded for process %d" % pid)
    return found[-1]


def _read_u64(process, addr):
    err = lldb.SBError()
    v = process.ReadUnsignedFromMemory(addr, 8, err)
    return v if err.Success() else None


def _symbol_address(target, name):
    for ctx in target.FindSymbols(name):
        a = ctx.GetSymbol().GetStartAddress().GetLoadAddress(target)
        if a != lldb.LLDB_INVALID_ADDRESS:
            return a
    return None


def _thread_db_offset(target, process, name):
    """The offset in glibc's libthread_db descriptor `name` ({bits,
    count, offset} as three u32 in libc's .dynsym: the contract between
    glibc and libthread_db, so exact for every glibc that has it)."""
    a = _symbol_address(target, "_thread_db_" + name)
    if a is None:
        return None
    err = lldb.SBError()
    data = process.ReadMemory(a, 12, err)
    if not err.Success() or not data or len(data) != 12:
        return None
    return struct.unpack("<III", data)[2]


def _thread_pointers(target, process):
    """{tid: struct pthread} from glibc's own thread lists (_dl_stack_used,
    _dl_stack_user in _rtld_global).  On x86_64 a thread's fs_base is its
    struct pthread; lldb 16 does not show fs_base (heap tcaches, Go's TLS
    and lock owners by struct pthread need it).  {} when glibc's
    descriptors or lists cannot be read."""
    offs = [_thread_db_offset(target, process, n) for n in
            ("pthread_tid", "pthread_list", "rtld_global__dl_stack_used",
             "rtld_global__dl_stack_user")]
    rtld = _symbol_address(target, "_rtld_global")
    if rtld is None or any(o is None for o in offs):
        return {}
    tid_off, list_off, used, user = offs
    out = {}
    for head in (rtld + used, rtld + user):
        p = _read_u64(process, head)
        n = 0
        while p and p != head and n < 65536:     # bounded, cycle-safe
            pd = p - list_off
            err = lldb.SBError()
            tid = process.ReadUnsignedFromMemory(pd + tid_off, 4, err)
            if not err.Success():
                break
            out.setdefault(tid, pd)
            p = _read_u64(process, p)
            n += 1
    return out


# Where lldb's general-purpose register set keeps what pmprof needs:
# (number of registers in the set, [index of each of _GPR_DWARF], index of
# rflags, index of fs_base or -1); learnt from the names once, then read by
# index (a name costs an SB call per register and thread).
_gpr_layout = [None]


def _layout(gpr):
    n = gpr.GetNumChildren()
    if _gpr_layout[0] is None or _gpr_layout[0][0] != n:
        names = [gpr.GetChildAtIndex(i).GetName() for i in range(n)]
        if any(x not in names for x in _GPR_DWARF):
            return None
        _gpr_layout[0] = (n, [names.index(x) for x in _GPR_DWARF],
                          names.index("rflags") if "rflags" in names else -1,
                          names.index("fs_base") if "fs_base" in names else -1)
    return _gpr_layout[0]


def _thread_regs(thread, fs_bases):
    """(tid, 17 registers in DWARF order, orig_rax, eflags, fs_base) of a
    thread at its innermost frame.  orig_rax -1: the core reads the
    syscall from /proc; fs_base from lldb (lldb >= 17) or glibc's thread
    list (0: unknown)."""
    frame = thread.GetFrameAtIndex(0)
    gpr = frame.GetRegisters().GetFirstValueByName("General Purpose Registers")
    lay = _layout(gpr)
    if lay is None:
        return None
    _n, idx, i_flags, i_fs = lay
    tid = thread.GetThreadID()
    regs = tuple(gpr.GetChildAtIndex(i).GetValueAsUnsigned() for i in idx)
    flags = gpr.GetChildAtIndex(i_flags).GetValueAsUnsigned() if i_flags >= 0 else 0
    fs = gpr.GetChildAtIndex(i_fs).GetValueAsUnsigned() if i_fs >= 0 else 0
    return (tid,) + regs + (0xFFFFFFFFFFFFFFFF, flags, fs or fs_bases.get(tid, 0))


class LldbContext(Context):
    frontend = "lldb"

    def __init__(self, debugger, exe_ctx, result):
        self.debugger = debugger
        self.exe_ctx = exe_ctx
        self.result = result
        self.core = load_core()
        self._desc = None
        self._live = None
        self._err = debugger.GetErrorFile()

    def is_live(self):
        return self._live

    def target_description(self):
        return self._desc or "process"

    def _process(self):
        target = self.exe_ctx.GetTarget() if self.exe_ctx else None
        if target is None or not target.IsValid():
            target = self.debugger.GetSelectedTarget()
        if target is None or not target.IsValid():
            raise PmprofError("no target: attach to a process (lldb -p PID) "
                              "or load a core (lldb EXE -c CORE)")
        process = target.GetProcess()
        if process is not None and process.IsValid() and process.GetPluginName() == "elf-core":
            return target, process
        if process is None or not process.IsValid() or process.GetProcessID() == 0 \
                or process.GetState() in (lldb.eStateInvalid, lldb.eStateUnloaded,
                                          lldb.eStateExited, lldb.eStateDetached,
                                          lldb.eStateConnected):
            raise PmprofError("no process: attach to one (process attach --pid PID) "
                              "or load a core (target create EXE --core CORE)")
        return target, process

    def open_session(self):
        target, process = self._process()
        plugin = process.GetPluginName()
        if plugin == "elf-core":
            path = _core_path(process)
            exe = target.GetExecutable().fullpath if target.GetExecutable().IsValid() else None
            self._desc = "core '%s'" % path
            self._live = False
            dpath = _debug_path(self.debugger)
            key = ("core", path, exe, dpath)
            if key not in _sessions:
                _sessions[key] = self.core.open_core(path, exe=exe, debug_path=dpath,
                                                     cache_dir=debug_cache_dir())
            return _sessions[key]
        if plugin != "gdb-remote" or target.GetPlatform().GetName() != "host":
            raise PmprofError("unsupported process '%s': pmprof needs a local live "
                              "process or an ELF core file" % plugin)
        if process.GetState() != lldb.eStateStopped:
            raise PmprofError("the process is running: interrupt it first "
                              "(process interrupt, or Ctrl-C)")
        pid = process.GetProcessID()
        self._desc = "pid %d" % pid
        self._live = True
        via = _reads_via_lldb()
        dpath = _debug_path(self.debugger)
        key = ("pid", pid, proc_stat(pid, 19), via, dpath)
        entry = _sessions.get(key)
        if entry is None:
            # another process (or this pid reused): its sessions go
            for k in [k for k in _sessions if k[0] == "pid" and k[1:3] != key[1:3]]:
                _sessions.pop(k)[0].close()
            reader = _Reader(process)
            session = self.core.open_pid(pid, external=True, read=reader, read_always=via,
                                         debug_path=dpath, cache_dir=debug_cache_dir())
            entry = _sessions[key] = [session, reader, None, None]
        session, reader = entry[0], entry[1]
        reader.process = process
        stop = process.GetStopID(True)
        if entry[2] != stop or not _same_frames(process, entry[3]):
            regs = []
            fs_bases = _thread_pointers(target, process)
            for t in process:
                r = _thread_regs(t, fs_bases)
                if r is not None:
                    regs.append(r)
            session.set_regs(regs, stop)
            entry[2] = stop
            entry[3] = {r[0]: (r[17], r[8]) for r in regs}
        return session

    @contextlib.contextmanager
    def record_session(self):
        """Detach lldb, let the core seize the process, attach lldb again.

        As in gdb (docs/record.md): the core's PTRACE_SEIZE loop pauses
        the process ~0.1 ms a sample; afterwards lldb is attached again,
        the process stopped, the same thread and frame selected."""
        target, process = self._process()
        if process.GetPluginName() != "gdb-remote" or target.GetPlatform().GetName() != "host":
            raise PmprofError("record needs a live process, not a core file")
        if process.GetState() != lldb.eStateStopped:
            raise PmprofError("the process is running: interrupt it first "
                              "(process interrupt, or Ctrl-C)")
        pid = process.GetProcessID()
        sel = process.GetSelectedThread()
        sel_tid = sel.GetThreadID() if sel.IsValid() else None
        sel_frame = sel.GetSelectedFrame().GetFrameID() if sel.IsValid() else 0
        self._desc = "pid %d" % pid
        self._live = True
        for k in [k for k in _sessions if k[0] == "pid"]:
            _sessions.pop(k)[0].close()
        _put(self._err, "pmprof record: lldb lets go of process %d while recording "
                        "(it runs); it attaches again afterwards\n" % pid)
        err = process.Detach()
        if not err.Success():
            raise PmprofError("cannot detach from process %d: %s" % (pid, err.GetCString()))
        try:
            if proc_stat(pid, 0) in (None, "Z", "X"):
                # seen with a process lldb launched and then interrupted:
                # it ends as lldb-server detaches
                raise PmprofError("process %d ended when lldb let go of it: nothing "
                                  "recorded" % pid)
            session = self.core.open_pid(pid, debug_path=_debug_path(self.debugger),
                                         cache_dir=debug_cache_dir())
            try:
                yield session
            finally:
                session.close()
        finally:
            self._reattach(target, pid, sel_tid, sel_frame)

    def _reattach(self, target, pid, sel_tid, sel_frame):
        if proc_stat(pid, 0) in (None, "Z", "X"):
            _put(self._err, "pmprof record: process %d exited; lldb is no longer "
                            "attached\n" % pid)
            return
        err = lldb.SBError()
        listener = self.debugger.GetListener()
        process = target.AttachToProcessWithID(listener, pid, err)
        if not err.Success() or not process.IsValid():
            _put(self._err, "pmprof record: cannot attach to process %d again: %s\n"
                            % (pid, err.GetCString()))
            return
        if sel_tid is not None:
            process.SetSelectedThreadByID(sel_tid)
            t = process.GetSelectedThread()
            if t.IsValid() and t.GetThreadID() == sel_tid:
                t.SetSelectedFrame(sel_frame)
        _put(self._err, "pmprof record: lldb attached to process %d again (stopped)\n" % pid)

    def interactive(self):
        try:
            return self.debugger.GetOutputFile().IsValid() and os.isatty(1)
        except Exception:
            return False

    def progress(self, text):
        _put(self.debugger.GetOutputFile(), "\r\033[K" + (text or ""))

    def interrupted(self):
        # lldb turns Ctrl-C into a flag on the running command
        return self.debugger.GetCommandInterpreter().WasInterrupted()

    def write(self, text):
        if self.interrupted():
            # lldb drops the result of an interrupted command ("...
            # Interrupted."): what a Ctrl-C'd record wrote must show.
            _put(self.debugger.GetOutputFile(), text)
        else:
            self.result.Print(text)

    def warn(self, text):
        _put(self._err, "pmprof: warning: %s\n" % text)


def _put(sbfile, text):
    """Write text to one of lldb's SBFiles (its output or error stream)."""
    sbfile.Write(text.encode("utf-8", "replace"))
    sbfile.Flush()


def _same_frames(process, known):
    """The registers handed over are still lldb's: same threads, and the
    selected thread's innermost pc and sp unchanged (`register write`
    keeps the stop id, and writes the selected thread's registers;
    checking every thread costs ~10 us each, more than the rest of a warm
    `pmprof stacks`).  See docs/lldb.md."""
    if not known or len(known) != process.GetNumThreads():
        return False
    t = process.GetSelectedThread()
    if not t.IsValid():
        return True
    f = t.GetFrameAtIndex(0)
    return known.get(t.GetThreadID()) == (f.GetPC(), f.GetSP())


class _Reader:
    """read(addr, len) for the core: SBProcess.ReadMemory, with len up to
    32 KiB; short or b"" where lldb cannot read."""

    def __init__(self, process):
        self.process = process

    def __call__(self, addr, size):
        err = lldb.SBError()
        data = self.process.ReadMemory(addr, size, err)
        if data and err.Success():
            return data
        if size > 4096:
            # A block that ends in an unmapped page: its readable pages.
            out = []
            for a in range(addr, addr + size, 4096):
                e = lldb.SBError()
                d = self.process.ReadMemory(a, 4096, e)
                if not d or not e.Success():
                    break
                out.append(d)
                if len(d) < 4096:
                    break
            return b"".join(out)
        return b""


def _summary_lines():
    cmds = load_all()
    out = []
    for name in sorted(cmds):
        out.append("  %-11s -- %s" % (name, cmds[name].summary))
    return "\n".join(out)


HELP = ("See inside the process: threads, stacks, profiles.\n\n"
        "Syntax: pmprof <subcommand> [options]\n\n"
        "The following subcommands are supported:\n\n%s\n\n"
        "`pmprof <subcommand> -h` gives each one's options; "
        "PMPROF_DEBUG=1 in the environment shows Python tracebacks of errors.")


def _run(debugger, command, exe_ctx, result):
    try:
        argv = shlex.split(command)
    except ValueError as e:
        result.SetError("pmprof: %s" % e)
        return
    cmds = load_all()
    if not argv or argv[0] in ("-h", "--help", "help"):
        result.Print(HELP % _summary_lines() + "\n")
        return
    name = argv[0]
    cmd = cmds.get(name)
    if cmd is None:
        result.SetError("pmprof: unknown subcommand '%s' (pmprof -h lists them)" % name)
        return
    try:
        ctx = LldbContext(debugger, exe_ctx, result)
        try:
            status = cmd.run(ctx, argv[1:])
        except _HelpShown:
            status = EXIT_OK
        except ctx.core.Error as e:
            raise translate_core_error(e) from None
    except UsageError as e:
        result.SetError("pmprof %s: %s" % (name, e))
        return
    except PmprofError as e:
        result.SetError("pmprof %s: %s" % (name, e))
        return
    except KeyboardInterrupt:
        result.SetError("pmprof %s: interrupted" % name)
        return
    except Exception as e:  # never a traceback unless asked for
        if _debug[0]:
            traceback.print_exc()
        result.SetError("pmprof %s: internal error: %s: %s (PMPROF_DEBUG=1 shows "
                        "the traceback)" % (name, e.__class__.__name__, e))
        return
    del status
    result.SetStatus(lldb.eReturnStatusSuccessFinishResult)


class PmprofCommand:
    """`command script add -c pmprof.frontends.lldb.PmprofCommand pmprof`."""

    def __init__(self, debugger, internal_dict):
        pass

    def __call__(self, debugger, command, exe_ctx, result):
        _run(debugger, command, exe_ctx, result)

    def get_short_help(self):
        return "See inside the process: threads, stacks, locks, heap, Go, profiles."

    def get_long_help(self):
        return (HELP % _summary_lines()).split("\n\n", 1)[1]


def register(debugger, class_name="pmprof.frontends.lldb.PmprofCommand"):
    debugger.HandleCommand("command script add -o -c %s pmprof" % class_name)
    os.environ.setdefault("PMPROF_FRONTEND", "lldb")
