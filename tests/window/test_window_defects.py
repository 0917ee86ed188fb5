"""Issue 32, items 15 and 16: the T chart and the portrait's defects, and words that were
not quite true."""
import numpy as np
import pygame
import pytest

from mnist_live.runs.comparison import Comparison, RunCurves
from mnist_live.training.config import Config
from mnist_live.window import captions
from mnist_live.window.regions.charts import ClassChart
from mnist_live.window.regions.palette import LOSS_COLOR
from mnist_live.window.regions.panel import Panel
from mnist_live.window.regions.portrait import Tooltip
from test_newcomer import evaluation
from window_driver import NO_LIBRARY, key, open_app, run_until, texts_blitted


def test_the_class_chart_draws_one_kind_of_evaluation_on_an_axis_fitted_to_it(sample):
    app = open_app(sample)
    tele = app.tele
    tele.apply(evaluation("subset", np.full(10, 0.6), 0, 10, 1000))
    tele.apply(evaluation("subset", np.full(10, 0.8), 0, 30, 1000))
    chart = app.region(Panel).class_chart
    assert ClassChart.kind(tele) == "subset" and len(chart.series(tele)[0]) == 2    # the first epoch: subsets
    for e, acc in ((1, 0.96), (2, 0.975), (3, 0.98)):
        tele.apply(evaluation("full", np.linspace(acc - 0.01, acc + 0.01, 10), e, 0, 1000))
        tele.apply(evaluation("subset", np.full(10, acc - 0.05), e, 20, 1000))       # noisier: not mixed in
    q, acc = chart.series(tele)
    assert ClassChart.kind(tele) == "full" and q.tolist() == [1.0, 2.0, 3.0]
    lo, hi = ClassChart.scale(acc)
    assert 0.92 <= lo < acc.min() and acc.max() < hi <= 1.0       # the data fill the axis (was 80-100 %)
    _, (lo2, hi2) = chart.points(tele, 4)
    assert (lo2, hi2) == (lo, hi)


def test_the_class_chart_marks_the_rewound_snapshot(sample):
    app = open_app(sample)
    for e in (1, 2, 3):
        app.tele.apply(evaluation("full", np.full(10, 0.9 + 0.02 * e), e, 0, 1000))
    app.tele.snapshots = [(0, 0, 0.0), (1, 0, 1.0), (2, 0, 2.0), (3, 0, 3.0)]
    app.state.class_chart, app.state.rewind = True, 2
    app.state.touch()
    app.needs_draw = True
    app.frame()
    chart = app.region(Panel).class_chart
    p = chart.plot()
    x = int(round(p.x + (2.0 - 1.0) / (app.config.epochs - 1.0) * (p.width - 1)))
    column = [tuple(app.screen.get_at((x, y)))[:3] for y in range(p.y + 2, p.bottom - 2)]
    assert sum(c == LOSS_COLOR for c in column) > 0.6 * len(column)


def test_slow_motion_is_refused_without_training(sample):
    app = open_app(sample)                                   # --no-train
    key(pygame.K_LEFTBRACKET)
    app.frame()
    assert app.state.speed == 0 and "--no-train" in app.state.toast


def test_a_run_steered_by_hand_is_not_the_same_hyperparameters():
    compare = Comparison(NO_LIBRARY, Config())
    hp = Config().hyperparameters()
    steered = RunCurves(1, "finished", hp, 10, (), (), (), steered=2)
    assert compare.label(steered) == "lr changed by hand (2x)"
    assert compare.label(RunCurves(2, "finished", hp, 10, (), (), ())) == "same hyperparameters"
    other = RunCurves(3, "finished", {**hp, "batch_size": 64}, 10, (), (), (), steered=1)
    assert compare.label(other) == "batch 64, lr changed by hand (1x)"


