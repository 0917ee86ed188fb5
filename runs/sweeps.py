"""Running a sweep: the parent's loop, the Optuna study with pruning, progress and the leaderboard.

This module owns the parent's side of a sweep (`run_sweep`, `Sweep`): it holds the Optuna
study (ask/tell, the journal file in the sweeps folder next to the run library), hands the
trials out to a pool of workers (sweep_workers.py), answers their prune-or-continue
questions, writes every trial into the run library as it trains (run_recorder.RunRecorder),
draws one progress line per running trial (`Progress`) and prints the leaderboard and the
best configuration at the end (`report`, `leaderboard`). What to run comes from the command
line as a sweep_plan.SweepPlan.

Imports: the standard library, config, sweep_plan and sweep_workers at import time; NumPy,
Optuna, tqdm, trainer, run_history, run_library, run_recorder and files inside the
functions that need them.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field

from mnist_live.runs.sweep_plan import Range, SweepError, SweepPlan, command_line, expand_grid, flag, trial_config
from mnist_live.runs.trials import REPORTS_PER_EPOCH, DaskPool, LocalPool, SweepFailed, TrialJob
from mnist_live.training.config import Config

STOP_GRACE_S = 15.0           # after Ctrl+C the trials have this long to stop before they are killed
PRUNER_STARTUP = 4            # trials the median pruner lets complete before it prunes


# ------------------------------------------------------------------ the leaderboard (pure)
STATUS_ORDER = {"finished": 0, "pruned": 1, "interrupted": 2, "diverged": 3, "failed": 4, "running": 5}


def format_value(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def leaderboard(trials, varying):
    """Markdown table rows of `trials` (dicts: number, params, status, accuracy, wall_s, step),
    best first: finished by test accuracy, then pruned, interrupted, diverged, failed."""
    def key(t):
        return (STATUS_ORDER.get(t["status"], 9), -(t["accuracy"] if t["accuracy"] is not None else -1), t["number"])
    head = ["rank", "trial", *varying, "status", "test acc %", "epochs", "time s"]
    rows = [head, ["---"] * len(head)]
    for rank, t in enumerate(sorted(trials, key=key), start=1):
        acc = f"{100 * t['accuracy']:.2f}" if t["accuracy"] is not None else "-"
        rows.append([str(rank), str(t["number"]), *(format_value(t["params"][k]) for k in varying), t["status"],
                     acc, f"{t.get('progress', 0):.2f}", f"{t['wall_s']:.1f}" if t.get("wall_s") else "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    out = []
    for r in rows:
        if r[0] == "---":
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        else:
            out.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    return out


def best_trial(trials):
    done = [t for t in trials if t["status"] == "finished" and t["accuracy"] is not None]
    return max(done, key=lambda t: (t["accuracy"], -t["number"])) if done else None


# ------------------------------------------------------------------ progress lines
class Progress:
    """One live line per running trial on a terminal (tqdm, one position per worker slot);
    plain lines when each trial starts and ends otherwise."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.bars = {}

    def start(self, st):
        if self.tty:
            from tqdm import tqdm
            self.bars[st.number] = tqdm(total=st.config.epochs, position=st.slot, leave=False, file=self.out,
                                        desc=f"trial {st.number:>3}", dynamic_ncols=True,
                                        bar_format="{desc} {bar} {n:.2f}/{total} epochs{postfix}")
            self.bars[st.number].set_postfix_str(st.label)
        else:
            self.line(f"trial {st.number} started: {st.label}")

    def update(self, st, text):
        bar = self.bars.get(st.number)
        if bar is not None:
            bar.n = min(st.progress, bar.total)
            bar.set_postfix_str(f"{st.label}  {text}", refresh=False)
            bar.refresh()

    def end(self, st, text):
        bar = self.bars.pop(st.number, None)
        if bar is not None:
            bar.close()
        self.line(f"trial {st.number} {text}")

    def line(self, text):
        if self.tty:
            from tqdm import tqdm
            tqdm.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)

    def close(self):
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


