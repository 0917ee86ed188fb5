"""The run library: an SQLite database of every training run, and the `mnist-live runs` command.

What it owns: the database file (one per user, next to the OpenML cache:
`default_path(data_home)`), its schema (versioned with PRAGMA user_version), writing a run
while it trains (`RunRecorder`, which never raises into training), reading runs back
(`RunLibrary`), and the `runs` subcommand (`runs_main`): the leaderboard, `show`, `compare`,
`export` and `rm`.

Tables: `runs` (one row per run: its configuration as JSON, one column per hyperparameter,
the data set and sizes, host/pid/process start time, machine, status, and summary columns
kept up to date while it trains: test accuracy, best accuracy, time to 97 % and 98 %, wall
time, samples/s), `evaluations` (every evaluation with its per-class accuracy and the
seconds since the run started), `losses` (the loss curve) and `lr_changes`.

Writes are transactions (`BEGIN IMMEDIATE`, retried while another writer holds the
database), so a run killed at any moment leaves its last complete state; a `running` row
whose process is gone from this host (pid and process start time from /proc) is turned
into `interrupted` by whoever opens the library next.

Imports: the standard library, `config` (standard library only) and, lazily, `files` for
exports. No NumPy at module level: `mnist-live runs` must start fast.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import platform
import re
import shlex
import socket
import sqlite3
import stat
import sys
import time

import config as config_module

SCHEMA_VERSION = 1
STATUSES = ("running", "finished", "diverged", "failed", "interrupted", "pruned")
THRESHOLDS = (0.97, 0.98)                 # time_to_97 / time_to_98: first full evaluation reaching them
BUSY_TIMEOUT_S = 10.0                     # how long one statement waits for another writer
RETRY_S = 20.0                            # how long a write transaction is retried while the file is locked
ENV_PATH = "MNIST_LIVE_RUNS"              # overrides default_path (tests, CI, a shared library)

# One column per hyperparameter (config.HYPERPARAMETERS when schema 1 was made; "dataset"
# is the runs table's own column). A hyperparameter added to Config later is still
# stored in the `hyper` JSON and can be filtered and sorted through it.
HP_COLUMNS = {"hidden": "TEXT", "activation": "TEXT", "optimizer": "TEXT", "lr": "REAL", "lr_schedule": "TEXT",
              "momentum": "REAL", "nesterov": "INTEGER", "weight_decay": "REAL", "dropout": "REAL",
              "augment": "INTEGER", "epochs": "INTEGER", "batch_size": "INTEGER", "seed": "INTEGER"}
# The options that say which data a run trained on (part of its reproduce command).
DATA_OPTIONS = ("dataset", "data_dir", "data_home", "offline", "train_size", "test_size")

SCHEMA = f"""
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    started REAL NOT NULL,            -- Unix time
    ended REAL,
    updated REAL NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    proc_start TEXT,                  -- "<boot id>:<start time in clock ticks>" from /proc, or NULL
    config TEXT NOT NULL,             -- config.Config.to_json()
    hyper TEXT NOT NULL,              -- config.Config.hyperparameters() as JSON (effective lr)
    {", ".join(f"{k} {t}" for k, t in HP_COLUMNS.items())},
    dataset TEXT NOT NULL,
    data_source TEXT,
    n_train INTEGER,
    n_test INTEGER,
    machine TEXT NOT NULL,            -- JSON: cores, numpy, blas, python, platform
    command TEXT,                     -- JSON argv, when known
    sweep TEXT,
    trial INTEGER,
    test_accuracy REAL,               -- the final one; while running, the latest full evaluation
    per_class TEXT,                   -- JSON, final per-class accuracy
    best_accuracy REAL,
    time_to_97 REAL,
    time_to_98 REAL,
    n_evals INTEGER NOT NULL DEFAULT 0,
    wall_s REAL,
    samples_per_s REAL,
    model_file TEXT,
    error TEXT
);
CREATE INDEX runs_status ON runs(status, host);
CREATE INDEX runs_started ON runs(started);
CREATE INDEX runs_accuracy ON runs(test_accuracy);
CREATE INDEX runs_time98 ON runs(time_to_98);
CREATE INDEX runs_time97 ON runs(time_to_97);
CREATE INDEX runs_wall ON runs(wall_s);
CREATE INDEX runs_sweep ON runs(sweep, trial);
CREATE INDEX runs_dataset ON runs(dataset);
CREATE INDEX runs_lr ON runs(lr);
CREATE INDEX runs_batch_size ON runs(batch_size);
CREATE INDEX runs_optimizer ON runs(optimizer);
CREATE TABLE evaluations (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    progress REAL NOT NULL,
    kind TEXT NOT NULL,
    accuracy REAL,
    per_class TEXT NOT NULL,          -- JSON list of 10 (null: class absent from the evaluated set)
    epoch INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    elapsed_s REAL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE losses (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    progress REAL NOT NULL,
    loss REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE lr_changes (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    progress REAL NOT NULL,
    lr REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""
TABLES = ("runs", "evaluations", "losses", "lr_changes")


class RunLibraryError(Exception):
    """One line for the user, naming the file: "runs library FILE: ..."."""


class UsageError(ValueError):
    """A bad --where expression or --sort key (the `runs` command exits 2)."""


def default_path(data_home=None) -> str:
    """<data_home or ~/scikit_learn_data>/mnist_viz/runs.sqlite3, next to the OpenML cache
    ($SCIKIT_LEARN_DATA is honoured as data_loader.default_data_home does; $MNIST_LIVE_RUNS,
    when set, names the file itself)."""
    if data_home is None and os.environ.get(ENV_PATH):
        return os.path.expanduser(os.environ[ENV_PATH])
    home = data_home if data_home is not None else os.environ.get(
        "SCIKIT_LEARN_DATA", os.path.join("~", "scikit_learn_data"))
    return os.path.join(os.path.expanduser(home), "mnist_viz", "runs.sqlite3")


# ------------------------------------------------------------------ processes and machine
def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _proc_stat(pid):
    """(state letter, start time in clock ticks since boot) from /proc/PID/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()       # after "pid (comm) ": field 3 onwards
    return fields[0], fields[19]


def process_start(pid=None):
    """"<boot id>:<start ticks>" of process `pid` (this one by default), or None without /proc:
    with the pid it names one process for the whole life of the machine."""
    boot, st = _boot_id(), _proc_stat(os.getpid() if pid is None else pid)
    return f"{boot}:{st[1]}" if boot and st else None


def process_alive(pid, proc_start=None):
    """Whether process `pid` of this host still runs and is the one that started at
    `proc_start` (a reused pid, or a zombie, is not). On Windows, where os.kill(pid, 0)
    would end the process, a run is taken to be alive."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                                            # another user's process: it exists
    except OSError:
        return False
    st = _proc_stat(pid)
    if st is not None and st[0] in ("Z", "X"):
        return False
    if proc_start is not None and st is not None:
        return process_start(pid) == proc_start
    return True


def machine_info():
    """Cores, NumPy version and BLAS library (threadpoolctl, when importable and NumPy is
    loaded), Python and platform. NumPy is not imported here."""
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "numpy": None, "blas": None}
    np = sys.modules.get("numpy")
    if np is not None:
        info["numpy"] = np.__version__
    else:
        with contextlib.suppress(Exception):
            from importlib.metadata import version
            info["numpy"] = version("numpy")
    if np is not None:
        try:
            import threadpoolctl
            blas = [m for m in threadpoolctl.threadpool_info() if m.get("user_api") == "blas"]
            if blas:
                b = blas[0]
                info["blas"] = " ".join(str(v) for v in (b.get("internal_api"), b.get("version"),
                                                          f"{b.get('num_threads')} threads") if v)
        except Exception:                               # not installed, or an odd library: optional
            pass
    return info


# ------------------------------------------------------------------ the database
def _why(e):
    """A short reason for an sqlite3 error."""
    text = str(e)
    if "locked" in text or "busy" in text:
        return "the database is locked (another program is writing to it)"
    if "not a database" in text or "malformed" in text:
        return f"not a valid run library (corrupt file?): {text}"
    if "readonly" in text:
        return "cannot write to it (read-only file or folder)"
    if "unable to open" in text:
        return "cannot open it (missing or unwritable folder?)"
    if "disk I/O" in text:
        return f"disk I/O error (full disk, or an unwritable folder?): {text}"
    return text


def _is_locked(e):
    return isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e))


