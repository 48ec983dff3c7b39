"""The Go oracle (tests/targets/goprog.go) from the test side.

Owns: starting goprog with a private --out directory and reading back what
the program said about itself (debug=2 and debug=1 goroutine dumps,
MemStats, runtime settings), parsers for Go's goroutine text formats
(debug=2, debug=1, `go tool pprof -traces`; 1.19 and 1.21+, whose
`created by F in goroutine N` names the creator), and Go's frame-hiding rule,
so tests compare pmprof with the runtime's own view rather than with
hard-coded output.

Must not: import gdb or pmprof, or know anything about pmprof's output
beyond the CLI contract the tests state.
"""

import json
import os
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from helpers import Target, pprof_tool, run_pmprof

BUILDS = ["goprog", "goprog-w", "goprog-sw", "goprog-static"]


# ---- Go's rule for which frames a traceback shows ---------------------------


def is_exported_runtime(name: str) -> bool:
    """Go 1.19 runtime.isExportedRuntime."""
    return len(name) > 8 and name.startswith("runtime.") and "A" <= name[8] <= "Z"


def go_shown(name: str) -> bool:
    """Go 1.19 showfuncinfo at GOTRACEBACK=single: a name with a dot, not
    runtime.* unless exported.  (Wrappers are dropped before names are
    seen: the profile and the dumps never list them.)"""
    return "." in name and (not name.startswith("runtime.") or is_exported_runtime(name))


def go_funcs(names) -> Tuple[str, ...]:
    return tuple(n for n in names if go_shown(n))


# ---- debug=2 (and pmprof's text, which follows it) ----------------------------


@dataclass
class Frame:
    function: str
    file: str
    line: int
    inlined: bool = False       # Go prints an inlined call's args as (...)
    offset: Optional[int] = None    # the "+0x.." after file:line (pc - entry)


@dataclass
class G:
    goid: int
    header: str                 # the bracket text without ", N minutes" / locked
    minutes: Optional[int]
    locked: bool
    frames: List[Frame] = field(default_factory=list)
    created_by: Optional[Frame] = None
    labels: Optional[Dict[str, str]] = None    # pmprof's '# labels:' line
    created_in: Optional[int] = None    # 1.21+: "created by F in goroutine N"

    @property
    def funcs(self) -> Tuple[str, ...]:
        return tuple(f.function for f in self.frames)


_GHDR = re.compile(r"^goroutine (\d+) \[(.*)\]:$")
_FILELINE = re.compile(r"^\t(.+):(\d+)(?: \+0x([0-9a-f]+))?$")


def split_header(text: str) -> Tuple[str, Optional[int], bool]:
    """'chan receive, 3 minutes, locked to thread' -> ('chan receive', 3,
    True); Go 1.19 traceback1 prints the reason, then ', N minutes' when the
    wait is at least a minute, then ', locked to thread'."""
    locked = text.endswith(", locked to thread")
    if locked:
        text = text[:-len(", locked to thread")]
    minutes = None
    m = re.search(r", (\d+) minutes$", text)
    if m:
        minutes, text = int(m.group(1)), text[:m.start()]
    return text, minutes, locked


def _func_of(line: str) -> Tuple[str, bool]:
    """'main.parkSend(0x0?)' -> ('main.parkSend', False); 'f(...)' -> inlined.
    The argument list is the last '(' at depth 0: method receivers such as
    sync.(*Mutex).Lock carry parentheses of their own."""
    assert line.endswith(")"), line
    depth = 0
    for i in range(len(line) - 1, -1, -1):
        c = line[i]
        if c == ")":
            depth += 1
        elif c == "(":
            depth -= 1
            if depth == 0:
                return line[:i], line[i:] == "(...)"
    raise AssertionError("no argument list in %r" % line)


