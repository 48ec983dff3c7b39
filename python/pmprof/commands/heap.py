"""pmprof heap: glibc malloc's arenas and free lists, read from outside.

The C core (ext/inspect/heap.c) finds main_arena and mp_ (with or without libc's
debug info) and walks the arena ring, heaps, fastbins and bins; this
module turns that into glibc's own figures (mallinfo2, malloc_stats) and
prints them.
"""

import json

from pmprof import PmprofError
from pmprof.commands import (EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, UsageError, command,
                              new_parser)

SCHEMA = "pmprof.heap/1"

parser = new_parser(
    "heap",
    "glibc malloc seen from outside (glibc 2.31, 2.36, 2.41, 2.43; x86_64),\n"
    "live or from a core, with or without libc's debug info (another glibc\n"
    "version is refused, named): one row per arena (main and every\n"
    "thread arena) with its system bytes, bytes in use, free bytes in\n"
    "fastbins and bins, top, and fragmentation; the mmapped chunks; and the\n"
    "figures the process's own mallinfo2() and malloc_stats() would print,\n"
    "under glibc's field names, so they can be compared.\n"
    "\n"
    "  summary   (default) the table above; every chunk is walked, so each\n"
    "            arena's bytes split exactly into: in use by the program,\n"
    "            cached in tcaches, fastbins, bins, top, allocator overhead\n"
    "  arenas    each arena's address, flags, threads, heaps\n"
    "  bins      each arena's non-empty fastbins and bins (count, bytes,\n"
    "            smallest and largest chunk), like malloc_info()\n"
    "  tcache    every thread's tcache: chunks per size (TID: one thread)\n"
    "  sizes     histogram of chunk sizes: in use, cached, free\n"
    "  chunk     the chunk holding ADDR: arena, size, state\n"
    "  check     walk everything and list every inconsistency\n"
    "  malloc-info  the XML the process's own malloc_info(0, fp) would write\n"
    "\n"
    "'in use' is glibc's own notion (system - top - free in fastbins and\n"
    "bins): it includes chunks cached in the threads' tcaches and the\n"
    "allocator's headers.  Problems found on the way (loops, bad sizes,\n"
    "unreadable pointers) are listed with their addresses; the walk goes on.\n"
    "\n"
    "bin/pmprof exit status: 0, 1 partial (problems listed), 2 refused: no\n"
    "glibc in the process, a glibc version pmprof has no layouts for\n"
    "(named in a one-line message, even when its debug info is there), or\n"
    "a process that allocates with jemalloc, tcmalloc or mimalloc (named in\n"
    "one line; with --format json, a document whose 'allocator' names it).",
)
parser.add_argument("view", nargs="?",
                    choices=("summary", "arenas", "bins", "tcache", "sizes", "chunk", "check",
                             "malloc-info"),
                    default="summary", help="what to show (default: summary)")
parser.add_argument("arg", nargs="?", metavar="TID|ADDR",
                    help="tcache: a thread id; chunk: an address (0x...)")
parser.add_argument("--top", type=int, metavar="N", default=0,
                    help="sizes: only the N sizes with the most bytes")
parser.add_argument("--format", choices=("text", "json"), default="text",
                    help="output format (default: text)")

# ext/base/pmprof.h's PMP_HEAP_OTHER_ALLOCATOR_FMT: the same line from C and here
OTHER_ALLOCATOR = ("the process allocates with %s, not glibc's malloc (%s): pmprof heap "
                   "reads glibc's malloc only")

BIN_KIND = lambda i: "unsorted" if i == 1 else ("small" if i < 64 else "large")  # noqa: E731


def human(n):
    for unit, f in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= f:
            return "%.1f%s" % (n / f, unit)
    return "%dB" % n


def arena_figures(a):
    free = a["fast_bytes"] + a["bin_bytes"] + a["top_size"]
    in_use = a["system_mem"] - free
    frag = 1.0 - a["largest_free"] / free if free else 0.0
    return in_use, free, frag


