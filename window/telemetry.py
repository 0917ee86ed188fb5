"""The training process as the window knows it: `Telemetry` folds the trainer's typed
reports (`messages.py`) into curves, the latest evaluations, snapshots and rates;
`TrainingView` is the frozen copy of it a frame draws from. Plain Python and NumPy: no
pygame, no multiprocessing."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from mnist_live.training.history import EvalRecord, HealthRecord, History, add_loss_point
from mnist_live.training.messages import (
    BatchReport,
    DigitHistory,
    Finished,
    Inspection,
    LrChange,
    Notice,
    Position,
    RunHistory,
    Saved,
    SnapshotList,
    StepRecord,
    TrainerFailed,
    UpdateSummary,
)
from mnist_live.window.view_model import describe_position

RATE_WINDOW_S = 2.0               # samples/s is measured over this much wall time
MAX_CURVE = 5000                  # points kept per curve (older ones are thinned)
MAX_DIGIT_HISTORIES = 64          # digits whose history over the snapshots is kept (the trainer resends)


def evaluation_label(ev: EvalRecord, noun: str = "digit") -> str:
    """What an evaluation covered and of which weights: "1,000-digit subset, epoch 1, batch 100"
    (`noun`: "image" for Fashion-MNIST)."""
    what = "full test set" if ev.kind == "full" else f"{ev.n:,}-{noun} subset"
    return f"{what}, {describe_position(ev.epoch, ev.batch)}"


def class_change(latest, previous_full, noun="digit"):
    """What the per-class bars compare: (the per-class accuracy (10,) the change is
    measured from, or None; the caption as phrasings from the fullest to the shortest).
    Only full test-set evaluations are compared: a subset has about a hundred images a
    class, so its per-class figures swing by 10-20 points from noise alone."""
    if latest is None:
        return None, ("waiting for the first evaluation",)
    label = evaluation_label(latest, noun)
    if latest.kind != "full":
        per, subset = max(1, latest.n // 10), f"{latest.n:,}-{noun} subset"
        return None, (f"{label}; about {per:,} a class: too noisy to compare",
                      f"{subset} ({per:,} a class): too noisy for +/-", f"{subset}: too noisy for +/-",
                      "subset: too noisy for +/-")
    if previous_full is None:
        return None, (label,)
    since = describe_position(previous_full.epoch, previous_full.batch)
    return np.asarray(previous_full.per_class, np.float64), (
        f"{label}; +/- since {since}", f"{label}; +/- since {since}".replace("full test set, ", ""), label)


@dataclass(frozen=True)
class TrainingView:
    """The training process as the window knew it when a frame began: numbers, tuples and
    frozen evaluation records, nothing that changes afterwards."""
    epoch: int
    batch: int
    n_batches: int
    lr: float
    train_acc: float
    paused: bool
    no_train: bool
    finished: bool
    diverged: str
    failed: str
    trained_here: bool
    latest: EvalRecord | None                  # newest evaluation of any kind
    last_full: EvalRecord | None               # newest evaluation of the whole test set
    loss_curve: tuple                          # (progress, loss)
    acc_curve: tuple                           # (progress, accuracy), full test set
    subset_curve: tuple                        # (progress, accuracy), subset
    evals: tuple                               # EvalRecord per evaluation, oldest first
    lr_changes: tuple                          # (progress, new lr) where the user steered
    snapshots: tuple                           # (epoch, batch, progress) the trainer can rewind to
    digit_histories: MappingProxyType          # test index -> (snapshot count, ((progress, pred, p_true), ...))
    clock: tuple                               # (progress, seconds since the window began to listen)
    samples_per_s: float | None                # Telemetry.samples_per_s() when the view was made
    saved_path: str
    version: int
    health: tuple = ()                         # history.HealthRecord per measurement, oldest first
    step: StepRecord | None = None             # the newest recorded optimizer step
    span: UpdateSummary | None = None          # the newest change over several steps
    inspection: Inspection | None = None       # the newest answer about one parameter (a tooltip)


@dataclass
class Telemetry:
    """The training process as the window knows it, mirrored from its typed reports."""
    epoch: int = 0               # completed epochs
    batch: int = 0
    n_batches: int = 1
    lr: float = 0.0
    train_acc: float = 0.0
    paused: bool = False         # the worker acknowledged a pause
    no_train: bool = False       # a --no-train session: the model is explored, not trained
    finished: bool = False
    diverged: str = ""
    failed: str = ""             # the training process stopped (why)
    trained_here: bool = False   # a batch was trained in this session
    latest: EvalRecord | None = None                    # newest evaluation of any kind
    last: dict = field(default_factory=dict)            # kind -> its newest evaluation
    previous: dict = field(default_factory=dict)        # kind -> the evaluation before it
    loss_curve: list = field(default_factory=list)      # (progress, loss)
    acc_curve: list = field(default_factory=list)       # (progress, accuracy), full test set
    subset_curve: list = field(default_factory=list)    # (progress, accuracy), subset
    evals: list = field(default_factory=list)           # EvalRecord per evaluation, oldest first
    lr_changes: list = field(default_factory=list)      # (progress, new lr) where the user steered
    snapshots: list = field(default_factory=list)       # (epoch, batch, progress) the trainer can rewind to
    digit_histories: dict = field(default_factory=dict)  # test index -> [(progress, pred, p_true)] per snapshot
    rate_samples: deque = field(default_factory=lambda: deque(maxlen=400))  # (time, samples trained)
    full_speed_rates: deque = field(default_factory=lambda: deque(maxlen=2000))
    saved_path: str = ""
    started: float = field(default_factory=time.monotonic)  # when the window began to listen
    clock: list = field(default_factory=list)    # (progress, seconds since `started`) as each report arrived
    version: int = 0             # bumped by every report (regions redraw when it changes)
    health: list = field(default_factory=list)   # history.HealthRecord per measurement, oldest first
    step: StepRecord | None = None               # the newest recorded optimizer step (steps.StepWatch)
    span: UpdateSummary | None = None            # the newest change over several steps
    inspection: Inspection | None = None         # the newest answer about one parameter

    def samples_per_s(self, now=None):
        """Samples actually trained per second of wall time over the last few seconds of
        training (slow motion shows its real rate); None while there is no such rate yet:
        paused, or fewer than two reports since training (re)started or changed speed;
        0 when the trainer has reported nothing lately."""
        now = time.monotonic() if now is None else now
        pts = self.rate_samples                       # (worker time, samples trained so far)
        if self.paused or len(pts) < 2:
            return None
        t1, s1 = pts[-1]
        gap = t1 - pts[-2][0]
        if now - t1 > max(RATE_WINDOW_S, 1.5 * gap):
            return 0.0
        i = len(pts) - 2                              # the earliest report within the window
        while i > 0 and t1 - pts[i - 1][0] <= RATE_WINDOW_S:
            i -= 1
        t0, s0 = pts[i]
        return (s1 - s0) / max(t1 - t0, 1e-9)

    def frozen(self, now=None) -> TrainingView:
        """The telemetry as it is now, as a TrainingView (a few tens of microseconds: once a frame)."""
        now = time.monotonic() if now is None else now
        return TrainingView(
            self.epoch, self.batch, self.n_batches, self.lr, self.train_acc, self.paused, self.no_train, self.finished,
            self.diverged, self.failed, self.trained_here, self.latest, self.last_full, tuple(self.loss_curve),
            tuple(self.acc_curve), tuple(self.subset_curve), tuple(self.evals), tuple(self.lr_changes),
            tuple(self.snapshots),
            MappingProxyType({i: (n, tuple(rows)) for i, (n, rows) in self.digit_histories.items()}),
            tuple(self.clock), self.samples_per_s(now), self.saved_path, self.version, tuple(self.health),
            self.step, self.span, self.inspection)

    def speed_changed(self):
        """The pace of training changes (slow motion, pause): the rate starts afresh, so
        neither the old pace nor the pause is mixed into the new one."""
        self.rate_samples.clear()
        self.version += 1

    def apply(self, msg, now=None, full_speed=True):
        """Fold one report from the training process into the telemetry; returns a
        message for the user, or None."""
        now = time.monotonic() if now is None else now
        self.version += 1
        if isinstance(msg, BatchReport):
            self.take_batch(msg, now, full_speed)
        elif isinstance(msg, EvalRecord):
            self.take_evaluation(msg, now)
        elif isinstance(msg, RunHistory):
            self.take_history(msg)
        elif isinstance(msg, SnapshotList):
            self.snapshots = [tuple(s) for s in msg.snapshots]
        elif isinstance(msg, LrChange):
            self.lr_changes.append((msg.progress, msg.lr))
            self.lr = msg.lr                                  # the panel's "now" at once, also while paused
        elif isinstance(msg, DigitHistory):
            self.digit_histories.pop(msg.index, None)
            self.digit_histories[msg.index] = (len(self.snapshots), msg.rows)
            while len(self.digit_histories) > MAX_DIGIT_HISTORIES:       # the oldest answers go first
                del self.digit_histories[next(iter(self.digit_histories))]
        elif isinstance(msg, HealthRecord):
            _append(self.health, msg)
        elif isinstance(msg, StepRecord):
            self.step = msg
        elif isinstance(msg, UpdateSummary):
            self.span = msg
        elif isinstance(msg, Inspection):
            self.inspection = msg
        elif isinstance(msg, Position):
            if msg.paused != self.paused:
                self.speed_changed()
            self.epoch, self.batch, self.paused = msg.epoch, msg.batch, msg.paused
        else:
            return self.take_news(msg)
        return None

    def take_batch(self, msg, now, full_speed):
        self.epoch, self.batch, self.n_batches = msg.epoch, msg.batch, msg.n_batches
        self.lr, self.train_acc, self.trained_here = msg.lr, msg.accuracy, True
        if self.rate_samples and full_speed and not self.paused:
            t0, s0 = self.rate_samples[-1]
            if msg.time > t0 and msg.samples > s0:
                self.full_speed_rates.append((msg.samples - s0) / (msg.time - t0))
        self.rate_samples.append((msg.time, msg.samples))
        for progress, loss in msg.losses:                   # the trainer's own curve, point for point
            add_loss_point(self.loss_curve, progress, loss)
        self.tick(msg.epoch + msg.batch / msg.n_batches, now)
        if msg.batch >= msg.n_batches:                      # the epoch is complete
            self.epoch, self.batch = msg.epoch + 1, 0

    def take_evaluation(self, msg, now):
        if msg.kind in self.last:
            self.previous[msg.kind] = self.last[msg.kind]
        self.latest = self.last[msg.kind] = msg
        _append(self.acc_curve if msg.kind == "full" else self.subset_curve, (msg.progress, msg.accuracy))
        self.tick(msg.progress, now)
        last = self.evals[-1] if self.evals else None
        if last is not None and (last.kind, last.position) == (msg.kind, msg.position):
            self.evals[-1] = msg.slim()                     # the same weights again (History.add_eval)
        else:
            _append(self.evals, msg.slim())

    def take_news(self, msg):
        """The reports that end in a message for the user: finished, saved, failed, a notice."""
        if isinstance(msg, Finished):
            self.finished, self.epoch, self.batch = True, msg.epoch, 0
            epochs = f"{msg.epoch} epoch{'s' * (msg.epoch != 1)}"
            if self.no_train:
                return f"model trained for {epochs}; not training (--no-train)"
            return f"training finished after {epochs}"
        if isinstance(msg, Saved):
            self.saved_path = msg.path
            return f"model saved to {msg.path}"
        if isinstance(msg, TrainerFailed):
            if msg.diverged:
                self.diverged, self.paused = msg.text, True
            else:
                self.failed = msg.text
            return msg.text
        if isinstance(msg, Notice):
            return msg.text
        return None

    def tick(self, progress, now):
        """The live run's wall clock: where training stood when a report arrived (the
        seconds axis of the charts; the library's elapsed_s is the trainer's own)."""
        if not self.clock or progress > self.clock[-1][0]:
            _append(self.clock, (progress, now - self.started))

    def take_history(self, msg):
        """The run's past as the trainer sends it once at the start (what a loaded model file
        carried): it replaces the curves, so a loaded model shows its whole past."""
        h: History = msg.history
        self.evals = list(h.evals)
        self.acc_curve = [(r.progress, r.accuracy) for r in h.evals if r.kind == "full"]
        self.subset_curve = [(r.progress, r.accuracy) for r in h.evals if r.kind == "subset"]
        if h.loss:
            self.loss_curve = list(h.loss)
        self.lr_changes = list(h.lr_changes)
        self.health = list(h.health)
        self.snapshots = [tuple(s) for s in msg.snapshots]

    def history_json(self) -> dict:
        """The run's history as the window knows it, in the model file's format (History.to_json)."""
        h = History()
        h.evals, h.loss, h.lr_changes = list(self.evals), list(self.loss_curve), list(self.lr_changes)
        return h.to_json()

    @property
    def last_full(self):
        """The newest evaluation on the whole test set, or None."""
        return self.last.get("full")

    def class_change(self, noun="digit"):
        """(per-class accuracy the bars' +/- compare with, or None; caption phrasings): the
        full test-set evaluation before the newest one, only when the newest is full."""
        return class_change(self.latest, self.previous.get("full"), noun)


def _append(curve, point):
    curve.append(point)
    if len(curve) > MAX_CURVE:                   # bounded: keep every other old point
        del curve[1:MAX_CURVE // 2:2]
