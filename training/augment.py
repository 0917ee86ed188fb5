"""Data augmentation while training: random shifts of up to 2 px (--augment). NumPy only."""
from __future__ import annotations

import numpy as np


class Shifter:
    """Random shifts of up to `max_shift` px, vectorised over the batch.

    Each image is padded into a (28+2s)^2 canvas once per batch, and a single gather with
    precomputed index tables (one table per shift) reads every shifted image at once."""

    def __init__(self, max_shift=2, side=28):
        s, n = max_shift, side + 2 * max_shift
        self.max_shift, self.side, self.padded_side = s, side, n
        rr, cc = np.mgrid[0:side, 0:side]
        tables = []
        for dy in range(-s, s + 1):
            for dx in range(-s, s + 1):
                tables.append(((rr + s - dy) * n + (cc + s - dx)).ravel())
        self.tables = np.stack(tables)        # (n_shifts, 784) flat indices into the padded canvas
        self._pad = {}

    def __call__(self, x, rng):
        """x (B, 784) -> shifted copy (B, 784), same dtype."""
        B, s, n, side = len(x), self.max_shift, self.padded_side, self.side
        pad = self._pad.get((B, x.dtype))
        if pad is None:
            pad = self._pad[(B, x.dtype)] = np.zeros((B, n, n), x.dtype)
        pad[:, s:s + side, s:s + side] = x.reshape(B, side, side)
        idx = self.tables[rng.integers(0, len(self.tables), B)]      # (B, 784)
        return np.take_along_axis(pad.reshape(B, n * n), idx, axis=1)