def mallinfo2(h):
    """What the process's own mallinfo2() returns (glibc's int_mallinfo)."""
    m = dict(arena=0, ordblks=0, smblks=0, hblks=h["n_mmaps"], hblkhd=h["mmapped_mem"],
             usmblks=0, fsmblks=0, uordblks=0, fordblks=0, keepcost=0)
    for a in h["arenas"]:
        avail = a["top_size"] + a["fast_bytes"] + a["bin_bytes"]
        m["arena"] += a["system_mem"]
        m["ordblks"] += a["bin_count"] + 1          # + top
        m["smblks"] += a["fast_count"]
        m["fsmblks"] += a["fast_bytes"]
        m["fordblks"] += avail
        m["uordblks"] += a["system_mem"] - avail
        if a["main"]:
            m["keepcost"] = a["top_size"]
    return m


def malloc_stats(h):
    """What the process's own malloc_stats() prints (as numbers)."""
    ar = []
    for a in h["arenas"]:
        in_use, _, _ = arena_figures(a)
        ar.append({"system_bytes": a["system_mem"], "in_use_bytes": in_use})
    sysb = sum(x["system_bytes"] for x in ar) + h["mmapped_mem"]
    used = sum(x["in_use_bytes"] for x in ar) + h["mmapped_mem"]
    return {"arenas": ar, "total_system_bytes": sysb, "total_in_use_bytes": used,
            "max_mmap_regions": h["max_n_mmaps"], "max_mmap_bytes": h["max_mmapped_mem"]}


def malloc_info_xml(h):
    """The target glibc's malloc_info(0, fp), from outside: the same lines.
    Bin sizes are the size words as stored (flag bits included), like
    glibc's chunksize_nomask; 'rest' counts top; <unsorted> comes last.
    From 2.43 (no fastbins) there are no fastbin lines nor 'fast' totals."""
    fastbins = h["nfastbins"] > 0
    out = ['<malloc version="1">']
    t = dict(nfast=0, fast=0, nrest=0, rest=0, system=0, max_system=0, aspace=0, mprotect=0)
    for n, a in enumerate(h["arenas"]):
        out += ['<heap nr="%d">' % n, "<sizes>"]
        nfast = fast = 0
        for i, c in enumerate(a["fast_by_bin"]):
            if c:
                sz = 32 + 16 * i
                out.append('  <size from="%d" to="%d" total="%d" count="%d"/>' % (
                    sz - 15, sz, c * sz, c))
                nfast += c
                fast += c * sz
        nrest, rest, unsorted = 1, a["top_size"], None
        for b in sorted(a["bins"], key=lambda b: b["index"]):
            nrest += b["count"]
            rest += b["raw_bytes"]
            if b["index"] == 1:
                unsorted = b
                continue
            out.append('  <size from="%d" to="%d" total="%d" count="%d"/>' % (
                b["raw_min"], b["raw_max"], b["raw_bytes"], b["count"]))
        if unsorted:
            out.append('  <unsorted from="%d" to="%d" total="%d" count="%d"/>' % (
                unsorted["raw_min"], unsorted["raw_max"], unsorted["raw_bytes"],
                unsorted["count"]))
        out.append("</sizes>")
        if fastbins:
            out.append('<total type="fast" count="%d" size="%d"/>' % (nfast, fast))
        out += ['<total type="rest" count="%d" size="%d"/>' % (nrest, rest),
                '<system type="current" size="%d"/>' % a["system_mem"],
                '<system type="max" size="%d"/>' % a["max_system_mem"]]
        if a["main"]:
            aspace = mprot = a["system_mem"]
            out += ['<aspace type="total" size="%d"/>' % aspace,
                    '<aspace type="mprotect" size="%d"/>' % mprot]
        else:
            aspace = sum(x["size"] for x in a["heaps"])
            mprot = sum(x["mprotect_size"] for x in a["heaps"])
            out += ['<aspace type="total" size="%d"/>' % aspace,
                    '<aspace type="mprotect" size="%d"/>' % mprot,
                    '<aspace type="subheaps" size="%d"/>' % a["nheaps"]]
        out.append("</heap>")
        for k, v in (("nfast", nfast), ("fast", fast), ("nrest", nrest), ("rest", rest),
                     ("system", a["system_mem"]), ("max_system", a["max_system_mem"]),
                     ("aspace", aspace), ("mprotect", mprot)):
            t[k] += v
    if fastbins:
        out.append('<total type="fast" count="%d" size="%d"/>' % (t["nfast"], t["fast"]))
    out += ['<total type="rest" count="%d" size="%d"/>' % (t["nrest"], t["rest"]),
            '<total type="mmap" count="%d" size="%d"/>' % (h["n_mmaps"], h["mmapped_mem"]),
            '<system type="current" size="%d"/>' % t["system"],
            '<system type="max" size="%d"/>' % t["max_system"],
            '<aspace type="total" size="%d"/>' % t["aspace"],
            '<aspace type="mprotect" size="%d"/>' % t["mprotect"],
            "</malloc>"]
    return out


