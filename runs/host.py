"""This host: whether a run's process still runs, and the machine a run trained on.

A run's row names its process by host, pid and `process_start` (the boot id and the
process's start time from /proc), so a pid the system reused later never passes for it.
Imports the standard library only; NumPy is never imported here.
"""
from __future__ import annotations

import contextlib
import os
import platform
import sys


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _proc_stat(pid):
    """(state letter, start time in clock ticks since boot) from /proc/PID/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()       # after "pid (comm) ": field 3 onwards
    return fields[0], fields[19]


def process_start(pid=None):
    """"<boot id>:<start ticks>" of process `pid` (this one by default), or None without /proc:
    with the pid it names one process for the whole life of the machine."""
    boot, st = _boot_id(), _proc_stat(os.getpid() if pid is None else pid)
    return f"{boot}:{st[1]}" if boot and st else None


def process_alive(pid, proc_start=None):
    """Whether process `pid` of this host still runs and is the one that started at
    `proc_start` (a reused pid, or a zombie, is not). On Windows, where os.kill(pid, 0)
    would end the process, a run is taken to be alive."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                                            # another user's process: it exists
    except OSError:
        return False
    st = _proc_stat(pid)
    if st is not None and st[0] in ("Z", "X"):
        return False
    if proc_start is not None and st is not None:
        return process_start(pid) == proc_start
    return True


def machine_info():
    """Cores, NumPy version and BLAS library (threadpoolctl, when importable and NumPy is
    loaded), Python and platform. NumPy is not imported here."""
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "numpy": None, "blas": None}
    np = sys.modules.get("numpy")
    if np is not None:
        info["numpy"] = np.__version__
    else:
        with contextlib.suppress(Exception):
            from importlib.metadata import version
            info["numpy"] = version("numpy")
    if np is not None:
        try:
            import threadpoolctl
            blas = [m for m in threadpoolctl.threadpool_info() if m.get("user_api") == "blas"]
            if blas:
                b = blas[0]
                info["blas"] = " ".join(str(v) for v in (b.get("internal_api"), b.get("version"),
                                                          f"{b.get('num_threads')} threads") if v)
        except Exception:                               # not installed, or an odd library: optional
            pass
    return info
