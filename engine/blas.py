"""C = alpha*A@B + beta*C through the BLAS NumPy itself ships (`gemm`), and that BLAS's thread
count (`blas_threads`, `set_blas_threads`).

Finding the OpenBLAS in NumPy's wheel (ctypes), checking it against np.matmul once before
trusting it (MLP_NUMPY_GEMM=1 in the environment skips it), and falling back to np.matmul
when that BLAS is not there or the arrays cannot be passed to it. Imports the standard
library and NumPy only (ctypes and glob on first use).
"""
from __future__ import annotations

import os

import numpy as np

# ---------------------------------------------------------------- BLAS gemm
# np.matmul computes C = A @ B only. BLAS's gemm computes C = alpha*A@B + beta*C, which
# lets a training step fold a weight update into the product that computes its
# gradient (SGD: W = (1 - lr*wd)*W - lr*(a.T @ delta)) instead of writing a gradient
# array and passing over it again. We call the BLAS NumPy itself ships and uses, so
# there is one thread pool and threadpoolctl limits apply; elsewhere (a NumPy on
# Accelerate or MKL, say) `gemm` computes the same thing with np.matmul.
_CBLAS = (("scipy_cblas_{}gemm64_", 64), ("cblas_{}gemm64_", 64),   # NumPy >= 2 / 1.22+ wheels
          ("scipy_cblas_{}gemm", 32), ("cblas_{}gemm", 32))
_THREADS = ("scipy_openblas_{}_num_threads64_", "openblas_{}_num_threads64_",
            "scipy_openblas_{}_num_threads", "openblas_{}_num_threads")
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _load_cblas():
    """{dtype: ctypes gemm} from the OpenBLAS in NumPy's wheel, or {} when not found; sets
    _BLAS_THREADS to that library's (get, set) thread-count functions when it has them."""
    import ctypes
    import glob
    global _BLAS_THREADS
    root = os.path.dirname(os.path.abspath(np.__file__))
    paths = sorted(glob.glob(os.path.join(root + ".libs", "*openblas*"))
                   + glob.glob(os.path.join(root, ".dylibs", "*openblas*")))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern, bits in _CBLAS:
            try:
                fns = {np.dtype(np.float32): getattr(lib, pattern.format("s")),
                       np.dtype(np.float64): getattr(lib, pattern.format("d"))}
            except AttributeError:
                continue
            i, p, e = (ctypes.c_int64 if bits == 64 else ctypes.c_int), ctypes.c_void_p, ctypes.c_int
            for dt, fn in fns.items():
                f = ctypes.c_float if dt == np.float32 else ctypes.c_double
                fn.argtypes = [e, e, e, i, i, i, f, p, i, p, i, f, p, i]
                fn.restype = None
            for name in _THREADS:
                get, put = getattr(lib, name.format("get"), None), getattr(lib, name.format("set"), None)
                if get is not None and put is not None:
                    get.argtypes, get.restype = [], ctypes.c_int
                    put.argtypes, put.restype = [ctypes.c_int], None
                    _BLAS_THREADS = (get, put)
                    break
            return fns
    return {}


def _layout(a):
    """(BLAS transpose flag, leading dimension, data pointer) of a 2-D array whose rows or
    whose columns are contiguous (a C-contiguous array, its transpose, or a block of rows
    or columns of either), else None."""
    (s0, s1), size, (m, n) = a.strides, a.itemsize, a.shape
    if s1 == size and s0 >= n * size and s0 % size == 0:          # rows contiguous
        return _NO_TRANS, max(s0 // size, 1), a.__array_interface__["data"][0]
    if s0 == size and s1 >= m * size and s1 % size == 0:          # columns contiguous
        return _TRANS, max(s1 // size, 1), a.__array_interface__["data"][0]
    if a.flags.c_contiguous:                                      # (n or m of 1: any strides)
        return _NO_TRANS, max(n, 1), a.ctypes.data
    if a.T.flags.c_contiguous:
        return _TRANS, max(m, 1), a.ctypes.data
    return None


def gemm(a, b, out, alpha=1.0, beta=0.0):
    """out = alpha * a @ b + beta * out, in place, for 2-D a (m, k), b (k, n), out (m, n).
    `a` and `b` may be transposed views (x.T) of C-contiguous arrays or blocks of rows or
    columns of those; `out` may be a block of columns of a C-contiguous array. Returns out."""
    blas = _GEMM if _GEMM is not None else _checked_cblas()
    fn = blas.get(out.dtype) if out.dtype == a.dtype == b.dtype else None
    ta, tb, tc = _layout(a), _layout(b), _layout(out)
    if fn is None or ta is None or tb is None or tc is None or tc[0] != _NO_TRANS or 0 in a.shape:
        if beta == 0.0:
            np.matmul(a, b, out=out)
            if alpha != 1.0:
                out *= alpha
        else:
            if beta != 1.0:
                out *= beta
            out += alpha * (a @ b)
        return out
    (m, n), k = out.shape, a.shape[1]
    fn(_ROW_MAJOR, ta[0], tb[0], m, n, k, alpha, ta[2], ta[1], tb[2], tb[1], beta, tc[2], tc[1])
    return out


def _checked_cblas():
    """Sets and returns _GEMM: _load_cblas() if it agrees with np.matmul on a small case
    (transposes, blocks, alpha, beta) for both dtypes, else {}: a wrong guess about the
    library costs speed, never correctness. MLP_NUMPY_GEMM=1 in the environment skips it."""
    global _GEMM, _BLAS_THREADS
    _GEMM = {} if os.environ.get("MLP_NUMPY_GEMM") == "1" else _load_cblas()
    rng = np.random.default_rng(0)
    for dt in list(_GEMM):
        a, b, c = (rng.standard_normal(s).astype(dt) for s in ((5, 3), (4, 5), (3, 6)))
        want = 0.5 * c[:, 1:5] + 2.0 * (a.T @ b.T)
        got = c.copy()
        gemm(a.T, b.T, got[:, 1:5], 2.0, 0.5)
        if not (np.allclose(got[:, 1:5], want, rtol=1e-4, atol=1e-5) and (got[:, [0, 5]] == c[:, [0, 5]]).all()):
            _GEMM = {}
    if not _GEMM:
        _BLAS_THREADS = None
    return _GEMM


_GEMM = None   # {dtype: BLAS gemm}, loaded on first use (the window's UI process never trains)
_BLAS_THREADS = None   # (get, set) that BLAS's thread count, when _GEMM is NumPy's OpenBLAS


def blas_threads():
    """Threads NumPy's BLAS would use now (after threadpoolctl limits and
    OPENBLAS_NUM_THREADS), or 1 when that BLAS cannot be asked or told (then a training
    step runs on one thread and leaves BLAS's own threading alone)."""
    if _GEMM is None:
        _checked_cblas()
    return _BLAS_THREADS[0]() if _BLAS_THREADS is not None else 1


def set_blas_threads(n):
    """Set NumPy's BLAS to n threads (when it can be told: blas_threads() says how many it has)."""
    if _BLAS_THREADS is not None:
        _BLAS_THREADS[1](n)
