"""Bad input: one clear line and the documented exit status, never a
traceback, hang or crash."""

import os
import shutil
import subprocess
import time

from conftest import PMPROF, TARGETS, gcore, run_pmprof


def one_line_error(r, status, text):
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert any(text in x for x in lines), r.stderr
    return lines


def test_usage_errors():
    one_line_error(run_pmprof("stacks"), 64, "give exactly one target")
    one_line_error(run_pmprof("stacks", "-p", "1", "--core", "x"), 64, "give exactly one target")
    one_line_error(run_pmprof("frobnicate"), 64, "unknown command 'frobnicate'")
    one_line_error(run_pmprof("stacks", "-p", "abc"), 64, "invalid int value")
    one_line_error(run_pmprof("stacks", "-p", "1", "--depth", "0"), 64, "--depth must be")
    r = run_pmprof("stacks", "-h")
    assert r.returncode == 0 and "usage: pmprof stacks" in r.stdout
    r = run_pmprof()
    assert r.returncode == 64 and "Commands:" in r.stdout


def test_no_such_pid():
    lines = one_line_error(run_pmprof("stacks", "-p", "999999"), 2,
                           "pmprof stacks: no process with pid 999999")
    assert len(lines) == 1


def test_pid_already_traced(target):
    t = target("threads")
    holder = subprocess.Popen(["gdb", "-nx", "-batch", "-p", str(t.pid), "-ex",
                               "shell sleep 4"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if t.tracer():
                break
            time.sleep(0.02)
        r = run_pmprof("stacks", "-p", t.pid)
        one_line_error(r, 2, "cannot attach to process %d" % t.pid)
    finally:
        holder.kill()
        holder.wait()


def test_not_elf_and_not_core(tmp_path):
    p = tmp_path / "notelf"
    p.write_text("hello\n" * 100)
    one_line_error(run_pmprof("stacks", "--core", p), 2, "is not an ELF file")
    one_line_error(run_pmprof("stacks", "--core", os.path.join(TARGETS, "threads")), 2,
                   "is not a core file")
    one_line_error(run_pmprof("stacks", "--core", tmp_path / "missing"), 2, "no such core file")
    (tmp_path / "empty").write_bytes(b"")
    one_line_error(run_pmprof("stacks", "--core", tmp_path / "empty"), 2, "is not an ELF file")


def test_truncated_cores(target, tmp_path):
    t = target("threads")
    core = gcore(t.pid, tmp_path)
    data = open(core, "rb").read()
    statuses = set()
    for frac in (0.001, 0.01, 0.3, 0.6, 0.95):
        cut = tmp_path / ("cut%s" % frac)
        cut.write_bytes(data[:int(len(data) * frac)])
        r = run_pmprof("stacks", "--core", cut, timeout=60)
        assert "Traceback" not in r.stderr
        assert r.returncode in (0, 1, 2), r
        if r.returncode == 2:
            assert len([x for x in r.stderr.splitlines() if x.strip()]) == 1, r.stderr
        statuses.add(r.returncode)
    # gdb writes its notes after the memory: every cut loses them
    assert statuses == {2}


def test_truncated_kernel_core_still_reads(tmp_path):
    """A kernel core has its notes first: cut in the memory, the threads
    and registers are still there; stacks end where memory is missing."""
    from conftest import kernel_core
    core, exe = kernel_core("threads", tmp_path)
    data = open(core, "rb").read()
    cut = tmp_path / "cut"
    cut.write_bytes(data[:len(data) // 2])
    r = run_pmprof("threads", "--core", cut, "--exe", exe)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stdout.strip().splitlines()) == 12
    r = run_pmprof("stacks", "--core", cut, "--exe", exe)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr


def test_core_without_and_with_wrong_executable(tmp_path):
    exe = tmp_path / "threads-copy"
    shutil.copy(os.path.join(TARGETS, "threads"), exe)
    p = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "READY"
        core = gcore(p.pid, tmp_path)
    finally:
        p.kill()
        p.wait()
    os.unlink(exe)
    r = run_pmprof("stacks", "--core", core)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
    assert "warning: no usable file for '%s'" % exe in r.stderr
    assert "threads-copy+0x" in r.stdout        # module+offset frames
    # the wrong executable: its build-id does not match the core's
    r = run_pmprof("stacks", "--core", core, "--exe", os.path.join(TARGETS, "cxx"))
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
    assert "block_inner" not in r.stdout


def test_hostile_cores_for_locks_and_heap(tmp_path):
    """Kernel cores (notes first) cut in their memory, and with bytes
    flipped across the memory: locks and heap must end with a report or
    one clear line, never a traceback, a hang or a crash."""
    import random
    from conftest import kernel_core
    out = []
    core, exe = kernel_core("mallocs", tmpdir=tmp_path, stdout=out)
    data = bytearray(open(core, "rb").read())
    rng = random.Random(1234)
    variants = {"cut%d" % i: bytes(data[:int(len(data) * f)])
                for i, f in enumerate((0.2, 0.5, 0.8))}
    for i in range(4):
        d = bytearray(data)
        for _ in range(2000):
            d[rng.randrange(len(d) // 8, len(d))] = rng.randrange(256)
        variants["flip%d" % i] = bytes(d)
    for name, blob in variants.items():
        path = tmp_path / name
        path.write_bytes(blob)
        for cmd in (("heap",), ("heap", "check"), ("locks",), ("hang",)):
            r = run_pmprof(*cmd, "--core", path, "--exe", exe, timeout=60)
            assert "Traceback" not in r.stderr, (name, cmd, r.stderr)
            assert r.returncode in (0, 1, 2, 3, 4), (name, cmd, r.returncode, r.stderr)
            if r.returncode == 2:
                assert len([x for x in r.stderr.splitlines() if x.strip()]) == 1, r.stderr
        os.unlink(path)
