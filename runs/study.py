"""A sweep's Optuna study: the journal file, the lock, the search space, and reproducible
asking and pruning.

What it owns:
- `SweepLock`: one process at a time per sweep (an advisory lock beside the journal, freed
  by the system when its holder dies, however it dies).
- `open_study`: the study in its journal file (`<sweeps folder>/NAME.journal`), created or
  loaded, with a damaged or foreign journal as one line (`SweepFailed`).
- `distributions`: the plan's axes as Optuna distributions. Grid trials are asked with them
  too (their values enqueued), so a grid's study has its parameters like a search's and
  every optuna.visualization plot and optuna-dashboard work on it.
- Reproducibility whatever --jobs: the sampler drawing trial k sees only the trials numbered
  below k - window, all ended before k is asked (`WindowedSampler`, `window`), and the
  pruner judges trial k at a checkpoint against the trials before it at that same
  checkpoint (`prune_view`; the parent waits for them to get there). Which trials finished,
  and when, then no longer depends on how many ran at once.

Imports: the standard library and sweep_plan at import time; Optuna inside the functions.
"""
from __future__ import annotations

import contextlib
import copy
import errno
import os

from mnist_live.runs.sweep_plan import Range, SweepPlan

PRUNER_STARTUP = 4            # trials that must have reached a checkpoint before the median pruner prunes there
WINDOW = 7                    # a search's trial k is drawn from the trials before k - WINDOW (see `window`)


class SweepFailed(Exception):
    """The sweep could not run (no cluster, an unwritable folder, a damaged journal): one line, exit 1."""


# ------------------------------------------------------------------ one process per sweep
class SweepLock:
    """An exclusive lock on `<folder>/NAME.lock` while a sweep runs (fcntl.flock: the kernel
    frees it when the process ends, even by kill -9). The file is removed when released; a
    process that locked a file another one removed meanwhile tries again on the new one."""

    def __init__(self, folder, name):
        self.path = os.path.join(folder, f"{name}.lock")
        self.name = name
        self.fd = None

    def acquire(self):
        import fcntl
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise SweepFailed(f"sweep {self.name!r} is running in another process ({self._holder()}); "
                                      f"wait for it to end, or stop it, before starting or resuming it") from None
                raise SweepFailed(f"cannot lock sweep {self.name!r} ({self.path}): {e.strerror}") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                self.fd = fd
                return self
            os.close(fd)                                   # removed by the holder that just ended: again

    def _holder(self):
        try:
            with open(self.path) as f:
                return f"pid {int(f.read().strip())}"
        except (OSError, ValueError):
            return "pid unknown"

    def release(self):
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.remove(self.path)
        os.close(self.fd)
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


# ------------------------------------------------------------------ the journal
def journal_path(folder, name):
    return os.path.join(folder, f"{name}.journal")


def open_study(path, name, plan=None, sampler=None, pruner=None):
    """(study, plan): a new study for `plan` in the journal file `path`, or (plan None) the
    sweep stored there with the plan it was started with. SweepFailed, one line, for a
    journal that is not a sweep's (empty, truncated, another study's, random bytes)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = JournalStorage(JournalFileBackend(path))
        if plan is not None:
            study = optuna.create_study(storage=storage, study_name=name, direction="maximize", sampler=sampler,
                                        pruner=pruner)
            study.set_user_attr("plan", plan.to_json())
            return study, plan
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        return study, SweepPlan.from_json(study.user_attrs["plan"], name=name)
    except OSError as e:
        raise SweepFailed(f"sweep journal {path}: {e.strerror or e}") from None
    except Exception as e:                      # KeyError, ValueError, UnicodeDecodeError, TypeError ...
        raise SweepFailed(f"sweep journal {path} is damaged or not sweep {name!r}'s ({_why(path, e)}); "
                          f"move it away to start the sweep again") from None


def _why(path, e):
    if os.path.getsize(path) == 0:
        return "it is empty"
    with contextlib.suppress(Exception):
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        names = optuna.study.get_all_study_names(JournalStorage(JournalFileBackend(path)))
        if names:
            return f"it holds sweep {names[0]!r}"
    return f"{type(e).__name__}: {str(e)[:80]}" if str(e) else type(e).__name__


# ------------------------------------------------------------------ the search space
def distributions(specs):
    """{axis: optuna distribution} of a plan's specs (an architecture axis is categorical text)."""
    import optuna
    out = {}
    for name, s in specs.items():
        if isinstance(s, Range):
            cls = optuna.distributions.IntDistribution if s.integer else optuna.distributions.FloatDistribution
            out[name] = cls(s.lo, s.hi, log=s.log)
        else:
            out[name] = optuna.distributions.CategoricalDistribution(list(s.values))
    return out


