#!/usr/bin/env python3
"""tools/layers.py: ext/ and python/pmprof/ are layers; nothing uses one above.

    python3 tools/layers.py [--objs build/obj] [--list]

ext/ is one folder per stage of the data flow, lowest first (LAYERS below,
docs/design.md).  A file may use its own folder and any folder below it,
never one above, and the two front-ends (python/, cli/) not each other.
python/pmprof/ likewise (PY_LAYERS): the package, its plain-data helpers,
commands, front-ends; only the gdb and lldb front-ends import a debugger.

Checked, in this order:
  1. every .c/.h under ext/ is in a folder of LAYERS, and basenames are
     unique (the Makefile builds with one -I per folder and a flat
     build/obj/, so `#include "foo.h"` names exactly one file);
  2. includes: every `#include "x"` of a file under ext/ names a header of
     its own folder or of a lower one (or a generated one: GENERATED);
  3. with --objs: calls and data references, from the built objects
     (`nm`): every symbol an object uses is defined in its own folder
     or a lower one, and no two files of the core (below the front-ends)
     use each other through a chain (no cycle between files, even inside
     one folder; the front-ends' own files may: one Python type's method
     makes an object of another type).
  (3) is the one that sees calls: most declarations live in the shared
  base/pmprof-internal.h, so (2) alone cannot.
  3b. the generic unwinder (GENERIC below: ext/unwind/unwind.c) knows
     no language runtime: it includes no backend's header and uses no
     symbol of a backend's files nor one named after a runtime (Go); it
     reaches a backend only through pmp_unwind_backends[]
     (ext/unwind/unwind-backend.h).
  4. Python imports (every import statement, also inside functions):
     no module of python/pmprof/ imports one of a layer above its own,
     and `gdb` / `lldb` are imported only by frontends/gdb.py and
     frontends/lldb.py.

Exit status 0: clean; 1: a violation (each printed on one line); 2: usage.
--list prints the folder graph (who uses whom) instead.  Runs in well
under a second (make lint, make test).
"""

import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXT = os.path.join(ROOT, "ext")

# Lowest first.  Folders on one line share a rank and may not use each
# other (the two front-ends).
LAYERS = [
    ["base"],       # errors, small containers, public + internal headers
    ["layouts"],    # version tables (data only): glibc nptl/malloc, Go
    ["target"],     # reading a process or a core: memory, threads, regs
    ["unwind"],     # modules, symbols, unwinding (DWARF CFI, Go pclntab)
    ["inspect"],    # what a stopped target holds: threads, locks, heap, Go
    ["record"],     # sampling over time (ptrace, perf events)
    ["output"],     # pprof, folded, speedscope, trace, text rendering
    ["python", "cli"],  # the two front-ends
]
# Headers the build generates, and the folder that owns them.
GENERATED = {"profile.pb-c.h": "output", "syscalls.h": "base"}

# The generic unwinder, and the files and symbol names of its backends
# (unwind-backend.h) that it may not use but through the backend table.
GENERIC = {
    "unwind.c": {
        "files": {"unwind-go.c", "gopclntab.c", "gostack.c", "gopclntab.h"},
        "symbols": re.compile(r"(^|_)go(mod|func|lang)?(_|$)"),
    },
}

# python/pmprof/, lowest first: module (or package) -> layer.
PY_LAYERS = [
    ["_core"],             # the C core (ext/python/)
    ["pmprof"],            # the package: errors, loading the C core
    ["report"],            # text helpers
    ["locks"],             # the lock graph (plain data)
    ["commands"],          # one module per command
    ["frontends"],         # gdb, lldb, the CLI: a Context for the commands
]
# A debugger's module may be imported only by its front-end.
DEBUGGERS = {"gdb": "frontends/gdb.py", "lldb": "frontends/lldb.py"}
PKG = os.path.join(ROOT, "python", "pmprof")

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def rank_of():
    return {f: i for i, row in enumerate(LAYERS) for f in row}


def may_use(src, dst, rank):
    return src == dst or rank[dst] < rank[src]


def scan_sources(problems):
    """{basename: folder} of every .c/.h under ext/."""
    rank = rank_of()
    where = {}
    for dirpath, _dirs, files in os.walk(EXT):
        rel = os.path.relpath(dirpath, EXT)
        for name in files:
            if not name.endswith((".c", ".h")):
                continue
            folder = rel.split(os.sep)[0]
            path = os.path.join("ext", rel, name)
            if rel == "." or folder not in rank:
                problems.append("%s: not in a folder of tools/layers.py's "
                                "LAYERS" % path)
                continue
            if name in where:
                problems.append("%s: basename also in ext/%s/ (includes and "
                                "build/obj/ are by basename)" % (path, where[name]))
            where[name] = folder
    return where


def check_includes(where, problems, edges):
    rank = rank_of()
    for name, folder in sorted(where.items()):
        path = os.path.join(EXT, folder, name)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            base = os.path.basename(inc)
            if base in GENERIC.get(name, {}).get("files", ()):
                problems.append("ext/%s/%s: includes %s, a backend's header "
                                "(use unwind-backend.h's table)" % (folder, name, base))
            dst = where.get(base) or GENERATED.get(base)
            if dst is None:
                problems.append("ext/%s/%s: includes \"%s\", which is no header "
                                "of ext/" % (folder, name, inc))
                continue
            edges[(folder, dst)].add("%s includes %s" % (name, base))
            if not may_use(folder, dst, rank):
                problems.append("ext/%s/%s: includes %s of ext/%s/, a layer "
                                "above (or beside) ext/%s/" % (folder, name, base, dst, folder))


