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
from mnist_live.runs.library import RunLibrary

TINY = ["--headless", "--offline", "--hidden", "16", "--train-size", "500"]


# ------------------------------------------------------------------ the leaderboard (pure)
def test_leaderboard_ranks_finished_by_validation_and_shows_only_what_varies():
    rows = [{"number": 0, "params": {"lr": 0.1}, "status": "pruned", "val": [0.5], "test": [], "wall_s": 1.0},
            {"number": 1, "params": {"lr": 0.01}, "status": "finished", "val": [0.9], "test": [0.97], "wall_s": 2.0},
            {"number": 2, "params": {"lr": 0.001}, "status": "finished", "val": [0.95], "test": [0.91], "wall_s": 2.0},
            {"number": 3, "params": {"lr": 1.0}, "status": "diverged", "val": [], "test": [], "wall_s": 0.1}]
    lines = report.trial_table(rows, ["lr"])
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == \
        ["rank", "trial", "lr", "status", "val acc %", "test acc %", "epochs", "time s"]
    assert [line.split("|")[2].strip() for line in lines[2:]] == ["2", "1", "0", "3"]   # by validation, not test
    assert report.best_trial(rows)["number"] == 2
    assert "Ranked by validation accuracy" in report.ranked_by(True, 1)
    no_val = report.trial_table(rows, ["lr"], has_val=False)                           # --val 0: by test
    assert "val acc %" not in no_val[0] and [line.split("|")[2].strip() for line in no_val[2:]][:2] == ["1", "2"]


def test_repeats_rank_by_the_mean_and_show_the_spread():
    rows = [{"number": 0, "params": {"lr": 0.1}, "status": "finished", "val": [0.90, 0.99], "test": [0.9, 0.99]},
            {"number": 1, "params": {"lr": 0.2}, "status": "finished", "val": [0.96, 0.95], "test": [0.95, 0.96]}]
    lines = report.trial_table(rows, ["lr"], repeats=2)
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


def test_a_checkpoint_waits_for_the_trials_before_it_to_get_there():
    """The pruner judges trial k at a checkpoint only once every earlier trial has got there
    (or ended), so its answer does not depend on which trials ran at the same time."""
    from mnist_live.runs.sweeps import Job, Sweep, Trial
    from mnist_live.training.config import Config
    answers = {}

    class Answers:
        def __init__(self, key):
            self.key = key

        def put(self, answer):
            answers.setdefault(self.key, []).append(answer)

    class StudyTrial:
        def __init__(self, number):
            self.number = number

    sweep = Sweep.__new__(Sweep)
    sweep.stopping, sweep.trials, judged = False, [], []
    for n in range(3):
        trial = Trial(n, StudyTrial(n), {}, Config())
        trial.jobs.append(Job(n, trial, 0, Config(), answers=Answers(n)))
        sweep.trials.append(trial)
    sweep._prune = lambda trial, step: judged.append((trial.number, step)) or trial.number == 2
    first, second, third = (t.lead for t in sweep.trials)
    first.values, second.values, third.values = {125: 0.5}, {125: 0.4, 250: 0.6}, {125: 0.1, 250: 0.1}
    sweep.pending = [(second, 250), (third, 250)]
    sweep.decide()
    assert judged == [] and not answers                        # the first trial has not reached 250 yet
    first.values[250] = 0.7
    sweep.decide()
    assert judged == [(1, 250), (2, 250)] and answers == {1: ["go"], 2: ["prune"]} and sweep.trials[2].pruned
    first.status, second.values[375] = "diverged", 0.7                        # an ended trial holds nobody up
    sweep.pending = [(second, 375)]
    sweep.decide()
    assert answers[1] == ["go", "go"]


# ------------------------------------------------------------------ real sweeps
def run(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or os.environ)


@pytest.fixture
def home(tmp_path, monkeypatch):
    return private_home(tmp_path, monkeypatch)


