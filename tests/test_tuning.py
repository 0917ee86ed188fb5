"""Running sweeps: the leaderboard (pure), and real sweeps through `python main.py --headless ...`:
trials in the run library, pruning that stops trials, Ctrl+C / SIGTERM that leave nothing
behind, --resume, a Dask cluster. The sweep syntax and its usage errors are test_sweep_plan.py."""
import io
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import MAIN, ROOT, assert_one_line_error
from mnist_live.runs import sweep_report as report
from mnist_live.runs import sweeps as tuning

TINY = ["--headless", "--offline", "--hidden", "16", "--train-size", "500"]


# ------------------------------------------------------------------ the leaderboard (pure)
def test_leaderboard_ranks_finished_by_validation_and_shows_only_what_varies():
    rows = [{"number": 0, "params": {"lr": 0.1}, "status": "pruned", "val": [0.5], "test": [], "wall_s": 1.0},
            {"number": 1, "params": {"lr": 0.01}, "status": "finished", "val": [0.9], "test": [0.97], "wall_s": 2.0},
            {"number": 2, "params": {"lr": 0.001}, "status": "finished", "val": [0.95], "test": [0.91], "wall_s": 2.0},
            {"number": 3, "params": {"lr": 1.0}, "status": "diverged", "val": [], "test": [], "wall_s": 0.1}]
    lines = report.leaderboard(rows, ["lr"])
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == \
        ["rank", "trial", "lr", "status", "val acc %", "test acc %", "epochs", "time s"]
    assert [line.split("|")[2].strip() for line in lines[2:]] == ["2", "1", "0", "3"]   # by validation, not test
    assert report.best_trial(rows)["number"] == 2
    assert "Ranked by validation accuracy" in report.ranked_by(True, 1)
    no_val = report.leaderboard(rows, ["lr"], has_val=False)                           # --val 0: by test
    assert "val acc %" not in no_val[0] and [line.split("|")[2].strip() for line in no_val[2:]][:2] == ["1", "2"]


def test_repeats_rank_by_the_mean_and_show_the_spread():
    rows = [{"number": 0, "params": {"lr": 0.1}, "status": "finished", "val": [0.90, 0.99], "test": [0.9, 0.99]},
            {"number": 1, "params": {"lr": 0.2}, "status": "finished", "val": [0.96, 0.95], "test": [0.95, 0.96]}]
    lines = report.leaderboard(rows, ["lr"], repeats=2)
    first = [c.strip() for c in lines[2].split("|")[1:-1]]
    assert first[1] == "1" and first[4] == "95.50 +- 0.71"                  # mean 95.5 beats 94.5 despite 99.0
    assert report.accuracy_text([0.9], 3) == "90.00 +- - (1/3)"


def test_live_lines_fit_the_terminal_and_say_how_far_the_sweep_is(monkeypatch):
    """Catches: a line longer than the terminal (it wraps and the display breaks), and an
    overall line without done/N, best so far and ETA."""
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    out = Terminal()
    progress = report.Progress(out, total=6, slots=2, columns=64)
    progress.start(0, 0, 3, "0: lr=0.000123456 batch_size=128 weight_decay=0.0001 dropout=0.25 optimizer=adam")
    progress.update(0, 1.5, "0: lr=0.000123456 batch_size=128 weight_decay=0.0001 dropout=0.25", "val subset 97.1 %")
    progress.end(0, "trial 0 finished: val acc 97.10 %, test acc 96.90 % in 12.3 s and a long tail of words",
                 "finished", 0.971, 0)
    progress.close()
    screen = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.getvalue())
    lines = [seg for line in screen.split("\n") for seg in line.split("\r") if seg.strip()]
    assert lines and max(len(line) for line in lines) <= 64
    assert any("sweep 1/6" in line and "best val 97.10 % (trial 0)" in line and "ETA" in line for line in lines)


