"""The window with its real training process: pause, step, slow motion, quit and save,
a diverged or killed trainer, and a screen that agrees with itself while weights change."""
import multiprocessing
import os
import signal
import time

import numpy as np
import pygame
import pytest

from mnist_live.training.messages import Command, Order
from mnist_live.visualization import window_metrics
from mnist_live.window.regions.palette import RIGHT, TEXT, WRONG
from mnist_live.window.regions.panel import Panel
from mnist_live.window.regions.portrait import FilmStrip, Tooltip
from mnist_live.window.state import SPEEDS
from window_driver import click, key, move, open_app, passed, pixel, pixels, run_until, text_drawn_at


def training_app(sample, **config):
    app = open_app(sample, worker=True, **config)
    run_until(app, lambda: app.weights_seen and app.tele.latest is not None)
    return app


@pytest.mark.slow
def test_training_moves_the_picture_and_space_n_brackets_control_it(sample):
    app = training_app(sample, epochs=50, batch_size=64, seed=2, connections=0)
    try:
        first = pixels(app, app.layout.hidden[0].rect)
        run_until(app, lambda: app.tele.batch > 20 and app.display.stamp.batch > 20)
        run_until(app, lambda: (pixels(app, app.layout.hidden[0].rect) != first).any())
        key(pygame.K_SPACE)                              # pause: the batch counter stops
        run_until(app, lambda: app.tele.paused)
        frozen = (app.tele.epoch, app.tele.batch)
        time.sleep(0.4)
        app.frame()
        assert (app.tele.epoch, app.tele.batch) == frozen and app.scene().status[0] == "PAUSED"
        assert app.tele.samples_per_s() is None          # no rate while paused (not a decaying one)
        w = app.display.net.weights[1].copy()
        key(pygame.K_n)                                  # N: exactly one batch
        run_until(app, lambda: not np.array_equal(w, app.display.net.weights[1]) and app.tele.batch != frozen[1])
        time.sleep(0.3)
        app.frame()
        assert app.tele.batch == frozen[1] + 1 or app.tele.epoch == frozen[0] + 1
        assert (app.display.stamp.epoch, app.display.stamp.batch) == (app.tele.epoch, app.tele.batch)
        key(pygame.K_LEFTBRACKET)
        app.frame()
        assert app.state.speed == 1
        key(pygame.K_RIGHTBRACKET)
        key(pygame.K_SPACE)
        app.frame()
        b = app.tele.batch
        run_until(app, lambda: app.tele.batch != b)
        for _ in range(len(SPEEDS)):                     # slowest motion: 1 s per batch ...
            key(pygame.K_LEFTBRACKET)
        app.frame()
        assert SPEEDS[app.state.speed] == 1.0
        def slow_gaps():
            t = [p[0] for p in list(app.tele.rate_samples)[-4:]]
            return len(t) == 4 and min(np.diff(t)) > 0.9
        run_until(app, slow_gaps, timeout=15)
        assert app.tele.samples_per_s() < 100           # ... and the panel says so (64 per second)
        key(pygame.K_SPACE)                              # ... still pauses at once
        t = time.monotonic()
        run_until(app, lambda: app.tele.paused, timeout=5)
        assert time.monotonic() - t < 0.6
    finally:
        app.close()


@pytest.mark.slow
def test_strip_and_output_agree_in_every_frame_while_training(sample):
    app = training_app(sample, epochs=50, batch_size=32, seed=3)
    try:
        checked = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            drawn = app.times.drawn_frames
            app.frame()
            if not app.region(FilmStrip).boxes or app.times.drawn_frames == drawn:    # nothing new on screen
                continue
            preds = app.display.net.predict(app.x_test[[i for _, i in app.region(FilmStrip).boxes]])
            for (box, idx), pred in zip(app.region(FilmStrip).boxes, preds):
                want = RIGHT if pred == app.y_test[idx] else WRONG
                assert pixel(app, (box.x - 1, box.centery)) == want
            assert app.display.view.pred == app.display.net.predict(app.x_test[[app.state.index]])[0]
            checked += 1
        assert checked > 50 and app.display.stamp.version > 10
    finally:
        app.close()


