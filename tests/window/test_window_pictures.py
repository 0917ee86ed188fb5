"""Picture tests that check each mark is WHERE it belongs and shows WHAT it claims: the
per-class accuracy bars, the input column's pixel map (G), the ends of the connection
lines, the class the lines follow when one is chosen, and the header's accuracy with its
label. Pixels are read from the rectangles the layout placed; what they should show is
worked out here from the layout's grids and the model, not from the region's own maths.
Each test's docstring lists the breakages it was seen to catch."""
import dataclasses

import numpy as np
import pygame
import pytest

from mnist_live.explain.neurons import order_by_class
from mnist_live.training.history import EvalRecord
from mnist_live.window.regions.charts import bar_floor
from mnist_live.window.regions.header import Header
from mnist_live.window.regions.network import NetworkColumns
from mnist_live.window.regions.palette import ACCENT, DIM, GRID_BG, NEGATIVE, POSITIVE, RIGHT, TEXT, WRONG
from mnist_live.window.regions.panel import Panel
from mnist_live.window.view_model import WeightsStamp, compute_view, describe_position
from window_driver import click, index_where, key, open_app, passed, pixel, pixels, run_until, text_drawn_at


def evaluation(kind, accuracy, per_class, epoch, batch):
    """An EvalRecord as the trainer sends it (the subset has 1,000 digits, the full set 10,000)."""
    n = 1000 if kind == "subset" else 10000
    confusion = np.diag(np.full(10, n // 10))
    return EvalRecord(epoch + batch / 500, kind, accuracy, tuple(float(v) for v in per_class), epoch, batch, n,
                      confusion=confusion)


def show_reports(app, *reports):
    """Apply the reports as the trainer link does and run until the panel shows them."""
    for r in reports:
        app.tele.apply(r)
    app.needs_draw = True
    run_until(app, lambda: app.panel.seen[0] == app.tele.version)    # the panel follows within 0.3 s
    app.needs_draw = True
    app.frame()


# ------------------------------------------------------------------- per-class bars
def test_each_class_bar_has_that_classs_length_name_figure_and_change(sample):
    """Catches: the bars drawn in reversed class order; each bar drawn with the next
    class's value; the figure beside a bar of another class; the change since the
    previous evaluation with its sign flipped or compared with the wrong class."""
    app = open_app(sample)
    first = np.array([0.61, 0.97, 0.42, 0.88, 0.73, 0.35, 0.93, 0.80, 0.55, 0.67])
    now = first + np.array([0.05, -0.03, 0.21, 0.0003, -0.12, 0.30, 0.04, 0.07, -0.20, 0.11])   # 3: unchanged (DIM)
    assert len(set(np.round(now, 3))) == 10 and now.max() <= 1
    show_reports(app, evaluation("full", 0.75, first, 1, 0), evaluation("full", 0.80, now, 2, 0))
    bars = app.region(Panel).bars
    fs = bars.fs - 1
    lo, hardest = bar_floor(now), int(np.argmin(now))          # the scale zoomed to the data; the hardest in red
    for c, bar in enumerate(bars.bar_rects(app.names)):
        assert bars.rect.contains(bar)
        row = pixels(app, pygame.Rect(bar.x, bar.centery, bar.width, 1))[:, 0]     # (w, 3) along the bar
        filled = int(bar.width * np.clip((now[c] - lo) / (1 - lo), 0, 1))
        assert (row[:filled] == ACCENT).all() and (row[filled:] == GRID_BG).all(), c
        assert text_drawn_at(app, app.names[c], fs, WRONG if c == hardest else TEXT, c == hardest, "midleft",
                             (bars.rect.x, bar.centery)), c
        assert text_drawn_at(app, f"{100 * now[c]:.1f}", fs - 1, TEXT, False, "midleft",
                             (bar.right + 4, bar.centery)), c
        d = 100 * (now[c] - first[c])
        colour = RIGHT if d > 0.05 else WRONG if d < -0.05 else DIM
        assert text_drawn_at(app, f"{d:+.1f}", fs - 3, colour, False, "midright",
                             (bars.rect.right, bar.centery)), c
    panel = app.region(Panel)
    w, size = panel.rect.width - 28, panel.fs - 2
    phrasings = app.scene().classes[2]                       # the fullest that fits is drawn
    assert all(t.startswith("full test set, after epoch 2") for t in phrasings[:1]), phrasings
    label = app.text.fit(next((t for t in phrasings if app.text.width(t, size) <= w), phrasings[-1]), size, w)
    assert text_drawn_at(app, label, panel.fs - 2, DIM, False, "topleft",
                         (panel.rect.x + 14, panel.bars_y + panel.fs + 5))          # what the bars are of


# ------------------------------------------------------------- input pixel map (G)
INKED = ((4, 19), (9, 6), (13, 22), (18, 11), (22, 3), (6, 14), (16, 25), (24, 17))   # (row, col); no two transposed


def test_the_pixel_map_colours_exactly_the_inked_cells_warm_or_cool_by_sign(sample):
    """A digit with ink on eight known pixels: its relevance (z+ rule) lives on those
    pixels only, so the map must colour exactly those cells of the 28x28 grid, warm where
    the pixel supports the class and cool where it opposes, and leave every other cell
    (their transposes among them) the digit's own grey.
    Catches: the map transposed; its signs swapped; shifted by a cell; not drawn."""
    x = sample.x_test.copy()
    x[0] = 0
    for r, c in INKED:
        x[0, r * 28 + c] = 230
    app = open_app(dataclasses.replace(sample, x_test=x), connections=0)
    app.state.go(0)
    key(pygame.K_g)
    app.frame()
    def balance():                                 # how strongly the weaker sign shows (0: one sign only)
        s = app.display.view.saliency[[r * 28 + c for r, c in INKED]]
        return min(s.max(initial=0), -s.min(initial=0)) / np.abs(s).max()
    scores = []
    for d in range(10):                            # the contrast under which pixels clearly oppose and support
        key(pygame.K_0 + d, mod=pygame.KMOD_LCTRL)
        app.frame()
        scores.append(balance() if app.display.view.contrast == d else -1)
        key(pygame.K_0 + d, mod=pygame.KMOD_LCTRL)         # again: off
        app.frame()
    key(pygame.K_0 + int(np.argmax(scores)), mod=pygame.KMOD_LCTRL)
    app.frame()
    sal = app.display.view.saliency                                             # (784,)
    signs = np.sign(sal[[r * 28 + c for r, c in INKED]])
    assert (signs > 0).any() and (signs < 0).any(), "no contrast gives both signs"
    assert np.count_nonzero(sal) == len(INKED)
    g = app.layout.input
    inked = {r * 28 + c for r, c in INKED}
    hued = []
    for p in range(784):
        got = pixel(app, g.cell_rect(p).center)
        if p in inked:
            assert got != (230, 230, 230), divmod(p, 28)                  # coloured, not the bare ink
            if abs(sal[p]) >= 0.2 * np.abs(sal).max():                    # (the faintest sit on a bluish dark)
                warm, cool = got[0] > got[2] + 10, got[2] > got[0] + 10
                assert (warm, cool) == ((True, False) if sal[p] > 0 else (False, True)), (divmod(p, 28), got)
                hued.append(np.sign(sal[p]))
        else:
            assert got == (0, 0, 0), (divmod(p, 28), got)                # the digit's own (black) pixel
    assert len(hued) >= 4 and 1 in hued and -1 in hued        # warm and cool cells both checked
    strongest = int(np.argmax(np.abs(sal)))
    assert pixel(app, g.cell_rect(strongest).center) == (POSITIVE if sal[strongest] > 0 else NEGATIVE)


# ----------------------------------------------------------------- connection lines
def neuron_centre(app, layer, j):
    """Where neuron j of `layer` (0 input, 1.. hidden, last output) is drawn on screen,
    from the layout's grids and, with O, the pass's class order (position p shows neuron
    order[p])."""
    lay = app.layout
    if layer == 0:
        return np.array(lay.input.cell_rect(j).center, np.float64)
    if layer == len(lay.hidden) + 1:
        return np.array(app.region(NetworkColumns).output_neuron(j)[0], np.float64)     # the circle's centre
    p = j
    if app.state.sorted_grids:
        p = int(np.flatnonzero(order_by_class(passed(app).preferred[layer - 1]) == j)[0])
    return np.array(lay.hidden[layer - 1].cell_rect(p).center, np.float64)


def segments(app, conns):
    """[(pair, src, dst, start (2,), end (2,))] of every connection in conns."""
    return [(pair, s, d, neuron_centre(app, pair, s), neuron_centre(app, pair + 1, d))
            for pair, (src, dst, _) in enumerate(conns) for s, d in zip(src.tolist(), dst.tolist())]


def distance(p, a, b):
    """Distance of point p from the segment a-b."""
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-9), 0, 1)
    return float(np.hypot(*(a + t * ab - p)))


