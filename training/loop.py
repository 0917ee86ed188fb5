"""The one training loop. The headless run, the window's training process and every sweep
trial drive a `Trainer` through `train`; what each needs besides training is an observer,
in the spirit of Keras's CallbackList: the progress bars, the run library's recorder, the
window's reports and orders, a sweep's pruning checkpoints, the divergence check, a
measurement of training health. The loop knows none of them.

    run = Run(trainer, x_test, y_test, observers)
    outcome = train(run)          # the batches, an evaluation at each epoch's end, the end

An observer reads the run (`run.trainer`, `run.elapsed_s`, ...), may ask for an evaluation
(`run.evaluate("subset")`, which every observer then sees) and ends the run by raising
`StopTraining(status, message)`. A run given a validation split (`val=`, --val) evaluates it
at each epoch's end instead of the test set ("val", and "val_subset" for its first images),
and the test set once, when it ends. Imports the standard library only (the trainer and the
data are handed in), so the observers' modules can import it without NumPy.
"""
from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass

SUBSET_SIZE = 1000            # the fixed test subset (the first images) evaluated often


class StopTraining(Exception):
    """Raised by an observer to end the run: `status` is how it ended (interrupted, pruned,
    diverged), `message` why; `evaluate`: whether the weights it ends with are evaluated
    (True: on the validation split, if any, and the test set; "val": on the validation
    split only, e.g. a pruned trial, whose test score would mean nothing; False: not at all)."""

    def __init__(self, status, message=None, evaluate=True):
        super().__init__(message or status)
        self.status, self.message, self.evaluate = status, message, evaluate


class Observer:
    """What an observer may do at each point of a run; every hook is optional."""

    def on_start(self, run):
        """Before the first batch of this session (after any evaluation of the start)."""

    def before_batch(self, run):
        """Before each batch: may wait (pause, slow motion) or raise StopTraining."""

    def on_batch(self, run, stats):
        """After each optimizer step (stats: trainer.BatchStats)."""

    def on_evaluation(self, run, record):
        """After each evaluation (record: history.EvalRecord), whoever asked for it."""

    def on_epoch_end(self, run, stats):
        """After the end-of-epoch evaluation (stats: the epoch's last BatchStats)."""

    def on_end(self, run, outcome):
        """Once, when the run ends however it ends (outcome: Outcome)."""


class StopOnSignals(Observer):
    """Ctrl+C and SIGTERM stop the run between two batches, as `interrupted` (evaluated and
    saved like any end), instead of a KeyboardInterrupt raised wherever the main thread is:
    inside a queue's put to the run library's writer thread, such an exception can lose the
    writer's wake-up, and with it the run's last records. A second signal interrupts at
    once; a signal ignored when the run starts (a background job's Ctrl+C) stays ignored.
    Only in the main thread. The window's frame loop uses it too: install(), check `asked`
    between frames, restore()."""

    def __init__(self):
        self.asked, self.previous = [], {}

    def install(self):
        """Catch the signals (those not ignored) from now on, in the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) not in (signal.SIG_IGN, None):
                self.previous[sig] = signal.signal(sig, self.ask)

    def restore(self):
        """Put back the handlers install() replaced."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def ask(self, signum, frame):
        if self.asked:
            raise KeyboardInterrupt
        self.asked.append(signum)

    def on_start(self, run):
        self.install()

    def before_batch(self, run):
        if self.asked:
            raise StopTraining("interrupted")

    def on_end(self, run, outcome):
        self.restore()


@dataclass(frozen=True)
class Outcome:
    status: str                    # finished, interrupted, pruned, diverged, failed
    error: str | None = None       # why, for every status but finished
    final: object = None           # history.EvalRecord of the weights the run ends with (full test set), or None
    val: object = None             # the same on the validation split (runs with one), or None