@pytest.mark.parametrize("how", ["q", "window close"])        # Esc steps back, never quits (test_newcomer)
def test_quit_is_immediate_stops_the_worker_and_saves(sample, how, tmp_path):
    app = training_app(sample, epochs=50, seed=3, save=str(tmp_path / "quit.npz"))
    proc = app.link.process.process
    if how == "window close":
        pygame.event.post(pygame.event.Event(pygame.QUIT))
    else:
        key(pygame.K_q)
    app.frame()
    assert not app.state.running
    t = time.monotonic()
    app.close()
    assert time.monotonic() - t < 5
    assert not proc.is_alive() and proc not in multiprocessing.active_children()
    with np.load(tmp_path / "quit.npz", allow_pickle=False) as f:
        assert f["W1"].shape == (784, 1024)


def test_w_saves_the_model(sample, tmp_path, monkeypatch):
    app = training_app(sample, no_train=True, seed=4)
    try:
        monkeypatch.chdir(tmp_path)
        key(pygame.K_w)
        run_until(app, lambda: (tmp_path / "mnist_model.npz").exists() and "saved" in app.state.toast)
        with np.load(tmp_path / "mnist_model.npz", allow_pickle=False) as f:
            net = app.display.net
            for i, (W, bias) in enumerate(zip(net.weights, net.biases), start=1):   # every layer
                np.testing.assert_array_equal(f[f"W{i}"], W)
                np.testing.assert_array_equal(f[f"b{i}"], bias)
            assert not any(k.startswith("W") and k[1:].isdigit() and int(k[1:]) > len(net.weights) for k in f)
    finally:
        app.close()


def test_a_diverged_run_is_not_saved_over_the_model(sample, tmp_path):
    path = tmp_path / "keep.npz"
    path.write_bytes(b"the user's good model")
    app = training_app(sample, hidden=(32,), optimizer="sgd", lr=1e6, lr_schedule="constant", seed=4,
                       save=str(path))
    run_until(app, lambda: bool(app.tele.diverged))
    assert "learning rate" in app.tele.diverged and app.scene().status[0] == "DIVERGED"
    app.frame()
    app.close()
    assert path.read_bytes() == b"the user's good model"


def test_a_killed_trainer_is_said_for_as_long_as_it_is_true_and_w_saves_the_windows_weights(sample, tmp_path):
    app = training_app(sample, epochs=50, seed=5, save=str(tmp_path / "kept.npz"))
    try:
        os.kill(app.link.process.process.pid, signal.SIGKILL)
        run_until(app, lambda: bool(app.tele.failed))
        assert "stopped unexpectedly" in app.tele.failed
        for _ in range(3):
            app.frame()
        assert app.scene().status[0].startswith("TRAINER STOPPED") and app.scene().status[1] == WRONG
        key(pygame.K_SPACE)
        app.frame()
        assert "stopped" in app.state.toast
        assert window_metrics(app, None)["status"] == "failed"
        key(pygame.K_w)                                  # W keeps what the window holds
        app.frame()
        assert "without the optimizer state" in app.state.toast
        with np.load(app.config.save, allow_pickle=False) as f:
            np.testing.assert_array_equal(f["W2"], app.display.net.weights[1])
            assert "meta" not in f.files
    finally:
        app.close()


def test_a_trainer_killed_while_publishing_its_weights_never_freezes_the_window(sample, tmp_path):
    """The trainer holds the weights' lock while it copies them out; killed in that moment it
    never lets go. The window must go on answering (and W keep its own weights). Catches: a
    lock taken without a time limit (the window froze for good inside take_weights)."""
    app = training_app(sample, epochs=50, seed=5, save=str(tmp_path / "kept.npz"))
    try:
        run_until(app, lambda: app.display.stamp is not None)
        proc = app.link.process
        assert proc.lock.acquire(timeout=5)              # as the trainer would, mid-copy
        os.kill(proc.process.pid, signal.SIGKILL)
        proc.process.join(5)
        start = time.monotonic()
        run_until(app, lambda: bool(app.tele.failed))
        key(pygame.K_w)
        for _ in range(5):
            app.frame()
        assert time.monotonic() - start < 10, "frames waited on the dead trainer's lock"
        assert proc.lock_lost and "without the optimizer state" in app.state.toast
        with np.load(app.config.save, allow_pickle=False) as f:
            np.testing.assert_array_equal(f["W2"], app.display.net.weights[1])
    finally:
        app.close()


