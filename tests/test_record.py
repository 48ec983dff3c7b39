"""pmprof record: the sampling profiler, standalone and in gdb.

Targets: tests/targets/workload.c (a thread burning 70 % / 30 % of its CPU
in two known functions, a thread blocked in read(), main in join; and a
"churn" mode that creates and joins threads, dlopens a library and exits
by itself).  Every file written is checked by a consumer: go tool pprof,
json + the format's rules (speedscope, Chrome trace), the folded grammar.
"""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ENV, PMPROF, TARGETS, gcore, gdb_run, pprof_raw, run_pmprof, wait_until

# Sample counts and CPU shares depend on the CPU the target gets: these
# run in make test's serial pass (conftest.py's `serial` marker).
pytestmark = pytest.mark.serial

FMT_FILES = ("rec.pb.gz", "rec.folded", "rec.speedscope.json", "rec.json")


# ---- readers of what we wrote ------------------------------------------------


def parse_raw(text):
    """`go tool pprof -raw` -> (types, samples, locations): samples are
    (values, [location ids], {label: value}); locations map an id to its
    function names, innermost (inlined) first."""
    types, samples, locs = [], [], {}
    section = None
    for line in text.splitlines():
        if line.startswith("Samples:"):
            section = "samples"
            continue
        if line.startswith("Locations"):
            section = "locations"
            continue
        if line.startswith("Mappings"):
            section = None
            continue
        if section == "samples":
            if not types and line.strip() and ":" not in line.split()[0]:
                types = [t.replace("[dflt]", "") for t in line.split()]
                continue
            m = re.match(r"^\s+([-\d ]+):\s*([\d ]*)$", line)
            if m:
                vals = [int(x) for x in m.group(1).split()]
                samples.append((vals, [int(x) for x in m.group(2).split()], {}))
                continue
            for k, v in re.findall(r"(\w+):\[([^\]]*)\]", line):
                if samples:
                    samples[-1][2][k] = v
        elif section == "locations":
            m = re.match(r"^\s+(\d+): 0x[0-9a-f]+ M=\d+ (\S+)", line)
            if m:
                cur = int(m.group(1))
                locs[cur] = [m.group(2)]
                continue
            m = re.match(r"^\s{10,}(\S+) ", line)
            if m and locs:
                locs[cur].append(m.group(1))
    return types, samples, locs


def sample_functions(sample, locs):
    out = []
    for lid in sample[1]:
        out.extend(locs.get(lid, []))
    return out


def check_folded(path):
    """Collapsed-stack grammar; returns {stack: count}."""
    out = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^(\S.*) (\d+)\n$", line)
            assert m, "bad folded line %r" % line
            frames = m.group(1).split(";")
            assert all(frames), line
            assert m.group(1) not in out, "duplicate stack line %r" % line
            out[m.group(1)] = int(m.group(2))
    return out


def check_speedscope(path):
    with open(path) as f:
        doc = json.load(f)
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    assert frames and all(isinstance(fr["name"], str) and fr["name"] for fr in frames)
    assert 0 <= doc["activeProfileIndex"] < len(doc["profiles"])
    for p in doc["profiles"]:
        assert p["type"] == "sampled" and p["unit"] == "nanoseconds"
        assert len(p["samples"]) == len(p["weights"]) > 0
        assert all(0 <= i < len(frames) for s in p["samples"] for i in s)
        assert all(w >= 0 for w in p["weights"])
        assert p["endValue"] - p["startValue"] == sum(p["weights"])
    return doc


SPEEDSCOPE_SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "build", "npm", "node_modules", "speedscope", "dist",
                                 "release", "file-format-schema.json")


