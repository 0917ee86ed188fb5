"""A first launch: the window trains on the bundled sample while the full data set
arrives in the background; the header shows how far it is, U switches to it."""
import os
import time

import numpy as np
import pygame
import pytest

from mnist_live import data_loader
from mnist_live.visualization import FETCH_NICE, switch_data
from mnist_live.window import fetch as background_fetch
from mnist_live.window.fetch import FetchStatus, FullData
from mnist_live.window.regions.header import Header
from mnist_live.window.regions.palette import ACCENT, DIM, GRID_BG
from test_background_fetch import fake, openml_here  # noqa: F401 - fixtures of the fake OpenML
from window_driver import key, open_app, pixel, run_until, text_drawn_at


class FakeFetch:
    """A BackgroundFetch whose status the test sets; dataset() is a larger data set."""

    def __init__(self, full, status):
        self.full, self.status, self.closed = full, status, False

    def poll(self):
        return self.status

    def dataset(self):
        return self.full

    def close(self):
        self.closed = True


def bigger(sample):
    """A 'full' data set that differs from the sample: twice its images."""
    return data_loader.Dataset("mnist", "OpenML (test)", sample.class_names,
                               np.concatenate([sample.x_train] * 2), np.concatenate([sample.y_train] * 2),
                               np.concatenate([sample.x_test] * 2), np.concatenate([sample.y_test] * 2))


def wait_poll(app):
    """Let FullData read the fetch's status again, and run frames until one is drawn."""
    app.full._polled = 0.0
    drawn = app.times.drawn_frames
    run_until(app, lambda: app.times.drawn_frames > drawn)


def offer_position(app):
    h = app.region(Header)
    label = app.text.render(app.scene().data_label, h.fs - 2, DIM)
    return 12 + label.get_width() + 6, h.rect.y + 6 + h.fs + 4


@pytest.mark.slow
def test_progress_in_the_header_then_u_switches_to_the_full_set(sample, tmp_path):
    downloading = FetchStatus("downloading", 12.0, done_bytes=6_000_000, expected_bytes=15_000_000)
    fetch = FakeFetch(bigger(sample), downloading)
    save = tmp_path / "model.npz"
    app = open_app(sample, worker=True, full=FullData(fetch, log=lambda *a: None), epochs=50, save=str(save))
    new = None
    try:
        run_until(app, lambda: app.weights_seen and app.tele.batch > 3)
        own = os.getpriority(os.PRIO_PROCESS, 0)
        trainer_pid = app.link.process.process.pid
        assert os.getpriority(os.PRIO_PROCESS, trainer_pid) == own + FETCH_NICE   # the parse goes first
        wait_poll(app)
        h, (x, y) = app.region(Header), offer_position(app)
        text = downloading.describe()
        assert "bundled sample, 5,000 / 1,000 images" in app.scene().data_label
        assert text_drawn_at(app, text, h.fs - 2, DIM, False, "topleft", (x, y))
        # the bar under it: accent for the 40 % downloaded, grey for the rest
        width = app.text.render(text, h.fs - 2, DIM).get_width()
        bar_y = y + app.text.render(text, h.fs - 2, DIM).get_height() + 1
        assert pixel(app, (x + int(0.35 * width), bar_y)) == ACCENT
        assert pixel(app, (x + int(0.45 * width), bar_y)) == GRID_BG

        key(pygame.K_u)                                          # not ready: a message, training goes on
        app.frame()
        assert app.state.running and app.switch_to is None and "not here yet" in app.state.toast

        fetch.status = FetchStatus("ready", 25.0, message="cached")
        wait_poll(app)
        offer = f"{fetch.status.describe()}: U switches to it"
        assert text_drawn_at(app, offer, h.fs - 2, ACCENT, True, "topleft", (x, y))
        key(pygame.K_u)
        app.frame()
        assert not app.state.running and app.switch_to is fetch.full
        old_worker = app.link.process
        new = switch_data(app)
        assert not old_worker.process.is_alive() and fetch.closed
        assert not save.exists(), "the sample run was saved over --save at the switch"
        assert new.data is fetch.full and new.full is None and new.config == app.config
        run_until(new, lambda: new.weights_seen and new.tele.batch > 3)
        assert os.getpriority(os.PRIO_PROCESS, new.link.process.process.pid) == own     # the full set's run: normal
        assert len(new.x_test) == 2 * len(sample.x_test)
        assert "bundled sample" not in new.scene().data_label and "10,000 training / 2,000 test" in \
            new.scene().data_label
    finally:
        (new or app).close()


