"""Running a sweep: the parent's loop and asking the study for configurations.

This module owns the parent's side of a sweep (`run_sweep`, `Sweep`): it asks the Optuna
study (study.py) for configurations in a fixed order (a grid's combinations enqueued so the
study records them; an earlier session's interrupted configuration first, to continue it),
hands each configuration's runs (one per seed with --repeats) to a pool of workers
(trials.py) as slots free up, and stops them all on Ctrl+C. What the parent does with the
workers' messages (recording, judging checkpoints, ending runs) is sweep_messages.py; what
to run comes from the command line as a sweep_plan.SweepPlan; the start and end of a sweep
(the journal, the leaderboard, --save) are sweep_end.py.

Imports: the standard library, sweep_plan, study, sweep_messages, sweep_report and trials
at import time; Optuna and the trainer's History inside the functions that need them.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import sys
import time

from mnist_live.runs import study as studies
from mnist_live.runs.study import SweepFailed
from mnist_live.runs.sweep_messages import Job, RunMessages, Trial
from mnist_live.runs.sweep_plan import SweepError, expand_grid, flag, trial_config
from mnist_live.runs.sweep_report import Progress
from mnist_live.runs.trials import DaskPool, LocalPool, TrialJob

STOP_GRACE_S = 15.0           # after Ctrl+C the trials have this long to stop before they are killed

__all__ = ["SweepError", "SweepFailed", "Sweep", "Job", "Trial", "run_sweep", "sweep_folder"]


def sweep_folder(library_path):
    return os.path.join(os.path.dirname(os.path.abspath(library_path)), "sweeps")


class Sweep(RunMessages):
    """The parent's side of a sweep: the study, asking it for configurations, their runs in
    flight, the loop (the messages of the runs: sweep_messages.RunMessages)."""

    def __init__(self, plan, name, study, library_path, data, out=None, pruner=None):
        self.plan, self.name, self.study, self.library_path = plan, name, study, library_path
        self.dataset, self.n_train = data.summary(), len(data.y_train)
        self.has_val = bool(plan.base.val)
        self.pruner = pruner
        self.out = out or sys.stdout
        self.trials = []                             # this session's, in the order asked
        self.jobs = {}                               # key -> Job running
        self.todo = []                               # jobs waiting for a slot, in order
        self.pending = []                            # (job, step): checkpoints waiting for a decision
        self.next_key = 0
        self.stopping = False
        self.progress = Progress(self.out)
        self.distributions = studies.distributions(plan.specs)

    # -- what to run
    def plan_work(self):
        """How many configurations are left: grid combinations not done, or search trials left."""
        from optuna.trial import TrialState
        for t in self.study.trials:                   # a parent that died without telling
            if t.state == TrialState.RUNNING:
                self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        done = [t for t in self.study.trials if t.user_attrs.get("status") not in (None, "interrupted")]
        resumed = {t.user_attrs.get("resumed_from") for t in self.study.trials}
        self.stopped = {t.user_attrs.get("combo", t.number): t for t in self.study.trials    # newest last
                        if t.user_attrs.get("status") == "interrupted" and t.number not in resumed}
        if self.plan.search:
            self.left = max(self.plan.search - len(done), 0)
            self.again = [t for t in self.stopped.values() if self._saved(t)][:self.left]
        else:
            finished = {t.user_attrs.get("combo") for t in done}
            self.grid = expand_grid(self.plan.specs)
            self.combos = [i for i in range(len(self.grid)) if i not in finished]
            self.left = len(self.combos)
        return self.left

    def can_ask(self):
        """Another configuration may be asked: one is left and (a search) the trials the
        sampler will see for it have all ended (study.window)."""
        if self.left <= 0:
            return False
        if not self.plan.search:
            return True
        cut = len(self.study.trials) - self.window
        return all(t.told for t in self.trials if t.study_trial.number < cut)

    def ask(self, model_folder):
        """The next configuration from the study (a grid's combination enqueued first, so the
        study records its parameters), its runs queued."""
        stopped = None                                # an earlier session's interrupted configuration
        if not self.plan.search:
            combo = self.combos.pop(0)
            stopped = self.stopped.get(combo)
            self.study.enqueue_trial(self.grid[combo], user_attrs={"combo": combo})
        elif self.again:
            stopped = self.again.pop(0)
            self.study.enqueue_trial(stopped.params)
        study_trial = self.study.ask(self.distributions)
        params = dict(study_trial.params)
        number = study_trial.user_attrs.get("combo", study_trial.number)
        config = trial_config(self.plan.base, params).replace(save=None, metrics=None)
        trial = Trial(number, study_trial, params, config, self.plan.repeats)
        for r in range(self.plan.repeats):
            job = Job(self.next_key, trial, r, config.replace(seed=config.seed + r))
            self.next_key += 1
            trial.jobs.append(job)
            self.todo.append(job)
        if stopped is not None:
            self._continue(trial, stopped)
        self.trials.append(trial)
        self.left -= 1
        self.model_folder = model_folder

    def resume_file(self, trial, repeat):
        """Where the run `repeat` of configuration `trial` (a Trial or an earlier FrozenTrial)
        keeps its state when interrupted."""
        attrs = trial.study_trial.user_attrs if isinstance(trial, Trial) else trial.user_attrs
        number = trial.study_trial.number if isinstance(trial, Trial) else trial.number
        name = f"combo-{attrs['combo']}" if "combo" in attrs else f"trial-{number}"
        return os.path.join(self.resume_folder, f"{name}-seed-{repeat}.npz")

    def _saved(self, stopped):
        return any(os.path.isfile(self.resume_file(stopped, r)) for r in range(self.plan.repeats))

    def _continue(self, trial, stopped):
        """Configuration `trial` takes over the interrupted `stopped`: its runs continue from the
        states they saved, its checkpoints so far are the study's again."""
        trial.study_trial.set_user_attr("resumed_from", stopped.number)
        for step, value in sorted(stopped.intermediate_values.items()):
            trial.study_trial.report(value, step)
            trial.reported.add(step)
        trial.lead.values = dict(stopped.intermediate_values)
        for job in trial.jobs:
            path = self.resume_file(stopped, job.repeat)
            job.load_path = path if os.path.isfile(path) else None

    def start(self, pool, job, slot):
        from mnist_live.training.history import History
        job.slot, job.history, job.started = slot, History(), time.monotonic()
        model_path = os.path.join(self.model_folder, f"run-{job.key}.npz") if self.plan.base.save else None
        cluster = isinstance(pool, DaskPool)
        load = {}
        if job.load_path:                              # a cluster's worker cannot read our files: their bytes
            load = {"load_bytes": open(job.load_path, "rb").read()} if cluster else {"load_path": job.load_path}
        self.jobs[job.key] = job
        job.future, job.answers = pool.submit(TrialJob(
            job.key, job.config, job.trial.params, model_path=model_path, return_model=cluster,
            resume_path=None if cluster else self._resume_path(job), **load))

    def _resume_path(self, job):
        os.makedirs(self.resume_folder, exist_ok=True)
        return self.resume_file(job.trial, job.repeat)

    # -- messages from the workers
    def _drain(self, pool, timeout=0.0):
        while True:
            try:
                self.handle(pool.get(timeout=timeout))
            except queue.Empty:
                return
            timeout = 0.0

    # -- the loop
    def run(self, pool, slots, model_folder):
        self.model_folder = model_folder
        self.window = studies.window(slots)
        self.free_slots = list(range(slots))
        self.progress.slots = slots
        # Ctrl+C and SIGTERM only set a flag: an exception in the middle of a call to the
        # Manager would leave its connection half-read.
        self.signals = 0

        def count(signum, frame):
            self.signals += 1
        previous = {sig: signal.signal(sig, count) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while (self.left > 0 or self.todo or self.jobs) and not self.signals:
                while self.free_slots and (self.todo or self.can_ask()):
                    if not self.todo:
                        self.ask(model_folder)
                        continue
                    self.start(pool, self.todo.pop(0), self.free_slots.pop(0))
                self._drain(pool, timeout=0.1)
                self.decide()
                self._check_futures(pool)
            if self.signals:
                self.stop(pool)
                return "interrupted"
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return "done"

    def stop(self, pool):
        """Ctrl+C or SIGTERM: every running run is told to stop, has STOP_GRACE_S to say it
        has, and is recorded as interrupted either way."""
        self.stopping = True
        self.progress.line(f"interrupted: stopping {len(self.jobs)} running trial(s)")
        self.decide()
        for job in self.jobs.values():
            try:
                job.answers.put("stop")
            except Exception:                               # the channel is gone: the process will be killed
                pass
        deadline = time.monotonic() + STOP_GRACE_S
        while self.jobs and time.monotonic() < deadline and self.signals < 2:   # a second Ctrl+C: no waiting
            self._drain(pool, timeout=0.1)
            self._check_futures(pool)
        for job in list(self.jobs.values()):
            self._end(job, "interrupted", None)
        for trial in self.trials:                          # configurations whose seeds never started
            trial.jobs = [j for j in trial.jobs if j.status is not None]
            if trial.jobs and not trial.told:
                from mnist_live.runs.sweep_end import tell
                tell(self, trial)


def run_sweep(plan, load_data, out=None):
    """Run `plan` (a SweepPlan): returns the exit status (0 when a trial finished, 1 when none
    did, 130 when interrupted). `load_data(config)` loads the data set once, in this process.
    SweepError for a usage problem found here (an unknown or existing sweep name);
    SweepFailed for a sweep that cannot run (locked, a damaged journal, no cluster)."""
    from mnist_live.runs import library as run_library
    from mnist_live.runs.sweep_end import run_locked
    out = out or sys.stdout
    library_path = plan.base.runs or run_library.default_path(plan.base.data_home)
    folder = sweep_folder(library_path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise SweepFailed(f"cannot create the sweeps folder {folder}: {e.strerror or e}") from None
    name = plan.resume or plan.name or time.strftime("sweep-%Y%m%d-%H%M%S")
    with studies.SweepLock(folder, name):
        return run_locked(plan, name, folder, library_path, load_data, out)


def start_pool(plan, data, slots_wanted, temp):
    """(pool, slots): the Dask cluster's or local worker processes."""
    if plan.scheduler:
        pool = DaskPool(plan.scheduler, data, os.path.basename(temp))
        return pool, min(plan.jobs or pool.slots, pool.slots, slots_wanted)
    slots = min(plan.jobs or os.cpu_count() or 1, slots_wanted)
    return LocalPool(slots, data, temp), slots


def announce(plan, name, total, pool, out):
    varying = ", ".join(dict.fromkeys(flag(k) for k in plan.specs))
    seeds = f", {plan.repeats} seeds each" if plan.repeats > 1 else ""
    chosen = f"validation split of {plan.base.val:,} images" if plan.base.val else "test set (--val 0)"
    print(f"Sweep {name}: {'search of' if plan.search else 'grid of'} {total} trials{seeds} over {varying} "
          f"on {pool.where}, pruner {plan.pruner}, chosen on the {chosen}" + (" (resumed)" if plan.resume else ""),
          file=out, flush=True)


def clean(temp):
    shutil.rmtree(temp, ignore_errors=True)