def parse_debug2(text: str) -> Dict[int, G]:
    """Go 1.19 `goroutine` profile at debug=2 (runtime.Stack(all)) -> {goid: G}.
    Strict: any line that is not part of the format fails the parse.  One
    addition is accepted: a '# labels: {...}' line (debug=1's spelling)
    right after the header, which Go's debug=2 lacks and pmprof prints,
    and '# ...' comment lines between goroutines (pmprof's notes on what
    several goroutines wait on)."""
    out: Dict[int, G] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].startswith("# "):
            i += 1
            continue
        m = _GHDR.match(lines[i])
        assert m, "debug=2 line %d: not a goroutine header: %r" % (i + 1, lines[i])
        header, minutes, locked = split_header(m.group(2))
        g = G(int(m.group(1)), header, minutes, locked)
        assert g.goid not in out, "goroutine %d twice" % g.goid
        out[g.goid] = g
        i += 1
        if i < len(lines) and lines[i].startswith("# labels: "):
            g.labels = parse_labels(lines[i][len("# labels: "):])
            i += 1
        while i < len(lines) and lines[i].strip():
            fn = lines[i]
            assert i + 1 < len(lines), "debug=2: %r without a file:line" % fn
            fl = _FILELINE.match(lines[i + 1])
            assert fl, "debug=2 line %d: not a file:line: %r" % (i + 2, lines[i + 1])
            off = int(fl.group(3), 16) if fl.group(3) else None
            if fn.startswith("created by "):
                cb = re.match(r"^created by (\S+)(?: in goroutine (\d+))?$", fn)
                assert cb, "debug=2 line %d: %r" % (i + 1, fn)
                g.created_by = Frame(cb.group(1), fl.group(1), int(fl.group(2)), offset=off)
                g.created_in = int(cb.group(2)) if cb.group(2) else None
            else:
                name, inl = _func_of(fn)
                g.frames.append(Frame(name, fl.group(1), int(fl.group(2)), inl, off))
            i += 2
    return out


# ---- debug=1 ------------------------------------------------------------------


@dataclass
class Group:
    count: int
    labels: Dict[str, str]
    frames: List[Frame]

    @property
    def funcs(self) -> Tuple[str, ...]:
        return tuple(f.function for f in self.frames)


_D1FRAME = re.compile(r"^#\t0x[0-9a-f]+\t(\S+)\+0x[0-9a-f]+\s+(.+):(\d+)$")


def parse_labels(text: str) -> Dict[str, str]:
    """'{"idx":"0", "role":"sleeper"}' (Go's printCountProfile) -> dict."""
    return dict(re.findall(r'"((?:[^"\\]|\\.)*)":"((?:[^"\\]|\\.)*)"', text))


def parse_debug1(text: str) -> Tuple[int, List[Group]]:
    """Go 1.19 `goroutine` profile at debug=1 -> (total, [Group])."""
    lines = text.splitlines()
    m = re.match(r"^goroutine profile: total (\d+)$", lines[0])
    assert m, lines[0]
    total = int(m.group(1))
    groups: List[Group] = []
    cur: Optional[Group] = None
    for ln in lines[1:]:
        if not ln.strip():
            cur = None
            continue
        h = re.match(r"^(\d+) @( 0x[0-9a-f]+)+$", ln)
        if h:
            cur = Group(int(h.group(1)), {}, [])
            groups.append(cur)
            continue
        assert cur is not None, "debug=1: %r outside a group" % ln
        if ln.startswith("# labels: "):
            cur.labels = parse_labels(ln[len("# labels: "):])
            continue
        f = _D1FRAME.match(ln)
        assert f, "debug=1: not a frame line: %r" % ln
        cur.frames.append(Frame(f.group(1), f.group(2), int(f.group(3))))
    return total, groups


# ---- go tool pprof -traces ------------------------------------------------------


def parse_traces(text: str) -> List[Tuple[int, Tuple[str, ...], Tuple[Tuple[str, str], ...]]]:
    """`go tool pprof -traces` of a count profile -> [(count, functions
    innermost first, sorted (label, value) pairs)].  Inlined frames carry
    ' (inline)', which is dropped."""
    out = []
    for block in re.split(r"^-+\+-+$", text, flags=re.M)[1:]:
        labels, funcs, count = [], [], None
        for ln in block.splitlines():
            if not ln.strip():
                continue
            lab = re.match(r"^\s+(\S+):\s+(.*)$", ln)
            if count is None and lab and not re.match(r"^\s+\d+\s", ln):
                v = lab.group(2).strip()
                if v.startswith("[") and v.endswith("]"):
                    v = v[1:-1]
                labels.append((lab.group(1), v))
                continue
            m = re.match(r"^\s+(\d+)\s+(\S.*)$", ln)
            if count is None and m:
                count = int(m.group(1))
                funcs.append(m.group(2))
                continue
            funcs.append(ln.strip())
        if count is None:
            continue
        funcs = [f[:-len(" (inline)")] if f.endswith(" (inline)") else f for f in funcs]
        out.append((count, tuple(funcs), tuple(sorted(labels))))
    return out