def test_a_trainer_whose_window_stops_reading_still_ends_on_sigterm(sample):
    """multiprocessing's exit (and `kill`) sends SIGTERM to a trainer whose window no longer
    reads its messages; with the pipe full, the trainer must still end after its grace
    period. Catches: its exit waiting to flush the full pipe (the parent then waited for it
    for ever, and so did the test run)."""
    from mnist_live.training.config import Config
    from mnist_live.training.process import TERM_GRACE_S, TrainingProcess
    proc = TrainingProcess(Config(hidden=(16,), epochs=1, batch_size=10, no_train=True), sample)
    try:
        for _ in range(3000):                             # each answered, nobody reads: > 64 KiB queued
            proc.send(Order(Command.RESUME))
        time.sleep(1.0)
        proc.process.terminate()
        proc.process.join(TERM_GRACE_S + 20)
        assert not proc.process.is_alive(), "the trainer hung on its way out"
    finally:
        if proc.process.is_alive():
            proc.process.kill()
        proc.stop(timeout=1)


def test_after_training_finishes_everything_uses_the_final_weights(sample):
    app = training_app(sample, hidden=(32,), epochs=2, batch_size=32, seed=5)
    try:
        run_until(app, lambda: app.tele.finished and not app.display.waiting and passed(app) is not None
                  and passed(app).stamp == app.display.stamp)
        app.frame()
        final = app.display.net.predict(app.x_test)
        np.testing.assert_array_equal(passed(app).predictions, final)
        assert [p for p, _ in app.tele.acc_curve] == [0.0, 1.0, 2.0]      # each epoch at its own x
        assert app.tele.latest.kind == "full" and app.tele.latest.epoch == 2
        assert abs(app.tele.latest.accuracy - (final == app.y_test).mean()) < 1e-9
        assert abs(passed(app).accuracy - app.tele.latest.accuracy) < 1e-9   # one accuracy on screen
        for box, idx in app.region(FilmStrip).boxes:
            want = RIGHT if final[idx] == app.y_test[idx] else WRONG
            assert pixel(app, (box.x - 1, box.centery)) == want
    finally:
        app.close()


def test_rewind_shows_the_snapshot_everywhere_and_returns_to_live(sample):
    app = training_app(sample, hidden=(64,), epochs=1, batch_size=32, seed=6)
    try:
        run_until(app, lambda: app.tele.finished and len(app.tele.snapshots) >= 5 and not app.display.waiting
                  and app.display.stamp.epoch == 1)
        live = [w.copy() for w in app.display.net.weights]
        key(pygame.K_COMMA)                                   # back from live: the newest older snapshot
        app.frame()
        key(pygame.K_COMMA)
        run_until(app, lambda: app.display.stamp.version == -(app.state.rewind + 1))
        i = app.state.rewind
        e, b, _ = app.tele.snapshots[i]
        snap = app.link.snapshot_cache[i]
        for w, w16 in zip(app.display.net.weights, snap.weights):
            np.testing.assert_array_equal(w, w16.astype(np.float32))   # the window's network is the snapshot
        app.frame()
        x = app.x_test.astype(np.float32) / 255
        from mnist_live.neural_network import MLP
        ref = MLP((784, 64, 10), seed=0)
        for dst, src in zip(ref.weights + ref.biases, snap.weights + snap.biases):
            dst[...] = src.astype(np.float32)
        preds = ref.predict(x)
        assert app.display.view.pred == preds[app.state.index]        # the output column: the snapshot's prediction
        for box, idx in app.region(FilmStrip).boxes:                      # and so do the film strip's frames
            want = RIGHT if preds[idx] == app.y_test[idx] else WRONG
            assert pixel(app, (box.x - 1, box.centery)) == want
        assert app.scene().status[0].startswith("REWOUND")
        run_until(app, lambda: passed(app) is not None and passed(app).stamp == app.display.stamp)
        np.testing.assert_array_equal(passed(app).predictions, preds)   # confusion, per-class: the snapshot's
        assert app.scene().classes[2][0].startswith("rewound")
        for _ in range(len(app.tele.snapshots) + 1):          # forward past the newest: live again
            key(pygame.K_PERIOD)
            app.frame()
        run_until(app, lambda: app.state.rewind is None and app.display.stamp.version > 0)
        for w, w_live in zip(app.display.net.weights, live):
            np.testing.assert_array_equal(w, w_live)
        assert not app.link.snapshot_cache                    # live again: the fetched snapshots are let go
        for n in range(3):                                    # an answer that lands after the return to live
            key(pygame.K_COMMA)
            app.frame()                                       # the snapshot is asked for ...
            assert app.link.asked and app.state.rewind is not None
            key(pygame.K_PERIOD)
            key(pygame.K_PERIOD)                              # past the newest snapshot: live
            app.frame()                                       # ... and the user is back before it lands
            assert app.state.rewind is None
            fence = len(app.y_test) - 1 - n                   # the trainer answers in order: once this digit's
            app.link.send(Order(Command.DIGIT_HISTORY, index=fence))      # history is here, so is the snapshot
            run_until(app, lambda f=fence: f in app.tele.digit_histories)
            assert not app.link.snapshot_cache and app.display.stamp.version > 0
        key(pygame.K_COMMA)                                   # and a new rewind fetches what it shows
        run_until(app, lambda: app.state.rewind is not None and app.display.stamp.version == -(app.state.rewind + 1))
        assert list(app.link.snapshot_cache) == [app.state.rewind]
    finally:
        app.close()


