"""Metrics and small helpers shared by the trainer, the command line and the window
(the safe-file helpers of `files.py` are re-exported here).

NumPy and the standard library only, so importing it costs nothing at start-up.
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
import time

import numpy as np

from files import (  # noqa: F401 (re-exported)
    PNG_SIGNATURE,
    TEMP_TAG,
    atomic_file,
    check_png,
    gif_frame_image,
    output_target,
    remove_stale_temps,
    save_png_atomic,
    unique_path,
    write_gif,
)


def confusion_matrix(y_true, y_pred, n_classes=10):
    """(n_classes, n_classes) int64 counts: rows are true classes, columns predictions."""
    idx = y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(confusion):
    """Recall of each class (n_classes,) from a confusion matrix; NaN for absent classes."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)


def accuracy(confusion):
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


def percentile(values, q):
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")



def atomic_write_json(path, obj):
    with atomic_file(path) as f:
        f.write((json.dumps(obj, indent=2) + "\n").encode())


def atomic_save_npz(path, arrays):
    """Uncompressed .npz (fast to load), written atomically."""
    with atomic_file(path) as f:
        np.savez(f, **arrays)


def format_confusion(confusion, class_names):
    """The confusion matrix as an aligned text table (rows: true, columns: predicted)."""
    short = [name[:5] for name in class_names]
    w = max(6, max(len(str(int(v))) for v in confusion.ravel()) + 1)
    lines = ["true\\pred " + "".join(f"{s:>{w}}" for s in short)]
    for name, row in zip(short, confusion):
        lines.append(f"{name:>9} " + "".join(f"{int(v):>{w}}" for v in row))
    return "\n".join(lines)


def format_per_class(per_class, class_names, previous=None):
    """One line per class: name, accuracy and (optionally) the change since `previous`."""
    lines = []
    for i, (name, acc) in enumerate(zip(class_names, per_class)):
        line = f"{name:>12}  {100 * acc:6.2f} %"
        if previous is not None:
            line += f"  ({100 * (acc - previous[i]):+.2f})"
        lines.append(line)
    return "\n".join(lines)


def process_age():
    """Seconds since this process started (Linux: from /proc; elsewhere None)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------ process memory
BIG_BLOCK = 4 << 20               # malloc: blocks this big get their own mapping, given back when freed
HEAP_SLACK = 16 << 20             # malloc: free memory the heap may keep at its top for reuse
HEAP_TRIM_S = 5.0                 # how often the free pages inside the heap are given back


class Heap:
    """The window process's malloc heap, kept from growing with its own holes (glibc on
    Linux; elsewhere this does nothing).

    glibc's default raises the size from which a block gets its own mapping after every
    big free (up to 32 MB) and lets the heap keep twice that free at its top, so the
    window's NumPy temporaries (the representation map's 8-16 MB arrays, dreams,
    relevance) and thousands of small surfaces settle in the heap and leave free pages
    between live blocks: in five minutes of random input the window held 12-74 MB of free
    heap, swinging from sample to sample. Fixed thresholds give blocks of 4 MB and more
    back when freed (smaller ones, such as a view's 3 MB arrays, stay in the heap and are
    reused without page faults; a 256 kB threshold made a view 3x slower); every
    HEAP_TRIM_S, malloc_trim gives back the free pages between blocks (1.5-16 ms)."""

    def __init__(self, every=HEAP_TRIM_S):
        self.every, self.last, self.seconds = every, time.monotonic(), 0.0   # seconds: the last trim's cost
        self.libc = None
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
                self.trim = libc.malloc_trim                 # glibc only (musl has none): AttributeError
                if libc.mallopt(-3, BIG_BLOCK) and libc.mallopt(-1, HEAP_SLACK):   # M_MMAP_ / M_TRIM_THRESHOLD
                    self.libc = libc
            except (OSError, AttributeError):
                pass

    def tick(self, now=None):
        """Give the heap's free pages back when HEAP_TRIM_S has passed; True when it did."""
        now = time.monotonic() if now is None else now
        if self.libc is None or now - self.last < self.every:
            return False
        t0 = time.perf_counter()
        self.trim(0)
        self.seconds, self.last = time.perf_counter() - t0, now
        return True
