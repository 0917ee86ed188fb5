"""Choosing the edges a view draws between two columns: the k largest of a layer pair's
edge values, and the share of the pair's total they carry.

Two shapes of edge values come up. A dense matrix (relevance R(i -> j), a step's weight
change dW): `top_of_matrix`. An outer product a_i * d_j (the gradient dloss/dW = a * delta
of one digit): `top_of_outer`, which never builds the (fan_in, fan_out) matrix: the k
largest |a_i d_j| lie among the pairs whose ranks r, c (by |a| and |d|, from 0) have
(r + 1)(c + 1) <= k, and the total sum |a_i d_j| is sum|a| * sum|d|.

Both return an edge list as `lrp.top_edges` does (and `view_model.strongest_connections`, which uses them):
(src (n,) intp, dst (n,) intp, signed value (n,) float32), weakest first so the strongest
draw on top, no zero edges, and the share in [0, 1] of the pair's total |value| those n
edges carry. Pure NumPy; imports nothing of the project.
"""
from __future__ import annotations

import numpy as np

EMPTY = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.float32))


def top_of_matrix(vals, k, rows=None, cols=None):
    """The k edges of largest |vals| of a (n_rows, n_cols) matrix whose row r is source
    rows[r] and column c target cols[c] (default: 0..n-1), and their share of sum |vals|.
    Returns ((src, dst, value), share)."""
    n_rows, n_cols = vals.shape
    rows = np.arange(n_rows) if rows is None else np.asarray(rows)
    cols = np.arange(n_cols) if cols is None else np.asarray(cols)
    mag = np.abs(vals)                                               # (n_rows, n_cols)
    total = float(mag.sum(dtype=np.float64))
    mag = mag.ravel()
    kk = min(int(k), mag.size)
    if kk <= 0 or total == 0.0:
        return EMPTY, 0.0
    if n_cols > kk:
        # kk columns have an edge >= the kk-th largest column maximum t, so the top kk
        # edges are all >= t: partition only those (a fraction of the matrix).
        col_max = mag.reshape(n_rows, n_cols).max(axis=0)
        t = np.partition(col_max, n_cols - kk)[n_cols - kk]
        cand = np.flatnonzero(mag >= t)
        top = cand[np.argpartition(mag[cand], len(cand) - kk)[len(cand) - kk:]]
    else:
        top = np.argpartition(mag, mag.size - kk)[mag.size - kk:]
    top = top[mag[top] > 0]
    top = top[np.argsort(mag[top], kind="stable")]                  # weakest first
    r, c = np.divmod(top, n_cols)
    share = min(1.0, float(mag[top].sum(dtype=np.float64)) / total)   # min: rounding
    return (rows[r].astype(np.intp), cols[c].astype(np.intp), vals.ravel()[top].astype(np.float32)), share


def top_of_outer(a, d, k):
    """The k edges (i, j) of largest |a_i * d_j| for a (fan_in,) and d (fan_out,), with the
    signed value a_i * d_j, and their share of sum_ij |a_i d_j| = sum|a| * sum|d|, without
    the (fan_in, fan_out) matrix. Returns ((src, dst, value), share)."""
    a = np.asarray(a, np.float32)
    d = np.asarray(d, np.float32)
    total = float(np.abs(a).sum(dtype=np.float64) * np.abs(d).sum(dtype=np.float64))
    k = int(k)
    if k <= 0 or total == 0.0:
        return EMPTY, 0.0
    ia = np.flatnonzero(a)
    ia = ia[np.argsort(-np.abs(a[ia]), kind="stable")][:k]          # sources by |a|, largest first
    jd = np.flatnonzero(d)
    jd = jd[np.argsort(-np.abs(d[jd]), kind="stable")][:k]          # targets by |d|
    # Rank pairs (r, c) with (r + 1)(c + 1) <= k: every other pair is dominated by k of these.
    r = np.repeat(np.arange(len(ia)), [min(len(jd), k // (q + 1)) for q in range(len(ia))])
    c = np.concatenate([np.arange(min(len(jd), k // (q + 1))) for q in range(len(ia))]).astype(np.intp)
    src, dst = ia[r], jd[c]
    vals = a[src] * d[dst]                                          # (n_candidates,) float32
    mag = np.abs(vals)
    kk = min(k, len(mag))
    top = np.argpartition(mag, len(mag) - kk)[len(mag) - kk:]
    top = top[np.argsort(mag[top], kind="stable")]
    share = min(1.0, float(mag[top].sum(dtype=np.float64)) / total)
    return (src[top].astype(np.intp), dst[top].astype(np.intp), vals[top].astype(np.float32)), share
