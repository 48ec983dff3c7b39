"""Lock-wait analysis: who waits on what, held by whom; chains, cycles and
root blockers; rendered as text, JSON (pmprof.locks/1) and Graphviz DOT.

The C core decodes each thread's wait from its registers and the lock's
memory (ext/inspect/locks.c); this module only builds the graph (a few dicts per
thread) and prints it.
"""

import os
import re

from pmprof import report

SCHEMA = "pmprof.locks/1"

# Exit statuses of `bin/pmprof locks|hang` (README): the verdict.
EXIT_NONE = 0
EXIT_HANG = 3
EXIT_DEADLOCK = 4

MUTEX_TYPES = {0: "normal", 1: "recursive", 2: "errorcheck", 3: "adaptive"}
RW_WAITS = {
    1: "write access, held for writing",
    2: "read access, held for writing",
    3: "write access, held for reading",
    4: "read access, queued behind a waiting writer",
}
KIND_NAMES = {
    "mutex": "mutex", "rwlock": "rwlock", "cond": "condition variable",
    "sem": "semaphore", "join": "pthread_join", "stdio": "stdio lock",
    "waitv": "futex_waitv", "futex": "futex",
}
# Function names (substrings) that confirm a kind on the waiter's stack.
STACK_HINTS = {
    "mutex": ("pthread_mutex_lock", "pthread_mutex_timedlock", "pthread_mutex_clocklock",
              "lll_lock_wait", "lll_mutex_lock", "__pthread_mutex_lock", "std::mutex::lock",
              "__gthread_mutex_lock", "futex_lock_pi", "std::recursive_mutex::lock",
              "std::timed_mutex"),
    "rwlock": ("pthread_rwlock_", "std::shared_mutex", "__glibcxx_rwlock"),
    "cond": ("pthread_cond_wait", "pthread_cond_timedwait", "pthread_cond_clockwait",
             "std::condition_variable"),
    "sem": ("sem_wait", "sem_timedwait", "sem_clockwait", "__new_sem_wait"),
    "join": ("pthread_join", "pthread_clockjoin", "pthread_timedjoin", "std::thread::join"),
    "stdio": ("_IO_", "flockfile", "lll_lock_wait_private", "puts", "printf", "fwrite",
              "fputs", "fflush", "getc", "putc"),
    "waitv": ("syscall",),
}


def subkind_text(w):
    k = w["kind"]
    if k == "mutex":
        s = MUTEX_TYPES.get(w["subkind"] & 3, "normal")
        k = w["subkind"]
        if k & 16:
            k &= ~128    # glibc sets the pshared bit on every robust mutex
        flags = [n for bit, n in ((16, "robust"), (32, "PI"), (64, "PP"), (128, "pshared"))
                 if k & bit]
        if w["timed"]:
            flags.append("timed")
        return " ".join([s] + flags)
    if k == "rwlock":
        return RW_WAITS.get(w["subkind"], "")
    return ""


# Kinds whose waiting calls a stack names unambiguously (stdio's hints
# are common words: puts, printf).
CALL_KINDS = ("mutex", "rwlock", "cond", "sem", "join")


def stack_call(frames):
    """The innermost frame that names a lock call, as (kind, function), or
    None."""
    for f in frames:
        fn = f["function"]
        if not fn or fn.startswith("["):
            continue
        for k in CALL_KINDS:
            if any(h in fn for h in STACK_HINTS[k]):
                return k, fn
    return None


def _is_libc(path):
    """glibc's own files, wherever they are installed."""
    return os.path.basename(path or "").startswith(("libc.so", "libc-", "libpthread"))


def stack_agrees(kind, frames):
    """True if a frame names the waiting call, False if frames are named but
    none does, None when the stack has no names to tell: the call is in
    the system library frames on top of the stack, and a libc without
    debug info names only its exported functions (2.36's pthread_join
    waits in the local __pthread_clockjoin_ex)."""
    def named(f):
        return f["function"] and not f["function"].startswith("[")

    names = [f["function"] for f in frames if named(f)]
    hints = STACK_HINTS.get(kind)
    if kind == "mutex":
        # pthread_cond_wait takes its mutex again on wake-up (in libc's
        # local __pthread_mutex_cond_lock: unnamed without debug info)
        hints = hints + STACK_HINTS["cond"]
    if not names or not hints:
        return None
    if any(h in n for n in names for h in hints):
        return True
    lead = []
    for f in frames:
        if not (report.is_system_module(f["module"]) or _is_libc(f["module"])):
            break
        lead.append(f)
    if lead and not any(named(f) for f in lead):
        return None
    return False


