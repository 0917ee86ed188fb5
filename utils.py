"""Shared metrics and text tables (NumPy only).

The confusion matrix and what is read off it (accuracy, per-class accuracy), percentiles,
and the tables the terminal prints; the training side and the window share them.
"""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes=10):
    """(n_classes, n_classes) int64 counts: rows are true classes, columns predictions."""
    idx = y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(confusion):
    """Recall of each class (n_classes,) from a confusion matrix; NaN for absent classes."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)


def accuracy(confusion):
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


def percentile(values, q):
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def format_confusion(confusion, class_names):
    """The confusion matrix as an aligned text table (rows: true, columns: predicted)."""
    short = [name[:5] for name in class_names]
    w = max(6, max(len(str(int(v))) for v in confusion.ravel()) + 1)
    lines = ["true\\pred " + "".join(f"{s:>{w}}" for s in short)]
    for name, row in zip(short, confusion):
        lines.append(f"{name:>9} " + "".join(f"{int(v):>{w}}" for v in row))
    return "\n".join(lines)


def format_per_class(per_class, class_names, previous=None):
    """One line per class: name, accuracy and (optionally) the change since `previous`."""
    lines = []
    for i, (name, acc) in enumerate(zip(class_names, per_class)):
        line = f"{name:>12}  {100 * acc:6.2f} %"
        if previous is not None:
            line += f"  ({100 * (acc - previous[i]):+.2f})"
        lines.append(line)
    return "\n".join(lines)
