"""The run library: round trips of every field, concurrent writers, killed and interrupted
runs, broken library files, headless runs recorded (test_runs_command.py: the `runs`
command; test_training_process.py: window runs recorded)."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import MAIN, run
from fixtures_runs import DATASET, QUICK, call, per_class
from mnist_live.runs import library as run_library
from mnist_live.runs.library import RunLibrary
from mnist_live.runs.recorder import RunRecorder
from mnist_live.training.config import Config


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
    (break_newer, f"written by a newer mnist-live (schema {run_library.SCHEMA_VERSION + 1}"),
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
