"""Running a sweep: the parent's loop, its trials and their runs, pruning, the summary.

This module owns the parent's side of a sweep (`run_sweep`, `Sweep`): it asks the Optuna
study (study.py) for configurations in a fixed order, hands each configuration's runs
(one per seed with --repeats) to a pool of workers (trials.py), answers their
prune-or-continue questions (in trial order, each judged against the trials before it at
the same checkpoint, so the answers do not depend on --jobs), tells the study how each
configuration ended (its mean validation accuracy: the test set is scored once per
finished run and never chosen on), writes every run into the run library as it trains
(recorder.RunRecorder), draws the live lines and prints the leaderboard at the end
(sweep_report.py). What to run comes from the command line as a sweep_plan.SweepPlan; the
end of a sweep (the leaderboard, --save) is sweep_end.py.

Imports: the standard library, config, sweep_plan, study, sweep_report and trials at
import time; NumPy, Optuna, the trainer, the run library and the recorder inside the
functions that need them.
"""
from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field

from mnist_live.runs import study as studies
from mnist_live.runs.study import SweepFailed
from mnist_live.runs.sweep_plan import SweepError, command_line, expand_grid, flag, trial_config
from mnist_live.runs.sweep_report import Progress, format_value
from mnist_live.runs.trials import DaskPool, LocalPool, TrialJob
from mnist_live.training.config import Config

STOP_GRACE_S = 15.0           # after Ctrl+C the trials have this long to stop before they are killed
RESTARTS = 2                  # a run whose Dask worker was lost is started again up to this often
LOST = "its Dask worker was lost; the run was started again"

__all__ = ["SweepError", "SweepFailed", "Sweep", "run_sweep", "sweep_folder"]


@dataclass
class Job:
    """One run of a configuration (a seed of it), handed to a worker."""
    key: int                      # unique in this session: the messages' "trial"
    trial: Trial
    repeat: int
    config: Config
    slot: int | None = None
    future: object = None
    answers: object = None
    recorder: object = None
    history: object = None        # history.History mirrored from the reports
    values: dict = field(default_factory=dict)      # step -> checkpoint accuracy
    progress: float = 0.0
    started: float = field(default_factory=time.monotonic)
    load_path: str | None = None  # the state an earlier session's interrupted run saved, to continue from
    status: str | None = None     # how it ended, once it has
    val: float | None = None
    test: float | None = None
    wall_s: float | None = None
    model_file: str | None = None
    restarts: int = 0

    @property
    def label(self):
        """"3: lr=0.001 batch_size=64" (with --repeats: "3.1: ... seed 1")."""
        seed = f" seed {self.config.seed}" if self.trial.repeats > 1 else ""
        number = f"{self.trial.number}.{self.repeat}" if self.trial.repeats > 1 else f"{self.trial.number}"
        return f"{number}: {self.trial.label}{seed}"


@dataclass
class Trial:
    """One configuration: an Optuna trial and its runs."""
    number: int                   # as shown: the grid's combination, or the study's trial number
    study_trial: object           # optuna.Trial
    params: dict                  # {axis: value} as the study stores them
    config: Config
    repeats: int = 1
    jobs: list = field(default_factory=list)
    pruned: bool = False
    told: bool = False
    reported: set = field(default_factory=set)     # checkpoint steps told to the study (the first seed's)

    @property
    def label(self):
        return " ".join(f"{k}={format_value(v)}" for k, v in self.params.items())

    @property
    def lead(self):
        """The run whose checkpoints the pruner judges (the first seed's)."""
        return self.jobs[0]

    @property
    def ended(self):
        return all(j.status is not None for j in self.jobs)


def sweep_folder(library_path):
    return os.path.join(os.path.dirname(os.path.abspath(library_path)), "sweeps")


