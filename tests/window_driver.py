"""Drive the real window like a user: open it (dummy video driver), post pygame events,
run frames, read pixels from the rectangles the layout gave each region."""
import contextlib
import os
import tempfile
import time

import numpy as np
import pygame

from mnist_live.training.config import Config
from mnist_live.visualization import App

NO_LIBRARY = os.path.join(tempfile.mkdtemp(prefix="mnist-live-no-library-"), "absent.sqlite3")   # never created


def key(k, mod=0):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=mod, unicode="", scancode=0))


def move(pos, buttons=(0, 0, 0)):
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=tuple(int(v) for v in pos), rel=(0, 0),
                                         buttons=buttons))


def click(pos, button=1):
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=tuple(int(v) for v in pos), button=button))


def pixel(app, pos):
    return tuple(app.screen.get_at((int(pos[0]), int(pos[1]))))[:3]


def pixels(app, rect):
    """A copy of the screen's pixels in rect, (w, h, 3)."""
    return pygame.surfarray.array3d(app.screen.subsurface(rect)).copy()


def run_until(app, condition, timeout=30.0):
    """Run frames until condition() holds; fail if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.frame()
        if condition():
            return
        time.sleep(0.002)
    raise AssertionError(f"condition not reached within {timeout:.0f} s")


def open_app(data, size=(1600, 900), worker=False, full=None, **config):
    """A fresh window and app. worker=False explores the seeded, untrained network
    without a training process (fast); worker=True starts the real one."""
    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode(size, pygame.RESIZABLE)
    config.setdefault("seed", 1)
    if not worker:
        config.setdefault("no_train", True)
        config.setdefault("runs", NO_LIBRARY)    # no earlier runs overlaid unless a test gives its library
    app = App(Config(**config), data, screen, worker=worker, full=full)
    run_until(app, lambda: app.display.view is not None and app.layout is not None)
    return app


def passed(app):
    """The window's last complete pass of the test set (view_model.Pass), or None."""
    return app.display.test_pass.result


def settle(app):
    """Run frames until the test-set pass of the current weights is complete."""
    run_until(app, lambda: passed(app) is not None and passed(app).stamp == app.display.stamp
              and not app.display.waiting)
    app.frame()


def index_where(app, right):
    """A test index the current weights get right (or wrong)."""
    preds = app.display.net.predict(app.x_test)
    hits = np.flatnonzero((preds == app.y_test) == right)
    assert len(hits), "no such digit"
    return int(hits[0])


def text_drawn_at(app, text, size, color, bold, anchor, pos):
    """Whether exactly this text surface is on screen with its `anchor` at pos."""
    surf = app.text.render(text, size, color, bold)
    rect = surf.get_rect(**{anchor: pos})
    want = pygame.surfarray.array3d(surf)
    got = pixels(app, rect)
    ink = pygame.surfarray.array_alpha(surf) == 255    # compare where the glyphs are opaque
    return bool(ink.any()) and np.array_equal(want[ink], got[ink])


def draw_region(app, region):
    """Draw one region now, as a frame would: it derives what it draws from the state
    (`update`), then paints."""
    scene = app.scene()
    region.update(scene)
    region.draw(app.screen, scene)


@contextlib.contextmanager
def texts_blitted(text):
    """The strings `text` (a region's text cache) blits while the block runs, in order."""
    said, blit = [], text.blit

    def spy(surface, string, *args, **kwargs):
        said.append(string)
        return blit(surface, string, *args, **kwargs)
    text.blit = spy
    try:
        yield said
    finally:
        del text.blit