def traces_multiset(path) -> Counter:
    """A goroutine profile -> Counter{(shown functions, labels): count}."""
    c: Counter = Counter()
    for count, funcs, labels in parse_traces(pprof_tool("-traces", os.fspath(path))):
        c[(go_funcs(funcs), labels)] += count
    return c


# ---- the running program ------------------------------------------------------------


def proc_tasks(pid: int) -> List[int]:
    return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))


class GoProg:
    """tests/targets/bin/BUILD --out DIR [--no-spin], in place at READY,
    with what it wrote about itself:

      .target            helpers.Target (.pid, .exe, kill())
      .dump              {goid: G} from goroutines.2.txt
      .d1_total, .d1     debug=1 total and groups
      .pb                path of goroutines.pb.gz
      .memstats, .extra  memstats.json, extra.json
      .t_start, .t_ready time.monotonic() before starting it / READY seen
      .spin              whether the two spinners run
    """

    def __init__(self, build: str, spin: bool = True, extra_args=()):
        """build: a tests/targets/bin name, or the path of a goprog built
        elsewhere (tests/versions.py build_go)."""
        self.build = build
        self.spin = spin
        self.dir = tempfile.mkdtemp(prefix="pmprof-goprog-")
        args = ["--out", self.dir] + ([] if spin else ["--no-spin"]) + list(extra_args)
        self.t_start = time.monotonic()
        self.target = Target(build, args, settle=False)
        self.t_ready = time.monotonic()
        if not spin:
            # Nothing runs after READY then: wait until the main goroutine
            # has come back from writing it and parked (its dump says
            # `chan receive`).
            self.target.wait_all_asleep(timeout=10.0)
        self.pid = self.target.pid
        self.exe = self.target.exe
        with open(os.path.join(self.dir, "goroutines.2.txt")) as f:
            self.dump_text = f.read()
        self.dump = parse_debug2(self.dump_text)
        with open(os.path.join(self.dir, "goroutines.1.txt")) as f:
            self.d1_total, self.d1 = parse_debug1(f.read())
        self.pb = os.path.join(self.dir, "goroutines.pb.gz")
        with open(os.path.join(self.dir, "memstats.json")) as f:
            self.memstats = json.load(f)
        with open(os.path.join(self.dir, "extra.json")) as f:
            self.extra = json.load(f)
        assert self.extra["pid"] == self.pid

    def __repr__(self) -> str:
        return "<GoProg %s pid %d>" % (self.build, self.pid)

    def by_func(self, name: str) -> List[G]:
        """Goroutines of the dump whose frames include `name`."""
        return [g for g in self.dump.values() if name in g.funcs]

    def spinners(self) -> List[int]:
        return sorted(g.goid for g in self.by_func("main.spin"))

    def kill(self) -> None:
        self.target.kill()

    def check_unharmed(self) -> None:
        self.target.check_unharmed()


def pmprof_json(*args, check=0):
    """bin/pmprof ARGS --format json -> (doc, CompletedProcess)."""
    r = run_pmprof(*args, "--format", "json", check=check)
    return json.loads(r.stdout), r


def json_from_gdb(stdout: str):
    """The JSON document inside gdb's stdout (gdb may print banners and
    thread notices around it)."""
    start = 0 if stdout.startswith("{") else stdout.index("\n{") + 1
    return json.loads(stdout[start:stdout.rindex("}") + 1])



def parse_group_text(text: str) -> List[Tuple[int, Tuple[str, ...]]]:
    """Grouped text (`pmprof goroutines --group`): blocks opening with
    'N @ ...' (debug=1's count line), then frames either as debug=2's
    'function(args)' + '\\tfile:line' pairs or as debug=1's
    '#\\t0xPC\\tfunction+0xOFF\\tfile:line'; other '#' lines and
    'created by' are skipped.  -> [(count, functions innermost first)]."""
    out: List[Tuple[int, List[str]]] = []
    cur: Optional[Tuple[int, List[str]]] = None
    for ln in text.splitlines():
        h = re.match(r"^(\d+) @", ln)
        if h:
            cur = (int(h.group(1)), [])
            out.append(cur)
            continue
        if cur is None or not ln.strip() or ln.startswith("\t") or ln.startswith("created by "):
            continue
        d1 = _D1FRAME.match(ln)
        if d1:
            cur[1].append(d1.group(1))
        elif not ln.startswith("#"):
            cur[1].append(_func_of(ln)[0])
    return [(n, tuple(f)) for n, f in out]
