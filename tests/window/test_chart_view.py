"""Charts that answer "did it help?" (issue 31, item 6): the large chart (Z or a click on
the panel's chart) with a verdict per overlaid run, and overlay colours that stay apart
for six runs and for colour-blind viewers."""
import itertools

import numpy as np
import pygame
import pytest

from mnist_live.runs.comparison import MAX_OVERLAID
from mnist_live.window.regions.chart_view import ChartOverlay, common_level, verdict
from mnist_live.window.regions.palette import ACCENT, COMPARE_COLORS, LOSS_COLOR
from mnist_live.window.regions.panel import Panel
from window_driver import click, open_app


def test_the_verdict_says_the_gap_and_how_much_sooner():
    other = [(20.0, 0.95), (60.0, 0.975), (90.0, 0.9848)]
    live = [(25.0, 0.94), (100.0, 0.9752)]
    assert verdict("lr 0.003", other, live, 0.9848, 0.9752) == \
        "lr 0.003: 98.48 %, +0.96 pt over the run on screen, 40 s sooner to 97 %"
    assert verdict("batch 64", live, other, 0.9752, 0.9848) == \
        "batch 64: 97.52 %, -0.96 pt under the run on screen, 40 s later to 97 %"
    assert verdict("seed 2", other, live, 0.9848, None) == \
        "seed 2: 98.48 % (the run on screen has no full test-set figure yet)"
    assert common_level([0.991, 0.995]) == 0.98 and common_level([0.905, 0.95]) == 0.90


# --- colours as viewers with a colour-vision deficiency see them (Vienot, Brettel & Mollon 1999)
SIMULATE = {"normal": np.eye(3),
            "protanopia": np.array([[0.11238, 0.88762, 0.0], [0.11238, 0.88762, 0.0], [0.00401, -0.00401, 1.0]]),
            "deuteranopia": np.array([[0.29275, 0.70725, 0.0], [0.29275, 0.70725, 0.0], [-0.02234, 0.02234, 1.0]])}


def lab(rgb, matrix):
    """CIE L*a*b* (D65) of an sRGB colour seen through `matrix` (applied to linear RGB)."""
    c = np.asarray(rgb, np.float64) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    linear = np.clip(matrix @ linear, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = np.cbrt(xyz / np.array([0.95047, 1.0, 1.08883]))
    f = np.where(xyz / np.array([0.95047, 1.0, 1.08883]) > 0.008856, f,
                 7.787 * xyz / np.array([0.95047, 1.0, 1.08883]) + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def closest_pair(colours, matrix):
    return min(np.linalg.norm(lab(a, matrix) - lab(b, matrix)) for a, b in itertools.combinations(colours, 2))


@pytest.mark.parametrize("vision", sorted(SIMULATE))
def test_six_overlay_colours_stay_apart_for_colour_blind_viewers(vision):
    assert len(COMPARE_COLORS) >= MAX_OVERLAID == 6
    colours = list(COMPARE_COLORS[:MAX_OVERLAID]) + [ACCENT, LOSS_COLOR]     # and apart from the live run's
    assert closest_pair(colours, SIMULATE[vision]) >= 15, vision


def test_the_check_catches_a_red_and_a_green_a_deuteranope_cannot_tell_apart():
    """The check above can fail: a red and a green far apart for most viewers."""
    red, green = (220, 80, 60), (110, 160, 60)
    assert closest_pair([red, green], SIMULATE["normal"]) > 60
    assert closest_pair([red, green], SIMULATE["deuteranopia"]) < 15


def test_a_click_on_the_panels_chart_opens_the_large_chart(sample):
    app = open_app(sample, (1280, 720))
    click(app.region(Panel).chart.rect.center)
    app.frame()
    assert app.state.overlay == "chart"
    big = app.region(ChartOverlay)
    small = app.region(Panel).chart.rect
    assert big.chart.rect.width * big.chart.rect.height > 8 * small.width * small.height
    from mnist_live.window.regions.palette import TEXT
    from window_driver import text_drawn_at
    title = (big.rect.x + 20, big.rect.y + 10)                # no earlier run: the title does not say one is overlaid
    assert app.compare.runs == [] and text_drawn_at(app, "Loss and test accuracy", big.fs + 1, TEXT, True, "topleft",
                                                    title)
    assert not text_drawn_at(app, "Loss and test accuracy, earlier runs overlaid: did it help?", big.fs + 1, TEXT,
                             True, "topleft", title)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_z, mod=0, unicode="z", scancode=0))
    app.frame()
    assert app.state.overlay is None
