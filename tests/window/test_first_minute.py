"""A learner's first minute (issue 31): the header, the per-class bars and the film strip
agree from the first seconds of training; which evaluation the header shows and what it
says beside it."""
import re

import numpy as np
import pygame
import pytest

from mnist_live.training.history import EvalRecord
from mnist_live.training.process import EARLY_SUBSETS, subset_due
from mnist_live.window.headline import headline, much_newer
from mnist_live.window.regions.header import Header
from mnist_live.window.regions.palette import RIGHT, WRONG
from mnist_live.window.regions.panel import Panel
from mnist_live.window.regions.portrait import FilmStrip
from mnist_live.window.telemetry import Telemetry
from window_driver import open_app, run_until

N = 40                                                      # batches per epoch in these records


def record(kind, acc, epoch, batch):
    return EvalRecord(epoch + batch / N, kind, acc, (acc,) * 10, epoch, batch, 10_000 if kind == "full" else 1000,
                      confusion=np.diag(np.full(10, 100)))


def tele_of(*records):
    tele = Telemetry(n_batches=N)
    for r in records:
        tele.apply(r)
    return tele.frozen()


def test_the_window_trainer_measures_the_subset_within_its_first_batches():
    assert [b for b in range(1, 60) if subset_due(0, b)] == list(EARLY_SUBSETS)
    assert subset_due(0, 1)                                  # a few milliseconds into training
    assert [b for b in range(1, 301) if subset_due(3, b)] == [100, 200, 300]


def test_a_full_headline_is_not_replaced_by_a_subset_of_nearly_the_same_weights():
    tele = tele_of(record("full", 0.975, 2, 20), record("subset", 0.974, 2, 21))     # paused, then one N step
    h = headline(tele, (2, 21))
    assert h.current
    assert h.phrasings[0] == ("test accuracy 97.50 % (full test set, epoch 3, batch 20) | "
                              "1,000-digit subset 97.40 % (epoch 3, batch 21)")


def test_an_untrained_figure_gives_way_to_a_subset_of_the_weights_on_screen():
    tele = tele_of(record("full", 0.0845, 0, 0), record("subset", 0.85, 0, 20))
    h = headline(tele, (0, 25))
    assert h.current
    assert h.phrasings[0].startswith("test accuracy 85.00 % (1,000-digit subset, epoch 1, batch 20)")
    assert "full test set 8.45 % untrained" in h.phrasings[0]


def test_weights_much_newer_than_every_evaluation_are_said_to_be_measured():
    tele = tele_of(record("full", 0.0845, 0, 0))
    h = headline(tele, (0, 12))
    assert not h.current
    assert "being measured" in h.phrasings[0] and "last 8.45 %" in h.phrasings[0]
    assert "test accuracy 8.45 %" not in h.phrasings[0]          # the old figure is not shown as current
    assert much_newer(12, 5) and not much_newer(11, 5) and not much_newer(1, 0) and much_newer(2, 0)


def figure_in(text):
    found = re.search(r"test accuracy (\d+\.\d+) %", text)
    return None if found is None else float(found.group(1))


@pytest.mark.slow
def test_header_bars_and_strip_agree_in_the_first_seconds_of_training(sample, monkeypatch):
    """A picture test: in the first seconds of training the header's accuracy, the per-class
    bars (their figures as drawn) and the film strip's frames (green or red pixels) tell
    the same story within noise. Before the early subset evaluations the header said
    8.45 % (untrained) and the bars sat near 10 % while the strip was mostly green."""
    from test_newcomer import drawn_texts
    app = open_app(sample, (1280, 720), worker=True, seed=3, epochs=1)
    try:
        run_until(app, lambda: app.display.stamp is not None and 5 <= app.display.stamp.batch < 30, 60)
        app.frame()
        for region in app.regions:                            # every region draws anew (no cached picture)
            region._picture = None
        texts = drawn_texts(app, monkeypatch, lambda: app.draw(app.screen))
        header = app.region(Header).rect
        said = [figure_in(t) for t, r in texts if header.contains(r) and figure_in(t) is not None]
        assert said, [t for t, r in texts if header.contains(r)]
        bars = app.region(Panel).bars.rect
        per_class = [float(t) for t, r in texts if bars.colliderect(r) and re.fullmatch(r"\d+\.\d", t)]
        assert len(per_class) == 10, per_class
        strip = app.region(FilmStrip)
        frames = [tuple(app.screen.get_at((box.x - 1, box.centery)))[:3] for box, _ in strip.boxes]
        assert len(frames) >= 8 and set(frames) <= {RIGHT, WRONG}, frames
        green = 100 * sum(f == RIGHT for f in frames) / len(frames)
        header_says, bars_say = said[0], float(np.mean(per_class))
        assert abs(header_says - bars_say) <= 10, (header_says, bars_say)
        assert abs(header_says - green) <= 40, (header_says, green, app.display.stamp)
    finally:
        app.close(save=False)
        pygame.display.quit()


@pytest.mark.parametrize("view", ["relevance", "backward"])
def test_grouped_grids_have_a_line_between_bands_and_labels_clear_of_the_lines(sample, view):
    """Item 2: with the grids in bands (O), a line runs where one class's band ends, and each
    band's label sits on the background: no connection line drawn through it; the same in the
    backward view (J), whose grids keep the grouped order.
    Catches: the bands not drawn in the backward view (its grids grouped, the toolbar's Group
    lit, and no line or label to say where a class begins)."""
    from mnist_live.explain.neurons import order_by_class
    from mnist_live.window.regions.network import NetworkColumns
    from mnist_live.window.regions.palette import ACCENT, BG, TEXT
    from window_driver import key, passed
    app = open_app(sample, (1600, 900), connections=2000)
    key(pygame.K_o)
    run_until(app, lambda: app.region(NetworkColumns).orders[0] is not None)
    if view == "backward":
        key(pygame.K_j)
        run_until(app, lambda: app.display.view.learn is not None and app.display.view.learn.mode == "backward")
    app.needs_draw = True
    app.frame()
    columns = app.region(NetworkColumns)
    for layer, grid in enumerate(app.layout.hidden):
        preferred = passed(app).preferred[layer][order_by_class(passed(app).preferred[layer])]
        starts = np.flatnonzero(np.diff(preferred)) + 1
        assert len(starts) >= 3
        for p in starts.tolist():
            r, c = divmod(p, grid.cols)
            x = grid.rect.x + c * grid.cell + grid.cell // 2          # the first cell of the new band
            assert tuple(app.screen.get_at((x, grid.rect.y + r * grid.cell - 1)))[:3] == TEXT, (layer, p)
        last_y, checked = -10 ** 6, 0
        for cls in range(10):                                      # the labels drawn, as draw_bands spaces them
            first = np.flatnonzero(preferred == cls)
            y = grid.rect.y + (first[0] // grid.cols + 0.5) * grid.cell if len(first) else None
            if y is None or y - last_y < columns.fs - 3:
                continue
            last_y = y
            label = columns.text.render(app.short_names[cls][:3] if hasattr(app, "short_names") else
                                        app.names[cls][:3], columns.fs - 4, ACCENT)
            box = label.get_rect(midright=(grid.rect.x - 4, y))
            want = pygame.Surface(box.size)
            want.fill(BG)
            want.blit(label, (0, 0))
            got = pygame.surfarray.array3d(app.screen.subsurface(box))
            assert np.array_equal(pygame.surfarray.array3d(want), got), (layer, cls)     # no line through it
            checked += 1
        assert checked >= 3
