"""What a sweep says about its hyperparameters (`runs sweeps`, `runs analyze`, the window's
parallel coordinates and hover text) and like with like: runs on other data are never
ranked or overlaid as alike."""
import os
import sys

import pytest

from fixtures_runs import call
from mnist_live import data_loader
from mnist_live.runs import analysis
from mnist_live.runs import study as studies
from mnist_live.runs.comparison import Comparison, RunCurves, curves_of, difference_label
from mnist_live.runs.library import RunLibrary
from mnist_live.runs.sweep_plan import Range, SweepPlan, Values
from mnist_live.runs.sweeps import sweep_folder
from mnist_live.training.config import Config

SAMPLE = {"name": "mnist", "source": "bundled sample (assets/mnist_sample.npz)", "train": 5000, "test": 1000}
FULL = {"name": "mnist", "source": "OpenML mnist_784", "train": 60000, "test": 10000}


# ------------------------------------------------------------------ a sweep's study, made here
def make_sweep(folder, name, kind="search", finished=6):
    """A study as a sweep leaves it: lr and batch size varied, validation accuracy rising with
    lr, user attributes as sweep_end.tell writes them; one pruned trial."""
    import optuna
    specs = {"lr": Range(1e-4, 1e-1, True, False), "batch_size": Values((32, 64))}
    plan = SweepPlan(Config(headless=True, offline=True, val=1000), specs, search=10 if kind == "search" else None)
    os.makedirs(folder, exist_ok=True)
    study, _ = studies.open_study(studies.journal_path(folder, name), name, plan)
    dists = studies.distributions(specs)
    for i in range(finished + 1):
        params = {"lr": 1e-4 * 2 ** i, "batch_size": 32 if i % 2 else 64}
        study.enqueue_trial(params)
        trial = study.ask(dists)
        pruned = i == finished
        val = 0.5 + 0.05 * i + (0.01 if params["batch_size"] == 32 else 0)
        attrs = {"status": "pruned" if pruned else "finished", "val": [val], "test": [] if pruned else [val - 0.01],
                 "wall_s": 10.0 + i, "progress": 1.0 if pruned else 3.0, "run_ids": [i + 1]}
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        trial.report(val, 1000)
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, val)
    return study


@pytest.fixture
def library(tmp_path):
    path = str(tmp_path / "runs.sqlite3")
    RunLibrary(path).close()
    return path


def test_runs_sweeps_lists_each_sweep_with_its_trials_and_best(library, capsys):
    make_sweep(sweep_folder(library), "s1")
    status, out, err = call(["--runs", library, "sweeps"], capsys)
    assert status == 0, err
    header, _, row = out.splitlines()[:3]
    assert header.split()[:7] == ["sweep", "kind", "trials", "finished", "pruned", "failed", "left"]
    assert row.split()[:7] == ["s1", "search", "10", "6", "1", "0", "3"]
    assert "76.00 % / 75.00 % (trial 5)" in row and row.endswith("interrupted (--resume continues it)")
    with open(os.path.join(sweep_folder(library), "bad.journal"), "wb") as f:
        f.write(b"\x00" * 10)
    status, out, err = call(["--runs", library, "sweeps"], capsys)
    assert status == 0 and "bad" in out and "damaged" in out                # one bad journal hides nothing


def test_runs_analyze_prints_the_importance_of_every_swept_parameter(library, capsys, monkeypatch, tmp_path):
    make_sweep(sweep_folder(library), "s1")
    monkeypatch.setitem(sys.modules, "plotly", None)                      # as without the analysis extra
    status, out, err = call(["--runs", library, "analyze", "s1", "--out", str(tmp_path / "plots")], capsys)
    assert "parameter importance (fANOVA, of the validation accuracy)" in out
    assert "parameter importance (PED-ANOVA" in out
    fanova = out.split("fANOVA")[1].split("PED-ANOVA")[0]
    assert "lr" in fanova and "batch_size" in fanova
    lr = float(fanova.split("lr")[1].split()[0])
    assert lr > 0.5                                                          # lr is what the values follow
    assert status == 1 and err.strip().splitlines() == [
        "error: the plots need plotly: pip install 'mnist-live[analysis]' (the importances above do not)"]
    assert not (tmp_path / "plots").exists()
    status, out, err = call(["--runs", library, "analyze", "nope"], capsys)
    assert status == 2 and "no sweep 'nope'" in err and len(err.strip().splitlines()) == 1


