"""The training process as the window knows it: `Telemetry` folds the trainer's typed
reports (`messages.py`) into curves, the latest evaluations, snapshots and rates.
Plain Python and NumPy: no pygame, no multiprocessing."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from messages import (
    BatchReport,
    DigitHistory,
    EvalReport,
    Finished,
    Notice,
    Position,
    RunHistory,
    Saved,
    TrainerFailed,
)
from view_model import describe_position

RATE_WINDOW_S = 2.0               # samples/s is measured over this much wall time
MAX_CURVE = 5000                  # points kept per curve (older ones are thinned)
MAX_DIGIT_HISTORIES = 64          # digits whose history over the snapshots is kept (the trainer resends)


# ----------------------------------------------------------------------- telemetry
@dataclass
class Evaluation:
    """The most recent evaluation the worker reported, labelled with what it covered."""
    kind: str                    # "full" (whole test set) or "subset"
    accuracy: float
    per_class: np.ndarray        # (10,)
    confusion: np.ndarray        # (10, 10)
    n: int                       # test digits evaluated
    epoch: int
    batch: int
    progress: float              # epochs done as a float

    def label(self):
        what = "full test set" if self.kind == "full" else f"{self.n:,}-digit subset"
        return f"{what}, {describe_position(self.epoch, self.batch)}"


@dataclass
class Telemetry:
    """The training process as the window knows it, mirrored from its typed reports."""
    epoch: int = 0               # completed epochs
    batch: int = 0
    n_batches: int = 1
    lr: float = 0.0
    train_acc: float = 0.0
    paused: bool = False         # the worker acknowledged a pause
    finished: bool = False
    diverged: str = ""
    failed: str = ""             # the training process stopped (why)
    trained_here: bool = False   # a batch was trained in this session
    latest: Evaluation | None = None                    # newest evaluation of any kind
    last: dict = field(default_factory=dict)            # kind -> its newest evaluation
    previous: dict = field(default_factory=dict)        # kind -> the evaluation before it
    loss_curve: list = field(default_factory=list)      # (progress, loss)
    acc_curve: list = field(default_factory=list)       # (progress, accuracy), full test set
    subset_curve: list = field(default_factory=list)    # (progress, accuracy), subset
    evals: list = field(default_factory=list)           # (progress, kind, accuracy, per_class (10,)) per evaluation
    lr_changes: list = field(default_factory=list)      # (progress, new lr) where the user steered
    snapshots: list = field(default_factory=list)       # (epoch, batch, progress) the trainer can rewind to
    digit_histories: dict = field(default_factory=dict)  # test index -> [(progress, pred, p_true)] per snapshot
    rate_samples: deque = field(default_factory=lambda: deque(maxlen=400))  # (time, samples trained)
    full_speed_rates: deque = field(default_factory=lambda: deque(maxlen=2000))
    saved_path: str = ""
    version: int = 0             # bumped by every report (regions redraw when it changes)

    def samples_per_s(self, now=None):
        """Samples actually trained per second of wall time over the last few seconds
        (slow motion shows its real rate; 0 when nothing was trained lately)."""
        now = time.monotonic() if now is None else now
        pts = self.rate_samples                       # (worker time, samples trained so far)
        if len(pts) < 2:
            return 0.0
        t1, s1 = pts[-1]
        gap = t1 - pts[-2][0]
        if now - t1 > max(RATE_WINDOW_S, 1.5 * gap):
            return 0.0
        i = len(pts) - 2                              # the earliest report within the window
        while i > 0 and t1 - pts[i - 1][0] <= RATE_WINDOW_S:
            i -= 1
        t0, s0 = pts[i]
        return (s1 - s0) / max(t1 - t0, 1e-9)

    def apply(self, msg, now=None, full_speed=True):
        """Fold one report from the training process into the telemetry; returns a
        message for the user, or None."""
        now = time.monotonic() if now is None else now
        self.version += 1
        if isinstance(msg, BatchReport):
            self.epoch, self.batch, self.n_batches = msg.epoch, msg.batch, msg.n_batches
            self.lr, self.train_acc, self.trained_here = msg.lr, msg.accuracy, True
            if self.rate_samples and full_speed and not self.paused:
                t0, s0 = self.rate_samples[-1]
                if msg.time > t0 and msg.samples > s0:
                    self.full_speed_rates.append((msg.samples - s0) / (msg.time - t0))
            self.rate_samples.append((msg.time, msg.samples))
            _append(self.loss_curve, (msg.epoch + msg.batch / msg.n_batches, msg.loss))
            if msg.batch >= msg.n_batches:                      # the epoch is complete
                self.epoch, self.batch = msg.epoch + 1, 0
        elif isinstance(msg, EvalReport):
            ev = Evaluation(msg.kind, msg.accuracy, np.asarray(msg.per_class, np.float64),
                            np.asarray(msg.confusion), int(np.sum(msg.confusion)), msg.epoch, msg.batch,
                            msg.progress)
            if msg.kind in self.last:
                self.previous[msg.kind] = self.last[msg.kind]
            self.latest = self.last[msg.kind] = ev
            _append(self.acc_curve if msg.kind == "full" else self.subset_curve, (msg.progress, msg.accuracy))
            _append(self.evals, (msg.progress, msg.kind, msg.accuracy, ev.per_class))
        elif isinstance(msg, RunHistory):
            self.take_history(msg)
        elif isinstance(msg, DigitHistory):
            self.digit_histories.pop(msg.index, None)
            self.digit_histories[msg.index] = (len(self.snapshots), msg.rows)
            while len(self.digit_histories) > MAX_DIGIT_HISTORIES:       # the oldest answers go first
                del self.digit_histories[next(iter(self.digit_histories))]
        elif isinstance(msg, Position):
            self.epoch, self.batch, self.paused = msg.epoch, msg.batch, msg.paused
        elif isinstance(msg, Finished):
            self.finished, self.epoch, self.batch = True, msg.epoch, 0
            return f"training finished after {msg.epoch} epochs"
        elif isinstance(msg, Saved):
            self.saved_path = msg.path
            return f"model saved to {msg.path}"
        elif isinstance(msg, TrainerFailed):
            if msg.diverged:
                self.diverged, self.paused = msg.text, True
            else:
                self.failed = msg.text
            return msg.text
        elif isinstance(msg, Notice):
            return msg.text
        return None

    def take_history(self, msg):
        """The trainer's own record of the run (also what a loaded model file carried): it
        replaces the curves, so a loaded model shows its whole past."""
        h = msg.history
        evals = [(e["progress"], e["kind"], e["accuracy"],
                  np.array([np.nan if v is None else v for v in e["per_class"]], np.float64)) for e in h["evals"]]
        self.evals = evals
        self.acc_curve = [(q, a) for q, k, a, _ in evals if k == "full"]
        self.subset_curve = [(q, a) for q, k, a, _ in evals if k == "subset"]
        if h["loss"]:
            self.loss_curve = [tuple(p) for p in h["loss"]]
        self.lr_changes = [tuple(p) for p in h["lr_changes"]]
        self.snapshots = [tuple(s) for s in msg.snapshots]

    @property
    def last_full(self):
        """The newest evaluation on the whole test set, or None."""
        return self.last.get("full")

    def previous_per_class(self):
        """Per-class accuracy of the evaluation before the latest, of the same kind
        (compare like with like), or None."""
        if self.latest is None:
            return None
        prev = self.previous.get(self.latest.kind)
        return None if prev is None else prev.per_class


def _append(curve, point):
    curve.append(point)
    if len(curve) > MAX_CURVE:                   # bounded: keep every other old point
        del curve[1:MAX_CURVE // 2:2]
