"""Comparing runs in the window: the labels of what an earlier run does differently, the
earlier runs overlaid on the chart (the right run, on the right time axis), the
leaderboard (best first; a click overlays the run), --compare and --watch."""
import functools

import numpy as np
import pygame
import pytest

from conftest import assert_one_line_error, run
from mnist_live import data_loader
from mnist_live.runs.comparison import Comparison, check_options, difference_label, differences, to_seconds
from mnist_live.runs.library import RunLibrary
from mnist_live.training.config import Config
from mnist_live.window.regions.palette import COMPARE_COLORS, GRID_BG, TRIAL_COLORS
from mnist_live.window.regions.panel import Panel
from mnist_live.window.regions.runs_views import LeaderboardOverlay, WatchOverlay
from window_driver import click, key, move, open_app, pixels, run_until, text_drawn_at


@functools.cache
def bundled():
    return data_loader.load_dataset("mnist", offline=True, log=lambda *a: None)


@pytest.fixture(scope="module")
def sample():
    return bundled()


def add_run(lib, curve, status="finished", sweep=None, trial=None, data=None, kind="full", **hp):
    """A run of `curve` [(progress, accuracy, elapsed_s)] with a falling loss, trained on
    `data` (a summary(); default the bundled sample the test windows train on); its id."""
    config = Config(epochs=4, seed=1, **hp)
    rid = lib.start_run(config, data or bundled().summary(), sweep=sweep, trial=trial)   # the window's data
    losses = [(q / 10, 2.0 / (1 + q)) for q in range(1, 41)]
    lib.record(rid, evaluations=[(q, kind, a, [a] * 10, int(q), 0, el) for q, a, el in curve], losses=losses)
    if status != "running":
        lib.finish_run(rid, status, test_accuracy=curve[-1][1], wall_s=curve[-1][2])
    return rid


# a fast run that stalls late (its seconds are not its epochs) and a slow, steady one
FAST = [(1.0, 0.97, 10.0), (2.0, 0.98, 20.0), (3.0, 0.985, 200.0), (4.0, 0.99, 210.0)]
SLOW = [(1.0, 0.91, 100.0), (2.0, 0.93, 110.0), (3.0, 0.95, 120.0), (4.0, 0.96, 130.0)]


@pytest.fixture
def library(tmp_path):
    path = str(tmp_path / "runs.sqlite3")
    with RunLibrary(path) as lib:
        fast = add_run(lib, FAST, lr=0.003)
        slow = add_run(lib, SLOW, batch_size=64)
    return path, fast, slow


# ------------------------------------------------------------------ labels (pure)
def test_differences_name_what_the_other_run_sets_differently():
    live = Config(epochs=4).hyperparameters()
    assert differences(live, Config(epochs=4, lr=0.003, batch_size=64).hyperparameters()) == ["lr 0.003", "batch 64"]
    assert differences(live, Config(epochs=4, optimizer="sgd").hyperparameters()) == ["sgd", "lr 0.1"]
    assert differences(live, Config(epochs=4, augment=True, hidden=(256,)).hyperparameters()) == \
        ["hidden 256", "augment"]
    assert difference_label(live, Config(epochs=4).hyperparameters()) == "same hyperparameters"
    assert difference_label(live, Config(epochs=4, seed=3, weight_decay=1e-4).hyperparameters()) == \
        "weight decay 0.0001, seed 3"


def test_to_seconds_follows_the_clock_between_evaluations():
    clock = [(1.0, 10.0), (2.0, 20.0), (3.0, 200.0)]
    assert to_seconds([0.5, 1.0, 1.5, 2.5, 3.0, 9.0], clock) == [10.0, 10.0, 15.0, 110.0, 200.0, 200.0]
    assert to_seconds([1.0], []) == []


# ------------------------------------------------------------------ the chart's overlay
def expected_points(chart, curve, axis):
    """Where the chart must put `curve`'s evaluations: computed here from the plot's
    rectangle, not with the chart's own mapping."""
    p = chart.plot_rect()
    accs = [a for _, a, _ in curve]
    lo = min(0.9, max(0.0, np.floor(min(accs) * 20) / 20 - 0.05))
    xs = [q for q, _, _ in curve] if axis == "epochs" else [el for _, _, el in curve]
    span = 4 if axis == "epochs" else max(xs)
    return [(p.x + x / span * (p.width - 1), p.bottom - 1 - (a - lo) / (1 - lo) * (p.height - 1))
            for x, a in zip(xs, accs)]


def on_curve(app, pts, color):
    """The share of segment midpoints of `pts` with `color` within a pixel."""
    hits = 0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        mx, my = int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2))
        near = pixels(app, pygame.Rect(mx - 1, my - 1, 3, 3)).reshape(-1, 3)
        hits += bool((near == color).all(axis=1).any())
    return hits / (len(pts) - 1)


