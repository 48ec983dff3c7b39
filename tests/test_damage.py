"""Damaged real cores (tests/damage.py) through every command: 0 crashes,
0 hangs, 0 tracebacks, 0 multi-line errors, 0 undocumented exit statuses.

CI size: 240 variants of 4 cores (locks abba, threads, mallocs big, goprog),
2 commands each in rotation (every command meets every kind of damage),
seed 1 (the same variants every run), 2 processes at once; ~60 s.  The
counts are printed.  The whole run (every command on every variant, more
variants, other seeds): python3 tests/damage.py --count N --seed S.

Serial: it runs two pmprof processes at once itself.
"""

import os
import shutil
import subprocess
import tempfile

import pytest

import damage
from conftest import go_available, run_pmprof

pytestmark = pytest.mark.serial


def test_damaged_cores(tmp_path, capsys):
    cores = list(damage.DEFAULT_CORES)
    if not go_available():
        cores.remove("goprog")
    res = damage.run(count=240, seed=1, jobs=2, cores=cores, timeout=20.0,
                     core_dir=str(tmp_path / "cores"), per_variant=2,
                     keep=str(tmp_path / "bad"))
    with capsys.disabled():
        print("\n%d variants, %d runs, %.0f s: crashes %d hangs %d tracebacks %d "
              "multi-line %d status %d; exit statuses %s" % (
                  res["variants"], res["runs"], res["seconds"], res["crash"], res["hang"],
                  res["traceback"], res["multiline"], res["status"], res["statuses"]))
    assert res["runs"] >= 400
    # the damage reaches the readers: some runs refuse or are partial
    assert sum(n for s, n in res["statuses"].items() if s != 0) > 0, res["statuses"]
    bad = res["crash"] + res["hang"] + res["traceback"] + res["multiline"] + res["status"]
    assert bad == 0, "\n".join(res["findings"][:20]) + "\n(bad variants kept in %s)" % (
        tmp_path / "bad")


def test_core_naming_a_fifo(tmp_path):
    """A core whose link_map (l_name, in memory) and NT_FILE name a FIFO
    where libc was: nothing may open it (an open of a FIFO blocks until a
    writer comes: a hang; opening a device can act).  Every libc path in
    the core is replaced by a FIFO's path of the same length.  libdwfl's
    dwfl_core_file_report opens every l_name itself (a blocking open):
    ext/target/core-names.c walks the link_map first and refuses such a core in
    one line (before it, this hung)."""
    core = damage.seeds.make_cores(str(tmp_path / "cores"), ["threads"])[0]
    with open(core.path, "rb") as f:
        b = bytearray(f.read())
    info = damage.CoreInfo(bytes(b))
    libc = next(p for p in damage.CoreInfo.nt_file_paths(bytes(b), info)
                if os.path.basename(p).startswith("libc"))
    d = tempfile.mkdtemp(prefix="pf", dir="/tmp")
    try:
        # NT_FILE says /usr/lib/..., the link_map /lib/... (the merged /usr):
        # the longer first, as the shorter is its tail
        for path in sorted({libc, libc.replace("/usr/lib/", "/lib/", 1)}, key=len,
                           reverse=True):
            fifo = os.path.join(d, "x" * (len(path) - len(d) - 1))
            assert len(fifo) == len(path), (fifo, path)
            os.mkfifo(fifo)
            assert path.encode() in b, path
            b = bytearray(bytes(b).replace(path.encode(), fifo.encode()))
        bad = tmp_path / "fifo.core"
        bad.write_bytes(bytes(b))
        for cmd in (["stacks"], ["threads"], ["heap"]):
            try:
                r = run_pmprof(*cmd, "--core", str(bad), "--exe", core.exe, timeout=20)
            except subprocess.TimeoutExpired:
                pytest.fail("pmprof %s hung on a core naming a FIFO" % cmd[0])
            assert r.returncode == 2, (cmd, r.returncode, r.stderr)
            assert r.stderr.count("\n") == 1 and "not a regular file" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d)