def _json_float(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _hp_value(name, value):
    """A hyperparameter as stored in its column."""
    if name == "hidden":
        return " ".join(str(int(v)) for v in value)
    if isinstance(value, bool):
        return int(value)
    return value


class RunLibrary:
    """The database; every public method raises only RunLibraryError (or UsageError for a
    bad where/sort)."""

    def __init__(self, path, create=True, timeout=None, retry_s=None):
        self.path = os.fspath(path)
        timeout = BUSY_TIMEOUT_S if timeout is None else timeout
        self.retry_s = RETRY_S if retry_s is None else retry_s
        self.host = socket.gethostname()
        self._check_path(create)
        try:
            uri = "file:" + _uri_path(self.path) + ("" if create else "?mode=rw")
            self.conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise self.error(_why(e)) from None
        try:
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._open_schema()
        except sqlite3.Error as e:
            self.conn.close()
            raise self.error(_why(e)) from None
        except RunLibraryError:
            self.conn.close()
            raise
        with contextlib.suppress(RunLibraryError):      # a reader that cannot write still reads
            self.mark_interrupted()

    def error(self, why):
        return RunLibraryError(f"runs library {self.path}: {why}")

    def _check_path(self, create):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if not create:
                raise self.error("no such file") from None
            folder = os.path.dirname(os.path.abspath(self.path))
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as e:
                raise self.error(f"cannot create folder {folder}: {e.strerror}") from None
            if not os.access(folder, os.W_OK | os.X_OK) or not _can_create_in(folder):
                raise self.error(f"folder {folder} is not writable") from None
            return
        except OSError as e:
            raise self.error(e.strerror) from None
        if stat.S_ISDIR(st.st_mode):
            raise self.error("is a folder, not a database file")
        if not stat.S_ISREG(st.st_mode):
            raise self.error("is not a regular file (a FIFO, device or socket?)")
        folder = os.path.dirname(os.path.abspath(self.path))
        if not _can_create_in(folder):                  # WAL needs its -wal and -shm files beside it
            raise self.error(f"folder {folder} is not writable (the library needs its -wal and -shm files there)")

    def _open_schema(self):
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]   # reads the header: corrupt?
        if version > SCHEMA_VERSION:
            raise self.error(f"written by a newer mnist-live (schema {version}; this version reads up to "
                             f"{SCHEMA_VERSION}): upgrade mnist-live or use another --runs FILE")
        mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise self.error(f"cannot switch to WAL mode (journal mode {mode})")
        self.conn.execute("PRAGMA synchronous=NORMAL")    # WAL: a crash never corrupts, commits stay cheap
        if version == SCHEMA_VERSION:
            return
        def create(cur):
            v = cur.execute("PRAGMA user_version").fetchone()[0]
            if v == SCHEMA_VERSION:                       # another process made it meanwhile
                return
            tables = [r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            if tables:
                raise self.error(f"is an SQLite database but not a run library (tables: {', '.join(tables[:5])})")
            cur.executescript_in_tx(SCHEMA)
            cur.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._write(create)

    # ------------------------------------------------------------ transactions
    def _write(self, fn):
        """Run fn(cursor) in one BEGIN IMMEDIATE transaction, retried for up to retry_s while
        another writer holds the database; anything that goes wrong (an error, Ctrl+C) rolls
        it back, so the database never holds half of it."""
        deadline = time.monotonic() + self.retry_s
        delay = 0.01
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                if _is_locked(e) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                raise self.error(_why(e)) from None
            try:
                result = fn(_Cursor(self.conn))
                self.conn.execute("COMMIT")
                return result
            except BaseException as e:
                with contextlib.suppress(sqlite3.Error):
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    if _is_locked(e) and time.monotonic() < deadline:
                        time.sleep(delay)
                        continue
                    raise self.error(_why(e)) from None
                raise

    def _read(self, sql, args=()):
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise self.error(_why(e)) from None

    # ------------------------------------------------------------ writing
    def start_run(self, config, dataset, command=None, sweep=None, trial=None) -> int:
        """A new `running` row for this process; its id."""
        hyper = config.hyperparameters()
        now = time.time()
        row = {"status": "running", "started": now, "updated": now, "host": self.host, "pid": os.getpid(),
               "proc_start": process_start(), "config": config.to_json(), "hyper": json.dumps(hyper, sort_keys=True),
               "dataset": config.dataset, "data_source": dataset.get("source"),
               "n_train": dataset.get("train"), "n_test": dataset.get("test"),
               "machine": json.dumps(machine_info(), sort_keys=True),
               "command": json.dumps(list(command)) if command is not None else None,
               "sweep": sweep, "trial": trial}
        row.update({k: _hp_value(k, hyper[k]) for k in HP_COLUMNS if k in hyper})
        keys = ", ".join(row)
        marks = ", ".join("?" * len(row))
        return self._write(lambda cur: cur.execute(f"INSERT INTO runs ({keys}) VALUES ({marks})",
                                                   tuple(row.values())).lastrowid)

    def add_evaluation(self, run_id, progress, kind, accuracy, per_class, epoch, batch, elapsed_s):
        self.record(run_id, evaluations=[(progress, kind, accuracy, per_class, epoch, batch, elapsed_s)])

    def add_losses(self, run_id, points):
        self.record(run_id, losses=points)

    def add_lr_change(self, run_id, progress, lr):
        self.record(run_id, lr_changes=[(progress, lr)])

    def record(self, run_id, evaluations=(), losses=(), lr_changes=(), replace_last_eval=False):
        """Append evaluations [(progress, kind, accuracy, per_class, epoch, batch, elapsed_s)],
        loss points [(progress, loss)] and lr changes [(progress, lr)] to a run and bring its
        summary columns up to date, in one transaction. replace_last_eval: the first of
        `evaluations` replaces the run's last stored one (the same weights evaluated again)."""
        def write(cur):
            seq = self._next_seq(cur, "evaluations", run_id)
            if seq is None:
                raise self.error(f"no run {run_id}")
            if replace_last_eval and seq > 0:
                seq -= 1
                cur.execute("DELETE FROM evaluations WHERE run_id=? AND seq=?", (run_id, seq))
            cur.executemany(
                "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, seq + i, float(p), kind, _json_float(acc), json.dumps([_json_float(v) for v in pc]),
                  int(ep), int(b), None if el is None else float(el))
                 for i, (p, kind, acc, pc, ep, b, el) in enumerate(evaluations)])
            if losses:
                s = self._next_seq(cur, "losses", run_id)
                cur.executemany("INSERT INTO losses VALUES (?, ?, ?, ?)",
                                [(run_id, s + i, float(p), _json_float(v) if v is not None else None)
                                 for i, (p, v) in enumerate(losses) if v is not None and math.isfinite(v)])
            if lr_changes:
                s = self._next_seq(cur, "lr_changes", run_id)
                cur.executemany("INSERT INTO lr_changes VALUES (?, ?, ?, ?)",
                                [(run_id, s + i, float(p), float(v)) for i, (p, v) in enumerate(lr_changes)])
            if evaluations:
                self._update_summary(cur, run_id, final=False)
            else:
                cur.execute("UPDATE runs SET updated=? WHERE id=?", (time.time(), run_id))
        self._write(write)

    @staticmethod
    def _next_seq(cur, table, run_id):
        if table == "evaluations":
            row = cur.execute("SELECT (SELECT MAX(seq) FROM evaluations WHERE run_id=?), "
                              "EXISTS(SELECT 1 FROM runs WHERE id=?)", (run_id, run_id)).fetchone()
            if not row[1]:
                return None
            return 0 if row[0] is None else row[0] + 1
        m = cur.execute(f"SELECT MAX(seq) FROM {table} WHERE run_id=?", (run_id,)).fetchone()[0]
        return 0 if m is None else m + 1

    @staticmethod
    def _update_summary(cur, run_id, final):
        """Best accuracy, times to the thresholds, evaluation count and (unless the final
        result is being written) the latest full evaluation's accuracy, from the run's
        evaluations (its own rows only: the primary key's range)."""
        full = "run_id=? AND kind='full' AND accuracy IS NOT NULL"
        t = [f"(SELECT MIN(elapsed_s) FROM evaluations WHERE {full} AND accuracy>=?)" for _ in THRESHOLDS]
        latest = "" if final else (f", test_accuracy=(SELECT accuracy FROM evaluations WHERE {full} "
                                   f"ORDER BY seq DESC LIMIT 1)")
        args = [run_id, THRESHOLDS[0], run_id, THRESHOLDS[1], run_id, run_id] + ([] if final else [run_id])
        cur.execute(f"UPDATE runs SET time_to_97={t[0]}, time_to_98={t[1]}, "
                    f"best_accuracy=(SELECT MAX(accuracy) FROM evaluations WHERE {full}), "
                    f"n_evals=(SELECT COUNT(*) FROM evaluations WHERE run_id=?){latest}, updated={time.time()!r} "
                    f"WHERE id=?", (*args, run_id))

    def finish_run(self, run_id, status, test_accuracy=None, per_class=None, wall_s=None, samples_per_s=None,
                   model_file=None, error=None):
        """The run's end: its status and final results; time_to_97 / time_to_98 are the
        elapsed_s of the first full evaluation reaching 97 % / 98 %."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"finish_run: status must be one of {', '.join(STATUSES[1:])}, not {status!r}")
        def write(cur):
            if cur.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
                raise self.error(f"no run {run_id}")
            self._update_summary(cur, run_id, final=test_accuracy is not None)
            cur.execute("UPDATE runs SET status=?, ended=?, test_accuracy=COALESCE(?, test_accuracy), "
                        "per_class=COALESCE(?, per_class), wall_s=?, samples_per_s=?, model_file=?, error=? "
                        "WHERE id=?",
                        (status, time.time(), _json_float(test_accuracy),
                         json.dumps([_json_float(v) for v in per_class]) if per_class is not None else None,
                         _json_float(wall_s), _json_float(samples_per_s),
                         os.path.abspath(model_file) if model_file else None, error, run_id))
        self._write(write)

    def mark_interrupted(self, run_ids=None):
        """`running` rows of this host whose process is gone become `interrupted`; the ids changed."""
        rows = self._read("SELECT id, pid, proc_start FROM runs WHERE status='running' AND host=?", (self.host,))
        wanted = None if run_ids is None else set(run_ids)
        dead = [r[0] for r in rows if (wanted is None or r[0] in wanted) and not process_alive(r[1], r[2])]
        if dead:
            def write(cur):
                cur.executemany("UPDATE runs SET status='interrupted', ended=updated, "
                                "error=COALESCE(error, 'the process ended without finishing the run') "
                                "WHERE id=? AND status='running'", [(i,) for i in dead])
            self._write(write)
        return dead

    def remove(self, run_ids):
        """Delete runs (all or none: RunLibraryError naming the first unknown id)."""
        ids = [int(i) for i in run_ids]
        def write(cur):
            for i in ids:
                if cur.execute("SELECT 1 FROM runs WHERE id=?", (i,)).fetchone() is None:
                    raise self.error(f"no run {i}")
            for table in TABLES[1:]:
                cur.executemany(f"DELETE FROM {table} WHERE run_id=?", [(i,) for i in ids])
            cur.executemany("DELETE FROM runs WHERE id=?", [(i,) for i in ids])
        self._write(write)

    # ------------------------------------------------------------ reading
    def count(self):
        return self._read("SELECT COUNT(*) FROM runs")[0][0]

    def run(self, run_id) -> dict:
        """Everything about one run: the summary of `runs()` plus evaluations, losses, lr_changes."""
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (int(run_id),))
        if not rows:
            raise self.error(f"no run {run_id}")
        out = _run_dict(rows[0])
        out["evaluations"] = [
            {"progress": p, "kind": k, "accuracy": a, "per_class": json.loads(pc), "epoch": e, "batch": b,
             "elapsed_s": el}
            for p, k, a, pc, e, b, el in self._read(
                "SELECT progress, kind, accuracy, per_class, epoch, batch, elapsed_s FROM evaluations "
                "WHERE run_id=? ORDER BY seq", (int(run_id),))]
        out["losses"] = [list(r) for r in self._read(
            "SELECT progress, loss FROM losses WHERE run_id=? ORDER BY seq", (int(run_id),))]
        out["lr_changes"] = [list(r) for r in self._read(
            "SELECT progress, lr FROM lr_changes WHERE run_id=? ORDER BY seq", (int(run_id),))]
        return out

    def runs(self, dataset=None, sweep=None, where=(), sort="accuracy", last=None, limit=None) -> list[dict]:
        """Summaries of runs, best first by `sort` (see SORT_KEYS; "-KEY" reverses), filtered
        by `where` expressions ("lr<0.01", "optimizer=adam", ...); `last`: only the N most
        recently started; `limit`: at most N rows."""
        sql, args = self._select(dataset, sweep, where, sort, last)
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_run_dict(r) for r in self._read(sql, args)]

    def count_matching(self, dataset=None, sweep=None, where=(), last=None):
        sql, args = self._select(dataset, sweep, where, "id", last, columns="COUNT(*)")
        return self._read(sql, args)[0][0]

    def _select(self, dataset, sweep, where, sort, last, columns=None):
        conds, args = [], []
        if dataset is not None:
            conds.append("dataset=?")
            args.append(dataset)
        if sweep is not None:
            conds.append("sweep=?")
            args.append(sweep)
        for expr in where:
            c, a = parse_where(expr)
            conds.append(c)
            args.extend(a)
        if last is not None:
            conds.append("id IN (SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT ?)")
            args.append(int(last))
        sql = f"SELECT {columns or _RUN_COLUMNS} FROM runs"
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        if columns is None:
            sql += " ORDER BY " + order_by(sort)
        return sql, args

    def sweep_runs(self, sweep) -> list[dict]:
        """The trials of one sweep in trial order, each with its evaluations (`curve`:
        [(elapsed_s, progress, kind, accuracy)])."""
        rows = [_run_dict(r) for r in self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE sweep=? ORDER BY trial, id", (sweep,))]
        curves = {}
        for run_id, el, p, k, a in self._read(
                "SELECT e.run_id, e.elapsed_s, e.progress, e.kind, e.accuracy FROM evaluations e "
                "JOIN runs r ON r.id=e.run_id WHERE r.sweep=? ORDER BY e.run_id, e.seq", (sweep,)):
            curves.setdefault(run_id, []).append((el, p, k, a))
        for r in rows:
            r["curve"] = curves.get(r["id"], [])
        return rows

    def close(self):
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Cursor:
    """The connection inside a transaction (executescript would commit: its statements run one by one)."""

    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql, args=()):
        return self.conn.execute(sql, args)

    def executemany(self, sql, rows):
        return self.conn.executemany(sql, rows)

    def executescript_in_tx(self, script):
        statement = ""
        for line in script.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                self.conn.execute(statement)
                statement = ""


def _uri_path(path):
    from urllib.parse import quote
    return quote(os.path.abspath(path))


def _can_create_in(folder):
    """Whether a file can really be created in folder (os.access says yes to root on read-only mounts)."""
    import tempfile
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------ rows, filters, order
_SUMMARY = ("id", "status", "started", "ended", "updated", "host", "pid", "config", "hyper", "dataset", "data_source",
            "n_train", "n_test", "machine", "command", "sweep", "trial", "test_accuracy", "per_class",
            "best_accuracy", "time_to_97", "time_to_98", "n_evals", "wall_s", "samples_per_s", "model_file", "error")
_RUN_COLUMNS = ", ".join(_SUMMARY)


def _run_dict(row):
    d = dict(zip(_SUMMARY, row))
    d["config"] = json.loads(d["config"])
    d["hyperparameters"] = json.loads(d.pop("hyper"))
    d["machine"] = json.loads(d["machine"])
    d["command"] = json.loads(d["command"]) if d["command"] else None
    d["per_class"] = json.loads(d["per_class"]) if d["per_class"] else None
    return d


# sort key -> (SQL expression, descending: best first)
SORT_KEYS = {"accuracy": ("test_accuracy", True), "best": ("best_accuracy", True),
             "time98": ("time_to_98", False), "time97": ("time_to_97", False), "wall": ("wall_s", False),
             "speed": ("samples_per_s", True), "started": ("started", True), "id": ("id", True),
             "status": ("status", False), "sweep": ("sweep", False), "trial": ("trial", False)}
# where field -> (SQL expression, kind: "num", "text", "bool", "hidden")
_WHERE_FIELDS = {"accuracy": ("test_accuracy", "num"), "test_accuracy": ("test_accuracy", "num"),
                 "best": ("best_accuracy", "num"), "time98": ("time_to_98", "num"), "time97": ("time_to_97", "num"),
                 "wall": ("wall_s", "num"), "speed": ("samples_per_s", "num"),
                 "samples_per_s": ("samples_per_s", "num"),
                 "id": ("id", "num"), "status": ("status", "text"), "sweep": ("sweep", "text"),
                 "trial": ("trial", "num"), "host": ("host", "text"), "n_train": ("n_train", "num"),
                 "n_test": ("n_test", "num"), "model_file": ("model_file", "text"), "dataset": ("dataset", "text")}


def _config_fields():
    return {f.name: f for f in dataclasses.fields(config_module.Config)}


def _field(name):
    """(SQL expression, kind) of a where/sort field, or UsageError."""
    if name in _WHERE_FIELDS:
        return _WHERE_FIELDS[name]
    fields = _config_fields()
    if name not in fields:
        known = sorted(set(_WHERE_FIELDS) | set(config_module.HYPERPARAMETERS))
        raise UsageError(f"unknown field {name!r} (fields: {', '.join(known)}, or any option name)")
    f = fields[name]
    if name == "hidden":
        kind = "hidden"
    elif isinstance(f.default, bool):
        kind = "bool"
    elif f.metadata.get("type") in (int, float):
        kind = "num"
    else:
        kind = "text"
    if name in HP_COLUMNS:
        return name, kind
    source = "hyper" if name in config_module.HYPERPARAMETERS else "config"
    return f"json_extract({source}, '$.{name}')", kind


_WHERE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$")


def parse_where(expr):
    """("SQL condition", [args]) for "FIELD OP VALUE" (OP one of = == != < <= > >=), or UsageError."""
    m = _WHERE_RE.match(expr)
    if not m or not m.group(3):
        raise UsageError(f"--where {expr!r}: expected FIELD OP VALUE, e.g. lr<0.01 or optimizer=adam "
                         f"(OP: = != < <= > >=)")
    name, op, text = m.group(1).replace("-", "_"), m.group(2), m.group(3)
    column, kind = _field(name)
    op = "=" if op == "==" else op
    if kind == "num":
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--where {expr!r}: {name} is a number, not {text!r}") from None
    elif kind == "bool":
        value = {"true": 1, "yes": 1, "1": 1, "false": 0, "no": 0, "0": 0}.get(text.lower())
        if value is None:
            raise UsageError(f"--where {expr!r}: {name} is true or false, not {text!r}")
    elif kind == "hidden":
        sizes = re.split(r"[\s,x]+", text.strip())
        if not all(s.isdigit() for s in sizes):
            raise UsageError(f"--where {expr!r}: hidden is layer sizes such as 1024,512, not {text!r}")
        value = " ".join(str(int(s)) for s in sizes)
    else:
        value = text
    if kind in ("text", "bool", "hidden") and op not in ("=", "!="):
        raise UsageError(f"--where {expr!r}: {name} can only be compared with = or !=")
    if op == "!=":
        return f"({column} IS NULL OR {column}!=?)", [value]
    return f"{column}{op}?", [value]


def order_by(sort):
    """The ORDER BY clause of a sort key, best first, runs without a value last ("-KEY" reverses)."""
    key = sort or "accuracy"
    reverse = key.startswith("-")
    key = key.lstrip("-").replace("-", "_")
    if key in SORT_KEYS:
        column, desc = SORT_KEYS[key]
    else:
        try:
            column, kind = _field(key)
        except UsageError:
            raise UsageError(f"--sort {sort!r}: unknown key (keys: {', '.join(SORT_KEYS)}, "
                             f"or a hyperparameter such as lr or batch_size)") from None
        desc = False
    desc ^= reverse
    return f"{column} IS NULL, {column} {'DESC' if desc else 'ASC'}, id ASC"


# ------------------------------------------------------------------ the reproduce command
def reproduce_command(cfg: dict) -> list[str]:
    """argv that trains the same run again: `mnist-live --headless` with the stored config's
    non-default hyperparameters and data options (and --load when it resumed a model file)."""
    fields = _config_fields()
    argv = ["mnist-live", "--headless"]
    for name in (*config_module.HYPERPARAMETERS, *DATA_OPTIONS[1:], "load"):
        if name not in fields or name not in cfg:
            continue
        value, default = cfg[name], fields[name].default
        if name == "hidden":
            value, default = list(value), list(default)
        if value == default or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif name == "hidden":
            argv += [flag, *(str(v) for v in value)]
        else:
            argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


def command_text(cfg):
    return " ".join(shlex.quote(a) for a in reproduce_command(cfg))


# ------------------------------------------------------------------ recording while training
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
        why = str(e) if isinstance(e, RunLibraryError) else f"runs library {self.path}: {_why(e)}"
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
            if new_evals or losses or lrs:
                self.lib.record(self.run_id, new_evals, losses, lrs, replace_last_eval=replace)
            self._evals = len(evals)
            self._last_eval = evals[-1] if evals else None
            if losses:
                self._loss_progress = losses[-1][0]
            self._lrs = len(history.lr_changes)
        except (RunLibraryError, sqlite3.Error, OSError) as e:
            self._fail(e)
        finally:
            self.busy_s += time.perf_counter() - t0

    def finish(self, status, evaluation=None, wall_s=None, samples_per_s=None, model_file=None, error=None,
               history=None, elapsed_s=None):
        """The run's end (evaluation: the final trainer.Evaluation); with `history`, a last
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


