"""The window process's memory: its malloc heap kept from growing with its own holes (glibc
on Linux; elsewhere nothing). Standard library only."""
from __future__ import annotations

import ctypes
import sys
import time

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
