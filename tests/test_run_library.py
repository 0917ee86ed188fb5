"""The run library: round trips of every field, concurrent writers, killed and interrupted
runs, broken library files, the `runs` command's leaderboard, filters, exports and rm."""
import csv
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

import main
import run_library
from config import Config
from conftest import MAIN, ROOT, assert_one_line_error, run
from run_library import RunLibrary, RunLibraryError, RunRecorder, runs_main

DATASET = {"name": "mnist", "source": "bundled sample", "train": 5000, "test": 1000}
QUICK = ("--headless", "--offline", "--hidden", "16", "--train-size", "500", "--test-size", "200")


def per_class(base):
    return [min(1.0, base + i / 1000) for i in range(10)]


def add_run(lib, acc, config=None, evals=(), status="finished", sweep=None, trial=None, wall=10.0):
    """A finished run with evaluations [(elapsed_s, accuracy)] (full, one per epoch)."""
    config = config or Config()
    rid = lib.start_run(config, DATASET, sweep=sweep, trial=trial)
    for i, (el, a) in enumerate(evals):
        lib.add_evaluation(rid, i + 1.0, "full", a, per_class(a - 0.01), i + 1, 0, el)
    lib.finish_run(rid, status, test_accuracy=acc, per_class=per_class(acc - 0.01), wall_s=wall,
                   samples_per_s=20000.0)
    return rid


def call(argv, capsys):
    """runs_main(argv) -> (status, stdout, stderr)."""
    try:
        status = runs_main(argv)
    except SystemExit as e:
        status = e.code
    out = capsys.readouterr()
    return status, out.out, out.err


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
    from trainer import EvalRecord, History
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
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from config import Config
        from run_library import RunLibrary
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
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
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
    lines = []
    rec = RunRecorder(db, Config(), DATASET, log=lines.append)
    rec.sync(None, 1.0)                                   # inactive: touches nothing
    rec.finish("finished")
    assert rec.run_id is None and len(lines) == 1 and lines[0].startswith("runs not recorded: runs library")
    assert fragment in lines[0]


