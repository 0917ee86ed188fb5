"""The caption strip: its texts (captions.caption, pure), its own rectangle in the layout,
what it draws, and the I key."""
import numpy as np
import pygame
import pytest

from mnist_live import data_loader
from mnist_live.window import captions
from mnist_live.window.captions import IDEAS
from mnist_live.window.regions.caption import Caption
from mnist_live.window.regions.layout import compute_layout
from mnist_live.window.regions.palette import TEXT
from mnist_live.window.state import WindowState
from window_driver import key, open_app, run_until, text_drawn_at


@pytest.fixture(scope="module")
def sample():
    return data_loader.load_dataset("mnist", offline=True, log=lambda *a: None)


def caption(st, **kw):
    """The caption as the window gives it: an open overlay's region says its own."""
    from mnist_live.visualization import REGIONS
    region = next((r for r in REGIONS if r.overlay is not None and r.overlay == st.overlay), None)
    own = None if region is None else region(None).caption(st, kw.get("noun", "digit"))
    return captions.caption(st, overlay=own, **kw)


def state(**kw):
    st = WindowState(np.zeros(10, np.int64))
    for k, v in kw.items():
        setattr(st, k, v)
    return st


def text(st, **kw):
    """All phrasings of the caption, lower case, in one string."""
    return " | ".join(p for line in caption(st, **kw) for p in line).lower()


def first(st, **kw):
    return caption(st, **kw)[0][0].lower()


@pytest.mark.parametrize("changes, words", [
    ({}, ["relevance", "% between columns", "60"]),
    ({"rank_mode": "contribution"}, ["|a*w|", "activation x weight"]),
    ({"rank_mode": "weight"}, ["|w|", "same for every digit"]),
    ({"saliency": "relevance"}, ["pixel map", "relevance", "class 3"]),
    ({"saliency": "gradient"}, ["pixel map", "d score / d pixel"]),
    ({"dream": ("class", 3)}, ["dream", "gradient ascent from faint noise", "strokes"]),
    ({"atlas": True}, ["atlas", "prototype"]),
    ({"overlay": "map", "map_layer": 1}, ["map", "hidden layer 2", "principal components"]),
    ({"overlay": "confusion"}, ["confusion", "true class", "diagonal"]),
    ({"rewind": 2}, ["rewound", "earlier snapshot", "live"]),
])
def test_the_caption_says_what_the_view_on_screen_shows(changes, words):
    """Catches: a mode captioned as another, or with the wrong words."""
    got = first(state(**changes), explained="3")
    for w in words:
        assert w in got, (w, got)


def test_grouped_grids_are_captioned_once_they_are_on_screen_in_bands():
    got = first(state(sorted_grids=True), explained="3", grouped=True)
    assert "grouped" in got and "class they support most" in got and "line between the bands" in got
    assert "grouped" not in first(state(sorted_grids=True), explained="3")      # not yet learned: index order


def test_the_most_specific_view_names_the_first_line_and_the_lines_follow():
    st = state(dream=("class", 3), atlas=True, sorted_grids=True, rank_mode="weight")
    lines = caption(st, explained="3")
    assert "dream" in lines[0][0] and "|w|" in lines[1][0] and len(lines) == 2
    assert len(caption(state(overlay="confusion", rank_mode="weight"))) == 1   # no lines under an overlay
    assert caption(state(overlay="help")) == ()                                 # the help covers it all


def test_dead_and_subset_are_explained_only_when_on_screen():
    """Catches: the notes shown when nothing is dead and the accuracy is of the full test set."""
    assert len(caption(state())) == 1
    both = caption(state(), dead=4, subset=True)[1][0]
    assert "dead" in both and "never on for any test digit" in both and "1,000-digit subset" in both
    assert "subset" not in caption(state(), dead=4)[1][0]
    assert "dead" not in caption(state(), subset=True)[1][0]
    assert "image" in caption(state(), noun="image", dead=1)[1][0]


def test_every_line_has_phrasings_from_the_fullest_to_the_shortest():
    for changes in ({}, {"rank_mode": "contribution"}, {"rank_mode": "weight"}, {"dream": ("class", 1)},
                    {"atlas": True}, {"saliency": "gradient"}, {"overlay": "map"}, {"rewind": 0}):
        for line in caption(state(**changes), dead=1, subset=True):
            assert len(line) >= 2 and all(len(a) >= len(b) for a, b in zip(line, line[1:])), line
            assert len(line[-1]) <= 60, line[-1]                    # the shortest fits a 640-px window


def test_the_help_explains_the_same_ideas_with_the_same_figures():
    ideas = " ".join(t for _, t in IDEAS)
    for shared in ("little between", "gradient ascent from faint noise", "never on for any test {noun}",
                   "1,000-{noun} subset", "I hides it"):
        assert shared in ideas, shared
    assert "little between" in text(state()) and "gradient ascent from faint noise" in text(state(dream=("class", 1)))


