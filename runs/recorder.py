"""Recording one run into the run library while it trains: `RunRecorder`, and `Recording`,
the observer that records what the training loop trains (the loop never imports this).

What it owns: a run's row from its start to its end (`RunRecorder(path, config, dataset)`,
`.sync(history, elapsed_s)` after each evaluation (its evaluations, loss curve, learning-rate
changes and health records), `.finish(status, ...)` once), written
through library.RunLibrary, and never raising into training: a library problem becomes one
line 'runs not recorded: ...' (printed once) and recording stops. Headless and window runs
record through `Recording`; a sweep's parent records its trials with `RunRecorder`.

Imports: the standard library, runs.library and the loop's Observer (it is handed
`config.Config` objects, history.History and history.EvalRecord). No NumPy.
"""
from __future__ import annotations

import sqlite3
import time

from mnist_live.runs.library import RunLibrary, RunLibraryError, sqlite_reason
from mnist_live.training.loop import Observer


class RunRecorder:
    """Writes one run into the library as it trains; never raises into training: a library
    problem becomes one line 'runs not recorded: ...' (printed once) and recording stops.

    Build it where the training happens (from a path: nothing to pickle). `busy_s` is the
    time spent in its calls (bench/bench_runs.py)."""

    def __init__(self, path, config, dataset, command=None, sweep=None, trial=None, log=print):
        self.path, self.log = path, log
        self.run_id = None
        self.lib = None
        self.busy_s = 0.0
        self.finished = False
        self._evals = 0                 # history entries already written
        self._last_eval = None
        self._loss_progress = -1.0
        self._health_progress = -1.0
        self._lrs = 0
        t0 = time.perf_counter()
        try:
            self.lib = RunLibrary(path)
            self.run_id = self.lib.start_run(config, dataset, command=command, sweep=sweep, trial=trial)
        except (RunLibraryError, sqlite3.Error, OSError) as e:
            self._fail(e)
        finally:
            self.busy_s += time.perf_counter() - t0

    @property
    def active(self):
        return self.run_id is not None

    def _fail(self, e):
        why = str(e) if isinstance(e, RunLibraryError) else f"runs library {self.path}: {sqlite_reason(e)}"
        self.log(f"runs not recorded: {why}")
        self.run_id = None
        if self.lib is not None:
            self.lib.close()
            self.lib = None

    def sync(self, history, elapsed_s):
        """Write what `history` (trainer.History) gained since the last sync, in one
        transaction; its new evaluations get elapsed_s."""
        if not self.active:
            return
        t0 = time.perf_counter()
        try:
            evals = history.evals
            replace = self._evals > 0 and len(evals) >= self._evals and evals[self._evals - 1] is not self._last_eval
            start = self._evals - 1 if replace else self._evals
            new_evals = [(r.progress, r.kind, r.accuracy, r.per_class, r.epoch, r.batch, elapsed_s)
                         for r in evals[start:]]
            losses = [pt for pt in history.loss if pt[0] > self._loss_progress]
            lrs = history.lr_changes[self._lrs:]
            health = [(r.progress, r.epoch, r.batch, r.to_json()) for r in history.health
                      if r.progress > self._health_progress]
            if new_evals or losses or lrs or health:
                self.lib.record(self.run_id, new_evals, losses, lrs, replace_last_eval=replace, health=health)
            self._evals = len(evals)
            self._last_eval = evals[-1] if evals else None
            if losses:
                self._loss_progress = losses[-1][0]
            if health:
                self._health_progress = health[-1][0]
            self._lrs = len(history.lr_changes)
        except (RunLibraryError, sqlite3.Error, OSError) as e:
            self._fail(e)
        finally:
            self.busy_s += time.perf_counter() - t0

    def finish(self, status, evaluation=None, wall_s=None, samples_per_s=None, model_file=None, error=None,
               history=None, elapsed_s=None):
        """The run's end (evaluation: the final history.EvalRecord); with `history`, a last
        sync first. Once only."""
        if not self.active or self.finished:
            return
        if history is not None:
            self.sync(history, elapsed_s if elapsed_s is not None else wall_s)
            if not self.active:
                return
        t0 = time.perf_counter()
        try:
            self.lib.finish_run(self.run_id, status,
                                test_accuracy=None if evaluation is None else float(evaluation.accuracy),
                                per_class=None if evaluation is None else [float(v) for v in evaluation.per_class],
                                wall_s=wall_s, samples_per_s=samples_per_s, model_file=model_file, error=error)
            self.finished = True
        except (RunLibraryError, sqlite3.Error, OSError) as e:
            self._fail(e)
        finally:
            self.busy_s += time.perf_counter() - t0
        self.close()

    def close(self):
        if self.lib is not None:
            self.lib.close()
            self.lib = None


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
    def run_id(self):
        return self.recorder.run_id if self.recorder is not None else None