def line_alpha(app, p, name="view"):
    """The strongest line opacity within a pixel of p, on the lines layer the window
    blits under its columns (the columns cover the lines' ends on screen)."""
    layer = app.region(NetworkColumns).cache[("lines", name)]
    ox, oy = app.region(NetworkColumns).rect.topleft
    x, y = int(round(p[0])) - ox, int(round(p[1])) - oy
    return max(layer.get_at((x + dx, y + dy)).a for dx in (-1, 0, 1) for dy in (-1, 0, 1))


def check_line_ends(app):
    """Each drawn connection runs from its source's centre to its target's centre and
    stops there: opaque at both ends, clear just beyond each (where no other line passes)."""
    segs = segments(app, app.display.view.conns)
    assert len(segs) == 3 * app.state.k
    checked = 0
    for i, (pair, s, d, a, b) in enumerate(segs):
        assert line_alpha(app, a) > 0 and line_alpha(app, b) > 0, (pair, s, d)
        assert line_alpha(app, (a + b) / 2) > 0, (pair, s, d)
        u = (b - a) / np.hypot(*(b - a))
        step = max(5.0, 0.7 * app.layout.hidden[0].cell)
        for probe in (b + step * u, a - step * u):        # a line to a neighbour's centre would go on here
            if all(distance(probe, a2, b2) > 5 for j, (_, _, _, a2, b2) in enumerate(segs) if j != i):
                assert line_alpha(app, probe) == 0, (pair, s, d)
                checked += 1
    assert checked >= len(segs)                           # most ends were clear to check
    net = app.region(NetworkColumns).rect
    columns = [app.layout.input.rect] + [g.rect for g in app.layout.hidden] + [app.layout.output]
    for pair, s, d, a, b in segs:                         # and the lines are on screen between the columns
        between = [a + t * (b - a) for t in np.linspace(0.05, 0.95, 40)]
        between = [p for p in between if net.collidepoint(p) and not any(r.inflate(4, 4).collidepoint(p)
                                                                           for r in columns)]
        bg = np.array(pixel(app, (net.x + 2, net.bottom - 3)))
        assert any((pixels(app, pygame.Rect(int(p[0]) - 1, int(p[1]) - 1, 3, 3)) != bg).any() for p in between), \
            (pair, s, d)