def _pid_of_tid(tid):
    """Live: the process a TID belongs to (pshared/robust owners may be in
    another process), or None."""
    try:
        with open("/proc/%d/status" % tid) as f:
            m = re.search(r"^Tgid:\s*(\d+)", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def fd_target(pid, fd):
    """Live: what fd points to, with TCP endpoints for sockets."""
    try:
        t = os.readlink("/proc/%d/fd/%d" % (pid, fd))
    except OSError:
        return None
    m = re.match(r"socket:\[(\d+)\]$", t)
    if m:
        ep = _socket_endpoints(pid, m.group(1))
        if ep:
            return "%s %s" % (t, ep)
    return t


def _hexaddr(h, v6):
    import socket
    import struct
    if not v6:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(h, 16)))
    raw = b"".join(struct.pack("<I", int(h[i:i + 8], 16)) for i in range(0, 32, 8))
    return "[%s]" % socket.inet_ntop(socket.AF_INET6, raw)


def _socket_endpoints(pid, inode):
    for proto, v6 in (("tcp", False), ("tcp6", True), ("udp", False), ("udp6", True)):
        try:
            with open("/proc/%d/net/%s" % (pid, proto)) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            if len(p) > 9 and p[9] == inode:
                (la, lp), (ra, rp) = p[1].split(":"), p[2].split(":")
                return "%s %s:%d -> %s:%d" % (proto, _hexaddr(la, v6), int(lp, 16),
                                              _hexaddr(ra, v6), int(rp, 16))
    return None


FD_SYSCALLS = {"read", "write", "readv", "writev", "pread64", "pwrite64", "recvfrom",
               "sendto", "recvmsg", "sendmsg", "accept", "accept4", "connect",
               "fsync", "fdatasync", "flock", "ioctl", "epoll_wait", "epoll_pwait",
               "fcntl", "lockf", "sendfile", "splice"}


def describe_activity(th, pid, live):
    """What a thread that waits for no lock is doing, in one phrase."""
    sc = th.get("syscall")
    if th["state"] == "R" or sc is None:
        return "running (not in a system call)"
    name = sc["name"] or "syscall_%d" % sc["nr"]
    args = sc["args"]
    if name == "restart_syscall":
        # A timed call interrupted by a ptrace stop (ours, gdb's) restarts
        # this way; the registers no longer say which: the stack does.
        for f in th.get("frames", [])[:4]:
            fn = f["function"]
            for known in ("clock_nanosleep", "nanosleep", "epoll_wait", "epoll_pwait",
                          "poll", "select", "futex", "sem_", "cond_timedwait",
                          "cond_clockwait", "timedlock", "sleep"):
                if known in fn:
                    return "in %s (a timed call, restarted after a stop)" % fn
        return "in a timed system call restarted after a stop (restart_syscall)"
    if name in FD_SYSCALLS:
        fd = args[0]
        tgt = fd_target(pid, fd) if live else None
        where = "fd %d -> %s" % (fd, tgt) if tgt else (
            "fd %d (target unknown in a core)" % fd if not live else "fd %d" % fd)
        return "blocked in %s(%s)" % (name, where)
    if name in ("nanosleep", "clock_nanosleep"):
        return "sleeping in %s" % name
    if name in ("poll", "ppoll", "select", "pselect6"):
        return "waiting in %s" % name
    return "in %s" % report.fmt_syscall(sc)


def thread_label(th):
    return "%s [%d]" % (th["name"], th["tid"]) if th.get("name") else "[%d]" % th["tid"]


