"""The run library: round trips of every field, concurrent writers, killed and interrupted
runs, broken library files, headless runs recorded (test_runs_command.py: the `runs`
command; test_training_process.py: window runs recorded)."""
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import MAIN, run
from fixtures_runs import DATASET, call, per_class
from mnist_live.runs import library as run_library
from mnist_live.runs.library import RunLibrary
from mnist_live.runs.recorder import RunRecorder
from mnist_live.training.config import Config

QUICK = ("--headless", "--offline", "--hidden", "16", "--train-size", "500", "--test-size", "200")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runs.sqlite3")


# ------------------------------------------------------------------ the library itself
def test_every_field_survives_a_round_trip(db):
    cfg = Config(lr=0.003, batch_size=64, optimizer="momentum", nesterov=True, hidden=(64, 32), epochs=3,
                 dropout=0.25, offline=True, train_size=800, save="m.npz")
    with RunLibrary(db) as lib:
        rid = lib.start_run(cfg, DATASET, command=["--headless", "--lr", "0.003"], sweep="s1", trial=4)
        lib.add_evaluation(rid, 0.5, "subset", 0.99, per_class(0.9), 0, 20, 1.5)      # subset: not a threshold
        lib.add_evaluation(rid, 1.0, "full", 0.965, [float("nan")] + per_class(0.9)[1:], 1, 0, 2.0)
        lib.add_evaluation(rid, 2.0, "full", 0.975, per_class(0.96), 2, 0, 4.0)
        lib.add_evaluation(rid, 3.0, "full", 0.981, per_class(0.97), 3, 0, 6.5)
        lib.add_losses(rid, [(0.01, 2.3), (0.02, 1.9)])
        lib.add_losses(rid, [(0.03, 1.5)])
        lib.add_lr_change(rid, 1.5, 0.0015)
        lib.finish_run(rid, "finished", test_accuracy=0.981, per_class=per_class(0.97), wall_s=7.25,
                       samples_per_s=12345.0, model_file="m.npz")
        r = lib.run(rid)
    assert r["status"] == "finished" and r["error"] is None
    assert r["config"] == json.loads(cfg.to_json())
    assert r["hyperparameters"] == cfg.hyperparameters()
    assert (r["dataset"], r["data_source"], r["n_train"], r["n_test"]) == ("mnist", "bundled sample", 5000, 1000)
    assert r["command"] == ["--headless", "--lr", "0.003"]
    assert (r["sweep"], r["trial"]) == ("s1", 4)
    assert r["host"] and r["pid"] == os.getpid() and r["started"] <= r["ended"]
    assert r["machine"]["cores"] == os.cpu_count() and r["machine"]["numpy"]
    assert (r["test_accuracy"], r["best_accuracy"], r["n_evals"]) == (0.981, 0.981, 4)
    assert (r["time_to_97"], r["time_to_98"]) == (4.0, 6.5)      # the first FULL evaluation reaching them
    assert (r["wall_s"], r["samples_per_s"]) == (7.25, 12345.0)
    assert r["model_file"] == os.path.abspath("m.npz")
    assert r["per_class"] == per_class(0.97)
    assert [(e["progress"], e["kind"], e["accuracy"], e["epoch"], e["batch"], e["elapsed_s"])
            for e in r["evaluations"]] == [(0.5, "subset", 0.99, 0, 20, 1.5), (1.0, "full", 0.965, 1, 0, 2.0),
                                           (2.0, "full", 0.975, 2, 0, 4.0), (3.0, "full", 0.981, 3, 0, 6.5)]
    assert r["evaluations"][1]["per_class"][0] is None and r["evaluations"][2]["per_class"] == per_class(0.96)
    assert r["losses"] == [[0.01, 2.3], [0.02, 1.9], [0.03, 1.5]]
    assert r["lr_changes"] == [[1.5, 0.0015]]


def test_the_recorder_syncs_only_what_the_history_gained(db):
    from mnist_live.training.history import EvalRecord, History
    h = History()
    rec = RunRecorder(db, Config(epochs=3), DATASET, log=pytest.fail)
    assert rec.active
    h.add_loss(0.1, 2.0)
    h.add_eval(EvalRecord(1.0, "full", 0.9, per_class(0.9), 1, 0))
    rec.sync(h, 1.0)
    h.add_loss(0.2, 1.0)
    h.add_lr_change(1.2, 0.01)
    h.add_eval(EvalRecord(1.0, "full", 0.95, per_class(0.9), 1, 0))    # same weights again: replaces
    h.add_eval(EvalRecord(2.0, "full", 0.97, per_class(0.9), 2, 0))
    rec.sync(h, 2.0)
    rec.sync(h, 3.0)                                                    # nothing new: nothing written
    rec.finish("finished", None, wall_s=3.5, samples_per_s=99.0)
    with RunLibrary(db) as lib:
        r = lib.run(rec.run_id)
    assert [(e["accuracy"], e["elapsed_s"]) for e in r["evaluations"]] == [(0.95, 2.0), (0.97, 2.0)]
    assert r["losses"] == [[0.1, 2.0], [0.2, 1.0]] and r["lr_changes"] == [[1.2, 0.01]]
    assert (r["status"], r["test_accuracy"], r["time_to_97"], r["wall_s"]) == ("finished", 0.97, 2.0, 3.5)
    assert rec.busy_s > 0


