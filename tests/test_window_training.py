"""The window with its real training process: pause, step, slow motion, quit and save,
a diverged or killed trainer, and a screen that agrees with itself while weights change."""
import multiprocessing
import os
import signal
import time

import numpy as np
import pygame
import pytest

import data_loader
from regions import RIGHT, WRONG
from view_model import SPEEDS
from visualization import window_metrics
from window_driver import key, open_app, pixel, pixels, run_until


@pytest.fixture(scope="module")
def sample():
    return data_loader.load_dataset("mnist", offline=True, log=lambda *a: None)


def training_app(sample, **config):
    app = open_app(sample, worker=True, **config)
    run_until(app, lambda: app.weights_seen and app.tele.latest is not None)
    return app


def test_training_moves_the_picture_and_space_n_brackets_control_it(sample):
    app = training_app(sample, epochs=50, batch_size=64, seed=2, connections=0)
    try:
        first = pixels(app, app.layout.hidden[0].rect)
        run_until(app, lambda: app.tele.batch > 20 and app.stamp.batch > 20)
        run_until(app, lambda: (pixels(app, app.layout.hidden[0].rect) != first).any())
        key(pygame.K_SPACE)                              # pause: the batch counter stops
        run_until(app, lambda: app.tele.paused)
        frozen = (app.tele.epoch, app.tele.batch)
        time.sleep(0.4)
        app.frame()
        assert (app.tele.epoch, app.tele.batch) == frozen and app.scene().status[0] == "PAUSED"
        assert app.tele.samples_per_s() == 0.0 or time.monotonic() - app.tele.rate_samples[-1][0] < 2.5
        w = app.net.weights[1].copy()
        key(pygame.K_n)                                  # N: exactly one batch
        run_until(app, lambda: not np.array_equal(w, app.net.weights[1]) and app.tele.batch != frozen[1])
        time.sleep(0.3)
        app.frame()
        assert app.tele.batch == frozen[1] + 1 or app.tele.epoch == frozen[0] + 1
        assert (app.stamp.epoch, app.stamp.batch) == (app.tele.epoch, app.tele.batch)
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


def test_strip_and_output_agree_in_every_frame_while_training(sample):
    app = training_app(sample, epochs=50, batch_size=32, seed=3)
    try:
        checked = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            app.frame()
            if not app.strip.boxes:
                continue
            preds = app.net.predict(app.x_test[[i for _, i in app.strip.boxes]])
            for (box, idx), pred in zip(app.strip.boxes, preds):
                want = RIGHT if pred == app.y_test[idx] else WRONG
                assert pixel(app, (box.x - 1, box.centery)) == want
            assert app.view.pred == app.net.predict(app.x_test[[app.state.index]])[0]
            checked += 1
        assert checked > 50 and app.stamp.version > 10
    finally:
        app.close()


@pytest.mark.parametrize("how", ["escape", "q", "window close"])
def test_quit_is_immediate_stops_the_worker_and_saves(sample, how, tmp_path):
    app = training_app(sample, epochs=50, seed=3, save=str(tmp_path / "quit.npz"))
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
            np.testing.assert_array_equal(f["W1"], app.net.weights[0])
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
        os.kill(app.worker.process.pid, signal.SIGKILL)
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
            np.testing.assert_array_equal(f["W2"], app.net.weights[1])
            assert "meta" not in f.files
    finally:
        app.close()


def test_after_training_finishes_everything_uses_the_final_weights(sample):
    app = training_app(sample, hidden=(32,), epochs=2, batch_size=32, seed=5)
    try:
        run_until(app, lambda: app.tele.finished and not app.weights_waiting and app.sweep.result is not None
                  and app.sweep.result.stamp == app.stamp)
        app.frame()
        final = app.net.predict(app.x_test)
        np.testing.assert_array_equal(app.sweep.result.predictions, final)
        assert [p for p, _ in app.tele.acc_curve] == [0.0, 1.0, 2.0]      # each epoch at its own x
        assert app.tele.latest.kind == "full" and app.tele.latest.epoch == 2
        assert abs(app.tele.latest.accuracy - (final == app.y_test).mean()) < 1e-9
        assert abs(app.sweep.result.accuracy - app.tele.latest.accuracy) < 1e-9   # one accuracy on screen
        for box, idx in app.strip.boxes:
            want = RIGHT if final[idx] == app.y_test[idx] else WRONG
            assert pixel(app, (box.x - 1, box.centery)) == want
    finally:
        app.close()