def redraw(app):
    app.state.touch()
    app.needs_draw = True
    app.frame()


@pytest.mark.parametrize("axis", ["epochs", "seconds"])
def test_the_overlay_follows_the_chosen_runs_curve_on_the_chosen_axis(sample, library, axis):
    """Catches: the overlay drawn from the wrong run, or against epochs when seconds are
    asked (and the other way round), or not drawn."""
    path, fast, slow = library
    app = open_app(sample, epochs=4, runs=path, compare=(fast,))
    if axis == "seconds":
        key(pygame.K_e)
    redraw(app)
    assert app.compare.axis == axis
    chart, color = app.region(Panel).chart, COMPARE_COLORS[0]
    assert on_curve(app, expected_points(chart, FAST, axis), color) == 1.0
    other_axis = "epochs" if axis == "seconds" else "seconds"
    assert on_curve(app, expected_points(chart, FAST, other_axis), color) < 1.0
    assert on_curve(app, expected_points(chart, SLOW, axis), color) == 0.0
    assert text_drawn_at(app, f"run {fast}: lr 0.003", chart.fs, color, False, "topleft",
                         (chart.rect.x + 18, chart.plot_rect().bottom + 2 + chart.text.font(chart.fs).get_height() + 1))
    key(pygame.K_k)                                    # K: off
    redraw(app)
    assert on_curve(app, expected_points(chart, FAST, axis), color) == 0.0


def test_by_default_the_previous_finished_run_of_the_data_set_is_overlaid(sample, library):
    """Catches: overlaying the first run, a run still training, or another data set's."""
    path, fast, slow = library
    with RunLibrary(path) as lib:
        add_run(lib, FAST, status="running")           # newer, but not finished
        add_run(lib, FAST, dataset="fashion")          # newer, another data set
    app = open_app(sample, epochs=4, runs=path)
    assert [r.id for r in app.compare.runs] == [slow]
    redraw(app)
    assert on_curve(app, expected_points(app.region(Panel).chart, SLOW, "epochs"), COMPARE_COLORS[0]) == 1.0


def test_a_broken_library_means_no_overlay_and_one_message(sample, tmp_path):
    bad = tmp_path / "runs.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    app = open_app(sample, epochs=4, runs=str(bad))
    assert app.compare.runs == []
    assert app.state.toast.startswith("no earlier runs to overlay: ") and "\n" not in app.state.toast
    redraw(app)                                         # and the window draws on


def test_the_live_run_is_never_its_own_comparison(library):
    path, fast, slow = library
    with RunLibrary(path) as lib:
        rid = add_run(lib, FAST)
        lib.conn.execute("UPDATE runs SET pid=-5 WHERE id=?", (rid,))
    c = Comparison(path, Config(epochs=4), live_pid=-5)
    assert c.load() == "" and [r.id for r in c.runs] == [slow]



def test_the_leaderboard_marks_the_run_on_screen_finished_or_running(library):
    """The live run's row is found by its training process's pid whatever its status.
    Catches: only running rows looked at (a finished run on screen went unmarked)."""
    path, fast, slow = library
    with RunLibrary(path) as lib:
        rid = add_run(lib, FAST)                                  # a finished run
        lib.conn.execute("UPDATE runs SET pid=-5 WHERE id=?", (rid,))
    c = Comparison(path, Config(epochs=4), live_pid=-5)
    assert c.read_board() == "" and c.live_id == rid
    assert c.choose(rid) == "that is the run on screen"


# ------------------------------------------------------------------ the leaderboard
def test_the_leaderboard_lists_the_best_first_and_a_click_overlays_that_run(sample, library):
    """Catches: rows out of order, a row's click overlaying another run, the overlaid
    run not marked in the list."""
    path, fast, slow = library
    with RunLibrary(path) as lib:
        mid = add_run(lib, [(1.0, 0.94, 5.0), (4.0, 0.975, 50.0)], dropout=0.2)
    app = open_app(sample, epochs=4, runs=path, compare=(fast,))
    key(pygame.K_b)
    app.frame()
    app.frame()
    board = app.region(LeaderboardOverlay)
    assert [i for _, i in board.rows] == [fast, mid, slow]          # 99 %, 97.5 %, 96 %
    sfs = board.fs - 1
    for rect, run_id in board.rows:                                  # each row says its run
        x0 = rect.x + board.text.width("on screen", sfs) + 16
        color = COMPARE_COLORS[0] if run_id == fast else (225, 230, 240)
        assert text_drawn_at(app, str(run_id), sfs, color, False, "topleft", (x0, rect.y + 3))
    slow_row = next(r for r, i in board.rows if i == slow)
    assert tuple(app.screen.get_at((slow_row.right - 3, slow_row.y + 1)))[:3] != GRID_BG   # not overlaid yet
    click(slow_row.center)
    app.frame()
    app.frame()
    assert app.compare.chosen == [fast, slow]
    assert tuple(app.screen.get_at((slow_row.right - 3, slow_row.y + 1)))[:3] == GRID_BG   # marked
    swatch = pixels(app, pygame.Rect(slow_row.x + 4, slow_row.centery - 1, 20, 3)).reshape(-1, 3)
    assert (swatch == COMPARE_COLORS[1]).all(axis=1).any()
    key(pygame.K_ESCAPE)
    redraw(app)
    chart = app.region(Panel).chart
    assert on_curve(app, expected_points(chart, SLOW, "epochs"), COMPARE_COLORS[1]) == 1.0


