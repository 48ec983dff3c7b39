"""The soak and kill harness (tests/soak.py), short: pmprof killed at random
moments while the soak target takes a SIGUSR1 every millisecond; the
target's own counts and checks decide.  `make soak` runs the long one."""

import pytest

from conftest import require_ptrace

import soak

pytestmark = [pytest.mark.serial, require_ptrace]


def _run(**kw):
    lines = []
    fig = soak.soak(log=lines.append, **kw)
    text = "\n".join(lines + [soak.report(fig)])
    print(text)
    return fig, text


def test_soak_kills_lose_no_signal():
    """50 kills of record/stacks/snapshot/locks/heap and 1500 sample
    cycles of record -F 997: after each kill the target is untraced and
    running within 100 ms; every signal sent was counted, the target's
    arithmetic, sleeps and pipe reads held, it exited 0; no thread was
    held stopped past the 10 ms bound."""
    fig, text = _run(kills=50, cycles=1500, run_s=1.0)
    assert fig["ok"], text
    assert fig["signals_sent"] > 200 and fig["target"]["churned"] > 100, text


def test_soak_signals_in_the_seize_window_are_handed_back():
    """With 300 us between each seize and its interrupt (test hook), signals
    land in that window and meet pmprof in a signal-delivery-stop: each is
    handed back at once, and kills still lose none."""
    fig, text = _run(kills=15, cycles=600, run_s=1.0, seize_gap_us=300)
    assert fig["ok"], text
    assert fig["sig_passed"] > 0, text
