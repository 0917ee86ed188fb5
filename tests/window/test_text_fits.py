"""Every text fits (issue 32, item 14): at 640x480, 1280x720 and 1600x900 no text on the
whole window runs into another or is cut, with the hardest cases on screen at once: a
long message in the header, a three-digit epoch count, a rewound snapshot among
learning-rate changes on the chart, a digit's history over 500 snapshots, and the new
views (toolbar, settings form, large chart, tour)."""
import numpy as np
import pygame
import pytest

from mnist_live.training.messages import DigitHistory
from mnist_live.window.regions.panel import Panel
from test_newcomer import assert_no_overlap_or_cut, drawn_texts, trained_history
from window_driver import open_app, run_until, settle

SIZES = [(640, 480), (1280, 720), (1600, 900)]
LONG_TOAST = ("no earlier runs to overlay: runs library /home/someone/scikit_learn_data/mnist_viz/runs.sqlite3: "
              "no runs recorded yet (no such file)")


def hardest(app):
    """The window with the texts that used to be cut or to overlap."""
    trained_history(app)
    tele, st = app.tele, app.state
    app.config = app.config.replace(no_train=False, epochs=500)
    tele.epoch, tele.batch, tele.n_batches = 123, 469, 469
    tele.rate_samples.extend([(0.0, 0), (1.0, 62_992)])
    tele.snapshots = [(e // 40, e % 40, e / 40) for e in range(0, 80)] + [(1, 20, 1.51)]
    st.rewind = len(tele.snapshots) - 1                      # rewound right among the two lr changes
    rows = [(q / 100, int(st.y_test[st.index]) if q % 3 else 1, 0.6) for q in range(500)]
    tele.apply(DigitHistory(index=st.index, rows=rows))
    st.say(LONG_TOAST, 30)
    st.touch()


def whole_window(app, monkeypatch):
    app.needs_draw = True
    app.frame()
    for region in app.regions:
        region._picture = None
    return drawn_texts(app, monkeypatch, lambda: app.draw(app.screen))


@pytest.mark.parametrize("size", SIZES)
def test_the_whole_window_at_its_hardest_has_no_overlapping_or_cut_text(sample, size, monkeypatch):
    app = open_app(sample, size)
    settle(app)
    hardest(app)
    texts = whole_window(app, monkeypatch)
    assert_no_overlap_or_cut(texts, f"window {size}")
    assert any(t.startswith("no earlier runs") for t, _ in texts)                # the message is on screen
    panel = app.region(Panel)
    assert panel.digit_shown == (size != (640, 480))      # the smallest window: the digit's part gives way
    assert not panel.digit_shown or panel.history_cells and all(
        panel.rect.x <= r.x and r.right <= panel.rect.right - 14 for r, _ in panel.history_cells)  # never off its side
    window = pygame.Rect((0, 0), size)
    below = [(t, r) for t, r in texts if not window.contains(r)]
    assert not below, below                               # nothing runs off the window (the panel's bars included)
    assert window.contains(panel.bars.rect) and panel.bars.rect.bottom <= panel.rect.bottom


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", [pygame.K_F2, pygame.K_z, pygame.K_F3, pygame.K_h])
def test_the_new_views_have_no_overlapping_or_cut_text(sample, size, k, monkeypatch):
    app = open_app(sample, size)
    settle(app)
    trained_history(app)
    app.config = app.config.replace(no_train=False)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode="", scancode=0))
    app.frame()
    assert app.state.overlay is not None
    texts = whole_window(app, monkeypatch)
    covering = next(r for r in app.layers() if r.overlay == app.state.overlay)
    if not covering.covers_network:                  # the help and the tour: their own texts (they cover the rest)
        texts = drawn_texts(app, monkeypatch, lambda: covering.draw(app.screen, app.frame_scene))
    assert_no_overlap_or_cut(texts, f"{size} {k}")
    assert all(pygame.Rect((0, 0), size).contains(r) for _, r in texts
               if size != (640, 480) or r.x < app.layout.panel.x)       # as above
    if k == pygame.K_F2:
        form = [r for t, r in texts if t.startswith("Start new run")]
        assert form and app.layout.network.contains(form[0])