# ------------------------------------------------------------------ --compare and --watch
@pytest.mark.slow
def test_compare_with_an_unknown_id_or_watch_with_an_unknown_sweep_is_one_line(library):
    path, fast, slow = library
    proc = run("--offline", "--runs", path, "--compare", str(fast), "999", "--frames", "1")
    assert_one_line_error(proc, 2, "--compare: no run 999")
    proc = run("--offline", "--runs", path, "--watch", "nosuch", "--frames", "1")
    assert_one_line_error(proc, 2, "--watch: no sweep named 'nosuch'")
    proc = run("--offline", "--headless", "--runs", path, "--compare", str(fast))
    assert_one_line_error(proc, 2, "--compare is for the window")


def test_compare_with_an_id_beyond_64_bits_is_no_such_run(library):
    """Catches: the id handed to SQLite as it is (OverflowError, a traceback)."""
    path, fast, slow = library
    why = check_options(Config(runs=path, compare=(str(fast), "9" * 30)))
    assert why == f"--compare: no run {'9' * 30} in the runs library {path} (mnist-live runs lists them)"


def test_watch_draws_each_trials_curve_in_its_status_colour(sample, tmp_path):
    """Catches: a trial missing from the chart, a curve drawn in another status's colour,
    the chart not following a new read."""
    path = str(tmp_path / "runs.sqlite3")
    curves = {"finished": [(1.0, 0.95, 10.0), (2.0, 0.97, 20.0), (4.0, 0.98, 40.0)],
              "pruned": [(1.0, 0.90, 10.0), (2.0, 0.91, 20.0)],
              "running": [(1.0, 0.93, 10.0), (3.0, 0.99, 30.0)]}
    with RunLibrary(path) as lib:
        for trial, (status, curve) in enumerate(curves.items()):
            add_run(lib, curve, status=status, sweep="s1", trial=trial)
    app = open_app(sample, epochs=4, runs=path, watch="s1")
    run_until(app, lambda: len(app.watch.trials) == 3)
    redraw(app)
    view = app.region(WatchOverlay)
    p = view.plot_rect()
    lo = min(0.9, max(0.0, np.floor(0.90 * 20) / 20 - 0.05))
    for status, curve in curves.items():
        pts = [(p.x + q / 4 * (p.width - 1), p.bottom - 1 - (a - lo) / (1 - lo) * (p.height - 1)) for q, a, _ in curve]
        assert on_curve(app, pts, TRIAL_COLORS[status]) == 1.0, status
    with RunLibrary(path) as lib:                     # a new trial appears within a read or two
        add_run(lib, [(1.0, 0.92, 10.0), (2.0, 0.96, 20.0)], status="running", sweep="s1", trial=3)
    run_until(app, lambda: len(app.watch.trials) == 4, timeout=5)
    app.watch.stop()
    assert max(app.watch.read_ms) < 1000