def make_pruner(name, warmup_steps):
    """Optuna's pruner named `name`; checkpoints are counted in images trained, and none
    prunes before `warmup_steps` images (--prune-after)."""
    import optuna
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP, n_warmup_steps=warmup_steps)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(warmup_steps, 1), reduction_factor=3)
    return optuna.pruners.NopPruner()


def window(slots):
    """How far behind the trials the sampler sees are: trial k is drawn from the trials
    numbered below k - window, asked only once those have ended. Up to WINDOW + 1 trials
    run at once, so draws are the same for any --jobs up to that; a larger pool widens it."""
    return max(WINDOW, slots - 1)


class _Past:
    """The study as one trial's sampler or pruner may see it: `trials` (FrozenTrials) in
    place of the study's, everything else the study's own; a write of a system attribute
    reaches both the storage and the copy in `trials`."""

    def __init__(self, study, trials):
        self._study, self._trials = study, trials
        self._storage = _Storage(study._storage, {t._trial_id: t for t in trials})

    def __getattr__(self, name):
        return getattr(self._study, name)

    def get_trials(self, deepcopy=True, states=None):
        return [t for t in self._trials if states is None or t.state in states]

    def _get_trials(self, deepcopy=True, states=None, use_cache=False):
        return self.get_trials(deepcopy, states)

    @property
    def trials(self):
        return self.get_trials()


class _Storage:
    def __init__(self, storage, copies):
        self._storage, self._copies = storage, copies

    def __getattr__(self, name):
        return getattr(self._storage, name)

    def set_trial_system_attr(self, trial_id, key, value):
        self._storage.set_trial_system_attr(trial_id, key, value)
        if trial_id in self._copies:
            self._copies[trial_id]._system_attrs[key] = value


class WindowedSampler:
    """TPE that draws trial k from the trials numbered below k - window only (the parent
    asks k once those have ended), so what it draws does not depend on timing."""

    def __init__(self, inner, lag):
        self.inner, self.lag = inner, lag

    def _past(self, study, trial):
        cut = trial.number - self.lag
        return _Past(study, [t for t in study.get_trials(deepcopy=False) if t.number < cut])

    def infer_relative_search_space(self, study, trial):
        return self.inner.infer_relative_search_space(self._past(study, trial), trial)

    def sample_relative(self, study, trial, search_space):
        return self.inner.sample_relative(self._past(study, trial), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.inner.sample_independent(self._past(study, trial), trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        self.inner.before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self):
        self.inner.reseed_rng()


def as_of(trial, step, values):
    """A copy of FrozenTrial `trial` as it stood at checkpoint `step`: with a value there
    (`values`: its checkpoint values so far) it counts as having come that far (COMPLETE,
    its values up to `step`); without one it keeps its own state."""
    from optuna.trial import TrialState
    t = copy.copy(trial)
    t._system_attrs = dict(trial.system_attrs)
    if step in values:
        t.intermediate_values = {s: v for s, v in values.items() if s <= step}
        t.state, t._values = TrialState.COMPLETE, [values[step]]
    else:
        t.intermediate_values = dict(values)
    return t


def prune_view(study, earlier, current):
    """The study as the pruner judges `current` (a FrozenTrial whose last checkpoint is the
    one to judge): `earlier`, the trials numbered below it as they stood at that checkpoint
    (`as_of`), and itself."""
    return _Past(study, [*earlier, current])
