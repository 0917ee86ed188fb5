"""The window's training process records its run in the run library: a real window session
(tests/window_driver.py) trained to the end, closed mid-run, blown up, with a library it
cannot use, and the sessions that are no run (--no-runs, --no-train)."""
import os
import sys

import pytest

from mnist_live import main
from mnist_live.runs.library import RunLibrary
from mnist_live.training.config import Config
from window_driver import open_app, run_until

TINY = {"hidden": (16,), "train_size": 500, "epochs": 1, "batch_size": 4, "seed": 5}   # 125 batches: one subset eval


def window(sample, **config):
    """A window training on the sample cut as main.py cuts it (--train-size)."""
    return open_app(main.cut_data(sample, Config(**config)), worker=True, **config)


def the_run(db):
    with RunLibrary(db) as lib:
        (row,) = lib.runs()
        return lib.run(row["id"])


def test_a_window_run_is_recorded_to_the_end(sample, tmp_path):
    db, model = str(tmp_path / "runs.sqlite3"), str(tmp_path / "m.npz")
    app = window(sample, **TINY, runs=db, save=model)
    try:
        run_until(app, lambda: app.tele.finished, timeout=60)
        run_until(app, lambda: app.tele.evals and app.tele.evals[-1].progress == 1.0)   # the epoch's history
    finally:
        app.close()
    r = the_run(db)
    assert r["status"] == "finished" and r["error"] is None and r["ended"] >= r["started"]
    assert (r["dataset"], r["data_source"], r["n_train"], r["n_test"]) == \
        ("mnist", sample.source, 500, len(sample.y_test))
    cfg = r["config"]
    assert (cfg["hidden"], cfg["train_size"], cfg["epochs"], cfg["batch_size"], cfg["runs"]) == ([16], 500, 1, 4, db)
    assert r["command"] == sys.argv[1:]                 # TrainingProcess's default: this process's arguments
    evals = [(e["progress"], e["kind"], e["accuracy"], e["epoch"], e["batch"]) for e in r["evaluations"]]
    assert evals == [(e.progress, e.kind, e.accuracy, e.epoch, e.batch) for e in app.tele.evals]
    assert [e[1] for e in evals] == ["full"] + ["subset"] * 7 + ["full"]       # early subsets, then every 100
    assert [e[4] for e in evals[1:-1]] == [1, 2, 5, 10, 20, 50, 100]
    assert [e["per_class"] for e in r["evaluations"]] == [list(e.per_class) for e in app.tele.evals]
    elapsed = [e["elapsed_s"] for e in r["evaluations"]]
    assert elapsed == sorted(elapsed) and 0 <= elapsed[0] < elapsed[-1] <= r["wall_s"]
    assert r["losses"] == [list(p) for p in app.tele.loss_curve] and len(r["losses"]) == 125
    assert r["test_accuracy"] == evals[-1][2] == app.tele.last_full.accuracy
    assert r["per_class"] == r["evaluations"][-1]["per_class"]
    assert r["samples_per_s"] > 0 and r["model_file"] == model and os.path.exists(model)


def test_closing_the_window_mid_run_records_interrupted(sample, tmp_path):
    db, model = str(tmp_path / "runs.sqlite3"), str(tmp_path / "m.npz")
    app = window(sample, **{**TINY, "epochs": 50}, runs=db, save=model)
    try:
        run_until(app, lambda: app.tele.epoch >= 1 or app.tele.batch > 10)   # an epoch of 125 batches may pass at once
    finally:
        app.close()
    r = the_run(db)
    assert r["status"] == "interrupted" and r["error"] is None and r["ended"]
    assert r["n_evals"] >= 1 and r["evaluations"][0]["kind"] == "full" and r["losses"]
    assert 0 < r["test_accuracy"] <= 1 and len(r["per_class"]) == 10
    assert r["model_file"] == model and os.path.exists(model)          # saved on quit: the final weights
    assert r["samples_per_s"] > 0 and r["wall_s"] > 0


def test_a_diverged_window_run_is_recorded_as_diverged(sample, tmp_path):
    db = str(tmp_path / "runs.sqlite3")
    app = window(sample, **{**TINY, "epochs": 50}, runs=db, optimizer="sgd", lr=1e6, lr_schedule="constant")
    try:
        run_until(app, lambda: bool(app.tele.diverged))
    finally:
        app.close()
    r = the_run(db)
    assert r["status"] == "diverged" and "learning rate" in r["error"] and r["model_file"] is None


def test_a_library_it_cannot_use_is_a_notice_and_training_goes_on(sample, tmp_path, capfd):
    app = window(sample, **{**TINY, "epochs": 50}, runs=str(tmp_path))   # a folder, not a database file
    line = f"runs not recorded: runs library {tmp_path}: is a folder, not a database file"
    try:
        run_until(app, lambda: app.state.toast == line)                   # shown in the window ...
        position = (app.tele.epoch, app.tele.batch)
        run_until(app, lambda: (app.tele.epoch, app.tele.batch) > (position[0], position[1] + 20))   # training on
    finally:
        app.close()
    assert capfd.readouterr().err.count(line) == 1                      # ... and once on stderr
    assert not app.tele.failed


@pytest.mark.parametrize("option", ["no_runs", "no_train"])
def test_sessions_that_are_no_run_record_nothing(sample, tmp_path, option):
    db = str(tmp_path / "runs.sqlite3")
    app = window(sample, **TINY, runs=db, **{option: True})
    try:
        run_until(app, lambda: app.tele.finished or (option == "no_train" and app.weights_seen), timeout=60)
    finally:
        app.close()
    assert not os.path.exists(db)
