"""Turn a core Snapshot into plain data: threads, frames, merged stacks.

Symbolization happens here (through the core, once per unique pc), after
the target was resumed by Session.snapshot().  Everything returned is
plain dicts/lists so that text and JSON renderers share one model.
"""

import os

SCHEMA_THREADS = "pmprof.threads/1"
SCHEMA_STACKS = "pmprof.stacks/1"

_SYSTEM_PREFIXES = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/usr/libexec/")


def is_system_module(path):
    return (not path) or path.startswith(_SYSTEM_PREFIXES) or path.startswith("[") \
        or os.path.basename(path).startswith("linux-vdso")


def _frame(t):
    pc, function, system_name, file, line, inlined, module, offset = t[:8]
    return {
        "pc": pc,
        "function": function,
        "system_name": system_name,
        "file": file,
        "line": line,
        "inlined": inlined,
        "tail_call": False,
        "module": module,
        "offset": offset,
    }


def frame_label(f):
    """function, or module+0xoffset when the function is unknown."""
    if f["function"]:
        return f["function"]
    if f["module"]:
        return "%s+0x%x" % (os.path.basename(f["module"]), f["offset"])
    return "0x%x" % f["pc"]


def symbolize_threads(snap, threads, depth=None):
    """Attach 'frames' (symbolized, inline-expanded) to each thread dict.

    Threads parked the same way have the same raw stack: each distinct one
    is symbolized and turned into frame dicts once, and those threads share
    the (read-only) list."""
    keys = []
    seen = set()
    by_stack = {}
    for th in threads:
        sk = tuple(th["pcs"])
        if sk in by_stack:
            continue
        by_stack[sk] = None
        for key in sk:
            if key not in seen:
                seen.add(key)
                keys.append(key)
    table = dict(zip(keys, snap.symbolize(keys))) if keys else {}
    for sk in by_stack:
        frames = []
        for key in sk:
            fs = [_frame(t) for t in table[key]]
            if key[2] and not fs[-1]["function"]:
                # A signal trampoline (glibc's __restore_rt has no symbol).
                fs[-1]["function"] = "<signal handler called>"
            if len(key) > 3 and key[3]:
                # A function that left by a tail call (rebuilt from DWARF
                # call sites): one frame, named as gdb names it, by the
                # innermost function at its call site.
                fs = [dict(fs[0], inlined=False, tail_call=True)]
            frames.extend(fs)
        by_stack[sk] = frames
    for th in threads:
        frames = by_stack[tuple(th["pcs"])]
        if depth is not None and depth > 0 and len(frames) > depth:
            frames = frames[:depth]
            th["depth_cut"] = True
        th["frames"] = frames
    return threads


def _go_runtime(name):
    # Go's runtime (and its internal packages) inside the executable.
    return name.startswith(("runtime.", "runtime/internal/", "internal/"))


def app_frame(frames):
    """The innermost frame in application code (not a system library, not
    Go's runtime)."""
    for f in frames:
        if f["function"].startswith("[") or _go_runtime(f["function"]):
            continue
        if not is_system_module(f["module"]):
            return f
    for f in frames:
        if not f["function"].startswith("["):
            return f
    return frames[0] if frames else None


def thread_record(th):
    """A thread as the JSON schema has it (no raw pcs)."""
    sc = th["syscall"]
    rec = {
        "tid": th["tid"],
        "name": th["name"],
        "state": th["state"],
        "cpu_user_ns": th["utime_ns"],
        "cpu_system_ns": th["stime_ns"],
        "syscall": None if sc is None else {
            "nr": sc["nr"],
            "name": sc["name"],
            "args": list(sc["args"]),
        },
        "flags": th["flags"],
        "error": th["error"] or None,
    }
    return rec


def group_stacks(threads):
    """Merge threads whose symbolized stacks are identical.

    Returns a list of {"count", "threads": [{tid,name}], "frames", "flags"}
    sorted by count (descending), then lowest tid.  Threads that share a
    frames list (same raw stack) share its key, computed once.
    """
    groups = {}
    keys = {}
    for th in threads:
        fid = (id(th["frames"]), tuple(sorted(th["flags"])))
        key = keys.get(fid)
        if key is None:
            key = keys[fid] = tuple(
                (f["function"], f["file"], f["line"], f["module"],
                 f["offset"] if not f["function"] else 0, f["inlined"],
                 f["tail_call"])
                for f in th["frames"]
            ) + (fid[1],)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {
                "count": 0,
                "threads": [],
                "frames": th["frames"],
                "flags": th["flags"],
            }
        g["count"] += 1
        g["threads"].append({"tid": th["tid"], "name": th["name"]})
    out = list(groups.values())
    for g in out:
        g["threads"].sort(key=lambda t: t["tid"])
    out.sort(key=lambda g: (-g["count"], g["threads"][0]["tid"]))
    return out


def fmt_syscall(sc, short=False):
    if sc is None:
        return "-"
    name = sc["name"] or "syscall_%d" % sc["nr"]
    args = sc["args"][:3]
    return "%s(%s)" % (name, ", ".join("0x%x" % a for a in args))


def fmt_cpu(ns):
    return "%.2f" % (ns / 1e9)


def fmt_where(f):
    if f is None:
        return "-"
    s = frame_label(f)
    if f["file"]:
        s += " at %s:%d" % (os.path.basename(f["file"]), f["line"])
    return s
