"""The run recorder under faults: a library locked by another program, a full disk, a
read-only mount, a run that ends while the library cannot take its end. Recording is
delayed, never training; nothing recorded is lost; a finished run is never left
`interrupted` (test_run_library.py: the library itself)."""
import os
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import run
from fixtures_runs import DATASET, QUICK, call, per_class
from mnist_live.runs import library as run_library
from mnist_live.runs.library import RunLibrary
from mnist_live.runs.recorder import RunRecorder
from mnist_live.training.config import Config


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runs.sqlite3")


# ------------------------------------------------------------------ a locked library, a full disk (simulated)
def test_a_locked_library_delays_recording_never_the_caller(db, capsys, monkeypatch):
    from mnist_live.training.history import EvalRecord, History
    RunLibrary(db).close()
    monkeypatch.setattr(run_library, "BUSY_TIMEOUT_S", 0.05)         # for `runs rm` below
    monkeypatch.setattr(run_library, "RETRY_S", 0.3)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")                     # another writer holds the write lock
    lines, h = [], History()
    t0 = time.monotonic()
    rec = RunRecorder(db, Config(), DATASET, log=lines.append, end_wait_s=3.0)
    for epoch in (1, 2, 3):
        h.add_eval(EvalRecord(float(epoch), "full", 0.9 + epoch / 100, per_class(0.9), epoch, 0))
        rec.sync(h, float(epoch))
    assert time.monotonic() - t0 < 0.5 and rec.run_id is None           # nothing waited for the library
    rec.finish("finished", h.evals[-1], wall_s=3.5)       # waits 3 s for the library, then hands the end off
    assert 3.0 <= time.monotonic() - t0 < 4.0
    assert lines[0] == (f"runs recording delayed: runs library {db}: the database is locked (another program is "
                        f"writing to it); retrying in the background")
    (handoff,) = [n for n in os.listdir(os.path.dirname(db)) if "-pending-" in n]
    assert lines[-1] == (f"runs library {db}: the run's end is not recorded yet (it is kept in "
                         f"{os.path.join(os.path.dirname(db), handoff)}, which whoever opens the library next applies)")
    t1 = time.monotonic()
    status, out, _ = call(["--runs", db], capsys)         # readers are not blocked by a writer (WAL)
    assert status == 0 and "no runs recorded yet" in out and time.monotonic() - t1 < 1.0
    status, _, err = call(["rm", "1", "--runs", db], capsys)
    assert status == 1 and "locked" in err
    time.sleep(1.0)
    holder.execute("ROLLBACK")
    holder.close()
    assert rec.wait(10) and rec.run_id == 1 and lines[-1].startswith("runs recorded again")
    with RunLibrary(db) as lib:
        r = lib.run(1)
    assert (r["status"], r["test_accuracy"], r["wall_s"]) == ("finished", 0.93, 3.5)
    assert [e["accuracy"] for e in r["evaluations"]] == [0.91, 0.92, 0.93]
    assert not [n for n in os.listdir(os.path.dirname(db)) if "-pending-" in n]     # the hand-off is gone


def test_writes_failing_for_a_while_with_a_full_disk_are_retried_until_they_succeed(db, monkeypatch):
    """A full disk simulated: every write transaction fails with ENOSPC's message for 1.5 s
    (a real full tmpfs: test_a_library_on_a_full_disk_...). Catches: giving up after one error."""
    from mnist_live.runs import writer
    from mnist_live.training.history import EvalRecord, History
    full_until, real_apply, attempts = time.monotonic() + 1.5, writer.apply, []

    def apply(lib, doc):
        attempts.append(time.monotonic())
        if time.monotonic() < full_until:
            raise lib.error(run_library.sqlite_reason(sqlite3.OperationalError("database or disk is full")),
                            transient=True)
        return real_apply(lib, doc)

    monkeypatch.setattr(writer, "apply", apply)
    lines, h = [], History()
    rec = RunRecorder(db, Config(), DATASET, log=lines.append)
    for epoch in (1, 2):
        h.add_eval(EvalRecord(float(epoch), "full", 0.9 + epoch / 100, per_class(0.9), epoch, 0))
        h.add_loss(epoch - 0.5, 1.0 / epoch)
        rec.sync(h, float(epoch))
    rec.finish("finished", h.evals[-1], wall_s=2.5)
    assert rec.run_id is not None and len(attempts) > 3
    assert lines == [f"runs recording delayed: runs library {db}: the disk is full; retrying in the background",
                     lines[1]] and lines[1].startswith("runs recorded again")
    with RunLibrary(db) as lib:
        r = lib.run(rec.run_id)
    assert (r["status"], r["n_evals"], r["losses"]) == ("finished", 2, [[0.5, 1.0], [1.5, 0.5]])


