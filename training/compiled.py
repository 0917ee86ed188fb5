"""Optional compiled optimizer updates: each rule of `optimizers.Optimizer` in one pass.

The NumPy update (Optimizer._adam and friends) is the reference: a handful of passes over
each cache-sized chunk. With numba installed (`pip install "mnist-live[fast]"`) the same
rules run here as one loop per block, which reads every array once and writes each once,
and releases the GIL, so the threads of a training step run them side by side. Same
operations in the same order and precision as the reference (no fast-math: no fused
multiply-add, no reordering), so both give the same numbers; tests/test_neural_network.py
checks that. Without numba, or with MLP_NUMPY_UPDATE=1 in the environment, `kernels()`
returns None and the NumPy passes run. Compiled code is cached on disk (numba's cache) on
first use. Imports NumPy; numba only inside kernels().
"""
from __future__ import annotations

import math
import os

_KERNELS = None   # {"sgd": fn, "momentum": fn, "adam": fn} once compiled, {} when unavailable


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