@pytest.mark.parametrize("size", SIZES[1:])
def test_the_charts_labels_sit_on_the_background_with_no_line_through_them(sample, size, monkeypatch):
    """The learning-rate labels and the rewound label are drawn last, on the background:
    no curve, marker line or each other runs through them."""
    from mnist_live.window.regions.palette import BG, LOSS_COLOR, TEXT
    app = open_app(sample, size)
    settle(app)
    hardest(app)
    texts = whole_window(app, monkeypatch)
    chart = app.region(Panel).chart.rect
    labels = [(t, r) for t, r in texts if chart.contains(r) and (t.startswith("lr ") or t == "rewound")]
    assert {t for t, _ in labels} >= {"lr 0.002", "lr 0.004", "rewound"}
    for t, r in labels:
        want = pygame.Surface(r.size)
        want.fill(BG)
        want.blit(app.text.render(t, app.region(Panel).chart.fs - 1, LOSS_COLOR if t == "rewound" else TEXT), (0, 0))
        got = pygame.surfarray.array3d(app.screen.subsurface(r))
        assert np.array_equal(pygame.surfarray.array3d(want), got), t


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("view", ["backward", "updates", "step", "health", "maths"])
def test_the_views_of_learning_have_no_overlapping_or_cut_text(sample, size, view, monkeypatch):
    """The backward view (J), the change of a step (Y), a step played in step mode (its batch
    and losses under the input), training health (F4) and the maths on hover."""
    from test_learning_pictures import health, record, training_window

    from mnist_live.window.regions.network import NetworkColumns
    from window_driver import move
    app = training_window(sample)
    app.layout = None
    app.screen = pygame.display.set_mode(size)
    app.frame()
    if view == "backward":
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_j, mod=0, unicode="", scancode=0))
    elif view == "updates":
        app.tele.step = record(app, (0, 5), neuron=11)
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_y, mod=0, unicode="", scancode=0))
    elif view == "step":
        app.state.pause_requested = True
        app.tele.step = record(app, (0, 5), neuron=11, detailed=True)
        app.frame()
        app.display.play.started -= 1.2                      # the batch's loss, its digits under the input
    elif view == "health":
        for i in range(12):
            app.tele.apply(health(i / 4, (0.2, 0.7, float("nan")), (1e-3, 1e-2, 3e-3)))
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_F4, mod=0, unicode="", scancode=0))
    else:                                                    # a line (a neuron's portrait has its own test)
        net = app.region(NetworkColumns)
        src, dst, _ = app.display.view.conns[1]
        move((net.centers[1][src[-1]] + net.centers[2][dst[-1]]) / 2)
    app.frame()
    app.frame()
    texts = whole_window(app, monkeypatch)
    if view == "maths":                                      # a tooltip: what it covers is not on screen
        from mnist_live.window.regions.maths_view import MathsTip, readable, wrap
        tip = app.region(MathsTip)
        box = tip.box
        assert box is not None and pygame.Rect((0, 0), size).contains(box)
        pieces = [p for m in app.frame_scene.maths for p in wrap(app.text, readable(m), tip.fs - 2,
                                                                  tip.rect.width - 36)]
        own = [(t, r) for t, r in texts if box.contains(r) and t in pieces]
        assert len(own) == len(pieces)
        texts = own + [(t, r) for t, r in texts if not box.colliderect(r)]
    assert_no_overlap_or_cut(texts, f"{size} {view}")
    outside = [(t, r) for t, r in texts if not pygame.Rect((0, 0), size).contains(r)
               and (size != (640, 480) or r.x < app.layout.panel.x)]
    assert not outside, outside


@pytest.mark.parametrize("size", SIZES)
def test_no_training_explains_an_empty_chart_and_never_lies_over_a_loaded_runs_curves(sample, size):
    """A --no-train window: "no training in this session" says why the chart is empty; on a
    loaded model's curves it is not written (the panel names the model and how long it
    trained). Catches: the words drawn over the loss curve (every README picture of a loaded
    model showed the loss line through them)."""
    from mnist_live.window.regions.charts import NO_TRAINING
    from mnist_live.window.regions.palette import DIM
    app = open_app(sample, size)
    chart = app.region(Panel).chart
    label = app.text.render(NO_TRAINING, chart.fs + 2, DIM)
    r = label.get_rect(center=chart.plot_rect().center)
    letters = (pygame.surfarray.array_alpha(label) == 255).sum()             # the letters' solid pixels
    for curve in ([], [(float(q), float(2.3 - q)) for q in np.linspace(0.0, 2.0, 400)]):     # across the middle
        app.tele.loss_curve = curve
        app.tele.version += 1
        app.needs_draw = True
        run_until(app, lambda: app.panel.seen[0] == app.tele.version)     # the panel follows within 0.3 s
        app.needs_draw = True
        app.frame()
        drawn = (pygame.surfarray.array3d(app.screen.subsurface(r)).reshape(-1, 3) == DIM).all(axis=1).sum()
        if curve:
            assert drawn == 0                                       # over a loaded run's curves: not a letter of it
        else:
            assert drawn >= 0.9 * letters                           # an empty chart says why


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("where", [(0, 5), (0, 1000), (1, 3), (1, 500)])
def test_the_maths_of_a_hovered_neuron_never_covers_its_portrait(sample, size, where):
    """Hovering a hidden neuron shows its portrait and its maths: the two boxes apart, and
    neither on the pointer, the portrait inside the window. Catches: the maths box drawn over
    the portrait's input weights, prototype and top digits (seen at 1280x720 and 1600x900);
    the portrait 124 px off the window's left edge at 640x480."""
    from test_learning_pictures import training_window

    from mnist_live.window.regions.maths_view import MathsTip
    from mnist_live.window.regions.network import NetworkColumns
    from mnist_live.window.regions.portrait import Tooltip
    from window_driver import move
    app = training_window(sample)
    app.layout = None
    app.screen = pygame.display.set_mode(size)
    app.frame()
    layer, j = where
    point = app.region(NetworkColumns).neuron_rect(layer, j).center
    move(point)
    for _ in range(3):
        app.frame()
    assert app.state.hover == (layer, j) and app.frame_scene.maths
    portrait, maths = app.region(Tooltip).box, app.region(MathsTip).box
    assert portrait is not None and maths is not None
    assert pygame.Rect((0, 0), size).contains(portrait), (size, portrait)       # at 640x480 it ran off the left
    assert not maths.colliderect(portrait), (size, where, maths, portrait)
    assert not maths.collidepoint(point)
