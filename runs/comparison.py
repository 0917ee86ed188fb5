"""Comparing runs in the window: earlier runs of the run library overlaid on the live
run's charts, the leaderboard of a data set's best runs, and a sweep watched live.

What it owns: which runs are overlaid (`Comparison`: the previous finished run on the same
data, the same images and sizes, by default, or `--compare ID ...`; on / off; the time
axis, epochs or seconds), what tells an overlaid run apart from the live one
(`difference_label`: "6,000 train images, lr 0.003, batch 64": the data first, a learning
rate changed by hand too), the curves of a stored run on either time axis (`RunCurves`,
`to_seconds`; a run with a validation split shows its validation curve), the leaderboard's
rows (`leaderboard`: runs on the live run's data only, finished ones first) and the sweep
watcher (`SweepWatch`: a thread that re-reads the library every second, so a slow read
never stalls a frame). What runs trained on comes from analysis.py (`Data`).

Reading the library never raises into the window: a missing or broken library becomes one
message and no overlay. Reads use a short timeout (`READ_TIMEOUT_S`) and are timed
(`Comparison.read_ms`, `SweepWatch.read_ms`).

Imports: the standard library, `config`, `run_library`, `runs_command` (its table helpers)
and `analysis` (what data a run trained on). No pygame, no NumPy (main.py checks --compare
and --watch before NumPy loads).
"""
from __future__ import annotations

import bisect
import json
import math
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass

from mnist_live.runs import analysis
from mnist_live.runs import library as run_library
from mnist_live.runs.command import hp_text, leaderboard
from mnist_live.runs.library import RunLibrary, RunLibraryError
from mnist_live.runs.rows import sql_int
from mnist_live.training import config as config_module

FINISHED_FIRST = "status!='finished', test_accuracy IS NULL, test_accuracy DESC, id ASC"   # the board's order
READ_TIMEOUT_S = 0.25             # a locked library is given up after this long (a frame is 16 ms; launch only)
MAX_OVERLAID = 6                  # runs overlaid at once (one colour each: palette.COMPARE_COLORS)
BOARD_ROWS = 12                   # runs the leaderboard lists
WATCH_EVERY_S = 1.0               # the watched sweep is re-read this often
AXES = ("epochs", "seconds")

# how a hyperparameter reads in an overlay's label ("batch 64"); the others by their own name
SHORT_NAMES = {"batch_size": "batch", "lr_schedule": "schedule", "weight_decay": "weight decay",
               "activation": "", "optimizer": ""}


def library_path(config) -> str:
    """The run library the window reads: --runs, else the default one."""
    return config.runs or run_library.default_path(config.data_home)


# ------------------------------------------------------------------ labels (pure)
def differences(live_hp: dict, other_hp: dict) -> list[str]:
    """What `other_hp` sets differently from `live_hp` (both Config.hyperparameters()
    dicts, as stored in the library), in Config order: ["lr 0.003", "batch 64", "sgd"]."""
    names = [n for n in config_module.HYPERPARAMETERS]
    names += sorted((set(live_hp) | set(other_hp)) - set(names))
    out = []
    for name in names:
        mine, theirs = live_hp.get(name), other_hp.get(name)
        if json.dumps(mine, sort_keys=True) == json.dumps(theirs, sort_keys=True):
            continue
        short = SHORT_NAMES.get(name, name)
        value = "-" if theirs is None else hp_text(theirs)
        if name == "nesterov" or name == "augment":
            out.append(("" if theirs else "no ") + name)
        else:
            out.append(f"{short} {value}".strip())
    return out


def difference_label(live_hp: dict, other_hp: dict, live_data=None, other_data=None, steered=0) -> str:
    """One line: what the other run trained on differently (analysis.Data), its
    hyperparameters that differ, how often its learning rate was changed by hand, or "same
    hyperparameters" (another seed is a difference)."""
    data = analysis.data_differences(live_data, other_data) if live_data and other_data else []
    words = data + differences(live_hp, other_hp) + ([f"lr changed by hand ({int(steered)}x)"] if steered else [])
    return ", ".join(words) or "same hyperparameters"


# ------------------------------------------------------------------ curves (pure)
def to_seconds(progress, clock):
    """Seconds since the run started at each of `progress` (epochs), from `clock`
    [(progress, elapsed_s)] sorted by progress: linear in between, held before the first
    and after the last point. [] when the clock is empty."""
    if not clock:
        return []
    qs = [q for q, _ in clock]
    out = []
    for q in progress:
        i = bisect.bisect_left(qs, q)
        if i <= 0:
            out.append(clock[0][1])
        elif i >= len(clock):
            out.append(clock[-1][1])
        else:
            (q0, t0), (q1, t1) = clock[i - 1], clock[i]
            out.append(t0 + (t1 - t0) * (q - q0) / (q1 - q0) if q1 > q0 else t1)
    return out


