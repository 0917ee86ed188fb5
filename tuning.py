"""Hyperparameter sweeps from the command line: grids, Optuna searches, pruning, progress.

    mnist-live --headless --lr 0.0003 0.001 0.003 --batch-size 64 128      # a grid of 6 trials
    mnist-live --headless --search 16 --lr 1e-4:1e-2:log --dropout 0:0.5   # 16 TPE trials, pruned

This module owns the sweep syntax (`parse_values`, `expand_grid`, `plan_sweep`: small pure
functions), the trial worker (`run_trial`, one process and one BLAS thread each), and the
parent's loop (`run_sweep`): it holds the Optuna study (ask/tell), answers the workers'
prune-or-continue questions over a channel (a multiprocessing Manager queue for local
joblib/loky workers, `distributed.Queue`s on a Dask cluster), writes every trial into the run
library as it trains, draws one progress line per running trial and prints the leaderboard.

Imports: the standard library and config at import time (main.py parses the command line
with it before NumPy is loaded); NumPy, Optuna, joblib, tqdm, trainer and run_library inside
the functions that need them; `distributed` only with --scheduler (an optional extra).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import queue
import re
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from config import HYPERPARAMETERS, Config, bounds_problem

# Config fields a sweep may vary: the scalar hyperparameters (the layer sizes take several
# values already, so --hidden is not sweepable; nor are the booleans).
SWEEPABLE = ("lr", "momentum", "weight_decay", "dropout", "epochs", "batch_size", "seed",
             "optimizer", "activation", "lr_schedule")
MAX_GRID = 1000               # combinations a grid may have
REPORTS_PER_EPOCH = 4         # pruning checkpoints: subset accuracy every quarter epoch (and so at each epoch end)
SUBSET = 1000                 # the fixed test subset evaluated at the checkpoints (trainer.SUBSET_SIZE)
TICK_S = 0.25                 # a worker's progress messages and stop checks, seconds apart
ANSWER_TIMEOUT_S = 600.0      # a worker gives up on a parent that does not answer
STOP_GRACE_S = 15.0           # after Ctrl+C the trials have this long to stop before they are killed
PRUNER_STARTUP = 4            # trials the median pruner lets complete before it prunes
PRUNERS = ("median", "halving", "none")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SweepError(Exception):
    """Bad sweep syntax or an impossible sweep: one line, a usage error (exit 2)."""


# ------------------------------------------------------------------ the sweep options
# The options that steer a sweep rather than describe a run. They are not Config fields:
# a Config describes one run (every trial's is stored in the run library and in its model
# file), and "16 trials, 2 at a time" is no property of a run. main.build_parser adds them
# from this table, in the same style as the Config fields' metadata.
SWEEP_OPTIONS = {
    "search": dict(type=int, min=1, max=100_000, metavar="N",
                   help="sweep: draw N trials with Optuna's TPE sampler (seeded from --seed) from the ranges "
                        "(--lr 1e-4:1e-2:log, --dropout 0:0.5, --batch-size 32:256) and value lists given"),
    "jobs": dict(type=int, min=1, max=1024, metavar="N",
                 help="sweep: trials run at once, one process each (default: the number of cores)"),
    "pruner": dict(choices=PRUNERS,
                   help="sweep: stop trials that are clearly behind at the quarter-epoch checkpoints "
                        "(default: median with --search, none for a grid)"),
    "resume": dict(metavar="SWEEP", help="continue an interrupted sweep: its unfinished grid combinations "
                                         "or the remaining trials of its search"),
    "sweep_name": dict(metavar="NAME", help="sweep: its name in the run library (default: sweep-DATE-TIME)"),
    "scheduler": dict(metavar="ADDR", help="sweep: run the trials on a Dask cluster (tcp://HOST:8786); "
                                           "needs pip install mnist-live[cluster]"),
}


def flag(name):
    return "--" + name.replace("_", "-")


# ------------------------------------------------------------------ sweep specs (pure)
@dataclass(frozen=True)
class Values:
    """Values listed for an option: one is a normal run, several a grid axis or a categorical."""
    values: tuple


@dataclass(frozen=True)
class Range:
    """LO:HI[:log] for --search: floats, or integers for integer options."""
    lo: float
    hi: float
    log: bool
    integer: bool

    def __str__(self):
        return f"{self.lo:g}:{self.hi:g}" + (":log" if self.log else "")


def _field(name):
    return next(f for f in dataclasses.fields(Config) if f.name == name)


def _convert(name, text):
    """One token as a value of Config field `name`, checked against its bounds."""
    meta = _field(name).metadata
    if "choices" in meta:
        if text not in meta["choices"]:
            raise SweepError(f"invalid choice: {text!r} (choose from {', '.join(meta['choices'])})")
        return text
    kind = meta["type"]
    try:
        value = kind(text)
    except ValueError:
        raise SweepError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    problem = bounds_problem(meta, value)
    if problem:
        raise SweepError(f"{problem}, got {text}")
    return value


def parse_values(name, tokens):
    """The tokens given after --NAME as Values or a Range; SweepError (one line, without the
    option's name: the caller says "argument --lr: ...") when they make no sense."""
    tokens = list(tokens)
    ranges = [t for t in tokens if ":" in t]
    if not ranges:
        values = [_convert(name, t) for t in tokens]
        for i, v in enumerate(values):
            if v in values[:i]:
                raise SweepError(f"{tokens[i]} is given twice")
        return Values(tuple(values))
    meta = _field(name).metadata
    if len(tokens) > 1:
        raise SweepError(f"a range is one token LO:HI[:log]; not with other values, got {' '.join(tokens)}")
    text = tokens[0]
    if "choices" in meta:
        raise SweepError(f"takes a list of choices ({', '.join(meta['choices'])}), not a range, got {text}")
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise SweepError(f"a range is LO:HI or LO:HI:log, got {text}")
    lo, hi = (_convert(name, p) for p in parts[:2])
    if not lo < hi:
        raise SweepError(f"empty range: LO must be below HI, got {text}")
    log = len(parts) == 3
    if log and lo <= 0:
        raise SweepError(f"a log range needs LO > 0, got {text}")
    return Range(lo, hi, log, meta["type"] is int)


def expand_grid(specs):
    """Every combination of the Values in `specs` ({name: Values}), as a list of {name: value},
    the last option varying fastest; SweepError past MAX_GRID combinations."""
    names = list(specs)
    n = math.prod(len(specs[k].values) for k in names)
    if n > MAX_GRID:
        sizes = " x ".join(str(len(specs[k].values)) for k in names)
        raise SweepError(f"the grid has {n:,} combinations ({sizes}); at most {MAX_GRID:,} (use --search N)")
    return [dict(zip(names, combo)) for combo in itertools.product(*(specs[k].values for k in names))]


@dataclass(frozen=True)
class SweepPlan:
    """What to run: the base Config plus the varying options, and how."""
    base: Config
    specs: dict                   # {name: Values (2+ values) or Range}: the options that vary
    search: int | None = None     # trials to draw; None: a grid
    jobs: int | None = None       # None: os.cpu_count()
    pruner: str = "none"
    name: str | None = None       # None: sweep-DATE-TIME
    scheduler: str | None = None
    resume: str | None = None     # the name of the sweep to continue (then base/specs come from it)
    argv: tuple = ()

    @property
    def kind(self):
        return "search" if self.search else "grid"

    def to_json(self):
        return {"base": json.loads(self.base.to_json()), "search": self.search, "pruner": self.pruner,
                "specs": {k: _spec_json(s) for k, s in self.specs.items()}, "argv": list(self.argv)}

    @classmethod
    def from_json(cls, d, **overrides):
        base = json.loads(json.dumps(d["base"]))
        base["hidden"] = tuple(base["hidden"])
        specs = {k: Range(s["lo"], s["hi"], s["log"], s["integer"]) if "lo" in s else Values(tuple(s["values"]))
                 for k, s in d["specs"].items()}
        return cls(Config(**base), specs, search=d["search"], pruner=d["pruner"], argv=tuple(d["argv"]), **overrides)


def _spec_json(spec):
    return dataclasses.asdict(spec) if isinstance(spec, Range) else {"values": list(spec.values)}


RESUME_KEEPS = ("headless", "data_home", "runs")      # what --resume may be given besides --jobs and --scheduler


def plan_sweep(config, specs, options, argv=(), given=()):
    """A SweepPlan from the parsed command line, or None for a normal run. `config`: the base
    Config (the swept options at their defaults), `specs`: {name: Values or Range} of the
    sweepable options given, `options`: the sweep options given ({"search": 16, ...}),
    `given`: the names of the Config fields given explicitly.
    SweepError (a one-line usage error) for a sweep that cannot run."""
    varying = {k: s for k, s in specs.items() if isinstance(s, Range) or len(s.values) > 1}
    if not varying and not options:
        return None
    resume = options.get("resume")
    if resume is not None:
        extra = [flag(k) for k in (*given, *options) if k not in ("resume", "jobs", "scheduler", *RESUME_KEEPS)]
        if extra:
            raise SweepError(f"--resume continues the sweep as it was defined; not with {', '.join(extra)}")
        _check_name(resume, "--resume")
    elif not varying:
        given = ", ".join(flag(k) for k in options)
        raise SweepError(f"{given} {'is' if len(options) == 1 else 'are'} for sweeps: give several values "
                         f"(--lr 0.001 0.003) or, with --search N, a range (--lr 1e-4:1e-2:log)")
    if not config.headless:
        raise SweepError("a sweep runs in the terminal: add --headless (the window takes one run)")
    if config.no_runs:
        raise SweepError("a sweep records its trials in the run library; not with --no-runs")
    for name in ("load", "no_train", "metrics"):
        if getattr(config, name):
            raise SweepError(f"{flag(name)} is for one run; not with a sweep (the run library keeps every trial: "
                             f"mnist-live runs --where sweep=NAME)")
    search = options.get("search")
    ranges = [flag(k) for k, s in varying.items() if isinstance(s, Range)]
    if ranges and not search:
        raise SweepError(f"{ranges[0]} {varying[ranges[0][2:].replace('-', '_')]}: a range needs --search N "
                         f"(or give a list of values for a grid)")
    if search and "seed" in varying:
        raise SweepError("--seed seeds the sampler with --search: give it one value")
    if resume is None and not search:
        expand_grid(varying)                                  # its size
    name = options.get("sweep_name")
    if name is not None:
        _check_name(name, "--sweep-name")
    pruner = options.get("pruner", "median" if search else "none")
    return SweepPlan(config, varying, search=search, jobs=options.get("jobs"), pruner=pruner, name=name,
                     scheduler=options.get("scheduler"), resume=resume, argv=tuple(argv))


def _check_name(name, option):
    if not NAME_RE.fullmatch(name):
        raise SweepError(f"argument {option}: a sweep name is 1-64 letters, digits, '_', '.', '-' "
                         f"(starting with a letter or digit), got {name!r}")


# ------------------------------------------------------------------ command lines (pure)
COMMAND_FIELDS = (*HYPERPARAMETERS, "data_dir", "data_home", "offline", "train_size", "test_size", "no_snapshots")


def command_line(config, program="mnist-live"):
    """The command that trains `config` (the options that differ from the defaults)."""
    words = [program, "--headless"]
    default = Config()
    for name in COMMAND_FIELDS:
        value = getattr(config, name)
        if name == "lr" and value is None:
            continue
        if value == getattr(default, name) and name != "lr":
            continue
        if isinstance(value, bool):
            words.append(flag(name))
        elif isinstance(value, tuple):
            words += [flag(name), *map(str, value)]
        else:
            words += [flag(name), f"{value:g}" if isinstance(value, float) else str(value)]
    return words


def trial_config(base, params):
    return base.replace(**params)


def format_value(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------ the leaderboard (pure)
STATUS_ORDER = {"finished": 0, "pruned": 1, "interrupted": 2, "diverged": 3, "failed": 4, "running": 5}


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


# ------------------------------------------------------------------ the trial worker
class Channel:
    """A trial's end of the channel: reports to the parent, answers from it. `reports` and
    `answers` are queue-like (put, get(timeout), qsize): multiprocessing Manager queues
    locally, distributed.Queue on a Dask cluster."""

    def __init__(self, reports, answers):
        self.reports, self.answers = reports, answers

    def send(self, message):
        self.reports.put(message)

    def answer(self, timeout=ANSWER_TIMEOUT_S):
        try:
            return self.answers.get(timeout=timeout)
        except (queue.Empty, TimeoutError):
            return "stop"                                # the parent is gone: stop

    def stop_requested(self):
        try:
            return self.answers.qsize() > 0 and self.answers.get(timeout=5) == "stop"
        except (queue.Empty, TimeoutError, OSError, EOFError):
            return True


@dataclass
class TrialJob:
    number: int
    config: Config
    params: dict
    model_path: str | None = None      # where a finished trial saves its model (local workers)
    return_model: bool = False         # cluster workers send the model back as bytes instead


def _load_arrays(data):
    """The data set in a worker: {name: array} as scattered by Dask, or {name: path of .npy}
    memory-mapped read-only (the page cache shares one copy between the local workers)."""
    import numpy as np
    return {k: np.load(v, mmap_mode="r") if isinstance(v, str) else v for k, v in data.items()}


def run_trial(job, data, channel):
    """One trial, in a worker process: train job.config, evaluating the fixed test subset at
    every quarter epoch (the pruning checkpoints) and asking the parent whether to go on,
    the full test set at each epoch end. Everything the parent records comes over the
    channel; the return value only says that the trial ended on its own terms."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from trainer import Trainer, TrainingDiverged, evaluate
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl+C reaches the parent, which stops us
    except ValueError:                                     # not the main thread (a threaded Dask worker)
        pass
    t0 = time.perf_counter()
    with threadpool_limits(1):
        arr = _load_arrays(data)
        cfg = job.config
        trainer = Trainer(cfg, arr["x_train"], arr["y_train"])
        x_test, y_test = arr["x_test"], arr["y_test"]
        x_sub, y_sub = np.asarray(x_test[:SUBSET]), np.asarray(y_test[:SUBSET])
        channel.send({"kind": "start", "trial": job.number, "pid": os.getpid(), "host": socket.gethostname()})
        sent_evals, losses = 0, []
        status, error, ev, batches = "finished", None, None, 0
        next_check, last_tick = 1, time.perf_counter()

        def report(kind, **extra):
            nonlocal sent_evals, losses
            msg = {"kind": kind, "trial": job.number, "progress": trainer.progress, "batches": batches,
                   "elapsed": time.perf_counter() - t0, "losses": losses,
                   "evals": [dataclasses.asdict(r) for r in trainer.history.evals[sent_evals:]], **extra}
            sent_evals, losses = len(trainer.history.evals), []
            channel.send(msg)

        try:
            while not trainer.finished:
                stats = trainer.train_batch()
                batches += 1
                losses.append((trainer.progress, float(stats.loss)))
                if stats.batch == stats.n_batches:
                    ev = evaluate(trainer.net, x_test, y_test)
                    trainer.record_eval("full", ev)
                check = math.floor(trainer.progress * REPORTS_PER_EPOCH + 1e-9)
                if check >= next_check:
                    sub = evaluate(trainer.net, x_sub, y_sub)
                    trainer.record_eval("subset", sub)
                    next_check = check + 1
                    report("report", step=check, value=float(sub.accuracy), loss=float(stats.loss))
                    answer = channel.answer()
                    if answer != "go":
                        status = "pruned" if answer == "prune" else "interrupted"
                        break
                    last_tick = time.perf_counter()
                elif time.perf_counter() - last_tick >= TICK_S:
                    last_tick = time.perf_counter()
                    channel.send({"kind": "tick", "trial": job.number, "progress": trainer.progress,
                                  "loss": float(stats.loss)})
                    if channel.stop_requested():
                        status = "interrupted"
                        break
        except TrainingDiverged as e:
            status, error = "diverged", str(e)
        except Exception as e:                            # reported as a failed trial, not lost
            status, error = "failed", f"{type(e).__name__}: {e}"
        full = trainer.history.evals and trainer.history.evals[-1]
        if status != "interrupted" and not (ev is not None and full and full.kind == "full"
                                            and (full.epoch, full.batch) == trainer.position):
            ev = evaluate(trainer.net, x_test, y_test)
            trainer.record_eval("full", ev)
        model_file = model_bytes = None
        if status == "finished" and (job.model_path or job.return_model):
            if job.model_path:
                trainer.save(job.model_path)
                model_file = job.model_path
            else:
                import io
                buf = io.BytesIO()
                np.savez(buf, **trainer.state_arrays())
                model_bytes = buf.getvalue()
        final = {"status": status, "error": error, "samples_per_s": trainer.samples_per_s,
                 "wall_s": time.perf_counter() - t0, "model_file": model_file, "model_bytes": model_bytes,
                 "accuracy": None if ev is None else float(ev.accuracy),
                 "per_class": None if ev is None else [float(v) for v in ev.per_class],
                 "confusion": None if ev is None else ev.confusion.tolist(), "n": None if ev is None else ev.n}
        report("done", **final)
    return status


# ------------------------------------------------------------------ where trials run
def _ignore_sigint():
    """Workers and the Manager's server leave Ctrl+C to the parent, which stops them in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class SweepFailed(Exception):
    """The sweep could not run (no cluster, an unwritable folder): one line, exit 1."""


class LocalPool:
    """Trials in local worker processes (joblib's loky executor), one BLAS thread each. The
    data set is written once as .npy files into the sweep's temp folder and memory-mapped by
    the workers; the channel is a multiprocessing Manager's queues."""

    def __init__(self, jobs, data, folder):
        import multiprocessing.managers

        import numpy as np
        from joblib.externals.loky import get_reusable_executor
        self.data = {}
        for key in ("x_train", "y_train", "x_test", "y_test"):
            path = os.path.join(folder, f"{key}.npy")
            np.save(path, np.ascontiguousarray(getattr(data, key)))
            self.data[key] = path
        self.manager = multiprocessing.managers.SyncManager()
        self.manager.start(_ignore_sigint)
        self.reports = self.manager.Queue()
        blas = {var: "1" for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                     "VECLIB_MAXIMUM_THREADS")}
        self.executor = get_reusable_executor(max_workers=jobs, env=blas, initializer=_ignore_sigint, reuse=False)
        self.where = f"{jobs} local process{'es' if jobs > 1 else ''}"

    def submit(self, job):
        answers = self.manager.Queue()
        return self.executor.submit(run_trial, job, self.data, Channel(self.reports, answers)), answers

    def get(self, timeout):
        """The next report; queue.Empty after `timeout` seconds."""
        return self.reports.get(timeout=timeout)

    def close(self):
        self.executor.shutdown(wait=True, kill_workers=True)
        self.manager.shutdown()


class DaskPool:
    """Trials on an existing Dask cluster: the data set is scattered to every worker once; the
    channel is distributed.Queues (the workers never open the run library)."""

    def __init__(self, address, data, name):
        try:
            import distributed
        except ImportError:
            raise SweepFailed("--scheduler needs Dask's distributed: pip install -e .[cluster]") from None
        import uuid
        self.distributed = distributed
        try:
            self.client = distributed.Client(address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise SweepFailed(f"no Dask scheduler at {address}: {e}") from None
        self.data = self.client.scatter({k: getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")},
                                        broadcast=True)
        self.prefix = f"{name}-{uuid.uuid4().hex[:8]}"
        self.reports = distributed.Queue(f"{self.prefix}-reports", client=self.client)
        self.futures = []
        workers = self.client.scheduler_info().get("workers", {})
        threads = sum(w.get("nthreads", 1) for w in workers.values())
        self.where = f"the Dask cluster at {address} ({len(workers)} workers, {threads} threads)"
        self.slots = max(threads, 1)

    def submit(self, job):
        answers = self.distributed.Queue(f"{self.prefix}-answers-{job.number}", client=self.client)
        future = self.client.submit(run_trial, job, self.data, Channel(self.reports, answers), pure=False,
                                    key=f"{self.prefix}-trial-{job.number}")
        self.futures.append(future)
        return future, answers

    def get(self, timeout):
        if self.reports.qsize() == 0:              # a get that times out is logged as an error by the scheduler
            time.sleep(timeout)
            if self.reports.qsize() == 0:
                raise queue.Empty
        return self.reports.get()

    def close(self):
        self.client.cancel(self.futures)
        self.client.close()


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
        from run_history import History
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
        from run_library import RunRecorder
        st.recorder = RunRecorder(self.library_path, st.config, self.dataset, command=command_line(st.config),
                                  sweep=self.name, trial=st.number, log=self.progress.line)

    def _mirror(self, st, msg):
        from run_history import EvalRecord
        for e in msg["evals"]:
            st.history.add_eval(EvalRecord(**e))
        for p, loss in msg["losses"]:
            st.history.add_loss(p, loss)
        if st.recorder is not None:
            st.recorder.sync(st.history, msg["elapsed"])

    def _end(self, st, status, msg):
        """Record a trial's end in the library and the study; free its slot."""
        import numpy as np
        from optuna.trial import TrialState

        from trainer import Evaluation
        st.ended = True
        msg = msg or {}
        acc = msg.get("accuracy")
        ev = None
        if acc is not None:
            ev = Evaluation(acc, np.array(msg["per_class"], np.float64), np.array(msg["confusion"], np.int64),
                            np.zeros(0, np.int16), msg["n"])
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
    import run_library
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
    dataset = {"name": data.name, "source": data.source, "train": int(len(data.y_train)),
               "test": int(len(data.y_test))}
    sweep = Sweep(plan, name, study, library_path, dataset, out)
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
        else:
            print(f"The best trial ran in an earlier session of the sweep; its model was not kept "
                  f"({plan.base.save} not written)", file=out)
    print(f"The trials: mnist-live runs --where sweep={name}", file=out)
    return 0


def _move(src, dst):
    """Move src to dst atomically: a rename, or a copy to a temp file beside dst then a rename."""
    try:
        os.replace(src, dst)
    except OSError:
        from files import atomic_file
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