def test_two_processes_writing_at_once_lose_nothing(db):
    RunLibrary(db).close()
    script = textwrap.dedent(f"""
        import sys
        from mnist_live.training.config import Config
        from mnist_live.runs.library import RunLibrary
        lib = RunLibrary({db!r})
        for i in range(200):
            rid = lib.start_run(Config(seed=i), {DATASET!r}, sweep=sys.argv[1], trial=i)
            lib.add_evaluation(rid, 1.0, "full", 0.9, [0.9] * 10, 1, 0, 1.0)
            lib.add_evaluation(rid, 2.0, "full", 0.98, [0.9] * 10, 2, 0, 2.0)
            lib.finish_run(rid, "finished", test_accuracy=0.98, wall_s=2.0)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name], stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    with RunLibrary(db) as lib:
        for name in ("a", "b"):
            trials = lib.sweep_runs(name)
            assert [r["trial"] for r in trials] == list(range(200))
            assert all(r["status"] == "finished" and r["n_evals"] == 2 and r["time_to_98"] == 2.0 and
                       len(r["curve"]) == 2 for r in trials)


def test_a_running_row_whose_process_is_gone_becomes_interrupted_on_open(db):
    with RunLibrary(db) as lib:
        alive = lib.start_run(Config(), DATASET)                    # this process: still running
        reused = lib.start_run(Config(), DATASET)                   # our pid, but another process's start
        other_host = lib.start_run(Config(), DATASET)
        gone = lib.start_run(Config(), DATASET)
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE runs SET proc_start='x:1' WHERE id=?", (reused,))
        con.execute("UPDATE runs SET host='elsewhere', pid=1 WHERE id=?", (other_host,))
        con.execute("UPDATE runs SET pid=? WHERE id=?", (int(proc.stdout), gone))
    con.close()
    with RunLibrary(db) as lib:
        status = {r["id"]: r["status"] for r in lib.runs()}
    assert status == {alive: "running", reused: "interrupted", other_host: "running", gone: "interrupted"}


def wait_for_row(db, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if os.path.exists(db):
            con = sqlite3.connect(db)
            try:
                if con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]:
                    return
            except sqlite3.OperationalError:
                pass
            finally:
                con.close()
        time.sleep(0.05)
    pytest.fail("no run row appeared")


def raw_row(db):
    """The run row as stored (read without opening a RunLibrary, which would mark it)."""
    con = sqlite3.connect(db)
    row = con.execute("SELECT status, error, test_accuracy, ended FROM runs").fetchone()
    con.close()
    return row


@pytest.mark.slow
def test_a_killed_headless_run_shows_as_interrupted(db, capsys):
    proc = subprocess.Popen([sys.executable, MAIN, *QUICK, "--epochs", "100000", "--runs", db],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_row(db, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert raw_row(db)[0] == "running"                   # nobody could write anything
    status, out, _ = call(["--runs", db], capsys)
    assert status == 0 and " interrupted " in out
    assert raw_row(db)[:2] == ("interrupted", "the process ended without finishing the run")


@pytest.mark.slow
def test_sigterm_records_interrupted_with_the_final_evaluation(db):
    proc = subprocess.Popen([sys.executable, MAIN, *QUICK, "--epochs", "100000", "--runs", db],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_row(db, proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130, proc.stderr.read()
    status, error, acc, ended = raw_row(db)
    assert (status, error) == ("interrupted", None) and 0 < acc <= 1 and ended


@pytest.mark.slow
def test_a_headless_run_is_recorded_and_a_bad_library_does_not_stop_it(tmp_path):
    db = str(tmp_path / "r.sqlite3")
    proc = run(*QUICK, "--epochs", "2", "--lr", "0.003", "--runs", db, "--save", str(tmp_path / "m.npz"))
    assert proc.returncode == 0, proc.stderr
    with RunLibrary(db) as lib:
        (r,) = [lib.run(x["id"]) for x in lib.runs()]
    assert r["status"] == "finished" and r["config"]["lr"] == 0.003 and r["n_train"] == 500
    assert [e["progress"] for e in r["evaluations"]] == [1.0, 2.0] and r["losses"] and r["samples_per_s"] > 0
    assert r["model_file"] == str(tmp_path / "m.npz") and r["wall_s"] > r["evaluations"][-1]["elapsed_s"] > 0
    assert r["command"][-4:] == ["--runs", db, "--save", str(tmp_path / "m.npz")]
    proc = run(*QUICK, "--epochs", "1", "--runs", str(tmp_path))            # a folder
    assert proc.returncode == 0 and "Test accuracy" in proc.stdout and "Traceback" not in proc.stderr
    assert f"runs not recorded: runs library {tmp_path}: is a folder" in proc.stderr
    proc = run(*QUICK, "--epochs", "1", "--no-runs", "--runs", db)
    assert proc.returncode == 0 and "runs not recorded" not in proc.stderr
    with RunLibrary(db) as lib:
        assert lib.count() == 1


# ------------------------------------------------------------------ broken library files
def break_newer(db):
    RunLibrary(db).close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version={run_library.SCHEMA_VERSION + 1}")
    con.close()


def break_corrupt(db):
    with open(db, "wb") as f:
        f.write(b"this is not an SQLite file, it is some notes\n" * 100)


def break_foreign(db):
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes (x)")
    con.close()


@pytest.mark.parametrize("breaker, fragment", [
    (break_newer, "written by a newer mnist-live (schema 2"),
    (break_corrupt, "not a valid run library (corrupt file?)"),
    (break_foreign, "not a run library (tables: notes)"),
    (lambda db: os.mkdir(db), "is a folder"),
    (lambda db: os.mkfifo(db), "not a regular file"),
])
def test_a_broken_library_is_one_line_for_readers_and_writers(db, breaker, fragment, capsys):
    breaker(db)
    status, out, err = call(["--runs", db], capsys)
    assert status == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: runs library {db}: ") and fragment in err
    from mnist_live.training.history import History
    lines = []
    rec = RunRecorder(db, Config(), DATASET, log=lines.append)
    rec.sync(History(), 1.0)
    rec.finish("finished")                                # waits for the writer, which gave up
    rec.sync(History(), 2.0)                              # inactive: touches nothing
    assert rec.run_id is None and len(lines) == 1 and lines[0].startswith("runs not recorded: runs library")
    assert fragment in lines[0] and not rec.active


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


def test_a_folder_where_nothing_can_be_created_is_one_line(capsys):
    lines = []
    rec = RunRecorder("/proc/runs.sqlite3", Config(), DATASET, log=lines.append)
    assert rec.wait(5) and not rec.active
    assert rec.run_id is None and lines == ["runs not recorded: runs library /proc/runs.sqlite3: "
                                            "folder /proc is not writable"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_read_only_folder_is_read_and_writing_is_one_line(tmp_path, capsys):
    """As root: test_a_library_on_a_read_only_mount_is_read (the same path through the code)."""
    db = str(tmp_path / "ro" / "runs.sqlite3")
    RunLibrary(db).close()
    os.chmod(tmp_path / "ro", 0o555)
    try:
        assert call(["--runs", db], capsys)[:2] == (0, f"no runs recorded yet in {db}\n")
        status, _, err = call(["rm", "1", "--runs", db], capsys)
        assert status == 1 and "read-only" in err and err.count("\n") == 1
    finally:
        os.chmod(tmp_path / "ro", 0o755)


def test_the_default_library_lives_next_to_the_openml_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(run_library.ENV_PATH, raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))
    assert run_library.default_path() == str(tmp_path / "mnist_viz" / "runs.sqlite3")
    assert run_library.default_path("~/d") == os.path.expanduser("~/d/mnist_viz/runs.sqlite3")
    from mnist_live import data_loader
    assert os.path.dirname(run_library.default_path()) == str(data_loader.cache_path("mnist").parent)


# ------------------------------------------------------------------ a library locked or full while a run trains
class Phases:
    """An observer of a real training loop that holds the library's write lock (a second
    connection in BEGIN EXCLUSIVE) during the given phases, times every batch, looks for
    the run's row while the lock is free, and ends the run (as finished) at `end_s`."""

    def __init__(self, db, locked, end_s, look_at):
        self.db, self.locked, self.end_s, self.look_at = db, locked, end_s, look_at
        self.holder = sqlite3.connect(db, isolation_level=None)
        self.holder.execute("BEGIN EXCLUSIVE")                  # before the run starts: locked at the start
        self.holding, self.t0, self.times, self.seen = True, None, [0.0], None

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
        if self.seen is None and t >= self.look_at:
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
    phases = Phases(db, locked=[(0, 30), (35, 65)], end_s=69, look_at=33)
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
    assert outcome.status == r["status"] == "finished" and r["n_evals"] == len(evals) > 1000
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
