"""Make the README's pictures of a learner's first minute and of an experiment made from
the window, with the app itself.

Usage (from the repository root):

    python assets/make_first_minute.py [--out assets/views] [--width 1280 --height 720] [main.py data options]

Opens the real window (any SDL video driver; SDL_VIDEODRIVER=dummy works without a screen)
as on a first launch, with a temporary run library and view settings of its own, and
trains (--offline: the bundled sample, unless data options are given):
- first-minute.png: the guided tour's first step over the window a second or two into
  training, the header, the bars and the film strip telling the same story;
- toolbar.png: the tour skipped (Esc), the window with the toolbar once the first epoch is done;
- experiment-form.png: once the run has finished, F2 and a learning rate of 0.003 typed in;
- experiment-chart.png: Enter starts that run in the same window; when it has finished,
  Z shows both runs on the large chart with the verdict.
Each key is a pygame event, as a user's would be; the pictures are the app's own screenshots.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pygame

from mnist_live import main as cli
from mnist_live.visualization import App, switch_data
from mnist_live.window import settings as view_settings


def post_key(code, text=""):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=code, mod=0, unicode=text, scancode=0))


def frames_until(app, condition, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("error: the window did not get there within five minutes")
        app.frame()
        time.sleep(0.004)


def shoot(app, path):
    for _ in range(3):
        app.frame()
    app.pushed = None
    app.needs_draw = True
    app.frame()
    if not app.outputs.screenshot(app.state, str(path)):
        raise SystemExit(f"error: {app.errors[-1]}")
    print(f"{path}: {app.state.overlay or 'the network view'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "views"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args, rest = parser.parse_known_args(argv)
    work = tempfile.mkdtemp(prefix="mnist-live-first-minute-")
    os.environ["XDG_CONFIG_HOME"] = work                       # a first launch: no view settings yet
    rest = rest or ["--offline"]
    config, _ = cli.parse_config([*rest, "--epochs", "2", "--runs", os.path.join(work, "runs.sqlite3")])
    data = cli.load_data(config)
    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode((args.width, args.height))
    app = App(config, data, screen, view=view_settings.read(view_settings.default_path()))
    out = Path(args.out)
    try:
        frames_until(app, lambda: app.display.stamp is not None and app.display.stamp.batch >= 20
                     and app.tele.latest is not None and app.tele.latest.kind == "subset")
        shoot(app, out / "first-minute.png")
        post_key(pygame.K_ESCAPE)                               # skip the tour
        frames_until(app, lambda: app.tele.epoch >= 1 and app.display.test_pass.result is not None
                     and app.display.test_pass.result.stamp == app.display.stamp)
        shoot(app, out / "toolbar.png")
        frames_until(app, lambda: app.tele.finished)
        post_key(pygame.K_F2)
        for _ in range(5):
            post_key(pygame.K_BACKSPACE)
        for ch in "0.003":
            post_key(pygame.K_PERIOD if ch == "." else ord(ch), ch)
        shoot(app, out / "experiment-form.png")
        post_key(pygame.K_RETURN)
        frames_until(app, lambda: not app.state.running)
        app = switch_data(app)
        frames_until(app, lambda: app.tele.finished and app.compare.runs)
        post_key(pygame.K_z)
        shoot(app, out / "experiment-chart.png")
    finally:
        app.close(save=False)
        pygame.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
