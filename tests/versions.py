"""The version matrix from the test side: glibc and Go releases other
than this machine's, fetched by tools/versions.py, and the test targets
built against each of them.

Owns: asking tools/versions.py for the cache (fetching once a run),
building a C target against one glibc (its headers, link files, loader
and RUNPATH: the program then runs on that glibc by itself) and a Go
target with one Go toolchain, each cached by the hash of its source and
flags under the versions cache, so a second run builds nothing.

Policy: where the archive cannot be reached, the matrix's tests skip
with the reason; under CI (CI=true) they fail, since CI must run the
whole matrix.

Must not: import gdb or pmprof, or know what any test expects: the
expectations are keyed on the version read from the target.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import pytest

from helpers import ROOT, TARGETS_SRC

TOOL = os.path.join(ROOT, "tools", "versions.py")

_entries: Optional[List[dict]] = None
_error: Optional[str] = None


def _load() -> List[dict]:
    """Every entry of the manifest, fetched (once a test run)."""
    global _entries, _error
    if _entries is None and _error is None:
        r = subprocess.run([sys.executable, TOOL, "fetch", "all"],
                           capture_output=True, text=True, timeout=1800)
        if r.returncode == 0:
            _entries = json.loads(r.stdout)
        else:
            _error = (r.stderr.strip().splitlines() or ["tools/versions.py failed"])[-1]
    if _entries is None:
        if os.environ.get("CI"):
            pytest.fail("version matrix unavailable in CI: %s" % _error)
        pytest.skip("version matrix unavailable: %s" % _error)
    return _entries


def cache_root() -> str:
    r = subprocess.run([sys.executable, "-c",
                        "import sys; sys.path.insert(0, %r); import versions; "
                        "print(versions.cache_dir())" % os.path.dirname(TOOL)],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def glibcs() -> List[dict]:
    """The glibc entries: name, version, libdir, loader, debug_dir, cflags."""
    return [e for e in _load() if e["kind"] == "glibc"]


def gos() -> List[dict]:
    """The Go entries: name, version, goroot, go."""
    return [e for e in _load() if e["kind"] == "go"]


def entry(name: str) -> dict:
    for e in _load():
        if e["name"] == name:
            return e
    pytest.fail("no %s in the version cache" % name)


# Names for parametrize, without fetching at collection time.
GLIBC_NAMES = ["glibc-2.31", "glibc-2.36", "glibc-2.41", "glibc-2.43"]
GO_NAMES = ["go-1.19", "go-1.21", "go-1.22", "go-1.23", "go-1.24", "go-1.26"]
GO_BEYOND = "go-1.27"       # newer than every table: the "unknown version" case


def _digest(parts: Sequence) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, str) and os.path.isfile(p):
            with open(p, "rb") as f:
                h.update(f.read())
        else:
            h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _cached_build(kind: str, name: str, key: Sequence, build) -> str:
    """build(out) once per key; the result kept under the cache."""
    d = os.path.join(cache_root(), "builds", kind)
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, "%s-%s" % (name, _digest(key)))
    if os.path.exists(out):
        return out
    with open(out + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(out):
            tmp = out + ".tmp"
            build(tmp)
            os.rename(tmp, out)
    return out


def build_c(glibc: dict, src: str, name: str, flags: Sequence[str] = (),
            cc: str = "cc") -> str:
    """tests/targets/<src> built against this glibc; flags as the
    targets Makefile's (e.g. ["-O1", "-g", "-pthread"])."""
    path = os.path.join(TARGETS_SRC, src)
    hdr = os.path.join(TARGETS_SRC, "common.h")
    argv = [cc] + list(glibc["cflags"]) + list(flags) + ["-Wl,--build-id"]

    def build(out):
        r = subprocess.run(argv + ["-o", out, path], capture_output=True, text=True,
                           cwd=TARGETS_SRC, timeout=300)
        if r.returncode != 0:
            pytest.fail("building %s against %s failed:\n%s" % (src, glibc["name"],
                                                               r.stderr[-3000:]))

    return _cached_build(glibc["name"], name,
                         [glibc["packages"], argv, path, hdr], build)


def go_env(go: dict) -> Dict[str, str]:
    """The environment a Go toolchain of the cache builds in: its own
    GOROOT, caches under the versions cache, nothing downloaded."""
    base = os.path.join(cache_root(), "gocache", go["name"])
    env = dict(os.environ)
    for k in [k for k in env if k.startswith("GO")]:
        del env[k]
    env.update(GOROOT=go["goroot"], GOCACHE=os.path.join(base, "build"),
               GOPATH=os.path.join(base, "path"), HOME=os.path.join(base, "home"),
               GOTOOLCHAIN="local", GO111MODULE="off", GOFLAGS="", GOPROXY="off",
               PATH=os.path.join(go["goroot"], "bin") + ":" + os.environ.get("PATH", ""))
    return env


def build_go(go: dict, src: str, name: str, ldflags: str = "", cgo: bool = True,
             gcflags: str = "") -> str:
    """tests/targets/<src> built with this Go toolchain."""
    path = os.path.join(TARGETS_SRC, src)
    argv = [go["go"], "build"]
    if ldflags:
        argv.append("-ldflags=" + ldflags)
    if gcflags:
        argv.append("-gcflags=" + gcflags)
    env = go_env(go)
    env["CGO_ENABLED"] = "1" if cgo else "0"

    def build(out):
        r = subprocess.run(argv + ["-o", out, path], capture_output=True, text=True,
                           cwd=TARGETS_SRC, env=env, timeout=900)
        if r.returncode != 0:
            pytest.fail("building %s with %s failed:\n%s" % (src, go["name"],
                                                            r.stderr[-3000:]))

    return _cached_build(go["name"], name, [go["packages"], argv, cgo, path], build)


def go_tool(go: dict, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    """`go <args>` of this toolchain (e.g. tool pprof)."""
    return subprocess.run([go["go"]] + list(args), capture_output=True, text=True,
                          env=go_env(go), timeout=timeout)


def clean_builds():
    shutil.rmtree(os.path.join(cache_root(), "builds"), ignore_errors=True)