def on_axis(points, clock, axis):
    """(x, value) of (progress, value) `points` on the time axis: epochs as they are,
    seconds through `clock`; [] for seconds without a clock."""
    if axis == "epochs":
        return [(q, v) for q, v in points]
    xs = to_seconds([q for q, _ in points], clock)
    return [(x, v) for x, (_, v) in zip(xs, points)]


@dataclass(frozen=True)
class RunCurves:
    """One stored run as the charts overlay it."""
    id: int
    status: str
    hyper: dict                  # Config.hyperparameters() as stored
    epochs: int
    acc: tuple                   # ((progress, accuracy), ...) of the full test-set evaluations
    loss: tuple                  # ((progress, loss), ...)
    clock: tuple                 # ((progress, elapsed_s), ...) of every evaluation with a time
    test_accuracy: float | None = None
    sweep: str | None = None
    trial: int | None = None
    kind: str = "full"           # what `acc` measures: "full" (the test set) or "val" (a validation split)
    data: object = None          # analysis.Data: what it trained on
    steered: int = 0             # how often its learning rate was changed by hand (L in the window)

    def acc_on(self, axis):
        return on_axis(self.acc, self.clock, axis)

    def loss_on(self, axis):
        return on_axis(self.loss, self.clock, axis)

    @property
    def seconds(self):
        """Seconds the run lasted, as far as its evaluations say (0: unknown)."""
        return self.clock[-1][1] if self.clock else 0.0


def curve_kind(kinds):
    """The evaluations a run's accuracy curve is made of: its validation split's when it has one."""
    return "val" if "val" in kinds else "full"


def curves_of(run: dict) -> RunCurves:
    """RunCurves of a `RunLibrary.run()` dict (evaluations of an untrained start, at
    progress 0, are left out of the accuracy curve as the live chart does)."""
    evals = run.get("evaluations", [])
    kind = curve_kind({e["kind"] for e in evals})
    acc = tuple((e["progress"], e["accuracy"]) for e in evals
                if e["kind"] == kind and e["accuracy"] is not None and e["progress"] > 0)
    clock = sorted((e["progress"], e["elapsed_s"]) for e in evals if e["elapsed_s"] is not None)
    loss = tuple((q, v) for q, v in run.get("losses", []) if v is not None and math.isfinite(v))
    return RunCurves(run["id"], run["status"], run.get("hyperparameters", {}), int(run["config"].get("epochs", 1)),
                     acc, loss, tuple(clock), run.get("test_accuracy"), run.get("sweep"), run.get("trial"), kind,
                     analysis.data_of(run), len(run.get("lr_changes", ())))


def open_library(path, timeout=READ_TIMEOUT_S):
    """The library for reading (never created here); RunLibraryError when it cannot be read."""
    try:
        return RunLibrary(path, create=False, timeout=timeout, retry_s=timeout)
    except (sqlite3.Error, OSError) as e:
        raise RunLibraryError(f"runs library {path}: {e}") from None


def _why(e):
    text = str(e)
    return text.replace("no such file", "no runs recorded yet (no such file)")


def check_options(config) -> str | None:
    """Why --compare or --watch cannot be done (one line), or None: each id must be a run
    of the library, the sweep one of its sweeps."""
    if not config.compare and not config.watch:
        return None
    path = library_path(config)
    try:
        with open_library(path) as lib:
            for run_id in config.compare or ():
                if not lib.runs(conditions=[("id=?", [sql_int(run_id)])]):
                    return f"--compare: {lib.skipped[0][1]}" if lib.skipped else \
                        f"--compare: no run {run_id} in the runs library {path} (mnist-live runs lists them)"
            if config.watch and not lib.runs(sweep=config.watch, limit=1):
                return f"--watch: no sweep named {config.watch!r} in the runs library {path}"
    except RunLibraryError as e:
        return f"--{'compare' if config.compare else 'watch'}: {e}"
    return None


