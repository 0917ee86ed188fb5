"""The images a run trains, validates and tests on, cut from a loaded data set.

`--val N` holds out the last N of the training images as a validation split (for MNIST
the last 10,000 of the 60,000, as Keras's examples and many papers do); `--train-size`
then takes the first images of what is left, `--test-size` the first test images. A run
with a validation split evaluates it while training and the test set once, at its end
(training/loop.py); sweeps prune and choose on it (runs/sweeps.py).

    data = cut(dataset, val=10_000, train_size=None, test_size=None)   # a SplitData

Imports NumPy (through data_loader's Dataset) and nothing of the window or the run library.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_live.data_loader import Dataset


class SplitError(ValueError):
    """A split that cannot be made (one line, a usage error): --val leaves no training images."""


@dataclass(frozen=True)
class SplitData(Dataset):
    """A data set with its validation split held out (x_val None: there is none)."""
    x_val: np.ndarray | None = None        # (V, 784) uint8: the last V training images
    y_val: np.ndarray | None = None        # (V,) uint8

    @property
    def val(self):
        """(x_val, y_val) for the training loop's Run, or None."""
        return None if self.x_val is None else (self.x_val, self.y_val)

    def summary(self) -> dict:
        out = super().summary()
        if self.x_val is not None:
            out["val"] = int(len(self.y_val))
        return out


def cut(data, val=None, train_size=None, test_size=None) -> SplitData:
    """`data` (a data_loader.Dataset) with the last `val` training images held out (none for
    None or 0), then cut to the first `train_size` training and `test_size` test images.
    SplitError when the validation split would take every training image."""
    x_train, y_train = data.x_train, data.y_train            # (N, 784) uint8, (N,)
    x_val = y_val = None
    if val:
        n = len(y_train)
        if val >= n:
            raise SplitError(f"argument --val: {val:,} validation images leave none of the {n:,} training images "
                             f"of {data.source} to train on")
        x_val, y_val = x_train[n - val:], y_train[n - val:]
        x_train, y_train = x_train[:n - val], y_train[:n - val]
    fields = {k: getattr(data, k) for k in ("name", "source", "class_names")}
    return SplitData(**fields, x_train=x_train[:train_size], y_train=y_train[:train_size],
                     x_test=data.x_test[:test_size], y_test=data.y_test[:test_size], x_val=x_val, y_val=y_val)
