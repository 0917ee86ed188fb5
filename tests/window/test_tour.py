"""A guided first minute and controls a mouse can find (issue 31, items 3 and 4): the tour
shows on a first launch only, Esc skips it, it is remembered with the view settings and
reopened from the help; the toolbar's buttons show their keys and a click runs the key's
action."""
import pygame

from mnist_live.training.config import Config
from mnist_live.visualization import App
from mnist_live.window import settings as view_settings
from mnist_live.window.regions.overlays import HelpOverlay
from mnist_live.window.regions.toolbar import Toolbar
from mnist_live.window.regions.tour_view import TourOverlay, part_rect
from mnist_live.window.tour import STEPS
from window_driver import NO_LIBRARY, click, key, open_app, pixel, run_until


def launch(data, view, size=(1280, 720)):
    """The window as main.py opens it, with the view settings read at launch."""
    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode(size, pygame.RESIZABLE)
    app = App(Config(seed=1, no_train=True, runs=NO_LIBRARY), data, screen, worker=False, view=view)
    run_until(app, lambda: app.display.view is not None and app.layout is not None)
    return app


def test_the_tour_shows_on_a_first_launch_only_and_esc_skips_it(sample, tmp_path):
    path = str(tmp_path / "view.json")
    app = launch(sample, view_settings.read(path))                  # no file yet: a first launch
    assert app.state.overlay == "tour" and app.state.tour_step == 0
    app.frame()
    tour = app.region(TourOverlay)
    assert tour in app.layers() and tour.target == part_rect(app.layout, STEPS[0][0])
    outside = (app.layout.panel.centerx, app.layout.panel.centery)
    assert max(pixel(app, outside)) < 40, "the rest of the window is veiled"
    key(pygame.K_RIGHT)
    app.frame()
    assert app.state.tour_step == 1 and app.state.overlay == "tour"
    key(pygame.K_m)                                                 # other keys wait while the tour is open
    app.frame()
    assert app.state.overlay == "tour" and app.state.index == 0
    key(pygame.K_ESCAPE)
    app.frame()
    assert app.state.overlay is None and app.state.toured and app.state.running
    view_settings.remember(path, view_settings.of_window(app.state, app.screen.get_size()))
    again = launch(sample, view_settings.read(path))
    assert again.state.overlay is None and again.state.toured     # the next launch: no tour


def test_q_quits_while_the_tour_is_open(sample, tmp_path):
    """Nobody is trapped by the tour: Q quits as everywhere else. Catches: the tour taking Q
    too (a first launch could only be closed with the window's close button)."""
    app = launch(sample, view_settings.read(str(tmp_path / "view.json")))
    assert app.state.overlay == "tour"
    key(pygame.K_q)
    app.frame()
    assert not app.state.running


def test_next_through_every_step_closes_it_and_each_step_fits_the_window(sample):
    app = launch(sample, view_settings.ViewSettings())
    window = pygame.Rect((0, 0), app.layout.size)
    for step in range(len(STEPS)):
        app.frame()
        tour = app.region(TourOverlay)
        assert app.state.tour_step == step and window.contains(tour.box)
        assert not tour.box.colliderect(tour.target) or STEPS[step][0] in ("hidden", "lines"), step   # beside its part
        click(tour.buttons[1][0].center)                               # Next / Done
    app.frame()
    assert app.state.overlay is None and app.state.toured


def test_no_tour_when_the_window_was_not_launched_by_a_person(sample):
    app = open_app(sample)                                        # --frames / --screenshot runs: no view settings
    assert app.state.overlay is None


def test_the_help_reopens_the_tour(sample):
    app = open_app(sample)
    key(pygame.K_h)
    app.frame()
    click(app.region(HelpOverlay).tour_button().center)
    app.frame()
    assert app.state.overlay == "tour" and app.state.tour_step == 0
    key(pygame.K_ESCAPE)
    key(pygame.K_F3)
    app.frame()
    assert app.state.overlay == "tour"


def test_toolbar_buttons_show_their_keys_and_a_click_runs_the_keys_action(sample):
    app = open_app(sample, (1280, 720))
    bar = app.region(Toolbar)
    shown = {label: k for _, (label, k, _, _) in bar.buttons}
    assert {"New run", "Pause", "Chart", "Group", "Map", "All keys"} <= set(shown) and shown["Group"] == "O"
    assert all(app.layout.toolbar.contains(r) for r, _ in bar.buttons)
    before = app.state.sorted_grids
    group = next(r for r, b in bar.buttons if b[0] == "Group")
    click(group.center)
    app.frame()
    assert app.state.sorted_grids != before                     # what O does
    chart = next(r for r, b in bar.buttons if b[0] == "Chart")
    click(chart.center)
    app.frame()
    assert app.state.overlay == "chart"
    key(pygame.K_ESCAPE)
    click(group.center)                                         # grouped again: no message waits on the pass
    click(next(r for r, b in bar.buttons if b[0] == "New run").center)
    app.frame()
    assert "--no-train" in app.state.toast                         # a session without training says why
