"""The recorder's background writer: what a run has to record goes into the run library
from a thread of its own, retried for as long as the library is locked or the disk full,
so a slow library delays recording, never training.

What it owns: `RunWriter` (the thread, what waits to be written, merged, and the retries),
`apply` (one transaction that brings a run's rows up to what the writer holds: explicit
sequence numbers, so applying the same thing twice changes nothing), and hand-off files.
A run that ends while the library cannot take its end leaves the end in a hand-off file
beside the library (`<library>-pending-<host>-<pid>-<start>.json`) before its process
exits; whoever opens the library next applies it (`replay`, from RunLibrary), so a
finished run is never turned into `interrupted` because its process could not wait.

What waits is a document, JSON as it stands: {"row": schema.run_row(...), "run_id": id
or None, "evals": [first seq, [(progress, kind, accuracy, per_class, epoch, batch,
elapsed_s), ...]], "losses": [first seq, [(progress, loss), ...]], "lrs": [first seq,
[(progress, lr), ...]], "health": [first seq, [(progress, epoch, batch, HealthRecord JSON
object), ...]] (absent from older hand-off files), "end": finish_run's keywords or None}.

Imports: the standard library and runs.library. No NumPy.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time

from mnist_live.runs.library import RunLibrary, RunLibraryError
from mnist_live.runs.schema import end_run, insert_run, update_summary

OPEN_TIMEOUT_S = 1.0          # one attempt's wait for another writer (the thread retries after it)
RETRY_MIN_S, RETRY_MAX_S = 0.05, 2.0     # backoff between attempts
HANDOFF_MAX_BYTES = 64 * 2**20           # a bigger hand-off file is not ours
_KEYS = ("evals", "losses", "lrs", "health")  # what the document holds rows of, each [first seq, rows]


# ------------------------------------------------------------------ one transaction
def apply(lib, doc):
    """Bring the run `doc` describes to what it holds, in one transaction; its id, or None
    when the run is gone (removed from the library meanwhile)."""
    def write(cur):
        run_id = _resolve(cur, doc)
        if run_id is None:
            return None
        first, rows = doc["evals"]
        if rows:
            cur.execute("DELETE FROM evaluations WHERE run_id=? AND seq>=?", (run_id, first))
            cur.executemany("INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [(run_id, first + i, p, kind, acc, json.dumps(list(pc)), ep, b, el)
                             for i, (p, kind, acc, pc, ep, b, el) in enumerate(rows)])
        for table, (start, points) in (("losses", doc["losses"]), ("lr_changes", doc["lrs"])):
            cur.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?)",
                            [(run_id, start + i, p, v) for i, (p, v) in enumerate(points)])
        start, records = doc.get("health", (0, ()))
        cur.executemany("INSERT OR REPLACE INTO health VALUES (?, ?, ?, ?, ?, ?)",
                        [(run_id, start + i, p, e, b, json.dumps(rec, allow_nan=False))
                         for i, (p, e, b, rec) in enumerate(records)])
        if doc["end"] is not None:
            end_run(cur, run_id, **doc["end"])
        elif rows:
            update_summary(cur, run_id, final=False)
        else:
            cur.execute("UPDATE runs SET updated=? WHERE id=?", (time.time(), run_id))
        return run_id
    return lib.transaction(write)


def _resolve(cur, doc):
    """The run's id: the one it was given (if that row is still this run's), else the row of
    this process started at this time, else a new row."""
    row = doc["row"]
    ident = (row["host"], row["pid"], row["started"])
    if doc["run_id"] is not None:
        found = cur.execute("SELECT host, pid, started FROM runs WHERE id=?", (doc["run_id"],)).fetchone()
        return doc["run_id"] if found is not None and tuple(found) == ident else None
    found = cur.execute("SELECT id FROM runs WHERE host=? AND pid=? AND started=?", ident).fetchone()
    return found[0] if found else insert_run(cur, row)


# ------------------------------------------------------------------ hand-off files
def handoff_path(library_path, row):
    folder, base = os.path.split(os.path.abspath(library_path))
    host = re.sub(r"[^A-Za-z0-9.-]", "_", row["host"])[:64]
    return os.path.join(folder, f"{base}-pending-{host}-{row['pid']}-{int(row['started'] * 1e6)}.json")


def write_handoff(library_path, doc):
    """Keep `doc` in its hand-off file (atomically); the file's path. OSError when it cannot be."""
    from mnist_live.training.files import atomic_write_json
    path = handoff_path(library_path, doc["row"])
    atomic_write_json(path, doc)
    return path


def replay(lib):
    """Apply the hand-off files beside `lib`'s file and remove them; the ids of the runs
    they completed. A file that cannot be read or applied stays for the next opener."""
    folder, base = os.path.split(os.path.abspath(lib.path))
    prefix = f"{base}-pending-"
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(prefix) and e.name.endswith(".json")]
    except OSError:
        return []
    done = []
    for name in sorted(names):
        path = os.path.join(folder, name)
        try:
            if os.path.getsize(path) > HANDOFF_MAX_BYTES:
                continue
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            run_id = apply(lib, doc)
        except (OSError, ValueError, KeyError, TypeError, RunLibraryError):
            continue
        with contextlib.suppress(OSError):
            os.remove(path)
        if run_id is not None:
            done.append(run_id)
    return done