# ------------------------------------------------------------------ the `runs` command
class _Parser(argparse.ArgumentParser):
    """Usage errors as one line ("error: ..."), exit 2."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _common(parser):
    parser.add_argument("--runs", metavar="FILE", help="the run library (default: <data home>/mnist_viz/runs.sqlite3)")
    parser.add_argument("--data-home", metavar="DIR", help="the data home whose library to read (as for training)")


def _filters(parser):
    parser.add_argument("--where", action="append", default=[], metavar="EXPR",
                        help="keep runs matching FIELD OP VALUE: lr<0.01, optimizer=adam, batch_size>=64, "
                             "dataset=fashion, status=finished, sweep=NAME (repeatable: all must hold)")
    parser.add_argument("--sort", default="accuracy", metavar="KEY",
                        help="accuracy (default), time98, time97, wall, speed, started, id, or a hyperparameter "
                             "name; -KEY reverses")
    parser.add_argument("--last", type=_positive, metavar="N", help="only the N most recently started runs")


def _positive(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def _build_parsers():
    top = _Parser(prog="mnist-live runs", description="The run library: every training run recorded. "
                  "Subcommands: show ID, compare ID ID ..., export --csv FILE|- / --json FILE|-, rm ID ...")
    _common(top)
    _filters(top)
    top.add_argument("--top", type=_positive, default=25, metavar="N",
                     help="show the best N runs (default 25; 0: all)")
    subs = {}
    p = _Parser(prog="mnist-live runs show", description="one run: config, timings, evaluations, per-class accuracy")
    p.add_argument("id", type=int)
    _common(p)
    subs["show"] = p
    p = _Parser(prog="mnist-live runs compare", description="runs side by side; * marks the rows that differ")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    _common(p)
    subs["compare"] = p
    p = _Parser(prog="mnist-live runs export", description="every run (or those --where selects) as CSV or JSON")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--csv", metavar="FILE", help="one row per run ('-': standard output)")
    g.add_argument("--json", metavar="FILE", help="every field, evaluations and curves included ('-': stdout)")
    _common(p)
    _filters(p)
    subs["export"] = p
    p = _Parser(prog="mnist-live runs rm", description="delete runs from the library")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    _common(p)
    subs["rm"] = p
    return top, subs


def runs_main(argv) -> int:
    """The `mnist-live runs ...` subcommand; its exit status (0, 1 library errors, 2 usage)."""
    argv = _reversed_sort_keys(argv)
    top, subs = _build_parsers()
    sub, rest = _subcommand(argv, subs)
    args = (subs[sub] if sub else top).parse_args(rest)
    path = os.path.expanduser(args.runs) if args.runs else default_path(
        os.path.expanduser(args.data_home) if args.data_home else None)
    if sub is None:
        try:                                            # usage errors before the file is opened
            for expr in args.where:
                parse_where(expr)
            order_by(args.sort)
        except UsageError as e:
            top.error(str(e))
    if not os.path.lexists(path):
        if sub in ("show", "compare", "rm"):
            print(f"error: no runs recorded yet in {path}", file=sys.stderr)
            return 1
        print(f"no runs recorded yet in {path}")
        return 0
    try:
        with RunLibrary(path, create=False) as lib:
            if sub is None:
                return _leaderboard(lib, args, path)
            if sub == "show":
                print(format_show(lib.run(args.id)))
            elif sub == "compare":
                print(format_compare([lib.run(i) for i in args.ids]))
            elif sub == "export":
                try:
                    return _export(lib, args)
                except UsageError as e:
                    subs["export"].error(str(e))
            elif sub == "rm":
                lib.remove(args.ids)
                print(f"removed {len(args.ids)} run{'s' if len(args.ids) != 1 else ''} from {path}")
            return 0
    except RunLibraryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:                              # `mnist-live runs | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")           # noqa: SIM115 - the interpreter closes it at exit
        return 0


def _subcommand(argv, subs):
    """(subcommand or None, the other arguments): the subcommand may follow --runs FILE / --data-home DIR."""
    i = 0
    while i < len(argv):
        if argv[i] in ("--runs", "--data-home"):
            i += 2
        elif argv[i].startswith(("--runs=", "--data-home=")):
            i += 1
        elif argv[i] in subs:
            return argv[i], argv[:i] + argv[i + 1:]
        else:
            break
    return None, argv


def _reversed_sort_keys(argv):
    """`--sort -lr` as `--sort=-lr` (argparse would take -lr for an option)."""
    out, items = [], iter(argv)
    for a in items:
        following = next(items, None) if a == "--sort" else None
        if following is not None and following[:1] == "-" and following[1:2].isalpha():
            out.append(f"--sort={following}")
        else:
            out += [a] + ([following] if following is not None else [])
    return out


def _leaderboard(lib, args, path):
    total = lib.count()
    if total == 0:
        print(f"no runs recorded yet in {path}")
        return 0
    rows = lib.runs(where=args.where, sort=args.sort, last=args.last, limit=args.top or None)
    matching = lib.count_matching(where=args.where, last=args.last)
    if not rows:
        print(f"no runs match ({total:,} in {path})")
        return 0
    print(format_leaderboard(rows))
    more = f" (--top 0 shows all {matching:,})" if matching > len(rows) else ""
    print(f"\n{len(rows):,} of {matching:,} matching run{'s' if matching != 1 else ''} shown{more}; "
          f"{total:,} in {path}")
    return 0


# ------------------------------------------------------------------ formatting
def _pct(v):
    return "-" if v is None else f"{100 * v:.2f} %"


def _secs(v):
    return "-" if v is None else f"{v:.1f} s"


def _rate(v):
    return "-" if v is None else f"{v:,.0f}"


def _hp_text(v):
    if isinstance(v, list):
        return " ".join(map(str, v))
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def differing_hyperparameters(rows):
    """The hyperparameter names whose values are not the same in all `rows`, in Config order."""
    names = [n for n in config_module.HYPERPARAMETERS]
    extra = sorted({k for r in rows for k in r["hyperparameters"]} - set(names))
    return [n for n in names + extra if len({json.dumps(r["hyperparameters"].get(n)) for r in rows}) > 1]


def _table(header, rows, right=()):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    def line(cells):
        parts = [f"{c:>{w}}" if i in right else f"{c:<{w}}" for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def format_leaderboard(rows):
    """The table: id, status, test accuracy, time to 98 %, wall time, samples/s, the
    hyperparameters that differ between `rows`, and the command that reproduces each."""
    hps = differing_hyperparameters(rows)
    sweep = any(r["sweep"] for r in rows)
    header = ["id", "status", "test acc", "to 98 %", "wall", "samples/s", *(["sweep"] if sweep else []), *hps,
              "reproduce with"]
    body = []
    for r in rows:
        body.append([str(r["id"]), r["status"], _pct(r["test_accuracy"]), _secs(r["time_to_98"]),
                     _secs(r["wall_s"]), _rate(r["samples_per_s"]),
                     *([f"{r['sweep']}#{r['trial']}" if r["sweep"] else "-"] if sweep else []),
                     *(_hp_text(r["hyperparameters"].get(n, "-")) for n in hps), command_text(r["config"])])
    return _table(header, body, right={0, 2, 3, 4, 5})


def _when(t):
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _summary_fields(r):
    """(label, text) rows describing one run (show and compare)."""
    out = [("status", r["status"] + (f" ({r['error']})" if r["error"] else "")),
           ("test accuracy", _pct(r["test_accuracy"])), ("best accuracy", _pct(r["best_accuracy"])),
           ("time to 97 %", _secs(r["time_to_97"])), ("time to 98 %", _secs(r["time_to_98"])),
           ("wall time", _secs(r["wall_s"])), ("samples/s", _rate(r["samples_per_s"])),
           ("data", f"{r['dataset']}: {r['n_train']:,} train / {r['n_test']:,} test ({r['data_source']})"
            if r["n_train"] is not None else r["dataset"])]
    hp = r["hyperparameters"]
    out += [(n, _hp_text(hp[n])) for n in sorted(hp, key=_hp_order) if n != "dataset"]
    if r["sweep"]:
        out.append(("sweep", f"{r['sweep']} trial {r['trial']}"))
    out += [("started", _when(r["started"])), ("ended", _when(r["ended"])),
            ("machine", f"{r['host']}, {r['machine'].get('cores')} cores, NumPy {r['machine'].get('numpy')}, "
                        f"BLAS {r['machine'].get('blas') or 'unknown'}"),
            ("model file", r["model_file"] or "-"), ("reproduce with", command_text(r["config"]))]
    return out


def _hp_order(name):
    known = config_module.HYPERPARAMETERS
    return (known.index(name), "") if name in known else (len(known), name)


def format_show(r):
    lines = [f"run {r['id']}"]
    fields = _summary_fields(r)
    w = max(len(k) for k, _ in fields)
    lines += [f"  {k:<{w}}  {v}" for k, v in fields]
    if r["command"]:
        lines.append(f"  {'command':<{w}}  {' '.join(shlex.quote(a) for a in ['mnist-live', *r['command']])}")
    evals = r["evaluations"]
    lines.append(f"\nevaluations ({len(evals)}; loss points {len(r['losses'])}, lr changes {len(r['lr_changes'])})")
    if evals:
        lines.append(_table(["epochs", "kind", "accuracy", "elapsed"],
                            [[f"{e['progress']:.2f}", e["kind"], _pct(e["accuracy"]), _secs(e["elapsed_s"])]
                             for e in evals], right={0, 2, 3}))
        names = _class_names(r["dataset"])
        rows = [[f"{e['progress']:.2f}", *("-" if v is None else f"{100 * v:.1f}" for v in e["per_class"])]
                for e in evals if e["kind"] == "full"]
        if r["per_class"] is not None and (not evals or r["per_class"] != evals[-1]["per_class"]):
            rows.append(["final", *("-" if v is None else f"{100 * v:.1f}" for v in r["per_class"])])
        if rows:
            lines.append("\nper-class accuracy % (full test-set evaluations)")
            lines.append(_table(["epochs", *names], rows, right=set(range(11))))
    return "\n".join(lines)


def _class_names(dataset):
    if dataset == "fashion":       # data_loader.FASHION_CLASSES, shortened (data_loader imports NumPy)
        return ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
    return [str(i) for i in range(10)]


def format_compare(runs):
    """Runs side by side, one column each; '*' marks the rows that differ."""
    table = [_summary_fields(r) for r in runs]
    labels = []
    for fields in table:
        labels += [k for k, _ in fields if k not in labels]
    rows = []
    for label in labels:
        if label in ("started", "ended", "machine"):
            continue
        values = [dict(f).get(label, "-") for f in table]
        rows.append(["*" if len(set(values)) > 1 else " ", label, *values])
    return _table(["", "run", *(str(r["id"]) for r in runs)], rows)


# ------------------------------------------------------------------ export
CSV_FIELDS = ("id", "status", "started", "ended", "dataset", "data_source", "n_train", "n_test", "test_accuracy",
              "best_accuracy", "time_to_97", "time_to_98", "wall_s", "samples_per_s", "n_evals", "sweep", "trial",
              "model_file", "host", "pid", "error")


def csv_rows(runs):
    """(header, rows) of the CSV export: the summary fields, then one column per hyperparameter, then the command."""
    hps = list(config_module.HYPERPARAMETERS)
    hps += sorted({k for r in runs for k in r["hyperparameters"]} - set(hps) - {"dataset"})
    hps = [h for h in hps if h != "dataset"]
    header = [*CSV_FIELDS, *hps, "command"]
    rows = []
    for r in runs:
        row = ["" if r[k] is None else r[k] for k in CSV_FIELDS]
        row += [_hp_text(r["hyperparameters"].get(h)) if h == "hidden" else r["hyperparameters"].get(h, "")
                for h in hps]
        row.append(command_text(r["config"]))
        rows.append(row)
    return header, rows


def _export(lib, args):
    runs = lib.runs(where=args.where, sort=args.sort, last=args.last)
    if args.csv is not None:
        header, rows = csv_rows(runs)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        text, target = buf.getvalue(), args.csv
    else:
        full = [lib.run(r["id"]) for r in runs]
        text, target = json.dumps({"schema": SCHEMA_VERSION, "runs": full}, indent=1) + "\n", args.json
    if target == "-":
        sys.stdout.write(text)
        return 0
    from files import atomic_file
    try:
        with atomic_file(os.path.expanduser(target)) as f:
            f.write(text.encode("utf-8"))
    except OSError as e:
        print(f"error: could not write {target}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"wrote {len(runs):,} run{'s' if len(runs) != 1 else ''} to {target}")
    return 0