def nm(path):
    out = subprocess.run(["nm", "-g", path], capture_output=True, text=True,
                         check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] not in "Uw":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
    return defined, used


def check_symbols(where, objdir, problems, edges):
    rank = rank_of()
    owner, uses = {}, {}
    for obj in sorted(os.listdir(objdir)):
        if not obj.endswith(".o"):
            continue
        src = obj[:-2] + ".c"
        if src not in where:
            continue    # generated (profile.pb-c.o) or stale
        defined, used = nm(os.path.join(objdir, obj))
        for s in defined:
            owner[s] = src
        uses[src] = used
    if not uses:
        problems.append("%s: no objects of ext/ sources (build first)" % objdir)
        return
    graph = defaultdict(set)
    for src, used in sorted(uses.items()):
        for s in sorted(used):
            gen = GENERIC.get(src)
            if gen and (owner.get(s) in gen["files"] or gen["symbols"].search(s)):
                problems.append("ext/%s/%s: uses %s (%s), a backend's; only "
                                "through pmp_unwind_backends[]" % (
                                    where[src], src, s, owner.get(s, "?")))
            dst = owner.get(s)
            if dst is None or dst == src:
                continue
            graph[src].add(dst)
            a, b = where[src], where[dst]
            edges[(a, b)].add("%s calls %s (%s)" % (src, s, dst))
            if not may_use(a, b, rank):
                problems.append("ext/%s/%s: uses %s of ext/%s/%s, a layer above "
                                "(or beside) ext/%s/" % (a, src, s, b, dst, a))
    front = set(LAYERS[-1])
    for cycle in cycles(graph):
        if all(where[f] in front for f in cycle):
            continue
        problems.append("cycle between files: %s" % " -> ".join(cycle + cycle[:1]))


def cycles(graph):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def py_layer(rel):
    """The layer name of python/pmprof/<rel> (a path), or of a dotted
    module under pmprof (e.g. "commands.stacks")."""
    first = rel.replace(os.sep, ".").split(".")[0]
    if first in ("__init__", ""):
        return "pmprof"
    return first


def check_python(problems, edges):
    import ast
    rank = {name: i for i, row in enumerate(PY_LAYERS) for name in row}
    subs = set(rank) - {"pmprof"}
    nfiles = 0
    for dirpath, _dirs, files in os.walk(PKG):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, PKG)
            src = py_layer(rel)
            show = "python/pmprof/" + rel
            if src not in rank:
                problems.append("%s: not in a layer of tools/layers.py's PY_LAYERS" % show)
                continue
            nfiles += 1
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                mods = []
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    if node.level:   # relative: resolve against this package
                        pkg = os.path.dirname(rel).split(os.sep) if os.path.dirname(rel) else []
                        pkg = pkg[:len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                        base = ".".join(["pmprof"] + pkg + ([node.module] if node.module else []))
                    else:
                        base = node.module or ""
                    if base == "pmprof":
                        mods = ["pmprof." + a.name if a.name in subs else "pmprof"
                                for a in node.names]
                    else:
                        mods = [base]
                for m in mods:
                    top = m.split(".")[0]
                    if top in DEBUGGERS and DEBUGGERS[top] != rel.replace(os.sep, "/"):
                        problems.append("%s: imports %s (only %s may)" % (
                            show, top, "python/pmprof/" + DEBUGGERS[top]))
                    if top != "pmprof":
                        continue
                    dst = "pmprof" if m == "pmprof" else py_layer(m[len("pmprof."):])
                    if dst not in rank:
                        continue
                    edges[("py:" + src, "py:" + dst)].add("%s imports %s" % (rel, m))
                    if dst != src and rank[dst] >= rank[src]:
                        problems.append("%s: imports %s, a layer above (or beside) %s" % (
                            show, m, src))
    return nfiles


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objs", help="the built objects (build/obj): check calls too")
    ap.add_argument("--list", action="store_true", help="print who uses whom")
    a = ap.parse_args()
    problems = []
    edges = defaultdict(set)
    where = scan_sources(problems)
    check_includes(where, problems, edges)
    npy = check_python(problems, edges)
    if a.objs:
        check_symbols(where, a.objs, problems, edges)
    if a.list:
        rank = rank_of()
        rank.update({"py:" + n: 100 + i for i, row in enumerate(PY_LAYERS) for n in row})
        for (src, dst), why in sorted(edges.items(), key=lambda kv: (
                rank[kv[0][0]], kv[0][0], rank[kv[0][1]], kv[0][1])):
            if src != dst:
                print("%-8s -> %-8s %d (e.g. %s)" % (src, dst, len(why), sorted(why)[0]))
    for p in problems:
        print("layers: " + p, file=sys.stderr)
    if not problems and not a.list:
        print("layers: ext/ ok (%d files, %d folders%s); python/pmprof/ ok "
              "(%d modules)" % (len(where), len(set(where.values())),
                                ", calls checked" if a.objs else "", npy))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