# ------------------------------------------------------------------ the thread
class RunWriter:
    """Writes one run in the background. The training side calls `add` (what the run
    gained, with its sequence numbers) and `end` (how it ended), which never wait, and may
    `wait` a bounded time for the writer to catch up. A locked library or a full disk is
    retried (one line when recording falls behind, one when it has caught up); anything
    else stops recording with one line 'runs not recorded: ...'."""

    def __init__(self, path, row, log=print):
        self.path, self.log = path, log
        self.doc = {"row": row, "run_id": None, "evals": [0, []], "losses": [0, []], "lrs": [0, []],
                    "health": [0, []], "end": None}
        self.incoming = []              # additions (tuples) and the end (a dict) since the thread last looked
        self.cond = threading.Condition()
        self.failed = None              # why recording stopped for good
        self.done = False               # the end is written (or recording stopped)
        self.started = False            # the run's row exists
        self.behind_since = None        # monotonic time of the first failed attempt in a row
        self.handoff = None             # the hand-off file holding the end, once written
        self.write_s = 0.0              # seconds spent writing (in the thread)
        self.thread = threading.Thread(target=self._main, name="run-writer", daemon=True)
        self.thread.start()

    @property
    def run_id(self):
        return self.doc["run_id"]

    # ------------------------------------------------------------ the training side
    def add(self, evals=(0, ()), losses=(0, ()), lrs=(0, ()), health=(0, ())):
        """Queue what the run gained: each (first sequence number, rows)."""
        with self.cond:
            self.incoming.append((evals, losses, lrs, health))
            self.cond.notify()

    def end(self, **end):
        """Queue the run's end (library.RunLibrary.finish_run's keywords)."""
        with self.cond:
            self.incoming.append(end)
            self.cond.notify()

    def wait(self, timeout):
        """Whether everything queued is written (or recording stopped) within `timeout` s."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self._idle():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def _idle(self):
        return self.failed is not None or (not self.incoming and not self._pending() and self.started)

    # ------------------------------------------------------------ the thread
    def _pending(self):
        d = self.doc
        return not self.started or bool(d["evals"][1] or d["losses"][1] or d["lrs"][1] or d["health"][1]) or \
            (d["end"] is not None and not self.done)

    def _merge(self):
        """Fold the queued additions into the document (under the lock)."""
        d = self.doc
        for item in self.incoming:
            if isinstance(item, dict):
                d["end"] = item
                continue
            for key, (first, rows) in zip(_KEYS, item):
                if not rows:
                    continue
                start, have = d[key]
                if not have:
                    d[key] = [first, list(rows)]
                else:                           # contiguous: a replaced evaluation restarts at its seq
                    d[key] = [start, have[:max(0, first - start)] + list(rows)]
        self.incoming = []

    def _snapshot(self):
        d = self.doc
        return {**d, **{key: [d[key][0], list(d[key][1])] for key in _KEYS}}

    def _written(self, snap, run_id):
        """What `snap` held is in the library: keep only what came after it (under the lock)."""
        d = self.doc
        d["run_id"], self.started = run_id, True
        for key in _KEYS:
            first, rows = snap[key]
            start, have = d[key]
            written_to = first + len(rows)
            d[key] = [max(start, written_to), have[max(0, written_to - start):]]
        if snap["end"] is not None:
            self.done = True

    def _main(self):
        lib, delay = None, RETRY_MIN_S
        try:
            while True:
                with self.cond:
                    self._merge()
                    while not self._pending() and not self.incoming:
                        self.cond.notify_all()              # wait() sees it idle
                        if self.done:
                            return
                        self.cond.wait()
                    self._merge()
                    snap = self._snapshot()
                t0 = time.perf_counter()
                try:
                    lib = lib or RunLibrary(self.path, timeout=OPEN_TIMEOUT_S, retry_s=0)
                    run_id = apply(lib, snap)
                except RunLibraryError as e:
                    self.write_s += time.perf_counter() - t0
                    if not e.transient:
                        self._stop(f"runs not recorded: {e}")
                        return
                    lib = _closed(lib)
                    self._behind(e, snap)
                    self._pause(delay)
                    delay = min(2 * delay, RETRY_MAX_S)
                    continue
                self.write_s += time.perf_counter() - t0
                if run_id is None:
                    self._stop(f"runs not recorded: run {snap['run_id']} was removed from {self.path}")
                    return
                delay = RETRY_MIN_S
                self._caught_up(snap)
                with self.cond:
                    self._written(snap, run_id)
                    self.cond.notify_all()
        except Exception as e:                                  # noqa: BLE001 - never into training
            self._stop(f"runs not recorded: runs library {self.path}: {type(e).__name__}: {e}")
        finally:
            _closed(lib)

    def _pause(self, seconds):
        """Wait before the next attempt; the run's end, queued, cuts it short."""
        deadline = time.monotonic() + seconds
        with self.cond:
            while not any(isinstance(item, dict) for item in self.incoming):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)

    def _behind(self, e, snap):
        if self.behind_since is None:
            self.behind_since = time.monotonic()
            self.log(f"runs recording delayed: {e}; retrying in the background")
        if snap["end"] is not None and self.handoff is None:
            try:
                self.handoff = write_handoff(self.path, snap)
            except OSError:
                pass                                            # the full disk itself: retried with the rest

    def _caught_up(self, snap):
        if self.behind_since is not None:
            self.log(f"runs recorded again: the library took what waited after "
                     f"{time.monotonic() - self.behind_since:.0f} s")
            self.behind_since = None
        if snap["end"] is not None and self.handoff is not None:
            with contextlib.suppress(OSError):
                os.remove(self.handoff)
            self.handoff = None

    def _stop(self, line):
        self.log(line)
        with self.cond:
            self.failed, self.done = line, True
            self.cond.notify_all()


def _closed(lib):
    if lib is not None:
        lib.close()
    return None
