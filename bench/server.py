#!/usr/bin/env python3
"""pmprof record on a real server: PostgreSQL under pgbench.  Prints figures,
asserts nothing (not part of `make test`).

Starts a private PostgreSQL cluster (initdb in a temporary directory, owned
by the `postgres` user when run as root; 127.0.0.1 on a free port; fsync
off), fills it with `pgbench -i -s SCALE`, then:

  1. throughput: `pgbench -S` (select-only: the server's CPU, not the disk)
     with CLIENTS clients for a fixed time; after WARM s one backend (the
     busiest of the pgbench connections) is sampled for DUR s by no tool,
     `bin/pmprof record -F HZ` or `perf record -g -F HZ`, interleaved, ROUNDS
     rounds.  Throughput = pgbench's per-second progress lines
     (--progress-timestamp) inside the tool's window; slowdown against the
     mean of the no-tool runs.
  2. profile: pmprof and `perf record -g -e cpu-clock` attached to the
     same backend at the same time, for the same DUR s at -F PHZ: the top
     CPU functions of each, side by side, with the difference in points.
     The function is a sample's innermost user-space frame: pmprof
     charges a tick in a system call to the user stack that made the call
     (it has no kernel frames); perf's kernel frames are skipped the same
     way.  (Until 2026-12-07 pmprof sampled user mode only and this
     compared it with `cpu-clock:u`.)

Usage: python3 bench/server.py [--clients 4] [--rounds 3] [--duration 8]
       [--hz 99] [--profile-hz 499] [--scale 10] [--top 10]
Needs PostgreSQL (/usr/lib/postgresql/*/bin), pgbench, perf, `make build`.
"""

import argparse
import glob
import json
import math
import os
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PMPROF = os.path.join(ROOT, "bin", "pmprof")


