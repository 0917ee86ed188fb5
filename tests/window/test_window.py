"""The window's picture and controls, driven with real pygame events (dummy video
driver). Each test opens its own window; pixels are read from the rectangles the layout
gave each region, so a wrong picture fails (see the note on each picture test)."""
import re
import time
import types
from pathlib import Path

import numpy as np
import pygame
import pytest

from mnist_live.neural_network import to_float
from mnist_live.training.history import EvalRecord
from mnist_live.training.messages import DigitHistory
from mnist_live.window.keys import KEYS, controls_markdown
from mnist_live.window.regions.header import Header
from mnist_live.window.regions.layout import MIN_SIZE, compute_layout
from mnist_live.window.regions.network import NetworkColumns
from mnist_live.window.regions.overlays import ConfusionOverlay, HelpOverlay, MapOverlay
from mnist_live.window.regions.palette import ACCENT, BG, DEAD, DIM, RIGHT, TEXT, WRONG, confusion_color, diverging
from mnist_live.window.regions.panel import Panel, history_caption, snapshot_namer
from mnist_live.window.regions.portrait import FilmStrip, Tooltip
from mnist_live.window.state import K_STEPS
from mnist_live.window.view_model import WeightsStamp, receptive_field
from window_driver import (
    click,
    draw_region,
    index_where,
    key,
    move,
    open_app,
    passed,
    pixel,
    pixels,
    run_until,
    settle,
    text_drawn_at,
)

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ picture tests
def ring_color(app, c):
    (cx, cy), radius = app.region(NetworkColumns).output_neuron(c)
    return pixel(app, (cx + radius + 2, cy))


def test_prediction_ring_is_green_when_right_and_red_when_wrong(sample):
    """Catches: the right/wrong ring colours swapped."""
    app = open_app(sample)
    for right in (True, False):
        app.state.go(index_where(app, right))
        app.frame()
        pred = app.display.view.pred
        assert ring_color(app, pred) == (RIGHT if right else WRONG)
        other = (pred + 1) % 10
        assert ring_color(app, other) not in (RIGHT, WRONG)          # only the prediction is ringed


@pytest.mark.slow
def test_confusion_cells_hold_the_count_of_that_true_predicted_pair(sample):
    """Catches: the confusion matrix drawn transposed."""
    app = open_app(sample)
    settle(app)
    key(pygame.K_x)
    app.frame()
    conf = passed(app).confusion
    np.testing.assert_array_equal(conf, np.bincount(app.y_test * 10 + app.display.net.predict(app.x_test),
                                                    minlength=100).reshape(10, 10))
    row_max = conf.max(axis=1)
    checked = 0
    for t in range(10):
        for p in range(10):
            want = confusion_color(conf[t, p], row_max[t], t == p)
            if want == confusion_color(conf[p, t], row_max[p], t == p):
                continue                                      # symmetric here: proves nothing
            r = app.region(ConfusionOverlay).cell_rect(t, p)
            assert pixel(app, (r.x + 1, r.y + 1)) == want, (t, p)
            checked += 1
    assert checked >= 10


@pytest.mark.slow
def test_dead_neurons_are_drawn_dead_and_live_ones_are_not(sample):
    """Catches: the dead-neuron mask inverted (or not drawn)."""
    app = open_app(sample)
    app.display.net.biases[0][[3, 40]] = -1e4                          # these two can never switch on
    app.display.stamp = WeightsStamp(app.display.stamp.version + 1)            # as if the trainer published them
    app.display.predict.reset(app.display.stamp)
    settle(app)
    grid = app.layout.hidden[0]
    dead = passed(app).dead[0]
    assert dead[3] and dead[40] and dead.sum() < 100
    for j in (3, 40):
        assert pixel(app, grid.cell_rect(j).center) == DEAD
    for j in np.flatnonzero(~dead)[:20]:
        assert pixel(app, grid.cell_rect(int(j)).center) != DEAD


def full_eval(acc, epoch):
    return EvalRecord(float(epoch), "full", acc, (acc,) * 10, epoch, 0, 1000, confusion=np.diag(np.full(10, 100)))