def test_speedscope_file_passes_speedscopes_own_schema(target, tmp_path):
    """The JSON Schema speedscope ships (fetched by `make consumers`)."""
    jsonschema = pytest.importorskip("jsonschema")
    if not os.path.exists(SPEEDSCOPE_SCHEMA):
        pytest.skip("speedscope's schema is not fetched (npm unavailable): %s"
                    % SPEEDSCOPE_SCHEMA)
    t = target("workload")
    out = tmp_path / "s.speedscope.json"
    run_pmprof("record", "-p", t.pid, "-F", 200, "-d", 0.5, "-q", "-o", out, check=True)
    with open(SPEEDSCOPE_SCHEMA) as f:
        schema = json.load(f)
    with open(out) as f:
        doc = json.load(f)
    jsonschema.validate(doc, schema)
    bad = dict(doc, profiles=[dict(doc["profiles"][0], type="nonsense")])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def check_chrome(path):
    """JSON, B/E balanced and nested per track, timestamps monotonic per
    track, X with dur >= 0, a thread_name for every track with events."""
    with open(path) as f:
        doc = json.load(f)
    evs = doc["traceEvents"]
    names, depth, last, seen = {}, {}, {}, set()
    for e in evs:
        assert {"ph", "pid", "tid"} <= set(e), e
        key = (e["pid"], e["tid"])
        if e["ph"] == "M":
            if e["name"] == "thread_name":
                names[key] = e["args"]["name"]
            continue
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        assert e["ts"] >= last.get(key, 0), "time goes back on %r" % (key,)
        last[key] = e["ts"]
        seen.add(key)
        if e["ph"] == "B":
            assert e["name"]
            depth[key] = depth.get(key, 0) + 1
        elif e["ph"] == "E":
            depth[key] = depth.get(key, 0) - 1
            assert depth[key] >= 0, "E without B on %r" % (key,)
        elif e["ph"] == "X":
            assert e["dur"] >= 0 and e["name"]
        else:
            raise AssertionError("unexpected event %r" % e)
    assert all(d == 0 for d in depth.values()), depth
    assert seen <= set(names), seen - set(names)
    return doc, names


def check_all(tmp_path, summary):
    """Validate the four files of a run; cross-check their totals."""
    types, samples, locs = parse_raw(pprof_raw(tmp_path / "rec.pb.gz"))
    assert types == ["samples/count", "wall/nanoseconds", "cpu/nanoseconds"]
    total = summary["stats"]["thread_samples"] + summary["stats"]["lost"]
    assert sum(s[0][0] for s in samples) == total
    for s in samples:
        assert {"tid", "state"} <= set(s[2]), s
        assert s[2]["state"] in ("running", "sleeping", "stopped", "lost")
    folded = check_folded(tmp_path / "rec.folded")
    assert sum(folded.values()) == total
    ss = check_speedscope(tmp_path / "rec.speedscope.json")
    assert sum(len(p["samples"]) for p in ss["profiles"]) == total
    check_chrome(tmp_path / "rec.json")
    return samples, locs, folded


def record_args(tmp_path, *extra):
    args = ["record", "--json", "-q"]
    for f in FMT_FILES:
        args += ["-o", str(tmp_path / f)]
    return args + [str(a) for a in extra]


def summary_of(r):
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "pmprof.record/1"
    return doc


def share(samples, locs, a, b, idx=2):
    va = sum(s[0][idx] for s in samples if a in sample_functions(s, locs))
    vb = sum(s[0][idx] for s in samples if b in sample_functions(s, locs))
    assert va + vb > 0
    return 100.0 * va / (va + vb)


