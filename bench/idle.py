"""Telling whether other processes used the CPU during a measurement (Linux /proc/stat).

The development machines are shared, and a two-thread run slows by 2-10x when another
process takes a core. `wait_idle` waits until the machine has been idle for a moment;
`others_share` tells how much of a core other processes used between two readings
(`reading()`), so a benchmark can run a disturbed measurement again. Without /proc/stat
(not Linux) nothing waits and every share reads 0.
"""
from __future__ import annotations

import os
import resource
import time


def _busy():
    """CPU seconds the whole machine has used since boot, or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def _own():
    """CPU seconds of this process and its waited-for children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def reading():
    return _busy(), _own(), time.monotonic()


def others_share(start):
    """Share of one core that other processes used since `start` (a reading())."""
    busy, own, t = start
    if busy is None:
        return 0.0
    return max(0.0, (_busy() - busy) - (_own() - own)) / max(time.monotonic() - t, 1e-9)


def wait_idle(max_wait, idle_for=1.0):
    """Wait until other processes used < 10 % of a core for idle_for s (at most max_wait s).
    Returns whether it was idle."""
    t0 = time.monotonic()
    while _busy() is not None and time.monotonic() - t0 < max_wait:
        start = reading()
        time.sleep(idle_for)
        if others_share(start) < 0.1:
            return True
    return _busy() is None
