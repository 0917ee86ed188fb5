"""Make the README's pictures of each view with the app itself.

Usage (from the repository root; a model trained for two epochs first):

    python main.py --headless --epochs 2 --save model.npz
    python assets/make_screenshots.py --load model.npz [--data-dir DIR] [--out assets/views]

Opens the real window (any SDL video driver; SDL_VIDEODRIVER=dummy works without a
screen) at 1280x720 on the model with --no-train, presses the keys and moves the mouse
as a user would (pygame events), waits until each view has what it shows (the test-set
pass, the map, the dream), and saves the screen with the app's own screenshot action. Then
the views of a step (step mode, Δw, the maths on hover) with the model training from where
it was saved, paused (nothing is saved and no run is recorded).
Other main.py options (--data-dir, --data-home, --dataset, --width, --height) are passed on.
"""
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import pygame  # noqa: E402

from mnist_live import main  # noqa: E402
from mnist_live.visualization import App  # noqa: E402
from mnist_live.window.regions.network import NetworkColumns  # noqa: E402
from mnist_live.window.view_model import ease  # noqa: E402

VIEWS = (  # file name, what it shows (printed), the keys pressed from the main view
    ("relevance", "the default view: relevance flow from the ink to the prediction", ()),
    ("explain-class", "Shift+3: why the network would say 3 (or not)", ((pygame.K_3, pygame.KMOD_SHIFT),)),
    ("contrast", "Ctrl+1: why the prediction rather than 1", ((pygame.K_1, pygame.KMOD_CTRL),)),
    ("portrait", "hovering a hidden neuron: its portrait", ()),
    ("index-order", "O: hidden grids in index order (grouped by class is the default)", ((pygame.K_o, 0),)),
    ("atlas", "A: every hidden neuron drawn as its prototype", ((pygame.K_a, 0),)),
    ("map", "P: map of the last hidden layer's representations", ((pygame.K_p, 0),)),
    ("dream", "V: the network's dream of the explained class", ((pygame.K_v, 0),)),
    ("confusion", "X: confusion matrix of the test set", ((pygame.K_x, 0),)),
    ("class-chart", "T: per-class accuracy over training", ((pygame.K_t, 0),)),
    ("backward", "J: the backward view: each neuron's error signal, the largest gradients", ((pygame.K_j, 0),)),
    ("health", "F4: training health per layer over the run", ((pygame.K_F4, 0),)),
)
LEARNING = (  # the views of a step, with the model training (paused): file name, what it shows
    ("step-loss", "N while paused: the step played, its batch and their losses"),
    ("step-backward", "N while paused: the step played, its backward wave"),
    ("step-update", "N while paused: the step played, its update and the scores moving"),
    ("updates", "Y: what the last step changed (Δw as applied)"),
    ("maths", "hovering a line: its numbers and Adam's next update with them plugged in"),
)


def post_key(code, mod=0):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=code, mod=mod, unicode="", scancode=0))


def frames_until(app, condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("error: the view did not get ready within a minute")
        app.frame()
        time.sleep(0.005)
    for _ in range(3):
        app.frame()


def settled(app):
    r = app.display.test_pass.result
    return app.display.stamp is not None and not app.display.waiting and r is not None and r.stamp == app.display.stamp


def grouped(app):
    r = app.display.test_pass.result
    return r is not None and r.preferred is not None and not app.needs_draw


def main_view(app, index):
    """Back to the main view of test digit `index` (no overlay, no hover, no mode; the
    hidden grids grouped by class, as a user's window shows them)."""
    st = app.state
    while st.overlay is not None:
        st.toggle_overlay(st.overlay)
    st.dream = None
    st.atlas = st.class_chart = False
    st.sorted_grids = True
    st.go(index)
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=(1, 1), rel=(0, 0), buttons=(0, 0, 0)))
    frames_until(app, lambda: settled(app) and app.display.view is not None and st.hover is None)


def shoot(app, path):
    app.state.toast = ""
    ease(app.display.shown, app.display.view, snap=True)
    app.update_regions()                   # the scene again, with the values snapped
    app.draw(app.screen)
    if not app.outputs.screenshot(app.state, str(path)):
        raise SystemExit(f"error: {app.errors[-1]}")