def test_watch_shows_each_trials_settings_as_parallel_coordinates_and_names_the_one_pointed_at(sample, tmp_path):
    """A sweep holding out a validation split: the title says validation accuracy; below the
    curves one axis per hyperparameter that differs (lr on a log scale, the optimizer as
    categories) and one for the final validation accuracy, a line per trial in its status
    colour; pointing at a line names that trial. Catches: a trial's line at another's
    values, a linear lr axis, the wrong status colour, the test accuracy called
    validation (or the other way round), the pointer naming a trial it is not on."""
    path = str(tmp_path / "runs.sqlite3")
    trials = [("finished", 0.001, "adam", [(1.0, 0.95, 10.0), (2.0, 0.98, 20.0)]),
              ("pruned", 0.01, "sgd", [(1.0, 0.90, 10.0), (2.0, 0.91, 20.0)]),
              ("running", 0.1, "momentum", [(1.0, 0.93, 10.0), (2.0, 0.95, 20.0)])]
    with RunLibrary(path) as lib:
        ids = [add_run(lib, curve, status=status, sweep="s2", trial=i, kind="val", lr=lr, optimizer=opt, val=1000)
               for i, (status, lr, opt, curve) in enumerate(trials)]
    app = open_app(sample, epochs=4, runs=path, watch="s2")
    run_until(app, lambda: len(app.watch.trials) == 3)
    redraw(app)
    view = app.region(WatchOverlay)
    r = view.rect
    assert text_drawn_at(app, "Sweep s2: 3 trials, validation accuracy", view.fs, (225, 230, 240), True, "topleft",
                         (r.x + 20, r.y + 12))
    names = [a.name for a in view.axes]
    assert sorted(names) == ["accuracy", "lr", "optimizer"] and names[-1] == "accuracy"
    c = view.coords_rect()
    xs = {name: c.x + (c.width - 1) * i / 2 for i, name in enumerate(names)}
    heights = {"lr": [0.0, 0.5, 1.0],                          # log10 -3, -2, -1
               "optimizer": [0.5, 0.0, 1.0],                   # sgd, adam, momentum by length
               "accuracy": [1.0, 0.0, (0.95 - 0.91) / (0.98 - 0.91)]}
    lines = []
    for i, (status, *_rest) in enumerate(trials):
        pts = [(xs[n], c.bottom - 1 - heights[n][i] * (c.height - 1)) for n in names]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):             # a third of the way: lines cross at halves here
            assert on_curve(app, [(x0, y0), (x0 + (x1 - x0) * 2 / 3, y0 + (y1 - y0) * 2 / 3)],
                            TRIAL_COLORS[status]) == 1.0, status
        lines.append(pts)
    (x0, y0), (x1, y1) = lines[0][:2]                          # point near the first trial's line
    move(((3 * x0 + x1) / 4 + 2, (3 * y0 + y1) / 4 - 3))
    app.frame()
    app.frame()
    hp = {"lr": "0.001", "optimizer": "adam"}
    said = f"trial 0 (run {ids[0]}): " + " ".join(f"{n}={hp[n]}" for n in names[:-1]) + \
        " | val 98.00 %, test 98.00 % | finished at 2.00 epochs"
    assert text_drawn_at(app, said, view.fs - 1, (225, 230, 240), False, "bottomleft", (r.x + 20, r.bottom - 8))
    app.watch.stop()


def test_the_board_and_the_default_overlay_hold_only_runs_on_the_same_data(sample, library):
    """A better run trained on the full 60,000 images is not ranked beside runs on the
    bundled sample, nor overlaid by default; the board's title says what data it ranks.
    Catches: the window's data not handed to the comparison (every MNIST run ranked)."""
    path, fast, slow = library
    with RunLibrary(path) as lib:
        full = add_run(lib, [(1.0, 0.985, 5.0), (4.0, 0.995, 30.0)],
                       data={"name": "mnist", "source": "OpenML mnist_784", "train": 60000, "test": 10000})
    app = open_app(sample, epochs=4, runs=path)
    assert app.compare.chosen and full not in app.compare.chosen
    key(pygame.K_b)
    app.frame()
    app.frame()
    board = app.region(LeaderboardOverlay)
    assert [i for _, i in board.rows] == [fast, slow]
    title = f"Best runs on the same data: {app.compare.data_label()}"
    assert "sample" in title and text_drawn_at(app, title, board.fs, (225, 230, 240), True, "topleft",
                                                (board.rect.x + 20, board.rect.y + 12))


def test_a_first_launch_without_a_library_says_nothing_about_overlays(sample, tmp_path):
    """No library yet (a first launch): no message over the header for the first seconds;
    asked for with --compare, the same absence is said. Catches: every first launch opening
    on 'no earlier runs to overlay: runs library ...: no runs recorded yet'."""
    absent = tmp_path / "absent.sqlite3"
    app = open_app(sample, epochs=4, runs=str(absent))
    assert app.compare.runs == [] and "overlay" not in app.state.toast
    app = open_app(sample, epochs=4, runs=str(absent), compare=(1,))
    assert app.state.toast.startswith("no earlier runs to overlay: ")


def test_k_with_no_earlier_run_does_not_say_it_hid_some(sample, tmp_path):
    """Catches: the first K of a window with nothing overlaid saying "earlier runs hidden"."""
    app = open_app(sample, epochs=4, runs=str(tmp_path / "absent.sqlite3"))
    assert app.compare.runs == []
    said = app.compare.toggle()
    assert "hidden" not in said and "no earlier runs" in said
