"""The ELF core backend (ext/target/target-core.c), through tests/unit/test-core.

Two cores: one gcore makes of a live child (test-core's own self-test,
which also compares the core with the child's /proc/PID/mem), and one the
kernel writes when a child calls abort().  Both then go through test-core's
error paths, crafted hostile variants and truncation/byte-flip loop.
"""

from __future__ import annotations

import glob
import os
import re
import resource
import shutil
import signal
import subprocess
import warnings
from pathlib import Path

import pytest
from conftest import core_glob, core_pattern, ptrace_skip_reason

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
SKIP = 77
# The sources test-core needs when the whole library does not build.
DIRECT_SRCS = ["tests/unit/test-core.c", "ext/target/target-core.c", "ext/base/util.c", "ext/base/error.c"]
DIRECT_FLAGS = [
    "-std=gnu11", "-g", "-O2", "-Wall", "-Wextra", "-Werror",
    "-Wdeclaration-after-statement", "-Wshadow", "-Wvla", "-Iext/base", "-Iext/target", "-Itests/unit",
]  # fmt: skip


@pytest.fixture(scope="module")
def test_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/unit/test-core from make; if the library does not build yet,
    test-core compiled from its four sources (with a warning)."""
    made = subprocess.run(
        ["make", "-C", str(ROOT), "--no-print-directory", "build/unit/test-core"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if made.returncode == 0:
        return ROOT / "build" / "unit" / "test-core"
    out = tmp_path_factory.mktemp("bin") / "test-core"
    cc = os.environ.get("CC", "cc")
    direct = subprocess.run(
        [cc, *DIRECT_FLAGS, *DIRECT_SRCS, "-ldw", "-lelf", "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert direct.returncode == 0, f"cannot build test-core:\n{made.stderr}\n{direct.stderr}"
    warnings.warn(
        "make build/unit/test-core failed, so test-core was built from "
        f"{' '.join(DIRECT_SRCS)}:\n{made.stderr[-1500:]}",
        stacklevel=1,
    )
    return out


def run_test_core(binary: Path, *args: str) -> str:
    """Run test-core; skip on exit 77, else require exit 0 and the summary."""
    res = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120)
    lines = res.stdout.strip().splitlines()
    if res.returncode == SKIP:
        pytest.skip(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "test-core skipped")
    assert res.returncode == 0, f"test-core {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    assert lines, "test-core printed nothing"
    m = SUMMARY.match(lines[-1])
    assert m, f"last line is not 'N passed, M failed': {lines[-1]!r}"
    assert int(m.group(2)) == 0 and int(m.group(1)) > 50, lines[-1]
    return res.stdout


def test_gcore_core(test_core: Path) -> None:
    if shutil.which("gcore") is None:
        pytest.skip("gcore (from gdb) is not installed")
    reason = ptrace_skip_reason()
    if reason:
        pytest.skip(reason)
    run_test_core(test_core)


def allow_cores() -> None:
    """preexec_fn: raise RLIMIT_CORE as far as the hard limit allows."""
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def test_kernel_core(test_core: Path, tmp_path: Path) -> None:
    pattern = core_pattern()
    if pattern.startswith("|"):
        pytest.skip(f"core_pattern pipes cores to a helper ({pattern}), not to a file")
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    if hard != resource.RLIM_INFINITY and hard < (64 << 20):
        pytest.skip(f"the hard RLIMIT_CORE ({hard} bytes) is too small for a core")
    magic = 0x706D7072_6F66_1234
    child = subprocess.run(
        [str(test_core), "--abort", str(magic)],
        cwd=tmp_path, preexec_fn=allow_cores, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert child.returncode == -signal.SIGABRT, f"child exited {child.returncode}: {child.stderr}"
    tids = re.findall(r"^tid (\d+)$", child.stdout, re.M)
    pid = re.search(r"^pid (\d+)$", child.stdout, re.M)
    magic_at = re.search(r"^global (0x[0-9a-f]+) (0x[0-9a-f]+)$", child.stdout, re.M)
    rodata = re.search(r"^rodata (0x[0-9a-f]+)$", child.stdout, re.M)
    assert len(tids) == 2 and pid and magic_at and rodata, child.stdout
    assert int(magic_at.group(2), 16) == magic
    uses_pid = Path("/proc/sys/kernel/core_uses_pid").read_text().strip() == "1"
    where = core_glob(pattern, int(pid.group(1)), str(test_core), uses_pid)
    cores = [f for f in glob.glob(str(tmp_path / where)) if os.path.isfile(f)]
    assert cores, f"no core matches {where} (core_pattern {pattern!r})"
    out = run_test_core(
        test_core,
        "-g", f"{magic_at.group(1)}={magic_at.group(2)}",
        "-r", rodata.group(1),
        "-p", pid.group(1),
        "-x", "1",
        cores[0], *tids,
    )  # fmt: skip
    # The kernel writes its notes first: real truncations past them must open.
    m = re.search(r"^robustness: (\d+) truncations \((\d+) opened\)", out, re.M)
    assert m and int(m.group(2)) > 0, out