def analyze(threads, snap=None, live=True, pid=0, stable=None):
    """Build the report dict (the JSON document, less 'target').

    threads: snapshot thread dicts with 'frames' (report.symbolize_threads)
    and 'wait' (decode_waits).  stable: optional set of (waiter, object,
    owner) seen in an earlier read; edges not in it are dropped (live)."""
    for t in threads:
        if not t["name"]:
            # cores carry no thread names: the start routine stands in
            start = [f for f in t.get("frames", []) if f["function"]
                     and not f["function"].startswith("[")
                     and not report.is_system_module(f["module"])]
            if start:
                t["name"] = "(%s)" % start[-1]["function"]
    by_tid = {t["tid"]: t for t in threads}
    # names for objects
    objs = sorted({a for t in threads if t["wait"]
                   for a in (t["wait"]["object"], t["wait"]["futex"]) if a})
    syms = dict(zip(objs, snap.data_symbols(objs))) if snap is not None and objs else {}
    edges, unstable = [], []
    for t in threads:
        w = t["wait"]
        if not w:
            continue
        obj = w["object"] or w["futex"]
        sym, off = syms.get(obj, ("", 0))
        e = {
            "waiter": t["tid"],
            "object": "0x%x" % obj,
            "object_kind": w["kind"],
            "subkind": subkind_text(w),
            "symbol": (sym if not off else "%s+%d" % (sym, off)) if sym else None,
            "futex": "0x%x" % w["futex"],
            "futex_op": "0x%x" % w["futex_op"],
            "futex_val": w["futex_val"],
            "futex_word": w["word"],
            "syscall": w["syscall"],
            "owners": [w["owner"]] if w["owner"] else [],
            "owner_source": w["owner_source"],
            "owner_died": w["owner_died"],
            "readers": w["readers"] if w["readers"] >= 0 else None,
            "waiters": w["waiters"] if w["waiters"] >= 0 else None,
            "count": w["count"],
            "timed": w["timed"],
            "stack_agrees": stack_agrees(w["kind"], t["frames"]),
            "frame": _frame_json(report.app_frame(t["frames"])),
        }
        if w["kind"] == "waitv":
            e["waitv"] = [{"futex": "0x%x" % a, "val": v} for a, v in w["waitv"]]
        call = stack_call(t["frames"]) if e["stack_agrees"] is False else None
        if call and call[0] != w["kind"]:
            # Memory has the shape of one kind, the stack is in another
            # kind's call: neither is trusted, the wait is an unnamed
            # futex and both are named (never an owner read from a
            # layout that is not the lock's).
            fsym, foff = syms.get(w["futex"], ("", 0))
            e.update({
                "object": "0x%x" % w["futex"], "object_kind": "futex", "subkind": "",
                "symbol": (fsym if not foff else "%s+%d" % (fsym, foff)) if fsym else None,
                "owners": [], "owner_source": "none", "owner_died": False,
                "readers": None, "waiters": None, "count": 0, "stack_agrees": None,
                "memory_kind": w["kind"], "stack_call": call[1]})
        if stable is not None and (t["tid"], obj, w["owner"]) not in stable:
            unstable.append(e)
            continue
        edges.append(e)
    edge_of = {e["waiter"]: e for e in edges}

    # Follow each waiter's owner chain to its end.
    ends = {}
    for e in edges:
        path, cur = [], e["waiter"]
        while True:
            if cur in path:
                ends[e["waiter"]] = ("cycle", tuple(path[path.index(cur):]), path)
                break
            path.append(cur)
            ce = edge_of.get(cur)
            if ce is None:
                ends[e["waiter"]] = ("holder", cur, path)
                break
            if not ce["owners"]:
                ends[e["waiter"]] = ("ownerless", ce["object"], path)
                break
            own = ce["owners"][0]
            if own not in by_tid:
                ends[e["waiter"]] = ("abandoned", (ce["object"], own), path)
                break
            cur = own
    roots = {}
    for w, (kind, key, path) in ends.items():
        if kind == "cycle":
            key = tuple(sorted(key))
        r = roots.setdefault((kind, key), {"kind": kind, "blocked": set(), "chains": []})
        r["blocked"].add(w)
        r["chains"].append(path)
    root_list = []
    for (kind, key), r in roots.items():
        rec = {"kind": kind, "blocked_threads": sorted(r["blocked"]),
               "longest_chain": max(r["chains"], key=len)}
        if kind == "cycle":
            rec["threads"] = list(key)
        elif kind == "holder":
            rec["thread"] = key
            rec["holds"] = sorted({e["object"] for e in edges if key in e["owners"]
                                   and e["object_kind"] != "join"})
            th = by_tid[key]
            rec["doing"] = describe_activity(th, pid, live)
            rec["frame"] = _frame_json(report.app_frame(th["frames"]))
        elif kind == "ownerless":
            rec["object"] = key
            anye = [e for e in edges if e["object"] == key][0]
            rec["object_kind"] = anye["object_kind"]
            rec["symbol"] = anye["symbol"]
        else:
            rec["object"], rec["owner"] = key
            other = _pid_of_tid(key[1]) if live else None
            rec["owner_process"] = other if other and other != pid else None
            anye = [e for e in edges if e["object"] == key[0]][0]
            rec["object_kind"] = anye["object_kind"]
            rec["symbol"] = anye["symbol"]
        root_list.append(rec)
    # Rank: cycles first, then by how many threads a root blocks.
    order = {"cycle": 0, "holder": 1, "abandoned": 1, "ownerless": 2}
    root_list.sort(key=lambda r: (order[r["kind"]], -len(r["blocked_threads"]),
                                  r["blocked_threads"][0]))
    cycles = [r for r in root_list if r["kind"] == "cycle"]
    owned = [r for r in root_list if r["kind"] in ("holder", "abandoned")]
    readers = [e for e in edges if e["object_kind"] == "rwlock" and not e["owners"]
               and e["readers"]]
    if cycles:
        verdict = "deadlock"
    elif owned or readers:
        verdict = "hang"
    else:
        verdict = "none"
    return {
        "schema": SCHEMA,
        "verdict": verdict,
        "root_blockers": root_list,
        "edges": edges,
        "unstable_edges": unstable,
        "threads": [_thread_json(t) for t in threads],
    }