def test_each_line_ends_on_its_neurons_centres_in_index_order_and_sorted_by_class(sample):
    """Catches: lines drawn to the neighbour's centre (target j + 1); from the
    neighbouring input pixel; the hidden grids' sorted and index-order centres swapped
    (lines to where a neuron would be, not where it is drawn); output lines to the next row."""
    app = open_app(sample, connections=5)
    app.state.go(index_where(app, True))
    app.frame()
    check_line_ends(app)
    key(pygame.K_o)
    run_until(app, lambda: passed(app) is not None and passed(app).preferred is not None
              and app.region(NetworkColumns).orders[0] is not None)
    app.needs_draw = True
    app.frame()
    order = order_by_class(passed(app).preferred[0])
    assert not np.array_equal(order, np.arange(len(order)))            # the order really moves neurons
    check_line_ends(app)


# ------------------------------------------------------- the class the lines follow
def same_lines(a, b):
    return all(sorted(zip(s1.tolist(), d1.tolist())) == sorted(zip(s2.tolist(), d2.tolist()))
               for (s1, d1, _), (s2, d2, _) in zip(a, b))


def check_lines_follow(app, c):
    """The drawn lines are class c's most relevant connections (not the prediction's)."""
    v = app.display.view
    assert v.explained == c != v.pred
    want = compute_view(app.display.net, v.x, app.display.stamp, app.state.k, "relevance", explain=c).conns
    pred = compute_view(app.display.net, v.x, app.display.stamp, app.state.k, "relevance").conns
    assert not same_lines(want, pred), "this class's lines are the prediction's: proves nothing"
    assert same_lines(v.conns, want)
    wanted = segments(app, want)
    for _, _, _, a, b in wanted:                              # drawn ...
        assert line_alpha(app, (a + b) / 2) > 0
    only_pred = [sg for sg in segments(app, pred) if not any(
        sg[0] == w[0] and (sg[1], sg[2]) == (w[1], w[2]) for w in wanted)]
    checked = 0
    for _, _, _, a, b in only_pred:                           # ... and the prediction's own are not
        mid = (a + b) / 2
        if all(distance(mid, a2, b2) > 5 for _, _, _, a2, b2 in wanted):     # lines are up to 3 px wide
            assert line_alpha(app, mid) == 0
            checked += 1
    assert checked >= 3


