"""The run library: an SQLite database of every training run.

What it owns: the database file (one per user, next to the OpenML cache:
`default_path(data_home)`), its schema (versioned with PRAGMA user_version), writing and
reading runs (`RunLibrary`), the machine a run trained on (`machine_info`), and telling a
run whose process died from one still training. Recording a run as it trains, without ever
raising into training or holding it up, is recorder.py (`RunRecorder`) and writer.py (its
background writer); rows are decoded and checked by rows.py (a damaged row is skipped by
readers, with its id, never fatal); the `mnist-live runs` command is command.py.

Tables: `runs` (one row per run: its configuration as JSON, one column per hyperparameter,
the data set and sizes, host/pid/process start time, machine, status, and summary columns
kept up to date while it trains: test accuracy, best accuracy, time to 97 % and 98 %, wall
time, samples/s), `evaluations` (every evaluation with its per-class accuracy and the
seconds since the run started), `losses` (the loss curve), `lr_changes` and, since schema
2, `health` (each measurement of training health: history.HealthRecord as JSON). An older
library is brought up to the current schema when opened for writing (MIGRATIONS); one only
read keeps its schema (it has no health records).

Writes are transactions (`BEGIN IMMEDIATE`, retried while another writer holds the
database), so a run killed at any moment leaves its last complete state. Whoever opens
the library next applies the ends of runs that could not wait for it (writer.replay) and
turns a `running` row whose process is gone from this host (pid and process start time
from /proc) into `interrupted`; these writes in passing never wait for another writer. A
reader that cannot write the file's folder or disk opens it read-only.

Imports: the standard library and runs.rows (it is handed `config.Config` objects; writer
is imported when the library opens). No NumPy:
`mnist-live runs` must start fast.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import socket
import sqlite3
import stat
import sys
import time

from mnist_live.runs.rows import MAX_SQL_INT, DamagedRun, connect_read_only, json_column, run_dict, sql_int

SCHEMA_VERSION = 2
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
HEALTH_SCHEMA = """
CREATE TABLE health (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    progress REAL NOT NULL,
    epoch INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    record TEXT NOT NULL,             -- JSON: history.HealthRecord.to_json()
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""
SCHEMA += HEALTH_SCHEMA
MIGRATIONS = {1: HEALTH_SCHEMA}           # schema N -> N + 1
TABLES = ("runs", "evaluations", "losses", "lr_changes", "health")
BEST_FIRST = "test_accuracy IS NULL, test_accuracy DESC, id ASC"     # RunLibrary.runs' default order


class RunLibraryError(Exception):
    """One line for the user, naming the file: "runs library FILE: ...". `transient`: the
    write may succeed later (the database is locked, the disk is full or failing)."""

    def __init__(self, message, transient=False):
        super().__init__(message)
        self.transient = transient
        self.unwritable = False          # opening failed for want of writing: a reader may read it read-only


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
def sqlite_reason(e):
    """A short reason for an sqlite3 error."""
    text = str(e)
    if "locked" in text or "busy" in text:
        return "the database is locked (another program is writing to it)"
    if "not a database" in text or "malformed" in text:
        return f"not a valid run library (corrupt file?): {text}"
    if "full" in text:
        return "the disk is full"
    if "readonly" in text:
        return "cannot write to it (read-only file or folder)"
    if "unable to open" in text:
        return "cannot open it (missing or unwritable folder?)"
    if "disk I/O" in text:
        return f"disk I/O error (full disk, or an unwritable folder?): {text}"
    return text


def _is_locked(e):
    return isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e))


