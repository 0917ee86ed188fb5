"""Drawn digits made to look like MNIST: crop, fit a 20x20 box keeping the aspect ratio
(anti-aliased), centre the centre of mass in 28x28, the way MNIST itself was made.
Pure NumPy."""

from __future__ import annotations

import numpy as np

from mnist_live.data_loader import SIDE


def mnist_style(image) -> np.ndarray:
    """Canvas drawing (H, W) float, 0 = background, 1 = ink -> MNIST-like (28, 28) float32 in [0, 1].

    Crops to the ink, fits the crop in a 20x20 box keeping its aspect ratio
    (area-averaging when shrinking, bilinear when enlarging), then pastes it in a
    28x28 frame so that its centre of mass lands on pixel (14, 14).
    """
    img = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64)), 0.0, 1.0)  # (H, W)
    if img.ndim != 2:
        raise ValueError(f"mnist_style expects a 2-D image, got shape {img.shape}")
    ink = img > _INK_THRESHOLD
    if not ink.any():
        return np.zeros((SIDE, SIDE), np.float32)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]                     # (h, w)
    h, w = crop.shape
    scale = _BOX / max(h, w)
    out_h, out_w = max(1, round(h * scale)), max(1, round(w * scale))
    small = _resample_matrix(h, out_h) @ crop @ _resample_matrix(w, out_w).T   # (out_h, out_w)
    return _paste_centred(np.clip(small, 0.0, 1.0)).astype(np.float32)


_BOX = 20               # MNIST digits fit in a 20x20 box ...


_CENTRE = SIDE / 2      # ... with their centre of mass at pixel (14, 14)


_INK_THRESHOLD = 1e-3   # canvas values above this count as ink for the bounding box


def _resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear map resampling a 1-D signal: area-average to shrink, bilinear to enlarge."""
    if n_out <= n_in:  # each output pixel averages the input interval it covers
        edges = np.arange(n_out + 1) * (n_in / n_out)                     # (n_out + 1,)
        lo, hi = edges[:-1, None], edges[1:, None]
        px = np.arange(n_in)[None, :]
        overlap = np.clip(np.minimum(hi, px + 1) - np.maximum(lo, px), 0.0, None)  # (n_out, n_in)
        return overlap / (n_in / n_out)
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5                 # pixel centres, input coords
    pos = np.clip(pos, 0.0, n_in - 1)
    left = np.floor(pos).astype(int)
    right = np.minimum(left + 1, n_in - 1)
    frac = pos - left
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), left), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), right), frac)
    return m


def _paste_centred(small: np.ndarray) -> np.ndarray:
    """(h, w) <= 20x20 image -> (28, 28) with its centre of mass moved to (14, 14), clipped to the frame."""
    h, w = small.shape
    mass = small.sum()
    if mass <= 0:
        return np.zeros((SIDE, SIDE))
    cy = (small.sum(axis=1) @ np.arange(h)) / mass
    cx = (small.sum(axis=0) @ np.arange(w)) / mass
    top, left = int(round(_CENTRE - cy)), int(round(_CENTRE - cx))
    out = np.zeros((SIDE, SIDE))
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, SIDE), min(left + w, SIDE)
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = small[y0 - top:y1 - top, x0 - left:x1 - left]
    return out