def to_json(h, desc):
    base = h["libc_base"]
    arenas = []
    walk = h["walk"]
    for i, a in enumerate(h["arenas"]):
        in_use, free, frag = arena_figures(a)
        wa = walk["arenas"][i] if walk else None
        arenas.append({
            "walked": None if wa is None else {
                "complete": wa["complete"], "chunks": wa["walked_chunks"],
                "app": {"chunks": wa["app_chunks"], "bytes": wa["app_bytes"]},
                "tcache": {"chunks": wa["tcache_chunks"], "bytes": wa["tcache_bytes"]},
                "overhead_bytes": wa["overhead_bytes"],
                "threads": [t["tid"] for t in walk["tcaches"] if t["arena"] == i]},
            "index": i, "addr": "0x%x" % a["addr"], "main": a["main"],
            "attached_threads": a["attached_threads"], "flags": a["flags"],
            "system_mem": a["system_mem"], "max_system_mem": a["max_system_mem"],
            "in_use_bytes": in_use, "free_bytes": free, "top": "0x%x" % a["top"],
            "top_bytes": a["top_size"],
            "fast": {"chunks": a["fast_count"], "bytes": a["fast_bytes"],
                     "by_size": [{"chunk_size": 32 + 16 * k, "count": c}
                                 for k, c in enumerate(a["fast_by_bin"]) if c]},
            "bins": [dict(b, kind=BIN_KIND(b["index"])) for b in a["bins"]],
            "binned": {"chunks": a["bin_count"], "bytes": a["bin_bytes"]},
            "largest_free": a["largest_free"], "frag": round(frag, 4),
            "nheaps": a["nheaps"],
            "heaps": [{"addr": "0x%x" % x["addr"], "size": x["size"],
                       "mprotect_size": x["mprotect_size"]} for x in a["heaps"]],
        })
    return {
        "schema": SCHEMA,
        "target": desc,
        "allocator": "glibc-ptmalloc2",
        "glibc": {"version": h["version"], "build_id": h["build_id"], "libc": h["libc_path"],
                  "layout": h["layout"], "fastbins": h["nfastbins"] > 0,
                  "tcache_bins": h["tcache_bins"], "safe_linking": h["safe_linking"]},
        "resolution": {
            "main_arena": {"addr": "0x%x" % h["main_arena"],
                           "offset": "0x%x" % (h["main_arena"] - base),
                           "method": h["main_arena_method"]},
            "mp_": {"addr": "0x%x" % h["mp"], "offset": "0x%x" % (h["mp"] - base),
                    "method": h["mp_method"]},
        },
        "mp_": {k: h[k] for k in ("trim_threshold", "mmap_threshold", "tcache_count",
                                  "n_mmaps", "max_n_mmaps", "mmapped_mem", "max_mmapped_mem")},
        "arenas": arenas,
        "mmapped": {"chunks": h["n_mmaps"], "bytes": h["mmapped_mem"],
                    "found": None if not walk else {
                        "chunks": walk["mmapped"]["found"], "bytes": walk["mmapped"]["bytes"],
                        "list": [{"addr": "0x%x" % a, "size": z}
                                 for a, z in walk["mmapped"]["chunks"]]}},
        "mallinfo2": mallinfo2(h),
        "malloc_stats": malloc_stats(h),
        "tcaches": None if not walk else [
            {"tid": t["tid"], "addr": "0x%x" % t["addr"] if t["addr"] else None,
             "unknown": t["unknown"],
             "arena": t["arena"] if t["arena"] >= 0 else None, "chunks": t["chunks"],
             "bytes": t["bytes"],
             "bins": [dict({"chunk_size": lo, "count": c, "bytes": by},
                           **({"large": True} if b >= 64 else {}))
                      for b, lo, c, by in t["counts"]]}
            for t in walk["tcaches"]],
        "sizes": None if not walk else [
            {"chunk_size": z[0], "used": z[1], "used_bytes": z[2], "free": z[3],
             "free_bytes": z[4], "cached": z[5], "cached_bytes": z[6]} for z in walk["sizes"]],
        "chunk": None if not walk or not walk["find_addr"] else {
            "addr": "0x%x" % walk["find_addr"],
            "chunk": "0x%x" % walk["found_chunk"] if walk["found_chunk"] else None,
            "size": walk["found_size"] or None,
            "arena": walk["found_arena"] if walk["found_chunk"] else None,
            "state": walk["found_state"] or None},
        "errors": [{"addr": "0x%x" % a, "msg": m} for a, m in h["errors"]],
        "errors_dropped": h["errors_dropped"],
        "elapsed_ms": round(h["elapsed_ns"] / 1e6, 3),
    }