def test_the_lines_follow_the_class_chosen_by_shift_digit_or_a_click(sample):
    """Catches: the lines computed for the prediction while another class is explained;
    the lines not redrawn when the explained class changes (the prediction's left on screen)."""
    app = open_app(sample, connections=10)
    app.state.go(index_where(app, True))
    app.frame()
    pred = app.display.view.pred
    c = (pred + 3) % 10
    key(pygame.K_0 + c, mod=pygame.KMOD_SHIFT)
    app.frame()
    check_lines_follow(app, c)
    c2 = (pred + 6) % 10
    click(app.layout.output_rows[c2].center)
    app.frame()
    check_lines_follow(app, c2)


# ------------------------------------------------------------- the header's accuracy
FULL_1 = evaluation("full", 0.9123, np.full(10, 0.9123), 1, 0)
SUBSET = evaluation("subset", 0.8765, np.full(10, 0.8765), 1, 300)
FULL_2 = evaluation("full", 0.9456, np.full(10, 0.9456), 2, 0)
LABELS = {id(FULL_1): "full test set, after epoch 1", id(SUBSET): "1,000-digit subset, epoch 2, batch 300",
          id(FULL_2): "full test set, after epoch 2"}


def header_text(ev):
    return f"test accuracy {100 * ev.accuracy:.2f} % ({LABELS[id(ev)]})"


@pytest.mark.parametrize("order, shown", [
    ((FULL_1, SUBSET), FULL_1),                 # full, then a subset during the next epoch: beside it
    ((SUBSET, FULL_1), FULL_1),                 # subset, then the full set
    ((SUBSET, FULL_2), FULL_2),
    ((FULL_1, SUBSET, FULL_2), FULL_2),
    ((FULL_2, SUBSET), None),                   # an older evaluation arriving after a newer one
    ((FULL_2, FULL_1), None),
], ids=["full-subset", "subset-full", "subset-newer-full", "full-subset-full", "newer-then-older-subset",
        "newer-then-older-full"])
def test_the_headers_accuracy_figure_and_its_label_are_of_one_evaluation(sample, order, shown):
    """Catches: the figure of the last full evaluation under the label of the latest one
    (or the other way round); the subset's label on the full set's figure."""
    app = open_app(sample)
    app.state.toast = ""          # no message beside it: a message shortens the headline to leave itself room
    show_reports(app, *order)
    h = app.region(Header)
    at = (h.rect.right - 12, h.rect.y + 4)
    beside = " | 1,000-digit subset 87.65 % (epoch 2, batch 300)" if order == (FULL_1, SUBSET) else ""
    drawn = [ev for ev in (FULL_1, SUBSET, FULL_2) if text_drawn_at(app, header_text(ev) + beside, h.fs, ACCENT,
                                                                     True, "topright", at)]
    if shown is not None:
        assert drawn == [shown]
    else:                                       # either may be shown, but whole: one figure with its own label
        assert len(drawn) == 1 and drawn[0] in order
    assert describe_position(1, 300) == "epoch 2, batch 300"                    # the labels spelt above


def test_the_header_and_the_bars_are_of_the_same_evaluation(sample):
    """Catches: the bars of the last full evaluation under the header's subset (the two
    regions disagreeing about which evaluation is on screen)."""
    app = open_app(sample)
    app.state.toast = ""          # no message beside it: a message shortens the headline to leave itself room
    app.display.stamp = WeightsStamp(1, 1, 300)          # weights much newer than FULL_1: the subset leads
    per_class = np.linspace(0.5, 0.95, 10)
    subset = evaluation("subset", 0.8765, per_class, 1, 300)
    show_reports(app, FULL_1, subset)
    bars = app.region(Panel).bars
    for c, bar in enumerate(bars.bar_rects(app.names)):
        row = pixels(app, pygame.Rect(bar.x, bar.centery, bar.width, 1))[:, 0]
        lo = bar_floor(per_class)
        assert (row == ACCENT).all(axis=1).sum() == int(bar.width * np.clip((per_class[c] - lo) / (1 - lo), 0, 1))
    h = app.region(Header)
    assert text_drawn_at(app, "test accuracy 87.65 % (1,000-digit subset, epoch 2, batch 300) | full test set 91.23 % "
                         "after epoch 1", h.fs, ACCENT, True, "topright", (h.rect.right - 12, h.rect.y + 4))