def test_accuracy_curve_passes_through_each_evaluation(sample):
    """Catches: the accuracy curve not drawn (or drawn at the wrong place)."""
    app = open_app(sample, epochs=4)
    for epoch, acc in enumerate((0.1, 0.90, 0.94, 0.95, 0.97)):
        app.tele.apply(full_eval(acc, epoch))
    app.needs_draw = True
    run_until(app, lambda: app.panel.seen[0] == app.tele.version)   # the panel follows within 0.3 s
    app.needs_draw = True
    app.frame()
    chart = app.region(Panel).chart
    pts = [chart.point(app.tele, 4, q, a) for q, a in app.tele.acc_curve if q > 0]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        assert pixel(app, (x0, y0)) == ACCENT                     # evaluation point
        mid = ((x0 + x1) // 2, (y0 + y1) // 2)
        near = pixels(app, pygame.Rect(mid[0] - 1, mid[1] - 1, 3, 3)).reshape(-1, 3)
        assert (near == ACCENT).all(axis=1).any(), "no curve between two evaluations"


def test_hover_tooltip_shows_that_neurons_receptive_field(sample):
    """Catches: the tooltip showing another neuron's receptive field."""
    app = open_app(sample)
    for layer, j in ((0, 37), (1, 5)):
        grid = app.layout.hidden[layer]
        move(grid.cell_rect(j).center)
        app.frame()
        assert app.state.hover == (layer, j)
        rf = receptive_field(app.display.net.weights, layer, j)
        other = receptive_field(app.display.net.weights, layer, j + 1)
        want = diverging(rf / np.abs(rf).max())                            # (28, 28, 3)
        wrong = diverging(other / np.abs(other).max())
        shown = pixels(app, app.region(Tooltip).heatmap_rect)                      # (w, h, 3)
        px = app.region(Tooltip).heatmap_rect.width // 28
        sampled = shown[px // 2::px, px // 2::px].transpose(1, 0, 2)       # (28, 28, 3) row-major
        assert np.array_equal(sampled, want)
        assert not np.array_equal(sampled, wrong)
        assert not app.region(Tooltip).box.colliderect(app.layout.output), "tooltip over the output column"
    move((5, 5))
    app.frame()
    assert app.state.hover is None and app.region(Tooltip).heatmap_rect is None


def test_input_is_the_true_greyscale_digit_upright(sample):
    app = open_app(sample, connections=0)
    app.state.go(0)
    app.frame()
    g = app.layout.input
    img = app.x_test[0].reshape(28, 28)
    for r in range(0, 28, 3):
        for c in range(0, 28, 3):
            assert pixel(app, g.cell_rect(r * 28 + c).center) == (img[r, c],) * 3
    assert img.T.tolist() != img.tolist()                  # a transposed picture would fail


# ------------------------------------------------------------- one truth per frame
def test_strip_frames_output_ring_and_panel_agree_with_the_weights_on_screen(sample):
    app = open_app(sample)
    app.state.go(index_where(app, False))
    app.frame()
    preds = app.display.net.predict(app.x_test)
    assert len(app.region(FilmStrip).boxes) >= 10
    for box, idx in app.region(FilmStrip).boxes:
        want = RIGHT if preds[idx] == app.y_test[idx] else WRONG
        assert pixel(app, (box.x - 1, box.centery)) == want, idx
        if idx == app.state.index:
            assert want == ring_color(app, app.display.view.pred)
    assert app.display.view.pred == preds[app.state.index]


def test_m_lands_on_a_digit_the_screen_shows_as_wrong(sample):
    app = open_app(sample)
    app.state.go(0)
    for shift in (0, 0, pygame.KMOD_SHIFT):
        before = app.state.index
        key(pygame.K_m, mod=shift)
        app.frame()
        i = app.state.index
        assert i != before and app.display.view.pred != app.y_test[i]
        assert ring_color(app, app.display.view.pred) == WRONG


def test_header_shows_the_latest_evaluation_with_its_kind_and_the_data_source(sample):
    app = open_app(sample)
    app.state.toast = ""          # no message beside it: a message shortens the headline to leave itself room
    app.tele.apply(full_eval(0.0845, 0))
    app.tele.apply(EvalRecord(0.3, "subset", 0.94, (0.94,) * 10, 0, 300, 1000, confusion=np.diag(np.full(10, 100))))
    app.needs_draw = True
    app.frame()
    text = app.scene().headline.phrasings[0]        # the untrained weights on screen: the full set's figure first
    assert text == "test accuracy 8.45 % (full test set, untrained) | 1,000-digit subset 94.00 % (epoch 1, batch 300)"
    h = app.region(Header)
    assert text_drawn_at(app, text, h.fs, ACCENT, True, "topright", (h.rect.right - 12, h.rect.y + 4))
    label = app.scene().data_label
    assert "bundled sample" in label and "5,000 training / 1,000 test images" in label
    assert text_drawn_at(app, label, h.fs - 2, (140, 148, 165), False, "topleft", (12, h.rect.y + 6 + h.fs + 4))


def test_drawing_shows_raw_strokes_under_the_pointer_and_predicts_live(sample):
    app = open_app(sample)
    key(pygame.K_d)
    app.frame()
    r = app.layout.input.rect
    x = r.x + r.width // 5                                   # a stroke near the left edge
    click((x, r.y + 30))
    for y in range(r.y + 30, r.y + r.height // 2, 4):
        move((x, y), buttons=(1, 0, 0))
    app.frame()
    assert app.state.canvas.sum() > 0 and app.display.view.pred >= 0
    assert min(pixel(app, (x, r.y + r.height // 3))) > 200, "no ink where the pointer drew"
    assert app.display.view.x.sum() > 0                              # the network sees the centred digit
    inked = app.state.canvas.sum()
    for y in range(r.y, r.bottom, 3):                        # right button erases
        move((x, y), buttons=(0, 0, 1))
    app.frame()
    assert app.state.canvas.sum() < 0.5 * inked
    key(pygame.K_BACKSPACE)
    app.frame()
    assert app.state.canvas.sum() == 0 and app.display.view.pred == -1
    assert ring_color(app, 0) not in (RIGHT, WRONG, ACCENT)  # an empty canvas predicts nothing


def test_a_fast_stroke_is_a_line_not_dots_where_the_pointer_was_seen(sample):
    """A quick drag is seen as a few far-apart motion events: the brush is dragged from one
    to the next, so the whole segment is inked, and a new press starts a new stroke.
    Catches: painting only at the event positions (dots), strokes joined across presses."""
    app = open_app(sample)
    key(pygame.K_d)
    app.frame()
    r = app.layout.input.rect
    a, b = (r.x + r.width // 5, r.y + r.height // 5), (r.x + 4 * r.width // 5, r.y + 4 * r.height // 5)
    click(a)
    move(b, buttons=(1, 0, 0))                           # one jump across the canvas, button held
    app.frame()
    canvas = app.state.canvas                            # (280, 280): rows are y
    for t in np.linspace(0, 1, 11):
        u, v = ((1 - t) * a[0] + t * b[0] - r.x) / r.width, ((1 - t) * a[1] + t * b[1] - r.y) / r.height
        assert canvas[int(v * canvas.shape[0]), int(u * canvas.shape[1])] > 0.9, f"a gap at t={t:.1f}"
    c = (r.x + r.width // 5, r.y + 4 * r.height // 5)
    move(c)                                              # the button let go: the stroke ends
    click(c)
    app.frame()
    mid = ((b[0] + c[0]) // 2 - r.x) / r.width, ((b[1] + c[1]) // 2 - r.y) / r.height
    assert canvas[int(mid[1] * canvas.shape[0]), int(mid[0] * canvas.shape[1])] == 0, "joined to the last stroke"


def test_fashion_says_image_and_keeps_class_names_whole(fashion):
    app = open_app(fashion, size=(1280, 720), dataset="fashion")
    app.frame()
    cols = app.region(NetworkColumns)
    assert cols.lay.output_rows[0].right < app.layout.panel.x
    names = app.names
    widest = app.text.widest(names, cols.fs, True)
    (cx, _), radius = cols.output_neuron(0)
    assert cx + radius + 6 + widest < cols.lay.output.right - 40      # names fit beside the bars
    assert app.scene().noun == "image"
    bars = app.region(Panel).bars
    assert bars.bar_rects(names)[0].x - bars.rect.x >= app.text.widest(names, bars.fs - 1)


# ------------------------------------------------------------------- key table
def test_readme_controls_table_is_the_key_table():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"## Controls\n\n(\| key / mouse.*?)\n\n", readme, re.S)
    assert m, "README has no Controls table"
    assert m.group(1).strip() == controls_markdown(), \
        "README Controls table differs from window_keys.KEYS; paste window_keys.controls_markdown()"


def test_every_key_in_the_table_acts(sample):
    """Every row names a function of window.actions, and every action function has a row (on_hit,
    the clicks, is not a key)."""
    import inspect

    from mnist_live.window import actions
    for k in KEYS:
        if k.action:
            assert getattr(actions, k.action.__name__) is k.action
    acts = {k.action.__name__ for k in KEYS if k.action}
    functions = {name for name, f in vars(actions).items()
                 if inspect.isfunction(f) and f.__module__ == actions.__name__}
    assert functions - {"on_hit", "training_off", "full_data_missing"} == acts   # the clicks; two facts of the moment


@pytest.mark.slow
def test_navigation_keys(sample):
    app = open_app(sample)
    app.state.go(10)
    for k, want in ((pygame.K_RIGHT, 11), (pygame.K_LEFT, 10), (pygame.K_PAGEDOWN, 110), (pygame.K_PAGEUP, 10),
                    (pygame.K_END, len(app.y_test) - 1), (pygame.K_HOME, 0)):
        key(k)
        app.frame()
        assert app.state.index == want
    for d in range(10):
        key(pygame.K_0 + d)
        app.frame()
        assert app.y_test[app.state.index] == d
    key(pygame.K_KP7)
    app.frame()
    assert app.y_test[app.state.index] == 7
    seen = set()
    for _ in range(5):
        key(pygame.K_r)
        app.frame()
        seen.add(app.state.index)
    assert len(seen) > 1


@pytest.mark.slow
def test_mistakes_only_and_confusion_cell_filters(sample):
    app = open_app(sample)
    settle(app)
    preds = app.display.net.predict(app.x_test)
    key(pygame.K_f)
    app.frame()
    for _ in range(4):
        key(pygame.K_RIGHT)
        app.frame()
        assert preds[app.state.index] != app.y_test[app.state.index]
    assert all(preds[i] != app.y_test[i] for _, i in app.region(FilmStrip).boxes)   # the strip follows the filter
    key(pygame.K_f)
    app.frame()
    key(pygame.K_x)
    app.frame()
    conf = passed(app).confusion
    t, p = np.argwhere((conf > 1) & ~np.eye(10, dtype=bool))[0]
    click(app.region(ConfusionOverlay).cell_rect(t, p).center)
    app.frame()
    assert app.state.pair_filter == (t, p) and app.state.overlay is None
    for _ in range(min(conf[t, p], 3)):
        i = app.state.index
        assert app.y_test[i] == t and preds[i] == p
        key(pygame.K_RIGHT)
        app.frame()


def test_connection_keys_change_k_and_cycle_the_line_modes(sample):
    app = open_app(sample)
    assert app.state.rank_mode == "relevance"
    acts = app.display.view.acts
    for pair, (_src, dst, val) in enumerate(app.display.view.conns):
        assert len(val) == 60 and (np.abs(val) > 0).all()
        if pair < 2:
            assert (acts[pair + 1][dst] > 0).all(), "a relevance line ends at a switched-off neuron"
    assert app.region(NetworkColumns).lines_drawn() == 180
    key(pygame.K_EQUALS)
    app.frame()
    assert app.state.k == K_STEPS[K_STEPS.index(60) + 1] and app.region(NetworkColumns).lines_drawn() == 3 * app.state.k
    key(pygame.K_MINUS)
    key(pygame.K_MINUS)
    app.frame()
    k = app.state.k
    assert k == K_STEPS[K_STEPS.index(60) - 1]
    key(pygame.K_c)
    app.frame()
    assert app.state.rank_mode == "contribution" and app.display.view.coverage is None
    _, _, val = app.display.view.conns[0]
    contrib = np.abs(app.display.view.x[:, None] * app.display.net.weights[0])
    assert np.allclose(np.sort(np.abs(val)), np.sort(contrib.ravel())[-k:])
    key(pygame.K_c)
    app.frame()
    _, _, val = app.display.view.conns[0]
    assert app.state.rank_mode == "weight"
    assert np.allclose(np.sort(np.abs(val)), np.sort(np.abs(app.display.net.weights[0]).ravel())[-k:])


def test_relevance_lines_show_the_share_of_relevance_they_carry(sample):
    """The percentage between two columns is the share of that pair's relevance."""
    from mnist_live.explain import lrp
    app = open_app(sample)
    rel = lrp.relevance(app.display.net, app.display.view.x, app.display.view.explained, input_rule="z+")
    _, coverage = lrp.top_edges(app.display.net, app.display.view.acts, rel, 60)
    assert np.allclose(app.display.view.coverage, coverage)
    for pair, share in enumerate(coverage):
        assert text_drawn_at(app, f"{100 * share:.0f} %", app.region(NetworkColumns).fs - 2, (255, 150, 40), False,
                             "midbottom",
                             app.region(NetworkColumns).coverage_anchor(pair))


def test_help_overlay_lists_every_row_of_the_key_table(sample):
    app = open_app(sample)
    key(pygame.K_h)
    app.frame()
    assert app.state.overlay == "help"
    drawn = pixels(app, app.region(HelpOverlay).rect)
    assert (drawn == ACCENT).all(axis=2).any()
    help_rect = app.region(HelpOverlay).rect                # its margin is plain: no toolbar cut by its border
    margin = pixels(app, pygame.Rect(help_rect.x, help_rect.y, help_rect.width, 10)).reshape(-1, 3)
    assert (margin == BG).all(axis=1).all()
    for k in KEYS:
        surf = app.text.render(k.label, app.region(HelpOverlay).fs, TEXT, True)
        assert any(s is surf for s in app.text.surfs.values())
    key(pygame.K_ESCAPE)                                    # Esc closes the overlay, does not quit
    app.frame()
    assert app.state.overlay is None and app.state.running


def test_saliency_overlay(sample):
    app = open_app(sample, connections=0)
    before = pixels(app, app.layout.input.rect)
    key(pygame.K_g)
    app.frame()
    assert app.display.view.saliency is not None
    assert (pixels(app, app.layout.input.rect) != before).any()


def test_screenshot_key_writes_a_png(sample, tmp_path, monkeypatch):
    app = open_app(sample)
    monkeypatch.chdir(tmp_path)
    key(pygame.K_s)
    app.frame()
    files = list(tmp_path.glob("screenshot-*.png"))
    assert len(files) == 1 and str(files[0].resolve()) in app.state.toast
    assert pygame.image.load(str(files[0])).get_size() == (1600, 900)


@pytest.mark.slow
def test_idle_window_does_not_redraw_until_something_happens(sample):
    app = open_app(sample)
    settle(app)
    run_until(app, lambda: not app.needs_draw and app.region(Tooltip).heatmap_rect is None)
    for _ in range(5):
        app.frame()
    drawn = app.times.drawn_frames
    for _ in range(30):
        app.frame()
    assert app.times.drawn_frames == drawn, "an idle window kept redrawing"
    key(pygame.K_RIGHT)
    app.frame()                                             # answered in the same frame
    assert app.times.drawn_frames == drawn + 1 and app.state.index == 1


@pytest.mark.slow
def test_rapid_keys_and_resizes_do_not_crash(sample):
    app = open_app(sample)
    rng = np.random.default_rng(0)
    codes = [c for k in KEYS for c in k.codes if c not in (pygame.K_q, pygame.K_ESCAPE, pygame.K_s,
                                                            pygame.K_w, pygame.K_SPACE, pygame.K_n)]
    for _ in range(300):
        key(int(rng.choice(codes)), mod=int(rng.choice([0, pygame.KMOD_SHIFT])))
    app.frame()
    for size in ((1280, 720), (1000, 600), (200, 150), (1920, 1080)):
        app.screen = pygame.display.set_mode(size, pygame.RESIZABLE)
        pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, size=size, w=size[0], h=size[1]))
        app.frame()
        assert app.layout is None if size[0] < MIN_SIZE[0] else app.layout.size == size
    assert app.state.running


# ------------------------------------------------------------------------ layout
SIZES = [(1000, 600), (1280, 720), (1600, 900), (1920, 1080)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("hidden", [(1024, 512), (64,), (256,), (128, 64), (300, 100, 50), (2048,)])
def test_layout_fits_without_overlap(size, hidden):
    lay = compute_layout(*size, hidden)
    window = pygame.Rect((0, 0), size)
    rects = {"header": lay.header, "legend": lay.legend, "panel": lay.panel, "input": lay.input.rect,
             **{f"h{i + 1}": g.rect for i, g in enumerate(lay.hidden)}, "output": lay.output, "strip": lay.strip}
    assert lay.strip is not None, "no room for the film strip"
    for name, r in rects.items():
        assert window.contains(r), name
    names = list(rects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not rects[a].colliderect(rects[b]), (a, b)
    assert lay.output.right <= lay.panel.x - 10
    assert [g.n for g in lay.hidden] == list(hidden)
    assert all(g.rows * g.cols >= g.n > (g.rows - 1) * g.cols for g in lay.hidden)


@pytest.mark.parametrize("size", SIZES)
def test_default_layout_has_no_empty_bands(size):
    lay = compute_layout(*size, (1024, 512))
    label_top = lay.labels_y - 2 * lay.font_size - 6
    assert label_top - lay.toolbar.bottom <= 0.1 * size[1], "empty band above the network"
    above = lay.caption.y if lay.caption is not None else lay.legend.y        # the caption strip is not empty
    assert above - lay.strip.bottom <= 0.1 * size[1], "empty band under the film strip"
    assert lay.hidden[0].cell >= (5 if size[0] < 1100 else 8)


@pytest.mark.parametrize("size", [(1280, 720), (1600, 900)])
def test_panel_text_never_overlaps_even_with_long_names(sample, size, tmp_path, monkeypatch):
    """Catches: a line that wraps (a long model path) and runs into the chart's heading."""
    model = tmp_path / ("a-rather-long-folder-name-" * 3) / "model-trained-for-the-lecture.npz"
    app = open_app(sample, size, load=str(model))         # no training process: the name is only shown
    key(pygame.K_3, pygame.KMOD_SHIFT)                 # a long "explains class 3 ..." line too
    true = int(app.y_test[app.state.index])
    story = [(q / 4, (true + 1) % 10 if q < 5 else true, 0.5) for q in range(12)]   # learned at epoch 2
    app.tele.apply(DigitHistory(index=app.state.index, rows=story))   # and the longest history sentence
    app.tele.n_batches = 469
    app.needs_draw = True
    app.frame()
    drawn = []
    real_blit = app.text.blit

    def recording_blit(target, text, pos, *args, **kwargs):
        rect = real_blit(target, text, pos, *args, **kwargs)
        if app.region(Panel).rect.contains(rect):
            drawn.append((text, rect))
        return rect

    monkeypatch.setattr(app.text, "blit", recording_blit)
    draw_region(app, app.region(Panel))
    texts = [(t, r) for t, r in drawn if t.strip()]
    assert any(t.startswith("model: ") for t, _ in texts) and len(texts) > 15
    told = [t for t, _ in texts if t in history_caption(story, true, app.names, snapshot_namer([], 469))]
    assert len(told) == 1, "the digit's history is told whole, not cut with '...'"
    for i, (a, ra) in enumerate(texts):
        assert app.region(Panel).rect.contains(ra), a
        for b, rb in texts[i + 1:]:
            assert not ra.colliderect(rb), (a, b)


def test_ctrl_digit_and_right_click_explain_the_class_rather_than_another(sample):
    """Catches: the contrast not reaching the relevance, the lines of the plain class, the
    contrast class unmarked, a contrast that outlives the explained class."""
    from mnist_live.explain import lrp
    app = open_app(sample)
    app.state.go(index_where(app, True))
    app.frame()
    pred = app.display.view.pred
    d = (pred + 4) % 10
    key(pygame.K_0 + d, mod=pygame.KMOD_LCTRL)
    app.frame()
    v = app.display.view
    assert app.state.contrast_class == d and v.contrast == d and v.relevance.contrast == d
    acts, zs = lrp.forward_pre(app.display.net, v.x)
    assert v.relevance.logit == pytest.approx(float(zs[-1][pred] - zs[-1][d]), rel=1e-5)
    want = lrp.relevance(app.display.net, v.x, pred, contrast=d, input_rule="z+")
    plain = lrp.relevance(app.display.net, v.x, pred, input_rule="z+")
    conns, _ = lrp.top_edges(app.display.net, v.acts, want, app.state.k)
    for (s1, d1, _), (s2, d2, _) in zip(v.conns, conns):            # the lines are the contrast's
        assert sorted(zip(s1.tolist(), d1.tolist())) == sorted(zip(s2.tolist(), d2.tolist()))
    assert not np.allclose(want.neurons[0], plain.neurons[0])
    (cx, cy), radius = app.region(NetworkColumns).output_neuron(d)
    assert DIM in (pixel(app, (cx + radius + 5, cy)), pixel(app, (cx + radius + 6, cy)))   # marked "rather than"
    assert app.scene().view.explains(app.names) == f"{pred} rather than {d}"
    key(pygame.K_0 + d, mod=pygame.KMOD_LCTRL)                     # again: back to the class on its own
    app.frame()
    assert app.state.contrast_class is None and app.display.view.contrast is None
    click(app.layout.output_rows[d].center, button=3)               # right-click: the same
    app.frame()
    assert app.display.view.contrast == d
    other = (pred + 1) % 10 if (pred + 1) % 10 != d else (pred + 2) % 10
    key(pygame.K_0 + other, mod=pygame.KMOD_SHIFT)                  # explaining another class drops it
    app.frame()
    assert app.display.view.explained == other and app.display.view.contrast is None


def test_clicking_an_output_neuron_explains_that_class_and_again_returns(sample):
    app = open_app(sample)
    pred = app.display.view.pred
    other = (pred + 3) % 10
    click(app.layout.output_rows[other].center)
    app.frame()
    assert app.state.explain_class == other and app.display.view.explained == other
    (cx, cy), radius = app.region(NetworkColumns).output_neuron(other)
    assert pixel(app, (cx + radius + 5, cy)) == ACCENT                 # the explained class is marked
    assert app.display.view.pred == pred                                       # the prediction is unchanged
    key(pygame.K_0 + other, mod=pygame.KMOD_SHIFT)                     # Shift+digit of the same class returns
    app.frame()
    assert app.state.explain_class is None and app.display.view.explained == pred
    key(pygame.K_0 + other, mod=pygame.KMOD_SHIFT)
    app.frame()
    assert app.display.view.explained == other
    key(pygame.K_RIGHT)                                                # a new digit explains its prediction
    app.frame()
    assert app.state.explain_class is None and app.display.view.explained == app.display.view.pred


def test_two_screenshots_in_one_second_get_two_names_and_a_failure_is_said(sample, tmp_path, monkeypatch):
    app = open_app(sample)
    monkeypatch.chdir(tmp_path)
    key(pygame.K_s)
    key(pygame.K_s)
    app.frame()
    files = sorted(tmp_path.glob("screenshot-*.png"))
    assert len(files) == 2
    assert app.outputs.screenshot(app.state, str(tmp_path / "missing" / "x.png")) is None
    assert "could not save screenshot" in app.state.toast and app.errors


@pytest.mark.slow
def test_hover_portrait_shows_that_neurons_prototype_and_top_digits(sample):
    """Catches: another neuron's prototype or top digits in the portrait."""
    app = open_app(sample)
    layer, j = 0, 21
    move(app.region(NetworkColumns).neuron_rect(layer, j).center)
    run_until(app, lambda: passed(app) is not None and passed(app).stats is not None
              and passed(app).stamp == app.display.stamp)
    app.frame()
    acts = app.display.net.forward(app.x_test.astype(np.float32) / 255, return_all=True)[1][:, j]     # (N,)
    want_top = np.argsort(-acts, kind="stable")[:9]
    assert [k for _, k in app.region(Tooltip).top_rects] == want_top.tolist()
    proto = (acts[:, None] * (app.x_test / 255.0)).sum(0) / acts.sum()                          # (784,)
    grey = (255 * proto / proto.max()).astype(np.uint8).reshape(28, 28)
    r = app.region(Tooltip).prototype_rect
    px = r.width // 28
    shown = pixels(app, r)[px // 2::px, px // 2::px, 0].T                                        # (28, 28)
    assert np.abs(shown.astype(int) - grey).max() <= 1
    neighbour = passed(app).stats.prototype(layer, j + 1)
    assert np.abs(shown.astype(int) - (255 * neighbour / neighbour.max()).reshape(28, 28)).max() > 20


@pytest.mark.slow
def test_o_groups_neurons_by_preferred_class_and_they_keep_their_colours(sample):
    app = open_app(sample)
    key(pygame.K_o)
    run_until(app, lambda: passed(app) is not None and passed(app).preferred is not None
              and app.region(NetworkColumns).orders[0] is not None)
    app.frame()
    pref = passed(app).preferred[0]
    order = app.region(NetworkColumns).orders[0]
    assert (np.diff(pref[order]) >= 0).all()                       # bands of classes 0, 1, ..., 9
    grid = app.layout.hidden[0]
    for p in (0, 100, 700):
        move(grid.cell_rect(p).center)
        app.frame()
        assert app.state.hover == (0, int(order[p]))               # hovering a cell finds its neuron
    move((5, 5))
    app.frame()
    a = app.display.view.acts[1]
    j_on, j_off = int(np.argmax(a)), int(np.flatnonzero(a == 0)[0])
    on = pixel(app, app.region(NetworkColumns).neuron_rect(0, j_on).center)
    off = pixel(app, app.region(NetworkColumns).neuron_rect(0, j_off).center)
    assert sum(on) > sum(off) + 200                                # the brightest neuron is bright where it sits


@pytest.mark.slow
def test_atlas_draws_each_neurons_prototype_in_its_cell(sample):
    app = open_app(sample)
    key(pygame.K_a)
    run_until(app, lambda: passed(app) is not None and passed(app).stats is not None)
    app.frame()
    stats, grid = passed(app).stats, app.layout.hidden[0]
    bright = [j for j in range(grid.n) if stats.prototype(0, j).max() > 0][:3]
    for j in bright:                           # the prototype's ink is where the cell is bright
        cell = pixels(app, app.region(NetworkColumns).neuron_rect(0, j))[..., 0].astype(float)
        proto = stats.prototype(0, j).reshape(28, 28) / stats.prototype(0, j).max()
        size = cell.shape[0]
        small = proto.reshape(size, 28 // size, size, 28 // size).mean((1, 3)) if 28 % size == 0 else None
        inner = cell[1:-2, 1:-2]
        assert inner.max() > 60, j
        if small is not None:
            assert np.corrcoef(inner.ravel(), small.T[1:-2, 1:-2].ravel())[0, 1] > 0.8


def test_atlas_cell_p_shows_neuron_order_p_upright_and_scaled_to_its_own_peak(sample):
    """Each neuron's prototype gets a mark at its own (row, column); at 28 px a cell the atlas
    is not resampled, so each cell must show its neuron's mark where it is, at full
    brightness whatever the prototype's scale, in the order the grid shows neurons in."""
    app = open_app(sample)
    n = app.layout.hidden[0].n
    rows, cols = app.layout.hidden[0].rows, app.layout.hidden[0].cols
    spots = [(j % 23 + 2, (5 * j) % 19 + 6) for j in range(n)]          # (row, col): never on the diagonal alone

    class Stats:                                                          # what the sweep's statistics give
        def prototypes(self, layer):
            p = np.zeros((n, 784), np.float32)
            for j, (r, c) in enumerate(spots):
                p[j, r * 28 + c] = 0.01 * (j + 1)                         # each its own scale
            return p
    grid = types.SimpleNamespace(rows=rows, cols=cols, n=n, cell=28, rect=pygame.Rect(0, 0, cols * 28, rows * 28))
    order = np.random.default_rng(0).permutation(n)
    app.region(NetworkColumns).set_orders([order] + [None] * (len(app.layout.hidden) - 1))
    atlas = pygame.surfarray.array3d(app.region(NetworkColumns).atlas_surface(Stats(), 0, grid))[..., 0].T   # (y, x)
    for p in range(n):
        cell = atlas[(p // cols) * 28:(p // cols + 1) * 28, (p % cols) * 28:(p % cols + 1) * 28]
        r, c = np.unravel_index(cell[:27, :27].argmax(), (27, 27))
        assert (r, c) == spots[order[p]] and cell[r, c] >= 250, p


@pytest.mark.slow
def test_v_dreams_the_explained_class_and_esc_returns(sample):
    app = open_app(sample)
    c = app.display.view.explained
    key(pygame.K_v)
    app.frame()
    assert app.state.dream == ("class", c)
    run_until(app, lambda: app.display.dreamer.step_no >= 60)
    app.frame()
    from mnist_live.explain import lrp
    logit = lambda x: lrp.forward_pre(app.display.net, x)[1][-1][c]       # noqa: E731
    assert logit(app.display.view.x) > logit(np.zeros(784, np.float32)) + 1   # the dream raises the class's score
    g = app.layout.input
    shown = pixels(app, g.rect)[g.cell // 2::g.cell, g.cell // 2::g.cell, 0].T.reshape(784)
    assert np.abs(shown.astype(int) - (app.display.view.x * 255).astype(int)).max() <= 1   # the dream is what is shown
    key(pygame.K_ESCAPE)
    app.frame()
    assert app.state.dream is None and app.state.running
    assert np.array_equal(app.display.view.x, to_float(app.x_test[app.state.index]))


@pytest.mark.slow
def test_map_points_sit_in_their_class_colour_and_a_click_opens_one(sample):
    from mnist_live.window.regions.palette import CLASS_COLORS
    app = open_app(sample)
    key(pygame.K_p)
    run_until(app, lambda: app.display.map.points is not None)
    run_until(app, lambda: not app.needs_draw)                     # the points have glided into place
    app.needs_draw = True
    app.frame()
    m, view = app.display.map, app.region(MapOverlay)
    assert app.state.overlay == "map" and m.layer == len(app.config.hidden) - 1
    hidden = app.display.net.forward(app.x_test[m.subset].astype(np.float32) / 255, return_all=True)[-2]
    from mnist_live.explain import projection
    want = projection.pca_2d(hidden)                                   # the map is the layer's PCA (up to alignment)
    assert np.allclose(np.abs(np.corrcoef(want[:, 0], m.points[:, 0])[0, 1]), 1, atol=1e-3) or \
        np.allclose(np.abs(np.corrcoef(want[:, 0], m.points[:, 1])[0, 1]), 1, atol=1e-3)
    right = np.flatnonzero(m.predictions == app.y_test[m.subset])
    for i in right[:20]:                                            # filled dots in the class colour
        colour = CLASS_COLORS[int(app.y_test[m.subset[i]])]
        near = pixels(app, pygame.Rect(*(view.screen_points[i].astype(int) - 1), 3, 3)).reshape(-1, 3)
        assert (near == colour).all(axis=1).any()
    i = int(np.flatnonzero(m.subset != app.state.index)[5])
    click(view.screen_points[i])
    app.frame()
    k = view.nearest(view.screen_points[i])
    assert app.state.index == k and app.state.overlay is None


def test_clip_frames_carry_only_what_changed_and_decode_to_each_picture(tmp_path):
    """Catches: a changed pixel left transparent (the old picture shows through), the
    transparent index not declared, palette indices renumbered by the encoder, a frame's
    delay lost."""
    from PIL import Image

    from mnist_live.training.files import write_gif
    from mnist_live.window.clips import CLIP_SAME, clip_frame
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (40, 3), dtype=np.uint8)            # few colours: reduced losslessly
    pictures = [colours[rng.integers(0, 40, (36, 64))]]
    for i in range(5):
        nxt = pictures[-1].copy()
        nxt[4 * i:4 * i + 6, 10 * i:10 * i + 9] = colours[(7 * i + 3) % 40]   # a small change
        pictures.append(nxt)
    images, previous = [], None
    for p in pictures:
        images.append((clip_frame(p, previous), 20 + len(images)))
        previous = p
    assert all(len(image) < len(images[0][0]) / 3 for image, _ in images[1:])   # a change costs little
    with open(tmp_path / "c.gif", "wb") as f:
        write_gif(f, (64, 36), iter(images), transparent=CLIP_SAME)
    with Image.open(tmp_path / "c.gif") as gif:
        assert gif.n_frames == len(pictures)
        for i, p in enumerate(pictures):
            gif.seek(i)
            assert gif.info["duration"] == 10 * (20 + i)
            assert np.array_equal(np.asarray(gif.convert("RGB")), p), f"frame {i} differs"


@pytest.mark.slow
def test_shift_s_records_an_animated_gif_that_opens_with_its_frames(sample, tmp_path, monkeypatch):
    from PIL import Image
    app = open_app(sample)
    monkeypatch.chdir(tmp_path)
    key(pygame.K_s, mod=pygame.KMOD_SHIFT)
    app.frame()
    rec = app.outputs.recorder
    assert rec is not None and "recording a clip" in app.state.toast
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:                     # about 7 frames at 5 a second
        key(pygame.K_RIGHT)
        app.frame()
        time.sleep(0.02)
    key(pygame.K_s, mod=pygame.KMOD_SHIFT)
    app.frame()
    assert app.outputs.recorder is None
    message = rec.wait()
    assert "clip saved" in message
    with Image.open(rec.path) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(rec.frames) >= 5 and gif.size == (640, 360)
        first = np.asarray(gif.convert("RGB"))
        gif.seek(gif.n_frames - 1)
        assert not np.array_equal(first, np.asarray(gif.convert("RGB")))   # the digits changed on screen


def test_a_digits_history_is_told_in_phrasings_that_get_shorter_and_keep_the_facts():
    names = [str(d) for d in range(10)]
    learned = [(0.0, 9, 0.1), (0.5, 9, 0.3), (1.0, 4, 0.8), (2.0, 4, 0.9)]       # (progress, pred, p_true), true 4
    when = snapshot_namer([], n_batches=100)
    says = history_caption(learned, 4, names, when)
    assert says[0] == "read as 9 until epoch 1, batch 50, right since after epoch 1"
    assert all(len(a) > len(b) for a, b in zip(says, says[1:]))
    assert all("right since after epoch 1" in s for s in says)                     # the fact every phrasing keeps
    untrained = history_caption(learned[:1] + learned[2:], 4, names, when)
    assert untrained[0] == "read as 9 when untrained, right since after epoch 1"
    forgot = [(0.0, 4, 0.6), (1.0, 4, 0.7), (2.0, 7, 0.2)]
    assert history_caption(forgot, 4, names, when) == ("now read as 7; right at 2 of 3 snapshots",
                                                        "now 7; right at 2 of 3")
    assert history_caption(forgot[:2], 4, names, when)[-1] == "right at every snapshot"
    assert history_caption(forgot[2:], 4, names, when)[-1] == "always wrong, now 7"


def test_snapshots_are_named_from_the_trainers_positions_when_batches_per_epoch_are_unknown():
    """A loaded model explored with --no-train gets no batch reports (n_batches stays 1):
    a snapshot at batch 3 of 469 must not be called 'untrained'."""
    q = 3 / 469
    when = snapshot_namer([(0, 0, 0.0), (0, 3, q), (1, 0, 1.0)], n_batches=1)
    assert [when(0.0), when(q), when(1.0)] == ["untrained", "epoch 1, batch 3", "after epoch 1"]
    rows = [(0.0, 0, 0.1), (q, 7, 0.9), (1.0, 7, 0.95)]
    assert history_caption(rows, 7, [str(d) for d in range(10)], when)[0] == \
        "read as 0 when untrained, right since epoch 1, batch 3"
