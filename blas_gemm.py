"""C = alpha*A@B + beta*C through the BLAS NumPy itself ships: `gemm`.

What it owns: finding the OpenBLAS in NumPy's wheel (`_load_cblas`, ctypes), checking it
against np.matmul once before trusting it (`_checked_cblas`; MLP_NUMPY_GEMM=1 in the
environment skips it), and `gemm(a, b, out, alpha, beta)`, which falls back to np.matmul
when that BLAS is not there or the arrays cannot be passed to it. neural_network.py folds
weight updates into the products that compute their gradients with it.

Imports: the standard library and NumPy only (ctypes and glob on first use). No pygame.
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
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _load_cblas():
    """{dtype: ctypes gemm} from the OpenBLAS in NumPy's wheel, or {} when not found."""
    import ctypes
    import glob
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
            return fns
    return {}


def _trans(a):
    """(BLAS transpose flag, leading dimension, data pointer) of a 2-D array that is
    C-contiguous or the transpose of one, else None."""
    if a.flags.c_contiguous:
        return _NO_TRANS, max(a.shape[1], 1), a.ctypes.data
    if a.T.flags.c_contiguous:
        return _TRANS, max(a.shape[0], 1), a.ctypes.data
    return None


def gemm(a, b, out, alpha=1.0, beta=0.0):
    """out = alpha * a @ b + beta * out, in place, for 2-D a (m, k), b (k, n), out (m, n).
    `a` and `b` may be transposed views (x.T) of C-contiguous arrays. Returns out."""
    blas = _GEMM if _GEMM is not None else _checked_cblas()
    fn = blas.get(out.dtype) if out.dtype == a.dtype == b.dtype else None
    ta, tb = _trans(a), _trans(b)
    if fn is None or ta is None or tb is None or not out.flags.c_contiguous or 0 in a.shape:
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
    fn(_ROW_MAJOR, ta[0], tb[0], m, n, k, alpha, ta[2], ta[1], tb[2], tb[1], beta,
       out.ctypes.data, max(n, 1))
    return out


def _checked_cblas():
    """Sets and returns _GEMM: _load_cblas() if it agrees with np.matmul on a small case
    (transposes, alpha, beta) for both dtypes, else {}: a wrong guess about the library
    costs speed, never correctness. MLP_NUMPY_GEMM=1 in the environment skips it."""
    global _GEMM
    _GEMM = {} if os.environ.get("MLP_NUMPY_GEMM") == "1" else _load_cblas()
    rng = np.random.default_rng(0)
    for dt in list(_GEMM):
        a, b, c = (rng.standard_normal(s).astype(dt) for s in ((5, 3), (4, 5), (3, 4)))
        want = 0.5 * c + 2.0 * (a.T @ b.T)
        if not np.allclose(gemm(a.T, b.T, c.copy(), 2.0, 0.5), want, rtol=1e-4, atol=1e-5):
            _GEMM = {}
    return _GEMM


_GEMM = None   # {dtype: BLAS gemm}, loaded on first use (the window's UI process never trains)