def _frame_json(f):
    if f is None:
        return None
    return {"function": report.frame_label(f), "file": f["file"] or None,
            "line": f["line"] or None}


def _thread_json(t):
    sc = t.get("syscall")
    return {"tid": t["tid"], "name": t["name"], "state": t["state"],
            "syscall": None if sc is None else {"nr": sc["nr"], "name": sc["name"],
                                                "args": ["0x%x" % a for a in sc["args"][:3]]},
            "waits": t["wait"]["kind"] if t["wait"] else None,
            "frame": _frame_json(report.app_frame(t["frames"]))}


# ---- text --------------------------------------------------------------------


def _where(fj):
    if not fj:
        return "?"
    s = fj["function"]
    if fj["file"]:
        s += " (%s:%d)" % (os.path.basename(fj["file"]), fj["line"] or 0)
    return s


def object_label(e):
    kind = KIND_NAMES.get(e["object_kind"], e["object_kind"])
    if e["object_kind"] == "join":
        return "pthread_join"
    name = " " + e["symbol"] if e["symbol"] else ""
    return "%s%s %s" % (kind, name, e["object"])


def _tids_text(tids, by_tid, limit=6):
    names = [thread_label(by_tid[t]) if t in by_tid else "[%d]" % t for t in tids]
    if len(names) > limit:
        names = names[:limit] + ["... %d more" % (len(names) - limit)]
    return ", ".join(names)


