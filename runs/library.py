"""The run library: an SQLite database of every training run.

What it owns: the database file (one per user, next to the OpenML cache:
`default_path(data_home)`), opening it (its schema versioned with PRAGMA user_version,
brought up to date when opened for writing), write transactions, and the runs written and
read (`RunLibrary`). The tables and their statements are schema.py; this host's processes
and machine, host.py. Recording a run as it trains, without ever raising into training or
holding it up, is recorder.py (`RunRecorder`) and writer.py (its background writer); rows
are decoded and checked by rows.py (a damaged row is skipped by readers, with its id, never
fatal); the `mnist-live runs` command is command.py.

Writes are transactions (`BEGIN IMMEDIATE`, retried while another writer holds the
database), so a run killed at any moment leaves its last complete state. Whoever opens
the library next applies the ends of runs that could not wait for it (writer.replay) and
turns a `running` row whose process is gone from this host (pid and process start time
from /proc) into `interrupted`; these writes in passing never wait for another writer. A
reader that cannot write the file's folder or disk opens it read-only; a library of an
older schema only read keeps its schema (a schema-1 one has no health records).

Imports: the standard library and runs.rows, runs.schema, runs.host (it is handed
`config.Config` objects; writer is imported when the library opens). No NumPy:
`mnist-live runs` must start fast.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import stat
import time

from mnist_live.runs import schema
from mnist_live.runs.host import process_alive
from mnist_live.runs.rows import MAX_SQL_INT, DamagedRun, connect_read_only, sql_int
from mnist_live.runs.schema import BEST_FIRST, MIGRATIONS, RUN_COLUMNS, SCHEMA_VERSION, STATUSES

BUSY_TIMEOUT_S = 10.0                     # how long one statement waits for another writer
RETRY_S = 20.0                            # how long a write transaction is retried while the file is locked
ENV_PATH = "MNIST_LIVE_RUNS"              # overrides default_path (tests, CI, a shared library)


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
            _check_path(self.path, create)
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
            raise _open_error(self.path, e) from None
        try:
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._open_schema()
        except sqlite3.Error as e:
            self.conn.close()
            raise _open_error(self.path, e) from None
        except RunLibraryError:
            self.conn.close()
            raise

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
        return _error(self.path, why, transient)

    def _open_schema(self):
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]   # reads the header: corrupt?
        if version > SCHEMA_VERSION:
            raise self.error(f"written by a newer mnist-live (schema {version}; this version reads up to "
                             f"{SCHEMA_VERSION}): upgrade mnist-live or use another --runs FILE")
        mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise self.error(f"cannot switch to WAL mode (journal mode {mode})")
        self.conn.execute("PRAGMA synchronous=NORMAL")    # WAL: a crash never corrupts, commits stay cheap
        if version != SCHEMA_VERSION:
            why = self._write(schema.create_or_upgrade)
            if why:
                raise self.error(why)

    # ------------------------------------------------------------ transactions
    def _write(self, fn):
        """fn(cursor) in one write transaction (_transaction), retried for up to retry_s."""
        return _transaction(self.conn, fn, self.retry_s, self.path)

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
        row = schema.run_row(config, dataset, self.host, command=command, sweep=sweep, trial=trial)
        return self._write(lambda cur: schema.insert_run(cur, row))

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
        if not self._write(lambda cur: schema.append(cur, run_id, evaluations, losses, lr_changes,
                                                     replace_last_eval)):
            raise self.error(f"no run {run_id}")

    def finish_run(self, run_id, status, test_accuracy=None, per_class=None, wall_s=None, samples_per_s=None,
                   model_file=None, error=None):
        """The run's end: its status and final results; time_to_97 / time_to_98 are the
        elapsed_s of the first full evaluation reaching 97 % / 98 %."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"finish_run: status must be one of {', '.join(STATUSES[1:])}, not {status!r}")
        def write(cur):
            if schema.exists(cur, run_id):
                schema.end_run(cur, run_id, status, test_accuracy, per_class, wall_s, samples_per_s,
                               model_file, error)
                return True
        if not self._write(write):
            raise self.error(f"no run {run_id}")

    def set_model_file(self, run_id, model_file):
        """The model file a finished run's weights were kept in (e.g. a sweep's best trial,
        saved to --save after the sweep)."""
        def write(cur):
            if schema.exists(cur, run_id):
                cur.execute("UPDATE runs SET model_file=? WHERE id=?", (os.path.abspath(model_file), run_id))
                return True
        if not self._write(write):
            raise self.error(f"no run {run_id}")

    def mark_interrupted(self, run_ids=None):
        """`running` rows of this host whose process is gone become `interrupted`; the ids changed."""
        rows = self._read("SELECT id, pid, proc_start FROM runs WHERE status='running' AND host=?", (self.host,))
        wanted = None if run_ids is None else set(run_ids)
        dead = [r[0] for r in rows if (wanted is None or r[0] in wanted) and not process_alive(r[1], r[2])]
        if dead:
            self._write(lambda cur: schema.mark_interrupted(cur, dead))
        return dead

    def remove(self, run_ids):
        """Delete runs (all or none: RunLibraryError naming the first unknown id)."""
        ids = [sql_int(i) for i in run_ids]
        def write(cur):
            missing = [given for i, given in zip(ids, run_ids) if not schema.exists(cur, i)]
            if not missing:
                schema.delete(cur, ids)
            return missing
        missing = self._write(write)
        if missing:
            raise self.error(f"no run {missing[0]}")

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
        rows = self._read(f"SELECT {RUN_COLUMNS} FROM runs WHERE id=?", (sql_int(run_id),))
        if not rows:
            raise self.error(f"no run {run_id}")
        try:
            out = schema.summary(rows[0])
            out.update(self.details(run_id))
        except DamagedRun as e:
            raise self.error(str(e)) from None
        return out

    def details(self, run_id) -> dict:
        """A run's evaluations, losses, lr_changes and health (the HealthRecord JSON objects;
        none in a schema-1 library only read) (DamagedRun: malformed JSON)."""
        return schema.details(self._read, sql_int(run_id), self.schema)

    def runs(self, dataset=None, sweep=None, conditions=(), order=BEST_FIRST, last=None, limit=None) -> list[dict]:
        """Summaries of runs in `order` (an SQL ORDER BY over the runs table; best test
        accuracy first by default), filtered by `conditions` [(SQL condition, [args])] (what
        runs_command.parse_where makes of "lr<0.01", "optimizer=adam", ...); `last`: only the
        N most recently started; `limit`: at most N rows. Damaged rows are skipped
        (`self.skipped`: their ids and what is wrong)."""
        return list(self.iter_runs(dataset, sweep, conditions, order, last, limit))

    def iter_runs(self, dataset=None, sweep=None, conditions=(), order=BEST_FIRST, last=None, limit=None):
        """runs(), one at a time (an export of 100,000 runs never holds them all)."""
        sql, args = schema.select(dataset, sweep, conditions, order, last)
        if limit:
            sql += f" LIMIT {min(int(limit), MAX_SQL_INT)}"
        self.skipped = []
        try:
            for row in self.conn.execute(sql, args):
                try:
                    yield schema.summary(row)
                except DamagedRun as e:
                    self.skipped.append((row[0], str(e)))
        except sqlite3.Error as e:
            raise self.error(sqlite_reason(e)) from None

    def hyperparameter_names(self, dataset=None, sweep=None, conditions=(), last=None):
        """The hyperparameter names stored by the runs selected (damaged JSON skipped)."""
        sql, args = schema.select(dataset, sweep, conditions, None, last, columns="hyper")
        return {k for (k,) in self._read(f"SELECT DISTINCT j.key FROM ({sql}) AS r, json_each(CASE WHEN "
                                         f"json_valid(r.hyper) THEN r.hyper ELSE '{{}}' END) AS j", args)}

    def count_matching(self, dataset=None, sweep=None, conditions=(), last=None):
        sql, args = schema.select(dataset, sweep, conditions, None, last, columns="COUNT(*)")
        return self._read(sql, args)[0][0]

    def sweep_runs(self, sweep) -> list[dict]:
        """The trials of one sweep in trial order, each with its evaluations (`curve`:
        [(elapsed_s, progress, kind, accuracy)]); damaged rows skipped (`self.skipped`)."""
        rows = self.runs(sweep=sweep, order="trial, id")
        curves = schema.sweep_curves(self._read, sweep)
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