class Sweep:
    """The parent's side of a sweep: the study, the configurations and runs in flight, the run library."""

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
    def handle(self, msg):
        job = self.jobs.get(msg["trial"])
        if job is None or job.status is not None:
            return
        kind = msg["kind"]
        job.progress = msg.get("progress", job.progress)
        if kind == "start":
            if job.recorder is not None:                 # Dask ran it again on another worker
                self._rerun(job)
            self._record_start(job)
            self.progress.start(job.key, job.slot, job.config.epochs, job.label, at=job.progress)
        elif kind == "tick":
            self.progress.update(job.key, job.progress, job.label, f"loss {msg['loss']:.3f}")
        else:
            self._mirror(job, msg)
            if kind == "report":
                self._report(job, msg)
            elif kind == "done":
                self._end(job, msg["status"], msg)

    def _report(self, job, msg):
        step, value, trial = msg["step"], msg["value"], job.trial
        job.values[step] = value
        what = "val" if self.has_val else "test"
        self.progress.update(job.key, job.progress, job.label, f"{what} subset {100 * value:.1f} %")
        if job is trial.lead and step not in trial.reported:
            trial.study_trial.report(value, step)
            trial.reported.add(step)
        last = msg["progress"] >= job.config.epochs             # nothing left to save: never prune the end
        if self.stopping:
            job.answers.put("stop")
        elif trial.pruned:
            job.answers.put("prune")
        elif job is not trial.lead or last:
            job.answers.put("go")
        else:
            self.pending.append((job, step))

    def decide(self):
        """Answer the waiting checkpoints whose turn it is: trial k at a checkpoint once every
        earlier trial of this session has got there too (or ended)."""
        for job, step in list(self.pending):
            if self.stopping:
                self.pending.remove((job, step))
                job.answers.put("stop")
                continue
            number = job.trial.study_trial.number
            behind = [t for t in self.trials if t.study_trial.number < number and t.lead.status is None
                      and max(t.lead.values, default=-1) < step]
            if behind:
                continue
            self.pending.remove((job, step))
            prune = self._prune(job.trial, step)
            job.trial.pruned |= prune
            job.answers.put("prune" if prune else "go")

    def _prune(self, trial, step):
        from optuna.trial import TrialState
        storage = self.study._storage
        own = {t.study_trial.number: t.lead.values for t in self.trials}
        earlier = [studies.as_of(t, step, own.get(t.number, t.intermediate_values))
                   for t in self.study.get_trials(deepcopy=False) if t.number < trial.study_trial.number]
        current = studies.as_of(storage.get_trial(trial.study_trial._trial_id), step, trial.lead.values)
        current.state = TrialState.RUNNING
        return self.pruner.prune(studies.prune_view(self.study, earlier, current), current)

    def _record_start(self, job):
        from mnist_live.runs.recorder import RunRecorder
        job.recorder = RunRecorder(self.library_path, job.config, self.dataset,
                                   command=command_line(job.config)[1:], sweep=self.name, trial=job.trial.number,
                                   log=self.progress.line)
        if job.recorder.run_id is not None:
            ids = [j.recorder.run_id for j in job.trial.jobs if j.recorder is not None and j.recorder.run_id]
            job.trial.study_trial.set_user_attr("run_ids", ids)

    def _mirror(self, job, msg):
        for record in msg["evals"]:                        # history.EvalRecord, as the run recorded it
            job.history.add_eval(record)
        for p, loss in msg["losses"]:
            job.history.add_loss(p, loss)
        if job.recorder is not None:
            job.recorder.sync(job.history, msg["elapsed"])

    def _end(self, job, status, msg):
        """Record a run's end in the library; free its slot; tell the study once all the
        configuration's runs have ended."""
        msg = msg or {}
        ev, val = msg.get("final"), msg.get("final_val")     # history.EvalRecords: test (finished only), validation
        job.status, job.wall_s = status, msg.get("wall_s", time.monotonic() - job.started)
        job.test = None if ev is None else ev.accuracy
        job.val = None if val is None else val.accuracy
        if job.recorder is None and status == "failed":    # died before it started: still a run that failed
            self._record_start(job)
        if job.recorder is not None:
            job.recorder.finish(status, evaluation=ev, wall_s=job.wall_s, samples_per_s=msg.get("samples_per_s"),
                                error=msg.get("error"))
        if status == "finished" and self.plan.base.save:
            job.model_file = os.path.join(self.model_folder, f"run-{job.key}.npz")
            if msg.get("model_bytes"):
                with open(job.model_file, "wb") as f:
                    f.write(msg["model_bytes"])
        elif status == "interrupted" and msg.get("model_bytes"):     # a cluster's run: its state came back
            with open(self._resume_path(job), "wb") as f:
                f.write(msg["model_bytes"])
        if job.load_path and job.load_path != self.resume_file(job.trial, job.repeat):
            with contextlib.suppress(OSError):           # continued: the earlier state is used up
                os.remove(job.load_path)
        if status == "pruned" or (job is job.trial.lead and status != "finished"):
            job.trial.pruned |= status == "pruned"
            self.todo = [j for j in self.todo if j.trial is not job.trial]   # its other seeds need not run
            job.trial.jobs = [j for j in job.trial.jobs if j.status is not None or j.key in self.jobs]
        number, _, params = job.label.partition(": ")
        self.progress.end(job.key, f"trial {number} {self._what(job, msg)} in {job.wall_s:.1f} s ({params})",
                          status, job.val if self.has_val else job.test, job.trial.number)
        self.jobs.pop(job.key, None)
        self.free_slots.append(job.slot)
        if job.trial.ended and not job.trial.told:
            from mnist_live.runs.sweep_end import tell
            tell(self, job.trial)

    def _what(self, job, msg):
        acc = [f"val acc {100 * job.val:.2f} %"] if job.val is not None else []
        acc += [f"test acc {100 * job.test:.2f} %"] if job.test is not None else []
        return {"finished": "finished: " + ", ".join(acc), "pruned": f"pruned at epoch {job.progress:.2f}"
                + (f" ({acc[0]})" if acc else ""), "diverged": "diverged",
                "interrupted": f"interrupted at epoch {job.progress:.2f}",
                "failed": f"failed: {msg.get('error')}"}[job.status]

    def _check_futures(self, pool):
        """Runs whose process ended without a final report (killed, out of memory) failed;
        one whose Dask worker was lost starts again."""
        for job in list(self.jobs.values()):
            if job.future is None or not job.future.done() or job.status is not None:
                continue
            self._drain(pool)
            if job.status is not None:
                continue
            if pool.lost(job.future) and job.restarts < RESTARTS and not self.stopping:
                self._restart(pool, job)
                continue
            try:
                e = job.future.exception()
            except Exception as cancelled:
                e = cancelled
            error = "the worker ended without a word" if e is None else \
                f"{type(e).__name__}: {' '.join(str(e).split())}"
            self._end(job, "interrupted" if self.stopping else "failed", {"error": error[:300]})

    def _rerun(self, job):
        """The run started again (its worker was lost and Dask gave the task to another): the
        first attempt's row ends as failed, the mirror starts afresh, no answer meant for the
        first attempt reaches the second."""
        from mnist_live.training.history import History
        job.recorder.finish("failed", error=LOST)
        self.progress.line(f"trial {job.label.partition(':')[0]}: its Dask worker was lost; starting it again")
        self.pending = [(j, s) for j, s in self.pending if j is not job]
        while job.answers.qsize() > 0:
            job.answers.get(timeout=1)
        job.history, job.values, job.progress, job.started = History(), {}, 0.0, time.monotonic()

    def _restart(self, pool, job):
        """The run's worker was lost: its row ends as failed, and the run starts again on another worker."""
        if job.recorder is not None:
            job.recorder.finish("failed", error=LOST)
        self.progress.line(f"trial {job.label.partition(':')[0]}: its Dask worker was lost; starting it again")
        self.jobs.pop(job.key, None)
        self.pending = [(j, s) for j, s in self.pending if j is not job]
        fresh = Job(self.next_key, job.trial, job.repeat, job.config, restarts=job.restarts + 1)
        self.next_key += 1
        job.trial.jobs[job.trial.jobs.index(job)] = fresh
        self.start(pool, fresh, job.slot)

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