def make(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    out = Path("assets/views")
    if "--out" in argv:
        i = argv.index("--out")
        out = Path(argv[i + 1])
        del argv[i:i + 2]
    config, given = main.parse_config(["--no-train", "--width", "1280", "--height", "720", *argv])
    if not config.load:
        raise SystemExit("error: give --load MODEL (train one first: python main.py --headless --epochs 2 "
                         "--save model.npz)")
    config, _, _ = main.resolve_model_file(config, given)
    data = main.load_data(config)
    out.mkdir(parents=True, exist_ok=True)
    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode((config.width, config.height))
    app = App(config, data, screen)
    try:
        frames_until(app, lambda: settled(app) and app.tele.latest is not None and app.layout is not None)
        index = 0
        for name, what, keys in VIEWS:
            main_view(app, index)
            if name == "backward":                                      # a digit it gets wrong: a large error
                app.state.next_mistake(1, app.display.predict)
            for code, mod in keys:
                post_key(code, mod)
            app.frame()
            if name == "portrait":
                a = app.display.view.acts[1]                        # the most active neuron of hidden layer 1
                pos = app.region(NetworkColumns).neuron_rect(0, int(a.argmax())).center
                pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=pos, rel=(0, 0), buttons=(0, 0, 0)))
                frames_until(app, lambda: settled(app) and app.display.test_pass.result.stats is not None)
            elif name == "atlas":
                frames_until(app, lambda: settled(app) and app.display.test_pass.result.stats is not None
                             and app.display.test_pass.result.preferred is not None)
            elif name == "map":
                frames_until(app, lambda: app.display.map.points is not None and not app.display.map.busy)
                frames_until(app, lambda: not app.needs_draw)        # the points have glided into place
            elif name == "dream":
                frames_until(app, lambda: app.display.dreamer.step_no >= 60)
            else:
                frames_until(app, lambda: settled(app))
            if name != "index-order":                                   # the grids grouped by class
                frames_until(app, lambda: grouped(app))
            path = out / f"{name}.png"
            shoot(app, path)
            print(f"{path}: {what}")
    finally:
        app.close(save=False)
    try:
        more = 1 if len(data.y_train) // config.batch_size >= 100 else 50     # time for Space to pause it
        learning_views(config.replace(no_train=False, no_runs=True, epochs=config.epochs + more), data, screen, out)
    finally:
        pygame.quit()


def in_phase(app, phase, fraction=0.0):
    play = app.display.play
    now = play.phase() if play is not None else None
    return now is not None and now[0] == phase and now[1] >= fraction and app.display.view.learn is not None \
        and app.display.view.learn.phase == phase and not app.needs_draw


def learning_views(config, data, screen, out):
    """The views of a step: the model training from where it was saved, paused; N plays one
    step (shot in three of its phases), Y shows what it changed, a hovered line its maths."""
    app = App(config, data, screen)
    try:
        frames_until(app, lambda: app.weights_seen and app.layout is not None)
        post_key(pygame.K_SPACE)
        frames_until(app, lambda: app.tele.paused and not app.display.waiting and settled(app))
        app.state.sorted_grids = True                           # grouped by class, as in the other pictures
        frames_until(app, lambda: settled(app) and grouped(app) and app.region(NetworkColumns).orders[0] is not None)
        app.state.next_mistake(1, app.display.predict)          # a digit it gets wrong: its error is large
        frames_until(app, lambda: app.link.watched == ("test", app.state.index))
        post_key(pygame.K_n)
        for (name, what), (phase, fraction) in zip(LEARNING[:3], (("loss", 0.3), ("backward", 0.85),
                                                                  ("update", 0.6))):
            frames_until(app, lambda phase=phase, fraction=fraction: in_phase(app, phase, fraction), timeout=20)
            path = out / f"{name}.png"
            shoot(app, path)
            print(f"{path}: {what}")
        frames_until(app, lambda: app.display.play is None)
        post_key(pygame.K_y)
        frames_until(app, lambda: app.display.view.learn is not None and app.display.view.learn.marks)
        shoot(app, out / "updates.png")
        print(f"{out / 'updates.png'}: {LEARNING[3][1]}")
        post_key(pygame.K_y)
        post_key(pygame.K_y)                                      # off again: the network's own lines
        frames_until(app, lambda: app.display.view.learn is None)
        lay = app.layout
        after = lay.hidden[1].rect.x if len(lay.hidden) > 1 else lay.output.x
        net, gap = app.region(NetworkColumns), (lay.hidden[0].rect.right + after) / 2
        src, dst, _ = app.display.view.conns[1]
        a, b = net.centers[1][src[-1]], net.centers[2][dst[-1]]        # the strongest line, where it crosses the gap
        pos = a + (b - a) * (gap - a[0]) / (b[0] - a[0])
        pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=tuple(int(v) for v in pos), rel=(0, 0),
                                             buttons=(0, 0, 0)))
        frames_until(app, lambda: any("the value now" in t for t in app.frame_scene.maths), timeout=20)
        shoot(app, out / "maths.png")
        print(f"{out / 'maths.png'}: {LEARNING[4][1]}")
    finally:
        app.close(save=False)


if __name__ == "__main__":
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    make()