def _is_transient(e):
    """A write that may succeed later: locked, a full disk, an I/O error."""
    return _is_locked(e) or (isinstance(e, sqlite3.OperationalError) and
                             any(w in str(e) for w in ("full", "disk I/O")))


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
    """The database; every public method raises only RunLibraryError."""

    def __init__(self, path, create=True, timeout=None, retry_s=None):
        self.path = os.fspath(path)
        timeout = BUSY_TIMEOUT_S if timeout is None else timeout
        self.retry_s = RETRY_S if retry_s is None else retry_s
        self.host = socket.gethostname()
        self.read_only = False           # opened for reading only (a read-only folder or mount, a full disk)
        self.schema = SCHEMA_VERSION     # an older one only when read as it is (read-only)
        self.skipped = []                # (id, why) of the damaged rows the last read skipped
        try:
            self._check_path(create)
            self._connect(create, timeout)
        except RunLibraryError as e:
            if create or not e.unwritable:
                raise
            self._connect_read_only(timeout, e)
        if not self.read_only:
            with contextlib.suppress(RunLibraryError), self._in_passing():
                from mnist_live.runs import writer
                writer.replay(self)                       # the ends of runs that could not wait for the library
                self.mark_interrupted()

    @contextlib.contextmanager
    def _in_passing(self):
        """Writes made in passing when the library opens wait for no other writer (a locked
        library leaves them to the next opener)."""
        busy, retry = self.conn.execute("PRAGMA busy_timeout").fetchone()[0], self.retry_s
        self.conn.execute("PRAGMA busy_timeout=50")
        self.retry_s = 0
        try:
            yield
        finally:
            self.retry_s = retry
            self.conn.execute(f"PRAGMA busy_timeout={int(busy)}")

    def _connect(self, create, timeout):
        try:
            uri = "file:" + _uri_path(self.path) + ("" if create else "?mode=rw")
            self.conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise self._open_error(e) from None
        try:
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._open_schema()
        except sqlite3.Error as e:
            self.conn.close()
            raise self._open_error(e) from None
        except RunLibraryError:
            self.conn.close()
            raise

    def _open_error(self, e):
        err = self.error(sqlite_reason(e), _is_transient(e))
        err.unwritable = any(w in str(e) for w in ("readonly", "unable to open", "disk I/O", "full"))
        return err

    def _connect_read_only(self, timeout, why):
        """A reader of a library it cannot write (read-only folder or mount, full disk):
        rows.connect_read_only, or `why` it could not be opened."""
        opened = connect_read_only(self.path, timeout)
        if opened is None:
            raise why
        self.conn, version = opened
        self.schema = version
        if version != SCHEMA_VERSION and version not in MIGRATIONS:       # an older one reads as it is
            self.conn.close()
            raise self.error(f"written by a newer mnist-live (schema {version}; this version reads up to "
                             f"{SCHEMA_VERSION})" if version > SCHEMA_VERSION else
                             f"schema {version}, read-only: it cannot be brought to schema {SCHEMA_VERSION}")
        self.read_only = True

    def error(self, why, transient=False):
        return RunLibraryError(f"runs library {self.path}: {why}", transient)

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
            err = self.error(f"folder {folder} is not writable (the library needs its -wal and -shm files there)")
            err.unwritable = True
            raise err

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
            if v in MIGRATIONS:                           # an older library: brought up to date
                for step in range(v, SCHEMA_VERSION):
                    cur.executescript_in_tx(MIGRATIONS[step])
                cur.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
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
                raise self.error(sqlite_reason(e), _is_transient(e)) from None
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
                    raise self.error(sqlite_reason(e), _is_transient(e)) from None
                raise

    def transaction(self, fn):
        """fn(cursor) in one write transaction (see _write); what fn returns."""
        return self._write(fn)

    def _read(self, sql, args=()):
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise self.error(sqlite_reason(e)) from None

    # ------------------------------------------------------------ writing
    def start_run(self, config, dataset, command=None, sweep=None, trial=None) -> int:
        """A new `running` row for this process; its id."""
        row = run_row(config, dataset, self.host, command=command, sweep=sweep, trial=trial)
        return self._write(lambda cur: insert_run(cur, row))

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
            self.end_run(cur, run_id, status, test_accuracy, per_class, wall_s, samples_per_s, model_file, error)
        self._write(write)

    @classmethod
    def end_run(cls, cur, run_id, status, test_accuracy=None, per_class=None, wall_s=None, samples_per_s=None,
                model_file=None, error=None):
        """finish_run's statements, inside a transaction of the caller's (cursor `cur`)."""
        cls._update_summary(cur, run_id, final=test_accuracy is not None)
        cur.execute("UPDATE runs SET status=?, ended=?, test_accuracy=COALESCE(?, test_accuracy), "
                    "per_class=COALESCE(?, per_class), wall_s=?, samples_per_s=?, model_file=?, error=? "
                    "WHERE id=?",
                    (status, time.time(), _json_float(test_accuracy),
                     json.dumps([_json_float(v) for v in per_class]) if per_class is not None else None,
                     _json_float(wall_s), _json_float(samples_per_s),
                     os.path.abspath(model_file) if model_file else None, error, run_id))

    def set_model_file(self, run_id, model_file):
        """The model file a finished run's weights were kept in (e.g. a sweep's best trial,
        saved to --save after the sweep)."""
        def write(cur):
            if cur.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
                raise self.error(f"no run {run_id}")
            cur.execute("UPDATE runs SET model_file=? WHERE id=?", (os.path.abspath(model_file), run_id))
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
        ids = [sql_int(i) for i in run_ids]
        def write(cur):
            for i, given in zip(ids, run_ids):
                if cur.execute("SELECT 1 FROM runs WHERE id=?", (i,)).fetchone() is None:
                    raise self.error(f"no run {given}")
            for table in TABLES[1:]:
                cur.executemany(f"DELETE FROM {table} WHERE run_id=?", [(i,) for i in ids])
            cur.executemany("DELETE FROM runs WHERE id=?", [(i,) for i in ids])
        self._write(write)

    # ------------------------------------------------------------ reading
    def running(self, run_ids):
        """(id, host, pid) of those of `run_ids` still recorded as running."""
        ids = [sql_int(i) for i in run_ids]
        return [tuple(r) for r in self._read(f"SELECT id, host, pid FROM runs WHERE status='running' AND id IN "
                                             f"({', '.join('?' * len(ids))}) ORDER BY id", ids)]

    def count(self):
        return self._read("SELECT COUNT(*) FROM runs")[0][0]

    def run(self, run_id) -> dict:
        """Everything about one run: the summary of `runs()` plus evaluations, losses,
        lr_changes. A damaged row (malformed JSON) is a RunLibraryError saying so."""
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (sql_int(run_id),))
        if not rows:
            raise self.error(f"no run {run_id}")
        try:
            out = _run_dict(rows[0])
            out.update(self.details(run_id))
        except DamagedRun as e:
            raise self.error(str(e)) from None
        return out

    def details(self, run_id) -> dict:
        """A run's evaluations, losses, lr_changes and health (the HealthRecord JSON objects;
        none in a schema-1 library only read) (DamagedRun: malformed JSON)."""
        rid = sql_int(run_id)
        evals = self._read("SELECT progress, kind, accuracy, per_class, epoch, batch, elapsed_s FROM evaluations "
                           "WHERE run_id=? ORDER BY seq", (rid,))
        return {"evaluations": [{"progress": p, "kind": k, "accuracy": a, "epoch": e, "batch": b, "elapsed_s": el,
                                 "per_class": json_column(rid, pc, "evaluation per_class", list)}
                                for p, k, a, pc, e, b, el in evals],
                "losses": [list(r) for r in self._read(
                    "SELECT progress, loss FROM losses WHERE run_id=? ORDER BY seq", (rid,))],
                "lr_changes": [list(r) for r in self._read(
                    "SELECT progress, lr FROM lr_changes WHERE run_id=? ORDER BY seq", (rid,))],
                "health": [json_column(rid, r[0], "health record", dict) for r in self._read(
                    "SELECT record FROM health WHERE run_id=? ORDER BY seq", (rid,))] if self.schema >= 2 else []}

    def runs(self, dataset=None, sweep=None, conditions=(), order=BEST_FIRST, last=None, limit=None) -> list[dict]:
        """Summaries of runs in `order` (an SQL ORDER BY over the runs table; best test
        accuracy first by default), filtered by `conditions` [(SQL condition, [args])] (what
        runs_command.parse_where makes of "lr<0.01", "optimizer=adam", ...); `last`: only the
        N most recently started; `limit`: at most N rows. Damaged rows are skipped
        (`self.skipped`: their ids and what is wrong)."""
        return list(self.iter_runs(dataset, sweep, conditions, order, last, limit))

    def iter_runs(self, dataset=None, sweep=None, conditions=(), order=BEST_FIRST, last=None, limit=None):
        """runs(), one at a time (an export of 100,000 runs never holds them all)."""
        sql, args = self._select(dataset, sweep, conditions, order, last)
        if limit:
            sql += f" LIMIT {min(int(limit), MAX_SQL_INT)}"
        self.skipped = []
        try:
            for row in self.conn.execute(sql, args):
                try:
                    yield _run_dict(row)
                except DamagedRun as e:
                    self.skipped.append((row[0], str(e)))
        except sqlite3.Error as e:
            raise self.error(sqlite_reason(e)) from None

    def hyperparameter_names(self, dataset=None, sweep=None, conditions=(), last=None):
        """The hyperparameter names stored by the runs selected (damaged JSON skipped)."""
        sql, args = self._select(dataset, sweep, conditions, None, last, columns="hyper")
        return {k for (k,) in self._read(f"SELECT DISTINCT j.key FROM ({sql}) AS r, json_each(CASE WHEN "
                                         f"json_valid(r.hyper) THEN r.hyper ELSE '{{}}' END) AS j", args)}

    def count_matching(self, dataset=None, sweep=None, conditions=(), last=None):
        sql, args = self._select(dataset, sweep, conditions, None, last, columns="COUNT(*)")
        return self._read(sql, args)[0][0]

    def _select(self, dataset, sweep, conditions, order, last, columns=None):
        conds, args = [], []
        if dataset is not None:
            conds.append("dataset=?")
            args.append(dataset)
        if sweep is not None:
            conds.append("sweep=?")
            args.append(sweep)
        for c, a in conditions:
            conds.append(c)
            args.extend(a)
        if last is not None:
            conds.append("id IN (SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT ?)")
            args.append(min(int(last), MAX_SQL_INT))
        sql = f"SELECT {columns or _RUN_COLUMNS} FROM runs"
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        if columns is None:
            sql += " ORDER BY " + order
        return sql, args

    def sweep_runs(self, sweep) -> list[dict]:
        """The trials of one sweep in trial order, each with its evaluations (`curve`:
        [(elapsed_s, progress, kind, accuracy)]); damaged rows skipped (`self.skipped`)."""
        rows = self.runs(sweep=sweep, order="trial, id")
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


def run_row(config, dataset, host, command=None, sweep=None, trial=None, started=None) -> dict:
    """The runs-table row of a new `running` run of this process (column -> value)."""
    hyper = config.hyperparameters()
    now = time.time() if started is None else started
    row = {"status": "running", "started": now, "updated": now, "host": host, "pid": os.getpid(),
           "proc_start": process_start(), "config": config.to_json(), "hyper": json.dumps(hyper, sort_keys=True),
           "dataset": config.dataset, "data_source": dataset.get("source"),
           "n_train": dataset.get("train"), "n_test": dataset.get("test"),
           "machine": json.dumps(machine_info(), sort_keys=True),
           "command": json.dumps(list(command)) if command is not None else None,
           "sweep": sweep, "trial": trial}
    row.update({k: _hp_value(k, hyper[k]) for k in HP_COLUMNS if k in hyper})
    return row


def insert_run(cur, row) -> int:
    """Insert a run_row() in the caller's transaction; its id."""
    keys = ", ".join(row)
    marks = ", ".join("?" * len(row))
    return cur.execute(f"INSERT INTO runs ({keys}) VALUES ({marks})", tuple(row.values())).lastrowid


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
    return run_dict(_SUMMARY, row)
