"""The run library's tables and the statements that write and read them.

Every function here runs inside a transaction or connection of the caller's
(library.RunLibrary's); none opens, commits or retries anything. Tables: `runs` (one row
per run: its configuration as JSON, one column per hyperparameter, the data set and sizes,
host/pid/process start time, machine, status, and summary columns kept up to date while it
trains: test accuracy, best accuracy, time to 97 % and 98 %, wall time, samples/s),
`evaluations` (every evaluation with its per-class accuracy and the seconds since the run
started), `losses` (the loss curve), `lr_changes` and, since schema 2, `health` (each
measurement of training health: history.HealthRecord as JSON). An older library is brought
up to the current schema by MIGRATIONS.

Imports the standard library, runs.rows and runs.host (it is handed `config.Config`
objects); no NumPy.
"""
from __future__ import annotations

import json
import math
import os
import time

from mnist_live.runs import host
from mnist_live.runs.rows import MAX_SQL_INT, json_column, run_dict

SCHEMA_VERSION = 2
STATUSES = ("running", "finished", "diverged", "failed", "interrupted", "pruned")
THRESHOLDS = (0.97, 0.98)                 # time_to_97 / time_to_98: first full evaluation reaching them

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
SUMMARY = ("id", "status", "started", "ended", "updated", "host", "pid", "config", "hyper", "dataset", "data_source",
           "n_train", "n_test", "machine", "command", "sweep", "trial", "test_accuracy", "per_class",
           "best_accuracy", "time_to_97", "time_to_98", "n_evals", "wall_s", "samples_per_s", "model_file", "error")
RUN_COLUMNS = ", ".join(SUMMARY)


def create_or_upgrade(cur):
    """Make the tables in an empty database, or bring an older library up to SCHEMA_VERSION;
    None, or why the file is not a run library."""
    v = cur.execute("PRAGMA user_version").fetchone()[0]
    if v == SCHEMA_VERSION:                       # another process made it meanwhile
        return None
    if v in MIGRATIONS:                           # an older library: brought up to date
        for step in range(v, SCHEMA_VERSION):
            cur.executescript_in_tx(MIGRATIONS[step])
    else:
        tables = [r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if tables:
            return f"is an SQLite database but not a run library (tables: {', '.join(tables[:5])})"
        cur.executescript_in_tx(SCHEMA)
    cur.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return None


# ------------------------------------------------------------------ writing
def run_row(config, dataset, hostname, command=None, sweep=None, trial=None, started=None) -> dict:
    """The runs-table row of a new `running` run of this process (column -> value)."""
    hyper = config.hyperparameters()
    now = time.time() if started is None else started
    row = {"status": "running", "started": now, "updated": now, "host": hostname, "pid": os.getpid(),
           "proc_start": host.process_start(), "config": config.to_json(), "hyper": json.dumps(hyper, sort_keys=True),
           "dataset": config.dataset, "data_source": dataset.get("source"),
           "n_train": dataset.get("train"), "n_test": dataset.get("test"),
           "machine": json.dumps(host.machine_info(), sort_keys=True),
           "command": json.dumps(list(command)) if command is not None else None,
           "sweep": sweep, "trial": trial}
    row.update({k: _hp_value(k, hyper[k]) for k in HP_COLUMNS if k in hyper})
    return row


def insert_run(cur, row) -> int:
    """Insert a run_row(); its id."""
    keys = ", ".join(row)
    marks = ", ".join("?" * len(row))
    return cur.execute(f"INSERT INTO runs ({keys}) VALUES ({marks})", tuple(row.values())).lastrowid


def exists(cur, run_id):
    return cur.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is not None


def append(cur, run_id, evaluations=(), losses=(), lr_changes=(), replace_last_eval=False):
    """RunLibrary.record's statements; False (nothing written) when there is no run `run_id`."""
    seq = _next_seq(cur, "evaluations", run_id)
    if seq is None:
        return False
    if replace_last_eval and seq > 0:
        seq -= 1
        cur.execute("DELETE FROM evaluations WHERE run_id=? AND seq=?", (run_id, seq))
    cur.executemany(
        "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(run_id, seq + i, float(p), kind, _json_float(acc), json.dumps([_json_float(v) for v in pc]),
          int(ep), int(b), None if el is None else float(el))
         for i, (p, kind, acc, pc, ep, b, el) in enumerate(evaluations)])
    if losses:
        s = _next_seq(cur, "losses", run_id)
        cur.executemany("INSERT INTO losses VALUES (?, ?, ?, ?)",
                        [(run_id, s + i, float(p), _json_float(v) if v is not None else None)
                         for i, (p, v) in enumerate(losses) if v is not None and math.isfinite(v)])
    if lr_changes:
        s = _next_seq(cur, "lr_changes", run_id)
        cur.executemany("INSERT INTO lr_changes VALUES (?, ?, ?, ?)",
                        [(run_id, s + i, float(p), float(v)) for i, (p, v) in enumerate(lr_changes)])
    if evaluations:
        update_summary(cur, run_id, final=False)
    else:
        cur.execute("UPDATE runs SET updated=? WHERE id=?", (time.time(), run_id))
    return True


