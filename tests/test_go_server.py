"""pmprof goroutines on a real Go server as Debian ships it: trixie's
prometheus (built by Debian's golang-1.24, stripped, cgo, external
linking), compared with its own /debug/pprof/goroutine?debug=2.

The package is fetched once into the versions cache with tools/versions.py's
private apt configuration (skip without the archive, fail under CI, as
tests/versions.py does).  A server's goroutines come and go, so the
comparison is over the goroutines that two dumps of the server, one just
before and one just after pmprof's read, show alike (same header, same
frames): those must be exactly what pmprof prints, frame for frame
(function, file:line, +0x..), with `created by F in goroutine N`.

Must not: hard-code anything about prometheus's goroutines; only that the
server has some goroutines that stay put (at least 10).
"""

import fcntl
import json
import importlib.util
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import require_ptrace, run_pmprof
from gotargets import parse_debug2
from helpers import ROOT

pytestmark = [require_ptrace]

PACKAGE = "prometheus"
SUITE = "trixie"


def fetch_server():
    """usr/bin/prometheus of trixie's package, extracted under the cache."""
    spec = importlib.util.spec_from_file_location(
        "pmprof_tools_versions", os.path.join(ROOT, "tools", "versions.py"))
    tool = importlib.util.module_from_spec(spec)     # tools/versions.py
    spec.loader.exec_module(tool)
    root = os.path.join(tool.cache_dir(), "servers", "%s-%s" % (PACKAGE, SUITE))
    exe = os.path.join(root, "usr", "bin", "prometheus")
    if os.path.exists(exe):
        return exe
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with open(root + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(exe):
            return exe
        try:
            apt = tool.Apt(tool.cache_dir())
            apt.update()
            ver = apt.candidates([PACKAGE], SUITE).get(PACKAGE)
            if not ver:
                raise tool.Unreachable("%s has no %s" % (SUITE, PACKAGE))
            dl = root + ".deb.d"
            shutil.rmtree(dl, ignore_errors=True)
            os.makedirs(dl)
            apt.download(["%s=%s" % (PACKAGE, ver)], dl)
            (deb,) = [os.path.join(dl, f) for f in os.listdir(dl) if f.endswith(".deb")]
            tmp = root + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            subprocess.run(["dpkg", "-x", deb, tmp], check=True)
            os.rename(tmp, root)
            shutil.rmtree(dl, ignore_errors=True)
        except tool.Unreachable as e:
            if os.environ.get("CI"):
                pytest.fail("cannot fetch %s: %s" % (PACKAGE, e))
            pytest.skip("cannot fetch %s: %s" % (PACKAGE, e))
    return exe


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


@pytest.fixture
def server(tmp_path):
    exe = fetch_server()
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1h\n")
    base = "http://127.0.0.1:%d" % port
    p = subprocess.Popen([exe, "--config.file=%s" % cfg, "--storage.tsdb.path=%s" %
                          (tmp_path / "data"), "--web.listen-address=127.0.0.1:%d" % port],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(tmp_path / "log", "w"))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if "Ready" in get(base + "/-/ready"):
                    break
            except OSError:
                pass
            assert p.poll() is None, (tmp_path / "log").read_text()[-2000:]
            assert time.monotonic() < deadline, "prometheus not ready in 30 s"
            time.sleep(0.2)
        yield p, base
    finally:
        p.kill()
        p.wait()


def frames(g):
    return [(f.function, f.file, f.line, f.offset) for f in g.frames]


def created(g):
    cb = g.created_by
    return cb and (cb.function, cb.file, cb.line, cb.offset, g.created_in)


def test_goroutines_of_debian_prometheus(server):
    p, base = server
    url = base + "/debug/pprof/goroutine?debug=2"
    before = parse_debug2(get(url))
    r = run_pmprof("goroutines", "-p", p.pid)
    after = parse_debug2(get(url))
    assert r.returncode == 0, r.stderr
    mine = parse_debug2(r.stdout)
    stable = [g for g in before if g in after and before[g].header == after[g].header and
              frames(before[g]) == frames(after[g])]
    assert len(stable) >= 10, (len(before), len(after), len(stable))
    for goid in stable:
        want = before[goid]
        assert goid in mine, goid
        got = mine[goid]
        assert (got.header, got.locked) == (want.header, want.locked), (goid, got, want)
        assert frames(got) == frames(want), (goid, frames(got), frames(want))
        assert created(got) == created(want), (goid, created(got), created(want))
    # nothing pmprof shows that neither dump had (a goroutine that lived
    # only during pmprof's read is possible: none in an idle server)
    assert set(mine) <= set(before) | set(after), sorted(set(mine) - set(before) - set(after))
    assert p.poll() is None


def metrics(base):
    out = {}
    for ln in get(base + "/metrics").splitlines():
        if ln and not ln.startswith("#"):
            name, _, val = ln.rpartition(" ")
            out[name] = float(val)
    return out


def test_go_memstats_and_sched_of_debian_prometheus(server):
    """`go memstats`/`go sched` against the server's own Go collector
    (/metrics: runtime.ReadMemStats, runtime/metrics, the threadcreate
    profile), read before and after pmprof: where the two reads agree,
    pmprof says the same."""
    p, base = server
    for _ in range(5):
        m0 = metrics(base)
        ms = json.loads(run_pmprof("go", "memstats", "-p", p.pid, "--format", "json").stdout)
        sc = json.loads(run_pmprof("go", "sched", "-p", p.pid, "--format", "json").stdout)
        m1 = metrics(base)
        keys = ["go_gc_duration_seconds_count", "go_memstats_last_gc_time_seconds",
                "go_threads", "go_gc_gogc_percent", "go_sched_gomaxprocs_threads"]
        if all(m0.get(k) == m1.get(k) for k in keys):
            break
    else:
        pytest.skip("the server's Go figures kept changing")
    assert ms["go_version"] == sc["go_version"]
    assert ms["NumGC"] == m0["go_gc_duration_seconds_count"]
    assert abs(ms["LastGC"] / 1e9 - m0["go_memstats_last_gc_time_seconds"]) < 1e-6
    assert ms["GCPercent"] == m0["go_gc_gogc_percent"]
    assert sc["gomaxprocs"] == m0["go_sched_gomaxprocs_threads"]
    assert sc["ms"] == m0["go_threads"], (sc, m0["go_threads"])