def test_a_hovered_neurons_portrait_comes_from_the_first_digits_while_the_pass_runs(sample):
    """The portrait shows what the neuron responds to from the first 1,000 test digits at
    once, and the whole pass's progress truly (its text is pushed as it changes)."""
    app = open_app(sample, (1600, 900))
    run_until(app, lambda: app.display.test_pass.result is not None and not app.display.test_pass.busy)
    grid = app.layout.hidden[1]
    cell = grid.cell_rect(7)
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=cell.center, rel=(0, 0), buttons=(0, 0, 0)))
    app.frame()
    tip = app.region(Tooltip)
    assert app.display.test_pass.busy, "hovering starts the pass that gathers portraits"
    assert app.frame_scene.portrait is not None and tip.prototype_rect is not None      # at once
    seen = []
    while app.display.test_pass.busy:
        drawn = app.times.drawn_frames
        app.frame()
        seen.append((int(100 * app.display.pass_done), app.times.drawn_frames > drawn and bool(tip.dirty_rects())))
    changed = [pushed for (pct, pushed), (before, _) in zip(seen[1:-1], seen[:-2]) if pct != before]
    assert changed and all(changed), "each frame with a new percentage pushes the portrait"


def test_words_that_were_not_quite_true():
    text = " ".join(b for _, b in captions.IDEAS)
    assert "blank image" not in text and "faint noise" in text                 # dreams start from faint noise
    assert "look like noise" not in text
    assert "no longer learns" not in text and "test set" in dict(captions.IDEAS)["dead"]
    assert "1-6 %" not in text
    from mnist_live.window.state import WindowState
    st = WindowState(np.zeros(10, np.int64))
    assert "blank image" not in st.start_dream(3)
    lines = captions.lines_caption(st, "digit", "3")
    assert not any("1-6 %" in t for t in lines)


def test_the_map_shows_how_far_its_projection_is(sample):
    from mnist_live.window.regions.overlays import MapOverlay
    app = open_app(sample, (1280, 720))
    key(pygame.K_p)
    app.frame()
    shown, region = set(), app.region(MapOverlay)
    while app.display.map_points is None:
        drawn = app.times.drawn_frames
        app.frame()
        if app.times.drawn_frames > drawn and region.redrew and app.display.map.busy:
            shown.add(int(100 * app.display.map.done))
    assert len(shown) >= 2, shown                     # "projecting... N %" followed the build


@pytest.mark.parametrize("size", [(1280, 720), (1600, 900)])
def test_a_message_in_the_header_is_never_squeezed_below_a_readable_size(sample, size):
    """A key's message (a toast) goes between the title and the accuracy when it fits there in
    two lines near the header's size; else it takes the header while it shows. Catches: the
    message squeezed into a long headline's gap in four lines of 9-pixel text (seen at
    1600x900 with the backward view's message beside a subset figure)."""
    import dataclasses

    from mnist_live.window.regions.header import Header
    app = open_app(sample, size)
    app.frame()
    header = app.region(Header)
    message = "backward view: each neuron's error signal δ, the lines the largest gradients a·δ (J again: off)"
    long = "test accuracy 98.61 % (full test set, after epoch 8) | 1,000-digit subset 98.00 % (epoch 9, batch 200)"
    sizes, render = [], header.text.render

    def spy(text, size, *args, **kwargs):
        if text and text in message:
            sizes.append(size)
        return render(text, size, *args, **kwargs)
    header.text.render = spy
    try:
        for accuracy in ("test accuracy 97.1 %", long):
            app.state.say(message)
            app.frame()                                    # the scene holds the message
            sizes.clear()
            header.draw(app.screen, dataclasses.replace(app.frame_scene, accuracy=accuracy))
            assert sizes and min(sizes) >= header.fs - 4 and len(sizes) <= 2, (accuracy, sizes)
    finally:
        header.text.render = render


def test_a_finished_run_is_not_said_to_be_at_batch_0(sample):
    """Catches: "epoch 2/2   batch 0/469   finished" in the panel of a finished run."""
    from mnist_live.window.regions.panel import Panel
    app = open_app(sample, (1280, 720), no_train=False, epochs=2)
    tele = app.tele
    tele.finished, tele.epoch, tele.batch, tele.n_batches = True, 2, 0, 40
    tele.version += 1
    with texts_blitted(app.region(Panel).text) as said:
        app.needs_draw = True
        run_until(app, lambda: app.panel.seen[0] == tele.version)
        app.needs_draw = True
        app.frame()
    line = [t for t in said if t.startswith("epoch ")]
    assert line and "batch 0/" not in line[0] and line[0].startswith("epoch 2/2"), said
