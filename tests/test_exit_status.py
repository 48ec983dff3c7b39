"""Exit status 1 ("partial") whenever a stack was cut short, on every path
of the commands that print stacks: the C fast path of bin/pmprof (stacks
text, snapshot) and the Python CLI (stacks text and JSON, threads,
snapshot; PMPROF_NO_FAST=1 forces it), live and on a core.

Cut short: the 256-frame cap (targets/deep with 300 recursive frames: the
output ends in [truncated]) and Go code of a version this pmprof cannot
walk (go-1.27 from the version matrix: "[go: cannot unwind]").  A stack
read whole exits 0 (the control).
"""

import json

import pytest

from conftest import ENV, gcore, run_pmprof

PARTIAL = "partial result: some parts could not be read"

COMMANDS = [
    ("stacks",),
    ("stacks", "--all"),
    ("stacks", "--format", "json"),
    ("threads",),
    ("threads", "--format", "json"),
    ("snapshot",),
]


def run_all(where, tmp_path, marker):
    """Every command on both paths: [(args, path, status, stdout, stderr)]."""
    out = []
    for fast in (True, False):
        env = dict(ENV)
        if not fast:
            env["PMPROF_NO_FAST"] = "1"
        for cmd in COMMANDS:
            args = list(cmd)
            if cmd[0] == "snapshot":
                args += ["-o", str(tmp_path / "s.pb.gz")]
            r = run_pmprof(*(args + list(where)), env=env)
            out.append((cmd, "fast" if fast else "python", r.returncode, r.stdout, r.stderr))
    if marker:
        # the cut is marked where stacks are printed
        texts = [o[3] for o in out if o[0] == ("stacks",)]
        assert texts and all(marker in t for t in texts)
    return out


def check(results, want):
    for cmd, path, status, stdout, stderr in results:
        assert status == want, (cmd, path, status, stderr)
        if want == 1:
            assert PARTIAL in stderr, (cmd, path, stderr)
        if "json" in cmd:
            json.loads(stdout)


def test_frame_cap_is_partial(target, tmp_path):
    t = target("deep", "1", "block", "300")
    check(run_all(["-p", t.pid], tmp_path, "[truncated]"), 1)
    core = gcore(t.pid, tmp_path)
    check(run_all(["--core", core, "--exe", t.exe], tmp_path, "[truncated]"), 1)


def test_whole_stacks_exit_0(target, tmp_path):
    t = target("deep", "1", "block", "24")
    check(run_all(["-p", t.pid], tmp_path, None), 0)


def test_unreadable_go_is_partial(target, tmp_path):
    """A Go function table pmprof will not read (a Go 1.26 gohello whose
    runtime.systemstack carries another funcID, as a release that
    renumbered them would): the Go stacks end in [go: cannot unwind]."""
    import versions
    from test_go_versions_stacks import _pclntab_func
    go = versions.entry("go-1.26")
    data = bytearray(open(versions.build_go(go, "gohello.go", "gohello", cgo=False),
                          "rb").read())
    _, fid = _pclntab_func(bytes(data), "runtime.systemstack")
    data[fid] = (data[fid] + 1) & 0xff
    exe = tmp_path / "gohello-badids"
    exe.write_bytes(bytes(data))
    exe.chmod(0o755)
    t = target(str(exe), settle=False)
    check(run_all(["-p", t.pid], tmp_path, "[go: cannot unwind]"), 1)
