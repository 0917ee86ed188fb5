"""A sweep from start to end, under its lock: opening or creating its study only once it can
run, telling the study how each configuration ended, and the summary.

What it owns: `run_locked` (the journal is made only after the data set is loaded and the
workers are up, so a sweep that fails to start leaves nothing behind and may be started
again under the same name; a bad --resume is one line), `tell` (a configuration's end in
the study: its mean validation accuracy, and the runs' statuses, accuracies and times as
user attributes, which is all `rows` needs to show it again after --resume; the run ids
are set as each run starts), and `report` (the leaderboard of every configuration, the
best as a command line, --save).

Imports: the standard library, sweep_plan, study, sweep_report and sweeps at import time;
Optuna, the run library and training.files inside the functions that need them.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import sys
import time

from mnist_live.runs import study as studies
from mnist_live.runs.study import SweepFailed
from mnist_live.runs.sweep_plan import SweepError, command_line, trial_config
from mnist_live.runs.sweep_report import STATUS_ORDER, best_trial, leaderboard, mean, ranked_by
from mnist_live.runs.sweeps import Sweep, announce, clean, start_pool

TPE_STARTUP = 10              # random trials before TPE models the rest (Optuna's default)


def run_locked(plan, name, folder, library_path, load_data, out):
    """The sweep `name` (its lock held): exit status as sweeps.run_sweep."""
    path = studies.journal_path(folder, name)
    if plan.resume:
        if not os.path.isfile(path):
            raise SweepError(f"argument --resume: no sweep {name!r} in {folder}")
        study, saved = studies.open_study(path, name)
        plan = dataclasses.replace(saved, jobs=plan.jobs, scheduler=plan.scheduler, resume=name)
    elif os.path.exists(path):
        raise SweepError(f"argument --sweep-name: sweep {name!r} exists already ({path}); --resume {name} continues it")
    data = load_data(plan.base)
    temp = os.path.join(folder, f"{name}.tmp")
    shutil.rmtree(temp, ignore_errors=True)            # left by a killed parent
    try:
        try:
            os.makedirs(temp)
        except OSError as e:
            raise SweepFailed(f"cannot create the sweep's temp folder {temp}: {e.strerror or e}") from None
        sweep, ended, wall = _run(plan, name, path, study if plan.resume else None, library_path, data, temp, out)
        status = report(sweep, sweep.plan, name, wall, out, interrupted=ended == "interrupted")
        if ended == "done":                                 # nothing left to continue
            clean(resume_folder(folder, name))
    finally:
        clean(temp)
    return 130 if ended == "interrupted" else status


def _run(plan, name, path, study, library_path, data, temp, out):
    """(Sweep, how it ended, seconds): the workers started, then (a new sweep) its journal
    made, the configurations run."""
    pool = None
    try:
        pool, slots = start_pool(plan, data, plan.size * plan.repeats, temp)
        if study is None:
            study, plan = studies.open_study(path, name, plan)
        sweep = _sweep(plan, name, study, library_path, data, slots, out, os.path.dirname(path))
        sweep.progress.total = sweep.plan_work() * plan.repeats
        announce(plan, name, plan.size, pool, out)
        t0 = time.perf_counter()
        try:
            ended = sweep.run(pool, slots, temp)
        finally:
            sweep.progress.close()
        return sweep, ended, time.perf_counter() - t0
    finally:
        if pool is not None:
            pool.close()


def _sweep(plan, name, study, library_path, data, slots, out, folder):
    """The Sweep, with the study's sampler (seeded TPE behind the window) and pruner (its
    warm-up in images: --prune-after epochs of this data set's training images)."""
    import optuna
    startup = min(TPE_STARTUP, max(4, (plan.search or 0) // 4))
    tpe = optuna.samplers.TPESampler(seed=plan.base.seed + len(study.trials), n_startup_trials=startup)
    study.sampler = studies.WindowedSampler(tpe, studies.window(slots))
    study.pruner = studies.make_pruner(plan.pruner, int(round(plan.prune_after * len(data.y_train))))
    sweep = Sweep(plan, name, study, library_path, data, out, pruner=study.pruner)
    sweep.resume_folder = resume_folder(folder, name)
    return sweep


def resume_folder(folder, name):
    """Where a sweep's interrupted runs keep their states until --resume continues them."""
    return os.path.join(folder, f"{name}.resume")


# ------------------------------------------------------------------ a configuration's end
def tell(sweep, trial):
    """Tell the study how configuration `trial` ended (all its runs have): finished with its
    mean validation accuracy (test without a split), pruned, or failed."""
    from optuna.trial import TrialState
    trial.told = True
    statuses = [j.status for j in trial.jobs]
    status = next((s for s in ("interrupted", "failed", "diverged", "pruned") if s in statuses), "finished")
    vals = [j.val for j in trial.jobs if j.val is not None]
    tests = [j.test for j in trial.jobs if j.test is not None]
    attrs = {"status": status, "val": vals, "test": tests, "statuses": statuses,
             "wall_s": sum(j.wall_s or 0 for j in trial.jobs), "progress": max(j.progress for j in trial.jobs)}
    for key, value in attrs.items():
        trial.study_trial.set_user_attr(key, value)
    measure = vals if sweep.has_val else tests
    if status == "finished" and measure:
        sweep.study.tell(trial.study_trial, statistics.fmean(measure))
    else:
        sweep.study.tell(trial.study_trial, state=TrialState.PRUNED if status == "pruned" else TrialState.FAIL)


def rows(study, plan, session=()):
    """Leaderboard rows of every configuration of the study that ended (a configuration run
    again after an interruption: its newest row); `session`: this session's Trials (they
    bring their model files)."""
    models = {t.study_trial.number: _model_file(t) for t in session}
    out = {}
    for t in study.trials:
        a = t.user_attrs
        if a.get("status") is None:
            continue
        number = a.get("combo", t.number)
        row = {"number": number, "params": dict(t.params), "status": a["status"], "val": a.get("val", []),
               "test": a.get("test", []), "wall_s": a.get("wall_s"), "progress": a.get("progress", 0.0),
               "config": trial_config(plan.base, t.params), "run_ids": a.get("run_ids", []),
               "model_file": models.get(t.number), "session": t.number in models}
        out[number] = row
    return [r for r in out.values() if r["status"] != "interrupted" or r["session"]]


def _model_file(trial):
    """The model kept of a finished configuration: its best seed's (by validation accuracy)."""
    done = [j for j in trial.jobs if j.status == "finished" and j.model_file and os.path.isfile(j.model_file)]
    return max(done, key=lambda j: (j.val if j.val is not None else j.test or 0)).model_file if done else None


# ------------------------------------------------------------------ the summary
def report(sweep, plan, name, wall, out, interrupted=False):
    """The leaderboard of every configuration of the sweep (earlier sessions' too), the best
    as a command line, and --save. Returns the exit status."""
    board = rows(sweep.study, plan, sweep.trials)
    counts = {}
    for r in board:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    counted = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda c: STATUS_ORDER.get(c[0], 9)))
    print(f"\nSweep {name}: {len(board)} trials ({counted}); this session {wall:.1f} s", file=out)
    print(ranked_by(sweep.has_val, plan.repeats), file=out)
    for line in leaderboard(board, list(plan.specs), sweep.has_val, plan.repeats):
        print(line, file=out)
    best = best_trial(board, sweep.has_val)
    if interrupted:
        print(f"\nInterrupted: mnist-live --headless --resume {name} continues the sweep", file=out)
    if best is None:
        if not interrupted:
            print("error: no trial finished", file=sys.stderr)
        return 1
    val = f"validation accuracy {100 * mean(best['val']):.2f} %" if sweep.has_val else ""
    test = f"test accuracy {100 * mean(best['test']):.2f} %" if best["test"] else "test accuracy -"
    seeds = f" (mean of {len(best['test'])} seeds)" if plan.repeats > 1 else ""
    what = f"{val} ({test}, scored once){seeds}" if val else f"{test}{seeds}"
    print(f"\nBest: trial {best['number']}, {what}:\n  {' '.join(command_line(best['config']))}", file=out)
    if plan.base.save:
        _save(sweep, best, plan.base.save, out)
    print(f"The trials: mnist-live runs --where sweep={name}; mnist-live runs analyze {name} shows what mattered",
          file=out)
    return 0


def _save(sweep, best, target, out):
    if not best.get("model_file"):
        print(f"The best trial ran in an earlier session of the sweep; its model was not kept ({target} not written)",
              file=out)
        return
    try:
        move(best["model_file"], target)
    except OSError as e:
        raise SweepFailed(f"could not save the model to {target}: {e.strerror or e}") from None
    print(f"Saved the best trial's model to {target}", file=out)
    kept = [j for t in sweep.trials for j in t.jobs if j.model_file == best["model_file"]]
    run_id = kept[0].recorder.run_id if kept and kept[0].recorder is not None else None
    _note_model_file(sweep.library_path, run_id, target, out)


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


def move(src, dst):
    """Move the file src to what dst names, atomically and the way every output is written
    (training.files.atomic_file): a symlink is followed and stays a link, an existing file
    keeps its mode, a folder, FIFO or device is never replaced."""
    from mnist_live.training.files import atomic_file
    with open(src, "rb") as f, atomic_file(dst) as g:
        shutil.copyfileobj(f, g)
    os.remove(src)

