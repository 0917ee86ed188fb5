"""The `mnist-live runs` command: the leaderboard, --where and --sort, show, compare,
export, rm, the reproduce command, and its start-up without NumPy."""
import csv
import json
import math
import os
import sqlite3
import subprocess
import sys

import pytest

from conftest import assert_one_line_error, run
from fixtures_runs import DATASET, add_run, call, per_class
from mnist_live import main
from mnist_live.runs import command as runs_command
from mnist_live.runs import library as run_library
from mnist_live.runs.library import RunLibrary, RunLibraryError
from mnist_live.training.config import Config


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runs.sqlite3")


def test_an_absent_or_empty_library_is_a_friendly_line(db, capsys):
    assert call(["--runs", db], capsys)[:2] == (0, f"no runs recorded yet in {db}\n")
    assert not os.path.exists(db)                          # reading does not create it
    RunLibrary(db).close()
    assert call(["--runs", db], capsys)[:2] == (0, f"no runs recorded yet in {db}\n")



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
    argv = runs_command.reproduce_command(json.loads(cfg.to_json()))
    assert argv[:2] == ["mnist-live", "--headless"]
    again, _ = main.parse_config(argv[1:])
    assert again.hyperparameters() == cfg.hyperparameters()
    for name in runs_command.DATA_OPTIONS:
        assert getattr(again, name) == getattr(cfg, name)
    assert runs_command.reproduce_command(json.loads(Config().to_json())) == ["mnist-live", "--headless"]
    assert "'/data/my folder'" in runs_command.command_text(json.loads(cfg.to_json()))


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
        assert row["command"] == runs_command.command_text(r["config"])
    status, out, _ = call(["export", "--json", "-", "--runs", db, "--where", "lr<0.002"], capsys)
    data = json.loads(out)
    assert status == 0 and data["schema"] == run_library.SCHEMA_VERSION == 2
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
    code = ("import sys; from mnist_live import main; "
            f"main.main(['runs', '--runs', {db!r}]); print('numpy' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "3 of 3 matching runs shown" in proc.stdout and proc.stdout.strip().endswith("False"), proc.stderr


# ------------------------------------------------------------------ faults: damaged rows, absurd numbers, running runs
DAMAGE = [("runs", "config", "'{not json'", "config is not valid JSON"),
          ("runs", "hyper", "'[1, 2'", "hyper is not valid JSON"),
          ("runs", "machine", "'\"a string\"'", "machine is not valid JSON"),
          ("runs", "command", "'{'", "command is not valid JSON"),
          ("runs", "per_class", "'nan nan'", "per_class is not valid JSON"),
          ("runs", "test_accuracy", "'high'", "test_accuracy is not a number"),
          ("evaluations", "per_class", "'[0.9,'", "evaluation per_class is not valid JSON")]


@pytest.mark.parametrize("table, column, value, why", DAMAGE)
def test_a_damaged_row_is_skipped_with_one_line_never_fatal(three, capsys, table, column, value, why):
    from mnist_live.runs.comparison import Comparison
    db, (a, b, c) = three
    con = sqlite3.connect(db)
    with con:
        con.execute(f"UPDATE {table} SET {column}={value} WHERE {'id' if table == 'runs' else 'run_id'}=?", (b,))
    con.close()
    line = f"run {b} is damaged ({why}); `mnist-live runs rm {b}` removes it"
    summary_damaged = table == "runs"
    status, out, err = call(["--runs", db], capsys)
    assert status == 0 and "Traceback" not in err
    assert len(table_rows(out)[1]) == (2 if summary_damaged else 3)
    assert err == (f"warning: skipped {line}\n" if summary_damaged else "")
    for argv in (["show", str(b)], ["compare", str(a), str(b)]):
        assert call([*argv, "--runs", db], capsys) == (1, "", f"error: runs library {db}: {line}\n")
    status, out, err = call(["export", "--json", "-", "--runs", db], capsys)
    assert status == 0 and sorted(r["id"] for r in json.loads(out)["runs"]) == [a, c]
    assert err == f"warning: skipped {line}\n"
    status, out, err = call(["export", "--csv", "-", "--runs", db], capsys)
    assert status == 0 and len(out.splitlines()) == (3 if summary_damaged else 4)
    board = Comparison(db, Config(epochs=2))                            # the window's leaderboard (B)
    assert board.read_board() == "" and len(board.board) == (2 if summary_damaged else 3)
    assert call(["rm", str(b), "--runs", db], capsys)[0] == 0          # what is damaged can be removed
    assert call(["--runs", db], capsys)[2] == ""


@pytest.mark.parametrize("argv, status, fragment", [
    (["--last", "1" * 23], 0, "3 of 3 matching runs shown"),
    (["--top", "9" * 30], 0, "3 of 3 matching runs shown"),
    (["--where", "id<" + "9" * 30], 0, "3 of 3 matching runs shown"),
    (["show", "9" * 23], 1, f"no run {'9' * 23}"),
    (["rm", "9" * 23], 1, f"no run {'9' * 23}"),
    (["compare", "1", "-" + "9" * 23], 1, f"no run -{'9' * 23}"),
    (["export", "--json", "-", "--last", "9" * 23], 0, f'"schema": {run_library.SCHEMA_VERSION}'),
    (["--where", "hidden=" + "7" * 5000], 2, "hidden is layer sizes such as 1024,512"),
    (["--where", "hidden=64," + "7" * 19], 2, "hidden is layer sizes such as 1024,512"),
])
def test_absurd_numbers_are_one_line_or_mean_all(three, capsys, argv, status, fragment):
    db = three[0]
    got, out, err = call([*argv, "--runs", db], capsys)
    assert got == status and "Traceback" not in out + err
    if status:
        assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err and len(err) < 400
    else:
        assert fragment in out


def test_rm_of_a_running_run_needs_force(db, capsys):
    with RunLibrary(db) as lib:
        done = add_run(lib, 0.98)
        live = lib.start_run(Config(), DATASET)                 # this process: running
    status, _, err = call(["rm", str(done), str(live), "--runs", db], capsys)
    assert status == 1 and err == (f"error: run {live} is still running (pid {os.getpid()} on this host): stop it "
                                   f"first, or add --force\n")
    with RunLibrary(db) as lib:
        assert lib.count() == 2                                 # all or nothing
    assert call(["rm", str(done), str(live), "--force", "--runs", db], capsys)[:2] == (
        0, f"removed 2 runs from {db}\n")


@pytest.mark.parametrize("argv", [["--runs", ""], ["show", "1", "--runs", " "], ["--data-home", ""],
                                  ["--runs=", "export", "--csv", "-"]])
def test_an_empty_library_name_is_a_usage_error(three, capsys, argv, monkeypatch):
    monkeypatch.setenv("MNIST_LIVE_RUNS", three[0])            # the default library exists and has runs
    status, out, err = call(argv, capsys)
    assert status == 2 and out == "" and err.count("\n") == 1 and "an empty name" in err
