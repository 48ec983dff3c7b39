"""pmprof inside gdb: attached, started under gdb, core files, errors."""

import json
import os
import re

from conftest import TARGETS, gcore, gdb_run


def _json_after(out, marker="{"):
    i = out.index(marker)
    return json.loads(out[i:out.rindex("}") + 1])


def test_help_lists_subcommands():
    r = gdb_run("help pmprof", "pmprof stacks -h")
    assert r.returncode == 0, r.stderr
    for sub in ("pmprof threads", "pmprof stacks", "pmprof snapshot"):
        assert sub in r.stdout
    assert "usage: pmprof stacks" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_no_process_is_one_clear_line():
    r = gdb_run("pmprof stacks", "pmprof threads", "pmprof stacks --bogus")
    err = r.stderr
    assert "pmprof stacks: no process: attach to one or open a core file" in err
    assert "pmprof threads: no process: attach to one or open a core file" in err
    assert "pmprof stacks: unrecognized arguments: --bogus" in err
    assert "Traceback" not in r.stdout + err


def test_attached_stacks_equal_gdb_bt(target):
    t = target("threads")
    r = gdb_run("pmprof stacks --all --format json", "thread apply all bt", pid=t.pid)
    assert r.returncode == 0, r.stderr
    doc = _json_after(r.stdout)
    from conftest import parse_bt
    bt = parse_bt(r.stdout[r.stdout.rindex("}") + 1:])
    from test_stacks import check_threads_target
    by_tid = {g["threads"][0]["tid"]: g for g in doc["stacks"]}
    assert sorted(by_tid) == t.tids() == sorted(bt)
    check_threads_target(by_tid, t.names(), bt, t.exe)
    # gdb detached at the end: the target runs, untraced
    assert t.tracer() == 0 and t.proc.poll() is None


def test_started_under_gdb_at_breakpoint():
    exe = os.path.join(TARGETS, "threads")
    r = gdb_run("break sleep_inner", "run --timeout 30", "pmprof threads",
                "pmprof stacks --format json", "kill", exe=exe)
    assert "Traceback" not in r.stdout + r.stderr
    doc = _json_after(r.stdout[r.stdout.index("pmprof.stacks/1") - 20:])
    hit = [g for g in doc["stacks"] if g["frames"][0]["function"] == "sleep_inner"]
    assert hit, doc
    assert [f["function"] for f in hit[0]["frames"][:3]] == ["sleep_inner", "sleep_outer", "sleeper_main"]


def test_core_in_gdb(target, tmp_path):
    t = target("threads")
    core = gcore(t.pid, tmp_path)
    r = gdb_run("pmprof threads", "pmprof stacks", "pmprof snapshot -o %s" % (tmp_path / "c.pb.gz"),
                exe=t.exe, core=core)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    lines = [x for x in r.stdout.splitlines() if x.strip() and x.split()[0].isdigit()]
    assert len([x for x in lines if " core " in x]) == 11
    assert "core '%s'" % core in r.stdout
    assert "block_inner" in r.stdout
    assert os.path.getsize(tmp_path / "c.pb.gz") > 100


def test_running_process_is_refused(target):
    t = target("threads")
    # No `interrupt` at the end: in all-stop mode gdb sends SIGINT to the
    # process, and when batch mode detaches before that stop is reported
    # the signal reaches the target and kills it.  gdb's exit stops and
    # detaches a running inferior by itself.
    r = gdb_run("continue &", "pmprof stacks", pid=t.pid)
    assert "pmprof stacks: the process is running: interrupt it first" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert t.proc.poll() is None and t.tracer() == 0


def test_thread_in_rt_sigreturn_unwinds_through_the_restorer(target):
    """A thread stopped at the entry of rt_sigreturn (a signal handler
    returned: gdb's catchpoint; a CPU sample taken in the kernel there is
    the same state): its pc is right after the restorer's `syscall`, one
    past glibc's __restore_rt FDE.  The stack goes on through the signal
    frame into the interrupted code, as gdb's own bt does (it was
    __restore_rt -> raiser_main, by the frame-pointer fallback)."""
    t = target("workload", "sigloop")
    r = gdb_run("handle SIGUSR1 nostop noprint pass", "catch syscall rt_sigreturn",
                "continue", "bt", "pmprof stacks --format json", pid=t.pid)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stderr
    head = r.stdout[:r.stdout.index("{")]
    gdb_funcs = []
    for ln in head.splitlines():
        m = re.match(r"#\d+\s+(?:0x[0-9a-f]+ in )?(<signal handler called>|\S+)", ln)
        if m:
            gdb_funcs.append(m.group(1))
    assert gdb_funcs[:2] == ["<signal handler called>", "__pthread_kill_implementation"], head
    doc = _json_after(r.stdout)
    raiser = [g for g in doc["stacks"] if g["threads"][0]["name"] == "raiser"]
    assert len(raiser) == 1, doc
    funcs = [f["function"] for f in raiser[0]["frames"]]
    # pmprof names the signal frame by its function, gdb by what it is
    assert funcs[:2] == ["__restore_rt", "__pthread_kill_implementation"], funcs
    i, j = funcs.index("raise_loop"), gdb_funcs.index("raise_loop")
    assert funcs[i:i + 3] == gdb_funcs[j:j + 3] == ["raise_loop", "raiser_main", "start_thread"], (
        funcs, gdb_funcs)