def perf_share(pid, tid, seconds=2.0):
    """Share of burn_seventy vs burn_thirty in `perf record -g` samples of
    one thread, or None when perf cannot sample here."""
    perf = shutil.which("perf")
    if not perf:
        return None
    data = "/tmp/pmprof-test-perf.%d.data" % os.getpid()
    try:
        r = subprocess.run([perf, "record", "-q", "-e", "cpu-clock", "-F", "499", "-g",
                            "-t", str(tid), "-o", data, "--", "sleep", str(seconds)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=120)
        if r.returncode != 0:
            return None
        r = subprocess.run([perf, "script", "-i", data, "-F", "tid,ip,sym"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           timeout=120)
    finally:
        if os.path.exists(data):
            os.unlink(data)
    a = b = 0
    for block in r.stdout.split("\n\n"):
        if "burn_seventy" in block:
            a += 1
        elif "burn_thirty" in block:
            b += 1
    if a + b < 200:
        return None
    return 100.0 * a / (a + b)


# ---- accuracy and files ----------------------------------------------------------


def _cruncher_truth(t):
    """The workload's own (ns in burn_seventy, ns in burn_thirty) so far:
    SIGUSR2 makes it print a TRUTH line."""
    t.signal(signal.SIGUSR2)
    f = t.wait_line(lambda text: text.split()[:1] == ["TRUTH"], timeout=10,
                    settle=False).split()
    return int(f[1]), int(f[2])


def test_record_cpu_shares_and_files(target, tmp_path):
    t = target("workload")
    cruncher, reader = t.tid_of("cruncher"), t.tid_of("reader")
    def cpu_of(tid):
        with open("/proc/%d/task/%d/schedstat" % (t.pid, tid)) as f:
            return int(f.read().split()[0])
    c0 = cpu_of(cruncher)
    tr0 = _cruncher_truth(t)
    r = run_pmprof(*record_args(tmp_path, "-p", t.pid, "-F", 400, "-d", 3))
    tr1 = _cruncher_truth(t)
    c1 = cpu_of(cruncher)
    # The target's own split over the recording (thread CPU time of each
    # call): the 7:3 step counts give 70/30 only up to code alignment
    # (~72/28 in one build, perf agreeing).
    d70, d30 = tr1[0] - tr0[0], tr1[1] - tr0[1]
    truth = 100.0 * d70 / (d70 + d30)
    doc = summary_of(r)
    st = doc["stats"]
    # 1200 asked; on a loaded 2-CPU VM 930-1120 were seen.  The shares
    # below need a few hundred; a slow sampler shows in bench/record.py.
    assert st["samples"] >= 600, st
    assert st["rt"] is True
    samples, locs, folded = check_all(tmp_path, doc)

    # CPU of the cruncher splits 70/30 between its two functions.
    mine = [s for s in samples if s[2]["tid"] == "%d tid" % cruncher]
    seventy = share(mine, locs, "burn_seventy", "burn_thirty")
    # ~1200 samples: a sampling error of ~1.3 points
    assert abs(seventy - truth) <= 4.0, (seventy, truth)
    # Sample counts (wall) split alike: it never sleeps.
    assert abs(share(mine, locs, "burn_seventy", "burn_thirty", idx=0) - truth) <= 4.0

    # The blocked reader: all the wall time, almost no CPU, state sleeping in read.
    th = {x["tid"]: x for x in doc["threads"]}
    assert set(th) == set(t.tids())
    rd = th[reader]
    assert abs(rd["wall_ns"] - st["elapsed_ns"]) < 0.1 * st["elapsed_ns"], (rd, st)
    assert rd["cpu_ns"] < 0.02 * rd["wall_ns"], rd
    rs = [s for s in samples if s[2]["tid"] == "%d tid" % reader and s[2]["state"] != "lost"]
    # A sample can catch it between a ptrace stop and its way back into
    # read() (the kernel restarts the call after each stop): rare, and
    # still in the reader's code.
    n_all = sum(s[0][0] for s in rs)
    n_read = sum(s[0][0] for s in rs if s[2]["state"] == "sleeping"
                 and s[2].get("syscall") == "read")
    assert rs and n_read >= 0.99 * n_all, rs
    assert all("reader_main" in sample_functions(s, locs) for s in rs), rs
    # The cruncher's CPU: what the kernel says it used while recorded
    # (measured around the whole command: a little more than the window).
    assert 0.8 * (c1 - c0) <= th[cruncher]["cpu_ns"] <= 1.02 * (c1 - c0), (th[cruncher], c1 - c0)

    # The same stacks in every file: folded has the functions, in order.
    assert any(k.endswith("cruncher_main;crunch;burn_seventy") for k in folded), folded
    assert any("reader_main" in k and k.endswith("read") for k in folded), folded
    top = [x["function"] for x in doc["top_cpu"][:2]]
    assert set(top) == {"burn_seventy", "burn_thirty"}, doc["top_cpu"]

    # Where perf can sample here, it agrees within 5 points.
    p = perf_share(t.pid, cruncher)
    if p is not None:
        assert abs(p - seventy) <= 5.0, (p, seventy)


def test_record_speedscope_and_trace_content(target, tmp_path):
    t = target("workload")
    doc = summary_of(run_pmprof(*record_args(tmp_path, "-p", t.pid, "-F", 200, "-d", 1)))
    ss = check_speedscope(tmp_path / "rec.speedscope.json")
    names = {p["name"] for p in ss["profiles"]}
    assert {"%s (%d)" % (n, tid) for tid, n in t.names().items()} == names
    fr = ss["shared"]["frames"]
    prof = [p for p in ss["profiles"] if p["name"].startswith("reader")][0]
    # root first, leaf last (in the first sample with a stack: a sample
    # lost under load is the lone frame [lost ...], counted, not a stack)
    stacks = [[fr[i]["name"] for i in smp] for smp in prof["samples"]]
    stack = [st for st in stacks if not (len(st) == 1 and st[0].startswith("[lost"))][0]
    assert stack[0] == "__clone3" and "reader_main" in stack, stack
    trace, tracks = check_chrome(tmp_path / "rec.json")
    assert "cruncher (%d)" % t.tid_of("cruncher") in tracks.values()
    assert "reader (%d) state" % t.tid_of("reader") in tracks.values()
    states = {e["name"] for e in trace["traceEvents"] if e.get("cat") == "state"}
    assert "sleeping: read" in states and "running" in states, states
    assert doc["stats"]["samples"] > 100


def test_record_thread_filter(target, tmp_path):
    t = target("workload")
    doc = summary_of(run_pmprof(*record_args(tmp_path, "-p", t.pid, "-F", 100, "-d", 0.5,
                                             "--threads", "crunch")))
    assert [x["name"] for x in doc["threads"]] == ["cruncher"]
    reader = t.tid_of("reader")
    doc = summary_of(run_pmprof(*record_args(tmp_path, "-p", t.pid, "-F", 100, "-d", 0.5,
                                             "--threads", reader)))
    assert [x["tid"] for x in doc["threads"]] == [reader]
    r = run_pmprof("record", "-p", t.pid, "-d", 0.2, "--threads", "nosuchthread",
                   "-o", tmp_path / "x.pb.gz")
    assert r.returncode == 2 and "matches the thread filter" in r.stderr
    assert not os.path.exists(tmp_path / "x.pb.gz")


# ---- robustness -----------------------------------------------------------------


def test_record_churn_dlopen_and_exit(target, tmp_path):
    """Threads created and joined all along, a library dlopen'd halfway,
    the process exiting by itself: recorded to the end, files valid, and
    the target's own work correct."""
    t = target("workload", "churn", 2500)
    t.expect_exit = True
    r = run_pmprof(*record_args(tmp_path, "-p", t.pid, "-F", 200))
    doc = summary_of(r)
    assert doc["stats"]["exited"] is True
    t.proc.wait(timeout=30)
    out = (t._buf + t.proc.stdout.read()).decode()
    m = re.search(r"^DONE (\d+) (\w+)$", out, re.M)
    assert m and m.group(2) == "ok" and t.proc.returncode == 0, (out, t.proc.returncode)
    assert int(m.group(1)) > 10
    samples, locs, folded = check_all(tmp_path, doc)
    # short-lived children were sampled, and the plugin's frames named
    assert len(doc["threads"]) > 5, doc["threads"]
    assert any("plugin_block" in k for k in folded), list(folded)[:20]


def _recording(t, tmp_path, *extra):
    p = subprocess.Popen([PMPROF] + [str(a) for a in record_args(tmp_path, "-p", t.pid, *extra)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    wait_until(lambda: t.recorded_by(p.pid), 10, 0.01, "pmprof recording")
    return p


def _cpu_ticks(t, tid):
    with open("/proc/%d/task/%d/stat" % (t.pid, tid)) as f:
        return int(f.read().rsplit(")", 1)[1].split()[11])


def _assert_running_untraced(t):
    wait_until(lambda: t.tracer() == 0, 5, 0.01, "target untraced")
    states = t.states()
    assert "t" not in states.values() and "T" not in states.values(), states
    cr = t.tid_of("cruncher")
    u1 = _cpu_ticks(t, cr)
    wait_until(lambda: _cpu_ticks(t, cr) > u1, 5, 0.01, "cruncher runs again")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_record_stopped_by_signal_writes_files(target, tmp_path, sig):
    t = target("workload")
    p = _recording(t, tmp_path, "-F", 200)
    time.sleep(1.0)
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["stats"]["samples"] > 50
    check_all(tmp_path, doc)
    _assert_running_untraced(t)
    assert not [f for f in os.listdir(tmp_path) if ".tmp." in f]


def test_record_sigkill_leaves_target_running(target, tmp_path):
    t = target("workload")
    p = _recording(t, tmp_path, "-F", 500)
    time.sleep(0.5)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    _assert_running_untraced(t)
    assert not os.path.exists(tmp_path / "rec.pb.gz")


def test_record_signals_reach_the_target(target, tmp_path):
    """A signal sent while recording is delivered: SIGSTOP stops the
    target (and it stays stopped after we detach), SIGCONT resumes it."""
    t = target("workload")
    p = _recording(t, tmp_path, "-F", 200)
    time.sleep(0.3)
    os.kill(t.pid, signal.SIGSTOP)
    wait_until(lambda: set(t.states().values()) <= {"t", "T"}, 5, 0.01, "stopped")
    time.sleep(0.3)
    os.kill(t.pid, signal.SIGCONT)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    doc = json.loads(out)
    check_all(tmp_path, doc)
    _assert_running_untraced(t)


# ---- gdb ------------------------------------------------------------------------


def test_record_in_gdb_detaches_and_reattaches(target, tmp_path):
    t = target("workload")
    out = tmp_path / "g.pb.gz"
    r = gdb_run("thread 2", "pmprof record -d 1 -F 200 -q -o %s" % out, "info threads",
                "pmprof threads", pid=t.pid)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert re.search(r"pmprof record: done: \d+ samples of 3 threads", r.stdout), r.stdout
    # root here: perf events are allowed, and used from gdb too
    assert "pmprof record: method: perf events" in r.stdout, r.stdout
    # gdb has the process again, stopped, thread 2 still selected
    assert re.search(r"^\* 2\s+Thread", r.stdout, re.M), r.stdout
    assert "burn_" in r.stdout.split("pmprof record: done")[1]
    types, samples, locs = parse_raw(pprof_raw(out))
    assert sum(s[0][0] for s in samples) > 100
    assert t.tracer() == 0 and t.alive()


def test_record_needs_a_live_process(target, tmp_path):
    t = target("workload")
    core = gcore(t.pid, tmp_path)
    r = gdb_run("pmprof record -d 1", exe=t.exe, core=core)
    assert "pmprof record: record needs a live process, not a core file" in r.stderr
    r = run_pmprof("record", "--core", core, "-d", 1)
    assert r.returncode == 2
    assert r.stderr.strip() == "pmprof record: record needs a live process, not a core file"


def test_record_usage_errors(tmp_path):
    r = run_pmprof("record", "-p", os.getpid(), "-o", tmp_path / "x.txt")
    assert r.returncode == 64 and "cannot tell the format of" in r.stderr
    r = run_pmprof("record", "-p", os.getpid(), "-F", 0)
    assert r.returncode == 64 and "-F must be" in r.stderr
    r = run_pmprof("record", "-p", 999999999, "-d", 1, "-o", tmp_path / "x.pb.gz")
    assert r.returncode == 2 and "no process" in r.stderr
    r = run_pmprof("record", "-h")
    assert r.returncode == 0 and "speedscope" in r.stdout


# ---- attribution: CPU where it was used, off-CPU where it waited --------------

REQ_FN = {"poller": ("burn_poll", "poll"), "reader": ("burn_read", "read"),
          "futexer": ("burn_futex", "futex")}


def _truth(t):
    """The requests target's own report: {name: {tid, burn, sleep, cpu, delay, life}}."""
    t.proc.wait(timeout=60)
    out = (t._buf + t.proc.stdout.read()).decode()
    assert t.proc.returncode == 0, out
    truth = {}
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "TRUTH":
            truth[f[1]] = dict(zip(("tid", "burn", "sleep", "cpu", "delay", "life"),
                                   map(int, f[2:8])))
    assert set(truth) == set(REQ_FN), out
    return truth


def _perf_leaf_counts(data):
    """Samples per leaf function in a `perf record -g` file."""
    r = subprocess.run(["perf", "script", "-i", data], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, timeout=120)
    counts = {}
    for block in r.stdout.split("\n\n"):
        lines = block.strip().split("\n")
        if len(lines) > 1 and len(lines[1].split()) > 1:
            fn = lines[1].split()[1].split("+")[0]
            counts[fn] = counts.get(fn, 0) + 1
    return counts


NOPERF = os.path.join(TARGETS, "noperf")


@pytest.mark.parametrize("method", ["auto", "noswitch", "ptrace", "refused"])
def test_record_request_driven_attribution(target, tmp_path, method):
    """Threads alternating a CPU burst in their own function with a sleep in
    poll / read / futex (different ratios): CPU shares by function within 3
    points of the program's own measure (and of perf on the same run), each
    thread's wall time whole, and its off-CPU time at its blocking call.
    refused: `--method auto` where perf_event_open fails for real (EACCES
    from a seccomp filter, tests/targets/noperf.c): the ptrace method is
    chosen, and the JSON and the text summary say so, with the errno.
    noswitch: perf events without context switch records (the /proc looks
    of kernels before 4.17; test hook PMPROF_TEST_NO_SWITCHES)."""
    t = target("requests", "4000")
    t.expect_exit = True
    perf = shutil.which("perf") if method == "auto" else None
    pdata = str(tmp_path / "perf.data")
    pp = None
    if perf:
        # Before pmprof attaches: the target starts its threads then, and
        # perf follows only threads created after it attached.
        pp = subprocess.Popen([perf, "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
                               "-p", str(t.pid), "-o", pdata],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    hz = 999 if method in ("auto", "noswitch") else 199
    args = record_args(tmp_path, "-p", t.pid, "-F", hz, "--method",
                       "ptrace" if method == "ptrace" else "auto")
    env = dict(ENV)
    if method == "noswitch":
        env["PMPROF_TEST_NO_SWITCHES"] = "1"
    cmd = [PMPROF] + args
    if method == "refused":
        cmd = [NOPERF, str(errno.EACCES)] + cmd
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    wait_until(lambda: t.recorded_by(p.pid), 10, 0.005, "pmprof recording")
    t.signal(signal.SIGUSR1)          # the target starts its threads now
    out, err = p.communicate(timeout=120)
    doc = summary_of(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    truth = _truth(t)
    st = doc["stats"]
    assert st["exited"] is True
    if method in ("auto", "noswitch"):
        # perf_event_open is allowed here (root); it must have been used.
        assert st["method"] == "perf" and st["cpu_samples"] > 300, st
        assert st["perf_errno"] == 0, st
        # ... and the kernel's context switch records told who ran.
        assert st["switches"] is (method == "auto"), st
        assert (st["switch_records"] > 0) is (method == "auto"), st
    else:
        assert st["method"] == "ptrace" and st["cpu_samples"] == 0, st
        assert st["perf_errno"] == (errno.EACCES if method == "refused" else 0), st
    samples, locs, folded = check_all(tmp_path, doc)

    def leaf_cpu(fn):
        return sum(s[0][2] for s in samples
                   if sample_functions(s, locs)[:1] == [fn])

    def shares(d):
        tot = sum(d.values())
        assert tot > 0, d
        return {k: 100.0 * v / tot for k, v in d.items()}
    want = shares({n: truth[n]["burn"] for n in REQ_FN})
    if method in ("auto", "noswitch"):
        got = {n: leaf_cpu(fn) for n, (fn, _) in REQ_FN.items()}
    else:
        # A ptrace stop lands at the thread's next return to user space,
        # often the exit of the CPU-clock system call the burst loop makes
        # (docs/record.md): compare what the attribution rule decides, the
        # CPU time charged to each thread's running samples.
        got = {n: sum(s[0][2] for s in samples
                      if s[2]["tid"] == "%d tid" % truth[n]["tid"]
                      and s[2]["state"] == "running") for n in REQ_FN}
        want = shares({n: truth[n]["cpu"] for n in REQ_FN})
    have = shares(got)
    for n in REQ_FN:
        assert abs(have[n] - want[n]) <= 3.0, (n, have, want, truth)

    if pp is not None:
        pp.wait(timeout=60)
        counts = _perf_leaf_counts(pdata)
        tot_perf = sum(counts.get(fn, 0) for fn, _ in REQ_FN.values())
        if tot_perf >= 300:
            for n, (fn, _) in REQ_FN.items():
                p = 100.0 * counts.get(fn, 0) / tot_perf
                assert abs(p - have[n]) <= 3.0, (n, counts, have)

    th = {x["tid"]: x for x in doc["threads"]}
    for n, (fn, call) in REQ_FN.items():
        tr = truth[n]
        x = th[tr["tid"]]
        # Its wall time is its life (recorded from its birth to its exit).
        assert abs(x["wall_ns"] - tr["life"]) <= 0.08 * tr["life"], (n, x, tr)
        mine = [s for s in samples if s[2]["tid"] == "%d tid" % tr["tid"]]
        asleep = [s for s in mine if s[2]["state"] == "sleeping"]
        off = sum(s[0][1] for s in asleep)
        # Off-CPU: in its own blocking call (restarted by the kernel after
        # a stop: restart_syscall), never in its burst ...
        at_call = sum(s[0][1] for s in asleep
                      if s[2].get("syscall") in (call, "restart_syscall"))
        assert at_call >= 0.95 * off, (n, call, [s[2] for s in asleep][:20])
        assert all(fn not in sample_functions(s, locs) for s in asleep), n
        # ... and as long as it waited there: at most its time around the
        # call (which includes the wait for a CPU after waking), at least
        # that minus every wait for a CPU; 5 % of its life for the ends.
        slack = 0.05 * tr["life"]
        assert tr["sleep"] - tr["delay"] - slack <= off <= tr["sleep"] + slack, (n, off, tr)
        # CPU time only where it was running (and [lost]: samples the
        # kernel dropped when its ring was full, a stack not known).
        assert all(s[0][2] == 0 for s in asleep)
        assert all(s[0][2] == 0 for s in mine if s[2]["state"] not in ("running", "lost"))


def test_record_perf_does_not_stop_idle_or_running_threads(target, tmp_path):
    """With perf events: the spinning cruncher is never stopped for a CPU
    sample, and the blocked reader is stopped once, then its stack reused."""
    t = target("workload")
    doc = summary_of(run_pmprof(*record_args(tmp_path, "-p", t.pid, "-F", 99, "-d", 2)))
    st = doc["stats"]
    assert st["method"] == "perf", st
    # 3 threads x ~198 ticks; the two asleep ones: a first stop each (and a
    # few more if the reference read races their return into the call).
    assert st["stops"] <= 12, st
    assert st["reused"] >= 300, st
    th = {x["tid"]: x for x in doc["threads"]}
    cr, rd = th[t.tid_of("cruncher")], th[t.tid_of("reader")]
    assert cr["cpu_ns"] > 0 and rd["cpu_ns"] == 0, (cr, rd)
    assert abs(rd["wall_ns"] - st["elapsed_ns"]) < 0.1 * st["elapsed_ns"], (rd, st)


def test_record_refused_perf_events_named_in_summary(target, tmp_path):
    """perf_event_open refused for real (seccomp, tests/targets/noperf.c):
    the text summary names the ptrace method and the error."""
    t = target("workload")
    r = subprocess.run([NOPERF, str(errno.EPERM), PMPROF, "record", "-p", str(t.pid),
                        "-d", "0.5", "-F", "99", "-o", str(tmp_path / "rec.pb.gz")],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    want = "pmprof record: method: ptrace (perf_event_open: %s): " % os.strerror(errno.EPERM)
    assert want in r.stdout, r.stdout
    assert os.path.getsize(tmp_path / "rec.pb.gz") > 0