# ------------------------------------------------------------------ what the window overlays
class Comparison:
    """The runs overlaid on the live run's charts, read from the library at launch and
    when the overlay is turned on (never while drawing). `live_pid`: the training
    process's pid, to tell the live run's own row (never overlaid; marked on the board)."""

    def __init__(self, path, config, live_pid=None, data=None):
        self.path, self.config, self.live_pid = path, config, live_pid
        self.dataset = config.dataset
        # analysis.Data of the live run: from `data` (its data set's summary()), or the options,
        # or its own row in the library once found; None until known (then only the data set,
        # the validation split and augmentation are matched)
        self.live_data = analysis.expected_data(config, data)
        self.live_hp = json.loads(json.dumps(config.hyperparameters()))
        self.chosen = [int(i) for i in config.compare or ()]    # ids to overlay ([]: the previous run)
        self.runs: list[RunCurves] = []
        self.on = True
        self.axis = "epochs"
        self.board: list[dict] = []        # the leaderboard's runs, best first
        self.live_id = None                # the live run's id in the library, once found
        self.read_ms: list[float] = []     # how long each read took
        self.version = 0                   # bumped by every change the charts show
        self.host = socket.gethostname()

    def _touch(self):
        self.version += 1

    def _is_live(self, row):
        return self.live_pid is not None and row["pid"] == self.live_pid and row["host"] == self.host

    def load(self):
        """Read the overlaid runs (the chosen ones, else the previous finished run of this
        data set); returns a message for the user ('' when all went well)."""
        t0 = time.perf_counter()
        try:
            with open_library(self.path) as lib:
                self._find_live(lib)
                if not self.chosen:
                    rows = lib.runs(dataset=self.dataset, conditions=[("status=?", ["finished"]), *self._same_data()],
                                    order="started DESC, id DESC", limit=5)
                    rows = [r for r in rows if not self._is_live(r)]
                    self.chosen = [rows[0]["id"]] if rows else []
                self.runs = [curves_of(lib.run(i)) for i in self.chosen[:MAX_OVERLAID]]
        except (RunLibraryError, sqlite3.Error, OSError, ValueError, KeyError) as e:
            self.runs = []
            return f"no earlier runs to overlay: {_why(e)}"
        finally:
            self.read_ms.append((time.perf_counter() - t0) * 1000)
            self._touch()
        if not self.runs:
            return f"no earlier finished run on the same data to overlay ({self.data_label()})"
        return ""

    def data_label(self):
        """What the live run trains on, as the board's title says it."""
        if self.live_data is None:
            return f"{config_module.DATASET_NAMES.get(self.dataset, self.dataset)}" + \
                (f", {self.config.val:,} val images" if self.config.val else "")
        return self.live_data.label()

    def _find_live(self, lib):
        """The live run's own row (by its training process), whose data is the truth."""
        if self.live_pid is None:
            return
        mine = [r for r in lib.runs(dataset=self.dataset, conditions=[("pid=?", [self.live_pid])]) if self._is_live(r)]
        if mine:
            self.live_id, self.live_data = mine[0]["id"], analysis.data_of(mine[0])

    def _same_data(self):
        """The library conditions of runs on the live run's data: the same images, sizes and augmentation."""
        d = self.live_data
        config = "(CASE WHEN json_valid(config) THEN json_extract(config, '$.{}') END)"   # a damaged row: skipped later
        same = [(f"COALESCE({config.format('val')}, 0)=?", [self.config.val or 0]),
                ("augment=?", [int(self.config.augment)])]
        if d is None:
            return same
        sample = f"(data_source LIKE '%sample%' OR COALESCE({config.format('offline')}, 0))"
        return [*same, ("n_train IS ?", [d.train]), ("n_test IS ?", [d.test]),
                (sample if d.source == "sample" else f"NOT {sample}", [])]

    def toggle(self):
        """K: the overlay on (re-read: the library may have new runs) or off."""
        self.on = not self.on
        self._touch()
        if not self.on:
            return "earlier runs hidden (K shows them)" if self.runs else \
                "overlay off: there were no earlier runs on the charts (K reads the library again)"
        return self.load() or "overlaid: " + "; ".join(f"run {r.id} ({self.label(r)})" for r in self.runs)

    def toggle_axis(self):
        self.axis = AXES[(AXES.index(self.axis) + 1) % len(AXES)]
        self._touch()
        return f"curves against {self.axis}"

    def label(self, run: RunCurves) -> str:
        """What the run does differently (a learning rate changed by hand, L, is a difference too)."""
        label = difference_label(self.live_hp, run.hyper, self.live_data, run.data, run.steered)
        return label + (" (validation curve)" if run.kind == "val" else "")

    def shown(self):
        """The overlaid runs on screen ([] while the overlay is off)."""
        return self.runs if self.on else []

    # ------------------------------------------------------------ the leaderboard
    def read_board(self, limit=BOARD_ROWS):
        """The data set's best runs from the library; a message ('' when all went well)."""
        t0 = time.perf_counter()
        try:
            with open_library(self.path) as lib:
                self._find_live(lib)                       # running or finished: the run on screen either way
                self.board = lib.runs(dataset=self.dataset, conditions=self._same_data(), order=FINISHED_FIRST,
                                      limit=limit)
        except (RunLibraryError, sqlite3.Error, OSError, ValueError, KeyError) as e:
            self.board = []
            return f"no leaderboard: {_why(e)}"
        finally:
            self.read_ms.append((time.perf_counter() - t0) * 1000)
            self._touch()
        return "" if self.board else f"no runs on this data in the library yet ({self.data_label()})"

    def choose(self, run_id):
        """A click on a leaderboard row: overlay that run (again: take it off)."""
        if run_id == self.live_id:
            return "that is the run on screen"
        if run_id in self.chosen:
            self.chosen.remove(run_id)
            self.runs = [r for r in self.runs if r.id != run_id]
            self._touch()
            return f"run {run_id} taken off the charts"
        if len(self.chosen) >= MAX_OVERLAID:
            dropped = self.chosen.pop(0)
            self.runs = [r for r in self.runs if r.id != dropped]
        self.chosen.append(run_id)
        self.on = True
        message = self.load()
        return message or f"run {run_id} overlaid on the charts ({self.label(self.runs[-1])})"


