"""The training step's own threads: fixed blocks of a layer (`blocks`), run on a shared
thread pool (`run_blocks`) with BLAS single-threaded meanwhile (`single_threaded_blas`),
and how many threads a step gets (`default_threads`). Imports the standard library and
`engine.blas`.
"""
from __future__ import annotations

import os

from mnist_live.engine.blas import blas_threads, set_blas_threads

# A training step splits its big products and the elementwise work that follows them into
# fixed blocks (`blocks`), and runs the blocks on `threads` threads with BLAS itself
# single-threaded meanwhile (`run_blocks`). The blocks depend only on the shapes, and each
# block is computed by one thread from start to end, so the result is the same, bit for
# bit, whatever the number of threads. Why not BLAS's own threads: at these thin shapes
# they reach 56-66 % of the machine's GEMM peak, each product is a separate parallel
# region (the elementwise work between them runs on one core), and OpenBLAS's idle worker
# spins on the second core after each product, which slowed anything else run there.

def default_threads():
    """Threads for a training step: the number NumPy's BLAS would use now
    (OPENBLAS_NUM_THREADS, threadpoolctl limits), at most the CPUs this process may run on.
    A sweep trial (threadpool_limits(1)) and the window's training process
    (OPENBLAS_NUM_THREADS=1) get 1; headless training on two cores gets 2."""
    global _CPUS
    if _CPUS is None:
        try:
            _CPUS = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            _CPUS = os.cpu_count() or 1
    return max(1, min(blas_threads(), _CPUS))


_CPUS = None   # CPUs this process may run on (asked once)


class single_threaded_blas:
    """Context: BLAS's own thread count set to 1 inside (when it was more), restored after."""

    def __enter__(self):
        self.before = blas_threads()
        if self.before > 1:
            set_blas_threads(1)
        return self

    def __exit__(self, *exc):
        if self.before > 1:
            set_blas_threads(self.before)


_POOLS = {}  # worker count -> ThreadPoolExecutor shared by all networks and optimizers
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOLS.clear)  # a forked child has no pool threads


def thread_pool(workers):
    pool = _POOLS.get(workers)
    if pool is None:
        from concurrent.futures import ThreadPoolExecutor  # only when threads > 1 (~20 ms import)
        pool = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="nn-step")
    return pool


def blocks(n, parts, align=16):
    """Boundaries [0, ..., n] that cut an axis of length n into `parts` about equal blocks
    (fewer if n is short) at multiples of `align` (no two threads write into one cache
    line of a row)."""
    k = max(1, min(parts, n // align))
    return [min(n, round(n * j / k / align) * align) if j < k else n for j in range(k + 1)]


def run_blocks(work, bounds, threads):
    """work(lane, start, stop) for each block [bounds[j], bounds[j+1]); with threads > 1 the
    blocks go in contiguous groups to that many threads (this one takes the first group;
    `lane` numbers the group, for per-thread scratch). Returns when all are done."""
    nb = len(bounds) - 1
    t = min(threads, nb)
    if t <= 1:
        for j in range(nb):
            work(0, bounds[j], bounds[j + 1])
        return
    groups = [(nb * g // t, nb * (g + 1) // t) for g in range(t)]

    def group(lane):
        lo, hi = groups[lane]
        for j in range(lo, hi):
            work(lane, bounds[j], bounds[j + 1])
    pool = thread_pool(t - 1)
    futures = [pool.submit(group, lane) for lane in range(1, t)]
    try:
        group(0)
    finally:
        for f in futures:
            f.result()
