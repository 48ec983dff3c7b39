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

import pytest

import damage
from conftest import go_available

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