# ------------------------------------------------------------------ a library locked or full while a run trains
class Phases:
    """An observer of a real training loop that holds the library's write lock (a second
    connection in BEGIN EXCLUSIVE) during the given phases, times every batch, looks for
    the run's row while the lock is free (between the seconds `look_at`), and ends the run
    (as finished) at `end_s`."""

    def __init__(self, db, locked, end_s, look_at):
        self.db, self.locked, self.end_s, self.look_at = db, locked, end_s, look_at
        self.holder = sqlite3.connect(db, isolation_level=None)
        self.holder.execute("BEGIN EXCLUSIVE")                  # before the run starts: locked at the start
        self.holding, self.t0, self.times, self.seen, self.looked = True, None, [0.0], None, -1.0

    def on_start(self, run):                                    # first of the observers: the clock starts
        self.t0 = time.monotonic()

    def before_batch(self, run):
        from mnist_live.training.loop import StopTraining
        t = time.monotonic() - self.t0
        self.times.append(t)
        should = any(a <= t < b for a, b in self.locked)
        if should != self.holding:
            self.holder.execute("BEGIN EXCLUSIVE" if should else "COMMIT")
            self.holding = should
        if self.look_at[0] <= t < self.look_at[1] and (self.seen is None or not self.seen[1]) and \
                t - self.looked >= 0.25:                        # until the run is there, 4 times a second
            self.looked = t
            con = sqlite3.connect(self.db)
            self.seen = con.execute("SELECT COUNT(*), MAX(n_evals) FROM runs").fetchone()
            con.close()
        if t >= self.end_s:
            raise StopTraining("finished")

    def rate(self, a, b):
        """Batches per second between a and b seconds."""
        return sum(a <= t < b for t in self.times) / (b - a)

    def __getattr__(self, name):                                 # the other hooks: nothing to do
        if name.startswith("on_"):
            return lambda *args: None
        raise AttributeError(name)


@pytest.mark.slow
def test_a_library_locked_30s_at_the_start_and_mid_run_never_stalls_training(db, sample):
    from mnist_live.runs.recorder import Recording
    from mnist_live.training.loop import Run, train
    from mnist_live.training.trainer import Trainer
    RunLibrary(db).close()
    cfg = Config(hidden=(32,), batch_size=32, epochs=100000, train_size=1000, test_size=300, offline=True)
    lines = []
    rec = Recording(db, cfg, DATASET, log=lines.append)
    phases = Phases(db, locked=[(0, 30), (35, 65)], end_s=69, look_at=(30.5, 35))
    run = Run(Trainer(cfg, sample.x_train[:1000], sample.y_train[:1000]), sample.x_test[:300], sample.y_test[:300],
              [phases, rec])
    outcome = train(run)
    phases.holder.close()
    gaps = [b - a for a, b in zip(phases.times, phases.times[1:])]
    locked = statistics.median([phases.rate(1, 29), phases.rate(36, 64)])
    free = statistics.median([phases.rate(30.5, 34.5), phases.rate(65.5, 68.5)])
    print(f"\nbatches/s: locked {locked:.0f} (start {phases.rate(1, 29):.0f}, mid-run {phases.rate(36, 64):.0f}), "
          f"free {free:.0f}; longest gap between batches {max(gaps) * 1000:.0f} ms")
    assert max(gaps) < 2.0                                       # never a stall of seconds
    assert locked > 0.5 * free
    assert phases.seen[0] == 1 and phases.seen[1] > 0            # the run appeared once the first lock ended
    assert rec.recorder.wait(15)
    with RunLibrary(db) as lib:
        r = lib.run(rec.run_id)
    evals = run.trainer.history.evals
    assert outcome.status == r["status"] == "finished" and r["n_evals"] == len(evals) > 100
    assert [(e["progress"], e["accuracy"]) for e in r["evaluations"]] == [(e.progress, e.accuracy) for e in evals]
    assert r["test_accuracy"] == outcome.final.accuracy
    assert [line.split(":")[0] for line in lines] == ["runs recording delayed", "runs recorded again"] * 2


# ------------------------------------------------------------------ a read-only mount, a full disk (a real tmpfs)
def in_small_tmpfs(tmp_path, script, size="1m"):
    """Run python `script` with a fresh tmpfs of `size` mounted at sys.argv[1], in a private
    user and mount namespace (`unshare -rm`: no root needed); the finished process."""
    import shutil
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("no user namespaces here (unshare -rm) to mount a small tmpfs in")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    shell = 'mount -t tmpfs -o size="$1" tmpfs "$2" && exec "$3" -c "$4" "$2"'
    return subprocess.run(["unshare", "-rm", "sh", "-c", shell, "sh", size, str(mnt), sys.executable,
                           textwrap.dedent(script)], capture_output=True, text=True, timeout=120)