def test_learning_rate_keys_steer_the_run_and_mark_the_curve(sample):
    """L doubles the rate the trainer uses from then on and Shift+L halves it, each change
    recorded where it happened and drawn there on the loss chart as a white line with its
    new rate. Catches: a key that changes nothing, a change not recorded, the marker drawn
    at another progress or not at all."""
    app = training_app(sample, hidden=(256,), batch_size=16, epochs=2, seed=7)   # 313 batches an epoch
    try:
        key(pygame.K_LEFTBRACKET)
        key(pygame.K_LEFTBRACKET)                            # slow motion, 20 ms a batch: the run lasts
        run_until(app, lambda: app.tele.batch > 60)
        lr = app.tele.lr
        key(pygame.K_l)                                      # x2
        run_until(app, lambda: len(app.tele.lr_changes) == 1)
        run_until(app, lambda: app.tele.lr > 1.8 * lr)
        assert "learning rate now" in app.state.toast
        doubled = app.tele.lr
        key(pygame.K_l, mod=pygame.KMOD_SHIFT)               # /2
        run_until(app, lambda: len(app.tele.lr_changes) == 2)
        run_until(app, lambda: app.tele.lr < 0.6 * doubled)
        (q1, lr1), (q2, lr2) = app.tele.lr_changes
        assert 0 < q1 <= q2 < 2 and lr1 > 1.8 * lr and lr2 < 0.6 * lr1    # where and what
        key(pygame.K_SPACE)                                  # pause: the chart holds still to be read
        run_until(app, lambda: app.tele.paused)
        app.needs_draw = True
        run_until(app, lambda: app.panel.seen[0] == app.tele.version)
        app.needs_draw = True
        app.frame()
        p = app.region(Panel).chart.plot_rect()
        for q, _ in app.tele.lr_changes:
            x = p.x + int(round(q / 2 * (p.width - 1)))      # the epoch axis spans the run's 2 epochs
            column = [tuple(app.screen.get_at((x, y)))[:3] for y in range(p.y + 20, p.bottom - 2)]
            assert sum(c == TEXT for c in column) > 0.6 * len(column), (q, x)
        labels = [f"lr {rate:.2g}" for _, rate in app.tele.lr_changes]
        assert any(text_drawn_at(app, labels[0], app.region(Panel).chart.fs - 1, TEXT, False, "topleft", (x0 + 2, y0))
                   for x0 in [p.x + int(round(app.tele.lr_changes[0][0] / 2 * (p.width - 1)))]
                   for y0 in range(p.y, p.bottom))
    finally:
        app.close()


def test_a_loaded_model_shows_its_curves_snapshots_and_digit_history(sample, tmp_path):
    path = tmp_path / "m.npz"
    app = training_app(sample, hidden=(32,), epochs=2, batch_size=64, seed=8, save=str(path))
    run_until(app, lambda: app.tele.finished)
    app.close()
    app = training_app(sample, hidden=(32,), epochs=2, load=str(path), no_train=True, seed=8)
    try:
        run_until(app, lambda: len(app.tele.snapshots) >= 3 and app.tele.digit_histories.get(app.state.index))
        assert [round(q) for q, _ in app.tele.acc_curve] == [0, 1, 2]   # the run's past, not "no training"
        assert len(app.tele.loss_curve) > 100
        app.needs_draw = True
        app.frame()
        rows = app.tele.digit_histories[app.state.index][1]
        assert len(rows) == len(app.tele.snapshots)
        true = int(app.y_test[app.state.index])
        for (r, _i), (_, pred, _) in zip(app.region(Panel).history_cells, rows):
            bottom = pixel(app, (r.centerx, r.bottom - 1))
            assert bottom == (RIGHT if pred == true else WRONG)
        key(pygame.K_t)                                      # per-class accuracy over time
        app.frame()
        pts, _ = app.region(Panel).class_chart.points(app.tele, 2)
        c = 3
        click(pts[-1, c])
        app.frame()
        assert app.state.pair_filter == (c, None) and app.y_test[app.state.index] == c   # class c's mistakes only
        strip = app.region(FilmStrip)
        assert strip.total == int(((app.display.predict(np.arange(len(app.y_test))) != c) & (app.y_test == c)).sum())
        assert len(strip.idx) and all(app.y_test[strip.idx] == c) and all(strip.preds != c)
        assert any(t.startswith(f"Browsing mistakes of class {c}") for t in [app.state.filter_label()]) or \
            app.state.filter_label() == f"mistakes of class {c}"
    finally:
        app.close()


