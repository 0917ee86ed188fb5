"""One window session's start and end, around the frame loop: opening the display (and
refusing a driver nobody sees), when a scripted run (--frames, --screenshot) is done, and
the metrics --metrics writes. Imports pygame and the window's pure parts."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pygame

from mnist_live.window.trainer_link import take_newest
from mnist_live.window.view_model import ease

FPS = 60


def open_window(config):
    """The display and the window, or SystemExit with one line when SDL could only open it on
    a driver nobody sees that the user did not ask for (offscreen, dummy, KMS)."""
    use_native_framebuffer()
    pygame.display.init()
    pygame.font.init()
    invisible = invisible_driver(pygame.display.get_driver())
    if invisible:
        pygame.quit()
        raise SystemExit(f"error: the window opened on SDL's {invisible} driver, which shows nothing on screen: "
                         f"check DISPLAY (or set SDL_VIDEODRIVER to choose a driver), or use --headless")
    pygame.display.set_caption("MNIST network - live")
    screen = pygame.display.set_mode((config.width, config.height), pygame.RESIZABLE)
    pygame.key.set_repeat(300, 35)
    return screen


def invisible_driver(driver, environ=os.environ):
    """The name of an SDL video driver that shows nothing to the user, when SDL picked it
    by itself (the user's own SDL_VIDEODRIVER is respected), else ''."""
    if environ.get("SDL_VIDEODRIVER"):
        return ""
    return driver if driver in ("offscreen", "dummy", "KMSDRM", "kmsdrm", "evdev") else ""


def process_age():
    """Seconds since this process started (Linux: from /proc; elsewhere None)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def window_metrics(app, first_frame_s):
    """The run's metrics (written by --metrics): accuracy, rates, frame times, errors, the history."""
    tele, times = app.tele, app.times
    ev = tele.last_full
    rates = list(tele.full_speed_rates)
    return {
        "status": "failed" if tele.failed else "diverged" if tele.diverged else
                  "finished" if tele.finished else "stopped",
        "error": tele.failed or tele.diverged or None,
        "test_accuracy": ev.accuracy if ev else float("nan"),
        "per_class_accuracy": list(ev.per_class) if ev else [float("nan")] * 10,
        "confusion_matrix": ev.confusion.tolist() if ev is not None and ev.confusion is not None else None,
        "epochs_completed": ev.epoch if ev else 0,
        "train_samples_per_s": float(np.median(rates)) if rates else 0.0,
        **times.metrics(app.screen.get_size()), "first_frame_s": first_frame_s,
        "window": list(app.screen.get_size()), "connections": app.state.k,
        "hyperparameters": app.config.hyperparameters(), "dataset": app.data.summary(),
        "history": tele.history_json(), "errors": list(app.errors),
    }


def use_native_framebuffer(environ=os.environ, platform=sys.platform):
    """On X11 systems, have SDL push frames through the X server's shared memory rather than
    through a renderer: SDL's default there copies and renders the whole window as a texture
    on every push, whatever part changed; without a GPU (software OpenGL) that took 7-22 ms
    a push at 1600x900 against 0.3 ms (`python bench/bench_push.py`). The user's own setting
    of SDL_FRAMEBUFFER_ACCELERATION is kept."""
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")


class Ending:
    """When a scripted window run (--frames N, --screenshot FILE) is done, taking the screenshot."""

    def __init__(self, config):
        self.config, self.shown_since = config, None

    def done(self, app):
        cfg, tele = self.config, app.tele
        if cfg.frames and self.frames_done(app):
            if cfg.screenshot:    # --frames decides when: the view as it is now
                self.screenshot(app)
            return True
        result = app.display.test_pass.result
        if cfg.screenshot and app.weights_seen and (tele.finished or cfg.no_train or tele.diverged) \
                and not app.display.waiting and result is not None and result.stamp == app.display.stamp \
                and tele.latest is not None:
            self.screenshot(app)
            return True
        return False

    def frames_done(self, app):
        """--frames N: N frames drawn; or, when the window is not training (it then draws only
        when something changes), N frames' worth of time (N/FPS s) of the network on screen."""
        if app.times.drawn_frames >= self.config.frames:
            return True
        if app.display.view is None or not app.times.drawn_frames:
            return False
        self.shown_since = self.shown_since or time.perf_counter()
        tele = app.tele
        training = app.link is not None and not (self.config.no_train or tele.paused or tele.finished or tele.failed
                                                 or tele.diverged)
        return not training and time.perf_counter() - self.shown_since >= self.config.frames / FPS

    def screenshot(self, app):
        """The newest weights, drawn exactly (no easing, no message over the header)."""
        take_newest(app.link, app.state, app.display)
        app.update()
        app.state.toast = ""
        ease(app.display.shown, app.display.view, snap=True)
        app.update_regions()                   # the scene again: the eased values and the header as they are now
        app.draw(app.screen)
        if app.outputs.screenshot(app.state, self.config.screenshot):
            print(f"Saved screenshot to {self.config.screenshot}")
        else:
            print(f"error: {app.errors[-1]}", file=sys.stderr)