def _next_seq(cur, table, run_id):
    if table == "evaluations":
        row = cur.execute("SELECT (SELECT MAX(seq) FROM evaluations WHERE run_id=?), "
                          "EXISTS(SELECT 1 FROM runs WHERE id=?)", (run_id, run_id)).fetchone()
        if not row[1]:
            return None
        return 0 if row[0] is None else row[0] + 1
    m = cur.execute(f"SELECT MAX(seq) FROM {table} WHERE run_id=?", (run_id,)).fetchone()[0]
    return 0 if m is None else m + 1


def update_summary(cur, run_id, final):
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


def end_run(cur, run_id, status, test_accuracy=None, per_class=None, wall_s=None, samples_per_s=None,
            model_file=None, error=None):
    """RunLibrary.finish_run's statements: the run's status and final results."""
    update_summary(cur, run_id, final=test_accuracy is not None)
    cur.execute("UPDATE runs SET status=?, ended=?, test_accuracy=COALESCE(?, test_accuracy), "
                "per_class=COALESCE(?, per_class), wall_s=?, samples_per_s=?, model_file=?, error=? "
                "WHERE id=?",
                (status, time.time(), _json_float(test_accuracy),
                 json.dumps([_json_float(v) for v in per_class]) if per_class is not None else None,
                 _json_float(wall_s), _json_float(samples_per_s),
                 os.path.abspath(model_file) if model_file else None, error, run_id))


def mark_interrupted(cur, run_ids):
    cur.executemany("UPDATE runs SET status='interrupted', ended=updated, "
                    "error=COALESCE(error, 'the process ended without finishing the run') "
                    "WHERE id=? AND status='running'", [(i,) for i in run_ids])


def delete(cur, run_ids):
    for table in TABLES[1:]:
        cur.executemany(f"DELETE FROM {table} WHERE run_id=?", [(i,) for i in run_ids])
    cur.executemany("DELETE FROM runs WHERE id=?", [(i,) for i in run_ids])


# ------------------------------------------------------------------ reading
def select(dataset, sweep, conditions, order, last, columns=None):
    """(SQL, args) selecting runs: see RunLibrary.runs."""
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
    sql = f"SELECT {columns or RUN_COLUMNS} FROM runs"
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    if columns is None:
        sql += " ORDER BY " + order
    return sql, args


def summary(row) -> dict:
    """A runs row selected with RUN_COLUMNS as a dict (rows.DamagedRun: malformed JSON)."""
    return run_dict(SUMMARY, row)


def details(read, rid, schema) -> dict:
    """A run's evaluations, losses, lr_changes and health, through read(sql, args)."""
    evals = read("SELECT progress, kind, accuracy, per_class, epoch, batch, elapsed_s FROM evaluations "
                 "WHERE run_id=? ORDER BY seq", (rid,))
    return {"evaluations": [{"progress": p, "kind": k, "accuracy": a, "epoch": e, "batch": b, "elapsed_s": el,
                             "per_class": json_column(rid, pc, "evaluation per_class", list)}
                            for p, k, a, pc, e, b, el in evals],
            "losses": [list(r) for r in read("SELECT progress, loss FROM losses WHERE run_id=? ORDER BY seq", (rid,))],
            "lr_changes": [list(r) for r in read(
                "SELECT progress, lr FROM lr_changes WHERE run_id=? ORDER BY seq", (rid,))],
            "health": [json_column(rid, r[0], "health record", dict) for r in read(
                "SELECT record FROM health WHERE run_id=? ORDER BY seq", (rid,))] if schema >= 2 else []}


def sweep_curves(read, sweep) -> dict:
    """run id -> [(elapsed_s, progress, kind, accuracy)] of one sweep's runs, through read(sql, args)."""
    curves = {}
    for run_id, el, p, k, a in read(
            "SELECT e.run_id, e.elapsed_s, e.progress, e.kind, e.accuracy FROM evaluations e "
            "JOIN runs r ON r.id=e.run_id WHERE r.sweep=? ORDER BY e.run_id, e.seq", (sweep,)):
        curves.setdefault(run_id, []).append((el, p, k, a))
    return curves


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
