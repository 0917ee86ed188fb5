"""Projections of a layer's activations to two dimensions: PCA aligned to the previous
picture (Procrustes), so the map moves rather than flips between snapshots, and the fixed
class-balanced subset of test digits it is drawn for. Pure NumPy.
"""
from __future__ import annotations

import numpy as np


def _top2_components(Xc):
    """First two principal axes (d, 2) of centred Xc (N, d), as float64: subspace iteration
    with Rayleigh-Ritz on the smaller of Xc.T Xc and Xc Xc.T (a full eigh of a 1024 x 1024
    matrix takes seconds on a busy 2-core machine; this takes tens of milliseconds)."""
    N, d = Xc.shape
    small = (Xc.T @ Xc if d <= N else Xc @ Xc.T).astype(np.float64)   # (m, m), in Xc's precision
    m = small.shape[0]
    p = min(m, 12)
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((m, p)))[0]
    vecs = Q[:, :2]
    for _ in range(500):
        Z = small @ Q                                       # (m, p)
        T = Q.T @ Z                                         # Rayleigh quotient (p, p)
        w, V = np.linalg.eigh((T + T.T) / 2)
        order = np.argsort(w)[::-1]
        w, V = w[order], V[:, order]
        vecs = Q @ V[:, :2]
        resid = Z @ V[:, :2] - vecs * w[:2]
        if w[0] <= 0 or np.linalg.norm(resid, axis=0).max() <= 1e-10 * w[0]:
            break
        Q = np.linalg.qr(Z @ V)[0]
    if d > N:                                               # left vectors -> right ones
        vecs = Xc.T @ vecs
        vecs /= np.maximum(np.linalg.norm(vecs, axis=0), 1e-300)
    return vecs[:, :2] if vecs.shape[1] >= 2 else np.pad(vecs, ((0, 0), (0, 2 - vecs.shape[1])))


def pca_2d(X, previous=None) -> np.ndarray:
    """(N, d) -> (N, 2) float32: the points on their first two principal components
    (sign fixed so each axis' largest loading is positive). With `previous` (N, 2), the
    projection is aligned to it by orthogonal Procrustes (the rotation or reflection and
    the scale, plus the shift, that bring it closest in least squares), so between two
    snapshots the points move rather than flip."""
    return pca_2d_fit(X, previous)[0]


def pca_2d_fit(X, previous=None):
    """`pca_2d` and the affine map it applied: (Y (N, 2) float32, mean (d,), A (d, 2), shift
    (2,)), Y = (X - mean) @ A + shift, so any other row of the same layer maps the same way."""
    X = np.asarray(X)
    X = X if X.dtype == np.float32 else X.astype(np.float64)    # float32 stays: half the time
    mean = X.mean(axis=0, dtype=np.float64)                     # (d,)
    Xc = X - mean.astype(X.dtype)                               # (N, d)
    V = _top2_components(Xc)                                    # (d, 2) float64
    flip = np.sign(V[np.abs(V).argmax(axis=0), [0, 1]])
    A, shift = V * np.where(flip == 0, 1, flip), np.zeros(2)
    Y = Xc @ A                                                  # (N, 2) float64
    if previous is not None:
        scale, R, mu_y, mu_p = _procrustes(Y, previous)
        A, shift = scale * A @ R, mu_p - scale * mu_y @ R      # scale * (Y - mu_y) @ R + mu_p
        Y = scale * (Y - mu_y) @ R + mu_p
    return Y.astype(np.float32), mean, A, shift


def _procrustes(Y, previous):
    """(scale, R (2, 2), mu_y (2,), mu_p (2,)) minimising ||scale (Y - mu_y) R + mu_p - previous||."""
    Y = np.asarray(Y, np.float64)
    P = np.asarray(previous, np.float64)
    if P.shape != Y.shape:
        raise ValueError(f"previous has shape {P.shape}, expected {Y.shape}")
    mu_y, mu_p = Y.mean(axis=0), P.mean(axis=0)
    Yc, Pc = Y - mu_y, P - mu_p
    U, S, Vt = np.linalg.svd(Yc.T @ Pc)                     # (2, 2)
    R = U @ Vt                                              # argmin ||Yc R - Pc||, R orthogonal
    norm = float((Yc * Yc).sum())
    scale = S.sum() / norm if norm > 0 else 1.0
    return scale, R, mu_y, mu_p


def balanced_subset(y, n=2000, seed=0) -> np.ndarray:
    """Sorted indices of a fixed class-balanced subset of labels y: n // C per class (the
    first n % C classes one more), all of a class when it has fewer; the same for the
    same y, n and seed."""
    y = np.asarray(y)
    classes = np.unique(y)
    rng = np.random.default_rng(seed)
    picks = []
    for i, c in enumerate(classes):
        members = np.flatnonzero(y == c)
        quota = n // len(classes) + (1 if i < n % len(classes) else 0)
        picks.append(rng.choice(members, size=min(quota, len(members)), replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.intp)