# ------------------------------------------------------------------ the parent
@dataclass
class Running:
    """A trial the parent has handed out."""
    number: int
    params: dict
    config: Config
    trial: object                 # optuna.Trial
    slot: int
    future: object = None
    answers: object = None
    recorder: object = None
    history: object = None        # trainer.History mirrored from the reports
    progress: float = 0.0
    started: float = field(default_factory=time.monotonic)
    ended: bool = False

    @property
    def label(self):
        return " ".join(f"{k}={format_value(v)}" for k, v in self.params.items())


def sweep_folder(library_path):
    return os.path.join(os.path.dirname(os.path.abspath(library_path)), "sweeps")


def _distributions(specs):
    import optuna
    out = {}
    for name, s in specs.items():
        if isinstance(s, Range):
            cls = optuna.distributions.IntDistribution if s.integer else optuna.distributions.FloatDistribution
            out[name] = cls(s.lo, s.hi, log=s.log)
        else:
            out[name] = optuna.distributions.CategoricalDistribution(list(s.values))
    return out


def _pruner(name):
    import optuna
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP, n_warmup_steps=1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


class Sweep:
    """The parent's side of a sweep: the study, the trials in flight, the run library."""

    def __init__(self, plan, name, study, library_path, dataset, out=None):
        self.plan, self.name, self.study, self.library_path, self.dataset = plan, name, study, library_path, dataset
        self.out = out or sys.stdout
        self.running = {}                           # number -> Running
        self.results = []                           # the trials of this session that ended (leaderboard rows)
        self.stopping = False
        self.progress = Progress(self.out)

    # -- what to run
    def pending_jobs(self):
        """The trial numbers still to run: grid combinations not yet done, or search trials left."""
        from optuna.trial import TrialState
        done = [t for t in self.study.trials if t.user_attrs.get("status") not in (None, "interrupted")]
        stale = [t for t in self.study.trials if t.state == TrialState.RUNNING]
        for t in stale:                               # a parent that died without telling
            self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        if self.plan.search:
            return max(self.plan.search - len(done), 0)
        finished = {t.user_attrs.get("combo") for t in done}
        self.grid = expand_grid(self.plan.specs)
        return [i for i in range(len(self.grid)) if i not in finished]

    def ask(self, todo, slot, model_folder):
        if self.plan.search:
            trial = self.study.ask(_distributions(self.plan.specs))
            params, number = dict(trial.params), trial.number
        else:
            combo = todo.pop(0)
            trial = self.study.ask()
            trial.set_user_attr("combo", combo)
            params, number = self.grid[combo], combo
        trial.set_user_attr("params", params)
        config = trial_config(self.plan.base, params).replace(save=None, metrics=None)
        st = Running(number, params, config, trial, slot)
        from mnist_live.training.history import History
        st.history = History()
        model_path = os.path.join(model_folder, f"trial-{number}.npz") if self.plan.base.save else None
        return st, TrialJob(number, config, params, model_path=model_path)

    # -- messages from the workers
    def handle(self, msg):
        st = self.running.get(msg["trial"])
        if st is None or st.ended:
            return
        kind = msg["kind"]
        st.progress = msg.get("progress", st.progress)
        if kind == "start":
            self._record_start(st)
            self.progress.start(st)
            return
        if kind == "tick":
            self.progress.update(st, f"loss {msg['loss']:.3f}")
            return
        self._mirror(st, msg)
        if kind == "report":
            st.trial.report(msg["value"], msg["step"])
            last = msg["progress"] >= st.config.epochs          # nothing left to save: never prune the end
            answer = "stop" if self.stopping else "prune" if not last and st.trial.should_prune() else "go"
            st.answers.put(answer)
            self.progress.update(st, f"subset acc {100 * msg['value']:.1f} %")
        elif kind == "done":
            self._end(st, msg["status"], msg)

    def _record_start(self, st):
        from mnist_live.runs.recorder import RunRecorder
        st.recorder = RunRecorder(self.library_path, st.config, self.dataset, command=command_line(st.config),
                                  sweep=self.name, trial=st.number, log=self.progress.line)

    def _mirror(self, st, msg):
        for record in msg["evals"]:                        # history.EvalRecord, as the trial recorded it
            st.history.add_eval(record)
        for p, loss in msg["losses"]:
            st.history.add_loss(p, loss)
        if st.recorder is not None:
            st.recorder.sync(st.history, msg["elapsed"])

    def _end(self, st, status, msg):
        """Record a trial's end in the library and the study; free its slot."""
        from optuna.trial import TrialState
        st.ended = True
        msg = msg or {}
        ev = msg.get("final")                               # history.EvalRecord of the weights it ended with
        acc = None if ev is None else ev.accuracy
        wall = msg.get("wall_s", time.monotonic() - st.started)
        if st.recorder is None and status == "failed":      # died before it started: still a run that failed
            self._record_start(st)
        if st.recorder is not None:
            st.recorder.finish(status, evaluation=ev, wall_s=wall, samples_per_s=msg.get("samples_per_s"),
                               error=msg.get("error"))
        st.trial.set_user_attr("status", status)
        if status == "finished":
            self.study.tell(st.trial, acc)
        else:
            self.study.tell(st.trial, state=TrialState.PRUNED if status == "pruned" else TrialState.FAIL)
        if status == "finished" and msg.get("model_bytes"):
            with open(os.path.join(self.model_folder, f"trial-{st.number}.npz"), "wb") as f:
                f.write(msg["model_bytes"])
        row = {"number": st.number, "params": st.params, "status": status, "accuracy": acc, "wall_s": wall,
               "progress": st.progress, "config": st.config, "error": msg.get("error"),
               "run_id": st.recorder.run_id if st.recorder is not None else None,
               "model_file": os.path.join(self.model_folder, f"trial-{st.number}.npz")
               if status == "finished" and self.plan.base.save else None}
        self.results.append(row)
        what = {"finished": f"finished: test acc {100 * acc:.2f} %" if acc is not None else "finished",
                "pruned": f"pruned at epoch {st.progress:.2f}" + (f" (test acc {100 * acc:.2f} %)" if acc else ""),
                "diverged": "diverged", "interrupted": f"interrupted at epoch {st.progress:.2f}",
                "failed": f"failed: {msg.get('error')}"}[status]
        self.progress.end(st, f"{what} in {wall:.1f} s ({st.label})")
        self.running.pop(st.number, None)
        self.free_slots.append(st.slot)

    def _check_futures(self, pool):
        """Trials whose process ended without a final report (killed, out of memory) failed."""
        for st in list(self.running.values()):
            if st.future is not None and st.future.done() and not st.ended:
                self._drain(pool)
                if not st.ended:
                    try:
                        e = st.future.exception()
                    except Exception as cancelled:
                        e = cancelled
                    error = f"{type(e).__name__}: {' '.join(str(e).split())}"[:300]
                    self._end(st, "interrupted" if self.stopping else "failed", {"error": error})

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
        todo = self.pending_jobs()
        left = (lambda: todo > 0) if self.plan.search else (lambda: bool(todo))
        self.free_slots = list(range(slots))
        # Ctrl+C and SIGTERM only set a flag: an exception in the middle of a call to the
        # Manager would leave its connection half-read.
        self.signals = 0

        def count(signum, frame):
            self.signals += 1
        previous = {sig: signal.signal(sig, count) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while (left() or self.running) and not self.signals:
                while left() and self.free_slots:
                    st, job = self.ask(todo, self.free_slots.pop(0), model_folder)
                    if self.plan.search:
                        todo -= 1
                    self.running[st.number] = st
                    st.future, st.answers = pool.submit(job)
                self._drain(pool, timeout=0.1)
                self._check_futures(pool)
            if self.signals:
                self.stop(pool)
                return "interrupted"
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return "done"

    def stop(self, pool):
        """Ctrl+C or SIGTERM: every running trial is told to stop, has STOP_GRACE_S to say it
        has, and is recorded as interrupted either way."""
        self.stopping = True
        self.progress.line(f"interrupted: stopping {len(self.running)} running trial(s)")
        for st in self.running.values():
            try:
                st.answers.put("stop")
            except Exception:                               # the channel is gone: the process will be killed
                pass
        deadline = time.monotonic() + STOP_GRACE_S
        while self.running and time.monotonic() < deadline and self.signals < 2:   # a second Ctrl+C: no waiting
            self._drain(pool, timeout=0.1)
            self._check_futures(pool)
        for st in list(self.running.values()):
            self._end(st, "interrupted", None)


def _open_study(storage_path, name, plan, create):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(storage_path))
    if create:
        sampler = optuna.samplers.TPESampler(seed=plan.base.seed)
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize", sampler=sampler,
                                    pruner=_pruner(plan.pruner))
        study.set_user_attr("plan", plan.to_json())
        return study, plan
    study = optuna.load_study(study_name=name, storage=storage)
    saved = SweepPlan.from_json(study.user_attrs["plan"], name=name, jobs=plan.jobs, scheduler=plan.scheduler,
                                resume=name)
    study = optuna.load_study(study_name=name, storage=storage, pruner=_pruner(saved.pruner),
                              sampler=optuna.samplers.TPESampler(seed=saved.base.seed + len(study.trials)))
    return study, saved