def test_runs_analyze_writes_the_plots(library, capsys, tmp_path):
    pytest.importorskip("plotly", reason="the plots need plotly, the `analysis` extra: pip install -e .[analysis]")
    make_sweep(sweep_folder(library), "s1")
    out_dir = tmp_path / "plots"
    status, out, err = call(["--runs", library, "analyze", "s1", "--out", str(out_dir)], capsys)
    assert status == 0, err
    files = sorted(os.listdir(out_dir))
    assert files == sorted([f"s1-{k}.html" for k in analysis.PLOTS] + ["plotly.min.js"])
    parallel = (out_dir / "s1-parallel_coordinate.html").read_text()
    assert '["lr",' in parallel and '["batch_size",' in parallel
    pareto = (out_dir / "s1-pareto_front.html").read_text()
    assert "training seconds" in pareto and 'src="plotly.min.js"' in pareto


def test_a_grid_study_has_its_parameters_for_every_plot(library, capsys, tmp_path):
    make_sweep(sweep_folder(library), "g1", kind="grid", finished=4)
    status, out, err = call(["--runs", library, "analyze", "g1", "--out", str(tmp_path / "p")], capsys)
    assert "lr " in out.split("fANOVA")[1] and "batch_size" in out.split("fANOVA")[1]


# ------------------------------------------------------------------ the window's views (pure)
def curves(id, trial, hyper, acc, status="finished", kind="val", test=None):
    return RunCurves(id, status, hyper, 3, tuple(acc), (), (), test, "s", trial, kind)


def test_parallel_coordinates_place_each_trial_on_each_axis():
    trials = [curves(1, 0, {"lr": 0.0001, "batch_size": 32, "optimizer": "adam"}, [(1.0, 0.90)]),
              curves(2, 1, {"lr": 0.01, "batch_size": 64, "optimizer": "adam"}, [(1.0, 0.95)]),
              curves(3, 2, {"lr": 0.001, "batch_size": 128, "optimizer": "adam"}, [(1.0, 0.99)]),
              curves(4, 3, {"lr": 0.1, "batch_size": 64, "optimizer": "adam"}, [], status="running")]
    axes, lines = analysis.parallel_coordinates(trials)
    assert [a.name for a in axes] == ["lr", "batch_size", "accuracy"]
    assert axes[0].scale == "log" and axes[0].label == "lr (log)" and axes[1].scale == "linear"
    assert axes[2].label == "val acc %" and axes[2].ticks == ((0.0, "90.00"), (1.0, "99.00"))
    heights = {t.id: h for t, h in lines}
    assert heights[1] == [0.0, 0.0, 0.0] and heights[4][0] == pytest.approx(1.0)
    assert heights[2][0] == pytest.approx(2 / 3) and heights[3][0] == pytest.approx(1 / 3)     # 1e-4 .. 1e-1, log
    assert heights[2][1] == pytest.approx(32 / 96) and heights[3][2] == 1.0 and heights[4][2] is None
    cats, _ = analysis.parallel_coordinates([curves(1, 0, {"hidden": [64]}, []),
                                             curves(2, 1, {"hidden": [128, 64]}, [])])
    assert cats[0].scale == "categories" and cats[0].ticks == ((0.0, "64"), (1.0, "128x64"))


def test_hover_text_names_the_trial_its_hyperparameters_and_results():
    t = curves(17, 3, {"lr": 0.003, "batch_size": 64}, [(1.0, 0.95), (3.0, 0.971)], test=0.969)
    assert analysis.hover_text(t, ["lr", "batch_size"]) == \
        "trial 3 (run 17): lr=0.003 batch_size=64 | val 97.10 %, test 96.90 % | finished at 3.00 epochs"
    running = curves(18, 4, {"lr": 0.01}, [], status="running")
    assert analysis.hover_text(running, ["lr"]).endswith("no val accuracy yet | running at 0.00 epochs")


# ------------------------------------------------------------------ like with like
def test_the_sizes_of_the_data_sets_are_data_loaders():
    sample = data_loader.load_dataset("mnist", offline=True, log=lambda *a: None)
    assert analysis.SIZES["sample"] == (len(sample.y_train), len(sample.y_test))
    assert analysis.SIZES["full"] == data_loader._OPENML_SPLIT


def add(lib, acc, data, status="finished", **config):
    rid = lib.start_run(Config(**config), data)
    lib.record(rid, evaluations=[(1.0, "val" if config.get("val") else "full", acc, [acc] * 10, 1, 0, 5.0)])
    if status != "running":
        lib.finish_run(rid, status, test_accuracy=acc)
    return rid