def private_home(tmp_path, monkeypatch):
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
    steps = {tuple(t.intermediate_values) for t in study.trials}
    assert steps == {tuple(range(125, 1001, 125))}      # checkpoints in images trained, whatever the batch size
    import optuna
    assert set(optuna.importance.get_param_importances(study)) == {"lr", "batch_size"}
    assert study.best_params == {"lr": top["hyperparameters"]["lr"], "batch_size": top["hyperparameters"]["batch_size"]}
    by_run = {rid: t for t in study.trials for rid in t.user_attrs["run_ids"]}
    assert set(by_run) == {r["id"] for r in rows}
    assert all(by_run[r["id"]].params["lr"] == r["hyperparameters"]["lr"] for r in rows)
    again = run(*TINY, "--lr", "0.001", "0.01", "--sweep-name", "g1", env=env)
    assert_one_line_error(again, 2, "exists already", "--resume g1")


@pytest.mark.slow
def test_pruning_stops_trials_that_are_behind_after_the_warm_up(home):
    """Five good learning rates come first (grid order), then two hopeless ones: the median
    pruner judges each trial at a checkpoint against the trials before it at that same
    checkpoint, so the hopeless ones are stopped at the first checkpoint past the warm-up
    (--prune-after, one epoch by default), never before it."""
    env, library = home
    proc = run(*TINY, "--epochs", "4", "--batch-size", "100", "--pruner", "median", "--jobs", "2",
               "--lr", "0.003", "0.004", "0.005", "0.006", "0.007", "1e-7", "2e-7", "--sweep-name", "p1", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = trials(library, "p1")
    status = {r["trial"]: r["status"] for r in rows}
    assert status == {**{t: "finished" for t in range(5)}, 5: "pruned", 6: "pruned"}
    trained = {r["trial"]: max(e["progress"] for e in evaluations(library, r["id"])) for r in rows}
    assert all(trained[t] == 4 for t in range(5))
    assert trained[5] == 1.0 and trained[6] == 1.0                # the first checkpoint after the warm-up
    kinds = {r["trial"]: [e["kind"] for e in evaluations(library, r["id"])] for r in rows}
    assert "full" not in kinds[5] + kinds[6]                      # a pruned trial is never tested
    assert "pruned at epoch 1.00" in proc.stdout
    study = load_study(library, "p1")
    steps = {t.number: sorted(t.intermediate_values) for t in study.trials}
    assert steps[0] == [125 * k for k in range(1, 17)] and steps[5] == [125, 250, 375, 500]   # images trained


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
    assert sorted(os.listdir(sweeps_folder(library))) == ["i1.journal", "i1.resume"]     # no temp or lock files
    assert sorted(os.listdir(os.path.join(sweeps_folder(library), "i1.resume"))) == \
        ["combo-0-seed-0.npz", "combo-1-seed-0.npz"]                                     # where each stopped
    if os.path.isdir("/dev/shm"):
        assert not [n for n in os.listdir("/dev/shm") if f"-{proc.pid}-" in n]   # loky's semaphores


@pytest.mark.slow
def test_resume_continues_an_interrupted_trial_where_it_stopped(home):
    """Catches: an interrupted trial thrown away and trained from the start again on --resume,
    a finished one run again, and an earlier trial's time shown differently once resumed."""
    env, library = home
    args = ["--headless", "--offline", "--hidden", "128", "--epochs", "30", "--lr", "0.001", "0.002",
            "--jobs", "1", "--sweep-name", "r1"]
    proc = _start(args, env)
    try:
        seen = _wait_for_line(proc, "trial 1 started")
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        first = "".join(seen) + rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert [(r["trial"], r["status"]) for r in trials(library, "r1")] == [(0, "finished"), (1, "interrupted")]
    stopped = evaluations(library, trials(library, "r1")[1]["id"])
    assert 0 < stopped[-1]["progress"] < 30
    again = run("--headless", "--resume", "r1", env=env)
    assert again.returncode == 0, again.stderr
    assert f"trial 1 continued from epoch {stopped[-1]['progress']:.2f}: lr=0.002" in again.stdout
    assert "trial 0 started" not in again.stdout
    rows = trials(library, "r1")
    assert sorted((r["trial"], r["status"]) for r in rows) == [(0, "finished"), (1, "finished"), (1, "interrupted")]
    resumed = next(r for r in rows if r["trial"] == 1 and r["status"] == "finished")
    evals = evaluations(library, resumed["id"])
    def measured(ev):
        return [(e["progress"], e["kind"], e["accuracy"]) for e in ev]
    assert measured(evals[:len(stopped)]) == measured(stopped)       # the same run, continued
    with RunLibrary(library, create=False) as lib:
        assert lib.run(resumed["id"])["losses"][0][0] < 0.1            # its loss curve from the start too
    assert evals[-1]["progress"] == 30 and [e["kind"] for e in evals].count("full") == 1

    def board_row(text, trial):
        board = text[text.index("| rank"):].split("\n\n")[0].splitlines()[2:]
        return next([c.strip() for c in line.split("|")[2:-1]] for line in board if line.split("|")[2].strip() == trial)
    assert board_row(again.stdout, "0") == board_row(first, "0")      # the earlier trial as it was, time too
    took = re.search(r"trial 0 finished: .* in ([\d.]+) s", first).group(1)
    assert board_row(first, "0")[-1] == took                         # the time the trial measured, not the study's
    assert not os.path.exists(os.path.join(sweeps_folder(library), "r1.resume"))     # used up
    assert_one_line_error(run("--headless", "--resume", "nope", env=env), 2, "no sweep 'nope'")


@pytest.mark.slow
def test_a_seeded_search_draws_the_same_trials_whatever_the_jobs(home):
    """Catches: a sampler that sees whichever trials happen to have ended (TPE draws then
    depend on timing), and pruning decisions that depend on which trials ran at once."""
    env, library = home
    seen = []
    for jobs in ("1", "2"):
        proc = run(*TINY, "--epochs", "2", "--search", "14", "--lr", "1e-5:1:log", "--optimizer", "adam", "momentum",
                   "--seed", "3", "--jobs", jobs, "--sweep-name", f"s{jobs}", env=env)
        assert proc.returncode == 0, proc.stderr
        study = load_study(library, f"s{jobs}")
        seen.append([(t.number, t.params, t.state.name) for t in study.trials])
    assert seen[0] == seen[1]
    assert len(seen[0]) == 14 and {"COMPLETE", "PRUNED"} <= {state for _, _, state in seen[0]}
    assert all(1e-5 <= p["lr"] <= 1 and p["optimizer"] in ("adam", "momentum") for _, p, _ in seen[0])
    assert len({p["lr"] for _, p, _ in seen[0]}) == 14


@pytest.mark.slow
def test_repeats_and_architectures_are_swept(home):
    """--hidden as one layer's width, --augment on and off, two seeds each: every
    configuration trained with --seed and --seed + 1, its mean validation accuracy is what
    the study is told, the leaderboard shows mean +- std."""
    env, library = home
    proc = run("--headless", "--offline", "--train-size", "500", "--epochs", "1", "--hidden", "8,24",
               "--augment", "no", "yes", "--repeats", "2", "--seed", "5", "--jobs", "2", "--sweep-name", "rep", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = trials(library, "rep")
    assert len(rows) == 8 and {r["status"] for r in rows} == {"finished"}
    configs = {(tuple(r["hyperparameters"]["hidden"]), r["hyperparameters"]["augment"]) for r in rows}
    assert configs == {((8,), False), ((8,), True), ((24,), False), ((24,), True)}
    assert sorted(r["hyperparameters"]["seed"] for r in rows) == [5] * 4 + [6] * 4
    study = load_study(library, "rep")
    assert {t.params["width"] for t in study.trials} == {8, 24}
    for t in study.trials:
        mine = [r for r in rows if r["id"] in t.user_attrs["run_ids"]]
        assert len(mine) == 2 and {r["hyperparameters"]["seed"] for r in mine} == {5, 6}
        val = [[e["accuracy"] for e in evaluations(library, r["id"]) if e["kind"] == "val"][-1] for r in mine]
        assert t.value == pytest.approx(sum(val) / 2)
    assert "Ranked by mean validation accuracy over 2 seeds" in proc.stdout
    board = proc.stdout[proc.stdout.index("| rank"):].split("\n\n")[0].splitlines()
    assert len(board) == 6 and all(" +- " in line for line in board[2:])
    assert "--repeats" not in proc.stdout.split("Best:")[1].splitlines()[1]       # the command trains one run


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
