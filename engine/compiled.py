"""Optional compiled optimizer updates: each rule of `optimizers.Optimizer` in one pass.

The NumPy update (optimizers.RULES: adam_rule and friends) is the reference: a handful of passes over
each cache-sized chunk. With numba installed (`pip install "mnist-live[fast]"`) the same
rules run here as one loop per block, which reads every array once and writes each once,
and releases the GIL, so the threads of a training step run them side by side. Same
operations in the same order and precision as the reference (no fast-math: no fused
multiply-add, no reordering), so both give the same numbers; tests/engine/test_engine.py
checks that. Without numba, or with MLP_NUMPY_UPDATE=1 in the environment, `kernels()`
returns None and the NumPy passes run. Compiled code is cached on disk (numba's cache) on
first use; an optimizer loads it in a background thread (`Loading`) and uses the NumPy
passes until it is ready, which gives the same numbers. Imports NumPy and threading;
numba only inside kernels().
"""
from __future__ import annotations

import math
import os
import threading

import numpy as np

_KERNELS = None   # {"sgd": fn, "momentum": fn, "adam": fn} once compiled, {} when unavailable
_READY = set()    # (kind, dtype) compiled or loaded from the cache
_LOCK = threading.RLock()


def _define(numba):
    jit = numba.njit(nogil=True, cache=True, fastmath=False, error_model="numpy")

    @jit
    def sgd(p, g, wd, lr):
        # p -= lr * (g + wd*p)
        for j in range(p.size):
            gj = g[j] + wd * p[j] if wd != 0 else g[j]
            p[j] -= gj * lr

    @jit
    def momentum(p, g, m, wd, flush, mu, lr, nesterov):
        # m = mu*m - lr*g;  p += m   (Nesterov: p += mu*m - lr*g); g includes wd*p; first
        # |m| < flush -> 0 (flush = 0: never)
        zero = flush - flush                  # 0 in the arrays' precision (a literal 0 would widen mj)
        for j in range(p.size):
            gj = g[j] + wd * p[j] if wd != 0 else g[j]
            t = gj * lr
            mj = m[j]
            if abs(mj) < flush:
                mj = zero
            mj = mj * mu - t
            m[j] = mj
            if nesterov:
                p[j] = (p[j] - t) + mj * mu
            else:
                p[j] += mj

    @jit
    def adam(p, g, M, V, wd, flush, b1, b2, scale, step, eps):
        # M = b1*M + g;  V = b2*V + (g*scale)^2;  p -= step * M / (sqrt(V) + eps); g includes wd*p;
        # first |M| or |V| < flush -> 0 (flush = 0: never)
        zero = flush - flush                  # 0 in the arrays' precision (a literal 0 would widen mj)
        for j in range(p.size):
            gj = g[j] + wd * p[j] if wd != 0 else g[j]
            mj = M[j]
            vj = V[j]
            if abs(mj) < flush:
                mj = zero
            if abs(vj) < flush:
                vj = zero
            mj = mj * b1 + gj
            s = gj * scale
            vj = vj * b2 + s * s
            M[j] = mj
            V[j] = vj
            p[j] -= (mj / (math.sqrt(vj) + eps)) * step

    return {"sgd": sgd, "momentum": momentum, "adam": adam}


def kernels():
    """The compiled update rules, or None (numba missing or MLP_NUMPY_UPDATE=1)."""
    global _KERNELS
    with _LOCK:
        if _KERNELS is None:
            _KERNELS = {}
            if os.environ.get("MLP_NUMPY_UPDATE") != "1":
                try:
                    import numba
                except ImportError:
                    numba = None
                if numba is not None:
                    _KERNELS = _define(numba)
    return _KERNELS or None


def kernel(kind, dtype):
    """The compiled rule `kind` ready for arrays of `dtype` (compiled, or loaded from numba's
    cache, by one call on one element), or None."""
    found = kernels()
    if found is None:
        return None
    fn, one = found[kind], np.zeros(1, dtype)
    with _LOCK:
        if (kind, one.dtype) not in _READY:
            x = one.dtype.type(0)
            if kind == "adam":
                fn(one, one, one, one, x, x, x, x, x, x, x)
            elif kind == "momentum":
                fn(one, one, one, x, x, x, x, False)
            else:
                fn(one, one, x, x)
            _READY.add((kind, one.dtype))
    return fn


class Loading(threading.Thread):
    """kernel(kind, dtype) in a background thread: importing numba and loading the compiled
    code take 0.5-1 s (longer on a busy machine), which a training run should not wait
    for. `result` is the kernel (or None) once the thread is done."""

    def __init__(self, kind, dtype):
        super().__init__(name="nn-compile", daemon=True)
        self.kind, self.dtype, self.result = kind, dtype, None
        self.start()

    def run(self):
        try:
            self.result = kernel(self.kind, self.dtype)
        except Exception:    # a broken numba install: the NumPy passes go on
            self.result = None