def pg_bin():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(re.sub(r"\D", "", d.split("/")[-2]) or 0))
    if not dirs:
        raise SystemExit("bench/server.py: no /usr/lib/postgresql/*/bin")
    return dirs[-1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Cluster:
    def __init__(self, scale):
        self.bin = pg_bin()
        self.tmp = tempfile.mkdtemp(prefix="pmprof-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.pg(["initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"])
        opts = ("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off "
                "-c synchronous_commit=off -c shared_buffers=128MB -c max_connections=50"
                % (self.port, self.tmp))
        self.pg(["pg_ctl", "-D", self.data, "-l", os.path.join(self.tmp, "log"),
                 "-o", opts, "-w", "start"])
        self.conn = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        subprocess.run(["pgbench", "-i", "-q", "-s", str(scale)] + self.conn + ["postgres"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def pg(self, argv):
        r = subprocess.run(self.as_user + [os.path.join(self.bin, argv[0])] + argv[1:],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           cwd=self.tmp)
        if r.returncode != 0:
            raise SystemExit("bench/server.py: %s failed:\n%s" % (argv[0], r.stdout[-2000:]))
        return r.stdout

    def sql(self, q):
        r = subprocess.run(["psql", "-At", "-c", q] + self.conn + ["postgres"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        return r.stdout

    def version(self):
        return self.sql("SHOW server_version").strip()

    def close(self):
        try:
            self.pg(["pg_ctl", "-D", self.data, "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            p = f.read().rsplit(")", 1)[1].split()
        return int(p[11]) + int(p[12])
    except OSError:
        return -1


class Load:
    """pgbench -S in the background with per-second progress lines."""

    def __init__(self, cl, clients, seconds):
        self.p = subprocess.Popen(
            ["pgbench", "-S", "-n", "-c", str(clients), "-j", str(min(clients, 2)),
             "-T", str(int(math.ceil(seconds))), "-P", "1", "--progress-timestamp"]
            + cl.conn + ["postgres"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stderr:
            m = re.match(r"progress: ([\d.]+) s, ([\d.]+) tps", line)
            if m:
                self.lines.append((float(m.group(1)), float(m.group(2))))

    def wait(self):
        self.p.wait()
        self.t.join(timeout=10)

    def tps(self, a, b):
        """Mean tps of the progress seconds wholly inside [a, b] (epoch s)."""
        v = [tps for (t, tps) in self.lines if a <= t - 1.0 and t <= b + 0.05]
        return statistics.mean(v) if v else float("nan")


def busiest_backend(cl):
    t_end = time.monotonic() + 15
    while True:
        pids = [int(x) for x in cl.sql("SELECT pid FROM pg_stat_activity "
                                       "WHERE application_name = 'pgbench'").split()]
        if pids or time.monotonic() > t_end:
            break
        time.sleep(0.2)
    if not pids:
        raise SystemExit("bench/server.py: no pgbench backend found")
    a = {p: cpu_ticks(p) for p in pids}
    time.sleep(0.5)
    return max(pids, key=lambda p: cpu_ticks(p) - a[p])


def run_pmprof(pid, hz, dur, tmp, top=40):
    r = subprocess.run([PMPROF, "record", "-p", str(pid), "-F", str(hz), "-d", str(dur),
                        "--top", str(top), "-o", os.path.join(tmp, "pg.pb.gz"), "--json", "-q"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=dur + 300)
    if r.returncode not in (0, 1):
        print("bin/pmprof failed: %s" % r.stderr.strip()[-500:], file=sys.stderr)
        return None
    return json.loads(r.stdout)


def run_perf(pid, hz, dur, tmp, event=None):
    data = os.path.join(tmp, "perf.data")
    cmd = ["perf", "record", "-q", "-g", "-F", str(hz), "-o", data]
    if event:
        cmd += ["-e", event]
    r = subprocess.run(cmd + ["-p", str(pid), "--", "sleep", str(dur)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=dur + 300)
    if r.returncode != 0:
        print("perf record failed: %s" % r.stderr.strip()[-500:], file=sys.stderr)
        return None
    return data


def canon(fn):
    """One name for glibc's aliases: pmprof names a function by its DWARF
    name (__GI___libc_read, __GI___poll), perf by its ELF symbol (read,
    __poll)."""
    fn = re.sub(r"^__GI_", "", fn)
    return re.sub(r"^_*(libc_)?", "", fn) or fn


def perf_leaf_shares(data):
    """{canon(symbol): % of samples} by the innermost user-space frame of
    each sample's call chain (kernel frames skipped), from perf script."""
    r = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                       timeout=300)
    counts, n = {}, 0
    for block in r.stdout.split("\n\n"):
        for line in block.strip().splitlines():
            m = re.match(r"\s*[0-9a-f]+\s+(.+?)\s+\((.*)\)\s*$", line)
            if not m or m.group(2).startswith("[kernel"):
                continue
            fn = canon(re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)))
            counts[fn] = counts.get(fn, 0) + 1
            n += 1
            break
    return {k: 100.0 * v / n for k, v in counts.items()} if n else {}


def throughput(cl, a, tmp):
    print("\n## 1. Throughput: pgbench -S, %d clients, one backend sampled %g s at %g Hz, "
          "%d rounds (interleaved)" % (a.clients, a.duration, a.hz, a.rounds))
    print()
    print("| round | tool | backend | tps in the window | tool CPU % | samples |")
    print("|---|---|---|---|---|---|")
    res = {}
    tools = ["none", "bin/pmprof", "perf record -g"]
    for rnd in range(1, a.rounds + 1):
        for tool in tools:
            ld = Load(cl, a.clients, a.warm + a.duration + 2)
            time.sleep(a.warm - 0.5)
            pid = busiest_backend(cl)
            ru0 = os.times()
            t0 = time.time()
            samples = "-"
            if tool == "none":
                time.sleep(a.duration)
            elif tool == "bin/pmprof":
                d = run_pmprof(pid, a.hz, a.duration, tmp)
                if d:
                    samples = "%d CPU" % d["stats"].get("cpu_samples", 0)
            else:
                data = run_perf(pid, a.hz, a.duration, tmp)
                if data:
                    samples = "perf"
            t1 = time.time()
            ru1 = os.times()
            ld.wait()
            tool_cpu = ((ru1.children_user + ru1.children_system)
                        - (ru0.children_user + ru0.children_system)) / (t1 - t0)
            tps = ld.tps(t0, t1)
            res.setdefault(tool, []).append(tps)
            print("| %d | %s | %d | %.0f | %.1f | %s |" % (rnd, tool, pid, tps,
                                                            100 * tool_cpu, samples))
            sys.stdout.flush()
    base = statistics.mean(res["none"])
    print("\n| tool | runs | tps mean | sd | slowdown % vs no tool (min..max) |")
    print("|---|---|---|---|---|")
    for tool in tools:
        v = res[tool]
        sl = [100 * (1 - x / base) for x in v]
        print("| %s | %d | %.0f | %.0f | %.1f (%.1f..%.1f) |" % (
            tool, len(v), statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0,
            statistics.mean(sl), min(sl), max(sl)))
    sys.stdout.flush()


def profile(cl, a, tmp):
    print("\n## 2. CPU profile of one backend: pmprof and perf attached together, "
          "%g s at %g Hz, pgbench -S %d clients" % (a.duration, a.profile_hz, a.clients))
    ld = Load(cl, a.clients, a.warm + a.duration + 3)
    time.sleep(a.warm - 0.5)
    pid = busiest_backend(cl)
    holder = {}
    th = threading.Thread(target=lambda: holder.update(
        data=run_perf(pid, a.profile_hz, a.duration, tmp, "cpu-clock")))
    th.start()
    d = run_pmprof(pid, a.profile_hz, a.duration, tmp)
    th.join()
    ld.wait()
    if not d or not holder.get("data"):
        print("a tool failed")
        return
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        shutil.copy(holder["data"], a.keep)
        shutil.copy(os.path.join(tmp, "pg.pb.gz"), a.keep)
    perf = perf_leaf_shares(holder["data"])
    tot = sum(t["cpu_ns"] for t in d["threads"]) or 1
    pm, shown = {}, {}
    for r in d["top_cpu"]:
        fn = canon(r["function"])
        shown.setdefault(fn, r["function"])
        pm[fn] = pm.get(fn, 0.0) + 100.0 * r["cpu_ns"] / tot
    st = d["stats"]
    print("backend %d; pmprof: method %s, %d CPU samples (kernel-mode ticks %s); perf: "
          "cpu-clock, innermost user-space frame" % (
              pid, st["method"], st.get("cpu_samples", 0),
              "counted" if st.get("perf_kernel") else "not counted"))
    print()
    print("| # | pmprof function | pmprof % | perf % | diff (points) | | perf function | perf % |")
    print("|---|---|---|---|---|---|---|---|")
    pt = sorted(pm.items(), key=lambda x: -x[1])[:a.top]
    ft = sorted(perf.items(), key=lambda x: -x[1])[:a.top]
    worst = 0.0
    for i in range(a.top):
        left = right = ""
        if i < len(pt):
            fn, v = pt[i]
            pv = perf.get(fn, 0.0)
            worst = max(worst, abs(v - pv))
            left = "%s | %.1f | %.1f | %+.1f" % (shown[fn], v, pv, v - pv)
        else:
            left = " | | | "
        if i < len(ft):
            right = "%s | %.1f" % ft[i]
        else:
            right = " | "
        print("| %d | %s | | %s |" % (i + 1, left, right))
    print("\nlargest difference over pmprof's top %d: %.1f points" % (a.top, worst))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds sampled")
    ap.add_argument("--warm", type=float, default=2.0, help="seconds of load before")
    ap.add_argument("--hz", type=int, default=99)
    ap.add_argument("--profile-hz", type=int, default=499)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--only", choices=("throughput", "profile"))
    ap.add_argument("--keep", metavar="DIR",
                    help="profile: keep pmprof's pg.pb.gz and perf's perf.data in DIR")
    a = ap.parse_args()
    for tool in ("pgbench", "psql", "perf"):
        if not shutil.which(tool):
            raise SystemExit("bench/server.py: %s not found" % tool)
    if not os.path.exists(PMPROF):
        raise SystemExit("bench/server.py: run `make build` first")
    t_start = time.monotonic()
    cl = Cluster(a.scale)
    try:
        print("# pmprof record on PostgreSQL %s under pgbench: %s, %d CPUs, kernel %s"
              % (cl.version(), time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(),
                 os.uname().release))
        print("`%s`" % " ".join(["python3 bench/server.py"] + sys.argv[1:]))
        with tempfile.TemporaryDirectory(prefix="pmprof-pgbench-") as tmp:
            if a.only in (None, "throughput"):
                throughput(cl, a, tmp)
            if a.only in (None, "profile"):
                profile(cl, a, tmp)
    finally:
        cl.close()
    print("\n(bench wall time %.0f s)" % (time.monotonic() - t_start))


if __name__ == "__main__":
    main()
