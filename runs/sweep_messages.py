"""A sweep's runs as the parent sees them: what a configuration (`Trial`) and each of its runs
(`Job`, one per seed) are, and what the parent does with its workers' messages
(`RunMessages`, a part of sweeps.Sweep): a run starting (recorded in the run library), its
ticks and checkpoints (answered go, prune or stop: a configuration's first seed is judged,
in trial order, against the trials before it at the same checkpoint), its end (the study
told once all the configuration's runs have ended), and a run whose Dask worker was lost
(started again).

Imports: the standard library, config, study and sweep_report at import time; the
trainer's History, the recorder and sweep_end inside the methods that need them.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

from mnist_live.runs import study as studies
from mnist_live.runs.sweep_plan import command_line
from mnist_live.runs.sweep_report import format_value
from mnist_live.training.config import Config

LOST = "its Dask worker was lost; the run was started again"
RESTARTS = 2                  # a run whose Dask worker was lost is started again up to this often


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


class RunMessages:
    """The part of sweeps.Sweep that answers the workers' messages, judges checkpoints and
    ends runs (it uses the Sweep's state: jobs, trials, pending, study, progress, ...)."""

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
        elif job is not trial.lead or last or self.plan.pruner == "none":    # nothing to judge: no waiting
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
        self._name_runs(job.trial)

    @staticmethod
    def _name_runs(trial):
        """The study trial names the runs of its configuration that the library has written so
        far (the recorder's writer makes a run's row in the background: at the start it may
        not be there yet; at a run's end, after `finish`, it is)."""
        ids = [j.recorder.run_id for j in trial.jobs if j.recorder is not None and j.recorder.run_id]
        if ids:
            trial.study_trial.set_user_attr("run_ids", ids)

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
            self._name_runs(job.trial)
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