def _error(path, why, transient=False):
    return RunLibraryError(f"runs library {path}: {why}", transient)


def _transaction(conn, fn, retry_s, path):
    """Run fn(cursor) in one BEGIN IMMEDIATE transaction, retried for up to retry_s seconds while
    another writer holds the database; anything that goes wrong (an error, Ctrl+C) rolls
    it back, so the database never holds half of it."""
    deadline = time.monotonic() + retry_s
    delay = 0.01
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            if _is_locked(e) and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            raise _error(path, sqlite_reason(e), _is_transient(e)) from None
        try:
            result = fn(_Cursor(conn))
            conn.execute("COMMIT")
            return result
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                if _is_locked(e) and time.monotonic() < deadline:
                    time.sleep(delay)
                    continue
                raise _error(path, sqlite_reason(e), _is_transient(e)) from None
            raise


def _open_error(path, e):
    err = _error(path, sqlite_reason(e), _is_transient(e))
    err.unwritable = any(w in str(e) for w in ("readonly", "unable to open", "disk I/O", "full"))
    return err


def _check_path(path, create):
    """A RunLibraryError unless `path` is a regular file whose folder takes the -wal and -shm
    files, or (with `create`) a file that can be made."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if not create:
            raise _error(path, "no such file") from None
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise _error(path, f"cannot create folder {folder}: {e.strerror}") from None
        if not os.access(folder, os.W_OK | os.X_OK) or not _can_create_in(folder):
            raise _error(path, f"folder {folder} is not writable") from None
        return
    except OSError as e:
        raise _error(path, e.strerror) from None
    if stat.S_ISDIR(st.st_mode):
        raise _error(path, "is a folder, not a database file")
    if not stat.S_ISREG(st.st_mode):
        raise _error(path, "is not a regular file (a FIFO, device or socket?)")
    if not _can_create_in(folder):                  # WAL needs its -wal and -shm files beside it
        err = _error(path, f"folder {folder} is not writable (the library needs its -wal and -shm files there)")
        err.unwritable = True
        raise err


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
