"""Direct access to the C core for tests that need one session across
several snapshots."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
from pmprof import load_core  # noqa: E402


def open_session(pid):
    return load_core().open_pid(pid)