class Run:
    """One run of the loop: the trainer, the test images, the observers, and what the
    observers may ask of it."""

    def __init__(self, trainer, x_test, y_test, observers=(), subset_size=SUBSET_SIZE, val=None):
        self.trainer = trainer
        self.x_test, self.y_test = x_test, y_test                       # (N, 784) uint8, (N,)
        self.val = val                 # None, or (x_val (V, 784) uint8, y_val (V,)): the validation split
        self.subset_size = subset_size
        self.observers = list(observers)
        self.t_start = time.perf_counter()
        self.train_s = 0.0             # seconds spent in train_batch (samples/s counts only these)
        self.samples = 0               # images trained in this session
        self.last_full = None          # the newest full test-set EvalRecord
        self.last_val = None           # the newest full validation EvalRecord
        self.model_file = None         # the model file holding the weights the run ends with, once saved
        self.save_error = None         # why saving them failed
        self.outcome = None            # set once the run ended

    @property
    def elapsed_s(self):
        """Wall seconds since the run started (pauses and slow motion included)."""
        return time.perf_counter() - self.t_start

    @property
    def samples_per_s(self):
        return self.samples / self.train_s if self.train_s > 0 else 0.0

    def notify(self, hook, *args):
        for observer in self.observers:
            getattr(observer, hook)(self, *args)

    @property
    def epoch_kind(self):
        """What each epoch's end evaluates: "val" with a validation split, else "full"."""
        return "full" if self.val is None else "val"

    @property
    def subset_kind(self):
        """The quick evaluation observers ask for: "val_subset" with a validation split, else "subset"."""
        return "subset" if self.val is None else "val_subset"

    def evaluate(self, kind="full"):
        """Evaluate the current weights on the test set ("full") or its first `subset_size`
        images ("subset"), or the validation split ("val", "val_subset"), keep it in the
        history, tell every observer; returns the record."""
        if kind not in ("full", "subset", "val", "val_subset") or (kind.startswith("val") and self.val is None):
            raise ValueError(f"no {kind!r} evaluation in this run")
        x, y = self.val if kind.startswith("val") else (self.x_test, self.y_test)
        if kind.endswith("subset"):
            x, y = x[:self.subset_size], y[:self.subset_size]
        record = self.trainer.evaluate(x, y, kind, elapsed_s=self.elapsed_s)
        if kind == "full":
            self.last_full = record
        elif kind == "val":
            self.last_val = record
        self.notify("on_evaluation", record)
        return record

    def train_batch(self):
        """One batch, timed; observers see it."""
        t0 = time.perf_counter()
        stats = self.trainer.train_batch()
        self.train_s += time.perf_counter() - t0
        if not stats.diverged:
            self.samples += stats.samples
        self.notify("on_batch", stats)
        if stats.batch == stats.n_batches and not stats.diverged:      # the end of an epoch
            self.evaluate(self.epoch_kind)
            self.notify("on_epoch_end", stats)
        return stats

    def final_evaluation(self):
        """The full test-set record of the weights the run ends with: the newest one when it
        is of these weights, else a new one."""
        last = self.last_full
        if last is not None and last.position == self.trainer.position:
            return last
        return self.evaluate("full")

    def final_validation(self):
        """The validation record of the weights the run ends with (None without a split)."""
        if self.val is None:
            return None
        last = self.last_val
        return last if last is not None and last.position == self.trainer.position else self.evaluate("val")


def train(run: Run) -> Outcome:
    """Train until the trainer has done its epochs or an observer stops the run; then the
    final evaluation and every observer's on_end. KeyboardInterrupt ends the run as
    `interrupted`; any other exception as `failed` (observers are told, then it propagates)."""
    run.notify("on_start")
    status, error, evaluate = "finished", None, True
    try:
        while not run.trainer.finished:
            run.notify("before_batch")
            run.train_batch()
    except StopTraining as stop:
        status, error, evaluate = stop.status, stop.message, stop.evaluate
    except KeyboardInterrupt:
        status, error = "interrupted", None
    except Exception as e:
        run.outcome = Outcome("failed", f"{type(e).__name__}: {e}".splitlines()[0][:500])
        run.notify("on_end", run.outcome)
        raise
    val = run.final_validation() if evaluate else None
    run.outcome = Outcome(status, error, run.final_evaluation() if evaluate is True else None, val)
    run.notify("on_end", run.outcome)
    return run.outcome
