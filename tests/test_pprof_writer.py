"""The pprof writer (ext/output/pprof.c), checked by its real consumer.

tests/unit/test-pprof builds an example profile from synthetic stacks (a
fake symbol source: a main executable with a build-id, a libc, inline
chains, a mangled C++ name, synthetic [truncated]/[no registers] frames,
an address in no module) and checks it field by field in C.  Here the same
file goes through `go tool pprof -raw`, `-traces` and `-tags`, which must
parse it and show exactly the expected functions, inline frames, labels,
mappings and build id; the wire-level invariants pprof relies on are
checked directly as well.

The example's addresses are fixed by test-pprof.c, so the expected text
below is exact.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from conftest import ENV, ROOT, pprof_tool, require_go

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
MAIN_BUILD_ID = "0123456789abcdef0123456789abcdef01234567"
LIBC_BUILD_ID = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
LIBC_START = ("__libc_start_call_main",)
BUSY = ("copy_bytes (inline)", "compress_block", "main") + LIBC_START


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Builds build/unit/test-pprof with make, runs it (its own checks
    must all pass) and returns the example profile it wrote."""
    made = subprocess.run(
        ["make", "-C", ROOT, "--no-print-directory", "build/unit/test-pprof"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert made.returncode == 0, "make build/unit/test-pprof failed:\n" + made.stdout + made.stderr
    out = tmp_path_factory.mktemp("pprof") / "example.pb.gz"
    env = dict(ENV, PMPROF_PPROF_OUT=str(out), TMPDIR=str(out.parent))
    res = subprocess.run(
        [os.path.join(ROOT, "build", "unit", "test-pprof")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    lines = res.stdout.strip().splitlines()
    assert res.returncode == 0, "test-pprof exited %d:\n%s\n%s" % (
        res.returncode, res.stdout, res.stderr)
    assert lines and SUMMARY.match(lines[-1]), "no 'N passed, M failed' line: %r" % res.stdout
    m = SUMMARY.match(lines[-1])
    assert m and m.group(2) == "0" and int(m.group(1)) > 100, lines[-1]
    assert out.is_file(), "test-pprof did not write %s" % out
    assert not list(out.parent.glob("*.tmp.*")), "temporary files left behind"
    return out


# ---- the wire format, decoded by hand (no protobuf module needed) ----------


def _varint(b: bytes, i: int) -> Tuple[int, int]:
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


Fields = List[Tuple[int, int, object]]


def _fields(b: bytes) -> Fields:
    """(field number, wire type, int or bytes) for each field of a message."""
    out: Fields = []
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
            out.append((num, wt, v))
        elif wt == 2:
            n, i = _varint(b, i)
            out.append((num, wt, b[i:i + n]))
            i += n
        else:
            raise AssertionError("unexpected wire type %d (field %d)" % (wt, num))
    return out


def _ints(fields: Fields, num: int) -> List[int]:
    """A repeated or singular integer field, packed or not."""
    vals: List[int] = []
    for n, wt, v in fields:
        if n != num:
            continue
        if wt == 2:
            assert isinstance(v, bytes)
            j = 0
            while j < len(v):
                x, j = _varint(v, j)
                vals.append(x)
        else:
            assert isinstance(v, int)
            vals.append(v)
    return vals


def _int(fields: Fields, num: int) -> int:
    vals = _ints(fields, num)
    assert len(vals) <= 1, "field %d occurs %d times" % (num, len(vals))
    return vals[0] if vals else 0


def _msgs(fields: Fields, num: int) -> List[Fields]:
    return [_fields(v) for n, _, v in fields if n == num and isinstance(v, bytes)]


def test_gzip_and_wire_invariants(profile: Path) -> None:
    """gzip magic, then profile.CheckValid's invariants and ours."""
    raw = profile.read_bytes()
    assert raw[:2] == b"\x1f\x8b", "not gzip: %r" % raw[:2]
    prof = _fields(gzip.decompress(raw))
    strings = [v.decode() for n, _, v in prof if n == 6 and isinstance(v, bytes)]
    assert strings and strings[0] == "", "string_table[0] is %r" % strings[:1]
    assert len(set(strings)) == len(strings), "duplicate strings"

    def s(i: int) -> str:
        assert 0 <= i < len(strings), "string index %d out of range" % i
        return strings[i]

    types = [(s(_int(vt, 1)), s(_int(vt, 2))) for vt in _msgs(prof, 1)]
    assert types == [("samples", "count"), ("wall", "nanoseconds")]
    assert s(_int(prof, 14)) == "wall"
    assert len(_ints(prof, 9)) == 1, "time_nanos must occur once"
    assert [s(c) for c in _ints(prof, 13)] == ["pmprof unit test", "second comment"]

    mappings = _msgs(prof, 3)
    assert [_int(m, 1) for m in mappings] == [1, 2]
    assert s(_int(mappings[0], 5)) == "/opt/pmprof-test/bin/demo-server"
    assert s(_int(mappings[0], 6)) == MAIN_BUILD_ID
    assert s(_int(mappings[1], 5)) == "/opt/pmprof-test/lib/libc.so.6"

    functions = _msgs(prof, 5)
    fn_ids = [_int(f, 1) for f in functions]
    assert fn_ids == list(range(1, len(functions) + 1))
    keys = [(s(_int(f, 2)), s(_int(f, 3)), s(_int(f, 4))) for f in functions]
    assert len(set(keys)) == len(keys), "functions not deduplicated"

    locations = _msgs(prof, 4)
    loc_ids = [_int(loc, 1) for loc in locations]
    assert loc_ids == list(range(1, len(locations) + 1))
    for loc in locations:
        assert _int(loc, 2) <= len(mappings)
        for line in _msgs(loc, 4):
            assert _int(line, 1) in fn_ids, "line with a missing function"

    samples = _msgs(prof, 2)
    assert len(samples) == 8
    for smp in samples:
        assert len(_ints(smp, 2)) == len(types)
        assert all(i in loc_ids for i in _ints(smp, 1))
        for lab in _msgs(smp, 3):
            s(_int(lab, 1))
            # pprof would silently drop these: the writer never emits them
            assert _int(lab, 2) or _int(lab, 3) or _int(lab, 4), "zero label emitted"


def test_string_table_with_protoc(profile: Path) -> None:
    """string_table[0] is "" as protoc decodes it (the reference decoder)."""
    protoc = shutil.which("protoc")
    if protoc is None:
        pytest.skip("protoc is not installed (only protoc-c is needed to build); "
                    "test_gzip_and_wire_invariants decodes the table itself")
    res = subprocess.run(
        [protoc, "--decode=perftools.profiles.Profile",
         "--proto_path=" + os.path.join(ROOT, "ext", "output", "proto"), "profile.proto"],
        input=gzip.decompress(profile.read_bytes()), capture_output=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    tables = re.findall(r'^string_table: "(.*)"$', res.stdout.decode(), re.M)
    assert tables and tables[0] == ""


# ---- go tool pprof ---------------------------------------------------------

# (address, mapping id or None, lines) of every Location, as -raw prints them.
EXPECTED_LOCATIONS = {
    (0x555555555120, 1, ("copy_bytes /src/demo/util.h:12 s=0",
                         "compress_block /src/demo/compress.c:88 s=0")),
    (0x55555555511F, 1, ("copy_bytes /src/demo/util.h:12 s=0",
                         "compress_block /src/demo/compress.c:88 s=0")),
    (0x555555555130, 1, ("copy_bytes /src/demo/util.h:12 s=0",
                         "compress_block /src/demo/compress.c:88 s=0")),
    (0x555555555210, 1, ("copy_bytes /src/demo/util.h:14 s=0",
                         "hash_update /src/demo/hash.c:40 s=0")),
    (0x5555555551A0, 1, ("compress_block /src/demo/compress.c:95 s=0",)),
    (0x555555555041, 1, ("main /src/demo/main.c:30 s=0",)),
    (0x55555555505F, 1, ("main /src/demo/main.c:30 s=0",)),
    (0x55555555507F, 1, ("main /src/demo/main.c:30 s=0",)),
    (0x555555555308, 1, ("ns::Foo::bar(int) /src/demo/foo.cpp:7 s=0(_ZN2ns3Foo3barEi)",)),
    (0x7F0000029D8F, 2, ("__libc_start_call_main :0 s=0",)),
    (0x7F0000100014, 2, ("poll :0 s=0",)),
    (0x7F000015000F, 2, ()),
    (0x1233, None, ()),
    (0xFFFFFFFFFFFFF001, None, ("[truncated] :0 s=0",)),
    (0xFFFFFFFFFFFFF003, None, ("[no registers] :0 s=0",)),
}  # fmt: skip

EXPECTED_MAPPINGS = [
    "1: 0x555555554000/0x555555564000/0x0 /opt/pmprof-test/bin/demo-server "
    + MAIN_BUILD_ID + " [FN][FL][LN][IN]",
    "2: 0x7f0000000000/0x7f0000200000/0x28000 /opt/pmprof-test/lib/libc.so.6 "
    + LIBC_BUILD_ID + " [FN]",
]

# thread -> (value, labels, frames leaf first) as -traces prints them.
EXPECTED_TRACES: Dict[str, Tuple[str, Dict[str, str], Tuple[str, ...]]] = {
    "worker-1": ("30ms", {"tid": "101"}, BUSY),
    "worker-2": ("10ms", {"tid": "102"}, BUSY),
    "worker-3": ("10ms", {"tid": "103"}, BUSY),
    "hasher": ("20ms", {"tid": "104"},
               ("copy_bytes (inline)", "hash_update", "compress_block", "main") + LIBC_START),
    "cxx": ("10ms", {"tid": "105"}, ("ns::Foo::bar(int)", "main") + LIBC_START),
    "idle": ("50ms", {"tid": "106", "state": "S", "wait": "1.50ms", "retries": "0"},
             ("poll", "[libc.so.6]", "<unknown>")),
    "deep": ("10ms", {"tid": "107"},
             ("copy_bytes (inline)", "compress_block", "main", "[truncated]")),
    "no-regs": ("10ms", {"tid": "108"}, ("[no registers]",)),
}  # fmt: skip


def _section(text: str, start: str, end: Optional[str]) -> List[str]:
    lines = text.splitlines()
    i = lines.index(start) + 1
    j = lines.index(end) if end else len(lines)
    return lines[i:j]


@require_go
def test_pprof_raw(profile: Path) -> None:
    raw = pprof_tool("-raw", profile)
    lines = raw.splitlines()
    assert "PeriodType: wall nanoseconds" in lines
    assert "Period: 10000000" in lines
    assert "Duration: 2s" in lines
    assert "Comment: pmprof unit test" in lines
    assert "Comment: second comment" in lines
    assert "samples/count wall/nanoseconds[dflt]" in lines

    assert _section(raw, "Mappings", None) == EXPECTED_MAPPINGS

    locs: Dict[int, Tuple[int, Optional[int], List[str]]] = {}
    cur: Optional[int] = None
    for line in _section(raw, "Locations", "Mappings"):
        m = re.match(r"^\s*(\d+): 0x([0-9a-f]+)(?: M=(\d+))?(?: (.*))?$", line)
        if m:
            cur = int(m.group(1))
            rest = (m.group(4) or "").strip()
            locs[cur] = (int(m.group(2), 16), int(m.group(3)) if m.group(3) else None,
                         [rest] if rest else [])
        else:
            assert cur is not None and line.startswith(" "), "unexpected line %r" % line
            locs[cur][2].append(line.strip())
    got = {(a, m, tuple(ls)) for a, m, ls in locs.values()}
    assert len(locs) == len(EXPECTED_LOCATIONS)
    assert got == EXPECTED_LOCATIONS, "missing: %s\nunexpected: %s" % (
        sorted(EXPECTED_LOCATIONS - got), sorted(got - EXPECTED_LOCATIONS))

    samples = [ln for ln in _section(raw, "Samples:", "Locations")
               if re.match(r"^\s+\d+\s+\d+: ", ln)]
    assert len(samples) == 8, "\n".join(samples)
    # worker-1 was added three times (once with a dropped num=0 label)
    assert re.search(r"^\s+3\s+30000000: \d+ \d+ \d+ \n\s+thread:\[worker-1\]\n\s+tid:\[101\]$",
                     raw, re.M), raw


def _traces(text: str) -> Tuple[List[str], Dict[str, Tuple[str, Dict[str, str], Tuple[str, ...]]]]:
    """-traces output -> (header lines, {thread: (value, labels, frames)})."""
    blocks = re.split(r"^-+\+-+$", text, flags=re.M)
    header = [ln.strip() for ln in blocks[0].splitlines() if ln.strip()]
    traces = {}
    for block in blocks[1:]:
        labels: Dict[str, str] = {}
        frames: List[str] = []
        value = ""
        for line in block.splitlines():
            if not line.strip():
                continue
            m = re.match(r"^\s*([^\s:]+):  (.+)$", line)
            if m and not frames:
                labels[m.group(1)] = m.group(2).strip()
                continue
            # "%10s   %s": value column, then the frame
            v, frame = line[:10].strip(), line[13:]
            if v:
                assert not value, "two values in one trace: %r" % block
                value = v
            frames.append(frame)
        if not frames and not labels:
            continue
        thread = labels.pop("thread")
        assert thread not in traces, "two traces for %s" % thread
        traces[thread] = (value, labels, tuple(frames))
    return header, traces


@require_go
def test_pprof_traces(profile: Path) -> None:
    header, traces = _traces(pprof_tool("-traces", profile))
    # mapping[0] is the main binary: pprof's File: and Build ID: header
    assert header[0] == "File: demo-server"
    assert header[1] == "Build ID: " + MAIN_BUILD_ID
    assert "pmprof unit test" in header and "second comment" in header
    assert "Type: wall" in header
    assert any(h.startswith("Duration: 2s, Total samples = 150ms") for h in header), header
    assert traces == EXPECTED_TRACES


@require_go
def test_pprof_tags(profile: Path) -> None:
    """Label keys and values as pprof aggregates them: units are scaled,
    a num=0 label with a unit survives, the num=0 label without one never
    reached the file."""
    tags = pprof_tool("-tags", profile)
    keys = re.findall(r"^ (\w+): Total", tags, re.M)
    assert sorted(keys) == ["retries", "state", "thread", "tid", "wait"]
    assert re.search(r"^\s+50.0ms \(  100%\): 1.50ms$", tags, re.M), tags
    assert re.search(r"^\s+50.0ms \(  100%\): 0$", tags, re.M), tags