def text_summary(doc):
    g, r = doc["glibc"], doc["resolution"]
    out = ["glibc %s malloc - %s (build-id %s) - layout: %s" % (
               g["version"], g["libc"], g["build_id"][:12], g["layout"]),
           "main_arena libc+%s (%s) - mp_ libc+%s (%s)" % (
               r["main_arena"]["offset"], r["main_arena"]["method"],
               r["mp_"]["offset"], r["mp_"]["method"]),
           "%d arenas - %d mmapped chunks (%s)%s - %s" % (
               len(doc["arenas"]), doc["mmapped"]["chunks"], human(doc["mmapped"]["bytes"]),
               "" if not doc["mmapped"]["found"] else
               (", all found" if (doc["mmapped"]["found"]["chunks"], doc["mmapped"]["found"]["bytes"])
                == (doc["mmapped"]["chunks"], doc["mmapped"]["bytes"]) else
                ", %d found (%s) by scanning" % (doc["mmapped"]["found"]["chunks"],
                                                 human(doc["mmapped"]["found"]["bytes"]))),
               "integrity: OK" if not doc["errors"] else
               "%d problem(s) found, listed below" % len(doc["errors"])),
           ""]
    hdr = "%-20s %3s %5s %8s %15s %14s %13s %14s %8s %7s %5s" % (
        "arena", "thr", "heaps", "system", "app in use", "tcache", "fastbins", "bins free",
        "top", "ovh", "frag")
    out.append(hdr)
    tot = dict(sys=0, ac=0, ab=0, tc=0, tb=0, fc=0, fb=0, bc=0, bb=0, top=0, ovh=0)
    for a in doc["arenas"]:
        name = "#%d %s" % (a["index"], "main" if a["main"] else a["addr"])
        wk = a["walked"] or {"app": {"chunks": 0, "bytes": a["in_use_bytes"]},
                             "tcache": {"chunks": 0, "bytes": 0}, "overhead_bytes": 0}
        out.append("%-20s %3d %5d %8s %6d %8s %5d %8s %5d %7s %5d %8s %8s %7s %4.0f%%" % (
            name, a["attached_threads"], a["nheaps"], human(a["system_mem"]),
            wk["app"]["chunks"], human(wk["app"]["bytes"]), wk["tcache"]["chunks"],
            human(wk["tcache"]["bytes"]), a["fast"]["chunks"], human(a["fast"]["bytes"]),
            a["binned"]["chunks"], human(a["binned"]["bytes"]), human(a["top_bytes"]),
            human(wk["overhead_bytes"]), 100 * a["frag"]))
        for k, v in (("sys", a["system_mem"]), ("ac", wk["app"]["chunks"]),
                     ("ab", wk["app"]["bytes"]), ("tc", wk["tcache"]["chunks"]),
                     ("tb", wk["tcache"]["bytes"]), ("fc", a["fast"]["chunks"]),
                     ("fb", a["fast"]["bytes"]), ("bc", a["binned"]["chunks"]),
                     ("bb", a["binned"]["bytes"]), ("top", a["top_bytes"]),
                     ("ovh", wk["overhead_bytes"])):
            tot[k] += v
    out.append("%-20s %3s %5s %8s %6d %8s %5d %8s %5d %7s %5d %8s %8s %7s" % (
        "total", "", "", human(tot["sys"]), tot["ac"], human(tot["ab"]), tot["tc"],
        human(tot["tb"]), tot["fc"], human(tot["fb"]), tot["bc"], human(tot["bb"]),
        human(tot["top"]), human(tot["ovh"])))
    out.append("")
    m = doc["mallinfo2"]
    out.append("mallinfo2   " + " ".join("%s=%d" % (k, m[k]) for k in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")))
    s = doc["malloc_stats"]
    out.append("malloc_stats total (incl. mmap): system bytes %d, in use bytes %d, "
               "max mmap regions %d, max mmap bytes %d" % (
                   s["total_system_bytes"], s["total_in_use_bytes"], s["max_mmap_regions"],
                   s["max_mmap_bytes"]))
    out.append("(each arena's row adds up to its system bytes; mallinfo2's uordblks = app in "
               "use + tcache + overhead)")
    return out


def text_arenas(doc):
    out = []
    for a in doc["arenas"]:
        out.append("#%d %s%s  flags 0x%x  attached threads %d  system %d (max %d)  top %s "
                   "(%d bytes)" % (a["index"], a["addr"], " (main_arena)" if a["main"] else "",
                                   a["flags"], a["attached_threads"], a["system_mem"],
                                   a["max_system_mem"], a["top"], a["top_bytes"]))
        for x in a["heaps"]:
            out.append("    heap %s  size %d  mprotect_size %d" % (
                x["addr"], x["size"], x["mprotect_size"]))
    return out


def text_bins(doc):
    out = []
    for a in doc["arenas"]:
        out.append("#%d %s%s" % (a["index"], a["addr"], " (main_arena)" if a["main"] else ""))
        out.append("    %-10s %6s %8s %12s %10s %10s" % ("bin", "index", "chunks", "bytes",
                                                          "min", "max"))
        for f in a["fast"]["by_size"]:
            out.append("    %-10s %6s %8d %12d %10d %10d" % (
                "fast", "-", f["count"], f["count"] * f["chunk_size"], f["chunk_size"],
                f["chunk_size"]))
        for b in a["bins"]:
            out.append("    %-10s %6d %8d %12d %10d %10d" % (
                b["kind"], b["index"], b["count"], b["bytes"], b["min"], b["max"]))
        out.append("    %-10s %6s %8d %12d" % ("top", "-", 1, a["top_bytes"]))
    return out


def text_tcache(doc, tid):
    out = []
    for t in doc["tcaches"]:
        if tid is not None and t["tid"] != tid:
            continue
        if t["unknown"]:
            out.append("thread %d: tcache unknown (its TLS could not be read)" % t["tid"])
            continue
        if not t["addr"]:
            out.append("thread %d: no tcache (it never called malloc)" % t["tid"])
            continue
        out.append("thread %d: tcache %s in arena #%s - %d chunks, %s" % (
            t["tid"], t["addr"], t["arena"], t["chunks"], human(t["bytes"])))
        for b in t["bins"]:
            if b.get("large"):   # 2.42+: a power-of-two range of sizes
                out.append("  >=%6d bytes x %d (%d bytes)" % (b["chunk_size"], b["count"],
                                                               b["bytes"]))
            else:
                out.append("    %6d bytes x %d" % (b["chunk_size"], b["count"]))
    if tid is not None and not out:
        raise PmprofError("no thread %d in the process" % tid)
    return out


def text_sizes(doc, top):
    rows = doc["sizes"]
    if top:
        rows = sorted(rows, key=lambda z: -(z["used_bytes"] + z["free_bytes"]
                                            + z["cached_bytes"]))[:top]
    out = ["%12s %10s %12s %10s %12s %10s %12s" % (
        "chunk size", "in use", "bytes", "cached", "bytes", "free", "bytes")]
    for z in rows:
        out.append("%12d %10d %12d %10d %12d %10d %12d" % (
            z["chunk_size"], z["used"], z["used_bytes"], z["cached"], z["cached_bytes"],
            z["free"], z["free_bytes"]))
    return out


def text_chunk(doc):
    c = doc["chunk"]
    if not c["chunk"]:
        return ["%s is not inside any arena's heap (mmapped chunk, stack, or not malloc'd)"
                % c["addr"]]
    a = doc["arenas"][c["arena"]]
    return ["%s is in chunk %s (size %d, user data %s..%s) of arena #%d%s: %s" % (
        c["addr"], c["chunk"], c["size"], "0x%x" % (int(c["chunk"], 16) + 16),
        "0x%x" % (int(c["chunk"], 16) + c["size"]), a["index"],
        " (main_arena)" if a["main"] else "", c["state"])]


def text_check(doc):
    bad = [a for a in doc["arenas"] if a["walked"] and not a["walked"]["complete"]]
    out = ["heap check: %d arenas, %d chunks walked - %s" % (
        len(doc["arenas"]), sum(a["walked"]["chunks"] for a in doc["arenas"] if a["walked"]),
        "OK: every list is consistent and every arena adds up" if not doc["errors"] and not bad
        else "%d problem(s)" % len(doc["errors"]))]
    for a in doc["arenas"]:
        w = a["walked"]
        if not w:
            continue
        total = (w["app"]["bytes"] + w["tcache"]["bytes"] + a["fast"]["bytes"]
                 + a["binned"]["bytes"] + a["top_bytes"] + w["overhead_bytes"])
        if w["complete"] and total != a["system_mem"]:
            out.append("  arena #%d: the parts add up to %d, system_mem is %d" % (
                a["index"], total, a["system_mem"]))
    return out


@command(parser, "the glibc malloc heap from outside: arenas, bins, tcaches, mallinfo2")
def heap(ctx, args):
    session = ctx.open_session()
    find = 0
    tid = None
    if args.view == "chunk":
        if not args.arg:
            raise UsageError("heap chunk needs an address")
        try:
            find = int(args.arg, 0)
        except ValueError:
            raise UsageError("not an address: '%s'" % args.arg)
        if find <= 0:
            raise UsageError("not an address: '%s'" % args.arg)
    elif args.view == "tcache" and args.arg:
        try:
            tid = int(args.arg)
        except ValueError:
            raise UsageError("not a thread id: '%s'" % args.arg)
    elif args.arg:
        raise UsageError("heap %s takes no argument" % args.view)
    other = session.heap_allocator()
    if other:
        # jemalloc, tcmalloc, mimalloc: glibc's arenas would read as an
        # empty heap; say which allocator it is instead, in every view
        msg = OTHER_ALLOCATOR % other
        if args.format == "json" and args.view != "malloc-info":
            ctx.write(json.dumps({"schema": SCHEMA, "target": ctx.target_description(),
                                  "allocator": other[0], "evidence": other[1],
                                  "refused": msg}, indent=1) + "\n")
            return EXIT_FAILED
        raise PmprofError(msg, EXIT_FAILED)
    walk = args.view not in ("arenas", "bins", "malloc-info")
    # check follows every list link; the others take bins from one pass
    h = session.heap(walk=walk, find=find, lists=args.view == "check")
    doc = to_json(h, ctx.target_description())
    for w in session.warnings():
        ctx.warn(w)
    if args.view == "malloc-info":
        ctx.write("\n".join(malloc_info_xml(h)) + "\n")
    elif args.format == "json":
        ctx.write(json.dumps(doc, indent=1) + "\n")
    else:
        lines = {"summary": text_summary, "arenas": text_arenas, "bins": text_bins,
                 "tcache": lambda d: text_tcache(d, tid),
                 "sizes": lambda d: text_sizes(d, args.top),
                 "chunk": text_chunk, "check": text_check}[args.view](doc)
        if doc["errors"]:
            lines.append("")
            lines.append("problems:")
            lines.extend("  0x%s %s" % (e["addr"][2:], e["msg"]) for e in doc["errors"])
            if doc["errors_dropped"]:
                lines.append("  ... %d more" % doc["errors_dropped"])
        ctx.write("\n".join(lines) + "\n")
    return EXIT_PARTIAL if doc["errors"] else EXIT_OK
