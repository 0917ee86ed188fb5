"""The typed records the window and the training process send each other.

The window sends an `Order` (a `Command` and its argument); the training process answers
with the reports below, and each evaluation as `history.EvalRecord` (the one evaluation
record, end to end). Each is a small frozen dataclass, so both sides (and the tests) speak
of the same fields. Plain data only: nothing of multiprocessing, so the window's telemetry
reads the reports without pulling in the process machinery (`process.py` owns that).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from mnist_live.training.history import History


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
    losses: tuple            # (progress, loss) of every batch since the previous report
    accuracy: float          # running training accuracy in this epoch
    lr: float
    samples: int             # samples trained in this session so far
    time: float              # time.monotonic() when the batch ended


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
    """The run's past, sent once at the start (a loaded model's curves); later evaluations
    come one by one as history.EvalRecord, the snapshots as SnapshotList."""
    history: History         # a copy: evaluations, loss curve, learning-rate changes
    snapshots: list          # (epoch, batch, progress) of each snapshot kept, oldest first


@dataclass(frozen=True)
class SnapshotList:
    snapshots: list          # (epoch, batch, progress) of each snapshot kept now, oldest first


@dataclass(frozen=True)
class LrChange:
    progress: float          # where the user steered the learning rate
    lr: float                # the effective learning rate from there on


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