@pytest.mark.parametrize("size", [(640, 400), (1000, 600), (1280, 720), (1600, 900)])
@pytest.mark.parametrize("hidden", [(1024, 512), (64,), (300, 100, 50)])
def test_the_caption_has_its_own_rectangle_above_the_legend(size, hidden):
    """Catches: the caption overlapping the network's columns, the strip or the legend."""
    lay = compute_layout(*size, hidden)
    window = pygame.Rect((0, 0), size)
    cap = lay.caption
    assert cap is not None and cap.bottom == lay.legend.y and cap.height >= 2 * lay.font_size
    rects = {"header": lay.header, "network": lay.network, "legend": lay.legend, "panel": lay.panel,
             "input": lay.input.rect, "output": lay.output, **{f"h{i}": g.rect for i, g in enumerate(lay.hidden)},
             **({"strip": lay.strip} if lay.strip is not None else {})}
    for name, r in rects.items():
        assert window.contains(r), name
        assert not cap.colliderect(r), name
    for name in ("input", "output", *(f"h{i}" for i in range(len(hidden))), *(["strip"] * (lay.strip is not None))):
        assert lay.network.contains(rects[name]), name
    off = compute_layout(*size, hidden, caption=False)
    assert off.caption is None and off.network.height == lay.network.height + cap.height


def test_the_caption_is_drawn_and_i_hides_it(sample):
    """Catches: the strip not drawn, drawn in the wrong place, or I not giving its room back."""
    app = open_app(sample, (1280, 720))
    app.frame()
    app.state.toast = ""
    app.draw(app.screen)
    shown = app.region(Caption).chosen(app.scene())
    cap = app.layout.caption
    fs = app.layout.font_size - 2
    assert "relevance" in shown[0]
    assert text_drawn_at(app, shown[0], fs, TEXT, False, "topleft", (cap.x + 14, cap.y + 4))
    height = app.layout.network.height
    key(pygame.K_i)
    run_until(app, lambda: app.layout.caption is None)
    assert app.region(Caption) not in app.layers() and app.layout.network.height == height + cap.height
    key(pygame.K_g)                                  # the caption follows the view: back on, the pixel map's
    key(pygame.K_i)
    run_until(app, lambda: app.layout.caption is not None)
    assert "pixel map" in app.region(Caption).chosen(app.scene())[0]


@pytest.mark.parametrize("size", [(640, 400), (1280, 720), (1600, 900)])
def test_each_caption_line_fits_the_strip(sample, size):
    """Catches: a phrasing chosen that runs past the strip's right edge."""
    app = open_app(sample, size)
    for k in (None, pygame.K_c, pygame.K_c, pygame.K_v):
        if k is not None:
            key(k)
            app.frame()
        for line in app.region(Caption).chosen(app.scene()):
            assert app.text.width(line, app.layout.font_size - 2) <= app.layout.caption.width - 28, line


# ------------------------------------------------------------ watching it learn
def _learning_lines():
    from mnist_live.window import captions as c
    return [c.backward_caption("digit", 3, True, 60), c.backward_caption("digit", 7, False, 60),
            c.updates_caption("digit", 1, 60), c.updates_caption("image", 50, 30),
            *(c.step_caption("digit", 128, 0.314, p) for p in ("forward", "loss", "backward", "update")),
            c.health_caption()]


def test_the_learning_captions_go_from_the_fullest_to_the_shortest():
    for line in _learning_lines():
        assert len(line) >= 2 and all(len(a) >= len(b) for a, b in zip(line, line[1:])), line
        assert len(line[-1]) <= 60, line[-1]


def test_the_learning_captions_say_what_the_view_is_of():
    """Catches: a caption that names the wrong class, span or phase, or the wrong target of a
    drawn digit."""
    from mnist_live.window.captions import LEARNING_IDEAS
    back, drawn, one, span, fwd, loss, bwd, upd, health = _learning_lines()
    assert "true class 3" in back[0] and "own answer 7" in drawn[0] and "drawn digit has no label" in drawn[0]
    assert "class 3" in back[1] and "the 60 weights" in back[0] and "0 where the relu is off" in back[0].lower()
    assert "last batch" in one[0] and "last 50 batches" in span[0] and "image's scores" in span[0]
    assert "forward" in fwd[0] and "0.314" in loss[0] and "128 digits" in loss[0] and "error flows back" in bwd[0]
    assert "changes the weights" in upd[0] and len({fwd[1], loss[1], bwd[1], upd[1]}) == 4
    assert "1/1,000" in health[0] and "38 %, 68 %, 86 %" in health[0]
    ideas = " ".join(t for _, t in LEARNING_IDEAS)
    assert "1/1,000" in ideas and "after it minus before" in ideas and "off" in ideas
