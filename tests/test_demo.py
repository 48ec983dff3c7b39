"""`make demo`'s script (demo/run-demo.sh) runs end to end: the C demo's
stacks, snapshot, locks verdict and recording, and with go the stripped Go
demo's goroutines and scheduler line."""

import os
import shutil
import subprocess

from conftest import ENV, ROOT


def test_demo_script_runs(tmp_path):
    env = dict(ENV, PMPROF_DEMO_OUT=str(tmp_path))
    r = subprocess.run(["sh", os.path.join(ROOT, "demo", "run-demo.sh")], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "distinct stacks" in out and "flush_to_disk" in out
    assert out.count("HANG:") == 1                      # the journal lock
    for f in ("demo.pb.gz", "record.pb.gz", "record.folded", "record.trace.json"):
        assert os.path.getsize(tmp_path / f) > 0, f
    if shutil.which("go"):
        # 4 workers + 3 handlers + refresher + 2 encoders + main
        assert "goroutine profile: total 11" in out
        assert "3 @ [semacquire]" in out and "main.handleRequest(...)" in out
        assert "# 4 goroutines wait on channel" in out
        assert "SCHED gomaxprocs=" in out