def test_a_failed_fetch_says_why_and_leaves_the_sample_run_alone(sample):
    fetch = FakeFetch(None, FetchStatus("checking", 0.1))
    app = open_app(sample, worker=True, full=FullData(fetch, log=lambda *a: None), epochs=50)
    try:
        run_until(app, lambda: app.weights_seen and app.tele.batch > 3)
        fetch.status = FetchStatus("failed", 2.0, message="no answer from api.openml.org within 2 s")
        wait_poll(app)
        h, (x, y) = app.region(Header), offer_position(app)
        assert text_drawn_at(app, fetch.status.describe(), h.fs - 2, DIM, False, "topleft", (x, y))
        key(pygame.K_u)
        app.frame()
        assert app.state.running and app.switch_to is None and "unavailable" in app.state.toast
        version = app.display.stamp.version
        run_until(app, lambda: app.display.stamp.version > version + 3)     # the sample run trains on
    finally:
        app.close()


@pytest.mark.slow
def test_the_real_background_fetch_keeps_the_window_drawing_then_u_switches(sample, fake):  # noqa: F811
    """The real BackgroundFetch (fetch_openml in a spawned process, a slowed download of a fake
    mnist_784): frames keep coming while it downloads and parses, the header follows its
    stages, and U restarts training on the fetched data."""
    import fixtures_openml as fo
    from test_background_fetch import SPLIT
    home, x, y, payload = fake
    fetch = background_fetch.BackgroundFetch("mnist", home, urlopen=fo.SlowArffOpener(payload, chunk=2048, delay=0.05))
    lines = []
    app = open_app(sample, worker=True, full=FullData(fetch, log=lines.append), epochs=50)
    new = None
    try:
        stages, gaps, last = [], [], time.perf_counter()
        while app.full.status.stage not in ("ready", "failed"):
            app.frame()
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
            if not stages or stages[-1] != app.full.status.stage:
                stages.append(app.full.status.stage)
            if app.full.status.stage == "downloading" and app.full.status.done_bytes:
                offer = app.scene().data_offer
                assert offer[0].startswith("downloading MNIST: ") and offer[2] is not None
            time.sleep(max(0.0, 1 / 60 - (time.perf_counter() - now)))
        assert app.full.status.stage == "ready", app.full.status
        assert "downloading" in stages and stages[-1] == "ready"
        assert max(gaps) < 0.25, f"a frame waited {max(gaps):.2f} s for the fetch"
        assert (app.tele.epoch, app.tele.batch) != (0, 0), "the sample run did not train meanwhile"
        assert any("downloading" in line for line in lines) and "press U" in lines[-1]
        key(pygame.K_u)
        app.frame()
        new = switch_data(app)
        run_until(new, lambda: new.weights_seen and new.tele.latest is not None)
        assert (len(new.data.y_train), len(new.data.y_test)) == SPLIT
        assert np.array_equal(new.data.x_test, x[SPLIT[0]:])
        assert new.data.source.startswith("OpenML")
    finally:
        (new or app).close()


def test_u_without_a_fetch_says_there_is_nothing_to_switch_to(sample):
    app = open_app(sample, offline=True)
    key(pygame.K_u)
    app.frame()
    assert app.state.running and app.switch_to is None and "--offline: nothing to switch to" in app.state.toast
