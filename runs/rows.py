"""What RunLibrary reads, checked: a runs-table row decoded into the dict the library
hands out, a damaged row (malformed JSON, a number that is not one) told apart so that
readers skip it and say so instead of failing; ids bounded to SQLite's integers; and the
read-only connection of a reader that cannot write the library's folder or disk.

Imports: the standard library only (no NumPy: `mnist-live runs` must start fast).
"""
from __future__ import annotations

import json
import os
import sqlite3
from urllib.parse import quote

MAX_SQL_INT = 2**63 - 1       # SQLite's largest integer (a bigger --top or --last means all)
NUMBERS = ("started", "ended", "updated", "pid", "n_train", "n_test", "trial", "test_accuracy", "best_accuracy",
           "time_to_97", "time_to_98", "n_evals", "wall_s", "samples_per_s")


class DamagedRun(ValueError):
    """A row whose JSON columns are malformed (or numbers are not numbers): shown as damaged, skipped."""


def damaged(run_id, what):
    return DamagedRun(f"run {run_id} is damaged ({what}); `mnist-live runs rm {run_id}` removes it")


def sql_int(i):
    """An id as SQLite takes it: one beyond its 64 bits matches no run (rather than raising OverflowError)."""
    i = int(i)
    return i if -MAX_SQL_INT - 1 <= i <= MAX_SQL_INT else MAX_SQL_INT + 0.5


def json_column(run_id, text, column, kind, nullable=False):
    """The JSON of one column, of type `kind`; DamagedRun when it is not."""
    if text is None and nullable:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        value = None
    if not isinstance(value, kind):
        raise damaged(run_id, f"{column} is not valid JSON")
    return value


def run_dict(names, row):
    """The dict of a runs-table row selected as `names` (DamagedRun when it is damaged)."""
    d = dict(zip(names, row))
    rid = d["id"]
    d["config"] = json_column(rid, d["config"], "config", dict)
    d["hyperparameters"] = json_column(rid, d.pop("hyper"), "hyper", dict)
    d["machine"] = json_column(rid, d["machine"], "machine", dict)
    d["command"] = json_column(rid, d["command"] or None, "command", list, nullable=True)
    d["per_class"] = json_column(rid, d["per_class"] or None, "per_class", list, nullable=True)
    bad = [k for k in NUMBERS if d.get(k) is not None and (isinstance(d[k], bool) or
                                                          not isinstance(d[k], (int, float)))]
    if bad:
        raise damaged(rid, f"{bad[0]} is not a number")
    return d


def connect_read_only(path, timeout):
    """(connection, schema version) of the library at `path` opened for reading only: read-only,
    or immutable when no -wal file holds changes beside it (SQLite then needs no -shm file,
    which a read-only folder or a full disk refuses); None when neither opens it."""
    wal = path + "-wal"
    modes = ["mode=ro"] + ([] if os.path.exists(wal) and os.path.getsize(wal) > 0 else ["mode=ro&immutable=1"])
    for mode in modes:
        try:
            conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?{mode}", uri=True, timeout=timeout,
                                   isolation_level=None)
        except sqlite3.Error:
            continue
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("SELECT id FROM runs LIMIT 0")
            return conn, version
        except sqlite3.Error:
            conn.close()
    return None