def assert_pushes_cover_every_change(app, deadline, frames=25):
    """Run drawn frames while training: every pixel that differs from the frame before lies
    inside the rectangles the frame pushed, and at least half the frames push only parts."""
    before = pygame.surfarray.array3d(app.screen)
    checked, partial = 0, 0
    while checked < frames and time.monotonic() < deadline:
        drawn = app.times.drawn_frames
        app.frame()
        if app.times.drawn_frames == drawn:
            continue
        now = pygame.surfarray.array3d(app.screen)
        changed = (now != before).any(axis=2)                      # (w, h)
        if app.last_push is not None:
            covered = np.zeros_like(changed)
            for r in app.last_push:
                covered[r.left:r.right, r.top:r.bottom] = True
            outside = changed & ~covered
            assert not outside.any(), f"{int(outside.sum())} changed pixels not pushed, e.g. at " \
                                      f"{tuple(np.argwhere(outside)[0])}"
            partial += 1
        before = now
        checked += 1
    assert checked >= 15 and partial >= checked // 2, (checked, partial)


def test_a_frame_pushes_every_pixel_that_changed_and_little_else(sample):
    """While training, each drawn frame pushes only rectangles (a full flip only for a new
    layout or overlay); every pixel that differs from the frame before lies inside them,
    and a frame that only eases the grids towards weights already on screen pushes far
    less than the window (one with new weights redraws the lines across the network: on a
    loaded machine most drawn frames are of that kind). Catches: a region that changed but
    was not pushed (its rectangle left out, a grid's change missed), and partial pushes
    that are really the whole window."""
    app = open_app(sample, size=(1280, 720), worker=True, hidden=(64, 32), epochs=50, batch_size=16, no_train=False)
    try:
        run_until(app, lambda: app.weights_seen and app.tele.trained_here)
        w, h = app.screen.get_size()
        deadline = time.monotonic() + 30
        assert_pushes_cover_every_change(app, deadline)
        for _ in range(6):                          # slow motion (0.5 s a batch): frames between new weights only
            key(pygame.K_LEFTBRACKET)                # ease, even on a loaded machine where every frame is late
        app.frame()
        area, view = [], app.display.view_key                          # and how much a frame pushes
        while len(area) < 60 and time.monotonic() < deadline + 20:
            drawn = app.times.drawn_frames
            app.frame()
            if app.times.drawn_frames != drawn:
                rects = app.last_push
                share = 1.0 if rects is None else sum(r.width * r.height for r in rects) / (w * h)
                area.append((share, app.display.view_key != view))      # new weights on screen, or only easing
                view = app.display.view_key
            time.sleep(max(0.0, app.frame_start + 1 / 60 - time.perf_counter()))
        easing = [a for a, new_view in area if not new_view]          # frames that only eased the grids and output
        small = sum(a < 0.5 for a in easing)            # a new pass or evaluation may add the strip, the panel
        assert len(area) >= 30 and len(easing) >= 8 and small >= 0.8 * len(easing), \
            f"{small} of {len(easing)} easing frames pushed less than half the window: {np.round(area, 2).tolist()}"
    finally:
        app.close(save=False)


def test_with_a_neuron_hovered_its_portrait_is_pushed_when_it_changes(sample):
    """The hovered neuron's portrait (its activation, its share of the relevance) changes
    with every new view while training, also where it hangs below the columns. Catches:
    the portrait left out of the pushed rectangles."""
    app = open_app(sample, size=(1280, 720), worker=True, hidden=(64, 32), epochs=50, batch_size=16, no_train=False)
    try:
        run_until(app, lambda: app.weights_seen and app.tele.trained_here)
        grid = app.layout.hidden[0]
        move(grid.cell_rect(grid.n // 2).center)                   # a middle cell: the portrait reaches below
        run_until(app, lambda: app.region(Tooltip).box is not None)
        assert app.region(Tooltip).box.bottom > max(g.rect.bottom for g in app.layout.hidden)
        assert_pushes_cover_every_change(app, time.monotonic() + 30)
    finally:
        app.close(save=False)