TMPFS_PREAMBLE = """
    import contextlib, io, json, os, subprocess, sys, time
    from mnist_live.runs.command import runs_main
    from mnist_live.runs.library import RunLibrary
    from mnist_live.training.config import Config
    folder = sys.argv[1]
    db = os.path.join(folder, "runs.sqlite3")
    DATASET = {"name": "mnist", "source": "bundled sample", "train": 5000, "test": 1000}
    with RunLibrary(db) as lib:
        for acc in (0.97, 0.98):
            rid = lib.start_run(Config(), DATASET)
            lib.add_evaluation(rid, 1.0, "full", acc, [acc] * 10, 1, 0, 2.0)
            lib.finish_run(rid, "finished", test_accuracy=acc, wall_s=3.0)

    def command(*argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = runs_main([*argv, "--runs", db])
            except SystemExit as e:
                status = e.code
        return status, out.getvalue(), err.getvalue()

    def reads_everything():
        status, out, err = command()
        assert status == 0 and "2 of 2 matching runs shown" in out and err == "", (status, out, err)
        status, out, err = command("show", "2")
        assert status == 0 and "98.00 %" in out, (status, out, err)
        status, out, err = command("export", "--json", "-")
        assert status == 0 and len(json.loads(out)["runs"]) == 2, (status, err)
"""


def test_a_library_on_a_read_only_mount_is_read(tmp_path):
    proc = in_small_tmpfs(tmp_path, TMPFS_PREAMBLE + """
    subprocess.run(["mount", "-o", "remount,ro", folder], check=True)
    reads_everything()
    status, _, err = command("rm", "1")
    assert status == 1 and err.startswith("error: runs library") and "read-only" in err, err
    from mnist_live.runs.recorder import RunRecorder
    lines = []
    rec = RunRecorder(db, Config(), DATASET, log=lines.append)
    assert rec.wait(10) and not rec.active and len(lines) == 1 and "not writable" in lines[0], lines
    print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


def test_a_library_on_a_full_disk_is_read_and_recording_catches_up_once_there_is_room(tmp_path):
    proc = in_small_tmpfs(tmp_path, TMPFS_PREAMBLE + """
    from mnist_live.runs.recorder import RunRecorder
    from mnist_live.training.history import EvalRecord, History
    ballast = os.path.join(folder, "ballast")
    with contextlib.suppress(OSError), open(ballast, "wb") as f:
        while True:                                        # fill the disk
            f.write(b"x" * 4096)
            f.flush()
    reads_everything()
    lines, h = [], History()
    rec = RunRecorder(db, Config(), DATASET, log=lines.append, end_wait_s=0.5)
    for epoch in range(1, 30):
        h.add_loss(epoch - 0.5, 1.0 / epoch)
        h.add_eval(EvalRecord(float(epoch), "full", 0.5 + epoch / 100, [0.5] * 10, epoch, 0))
        rec.sync(h, float(epoch))
    time.sleep(1.0)
    assert rec.run_id is None and lines[0].startswith("runs recording delayed") and "full" in lines[0], lines
    rec.finish("finished", h.evals[-1], wall_s=30.0)
    os.remove(ballast)                                     # room again
    assert rec.wait(20) and rec.run_id == 3 and lines[-1].startswith("runs recorded again"), lines
    with RunLibrary(db) as lib:
        r = lib.run(3)
    assert (r["status"], r["n_evals"], len(r["losses"]), r["test_accuracy"]) == ("finished", 29, 29, 0.79), r
    print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


@pytest.mark.slow
def test_a_run_that_ends_while_the_library_is_locked_is_recorded_finished_later(db, capsys):
    RunLibrary(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")                     # locked for the whole run and after its process exits
    try:
        proc = run(*QUICK, "--epochs", "2", "--runs", db)
    finally:
        time.sleep(0.5)
        status, out, _ = call(["--runs", db], capsys)    # a reader meanwhile: not blocked, nothing to show yet
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 0 and "Test accuracy" in proc.stdout, proc.stderr
    assert status == 0 and "no runs recorded yet" in out
    (handoff,) = [n for n in os.listdir(os.path.dirname(db)) if "-pending-" in n]
    assert "runs recording delayed" in proc.stderr and f"the run's end is not recorded yet (it is kept in " \
        f"{os.path.join(os.path.dirname(db), handoff)}, which whoever opens the library next applies)" in proc.stderr
    status, out, _ = call(["--runs", db], capsys)         # the next opener applies it
    assert status == 0 and " finished " in out and "interrupted" not in out
    with RunLibrary(db) as lib:
        (r,) = [lib.run(x["id"]) for x in lib.runs()]
    assert r["status"] == "finished" and [e["progress"] for e in r["evaluations"]] == [1.0, 2.0] and r["losses"]
    assert not [n for n in os.listdir(os.path.dirname(db)) if "-pending-" in n]