# ------------------------------------------------------------------ real sweeps
def run(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or os.environ)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private run library (and sweeps folder) for this test: (env for main.py, library path)."""
    from mnist_live.runs import library as run_library
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "skdata"))
    monkeypatch.delenv("MNIST_LIVE_RUNS", raising=False)
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYTHONPATH": str(ROOT)}
    return env, run_library.default_path()


def trials(library, sweep):
    from mnist_live.runs import library as run_library
    lib = run_library.RunLibrary(library, create=False)
    try:
        return sorted(lib.runs(sweep=sweep), key=lambda r: (r["trial"], r["id"]))
    finally:
        lib.close()


def sweeps_folder(library):
    return tuning.sweep_folder(library)


def evaluations(library, run_id):
    from mnist_live.runs import library as run_library
    with run_library.RunLibrary(library, create=False) as lib:
        return lib.run(run_id)["evaluations"]


def load_study(library, name):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    path = os.path.join(sweeps_folder(library), f"{name}.journal")
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(path)))


@pytest.mark.slow
def test_grid_sweep_end_to_end_records_every_trial_and_keeps_the_best_model(home, tmp_path):
    """Catches: choosing on the test set, a test set scored more than once, a grid's study
    without parameters or run ids, a trial's command with the program twice, --save
    replacing a symlink, temp or lock files left behind."""
    env, library = home
    kept = tmp_path / "models" / "best.npz"
    kept.parent.mkdir()
    kept.write_bytes(b"old")
    best = tmp_path / "best.npz"
    best.symlink_to(kept)
    proc = run(*TINY, "--epochs", "2", "--lr", "0.001", "0.01", "--batch-size", "32", "64",
               "--sweep-name", "g1", "--jobs", "2", "--save", str(best), env=env)
    assert proc.returncode == 0, proc.stderr
    rows = trials(library, "g1")
    assert [r["trial"] for r in rows] == [0, 1, 2, 3]
    assert {r["status"] for r in rows} == {"finished"}
    assert sorted((r["hyperparameters"]["lr"], r["hyperparameters"]["batch_size"]) for r in rows) == \
        [(0.001, 32), (0.001, 64), (0.01, 32), (0.01, 64)]
    evals = {r["id"]: evaluations(library, r["id"]) for r in rows}
    assert all([e["kind"] for e in ev].count("val") == 2 for ev in evals.values())      # each epoch's end
    assert all([e["kind"] for e in ev].count("full") == 1 for ev in evals.values())     # the test set, once
    val = {r["id"]: [e["accuracy"] for e in evals[r["id"]] if e["kind"] == "val"][-1] for r in rows}
    top = max(rows, key=lambda r: val[r["id"]])
    assert f"Best: trial {top['trial']}, validation accuracy {100 * val[top['id']]:.2f} % " \
           f"(test accuracy {100 * top['test_accuracy']:.2f} %, scored once)" in proc.stdout
    assert all(r["command"][0] == "--headless" and r["config"]["val"] == 1000 for r in rows)
    board = proc.stdout[proc.stdout.index("| rank"):].splitlines()
    assert "| lr " in board[0] and "batch_size" in board[0] and "val acc %" in board[0] and "hidden" not in board[0]
    assert best.is_symlink() and os.readlink(best) == str(kept)                  # the link stays a link
    from mnist_live.training.model_file import read_model
    _, meta = read_model(kept)
    assert meta["config"]["lr"] == top["hyperparameters"]["lr"]
    models = {r["trial"]: r["model_file"] for r in rows}
    assert models == {t: (str(best) if t == top["trial"] else None) for t in models}   # the library knows where
    assert sorted(os.listdir(sweeps_folder(library))) == ["g1.journal"]          # no temp or lock files
    study = load_study(library, "g1")                                            # an Optuna-native study
    import optuna
    assert set(optuna.importance.get_param_importances(study)) == {"lr", "batch_size"}
    assert study.best_params == {"lr": top["hyperparameters"]["lr"], "batch_size": top["hyperparameters"]["batch_size"]}
    by_run = {rid: t for t in study.trials for rid in t.user_attrs["run_ids"]}
    assert set(by_run) == {r["id"] for r in rows}
    assert all(by_run[r["id"]].params["lr"] == r["hyperparameters"]["lr"] for r in rows)
    again = run(*TINY, "--lr", "0.001", "0.01", "--sweep-name", "g1", env=env)
    assert_one_line_error(again, 2, "exists already", "--resume g1")


@pytest.mark.slow
def test_pruning_stops_trials_that_are_behind(home):
    """Five good learning rates come first (--jobs 2, grid order), then two hopeless ones: with
    two slots a trial starts when all but one before it have finished, so each hopeless one
    starts with at least the pruner's four finished trials to compare with, and the median
    pruner, which sees the finished trials' checkpoints, stops it early."""
    env, library = home
    proc = run(*TINY, "--epochs", "4", "--batch-size", "100", "--pruner", "median", "--jobs", "2",
               "--lr", "0.003", "0.004", "0.005", "0.006", "0.007", "1e-7", "2e-7", "--sweep-name", "p1", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = trials(library, "p1")
    status = {r["trial"]: r["status"] for r in rows}
    assert status == {**{t: "finished" for t in range(5)}, 5: "pruned", 6: "pruned"}
    from mnist_live.runs import library as run_library
    lib = run_library.RunLibrary(library, create=False)
    try:
        trained = {r["trial"]: max(e["progress"] for e in lib.run(r["id"])["evaluations"]) for r in rows}
    finally:
        lib.close()
    assert all(trained[t] == 4 for t in range(5))
    assert trained[5] < 2 and trained[6] < 2                     # stopped in their first half
    assert "pruned at epoch" in proc.stdout


def _descendants(pid):
    """Pids of every process below `pid` (Linux /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start(args, env):
    return subprocess.Popen([sys.executable, MAIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)


def _wait_for_line(proc, text, timeout=60):
    deadline, lines = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not seen in {''.join(lines)}")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupt_stops_every_trial_and_leaves_nothing_behind(home, how):
    env, library = home
    proc = _start([*TINY, "--epochs", "5000", "--lr", "0.001", "0.003", "--jobs", "2", "--sweep-name", "i1"], env)
    try:
        _wait_for_line(proc, "started")
        _wait_for_line(proc, "started")
        time.sleep(1.0)
        below = _descendants(proc.pid)
        assert len(below) >= 3                                  # two workers and the Manager at least
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)                  # the terminal sends it to the whole group
        else:
            proc.send_signal(signal.SIGTERM)                    # `kill PID`: the parent only
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "--resume i1" in out
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in below) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in below if _alive(p)]
    assert [r["status"] for r in trials(library, "i1")] == ["interrupted", "interrupted"]
    assert sorted(os.listdir(sweeps_folder(library))) == ["i1.journal"]
    if os.path.isdir("/dev/shm"):
        assert not [n for n in os.listdir("/dev/shm") if f"-{proc.pid}-" in n]   # loky's semaphores


@pytest.mark.slow
def test_resume_runs_only_the_unfinished_combinations(home):
    env, library = home
    args = ["--headless", "--offline", "--hidden", "256", "--epochs", "3", "--lr", "0.001", "0.002",
            "--jobs", "1", "--sweep-name", "r1"]
    proc = _start(args, env)
    try:
        _wait_for_line(proc, "trial 1 started")
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert [(r["trial"], r["status"]) for r in trials(library, "r1")] == [(0, "finished"), (1, "interrupted")]
    again = run("--headless", "--resume", "r1", env=env)
    assert again.returncode == 0, again.stderr
    assert "trial 1 started" in again.stdout and "trial 0 started" not in again.stdout
    assert [(r["trial"], r["status"]) for r in trials(library, "r1")] == \
        [(0, "finished"), (1, "finished"), (1, "interrupted")] or \
        [(r["trial"], r["status"]) for r in trials(library, "r1")] == [(0, "finished"), (1, "interrupted"),
                                                                       (1, "finished")]
    board = again.stdout[again.stdout.index("| rank"):].split("\n\n")[0].splitlines()
    assert len(board) == 4                                        # both trials, the earlier one too
    assert_one_line_error(run("--headless", "--resume", "nope", env=env), 2, "no sweep 'nope'")


@pytest.mark.slow
def test_search_is_seeded_and_draws_from_the_ranges(home):
    env, library = home
    drawn = []
    for name in ("s1", "s2"):
        proc = run(*TINY, "--epochs", "1", "--search", "4", "--pruner", "none", "--lr", "1e-4:1e-1:log",
                   "--optimizer", "adam", "momentum", "--seed", "3", "--sweep-name", name, env=env)
        assert proc.returncode == 0, proc.stderr
        rows = trials(library, name)
        assert len(rows) == 4
        drawn.append([(r["hyperparameters"]["lr"], r["hyperparameters"]["optimizer"]) for r in rows])
    assert drawn[0] == drawn[1]
    assert all(1e-4 <= lr <= 1e-1 and opt in ("adam", "momentum") for lr, opt in drawn[0])
    assert len({lr for lr, _ in drawn[0]}) == 4


@pytest.mark.slow
def test_trials_run_on_a_dask_cluster(home, monkeypatch):
    pytest.importorskip("distributed", reason="Dask's distributed is the optional extra: pip install -e .[cluster]")
    from distributed import LocalCluster
    env, library = home
    monkeypatch.setenv("PYTHONPATH", str(ROOT))              # the workers import the project (installed, on a cluster)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        proc = run(*TINY, "--epochs", "2", "--lr", "0.001", "0.01", "--batch-size", "32", "64",
                   "--sweep-name", "d1", "--scheduler", cluster.scheduler_address, env={**env, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "Dask cluster" in proc.stdout
    rows = trials(library, "d1")
    assert [r["trial"] for r in rows] == [0, 1, 2, 3] and {r["status"] for r in rows} == {"finished"}
    assert {r["pid"] for r in rows} == {rows[0]["pid"]}          # recorded by the client, not the workers
