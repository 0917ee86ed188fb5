"""Recording one run into the run library while it trains: `RunRecorder`, and `Recording`,
the observer that records what the training loop trains (the loop never imports this).

What it owns: a run's record from its start to its end (`RunRecorder(path, config,
dataset)`, `.sync(history, elapsed_s)` after each evaluation, `.finish(status, ...)`
once): what the history gained (evaluations, loss points, learning-rate changes, health
records), with its sequence numbers, handed to a background writer
(runs/writer.py), so a locked library or a full disk delays recording, never training;
the end waits a bounded time for the writer, and what the library could not take by then
is kept in a hand-off file the next opener applies. A library that cannot be used at all
(a folder, a foreign or newer file) costs one line 'runs not recorded: ...'. Headless and
window runs record through `Recording`; a sweep's parent records its trials with
`RunRecorder`.

Imports: the standard library, runs.library, runs.writer and the loop's Observer (it is
handed `config.Config` objects, history.History and history.EvalRecord). No NumPy.
"""
from __future__ import annotations

import math
import socket
import time

from mnist_live.runs.schema import run_row
from mnist_live.runs.writer import RunWriter
from mnist_live.training.loop import Observer

END_WAIT_S = 5.0              # how long the run's end waits for the library before it is handed off


def _num(v):
    """A float for the library (None for NaN, inf or None)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


class RunRecorder:
    """Records one run into the library as it trains, through a background writer; its
    calls never wait for the library (but `finish`, up to `end_wait_s`) and never raise
    into training.

    Build it where the training happens (from a path: nothing to pickle). `busy_s` is the
    time spent in its calls (bench/bench_runs.py); `writer.write_s` the writer's own."""

    def __init__(self, path, config, dataset, command=None, sweep=None, trial=None, log=print,
                 end_wait_s=END_WAIT_S):
        self.path, self.log, self.end_wait_s = path, log, end_wait_s
        self.busy_s = 0.0
        self.finished = False
        self._evals = 0                 # history entries already handed to the writer
        self._last_eval = None
        self._loss_progress = -1.0
        self._losses = 0                # loss points handed over (the library's sequence numbers)
        self._lrs = 0
        self._health = 0                # health records handed over
        self._health_progress = -1.0
        t0 = time.perf_counter()
        row = run_row(config, dataset, socket.gethostname(), command=command, sweep=sweep, trial=trial)
        self.writer = RunWriter(path, row, log=log)
        self.busy_s += time.perf_counter() - t0

    @property
    def active(self):
        """Recording has not stopped for good."""
        return self.writer.failed is None

    @property
    def run_id(self):
        """The run's id in the library, once its row is written (None before, or when not recorded)."""
        return self.writer.run_id

    def sync(self, history, elapsed_s):
        """Hand the writer what `history` (history.History) gained since the last sync; its
        new evaluations get elapsed_s. Never waits for the library."""
        if not self.active or self.finished:
            return
        t0 = time.perf_counter()
        evals = history.evals
        replace = self._evals > 0 and len(evals) >= self._evals and evals[self._evals - 1] is not self._last_eval
        start = self._evals - 1 if replace else self._evals
        new_evals = [(float(r.progress), r.kind, _num(r.accuracy), [_num(v) for v in r.per_class], int(r.epoch),
                      int(r.batch), _num(elapsed_s)) for r in evals[start:]]
        losses = [(float(p), float(v)) for p, v in history.loss
                  if p > self._loss_progress and v is not None and math.isfinite(v)]
        lrs = [(float(p), float(v)) for p, v in history.lr_changes[self._lrs:]]
        health = [(float(r.progress), int(r.epoch), int(r.batch), r.to_json()) for r in history.health
                  if r.progress > self._health_progress]     # (the history thins old records: by progress)
        self.writer.add((start, new_evals), (self._losses, losses), (self._lrs, lrs), (self._health, health))
        self._evals = len(evals)
        self._last_eval = evals[-1] if evals else None
        if history.loss:
            self._loss_progress = max(self._loss_progress, history.loss[-1][0])
        self._losses += len(losses)
        self._lrs = len(history.lr_changes)
        if health:
            self._health_progress = health[-1][0]
        self._health += len(health)
        self.busy_s += time.perf_counter() - t0

    def finish(self, status, evaluation=None, wall_s=None, samples_per_s=None, model_file=None, error=None,
               history=None, elapsed_s=None):
        """The run's end (evaluation: the final history.EvalRecord); with `history`, a last
        sync first. Once only. Waits up to end_wait_s for the writer; a library still
        locked (or a disk still full) then costs one line, and the end stays with the
        writer and in its hand-off file."""
        if not self.active or self.finished:
            return
        if history is not None:
            self.sync(history, elapsed_s if elapsed_s is not None else wall_s)
        t0 = time.perf_counter()
        self.finished = True
        self.writer.end(status=status, test_accuracy=None if evaluation is None else _num(evaluation.accuracy),
                        per_class=None if evaluation is None else [_num(v) for v in evaluation.per_class],
                        wall_s=_num(wall_s), samples_per_s=_num(samples_per_s), model_file=model_file, error=error)
        if not self.writer.wait(self.end_wait_s) and self.active:
            later = (f"it is kept in {self.writer.handoff}, which whoever opens the library next applies"
                     if self.writer.handoff else "it is retried while this process runs")
            self.log(f"runs library {self.path}: the run's end is not recorded yet ({later})")
        self.busy_s += time.perf_counter() - t0

    def wait(self, timeout):
        """Whether the writer caught up (or stopped) within `timeout` s."""
        return self.writer.wait(timeout)


class Recording(Observer):
    """The run-library adapter of the training loop: opens the run's record when training
    starts, writes each evaluation (with the loss curve and learning-rate changes since the
    last), and closes it with how the run ended, the final evaluation, the model file."""

    def __init__(self, path, config, dataset, command=None, log=print):
        self.path, self.config, self.dataset, self.command, self.log = path, config, dataset, command, log
        self.recorder = None

    def on_start(self, run):
        self.recorder = RunRecorder(self.path, self.config, self.dataset, command=self.command, log=self.log)
        self.recorder.sync(run.trainer.history, run.elapsed_s)      # the evaluations before this session's first batch

    def on_evaluation(self, run, record):
        if self.recorder is not None:
            self.recorder.sync(run.trainer.history, run.elapsed_s)

    def on_end(self, run, outcome):
        if self.recorder is None:
            return
        status, error = outcome.status, outcome.error
        if run.save_error:
            status, error = "failed", run.save_error
        self.recorder.finish(status, None if status == "failed" else outcome.final, wall_s=run.elapsed_s,
                             samples_per_s=run.samples_per_s or None, model_file=run.model_file, error=error,
                             history=run.trainer.history)

    @property
    def busy_s(self):
        return self.recorder.busy_s if self.recorder is not None else 0.0

    @property
    def write_s(self):
        """Seconds the background writer spent writing (its own thread, not the loop's)."""
        return self.recorder.writer.write_s if self.recorder is not None else 0.0

    @property
    def run_id(self):
        return self.recorder.run_id if self.recorder is not None else None
