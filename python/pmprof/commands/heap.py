"""pmprof heap: glibc malloc's arenas and free lists, read from outside.

The C core (ext/heap.c) finds main_arena and mp_ (with or without libc's
debug info) and walks the arena ring, heaps, fastbins and bins; this
module turns that into glibc's own figures (mallinfo2, malloc_stats) and
prints them.
"""

import json

from pmprof.commands import EXIT_OK, EXIT_PARTIAL, command, new_parser

SCHEMA = "pmprof.heap/1"

parser = new_parser(
    "heap",
    "glibc malloc seen from outside (glibc 2.36, x86_64), live or from a core,\n"
    "with or without libc's debug info: one row per arena (main and every\n"
    "thread arena) with its system bytes, bytes in use, free bytes in\n"
    "fastbins and bins, top, and fragmentation; the mmapped chunks; and the\n"
    "figures the process's own mallinfo2() and malloc_stats() would print,\n"
    "under glibc's field names, so they can be compared.\n"
    "\n"
    "  summary   (default) the table above\n"
    "  arenas    each arena's address, flags, threads, heaps\n"
    "  bins      each arena's non-empty fastbins and bins (count, bytes,\n"
    "            smallest and largest chunk), like malloc_info()\n"
    "\n"
    "'in use' is glibc's own notion (system - top - free in fastbins and\n"
    "bins): it includes chunks cached in the threads' tcaches and the\n"
    "allocator's headers.  Problems found on the way (loops, bad sizes,\n"
    "unreadable pointers) are listed with their addresses; the walk goes on.",
)
parser.add_argument("view", nargs="?", choices=("summary", "arenas", "bins"),
                    default="summary", help="what to show (default: summary)")
parser.add_argument("--format", choices=("text", "json"), default="text",
                    help="output format (default: text)")

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


def to_json(h, desc):
    base = h["libc_base"]
    arenas = []
    for i, a in enumerate(h["arenas"]):
        in_use, free, frag = arena_figures(a)
        arenas.append({
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
                  "layout": "table:2.36-x86_64"},
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
        "mmapped": {"chunks": h["n_mmaps"], "bytes": h["mmapped_mem"]},
        "mallinfo2": mallinfo2(h),
        "malloc_stats": malloc_stats(h),
        "errors": [{"addr": "0x%x" % a, "msg": m} for a, m in h["errors"]],
        "errors_dropped": h["errors_dropped"],
        "elapsed_ms": round(h["elapsed_ns"] / 1e6, 3),
    }


def text_summary(doc):
    g, r = doc["glibc"], doc["resolution"]
    out = ["glibc %s malloc - %s (build-id %s)" % (g["version"], g["libc"], g["build_id"][:12]),
           "main_arena libc+%s (%s) - mp_ libc+%s (%s)" % (
               r["main_arena"]["offset"], r["main_arena"]["method"],
               r["mp_"]["offset"], r["mp_"]["method"]),
           "%d arenas - %d mmapped chunks (%s) - %s" % (
               len(doc["arenas"]), doc["mmapped"]["chunks"], human(doc["mmapped"]["bytes"]),
               "integrity: OK" if not doc["errors"] else
               "%d problem(s) found, listed below" % len(doc["errors"])),
           ""]
    hdr = "%-20s %4s %5s %9s %9s %13s %15s %9s %5s" % (
        "arena", "thr", "heaps", "system", "in use", "fastbins", "bins", "top", "frag")
    out.append(hdr)
    tot = dict(sys=0, use=0, fc=0, fb=0, bc=0, bb=0, top=0)
    for a in doc["arenas"]:
        name = "#%d %s" % (a["index"], "main" if a["main"] else a["addr"])
        out.append("%-20s %4d %5d %9s %9s %5d %7s %6d %8s %9s %4.0f%%" % (
            name, a["attached_threads"], a["nheaps"], human(a["system_mem"]),
            human(a["in_use_bytes"]), a["fast"]["chunks"], human(a["fast"]["bytes"]),
            a["binned"]["chunks"], human(a["binned"]["bytes"]), human(a["top_bytes"]),
            100 * a["frag"]))
        tot["sys"] += a["system_mem"]
        tot["use"] += a["in_use_bytes"]
        tot["fc"] += a["fast"]["chunks"]
        tot["fb"] += a["fast"]["bytes"]
        tot["bc"] += a["binned"]["chunks"]
        tot["bb"] += a["binned"]["bytes"]
        tot["top"] += a["top_bytes"]
    out.append("%-20s %4s %5s %9s %9s %5d %7s %6d %8s %9s" % (
        "total", "", "", human(tot["sys"]), human(tot["use"]), tot["fc"], human(tot["fb"]),
        tot["bc"], human(tot["bb"]), human(tot["top"])))
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
    out.append("('in use' is glibc's: it includes tcache-cached chunks and allocator headers)")
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


@command(parser, "glibc malloc arenas, bins, mallinfo2 - from outside")
def heap(ctx, args):
    session = ctx.open_session()
    h = session.heap()
    doc = to_json(h, ctx.target_description())
    for w in session.warnings():
        ctx.warn(w)
    if args.format == "json":
        ctx.write(json.dumps(doc, indent=1) + "\n")
    else:
        lines = {"summary": text_summary, "arenas": text_arenas, "bins": text_bins}[args.view](doc)
        if doc["errors"]:
            lines.append("")
            lines.append("problems:")
            lines.extend("  0x%s %s" % (e["addr"][2:], e["msg"]) for e in doc["errors"])
            if doc["errors_dropped"]:
                lines.append("  ... %d more" % doc["errors_dropped"])
        ctx.write("\n".join(lines) + "\n")
    return EXIT_PARTIAL if doc["errors"] else EXIT_OK