def test_a_locked_library_is_retried_then_one_line(db, capsys, monkeypatch):
    RunLibrary(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")                     # another writer holds the write lock
    monkeypatch.setattr(run_library, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(run_library, "RETRY_S", 0.3)
    lines = []
    t0 = time.monotonic()
    rec = RunRecorder(db, Config(), DATASET, log=lines.append)
    assert time.monotonic() - t0 >= 0.3                   # it retried before giving up
    assert rec.run_id is None and lines == [f"runs not recorded: runs library {db}: the database is locked "
                                            f"(another program is writing to it)"]
    status, out, _ = call(["--runs", db], capsys)         # readers are not blocked by a writer (WAL)
    assert status == 0 and "no runs recorded yet" in out
    status, _, err = call(["rm", "1", "--runs", db], capsys)
    assert status == 1 and "locked" in err
    holder.execute("ROLLBACK")
    holder.close()
    assert RunRecorder(db, Config(), DATASET, log=pytest.fail).run_id == 1


def test_a_folder_where_nothing_can_be_created_is_one_line(capsys):
    lines = []
    rec = RunRecorder("/proc/runs.sqlite3", Config(), DATASET, log=lines.append)
    assert rec.run_id is None and lines == ["runs not recorded: runs library /proc/runs.sqlite3: "
                                            "folder /proc is not writable"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_read_only_folder_is_one_line(tmp_path, capsys):
    db = str(tmp_path / "ro" / "runs.sqlite3")
    RunLibrary(db).close()
    os.chmod(tmp_path / "ro", 0o555)
    try:
        status, _, err = call(["--runs", db], capsys)
        assert status == 1 and "not writable" in err and err.count("\n") == 1
    finally:
        os.chmod(tmp_path / "ro", 0o755)


def test_an_absent_or_empty_library_is_a_friendly_line(db, capsys):
    assert call(["--runs", db], capsys)[:2] == (0, f"no runs recorded yet in {db}\n")
    assert not os.path.exists(db)                          # reading does not create it
    RunLibrary(db).close()
    assert call(["--runs", db], capsys)[:2] == (0, f"no runs recorded yet in {db}\n")


def test_the_default_library_lives_next_to_the_openml_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(run_library.ENV_PATH, raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))
    assert run_library.default_path() == str(tmp_path / "mnist_viz" / "runs.sqlite3")
    assert run_library.default_path("~/d") == os.path.expanduser("~/d/mnist_viz/runs.sqlite3")
    import data_loader
    assert os.path.dirname(run_library.default_path()) == str(data_loader.cache_path("mnist").parent)


# ------------------------------------------------------------------ the runs command
@pytest.fixture
def three(db):
    """Three finished runs: lr and batch size differ, nothing else."""
    with RunLibrary(db) as lib:
        a = add_run(lib, 0.975, Config(lr=0.003, offline=True, epochs=2), [(5.0, 0.96), (9.0, 0.975)])
        b = add_run(lib, 0.985, Config(lr=0.001, batch_size=64, offline=True, epochs=2), [(6.0, 0.97), (11.0, 0.985)])
        c = add_run(lib, 0.981, Config(lr=0.0005, offline=True, epochs=2), [(4.0, 0.98), (8.0, 0.981)])
    return db, (a, b, c)


def table_rows(out):
    lines = out.splitlines()
    return lines[0], [line for line in lines[2:] if line and line[0] in " 0123456789" and "matching" not in line]


def test_the_leaderboard_shows_best_first_and_only_what_differs(three, capsys):
    db, (a, b, c) = three
    status, out, err = call(["--runs", db], capsys)
    assert status == 0 and err == ""
    header, rows = table_rows(out)
    assert header.split()[:8] == ["id", "status", "test", "acc", "to", "98", "%", "wall"]
    assert "lr" in header.split() and "batch_size" in header.split()
    for same in ("optimizer", "epochs", "momentum", "hidden", "seed", "dataset"):
        assert same not in header.split()
    assert [int(r.split()[0]) for r in rows] == [b, c, a]
    assert "98.50 %" in rows[0] and "11.0 s" in rows[0] and "64" in rows[0]
    assert rows[2].split()[4] == "-"                                         # never reached 98 %
    assert rows[0].endswith("mnist-live --headless --lr 0.001 --epochs 2 --batch-size 64 --offline")
    assert "3 of 3 matching runs shown" in out


def test_the_reproduce_command_gives_the_same_config():
    cfg = Config(lr=0.003, batch_size=64, optimizer="momentum", nesterov=True, hidden=(64, 32), epochs=3,
                 dropout=0.25, augment=True, weight_decay=1e-4, seed=7, lr_schedule="step", dataset="fashion",
                 data_dir="/data/my folder", train_size=800, test_size=100, save="x.npz", metrics="m.json")
    argv = run_library.reproduce_command(json.loads(cfg.to_json()))
    assert argv[:2] == ["mnist-live", "--headless"]
    again, _ = main.parse_config(argv[1:])
    assert again.hyperparameters() == cfg.hyperparameters()
    for name in run_library.DATA_OPTIONS:
        assert getattr(again, name) == getattr(cfg, name)
    assert run_library.reproduce_command(json.loads(Config().to_json())) == ["mnist-live", "--headless"]
    assert "'/data/my folder'" in run_library.command_text(json.loads(cfg.to_json()))


@pytest.mark.parametrize("argv, expected", [
    (["--where", "lr<0.002"], "bc"),
    (["--where", "lr<=0.001", "--where", "batch_size<=64"], "b"),
    (["--where", "lr<=0.001", "--where", "batch_size>=64"], "bc"),
    (["--where", "batch_size=128", "--sort", "time98"], "ca"),
    (["--sort", "time97"], "cba"),
    (["--sort", "lr"], "cba"),
    (["--sort", "-lr"], "abc"),
    (["--sort", "id"], "cba"),
    (["--sort", "wall"], "abc"),
    (["--last", "2", "--sort", "accuracy"], "bc"),
    (["--where", "optimizer=adam", "--where", "dataset=mnist", "--where", "status=finished"], "bca"),
    (["--where", "optimizer!=adam"], ""),
    (["--where", "sweep=nope"], ""),
    (["--where", "nesterov=false", "--where", "hidden=1024,512", "--where", "offline=true"], "bca"),
    (["--where", "train_size<100"], ""),
])
def test_where_and_sort_select_and_order_runs(three, capsys, argv, expected):
    db, ids = three
    with RunLibrary(db) as lib:
        lib.finish_run(ids[0], "finished", test_accuracy=0.975, wall_s=1.0)
        lib.finish_run(ids[1], "finished", test_accuracy=0.985, wall_s=3.0)
    names = dict(zip(ids, "abc"))
    status, out, err = call(["--runs", db, *argv], capsys)
    assert status == 0, err
    if not expected:
        assert out.startswith("no runs match")
        return
    assert "".join(names[int(r.split()[0])] for r in table_rows(out)[1]) == expected


@pytest.mark.parametrize("argv, fragment", [
    (["--where", "lr"], "expected FIELD OP VALUE"),
    (["--where", "lr<"], "expected FIELD OP VALUE"),
    (["--where", "colour=red"], "unknown field 'colour'"),
    (["--where", "lr<abc"], "lr is a number, not 'abc'"),
    (["--where", "optimizer<adam"], "can only be compared with = or !="),
    (["--where", "augment=maybe"], "true or false"),
    (["--sort", "colour"], "--sort 'colour': unknown key"),
    (["--last", "x"], "--last"),
    (["export", "--csv", "-", "--where", "lr~1"], "expected FIELD OP VALUE"),
])
def test_bad_where_and_sort_are_one_line_usage_errors(three, capsys, argv, fragment):
    db, _ = three
    status, out, err = call(["--runs", db, *argv], capsys) if argv[0] != "export" else \
        call([argv[0], "--runs", db, *argv[1:]], capsys)
    assert status == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ") and fragment in err


def test_the_runs_subcommand_goes_through_main(three, tmp_path):
    db, (a, b, c) = three
    proc = run("runs", "--runs", db, "--where", "lr<0.002")
    assert proc.returncode == 0 and "2 of 2 matching runs shown" in proc.stdout
    assert_one_line_error(run("runs", "--runs", db, "--sort", "nope"), 2, "--sort 'nope'")
    assert_one_line_error(run("runs", "show", "99", "--runs", db), 1, "no run 99")


def test_show_and_compare(three, capsys):
    db, (a, b, c) = three
    status, out, _ = call(["show", str(b), "--runs", db], capsys)
    assert status == 0 and f"run {b}" in out
    assert "time to 98 %    11.0 s" in out and "batch_size      64" in out
    assert "per-class accuracy %" in out and "  2.00  97.50  97.60" not in out
    per_class_rows = [line for line in out.splitlines() if line.startswith("  2.00  ")]
    assert per_class_rows[-1].split()[1:] == [f"{100 * v:.1f}" for v in per_class(0.975)]
    assert call(["--runs", db, "show", str(b)], capsys)[1] == out                  # options first works too
    status, out, _ = call(["compare", str(a), str(b), str(c), "--runs", db], capsys)
    assert status == 0
    marked = {line[3:].split("  ")[0] for line in out.splitlines() if line.startswith("*")}
    assert {"lr", "batch_size", "test accuracy", "time to 98 %"} <= marked
    assert not marked & {"optimizer", "epochs", "status", "hidden"}


def test_export_csv_and_json_round_trip(three, tmp_path, capsys):
    db, ids = three
    with RunLibrary(db) as lib:
        want = {r["id"]: r for r in lib.runs()}
        full = {i: lib.run(i) for i in ids}
    status, out, _ = call(["export", "--csv", str(tmp_path / "r.csv"), "--runs", db], capsys)
    assert status == 0 and "wrote 3 runs" in out
    got = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert len(got) == 3
    for row in got:
        r = want[int(row["id"])]
        assert float(row["test_accuracy"]) == r["test_accuracy"] and float(row["time_to_97"]) == r["time_to_97"]
        assert row["time_to_98"] == ("" if r["time_to_98"] is None else str(r["time_to_98"]))
        assert float(row["lr"]) == r["hyperparameters"]["lr"] and int(row["batch_size"]) == r["config"]["batch_size"]
        assert row["hidden"] == "1024 512" and row["status"] == "finished"
        assert row["command"] == run_library.command_text(r["config"])
    status, out, _ = call(["export", "--json", "-", "--runs", db, "--where", "lr<0.002"], capsys)
    data = json.loads(out)
    assert status == 0 and data["schema"] == 1
    assert {r["id"]: r for r in data["runs"]} == {i: full[i] for i in ids[1:]}
    assert call(["export", "--json", str(tmp_path), "--runs", db], capsys)[0] == 1      # a folder: refused


def test_rm_removes_runs_with_everything_they_own(three, capsys):
    db, (a, b, c) = three
    assert call(["rm", str(a), "99", "--runs", db], capsys)[:1] == (1,)               # all or nothing
    with RunLibrary(db) as lib:
        assert lib.count() == 3
    status, out, _ = call(["rm", str(a), str(c), "--runs", db], capsys)
    assert status == 0 and out.startswith("removed 2 runs")
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT id FROM runs")] == [b]
    assert {r[0] for r in con.execute("SELECT run_id FROM evaluations")} == {b}
    con.close()


def test_running_rows_show_their_latest_evaluation(db, capsys):
    with RunLibrary(db) as lib:
        rid = lib.start_run(Config(), DATASET)
        lib.add_evaluation(rid, 1.0, "full", 0.97, per_class(0.96), 1, 0, 3.0)
        lib.add_evaluation(rid, 1.5, "subset", 0.99, per_class(0.96), 1, 200, 4.0)
    status, out, _ = call(["--runs", db], capsys)
    row = table_rows(out)[1][0]
    assert " running " in row and "97.00 %" in row and row.split()[4] == "-"
    with RunLibrary(db) as lib:
        with pytest.raises(RunLibraryError, match="no run 42"):
            lib.add_evaluation(42, 1.0, "full", 0.9, per_class(0.9), 1, 0, 1.0)
        assert not math.isnan(lib.run(rid)["best_accuracy"])


def test_the_runs_command_does_not_import_numpy(three):
    db, _ = three
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import main; "
            f"main.main(['runs', '--runs', {db!r}]); print('numpy' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "3 of 3 matching runs shown" in proc.stdout and proc.stdout.strip().endswith("False"), proc.stderr