def board_table(rows, live_id=None, overlaid=()):
    """The window's board (B): (header, body, marks), the cells of `command.leaderboard` for
    the window; marks per row: "live" (the run on screen), an index into `overlaid` (its
    colour), or None."""
    header, body = leaderboard(rows, SHORT_NAMES, compact=True)
    overlaid = list(overlaid)
    marks = ["live" if r["id"] == live_id else overlaid.index(r["id"]) if r["id"] in overlaid else None for r in rows]
    return header, body, marks


# ------------------------------------------------------------------ a sweep, watched
class SweepWatch:
    """A sweep's trials, re-read from the library every WATCH_EVERY_S by a thread of the
    window process (its own connection), so a slow read never stalls a frame; the frame
    takes the newest result with `poll()`."""

    def __init__(self, path, sweep, every=WATCH_EVERY_S):
        self.path, self.sweep, self.every = path, sweep, every
        self.read = Watched((), "", (), (), ())   # the newest read, replaced whole (the frame sees old or new)
        self.version = 0                    # bumped by every read that brought something new
        self.read_ms: list[float] = []
        self._seen = None
        self._taken = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweep-watch", daemon=True)
        self._thread.start()

    def read_once(self):
        """One read of the sweep (the thread's work; tests call it directly)."""
        t0 = time.perf_counter()
        try:
            with open_library(self.path) as lib:
                rows = lib.sweep_runs(self.sweep)
            trials = [_trial_curves(r) for r in rows]
            error = ""
        except (RunLibraryError, sqlite3.Error, OSError, ValueError, KeyError) as e:
            trials, error = self.trials, str(e)
        self.read_ms.append((time.perf_counter() - t0) * 1000)
        del self.read_ms[:-1000]
        seen = (tuple((t.id, t.status, len(t.acc), len(t.clock)) for t in trials), error)
        if seen != self._seen:
            self._seen = seen
            self.read = watched(trials, error)
            self.version += 1

    @property
    def trials(self):
        return self.read.trials

    @property
    def error(self):
        return self.read.error

    def _loop(self):
        while not self._stop.is_set():
            self.read_once()
            self._stop.wait(self.every)

    def poll(self):
        """Whether the trials changed since the last poll (the frame then redraws)."""
        changed, self._taken = self.version != self._taken, self.version
        return changed

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2.0)


@dataclass(frozen=True)
class Watched:
    """One read of a watched sweep, with what its views show (made by the reader thread)."""
    trials: tuple                # RunCurves per trial
    error: str                   # why the last read failed ('' : it did not)
    axes: tuple                  # analysis.Axis of the parallel coordinates
    lines: tuple                 # (trial, heights per axis) per trial (analysis.parallel_coordinates)
    labels: tuple                # what each line's trial is, in one line (analysis.hover_text)


def watched(trials, error=""):
    """The Watched of a read: the trials, their parallel coordinates and each one's line of text."""
    axes, lines = analysis.parallel_coordinates(trials) if trials else ([], [])
    varying = [a.name for a in axes if a.name != "accuracy"]
    return Watched(tuple(trials), error, tuple(axes), tuple(lines),
                   tuple(analysis.hover_text(t, varying) for t, _ in lines))


def _trial_curves(row):
    """RunCurves of a `RunLibrary.sweep_runs()` row (its `curve`: (elapsed_s, progress, kind, accuracy))."""
    curve = row.get("curve", [])
    kind = curve_kind({k for _, _, k, _ in curve})
    acc = tuple((q, a) for _, q, k, a in curve if k == kind and a is not None and q > 0)
    clock = tuple(sorted((q, el) for el, q, _, _ in curve if el is not None))
    return RunCurves(row["id"], row["status"], row.get("hyperparameters", {}), int(row["config"].get("epochs", 1)),
                     acc, (), clock, row.get("test_accuracy"), row.get("sweep"), row.get("trial"), kind,
                     analysis.data_of(row))
