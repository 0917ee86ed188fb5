"""The typed records the window and the training process send each other.

The window sends an `Order` (a `Command` and its argument); the training process answers
with the reports below. Each is a small frozen dataclass, so both sides (and the tests)
speak of the same fields. Plain data only: this module imports NumPy for the annotations
and nothing of multiprocessing, so `view_model` can read the reports without pulling in
the process machinery (`training_process.py` owns that).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class Command(enum.Enum):
    PAUSE = "pause"          # pause, publish the weights and evaluate the full test set
    RESUME = "resume"
    STEP = "step"            # one batch while paused
    DELAY = "delay"          # slow motion: seconds to sleep per batch
    SAVE = "save"            # save the model to `path`
    STOP = "stop"            # save to `path` if given, then exit
    SCALE_LR = "scale_lr"    # multiply the learning rate by `value` from now on
    SNAPSHOT = "snapshot"    # send the weights of snapshot `index`
    DIGIT_HISTORY = "digit_history"   # send test digit `index`'s prediction under every snapshot


@dataclass(frozen=True)
class Order:
    command: Command
    seconds: float = 0.0
    path: str | None = None
    value: float = 0.0
    index: int = -1


@dataclass(frozen=True)
class BatchReport:
    epoch: int               # 0-based epoch being trained
    batch: int               # batches done in this epoch
    n_batches: int
    loss: float              # mean loss since the previous report
    accuracy: float          # running training accuracy in this epoch
    lr: float
    samples: int             # samples trained in this session so far
    time: float              # time.monotonic() when the batch ended


@dataclass(frozen=True)
class EvalReport:
    kind: str                # "full" (whole test set) or "subset"
    accuracy: float
    per_class: np.ndarray    # (10,)
    confusion: np.ndarray    # (10, 10) rows true
    predictions: np.ndarray | None   # (N,) for "full"
    epoch: int
    batch: int
    progress: float          # epochs done as a float
    seconds: float

    @property
    def n(self) -> int:
        """Test images evaluated."""
        return int(np.sum(self.confusion))


@dataclass(frozen=True)
class Position:
    epoch: int
    batch: int
    paused: bool


@dataclass(frozen=True)
class Finished:
    epoch: int


@dataclass(frozen=True)
class Saved:
    path: str
    reason: str


@dataclass(frozen=True)
class TrainerFailed:
    text: str
    diverged: bool           # False: the process died or failed otherwise


@dataclass(frozen=True)
class RunHistory:
    history: object          # run_history.History (a copy): evaluations, loss curve, learning-rate changes
    snapshots: list          # (epoch, batch, progress) of each snapshot kept, oldest first


@dataclass(frozen=True)
class SnapshotWeights:
    index: int
    info: tuple              # (epoch, batch, progress)
    weights: list            # float16 (fan_in, fan_out) per layer
    biases: list             # float16 (fan_out,) per layer


@dataclass(frozen=True)
class DigitHistory:
    index: int               # test digit
    rows: list               # per snapshot: (progress, predicted class, probability of the true class)


@dataclass(frozen=True)
class Notice:
    text: str                # e.g. a save that failed
