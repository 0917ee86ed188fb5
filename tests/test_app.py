"""The window, driven like a user would: real pygame events posted into the running
app loop (dummy video driver), then assertions on the app state and on pixels."""
import time

import numpy as np
import pygame
import pytest

import data_loader
from config import Config
from visualization import (ACCENT, RIGHT, WRONG, App, K_STEPS, SPEEDS, compute_layout, receptive_field,
                           strongest_connections)


def key(k, mod=0, unicode=""):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=mod, unicode=unicode, scancode=0))


def pixels(app, rect):
    """A copy of the screen's pixels in rect, (w, h, 3)."""
    return pygame.surfarray.array3d(app.screen.subsurface(rect)).copy()


def run_until(app, condition, timeout=20.0):
    """Run frames until condition() holds; fail if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.frame()
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("condition not reached within %.0f s" % timeout)


@pytest.fixture(scope="module")
def sample():
    return data_loader.load_dataset("mnist", offline=True, log=lambda *a: None)


def open_app(config, data, size=(1600, 900)):
    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode(size, pygame.RESIZABLE)
    app = App(config, data, screen)
    run_until(app, lambda: app.weights_seen and app.state.per_class is not None)
    return app


@pytest.fixture(scope="module")
def explore(sample):
    """An untrained network explored with --no-train: it makes plenty of mistakes."""
    app = open_app(Config(no_train=True, seed=1), sample)
    run_until(app, lambda: app.sweep.predictions is not None)
    yield app
    app.close()
    pygame.quit()


def test_input_digit_is_true_greyscale_and_upright(explore):
    app = explore
    app.state.k = 0                      # no lines over the digit
    app.go(0)
    app.frame()
    g = app.layout.input
    img = app.data.x_test[0].reshape(28, 28)
    # every pixel of the 28x28 image appears at its own (row, column) cell, grey = value
    for r in range(0, 28, 3):
        for c in range(0, 28, 3):
            x = g.rect.x + int((c + 0.5) * g.cell)
            y = g.rect.y + int((r + 0.5) * g.cell)
            assert tuple(app.screen.get_at((x, y)))[:3] == (img[r, c],) * 3
    # an asymmetric check a transposed or flipped picture would fail
    assert img.T.tolist() != img.tolist()


def test_arrow_keys_page_home_end(explore):
    app = explore
    app.go(10)
    key(pygame.K_RIGHT)
    app.frame()
    assert app.state.index == 11
    key(pygame.K_LEFT)
    key(pygame.K_LEFT)
    app.frame()
    assert app.state.index == 9
    key(pygame.K_PAGEDOWN)
    app.frame()
    assert app.state.index == 109
    key(pygame.K_PAGEUP)
    key(pygame.K_PAGEUP)
    app.frame()
    assert app.state.index == 0
    key(pygame.K_END)
    app.frame()
    assert app.state.index == len(app.y_test) - 1
    key(pygame.K_HOME)
    app.frame()
    assert app.state.index == 0


def test_digit_keys_jump_to_next_of_that_class(explore):
    app = explore
    app.go(0)
    seen = set()
    for d in range(10):
        key(pygame.K_0 + d)
        app.frame()
        assert app.y_test[app.state.index] == d
        seen.add(app.state.index)
    key(pygame.K_KP7)                                    # the keypad's digits work too
    app.frame()
    assert app.y_test[app.state.index] == 7
    key(pygame.K_3)
    app.frame()
    first = app.state.index
    key(pygame.K_3)
    app.frame()
    assert app.y_test[app.state.index] == 3 and app.state.index != first


def test_sweep_predictions_match_the_workers_evaluation(explore):
    # the confusion matrix, M and the filters use these; they must be the current weights'
    app = explore
    preds = app.predictions()
    np.testing.assert_array_equal(preds, app.net.predict(app.x_test))
    assert abs((preds == app.y_test).mean() - app.state.test_accuracy) < 1e-9


def test_m_lands_on_misclassified_and_shift_m_goes_back(explore):
    app = explore
    app.go(0)
    key(pygame.K_m)
    app.frame()
    i = app.state.index
    truth = app.y_test[i]
    pred = app.net.forward(app.sample()).argmax()
    assert pred != truth                                   # wrong under the current weights
    key(pygame.K_m)
    app.frame()
    j = app.state.index
    assert j > i
    key(pygame.K_m, mod=pygame.KMOD_SHIFT)
    app.frame()
    assert app.state.index == i


def test_mistakes_only_browsing(explore):
    app = explore
    key(pygame.K_f)
    app.frame()
    assert app.state.mistakes_only
    preds = app.sweep.predictions
    for _ in range(5):
        key(pygame.K_RIGHT)
        app.frame()
        assert preds[app.state.index] != app.y_test[app.state.index]
    # digit keys keep to the filter: try the class the network gets right most often
    right = [int(((app.y_test == d) & (preds == d)).sum()) for d in range(10)]
    d = max((d for d in range(10) if ((app.y_test == d) & (preds != d)).any()), key=lambda d: right[d])
    assert right[d] > 0
    for _ in range(5):
        key(pygame.K_0 + d)
        app.frame()
        i = app.state.index
        assert app.y_test[i] == d and preds[i] != d
    key(pygame.K_f)
    app.frame()
    assert not app.state.mistakes_only


def test_random_digit(explore):
    app = explore
    seen = set()
    for _ in range(5):
        key(pygame.K_r)
        app.frame()
        seen.add(app.state.index)
    assert len(seen) > 1


def test_connection_count_equals_k_per_pair_and_keys_change_k(explore):
    app = explore
    app.go(0)
    app.state.k = 60
    app.state.dirty = True
    app.frame()
    conns = app.view["conns"]
    assert [len(v) for _, _, v in conns] == [60, 60, 60]
    assert app.draw_connections(app.screen) == 180
    key(pygame.K_EQUALS)
    app.frame()
    assert app.state.k == K_STEPS[K_STEPS.index(60) + 1]
    assert [len(v) for _, _, v in app.view["conns"]] == [app.state.k] * 3
    key(pygame.K_MINUS)
    key(pygame.K_MINUS)
    app.frame()
    assert app.state.k == K_STEPS[K_STEPS.index(60) - 1]


def test_c_switches_ranking_between_contribution_and_weight(explore):
    app = explore
    app.state.k = 20
    app.state.rank_mode = "contribution"
    app.state.dirty = True
    app.frame()
    src, dst, val = app.view["conns"][0]
    x = app.view["x"]
    W1 = app.net.weights[0]
    contrib = np.abs(x[:, None] * W1)
    assert np.allclose(np.sort(np.abs(val)), np.sort(contrib.ravel())[-20:])
    key(pygame.K_c)
    app.frame()
    assert app.state.rank_mode == "weight"
    src, dst, val = app.view["conns"][0]
    assert np.allclose(np.sort(np.abs(val)), np.sort(np.abs(W1).ravel())[-20:])
    key(pygame.K_c)
    app.frame()
    assert app.state.rank_mode == "contribution"


def test_panel_shows_ten_accuracy_bars(explore):
    app = explore
    app.frame()
    bars = app.panel_bars
    assert len(bars) == 10
    for rect, acc in zip(bars, app.state.per_class):
        if acc > 0.05:
            x = rect.x + max(1, int(rect.width * acc) // 2)
            assert tuple(app.screen.get_at((x, rect.centery)))[:3] == ACCENT


def test_help_overlay_lists_every_key(explore):
    app = explore
    key(pygame.K_h)
    app.frame()
    assert app.state.show_help
    for k in ("Left / Right", "PgUp / PgDn", "Home / End", "0 - 9", "M / Shift+M", "Space", "[ / ]",
              "+ / -", "Esc / Q", "H / F1", "D", "S", "W", "X", "G", "F", "R", "N", "C"):
        assert any(s[0] == k for s in app.text.surfs), k
    key(pygame.K_F1)
    app.frame()
    assert not app.state.show_help


def test_hover_shows_receptive_field_of_the_right_neuron(explore):
    app = explore
    app.frame()
    grid = app.layout.hidden[0]
    j = 37
    cx, cy = grid.centers()[j]
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=(int(cx), int(cy)), rel=(0, 0), buttons=(0, 0, 0)))
    app.frame()
    assert app.state.hover == (0, j)
    assert any(s[0].startswith(f"Hidden 1, neuron {j}") for s in app.text.surfs)
    grid2 = app.layout.hidden[1]
    cx, cy = grid2.centers()[5]
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=(int(cx), int(cy)), rel=(0, 0), buttons=(0, 0, 0)))
    app.frame()
    assert app.state.hover == (1, 5)
    rf = receptive_field(app.net.weights, 1, 5)
    assert np.allclose(rf.ravel(), app.net.weights[0] @ app.net.weights[1][:, 5], atol=1e-4)
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=(5, 5), rel=(0, 0), buttons=(0, 0, 0)))
    app.frame()
    assert app.state.hover is None


def test_confusion_matrix_click_filters_to_that_pair(explore):
    app = explore
    key(pygame.K_x)
    app.frame()
    assert app.state.show_confusion
    preds = app.sweep.predictions
    conf = np.zeros((10, 10), int)
    np.add.at(conf, (app.y_test, preds), 1)
    off = np.argwhere((conf > 1) & ~np.eye(10, dtype=bool))
    t, p = off[0]
    r = app.confusion_rect()
    cell = r.width / 10
    pos = (int(r.x + (p + 0.5) * cell), int(r.y + (t + 0.5) * cell))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1))
    app.frame()
    assert app.state.pair_filter == (t, p)
    for _ in range(min(conf[t, p], 4)):
        i = app.state.index
        assert app.y_test[i] == t and preds[i] == p
        key(pygame.K_RIGHT)
        app.frame()
    key(pygame.K_f)        # F leaves the filter: back to all digits
    app.frame()
    assert app.state.pair_filter is None and not app.state.mistakes_only


def test_film_strip_click_opens_that_digit_and_follows_the_filter(explore):
    app = explore
    app.go(50)
    app.frame()
    hits = app.strip_hits
    assert len(hits) >= 8 and any(idx == 50 for _, idx in hits)
    box, idx = hits[-1]
    assert idx != 50
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=box.center, button=1))
    app.frame()
    assert app.state.index == idx
    key(pygame.K_f)                                       # mistakes only: the strip shows mistakes
    app.frame()
    preds = app.sweep.predictions
    assert all(preds[i] != app.y_test[i] for _, i in app.strip_hits)
    key(pygame.K_f)
    app.frame()


def test_saliency_toggle(explore):
    app = explore
    app.go(0)
    app.state.k = 0
    app.frame()
    before = pixels(app, app.layout.input.rect)
    key(pygame.K_g)
    app.frame()
    assert app.state.show_saliency and app.view["saliency"] is not None
    after = pixels(app, app.layout.input.rect)
    assert (before != after).any()
    key(pygame.K_g)
    app.frame()
    assert app.view["saliency"] is None


def test_drawing_mode_updates_prediction_live_and_survives_the_edge(explore):
    app = explore
    key(pygame.K_d)
    app.frame()
    assert app.state.drawing
    r = app.layout.input.rect
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(r.centerx, r.y + 20), button=1))
    for y in range(r.y + 20, r.bottom + 40, 6):          # a vertical stroke, off the bottom edge
        pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=(r.centerx, y), rel=(0, 6), buttons=(1, 0, 0)))
    app.frame()
    assert app.state.canvas.sum() > 0
    x = app.view["x"]
    assert x.sum() > 0
    assert app.view["acts"][1].any()
    # right button erases
    inked = app.state.canvas.sum()
    for y in range(r.y, r.bottom, 3):
        pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=(r.centerx, y), rel=(0, 3), buttons=(0, 0, 1)))
    app.frame()
    assert app.state.canvas.sum() < 0.5 * inked
    key(pygame.K_BACKSPACE)
    app.frame()
    assert app.state.canvas.sum() == 0
    key(pygame.K_d)
    app.frame()
    assert not app.state.drawing


def test_screenshot_key_writes_timestamped_png(explore, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    key(pygame.K_s)
    explore.frame()
    files = list(tmp_path.glob("screenshot-*.png"))
    assert len(files) == 1
    assert str(files[0].resolve()) in explore.state.toast
    assert pygame.image.load(str(files[0])).get_size() == (1600, 900)


def test_a_failed_screenshot_is_said_and_recorded(explore, tmp_path):
    before = len(explore.errors)
    assert explore.save_screenshot(str(tmp_path / "missing" / "x.png")) is None
    assert "could not save screenshot" in explore.state.toast
    assert len(explore.errors) == before + 1 and explore.metrics(None)["errors"]
    explore.errors.clear()


def test_w_saves_the_model(explore, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    key(pygame.K_w)
    run_until(explore, lambda: (tmp_path / "mnist_model.npz").exists() and "saved" in explore.state.toast)
    with np.load(tmp_path / "mnist_model.npz", allow_pickle=False) as f:
        assert f["W1"].shape == (784, 1024)
        np.testing.assert_array_equal(f["W1"], explore.net.weights[0])


def test_rapid_keys_and_resize_do_not_crash(explore):
    app = explore
    rng = np.random.default_rng(0)
    keys = [pygame.K_RIGHT, pygame.K_LEFT, pygame.K_PAGEUP, pygame.K_PAGEDOWN, pygame.K_m, pygame.K_r,
            pygame.K_c, pygame.K_EQUALS, pygame.K_MINUS, pygame.K_x, pygame.K_g, pygame.K_d, pygame.K_f,
            pygame.K_h, pygame.K_HOME, pygame.K_END, pygame.K_5, pygame.K_BACKSPACE, pygame.K_LEFTBRACKET]
    for _ in range(300):
        key(int(rng.choice(keys)), mod=int(rng.choice([0, pygame.KMOD_SHIFT])))
    app.frame()
    for size in ((1280, 720), (900, 600), (200, 150), (1600, 900)):
        app.screen = pygame.display.set_mode(size, pygame.RESIZABLE)
        pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, size=size, w=size[0], h=size[1]))
        app.frame()
        assert app.layout is None if size[0] < 640 else app.layout.size == size
    assert app.state.running


@pytest.mark.parametrize("size", [(1280, 720), (1600, 900), (1920, 1080)])
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
    for name in rects:
        if name not in ("header", "legend", "panel", "strip"):
            assert lay.network.contains(rects[name]), name
    assert lay.output.right <= lay.panel.x - 10         # output labels never run under the panel
    assert [g.n for g in lay.hidden] == list(hidden)
    if hidden == (1024, 512):
        assert lay.hidden[0].rows * lay.hidden[0].cols == 1024 and lay.hidden[1].cols == 16


def test_layout_for_other_hidden_sizes():
    lay = compute_layout(1280, 720, (300, 100, 50))
    assert [g.n for g in lay.hidden] == [300, 100, 50]
    for a, b in zip(lay.hidden, lay.hidden[1:]):
        assert a.rect.right < b.rect.x


def test_strongest_connections_ranks_by_contribution():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 4)).astype(np.float32)
    a = np.array([0, 2, 0, 1, 0.5], np.float32)
    (src, dst, val), = strongest_connections([W], [a], 3)
    c = a[:, None] * W
    order = np.argsort(np.abs(c).ravel())[-3:]
    assert list(zip(src, dst)) == [divmod(int(i), 4) for i in order]
    assert np.allclose(val, c.ravel()[order])


@pytest.fixture(scope="module")
def training(sample):
    app = open_app(Config(epochs=50, batch_size=64, seed=2), sample)
    yield app
    app.close()


def test_training_changes_the_picture_and_space_n_brackets_control_it(training):
    app = training
    app.go(0)
    app.state.k = 0
    app.frame()
    grid = app.layout.hidden[0].rect
    first = pixels(app, grid)
    w_first = app.net.weights[0].copy()
    run_until(app, lambda: app.state.batch > 20 and not np.array_equal(w_first, app.net.weights[0]))
    app.state.dirty = True
    app.frame()
    now = pixels(app, grid)
    assert (first != now).any(), "hidden-layer picture did not change while training"
    # Space pauses: the batch counter stops
    key(pygame.K_SPACE)
    app.frame()
    assert app.state.paused
    run_until(app, lambda: app.worker_paused)
    frozen = (app.state.epoch, app.state.batch)
    time.sleep(0.5)
    app.frame()
    assert (app.state.epoch, app.state.batch) == frozen
    # N trains exactly one batch
    w = app.net.weights[1].copy()
    key(pygame.K_n)
    run_until(app, lambda: not np.array_equal(w, app.net.weights[1]))
    time.sleep(0.3)
    app.frame()
    assert app.state.batch == frozen[1] + 1 or app.state.epoch == frozen[0] + 1
    # [ slows down, ] speeds up again
    key(pygame.K_LEFTBRACKET)
    app.frame()
    assert app.state.speed == 1
    key(pygame.K_RIGHTBRACKET)
    app.frame()
    assert app.state.speed == 0
    key(pygame.K_SPACE)
    app.frame()
    assert not app.state.paused
    b = app.state.batch
    run_until(app, lambda: app.state.batch != b)
    # slowest motion (1 s per batch) still pauses at once: the worker waits on its commands
    for _ in range(len(SPEEDS)):
        key(pygame.K_LEFTBRACKET)
    app.frame()
    assert SPEEDS[app.state.speed] == 1.0
    time.sleep(0.3)
    key(pygame.K_SPACE)
    t = time.monotonic()
    run_until(app, lambda: app.worker_paused, timeout=5)
    assert time.monotonic() - t < 0.5
    for _ in range(len(SPEEDS)):
        key(pygame.K_RIGHTBRACKET)
    key(pygame.K_SPACE)
    app.frame()


@pytest.mark.parametrize("how", ["escape", "q", "window close"])
def test_quit_is_immediate_and_stops_the_worker(sample, how, tmp_path):
    app = open_app(Config(epochs=50, seed=3, save=str(tmp_path / "quit.npz")), sample)
    proc = app.worker.process
    if how == "window close":
        pygame.event.post(pygame.event.Event(pygame.QUIT))
    else:
        key(pygame.K_ESCAPE if how == "escape" else pygame.K_q)
    app.frame()
    assert not app.state.running
    t = time.monotonic()
    app.close()
    assert time.monotonic() - t < 5
    assert not proc.is_alive()
    import multiprocessing
    assert proc not in multiprocessing.active_children()
    with np.load(tmp_path / "quit.npz", allow_pickle=False) as f:      # --save honoured on quit
        assert f["W1"].shape == (784, 1024)


def test_a_diverged_run_is_not_saved_over_the_model_on_quit(sample, tmp_path):
    path = tmp_path / "keep.npz"
    path.write_bytes(b"the user's good model")
    app = open_app(Config(hidden=(32,), optimizer="sgd", lr=1e6, lr_schedule="constant", seed=4,
                          save=str(path)), sample)
    run_until(app, lambda: bool(app.state.diverged))
    assert app.state.paused and "learning rate" in app.state.diverged
    app.frame()                                   # the blown-up weights still draw
    app.close()
    assert path.read_bytes() == b"the user's good model"


def test_after_training_finishes_the_strip_and_filters_use_the_final_weights(sample):
    app = open_app(Config(hidden=(32,), epochs=1, batch_size=256, seed=5), sample)
    run_until(app, lambda: app.state.finished and not app.sweep.dirty and app.sweep.predictions is not None)
    np.testing.assert_array_equal(app.sweep.predictions, app.net.predict(app.x_test))
    app.frame()
    for box, idx in app.strip_hits:             # frames say right/wrong for the final weights
        want = RIGHT if app.sweep.predictions[idx] == app.y_test[idx] else WRONG
        assert tuple(app.screen.get_at((box.x - 1, box.centery)))[:3] == want
    app.close()


def test_each_epochs_evaluation_is_plotted_at_that_epoch(sample):
    """The full test-set accuracy after epoch k sits at x = k on the curve (it once sat at
    k + 1, so the last point fell off the right edge of the plot)."""
    app = open_app(Config(hidden=(32,), epochs=2, batch_size=32, seed=5), sample)  # 157 batches/epoch
    run_until(app, lambda: app.state.finished and len(app.state.acc_curve) >= 3)
    assert [p for p, _ in app.state.acc_curve] == [0.0, 1.0, 2.0]
    subset = [p for p, _ in app.state.subset_curve]
    assert subset and all(0 < p < 2 for p in subset)
    app.close()


def test_the_workers_evaluation_serves_keys_before_the_windows_first_pass(sample):
    """M, F and X need predictions for the whole test set; until the window's own pass is
    done they come from the worker's evaluation, so the first key press does not stall."""
    app = open_app(Config(no_train=True, seed=1), sample)
    app.sweep.predictions = None                        # as in the first seconds of a launch
    preds = app.net.predict(app.x_test).astype(np.int16)
    app.on_message({"type": "eval", "accuracy": 0.1, "per_class": [0.1] * 10, "confusion": np.eye(10).tolist(),
                    "predictions": preds, "epoch": 0, "batch": 0, "progress": 0.0, "seconds": 0.0})
    np.testing.assert_array_equal(app.sweep.predictions, preds)
    app.close()