def fmt_duration(ns):
    s = int(ns // 1e9)
    if s < 60:
        return "%.1fs" % (ns / 1e9)
    if s < 3600:
        return "%dm%02ds" % (s // 60, s % 60)
    return "%dh%02dm" % (s // 3600, (s % 3600) // 60)


def _edge_evidence(e):
    bits = []
    if e.get("blocked_ns"):
        bits.append("blocked >= %s" % fmt_duration(e["blocked_ns"]))
    if e["owners"]:
        bits.append("owner: %s" % e["owner_source"])
    if e["stack_agrees"] is True:
        bits.append("stack agrees")
    elif e["stack_agrees"] is False:
        bits.append("stack does not show the call")
    return "(%s)" % ", ".join(bits) if bits else ""


def _wait_phrase(e, by_tid):
    """'waits for mutex B 0x.. held by t2 [18944]'."""
    if e["object_kind"] == "join":
        o = e["owners"][0]
        return "pthread_join(%s)" % (thread_label(by_tid[o]) if o in by_tid else "[%d]" % o)
    s = "waits for %s" % object_label(e)
    if e["object_kind"] == "futex":
        s += " (value %d, expected %d)" % (e.get("futex_word", 0), e["futex_val"])
        if e.get("memory_kind"):
            s += " - memory looks like a %s, but the stack is in %s: kind unknown" % (
                KIND_NAMES.get(e["memory_kind"], e["memory_kind"]), e["stack_call"])
    if e["subkind"] and e["object_kind"] == "rwlock":
        s += " (%s)" % e["subkind"]
    if e["owners"]:
        o = e["owners"][0]
        s += " held by %s" % (thread_label(by_tid[o]) if o in by_tid else "TID %d" % o)
    elif e["object_kind"] == "rwlock" and e["readers"]:
        s += " held for reading by %d thread%s (glibc does not record which)" % (
            e["readers"], "" if e["readers"] == 1 else "s")
    return s


def group_waiters(edges, tids):
    """Waiters of the same object at the same application frame, with the
    same wait (an rwlock's readers and writers apart: without libc's
    symbols they all sit at one libc address) and the same evidence: one
    line, printed from the group's first waiter."""
    groups = {}
    for e in edges:
        if e["waiter"] not in tids:
            continue
        key = (e["object"], e["object_kind"], e["subkind"], e.get("stack_call"),
               tuple(e["owners"]), e["readers"], e["owner_source"], e["stack_agrees"],
               _where(e["frame"]))
        groups.setdefault(key, []).append(e)
    out = sorted(groups.values(), key=lambda g: (-len(g), g[0]["waiter"]))
    return out


def render_text(doc, desc, show_all=False, live=True):
    by_tid = {t["tid"]: t for t in doc["threads"]}
    edges = doc["edges"]
    edge_of = {e["waiter"]: e for e in edges}
    nblocked = len(edges)
    verdict = doc["verdict"]
    head = {"deadlock": "DEADLOCK", "hang": "HANG", "none": "no lock waits"}[verdict]
    if verdict == "none" and edges:
        head = "no lock waits with an owner (%d thread%s wait%s on objects without owner)" % (
            nblocked, "" if nblocked == 1 else "s", "s" if nblocked == 1 else "")
    ncyc = len([r for r in doc["root_blockers"] if r["kind"] == "cycle"])
    extra = " (%d cycle%s)" % (ncyc, "" if ncyc == 1 else "s") if ncyc else ""
    out = ["%s: %s - %d threads, %d waiting on locks%s" % (
        head, desc, len(doc["threads"]), nblocked, extra)]
    if not live:
        out.append("(core file: no durations; names as recorded)")
    # One screen: every cycle, then the 3 biggest other root blockers in
    # full; the rest one line each (at most 10), --all shows everything.
    shown, brief = [], []
    for r in doc["root_blockers"]:
        if show_all or r["kind"] == "cycle" or \
                len([x for x in shown if x["kind"] != "cycle"]) < 3:
            shown.append(r)
        else:
            brief.append(r)
    for r in shown:
        out.append("")
        blocked = r["blocked_threads"]
        if r["kind"] == "cycle":
            out.append("DEADLOCK: %d threads wait for each other" % len(r["threads"]))
            for t in r["threads"]:
                e = edge_of[t]
                out.append("  %-20s %s  %s" % (thread_label(by_tid[t]), _wait_phrase(e, by_tid),
                                               _edge_evidence(e)))
                out.append("  %-20s at %s" % ("", _where(e["frame"])))
            rest = [t for t in blocked if t not in r["threads"]]
            if rest:
                out.append("  blocked behind the cycle (%d):" % len(rest))
                out.extend(_group_lines(edges, set(rest), by_tid, show_all))
        elif r["kind"] == "holder":
            th = by_tid[r["thread"]]
            out.append("ROOT BLOCKER: %s is not waiting for a lock - %s" % (
                thread_label(th), r["doing"]))
            out.append("              at %s" % _where(r["frame"]))
            for o in r["holds"]:
                ws = [e for e in edges if e["object"] == o and r["thread"] in e["owners"]]
                out.append("              holds %s (%d waiter%s)" % (
                    object_label(ws[0]), len(ws), "" if len(ws) == 1 else "s"))
            out.append("  blocks %d of %d threads:" % (len(blocked), len(doc["threads"])))
            out.extend(_group_lines(edges, set(blocked), by_tid, show_all))
            chain = r["longest_chain"]
            if len(chain) > 2:
                out.append("  longest chain: " + _chain_text(chain, edge_of, by_tid))
        elif r["kind"] == "abandoned":
            out.append("ABANDONED: %s is held by TID %d, which is not a thread of this "
                       "process%s" % (_obj_of(r), r["owner"],
                                      " (it is in process %d)" % r["owner_process"]
                                      if r.get("owner_process") else
                                      " - it exited while holding the lock"))
            out.append("  blocks %d thread%s:" % (len(blocked), "" if len(blocked) == 1 else "s"))
            out.extend(_group_lines(edges, set(blocked), by_tid, show_all))
        else:
            kind = r["object_kind"]
            why = {
                "cond": "condition variables have no owner; nothing in memory says who "
                        "should signal it",
                "sem": "semaphores have no owner",
                "rwlock": "no owner recorded",
                "waitv": "futex_waitv words have no owner",
                "futex": "a futex word pmprof cannot name; no owner recorded",
            }.get(kind, "no owner recorded")
            out.append("WAIT WITHOUT OWNER: %s - %s" % (_obj_of(r), why))
            out.extend(_group_lines(edges, set(blocked), by_tid, show_all))
    if brief:
        out.append("")
        out.append("%d more root blocker%s (--all shows them in full):" % (
            len(brief), "" if len(brief) == 1 else "s"))
        for r in brief[:10]:
            out.append("  " + _root_line(r, by_tid))
        if len(brief) > 10:
            out.append("  ... %d more" % (len(brief) - 10))
    if doc["unstable_edges"]:
        out.append("")
        out.append("(%d wait%s changed between two reads and %s left out)" % (
            len(doc["unstable_edges"]), "" if len(doc["unstable_edges"]) == 1 else "s",
            "was" if len(doc["unstable_edges"]) == 1 else "were"))
    if doc.get("go"):
        out.append("")
        out.extend(render_go(doc["go"]))
    return "\n".join(out) + "\n"


def render_go(go):
    """The Go section: goroutines by what they wait for."""
    if go.get("error"):
        return ["GO: %s" % go["error"]]
    c = go["counts"]
    out = ["GO (%s): %d goroutines (%d system not counted)" % (
        go["version"], c["user"], c["system"])]
    if go["all_asleep"]:
        out.append("  all goroutines are asleep - deadlock! (every goroutine waits "
                   "for another one: channels, sync locks)")
    for h, n in sorted(go["headers"].items(), key=lambda kv: (-kv[1], kv[0])):
        out.append("  %5d  %s" % (n, h))
    for o in go["blocked_on"][:10]:
        out.append("  %d goroutines wait on %s %s (%s): %s%s" % (
            o["count"], "channel" if o["kind"] == "chan" else "semaphore",
            o.get("symbol") or "0x%x" % o["address"],
            ", ".join(o["reasons"]), " ".join(map(str, o["goroutines"][:12])),
            " ..." if o["count"] > 12 else ""))
    return out


def _root_line(r, by_tid):
    n = len(r["blocked_threads"])
    if r["kind"] == "holder":
        what = "%s, %s" % (thread_label(by_tid[r["thread"]]), r["doing"])
    elif r["kind"] == "abandoned":
        what = "%s held by exited TID %d" % (_obj_of(r), r["owner"])
    else:
        what = "%s (no owner)" % _obj_of(r)
    return "%s - blocks %d thread%s" % (what, n, "" if n == 1 else "s")


def _obj_of(r):
    kind = KIND_NAMES.get(r["object_kind"], r["object_kind"])
    return "%s%s %s" % (kind, " " + r["symbol"] if r.get("symbol") else "", r["object"])


def _chain_text(chain, edge_of, by_tid):
    parts = [thread_label(by_tid[chain[0]])]
    for a in chain[:-1]:
        e = edge_of[a]
        nm = e["symbol"] or e["object"]
        parts.append("-%s-> %s" % (nm if e["object_kind"] != "join" else "join",
                                   thread_label(by_tid[e["owners"][0]])))
    return " ".join(parts)


def _group_lines(edges, tids, by_tid, show_all):
    out = []
    if show_all:
        for e in sorted((e for e in edges if e["waiter"] in tids), key=lambda e: e["waiter"]):
            out.append("    %-20s %s  %s" % (thread_label(by_tid[e["waiter"]]),
                                             _wait_phrase(e, by_tid), _edge_evidence(e)))
            out.append("    %-20s at %s" % ("", _where(e["frame"])))
        return out
    for g in group_waiters(edges, tids):
        e = g[0]
        who = _tids_text([x["waiter"] for x in g], by_tid)
        out.append("    %3d  %s  %s" % (len(g), _wait_phrase(e, by_tid), _edge_evidence(e)))
        out.append("         %s at %s" % (who, _where(e["frame"])))
    return out


# ---- DOT ----------------------------------------------------------------------


def _q(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def render_dot(doc):
    by_tid = {t["tid"]: t for t in doc["threads"]}
    cyc = set()
    roots = set()
    for r in doc["root_blockers"]:
        if r["kind"] == "cycle":
            cyc.update(r["threads"])
        elif r["kind"] == "holder":
            roots.add(r["thread"])
    out = ["digraph pmprof_locks {", "  rankdir=LR;", "  node [fontname=monospace];"]
    # collapse large waiter groups (> 5 waiters of one object at one place)
    groups = group_waiters(doc["edges"], {e["waiter"] for e in doc["edges"]})
    collapsed = {}
    for i, g in enumerate(groups):
        if len(g) > 5 and not any(e["waiter"] in cyc or e["waiter"] in roots for e in g):
            for e in g:
                collapsed[e["waiter"]] = "g%d" % i
            out.append("  g%d [shape=ellipse, label=%s];" % (i, _q("%d threads\n%s" % (
                len(g), _tids_text([e["waiter"] for e in g], by_tid, 3)))))
    involved = set()
    for e in doc["edges"]:
        involved.add(e["waiter"])
        involved.update(o for o in e["owners"] if o in by_tid)
    for t in sorted(involved):
        if t in collapsed:
            continue
        attrs = []
        if t in cyc:
            attrs.append("color=red")
        if t in roots:
            attrs.append("style=bold, color=orange")
        th = by_tid[t]
        out.append("  t%d [label=%s%s];" % (t, _q("%s\n%s" % (thread_label(th), _where(
            _frame_json(report.app_frame(th.get("frames", []))) if "frames" in th else th["frame"]))),
            ", " + ", ".join(attrs) if attrs else ""))
    seen_obj = set()
    done_edges = set()
    for e in doc["edges"]:
        o = "o" + e["object"]
        if o not in seen_obj:
            seen_obj.add(o)
            style = "" if e["owners"] else ", style=dashed"
            out.append("  %s [shape=box, label=%s%s];" % (o, _q(object_label(e).replace(
                " 0x", "\n0x")), style))
        src = collapsed.get(e["waiter"], "t%d" % e["waiter"])
        if (src, o) not in done_edges:
            done_edges.add((src, o))
            out.append("  %s -> %s%s;" % (src, o, " [color=red]" if e["waiter"] in cyc else ""))
        for own in e["owners"]:
            if own not in by_tid:
                dead = "dead%d" % own
                if (o, dead) not in done_edges:
                    done_edges.add((o, dead))
                    out.append("  %s [label=%s, style=dashed];" % (dead, _q("TID %d (gone)" % own)))
                    out.append("  %s -> %s [label=\"held by\"];" % (o, dead))
                continue
            if (o, own) in done_edges:
                continue
            done_edges.add((o, own))
            red = e["waiter"] in cyc and own in cyc
            lab = "held by" if e["owner_source"] == "mutex.__owner" else e["owner_source"]
            out.append("  %s -> t%d [label=%s%s];" % (o, own, _q(lab),
                                                      ", color=red" if red else ""))
    out.append("}")
    return "\n".join(out) + "\n"