def test_runs_never_ranks_two_data_sets_together(library, capsys):
    """Catches: 1,000-image and 10,000-image test accuracies in one ranking, no sizes shown."""
    with RunLibrary(library) as lib:
        small = add(lib, 0.99, {**FULL, "test": 1000}, test_size=1000)        # best number, on a small test set
        big = add(lib, 0.98, FULL)
        bigger = add(lib, 0.985, FULL)
        sample = add(lib, 0.97, SAMPLE, offline=True)
    status, out, err = call(["--runs", library], capsys)
    assert status == 0, err
    sections = out.split("\n\n")
    titles = [s.splitlines()[0] for s in sections if s.strip() and s.splitlines()[0].endswith("images:")]
    assert titles == ["MNIST: 60,000 train / 1,000 test images:", "MNIST: 60,000 train / 10,000 test images:",
                      "MNIST (bundled sample): 5,000 train / 1,000 test images:"]
    ids = [[int(line.split()[0]) for line in s.splitlines()[3:] if line.strip()[:1].isdigit()] for s in sections[:3]]
    assert ids == [[small], [bigger, big], [sample]]
    status, out, err = call(["--runs", library, "--where", "n_test=10000"], capsys)
    assert "data: MNIST: 60,000 train / 10,000 test images" in out            # one group: its data said below


def test_running_runs_rank_below_finished_ones_and_last_0_shows_all(library, capsys):
    with RunLibrary(library) as lib:
        done = add(lib, 0.95, SAMPLE, offline=True)
        running = add(lib, 0.99, SAMPLE, status="running", offline=True)
        interrupted = add(lib, 0.995, SAMPLE, status="interrupted", offline=True)
    status, out, err = call(["--runs", library, "--last", "0"], capsys)
    ids = [int(line.split()[0]) for line in out.splitlines()[2:] if line.strip()[:1].isdigit()]
    assert ids[0] == done and set(ids) == {done, running, interrupted}


def test_the_overlay_and_the_board_keep_to_the_live_runs_data(library):
    with RunLibrary(library) as lib:
        same = add(lib, 0.95, SAMPLE, offline=True, lr=0.003)
        add(lib, 0.99, {**SAMPLE, "train": 2000}, offline=True, train_size=2000)      # newer and better: other data
        add(lib, 0.99, SAMPLE, offline=True, augment=True)
        add(lib, 0.99, FULL)
    c = Comparison(library, Config(offline=True), data=SAMPLE)
    assert c.load() == "" and [r.id for r in c.runs] == [same]
    assert c.read_board() == "" and [r["id"] for r in c.board] == [same]
    assert c.data_label() == "MNIST (bundled sample): 5,000 train / 1,000 test images"


def test_an_overlay_label_names_what_differs_in_data_and_steering(library):
    with RunLibrary(library) as lib:
        other = add(lib, 0.95, {**FULL, "train": 6000}, train_size=6000, augment=True)
        lib.record(other, lr_changes=[(0.5, 0.002)])
        run = lib.run(other)
    curve = curves_of(run)
    live = Config()
    label = difference_label(live.hyperparameters(), curve.hyper, analysis.expected_data(live, FULL), curve.data,
                             curve.steered)
    assert label == "6,000 train images, augment, lr changed by hand (1x)"
    assert difference_label(live.hyperparameters(), live.hyperparameters()) == "same hyperparameters"


def test_runs_show_warns_that_the_reproduce_command_leaves_out_steering(library, capsys):
    with RunLibrary(library) as lib:
        rid = add(lib, 0.95, SAMPLE, offline=True)
        lib.record(rid, lr_changes=[(0.5, 0.002), (0.7, 0.004)])
    status, out, err = call(["--runs", library, "show", str(rid)], capsys)
    assert "its learning rate was changed by hand 2 time(s)" in out and "without those changes" in out


def test_a_run_with_a_validation_split_overlays_its_validation_curve(library):
    with RunLibrary(library) as lib:
        rid = add(lib, 0.95, {**SAMPLE, "val": 1000}, offline=True, val=1000)
        lib.record(rid, evaluations=[(1.0, "full", 0.94, [0.94] * 10, 1, 0, 6.0)])
        run = lib.run(rid)
    c = curves_of(run)
    assert c.kind == "val" and c.acc == ((1.0, 0.95),)