def run_sweep(plan, load_data, out=None):
    """Run `plan` (a SweepPlan): returns the exit status (0 when a trial finished, 1 when none
    did, 130 when interrupted). `load_data(config)` loads the data set once, in this process.
    SweepError for a usage problem found here (an unknown or existing sweep name)."""
    out = out or sys.stdout
    from mnist_live.runs import library as run_library
    library_path = plan.base.runs or run_library.default_path(plan.base.data_home)
    folder = sweep_folder(library_path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise SweepFailed(f"cannot create the sweeps folder {folder}: {e.strerror or e}") from None
    name = plan.resume or plan.name or time.strftime("sweep-%Y%m%d-%H%M%S")
    storage_path = os.path.join(folder, f"{name}.journal")
    if plan.resume and not os.path.isfile(storage_path):
        raise SweepError(f"argument --resume: no sweep {name!r} in {folder}")
    if not plan.resume and os.path.exists(storage_path):
        raise SweepError(f"argument --sweep-name: sweep {name!r} exists already ({storage_path}); "
                         f"--resume {name} continues it")
    study, plan = _open_study(storage_path, name, plan, create=not plan.resume)
    data = load_data(plan.base)
    sweep = Sweep(plan, name, study, library_path, data.summary(), out)
    total = plan.search or len(expand_grid(plan.specs))
    temp = os.path.join(folder, f"{name}.tmp")
    shutil.rmtree(temp, ignore_errors=True)            # left by a killed parent
    os.makedirs(temp)
    t0 = time.perf_counter()
    try:
        return _run(plan, name, sweep, data, total, temp, t0)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _run(plan, name, sweep, data, total, temp, t0):
    out = sweep.out
    pool = None
    try:
        if plan.scheduler:
            pool = DaskPool(plan.scheduler, data, name)
            slots = min(plan.jobs or pool.slots, pool.slots, total)
        else:
            slots = min(plan.jobs or os.cpu_count() or 1, total)
            pool = LocalPool(slots, data, temp)
        varying = ", ".join(flag(k) for k in plan.specs)
        print(f"Sweep {name}: {'search of' if plan.search else 'grid of'} {total} trials over {varying} "
              f"on {pool.where}, pruner {plan.pruner}" + (" (resumed)" if plan.resume else ""), file=out, flush=True)
        ended = sweep.run(pool, slots, temp)
    finally:
        sweep.progress.close()
        if pool is not None:
            pool.close()
    status = report(sweep, plan, name, time.perf_counter() - t0, out, interrupted=ended == "interrupted")
    return 130 if ended == "interrupted" else status


def report(sweep, plan, name, wall, out, interrupted=False):
    """The leaderboard of every trial of the sweep (earlier sessions' too), the best
    configuration as a command line, and --save. Returns the exit status."""
    rows = {r["number"]: r for r in _earlier_rows(sweep)}
    rows.update({r["number"]: r for r in sweep.results})
    rows = list(rows.values())
    counts = sorted(collections_counter(r["status"] for r in rows).items(), key=lambda c: STATUS_ORDER.get(c[0], 9))
    print(f"\nSweep {name}: {len(rows)} trials ({', '.join(f'{n} {s}' for s, n in counts)}); "
          f"this session {wall:.1f} s", file=out)
    for line in leaderboard(rows, list(plan.specs)):
        print(line, file=out)
    best = best_trial(rows)
    if interrupted:
        print(f"\nInterrupted: mnist-live --headless --resume {name} continues the sweep", file=out)
    if best is None:
        if not interrupted:
            print("error: no trial finished", file=sys.stderr)
        return 1
    print(f"\nBest: trial {best['number']}, test accuracy {100 * best['accuracy']:.2f} %:\n  "
          f"{' '.join(command_line(best['config']))}", file=out)
    if plan.base.save:
        if best.get("model_file") and os.path.isfile(best["model_file"]):
            try:
                _move(best["model_file"], plan.base.save)
            except OSError as e:
                raise SweepFailed(f"could not save the model to {plan.base.save}: {e.strerror or e}") from None
            print(f"Saved the best trial's model to {plan.base.save}", file=out)
            _note_model_file(sweep.library_path, best.get("run_id"), plan.base.save, out)
        else:
            print(f"The best trial ran in an earlier session of the sweep; its model was not kept "
                  f"({plan.base.save} not written)", file=out)
    print(f"The trials: mnist-live runs --where sweep={name}", file=out)
    return 0


def _note_model_file(library_path, run_id, path, out):
    """Record in the run library that the best trial's model now lives at `path` (a library
    problem is one line: the model is saved either way)."""
    if run_id is None:
        return
    from mnist_live.runs import library as run_library
    try:
        with run_library.RunLibrary(library_path, create=False) as lib:
            lib.set_model_file(run_id, path)
    except run_library.RunLibraryError as e:
        print(f"runs not recorded: {e}", file=out)


def _move(src, dst):
    """Move src to dst atomically: a rename, or a copy to a temp file beside dst then a rename."""
    try:
        os.replace(src, dst)
    except OSError:
        from mnist_live.training.files import atomic_file
        with open(src, "rb") as f, atomic_file(dst) as g:
            shutil.copyfileobj(f, g)
        os.remove(src)


def collections_counter(items):
    import collections
    return dict(collections.Counter(items))


def _earlier_rows(sweep):
    """Leaderboard rows of the trials that ended in earlier sessions of a resumed sweep."""
    from optuna.trial import TrialState
    rows = []
    session = {r["number"] for r in sweep.results}
    for t in sweep.study.trials:
        status = t.user_attrs.get("status")
        if status in (None, "interrupted") or t.state == TrialState.RUNNING:
            continue
        params = t.user_attrs.get("params", {})
        number = t.user_attrs.get("combo", t.number)
        if number in session:
            continue
        wall = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        rows.append({"number": number, "params": params, "status": status, "accuracy": t.value,
                     "wall_s": wall, "progress": max(t.intermediate_values, default=0) / REPORTS_PER_EPOCH,
                     "config": trial_config(sweep.plan.base, params), "model_file": None})
    return rows
