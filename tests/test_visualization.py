"""visualization.py: the window's frame loop and its one list of regions. A view added from
outside the window's code (a region class and a key row, through `register`) is laid out,
drawn, opened by its key, given the legend bar and the caption strip, hit-tested, and
closed with Esc like the window's own overlays."""
import numpy as np
import pygame
import pytest

from mnist_live import visualization
from mnist_live.window import actions
from mnist_live.window.keys import KEYS, Key
from mnist_live.window.regions.base import OVERLAY, Region
from mnist_live.window.regions.caption import Caption
from mnist_live.window.regions.header import Legend
from mnist_live.window.regions.network import NetworkColumns
from mnist_live.window.regions.overlays import HelpOverlay
from mnist_live.window.regions.palette import DIM, TEXT
from mnist_live.window.session import invisible_driver
from window_driver import click, key, open_app, pixel, run_until, text_drawn_at

TOY = (200, 30, 200)


class ToyView(Region):
    """A magenta square over the network view; a click on it says where it was."""
    modal, z, overlay = True, OVERLAY, "toy"

    def legend(self, noun):
        return (f"the toy view: a square over the {noun}s; Y or Esc closes", "toy view")

    def caption(self, state, noun):
        return (("a toy view added from outside the window's code",),)

    def square(self):
        return self.rect.inflate(-self.rect.width // 2, -self.rect.height // 2)

    def key(self, scene):
        return self.rect.size

    def draw(self, surface, scene):
        pygame.draw.rect(surface, (16, 18, 26), self.rect)
        pygame.draw.rect(surface, TOY, self.square())

    def hit(self, pos):
        return ("explain", 4) if self.square().collidepoint(pos) else None


TOY_KEY = Key("F6", "the toy view on / off", actions.overlay, {pygame.K_F6: "toy"})


@pytest.fixture
def toy():
    visualization.register(ToyView, TOY_KEY)
    yield
    visualization.unregister(ToyView, TOY_KEY)


def test_a_view_registered_from_outside_draws_takes_its_key_shows_its_legend_and_closes(sample, toy, monkeypatch):
    app = open_app(sample)
    toy_region = app.region(ToyView)
    columns = app.region(NetworkColumns)
    centre = toy_region.square().center
    assert pixel(app, centre) != TOY and app.state.overlay is None
    key(pygame.K_F6)
    app.frame()
    assert app.state.overlay == "toy" and toy_region in app.layers() and columns not in app.layers()
    assert pixel(app, centre) == TOY                                 # drawn, over the network view
    legend, fs = app.region(Legend), app.region(Legend).fs - 2
    assert text_drawn_at(app, ToyView.legend(None, "digit")[0], fs, DIM, False, "midleft",
                         (legend.rect.x + 14, legend.rect.centery))  # its legend in the bar under it
    cap = app.region(Caption)
    assert text_drawn_at(app, "a toy view added from outside the window's code", cap.fs - 2, TEXT, False,
                         "topleft", (cap.rect.x + 14, cap.rect.y + 4))
    click(centre)                                                    # its hit test runs its answer
    app.frame()
    assert app.state.explain_class == 4
    help_rows = [k.label for k in app.scene().keys]
    assert "Y" in help_rows and help_rows.index("Y") < help_rows.index("click a film-strip digit")
    key(pygame.K_ESCAPE)
    app.frame()
    assert app.state.overlay is None and columns in app.layers() and toy_region not in app.layers()
    assert pixel(app, centre) != TOY


def test_without_the_registration_the_window_has_no_such_view(sample):
    """Catches: a test's registration left behind (the key table and the regions as shipped)."""
    assert ToyView not in visualization.REGIONS and TOY_KEY not in KEYS
    app = open_app(sample)
    key(pygame.K_F6)
    app.frame()
    assert app.state.overlay is None


def test_one_list_of_regions_drives_drawing_and_hit_tests_in_z_order(sample):
    app = open_app(sample)
    layers = app.layers()
    assert [r.z for r in layers] == sorted(r.z for r in layers)
    assert all(type(r) in visualization.REGIONS for r in app.regions) and len(app.regions) == len(visualization.REGIONS)
    key(pygame.K_h)
    app.frame()
    assert app.layers()[-1] is app.region(HelpOverlay)             # the help on top of everything
    assert app.region(NetworkColumns) in app.layers()              # it does not cover the network: drawn beneath


@pytest.mark.parametrize("driver, chosen, said", [("x11", "", ""), ("offscreen", "", "offscreen"),
                                                   ("KMSDRM", "", "KMSDRM"), ("dummy", "dummy", "")])
def test_a_driver_nobody_sees_is_refused_unless_the_user_chose_it(driver, chosen, said):
    assert invisible_driver(driver, {"SDL_VIDEODRIVER": chosen} if chosen else {}) == said


def test_an_exposed_window_is_pushed_whole(sample):
    """Catches: a window uncovered by another one left with the other one's pixels (only the
    changed rectangles pushed)."""
    app = open_app(sample)
    run_until(app, lambda: app.display.test_pass.result is not None)
    app.frame()
    app.needs_draw = True
    app.frame()
    assert app.last_push is not None                                 # nothing changed: a partial push
    pygame.event.post(pygame.event.Event(pygame.WINDOWEXPOSED))
    app.frame()
    assert app.last_push is None                                     # exposed: the whole window
    assert np.array_equal(pygame.surfarray.array3d(app.screen), pygame.surfarray.array3d(pygame.display.get_surface()))
