"""The window's regions: each owns its rectangle, lays itself out, draws from a `Scene`
(read-only: it changes nothing but its own caches) and answers hit tests.

`visualization.App` routes events to them (modal overlays first) and draws them in
order. The numbers they show come from `view_model`; nothing here trains or predicts
except through the scene's `predict` (the current weights' cached predictions).
"""
from __future__ import annotations

import os
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pygame

from view_model import describe_position, hover_connections, rank_label, receptive_field

BG = (16, 18, 26)                 # window background
PANEL_BG = (24, 27, 38)           # side panel and overlays
GRID_BG = (30, 34, 46)            # an inactive neuron / empty bar
TEXT = (225, 230, 240)
DIM = (140, 148, 165)             # secondary text
ACCENT = (90, 180, 235)           # neutral data: bars, accuracy curve, selection
POSITIVE = (255, 150, 40)         # warm: excitatory weight / contribution / saliency
NEGATIVE = (70, 150, 255)         # cool: inhibitory
RIGHT = (80, 205, 120)            # correct prediction
WRONG = (240, 80, 80)             # wrong prediction
DEAD = (105, 40, 85)              # a neuron never active on the test-set pass
LOSS_COLOR = (240, 190, 80)       # training-loss curve
SUBSET_COLOR = (60, 120, 160)     # test accuracy on the fixed 1,000-digit subset
HEADER_H = 44                     # title bar: two text lines
LEGEND_H = 34                     # legend strip under the network
HOVER_PX = 6                      # receptive-field pixels per input pixel in the tooltip
MIN_SIZE = (640, 400)             # smaller windows show a notice instead of the network

# activation colour ramp: inactive -> teal -> near white (brightness = activation)
_RAMP = np.array([GRID_BG, (20, 110, 150), (60, 200, 220), (235, 250, 255)], np.float32)


def _ramp_table(n=256):
    v = np.linspace(0, 1, n) * (len(_RAMP) - 1)
    i = np.minimum(v.astype(np.int32), len(_RAMP) - 2)
    t = (v - i)[:, None]
    return (_RAMP[i] * (1 - t) + _RAMP[i + 1] * t).astype(np.uint8)


RAMP_LUT = _ramp_table()          # (256, 3): a table lookup per frame instead of maths


def ramp(values):
    """values (...,) in [0, 1] -> uint8 RGB (..., 3) along the activation ramp."""
    return RAMP_LUT[(np.clip(values, 0, 1) * 255).astype(np.uint8)]


def diverging(values):
    """values (...,) in [-1, 1] -> RGB: cool for negative, warm for positive, dark at 0."""
    v = np.clip(values, -1, 1)[..., None]
    base = np.array(GRID_BG, np.float32)
    pos, neg = np.array(POSITIVE, np.float32), np.array(NEGATIVE, np.float32)
    out = np.where(v >= 0, base + (pos - base) * v, base + (neg - base) * -v)
    return out.astype(np.uint8)


def confusion_color(n, row_max, diagonal):
    """Colour of a confusion-matrix cell holding n of a row whose largest cell is row_max."""
    frac = (n / max(row_max, 1)) ** 0.5
    base = np.array(RIGHT if diagonal else WRONG, np.float32)
    return tuple(int(v) for v in np.array(GRID_BG, np.float32) * (1 - frac) + base * frac)


def verdict_color(pred, true):
    """Ring / frame colour: right, wrong, or neutral when there is no true label."""
    return ACCENT if true is None else RIGHT if pred == true else WRONG


def nbytes(value):
    """Memory held by a cached value: pixels of a surface, bytes of an array (recursing into
    tuples and lists); 64 for anything else (a number, a small object)."""
    if isinstance(value, pygame.Surface):
        return value.get_pitch() * value.get_height()
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value) + 64
    return 64


class BoundedCache:
    """A dict of at most `max_bytes` of values (measured by `nbytes`) and `max_entries`
    entries: the least recently used go first, one at a time, so the cache stays at its
    bound instead of filling up and being emptied at once."""

    def __init__(self, max_bytes=float("inf"), max_entries=100_000):
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self.items, self.sizes, self.bytes = OrderedDict(), {}, 0

    def get(self, key, default=None):
        value = self.items.get(key, default)
        if key in self.sizes:
            self.items.move_to_end(key)
        return value

    def __setitem__(self, key, value):
        self.pop(key)
        self.items[key], self.sizes[key] = value, nbytes(value)
        self.bytes += self.sizes[key]
        while len(self.items) > 1 and (self.bytes > self.max_bytes or len(self.items) > self.max_entries):
            old, _ = self.items.popitem(last=False)
            self.bytes -= self.sizes.pop(old)

    def __getitem__(self, key):
        value = self.items[key]
        self.items.move_to_end(key)
        return value

    def __contains__(self, key):
        return key in self.items

    def __len__(self):
        return len(self.items)

    def pop(self, key, default=None):
        if key not in self.items:
            return default
        self.bytes -= self.sizes.pop(key)
        return self.items.pop(key)

    def values(self):
        return self.items.values()

    def clear(self):
        self.items.clear()
        self.sizes.clear()
        self.bytes = 0

    def made(self, key, make):
        """cache[key], made by make() when missing."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = self[key] = make()
        return value


_MISSING = object()
TEXT_CACHE_BYTES = 3 << 20        # rendered text (one frame draws 0.5 MB of it, 1.5 MB with the help)
WIDTH_CACHE_ENTRIES = 20_000      # measured text widths (a frame measures about 130)
THUMB_CACHE_BYTES = 2 << 20       # film-strip thumbnails (25 kB each at 80 px; a strip shows 20-60)
PICTURE_CACHE_BYTES = 2 << 20     # the tooltip's receptive fields and prototypes (0.1 MB each)


# ------------------------------------------------------------------------------ text
class TextCache:
    """Rendered text surfaces, re-rendered only when the string changes (the least
    recently used are dropped past TEXT_CACHE_BYTES)."""

    def __init__(self):
        self.fonts = {}
        self.surfs = BoundedCache(TEXT_CACHE_BYTES)
        self.widths = BoundedCache(max_entries=WIDTH_CACHE_ENTRIES)

    def font(self, size, bold=False):
        key = (size, bold)
        if key not in self.fonts:
            f = pygame.font.Font(None, int(size * 1.3))
            f.set_bold(bold)
            self.fonts[key] = f
        return self.fonts[key]

    def render(self, text, size, color=TEXT, bold=False):
        key = (text, size, color, bold)
        return self.surfs.made(key, lambda: self.font(size, bold).render(text, True, color))

    def width(self, text, size, bold=False):
        return self.widths.made((text, size, bold), lambda: self.font(size, bold).size(text)[0])

    def fit(self, text, size, width, bold=False):
        """text, shortened with '...' so it renders within width pixels."""
        font = self.font(size, bold)
        if self.width(text, size, bold) <= width:
            return text
        lo, hi = 0, len(text)
        while lo < hi:                       # longest prefix that fits with '...'
            mid = (lo + hi + 1) // 2
            if font.size(text[:mid] + "...")[0] <= width:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo] + "..."

    def wrap(self, text, size, width, bold=False):
        """text broken at spaces into lines that each fit width pixels."""
        if self.width(text, size, bold) <= width:
            return [text]
        words, lines = text.split(" "), []
        line = ""
        for w in words:
            trial = w if not line else line + " " + w
            if self.width(trial, size, bold) <= width or not line:
                line = trial
            else:
                lines.append(line)
                line = w
        lines.append(line)
        return [self.fit(t, size, width, bold) for t in lines]

    def widest(self, texts, size, bold=False):
        return max(self.width(t, size, bold) for t in texts)

    def blit(self, target, text, pos, size, color=TEXT, bold=False, anchor="topleft"):
        surf = self.render(text, size, color, bold)
        rect = surf.get_rect(**{anchor: pos})
        target.blit(surf, rect)
        return rect


# ---------------------------------------------------------------------------- scene
@dataclass
class Scene:
    """Everything one frame draws, gathered once by the app (regions only read it)."""
    state: object                # view_model.WindowState
    tele: object                 # view_model.Telemetry
    view: object                 # view_model.View of the digit on screen
    shown: dict                  # eased display values: ("hidden", i) -> (n,), "probs" -> (10,)
    sweep: object                # view_model.Pass or None: the last complete test-set pass
    predict: object              # indices -> classes under the view's weights
    weights: list                # the view's weights (fan_in, fan_out) per layer
    config: object
    images: np.ndarray           # (N, 784) uint8 test images
    names: tuple                 # class names
    short_names: tuple           # class names that fit under a thumbnail
    noun: str                    # "digit" or "image"
    dataset: str                 # "MNIST" or "Fashion-MNIST"
    data_label: str              # where the data came from, and how much
    status: tuple                # (text, colour) of the training state
    fps_line: str
    keys: tuple                  # the key table, for the help overlay
    lines_stamp: tuple           # changes whenever the drawn connections must change
    confusion: tuple | None      # (10x10 matrix, what weights it is of) of the newest full test-set result
    orders: list | None = None   # per hidden layer: position -> neuron (grids sorted by preferred class)
    classes: tuple = (None, None, "")   # per-class accuracy (10,), the previous one of its kind, what it is of
    accuracy: str = ""           # the header's accuracy when it is not the latest evaluation (rewound)
    dream_step: int = 0          # gradient-ascent steps of the dream on screen (state.dream says of what)
    map: object = None           # view_model.RepresentationMap
    map_points: np.ndarray | None = None    # (n, 2) eased positions of its points
    data_offer: tuple = ("", None, None)    # the full data set arriving: (text, colour, download fraction or None)

    @property
    def true(self):
        """The true class of the input on screen (None for a drawing)."""
        st = self.state
        return None if st.drawing or st.dream is not None else int(st.y_test[st.index])


class Region:
    """A rectangle of the window that lays itself out, draws, and answers hit tests."""
    rect = pygame.Rect(0, 0, 0, 0)

    def __init__(self, text):
        self.text = text

    def layout(self, rect, font_size):
        self.rect, self.fs = pygame.Rect(rect), font_size

    def draw(self, surface, scene):
        raise NotImplementedError

    def hit(self, pos, scene):
        """What a left click at pos means: an (action, argument) pair, or None."""
        return None

    def draw_cached(self, surface, scene, key):
        """Draw, or blit the picture of the last draw when `key` (everything the picture
        depends on) is unchanged: most frames change nothing in most regions."""
        cached = getattr(self, "_picture", None)
        if cached is not None and cached[0] == key and cached[1].get_size() == self.rect.size:
            surface.blit(cached[1], self.rect)
            return
        self.draw(surface, scene)
        picture = cached[1] if cached is not None and cached[1].get_size() == self.rect.size \
            else pygame.Surface(self.rect.size)
        picture.blit(surface, (0, 0), self.rect)
        self._picture = (key, picture)


# --------------------------------------------------------------------------- layout
@dataclass
class Grid:
    """Where a layer's neurons sit on screen: a rows x cols block of square cells."""
    rect: pygame.Rect
    rows: int
    cols: int
    cell: int
    n: int

    def centers(self):
        """(n, 2) float32 pixel centres of the cells, in neuron order (row-major)."""
        k = np.arange(self.n)
        r, c = k // self.cols, k % self.cols
        xs, ys = self.rect.x + (c + 0.5) * self.cell, self.rect.y + (r + 0.5) * self.cell
        return np.stack([xs, ys], 1).astype(np.float32)

    def cell_rect(self, k):
        r, c = divmod(k, self.cols)
        return pygame.Rect(self.rect.x + c * self.cell, self.rect.y + r * self.cell, self.cell, self.cell)

    def index_at(self, pos):
        if not self.rect.collidepoint(pos):
            return None
        c = (pos[0] - self.rect.x) // self.cell
        r = (pos[1] - self.rect.y) // self.cell
        k = r * self.cols + c
        return int(k) if k < self.n else None


@dataclass
class Layout:
    size: tuple
    font_size: int
    header: pygame.Rect
    network: pygame.Rect          # where the columns, lines, strip and overlays live
    legend: pygame.Rect
    panel: pygame.Rect
    input: Grid
    hidden: list
    output: pygame.Rect
    output_rows: list             # one Rect per class
    strip: pygame.Rect | None     # film strip of neighbouring test digits (None if no room)
    labels_y: int                 # baseline of the column labels


def _grid_options(n):
    """(rows, cols) shapes for n cells, narrowest first: power-of-two column counts."""
    shapes = {(int(np.ceil(n / c)), c) for c in (2 ** p for p in range(0, 12)) if c <= n and np.ceil(n / c) <= 256}
    return sorted(shapes, key=lambda s: s[1])


def _fit_columns(max_h, net_w, hidden_sizes, out_w):
    """(cell, input cell, grid shapes, column widths, gap) of the biggest hidden cells
    whose columns fit max_h and the width, each grid in its narrowest shape that fits."""
    for cell in range(24, 1, -1):
        in_cell = max(2, min(14, int(cell * 0.9)))
        if 28 * in_cell > max_h:
            in_cell = max(2, max_h // 28)
        shapes = []
        for n in hidden_sizes:
            ok = [s for s in _grid_options(n) if s[0] * cell <= max_h]
            shapes.append(ok[0] if ok else None)
        if None in shapes:
            continue
        widths = [28 * in_cell] + [c * cell for _, c in shapes] + [out_w]
        gap = (net_w - 40 - sum(widths)) / (len(hidden_sizes) + 1)     # between the columns
        if gap >= 40:
            return cell, in_cell, shapes, widths, gap
    return None


def compute_layout(width, height, hidden_sizes, label_w=20):
    """All rectangles for a window of this size; pure, so tests can check for overlap.
    label_w is the pixel width of the longest output class name. The network grows to
    the largest cell size that fits; each hidden grid takes the narrowest shape that
    fits the height; the film strip takes the height left over."""
    font_size = 14 if height < 700 or width < 1100 else 15 if height < 850 or width < 1500 else 17
    panel_w = int(np.clip(width * 0.26, 290, 440))
    header = pygame.Rect(0, 0, width, HEADER_H)
    panel = pygame.Rect(width - panel_w, HEADER_H, panel_w, height - HEADER_H)
    net = pygame.Rect(0, HEADER_H, width - panel_w, height - HEADER_H - LEGEND_H)
    legend = pygame.Rect(0, height - LEGEND_H, width - panel_w, LEGEND_H)
    label_h = 2 * font_size + 16                       # two label lines above the columns
    out_w = 96 + int(1.2 * label_w) + (30 if width >= 1400 else 0)
    strip_min = 2 * font_size + 62                     # the smallest useful film strip

    usable_h = net.height - label_h - 10
    got = (_fit_columns(usable_h - strip_min, net.width, hidden_sizes, out_w)
           or _fit_columns(usable_h, net.width, hidden_sizes, out_w)
           or _fit_columns(10 ** 6, net.width, hidden_sizes, out_w))
    cell, in_cell, shapes, widths, gap = got
    gap = min(gap, 220)                                 # very wide windows: keep columns together
    heights = [28 * in_cell] + [r * cell for r, _ in shapes]
    column_h = max(heights)
    slack = usable_h - column_h
    strip = None
    top = net.y + label_h + 4
    if slack >= strip_min:
        # the film strip takes what is left: one or two rows of thumbnails up to 96 px
        row_h = lambda thumb: thumb + font_size + 12        # noqa: E731 - thumbnail + its label
        strip_h = font_size + 8 + row_h(int(np.clip(slack - 2 * font_size - 32, 28, 80)))
        if slack - 30 >= font_size + 8 + 2 * row_h(64):
            strip_h = font_size + 8 + 2 * row_h(int(min(80, (slack - 30 - font_size - 8) / 2 - font_size - 12)))
        pad = max(0, (slack - strip_h - 12) // 3)
        top += pad
        strip = pygame.Rect(net.x + 20, top + column_h + pad + 12, net.width - 40, strip_h)
    else:
        top += max(0, slack // 2)
    total_w = sum(widths) + gap * (len(widths) - 1)
    x = net.x + (net.width - total_w) / 2
    rects = []
    for w, h in zip(widths, heights + [column_h]):
        rects.append(pygame.Rect(int(x), int(top + (column_h - h) / 2), int(w), int(h)))
        x += w + gap
    input_grid = Grid(rects[0], 28, 28, in_cell, 784)
    hidden = [Grid(r, rows, cols, cell, n) for r, (rows, cols), n in zip(rects[1:-1], shapes, hidden_sizes)]
    out = rects[-1]
    row_h = min(out.height // 10, 46)
    out = pygame.Rect(out.x, out.y + (out.height - 10 * row_h) // 2, out.width, 10 * row_h)
    rows = [pygame.Rect(out.x, out.y + i * row_h, out.width, row_h) for i in range(10)]
    labels_y = min(r.y for r in rects[:-1] + [out]) - 8
    return Layout((width, height), font_size, header, net, legend, panel, input_grid, hidden, out, rows, strip,
                  labels_y)


# ------------------------------------------------------------------------- regions
class Header(Region):
    """Title, data source, the latest evaluation (with its kind), modes, messages."""

    @staticmethod
    def accuracy_text(tele):
        ev = tele.latest
        return "test accuracy -" if ev is None else f"test accuracy {100 * ev.accuracy:.2f} % ({ev.label()})"

    def draw(self, surface, scene):
        r, fs, st, tele = self.rect, self.fs, scene.state, scene.tele
        pygame.draw.rect(surface, PANEL_BG, r)
        y1, y2 = r.y + 4, r.y + 6 + fs + 4
        title = f"Neural network learning {scene.dataset} - live"
        left = self.text.blit(surface, title, (12, y1), fs + 1, TEXT, True).right
        label = self.text.blit(surface, scene.data_label, (12, y2), fs - 2, DIM)
        offer, colour, fraction = scene.data_offer
        if offer:                       # the full data set on its way: progress, then the offer to switch
            box = self.text.blit(surface, offer, (label.right + 6, y2), fs - 2, colour, colour != DIM)
            if fraction is not None:    # a thin bar under it: how much of the download is here
                bar = pygame.Rect(box.x, box.bottom + 1, box.width, 2)
                pygame.draw.rect(surface, GRID_BG, bar)
                pygame.draw.rect(surface, ACCENT, (bar.x, bar.y, round(bar.width * fraction), bar.height))
            label = label.union(box)
        left = max(left, label.right)
        acc = scene.accuracy or self.accuracy_text(tele)
        right_x = r.right - 12
        acc_rect = self.text.blit(surface, acc, (right_x, y1), fs, ACCENT, True, "topright")
        modes = []
        if st.rewind is not None and st.rewind < len(tele.snapshots):
            e, b, _ = tele.snapshots[st.rewind]
            modes.append(f"REWOUND: {describe_position(e, b)}")
        if st.drawing:
            modes.append("DRAWING")
        if st.mistakes_only:
            modes.append("MISTAKES ONLY")
        if st.pair_filter is not None:
            modes.append(f"TRUE {scene.names[st.pair_filter[0]]} / PRED {scene.names[st.pair_filter[1]]}")
        hint = "   ".join(modes + ["H: keys"])
        hint_rect = self.text.blit(surface, hint, (right_x, y2), fs - 2, DIM, False, "topright")
        if st.toast and time.monotonic() < st.toast_until:
            x0, x1 = left + 24, min(acc_rect.x, hint_rect.x) - 24
            if x1 - x0 > 80:
                lines = self.text.wrap(st.toast, fs - 2, x1 - x0 - 20)[:2]
                surfs = [self.text.render(t, fs - 2, TEXT) for t in lines]
                box = pygame.Rect(0, 0, max(s.get_width() for s in surfs) + 20, r.height - 8)
                box.center = ((x0 + x1) // 2, r.centery)
                pygame.draw.rect(surface, BG, box)
                pygame.draw.rect(surface, ACCENT, box, 1)
                y = box.centery - sum(s.get_height() for s in surfs) // 2
                for surf in surfs:
                    surface.blit(surf, surf.get_rect(midtop=(box.centerx, y)))
                    y += surf.get_height()


class GridRegion(Region):
    """A region of the network picture: shares the layout and cached surfaces."""

    def __init__(self, text):
        super().__init__(text)
        self.cache = {}            # surfaces by what they are of: a fixed set of slots per layout

    def place(self, layout):
        self.layout(layout.network, layout.font_size)
        self.lay = layout
        self.cache.clear()

    def cached(self, slot, key, make):
        """The value made for `key` in this slot, made again (replacing it) when the key
        changes: one value per slot, so the cache does not grow with weights or hovers."""
        held = self.cache.get(slot)
        if held is None or held[0] != key:
            held = self.cache[slot] = (key, make())
        return held[1]

    def label(self, surface, rect, text, second=""):
        """Label above a column (all columns share one row), with an optional second line."""
        y = self.lay.labels_y
        if second:
            self.text.blit(surface, second, (rect.centerx, y), self.fs - 2, DIM, False, "midbottom")
            y -= self.fs + 2
        self.text.blit(surface, text, (rect.centerx, y), self.fs, TEXT, False, "midbottom")

    def grid_surface(self, key, rgb, rows, cols, cell, gaps=True):
        """Blit-ready surface of a rows x cols grid of colours rgb (rows*cols, 3), one
        colour per cell, scaled up crisply (nearest neighbour) with 1-px gaps."""
        if len(rgb) < rows * cols:                               # last grid row not full
            rgb = np.concatenate([rgb, np.tile(np.array(BG, np.uint8), (rows * cols - len(rgb), 1))])
        small = self.cache.get((key, "small"))
        if small is None or small.get_size() != (cols, rows):
            small = self.cache[(key, "small")] = pygame.Surface((cols, rows))
        pygame.surfarray.blit_array(small, rgb.reshape(rows, cols, 3).transpose(1, 0, 2))
        size = (cols * cell, rows * cell)
        big = self.cache.get(key)
        if big is None or big.get_size() != size:
            big = self.cache[key] = pygame.Surface(size)
        pygame.transform.scale(small, size, big)
        if gaps and cell >= 5:
            big.blit(self.gap_mask(size, cell), (0, 0))
        return big

    def gap_mask(self, size, cell):
        """Transparent surface with background-coloured lines between cells."""
        def make():
            mask = pygame.Surface(size)
            mask.fill((255, 0, 255))
            mask.set_colorkey((255, 0, 255))
            for x in range(cell - 1, size[0], cell):
                pygame.draw.line(mask, BG, (x, 0), (x, size[1]))
            for y in range(cell - 1, size[1], cell):
                pygame.draw.line(mask, BG, (0, y), (size[0], y))
            return mask
        return self.cached(("gaps", size), cell, make)



class InputColumn(GridRegion):
    """The input: the test digit (with the pixels the lines start from), the raw strokes
    of a drawing beside what the network sees, a dream, or a pixel map."""

    def canvas_at(self, pos):
        """(u, v) in [0, 1] of pos on the input column (drawing), or None outside it."""
        r = self.lay.input.rect
        if not r.inflate(8, 8).collidepoint(pos):
            return None
        return (pos[0] - r.x) / r.width, (pos[1] - r.y) / r.height

    def draw_input(self, surface, scene):
        st, v, g = scene.state, scene.view, self.lay.input
        if st.drawing and st.dream is None:
            # the raw strokes, where the pointer is; what the network sees, beside them
            canvas = (np.clip(st.canvas, 0, 1) * 255).astype(np.uint8)           # (280, 280)
            surf = pygame.surfarray.make_surface(np.repeat(canvas.T[:, :, None], 3, 2))
            surface.blit(pygame.transform.smoothscale(surf, g.rect.size), g.rect)
            pygame.draw.rect(surface, ACCENT, g.rect.inflate(4, 4), 1)
            self.label(surface, g.rect, "Your drawing", "left draws, right erases")
            below = (self.lay.strip.y if self.lay.strip else self.lay.network.bottom) - g.rect.bottom - 14
            side = int(np.clip(below, 28, 84))
            seen = pygame.Rect(g.rect.x, g.rect.bottom + 8, side, side)
            if below < 28:                                   # no room below: inside the canvas corner
                seen.topright = (g.rect.right - 4, g.rect.y + 4)
            grey = (v.x * 255).astype(np.uint8).reshape(28, 28)
            small = pygame.surfarray.make_surface(np.repeat(grey.T[:, :, None], 3, 2))
            surface.blit(pygame.transform.scale(small, seen.size), seen)
            pygame.draw.rect(surface, DIM, seen.inflate(2, 2), 1)
            self.text.blit(surface, "what the network sees", (seen.right + 8, seen.centery), self.fs - 2, DIM,
                           False, "midleft")
            return
        grey = (v.x * 255).astype(np.uint8)
        rgb = np.repeat(grey[:, None], 3, 1)                      # true greyscale (784, 3)
        if v.saliency is not None:
            s = v.saliency / (np.abs(v.saliency).max() + 1e-12)
            overlay = diverging(s).astype(np.float32)
            alpha = np.abs(s)[:, None] ** 0.7
            rgb = (rgb * (1 - alpha) + overlay * alpha).astype(np.uint8)
        surface.blit(self.grid_surface("input", rgb, 28, 28, g.cell, gaps=False), g.rect)
        pygame.draw.rect(surface, DIM, g.rect.inflate(4, 4), 1)
        # the input pixels the drawn lines start from, marked on top of the image
        src, _, val = scene.view.conns[0] if st.hover is None else (np.zeros(0, int), None, None)
        if len(src) and g.cell >= 4:
            strongest = {}
            for s_, v_ in zip(src.tolist(), val.tolist()):
                strongest[s_] = v_                          # weakest first: the last is the strongest
            for s_, v_ in strongest.items():
                pygame.draw.rect(surface, POSITIVE if v_ >= 0 else NEGATIVE, g.cell_rect(s_), 1)
        if st.dream is not None:
            kind, *what = st.dream
            of = f"class {scene.names[what[0]]}" if kind == "class" else f"H{what[0] + 1} neuron {what[1]}"
            self.label(surface, g.rect, f"Dream of {of}", f"step {scene.dream_step}, V or Esc returns")
        else:
            self.label(surface, g.rect, "Input (784)", f"test {scene.noun} #{st.index}")
        if v.saliency is not None:
            what = f"pixel relevance for {scene.names[v.explained]}" if v.relevance is not None else \
                f"saliency: d score {scene.names[v.explained]} / d pixel"
            self.text.blit(surface, what, (g.rect.centerx, g.rect.bottom + 6), self.fs - 2, DIM, False, "midtop")



class OutputColumn(GridRegion):
    """The ten output neurons: probability, the prediction's ring (right / wrong), the true
    class outlined, the explained class marked; a click explains that class."""

    def place(self, layout):
        super().place(layout)
        self.centers = np.array([[r.x + 10, r.centery] for r in layout.output_rows], np.float32)

    def output_neuron(self, c):
        """((x, y) centre, radius) of output neuron c; its ring is 2 px at radius + 2..3."""
        row = self.lay.output_rows[c]
        return (int(self.centers[c][0]), int(self.centers[c][1])), max(5, min(10, row.height // 2 - 3))

    # ------------------------------------------------------------------ drawing
    def hit(self, pos, scene):
        """A click on an output neuron's row explains that class."""
        for c, row in enumerate(self.lay.output_rows):
            if row.collidepoint(pos):
                return ("explain", c)
        return None

    def draw_output(self, surface, scene):
        lay, v, fs = self.lay, scene.view, self.fs
        probs, pred, true = scene.shown["probs"], v.pred, scene.true
        ring = verdict_color(pred, true)
        name_w = self.text.widest(scene.names, fs, bold=True)
        self.label(surface, lay.output, "Output (10)", "softmax probability")
        for c, row in enumerate(lay.output_rows):
            (cx, cy), radius = self.output_neuron(c)
            fill = tuple(int(x) for x in RAMP_LUT[int(255 * np.sqrt(np.clip(probs[c], 0, 1)))])
            pygame.draw.circle(surface, fill, (cx, cy), radius)
            if c == pred:
                pygame.draw.circle(surface, ring, (cx, cy), radius + 3, 2)
            if c == v.explained and v.explained != pred:          # another class is being explained
                pygame.draw.circle(surface, ACCENT, (cx, cy), radius + 6, 1)
                self.text.blit(surface, "explained", (row.right, cy - row.height // 2), fs - 4, ACCENT, False,
                               "topright")
            if c == v.contrast:                                   # explained rather than this class
                pygame.draw.circle(surface, DIM, (cx, cy), radius + 6, 1)
                self.text.blit(surface, "rather than", (row.right, cy - row.height // 2), fs - 4, DIM, False,
                               "topright")
            self.text.blit(surface, scene.names[c], (cx + radius + 6, cy), fs, TEXT if c in (pred, true) else DIM,
                           c == pred, "midleft")
            bar_x = cx + radius + 12 + name_w
            bar_w = max(10, row.right - bar_x - 40)
            pygame.draw.rect(surface, GRID_BG, (bar_x, cy - 5, bar_w, 10))
            pygame.draw.rect(surface, ring if c == pred else ACCENT,
                             (bar_x, cy - 5, max(1, int(bar_w * np.clip(probs[c], 0, 1))), 10))
            self.text.blit(surface, f"{100 * v.probs[c]:.0f}%", (row.right, cy), fs - 2, DIM, False, "midright")
            if c == true:
                pygame.draw.rect(surface, TEXT, (bar_x - 3, cy - 8, bar_w + 6, 16), 1)



class NetworkColumns(GridRegion):
    """Input, hidden layers, output column and the connection lines between them."""

    def __init__(self, text):
        super().__init__(text)
        self.input, self.output = InputColumn(text), OutputColumn(text)
        self.lines_seconds = 0.0                            # what the last redraw of the lines cost

    def place(self, layout):
        super().place(layout)
        self.input.place(layout)
        self.output.place(layout)
        self.orders = [None] * len(layout.hidden)       # per hidden layer: position -> neuron (None: index order)
        self.inverse = [None] * len(layout.hidden)      # neuron -> position
        self.set_orders(None)

    def set_orders(self, orders):
        """Neuron positions: index order, or `orders[l]` (position -> neuron) per hidden layer."""
        orders = orders or [None] * len(self.lay.hidden)
        if all((a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
               for a, b in zip(orders, self.orders)) and hasattr(self, "centers"):
            return
        self.orders = list(orders)
        self.inverse = [None if o is None else np.argsort(o) for o in orders]
        hidden = [g.centers() if inv is None else g.centers()[inv] for g, inv in zip(self.lay.hidden, self.inverse)]
        self.centers = [self.lay.input.centers()] + hidden + \
                       [np.array([[r.x + 10, r.centery] for r in self.lay.output_rows], np.float32)]
        for key in [k for k in self.cache if k[0] == "lines_stamp"]:
            self.cache[key] = None                       # the lines move with their neurons

    def neuron_rect(self, layer, j):
        """Screen cell of neuron j of hidden layer `layer` under the current order."""
        inv = self.inverse[layer]
        return self.lay.hidden[layer].cell_rect(int(j if inv is None else inv[j]))

    # -------------------------------------------------------------- hit testing
    def neuron_at(self, pos):
        """(hidden layer, neuron) under pos, or None."""
        for layer, grid in enumerate(self.lay.hidden):
            p = grid.index_at(pos)
            if p is not None:
                return layer, int(p if self.orders[layer] is None else self.orders[layer][p])
        return None

    def draw(self, surface, scene):
        lay = self.lay
        self.set_orders(scene.orders)
        if scene.state.hover is None:                 # a hovered neuron shows only its own lines
            self.draw_lines(surface, "view", scene.view.conns, scene.lines_stamp)
        else:
            layer, j = scene.state.hover
            conns = self.cached("hover_conns", (layer, j, scene.lines_stamp),
                                lambda: hover_connections(scene.weights, layer, j))
            self.draw_lines(surface, "hover", conns, (layer, j, scene.lines_stamp), width_scale=1.5)
        self.input.draw_input(surface, scene)
        for layer, grid in enumerate(lay.hidden):
            self.draw_hidden(surface, scene, layer, grid)
        self.output.draw_output(surface, scene)
        if scene.view.coverage is not None and scene.state.hover is None:
            self.draw_coverage(surface, scene.view.coverage)
        if scene.state.hover is not None:
            layer, j = scene.state.hover
            pygame.draw.rect(surface, TEXT, self.neuron_rect(layer, j).inflate(4, 4), 2)

    def atlas_surface(self, stats, layer, grid):
        """Every neuron's prototype, scaled into its own cell (in the grid's current order)."""
        order = self.orders[layer]
        key = (weakref.ref(stats), grid.cell, None if order is None else order.tobytes())    # no stale id()

        def make():                              # in uint8 as soon as possible: few, small temporaries
            protos = stats.prototypes(layer)                                   # (n, 784) float32, >= 0
            peak = protos.max(axis=1, keepdims=True) / np.float32(255)
            np.divide(protos, peak, out=protos, where=peak > 0)                 # each prototype's ink to 0..255
            tiles = np.zeros((grid.rows * grid.cols, 784), np.uint8)           # (cells, 784)
            tiles[:grid.n] = protos
            if order is not None:
                tiles[:grid.n] = tiles[order]
            cols = tiles.reshape(grid.rows, grid.cols, 28, 28).transpose(1, 3, 0, 2).reshape(grid.cols * 28, -1)
            small = pygame.surfarray.make_surface(np.repeat(cols[:, :, None], 3, 2))   # (x, y) = (cols*28, rows*28)
            big = pygame.transform.smoothscale(small, grid.rect.size)
            if grid.cell >= 5:
                big.blit(self.gap_mask(grid.rect.size, grid.cell), (0, 0))
            return big
        return self.cached(("atlas", layer), key, make)

    def coverage_anchor(self, pair):
        """Where the share of relevance carried by pair's lines is written: centred in
        the gap between the two columns, on the upper label row."""
        rects = [self.lay.input.rect] + [g.rect for g in self.lay.hidden] + [self.lay.output]
        return (rects[pair].right + rects[pair + 1].x) // 2, self.lay.labels_y - self.fs - 2

    def draw_coverage(self, surface, coverage):
        for pair, share in enumerate(coverage):
            self.text.blit(surface, f"{100 * share:.0f} %", self.coverage_anchor(pair), self.fs - 2, POSITIVE,
                           False, "midbottom")

    def draw_hidden(self, surface, scene, layer, grid):
        a = scene.view.acts[layer + 1]
        if scene.state.atlas and scene.sweep is not None and scene.sweep.stats is not None:
            surface.blit(self.atlas_surface(scene.sweep.stats, layer, grid), grid.rect)
            self.label(surface, grid.rect, f"Hidden {layer + 1} ({grid.n})", "atlas: what each responds to")
            return
        rgb = ramp(scene.shown[("hidden", layer)])
        dead = scene.sweep.dead[layer] if scene.sweep is not None else None
        if dead is not None:
            rgb[dead] = DEAD
        order = self.orders[layer]
        if order is not None:
            rgb = rgb[order]                                 # position p shows neuron order[p]
            self.draw_bands(surface, scene, layer, grid, order)
        surface.blit(self.grid_surface(f"hidden{layer}", rgb, grid.rows, grid.cols, grid.cell), grid.rect)
        active = int((a > 0).sum())
        self.label(surface, grid.rect, f"Hidden {layer + 1} ({grid.n})", f"{active} active")

    def draw_bands(self, surface, scene, layer, grid, order):
        """Class labels left of a grid ordered by preferred class: each at its band's first row."""
        preferred = scene.sweep.preferred[layer][order] if scene.sweep is not None and \
            scene.sweep.preferred is not None else None
        if preferred is None:
            return
        last_y = -10 ** 6
        for c in range(10):
            first = np.flatnonzero(preferred == c)
            if not len(first):
                continue
            y = grid.rect.y + (first[0] // grid.cols + 0.5) * grid.cell
            if y - last_y >= self.fs - 3:
                self.text.blit(surface, scene.short_names[c][:3], (grid.rect.x - 3, y), self.fs - 4, ACCENT, False,
                               "midright")
                last_y = y

    def draw_lines(self, surface, name, conns, stamp, width_scale=1.0):
        """Lines between the exact cells of each pair, on a translucent layer so the
        grids stay readable; strongest drawn last; redrawn only when the stamp changes."""
        net = self.rect
        layer = self.cache.get(("lines", name))
        if layer is None or layer.get_size() != net.size:
            layer = self.cache[("lines", name)] = pygame.Surface(net.size, pygame.SRCALPHA)
            self.cache[("lines_stamp", name)] = None
        if self.cache.get(("lines_stamp", name)) != stamp:
            self.cache[("lines_stamp", name)] = stamp
            t0 = time.perf_counter()
            layer.fill((0, 0, 0, 0))
            self.cache[("lines_count", name)] = draw_connection_lines(layer, conns, self.centers, net.topleft,
                                                                      width_scale)
            self.lines_seconds = time.perf_counter() - t0
        surface.blit(layer, net.topleft)

    def lines_drawn(self, name="view"):
        return self.cache.get(("lines_count", name), 0)


    # the input and output columns are regions of their own
    def canvas_at(self, pos):
        return self.input.canvas_at(pos)

    def output_neuron(self, c):
        return self.output.output_neuron(c)


def draw_connection_lines(layer, conns, centers, origin, width_scale=1.0):
    """Draw each pair's (src, dst, value) lines on `layer`; returns how many were drawn."""
    offset = np.array(origin, np.float32)
    drawn = 0
    for pair, (src, dst, val) in enumerate(conns):
        if len(val) == 0:
            continue
        mag = np.abs(val) / max(float(np.abs(val).max()), 1e-12)
        a, b = centers[pair][src] - offset, centers[pair + 1][dst] - offset
        rgb = np.where(val[:, None] >= 0, np.array(POSITIVE), np.array(NEGATIVE))
        alpha = (70 + 185 * mag).astype(int)
        widths = ((1 + (mag > 0.5) + (mag > 0.85)) * width_scale).astype(int)
        for p0, p1, (r, g, b_), al, w in zip(a.tolist(), b.tolist(), rgb.tolist(), alpha.tolist(), widths.tolist()):
            pygame.draw.line(layer, (r, g, b_, al), p0, p1, w)
            drawn += 1
    return drawn


class Tooltip(Region):
    """The hovered neuron's portrait, beside the neuron (never on it, never over the output
    column): activation, share of the relevance, the class it supports most, its receptive
    field, its prototype (what it responds to) and the test digits that excite it most."""

    def __init__(self, text, columns):
        super().__init__(text)
        self.columns = columns
        self.cache = BoundedCache(PICTURE_CACHE_BYTES)
        self.heatmap_rect = self.prototype_rect = self.box = None     # last drawn (tests read them)
        self.top_rects = []

    def picture(self, key, make):
        return self.cache.made(key, make)

    def receptive_surface(self, scene, layer, j, px):
        def make():
            rf = receptive_field(scene.weights, layer, j)
            return _big_image(diverging(rf / (np.abs(rf).max() + 1e-12)), px)     # (28, 28, 3)
        return self.picture(("rf", layer, j, scene.lines_stamp, px), make)

    def prototype_surface(self, stats, layer, j, px):
        def make():
            proto = stats.prototype(layer, j)
            grey = (255 * proto / max(float(proto.max()), 1e-12)).astype(np.uint8).reshape(28, 28)
            return _big_image(np.repeat(grey[:, :, None], 3, 2), px)
        return self.picture(("proto", weakref.ref(stats), layer, j, px), make)

    def draw(self, surface, scene):
        self.heatmap_rect = self.prototype_rect = self.box = None
        self.top_rects = []
        if scene.state.hover is None:
            return
        lay, fs = self.columns.lay, self.fs - 1
        layer, j = scene.state.hover
        px = HOVER_PX if lay.size[0] >= 1500 else HOVER_PX - 1
        side = 28 * px
        rf_surf = self.receptive_surface(scene, layer, j, px)
        ps, v = scene.sweep, scene.view
        dead = ps is not None and ps.dead[layer][j]
        title = f"Hidden {layer + 1}, neuron {j}" + (" (dead: never on in the test set)" if dead else "")
        facts = [f"activation {float(v.acts[layer + 1][j]):.3f}"]
        if v.relevance is not None:
            r = np.abs(v.relevance.neurons[layer + 1])
            facts.append(f"{100 * r[j] / max(float(r.sum()), 1e-12):.1f} % of the relevance for "
                         f"{scene.names[v.explained]}")
        if ps is not None and ps.preferred is not None:
            facts.append(f"supports {scene.names[int(ps.preferred[layer][j])]} most")
        box = pygame.Rect(0, 0, 3 * side + 40, side + 3 * fs + 44)
        cell = self.columns.neuron_rect(layer, j).inflate(4, 4)
        area = pygame.Rect(lay.network.x, lay.network.y, lay.output.x - 12 - lay.network.x, lay.network.height)
        for corner, at in (("topleft", cell.bottomright), ("topright", cell.bottomleft),
                           ("bottomleft", cell.topright), ("bottomright", cell.topleft)):
            setattr(box, corner, (at[0] + (12 if "left" in corner else -12), at[1] + (12 if "top" in corner else -12)))
            box.clamp_ip(area)
            if not box.colliderect(cell):
                break
        pygame.draw.rect(surface, PANEL_BG, box)
        pygame.draw.rect(surface, DIM, box, 1)
        x, y = box.x + 10, box.y + 8
        self.text.blit(surface, self.text.fit(title, fs, box.width - 20, True), (x, y), fs, TEXT, True)
        self.text.blit(surface, self.text.fit("   ".join(facts), fs - 1, box.width - 20), (x, y + fs + 4), fs - 1, DIM)
        y += 2 * fs + 14
        self.heatmap_rect = pygame.Rect(x, y, side, side)
        surface.blit(rf_surf, self.heatmap_rect)
        captions = ["input weights" if layer == 0 else "weights, projected", "responds to", "excite it most"]
        stats = ps.stats if ps is not None else None
        if stats is not None:
            self.prototype_rect = pygame.Rect(x + side + 10, y, side, side)
            surface.blit(self.prototype_surface(stats, layer, j, px), self.prototype_rect)
            thumb = side // 3
            for i, k in enumerate(stats.top_digits(layer, j)[:9].tolist()):
                r = pygame.Rect(x + 2 * side + 20 + (i % 3) * thumb, y + (i // 3) * thumb, thumb - 2, thumb - 2)
                grey = scene.images[k].reshape(28, 28)
                small = pygame.surfarray.make_surface(np.repeat(grey.T[:, :, None], 3, 2))
                surface.blit(pygame.transform.smoothscale(small, r.size), r)
                self.top_rects.append((r, k))
        else:
            self.text.blit(surface, "portraits: the window is passing the test set...",
                           (x + side + 10, y + side // 2), fs - 2, DIM, False, "midleft")
        for i, cap in enumerate(captions):
            self.text.blit(surface, cap, (x + i * (side + 10), y + side + 4), fs - 3, DIM)
        self.box = box


def _big_image(img, px):
    """(28, 28, 3) uint8 -> a surface with px x px screen pixels per image pixel."""
    big = np.repeat(np.repeat(img, px, 0), px, 1)
    return pygame.surfarray.make_surface(big.transpose(1, 0, 2))


class FilmStrip(Region):
    """The test digits around the current one (under the active filter), each framed by
    whether the *current* weights get it right; click one to open it."""

    def __init__(self, text):
        super().__init__(text)
        self.thumbs = BoundedCache(THUMB_CACHE_BYTES)
        self.boxes = []                      # (rect, test index) of the last draw (hit tests)

    def shown(self, state, sweep, predict):
        """Indices of the thumbnails: the neighbourhood of the current digit, under the
        filter as the window's last test-set pass sees it (the current weights' own pass
        until one exists); and how many digits the filter keeps."""
        if self.rect.height == 0:
            return np.zeros(0, np.int64), 0
        _, _, _, per_row, rows = self.geometry()
        count = per_row * rows
        mask = state.filter_mask(predict if sweep is None else (lambda idx: sweep.predictions[idx]))
        order = np.arange(state.n) if mask is None else np.flatnonzero(mask)
        pos = int(np.searchsorted(order, state.index))
        start = int(np.clip(pos - count // 3, 0, max(0, len(order) - count)))
        return order[start:start + count], len(order)

    def geometry(self):
        """(font size, thumbnail side, step between thumbnails, per row, rows)."""
        fs = self.fs - 2
        room = self.rect.height - fs - 8
        rows = 2 if room >= 2 * (64 + fs + 12) else 1
        thumb = int(min(80, room / rows - fs - 12))
        step = thumb + 12
        return fs, thumb, step, max(1, (self.rect.width - 12 + 12) // step), rows

    def draw(self, surface, scene):
        self.boxes = []
        if self.rect.height == 0:
            return
        st, r = scene.state, self.rect
        fs, thumb, step, per_row, rows = self.geometry()
        idx, total = self.shown(st, scene.sweep, scene.predict)
        which = f"{st.filter_label()} ({total:,}" + ("" if not st.filtering or scene.sweep is None
                                                     else f" in the pass of {scene.sweep.stamp.describe()}") + ")"
        self.text.blit(surface, self.text.fit(
            f"Browsing {which}: click one to open it; frame = right / wrong now", fs, r.width), (r.x, r.y), fs, DIM)
        if thumb < 16 or total == 0:
            return
        preds = scene.predict(idx)
        y = r.y + fs + 8
        for i, (k, pred) in enumerate(zip(idx.tolist(), preds.tolist())):
            row, col = divmod(i, per_row)
            box = pygame.Rect(r.x + 6 + col * step, y + row * (thumb + fs + 12), thumb, thumb)   # frames inside
            surf = self.thumbs.get((k, thumb))
            if surf is None:
                grey = scene.images[k].reshape(28, 28)
                small = pygame.surfarray.make_surface(np.repeat(grey.T[:, :, None], 3, 2))
                surf = self.thumbs[(k, thumb)] = pygame.transform.smoothscale(small, box.size)
            surface.blit(surf, box)
            true = int(st.y_test[k])
            color = verdict_color(pred, true)
            pygame.draw.rect(surface, color, box.inflate(4, 4), 2)
            if k == st.index and not st.drawing:
                pygame.draw.rect(surface, TEXT, box.inflate(10, 10), 2)
            label = scene.short_names[true] if pred == true else f"as {scene.short_names[pred]}"
            if pred != true and scene.short_names[0] == "0":
                label = f"{true}>{pred}"
            self.text.blit(surface, self.text.fit(label, fs, step - 2), (box.centerx, box.bottom + 4), fs,
                           color if pred != true else DIM, False, "midtop")
            self.boxes.append((box, k))

    def hit(self, pos, scene):
        for box, k in self.boxes:
            if box.inflate(6, 6).collidepoint(pos):
                return ("open", k)
        return None


class Legend(Region):
    def draw(self, surface, scene):
        r, st = self.rect, scene.state
        x, y = r.x + 14, r.centery
        fs = self.fs - 2

        def swatch(color, label, line=False):
            nonlocal x
            if line:
                pygame.draw.line(surface, color, (x, y), (x + 20, y), 3)
                x += 26
            else:
                pygame.draw.rect(surface, color, (x, y - 6, 12, 12))
                x += 17
            x = self.text.blit(surface, label, (x, y), fs, DIM, False, "midleft").right + 14

        relevance = scene.view.relevance is not None
        swatch(POSITIVE, "supports" if relevance else "excites")
        swatch(NEGATIVE, "opposes" if relevance else "inhibits")
        for i, t in enumerate((0.0, 0.5, 1.0)):
            pygame.draw.rect(surface, tuple(int(c) for c in ramp(np.array([t]))[0]), (x + i * 12, y - 6, 12, 12))
        x += 40
        x = self.text.blit(surface, "activation", (x, y), fs, DIM, False, "midleft").right + 14
        swatch(DEAD, "dead")
        swatch(RIGHT, "right")
        swatch(WRONG, "wrong")
        if relevance:
            c = scene.view.explains(scene.names)
            labels = (f"lines: the {st.k} most relevant to {'class ' * (scene.view.contrast is None)}{c} per "
                      f"layer pair, % = their share (C)",
                      f"lines: {st.k} most relevant to {c} (C)", f"{st.k} most relevant", f"K={st.k}")
        else:
            mode = rank_label(st.rank_mode)
            labels = (f"lines: {st.k} strongest by {mode} (C)", f"{st.k} by {mode}", f"K={st.k}")
        for label in labels:
            if x + self.text.width(label, fs) < r.right - 10:
                self.text.blit(surface, label, (r.right - 10, y), fs, DIM, False, "midright")
                break


class Chart(Region):
    """Loss (left scale) and test accuracy (right scale, zoomed) against epochs. Legend
    above, scales and epoch axis outside the plot, so no label sits on a curve."""

    def plot_rect(self):
        fs = self.fs
        th = self.text.font(fs).get_height()
        gl, gr = self.text.width("0.00", fs) + 4, self.text.width("100%", fs) + 4
        r = self.rect
        return pygame.Rect(r.x + gl, r.y + th + 4, r.width - gl - gr, r.height - 2 * th - 6)

    def acc_range(self, tele):
        accs = [a for q, a in tele.acc_curve + tele.subset_curve if q > 0]
        lo = max(0.0, np.floor(min(accs) * 20) / 20 - 0.05) if accs else 0.0
        return min(lo, 0.9), 1.0

    def point(self, tele, epochs, q, acc):
        """Pixel position of an accuracy point (progress q, accuracy) on the plot."""
        p = self.plot_rect()
        lo, hi = self.acc_range(tele)
        x = p.x + np.clip(q / max(epochs, 1e-9), 0, 1) * (p.width - 1)
        y = p.bottom - 1 - np.clip((acc - lo) / (hi - lo), 0, 1) * (p.height - 1)
        return int(round(x)), int(round(y))

    def draw(self, surface, scene):
        tele, r, fs = scene.tele, self.rect, self.fs
        epochs = scene.config.epochs
        pygame.draw.rect(surface, PANEL_BG, r)
        x = self.text.blit(surface, "loss (log)", (r.x, r.y), fs, LOSS_COLOR).right + 10
        x = self.text.blit(surface, "test acc", (x, r.y), fs, ACCENT).right + 8
        self.text.blit(surface, "subset", (x, r.y), fs, SUBSET_COLOR)
        p = self.plot_rect()
        if p.height < 10 or p.width < 20:
            return
        pygame.draw.rect(surface, BG, p)
        lo, hi = self.acc_range(tele)
        th = self.text.font(fs).get_height()
        fracs = (lo, (1 + lo) / 2, 1.0) if p.height >= 2 * th + 4 else (lo, 1.0)
        for frac in fracs:
            yy = self.point(tele, epochs, 0, frac)[1]
            pygame.draw.line(surface, GRID_BG, (p.x, yy), (p.right - 1, yy))
            self.text.blit(surface, f"{100 * frac:.0f}%", (r.right, yy), fs, ACCENT, False, "midright")
        if tele.loss_curve:
            pts = np.asarray(tele.loss_curve, np.float64)
            smooth = np.empty(len(pts))
            acc_ = pts[0, 1]
            for i, loss in enumerate(pts[:, 1]):                # exponential moving average
                acc_ = 0.9 * acc_ + 0.1 * loss
                smooth[i] = acc_
            # log scale: the late epochs' small losses stay readable
            top, bottom = max(float(np.nanmax(smooth)), 1e-6), max(float(np.nanmin(smooth)), 1e-6)
            lt, lb = np.log10(top), min(np.log10(bottom), np.log10(top) - 0.5)
            xs = p.x + np.clip(pts[:, 0] / max(epochs, 1e-9), 0, 1) * (p.width - 1)
            ys = p.bottom - 1 - np.clip((np.log10(np.maximum(smooth, 1e-6)) - lb) / (lt - lb), 0, 1) * (p.height - 1)
            self.polyline(surface, xs, ys, LOSS_COLOR)
            self.text.blit(surface, f"{top:.2g}", (p.x - 3, p.y), fs, LOSS_COLOR, False, "topright")
            self.text.blit(surface, f"{10 ** lb:.1g}", (p.x - 3, p.bottom), fs, LOSS_COLOR, False, "bottomright")
        for q, lr in tele.lr_changes:                         # the user steered the learning rate here
            lx = p.x + int(np.clip(q / max(epochs, 1e-9), 0, 1) * (p.width - 1))
            pygame.draw.line(surface, TEXT, (lx, p.y), (lx, p.bottom - 1), 1)
            self.text.blit(surface, f"lr {lr:.2g}", (lx + 2, p.y + 1), fs - 1, TEXT)
        for curve, color in ((tele.subset_curve, SUBSET_COLOR), ([c for c in tele.acc_curve if c[0] > 0], ACCENT)):
            if curve:
                xy = np.array([self.point(tele, epochs, q, a) for q, a in curve], np.float64)
                self.polyline(surface, xy[:, 0], xy[:, 1], color)
                if color == ACCENT:
                    for px, py in xy.astype(int).tolist():      # evaluation points marked
                        pygame.draw.circle(surface, color, (px, py), 3)
        self.text.blit(surface, "epoch 0", (p.x, p.bottom + 2), fs, DIM)
        self.text.blit(surface, f"{epochs}", (p.right, p.bottom + 2), fs, DIM, False, "topright")
        if not tele.trained_here and scene.config.no_train:
            self.text.blit(surface, "no training in this session", p.center, fs + 2, DIM, False, "center")

    @staticmethod
    def polyline(surface, xs, ys, color):
        if len(xs) < 2:
            return
        if len(xs) > 400:
            keep = np.linspace(0, len(xs) - 1, 400).astype(int)
            xs, ys = xs[keep], ys[keep]
        pygame.draw.lines(surface, color, False, np.stack([xs, ys], 1).tolist(), 2)


class ClassBars(Region):
    """Per-class accuracy of the latest evaluation, with the change since the previous
    evaluation of the same kind."""

    def bar_rects(self, names):
        fs = self.fs - 1
        name_w = self.text.widest(names, fs) + 8
        lh = self.rect.height / 10
        bw = self.rect.width - name_w - self.text.width("100.0", fs - 1) - self.text.width("+10.0", fs - 3) - 14
        return [pygame.Rect(self.rect.x + name_w, int(self.rect.y + c * lh + 2), bw, max(6, int(lh) - 6))
                for c in range(10)]

    def draw(self, surface, scene):
        fs = self.fs - 1
        per_class, prev, _ = scene.classes
        for c, bar in enumerate(self.bar_rects(scene.names)):
            self.text.blit(surface, scene.names[c], (self.rect.x, bar.centery), fs, TEXT, False, "midleft")
            pygame.draw.rect(surface, GRID_BG, bar)
            if per_class is None or np.isnan(per_class[c]):
                continue
            a = float(per_class[c])
            pygame.draw.rect(surface, ACCENT, (bar.x, bar.y, int(bar.width * a), bar.height))
            self.text.blit(surface, f"{100 * a:.1f}", (bar.right + 4, bar.centery), fs - 1, TEXT, False, "midleft")
            # the change since the previous evaluation of the same kind, right-aligned
            if prev is not None and not np.isnan(prev[c]):
                d = 100 * (a - prev[c])
                col = RIGHT if d > 0.05 else WRONG if d < -0.05 else DIM
                self.text.blit(surface, f"{d:+.1f}", (self.rect.right, bar.centery), fs - 3, col, False, "midright")


class ClassChart(Region):
    """Per-class accuracy over time: one line per class across the evaluations (the full
    test set each epoch, the subset during the first); hover names a line, a click on it
    browses that class's mistakes."""

    def plot(self):
        r = self.rect
        return pygame.Rect(r.x + 30, r.y + 4, r.width - 40, r.height - self.fs - 8)

    def series(self, tele):
        """(progress (E,), per_class (E, 10)) of the evaluations, oldest first."""
        if not tele.evals:
            return np.zeros(0), np.zeros((0, 10))
        ev = sorted((e for e in tele.evals if e[0] > 0), key=lambda e: e[0])    # not the untrained start
        if not ev:
            return np.zeros(0), np.zeros((0, 10))
        return np.array([e[0] for e in ev]), np.array([e[3] for e in ev], np.float64)

    def points(self, tele, epochs):
        """(E, 10, 2) pixel positions of every class's line, and the accuracy floor."""
        q, acc = self.series(tele)
        p = self.plot()
        lo = float(np.nanmin(acc)) if acc.size and np.isfinite(acc).any() else 0.0
        lo = min(0.9, max(0.0, np.floor(lo * 10) / 10))
        x = p.x + np.clip(q / max(epochs, 1e-9), 0, 1) * (p.width - 1)
        y = p.bottom - 1 - np.clip((acc - lo) / (1 - lo), 0, 1) * (p.height - 1)
        return np.stack([np.broadcast_to(x[:, None], y.shape), y], 2), lo

    def class_at(self, pos, scene):
        pts, _ = self.points(scene.tele, scene.config.epochs)
        if not len(pts) or not self.plot().inflate(6, 6).collidepoint(pos):
            return None
        d = np.hypot(pts[..., 0] - pos[0], pts[..., 1] - pos[1])      # (E, 10)
        e, c = np.unravel_index(np.nanargmin(np.where(np.isfinite(d), d, np.inf)), d.shape)
        return int(c) if d[e, c] <= 10 else None

    def hit(self, pos, scene):
        c = self.class_at(pos, scene)
        return None if c is None else ("mistakes_of", c)

    def draw(self, surface, scene):
        p, fs = self.plot(), self.fs - 3
        pygame.draw.rect(surface, BG, p)
        pts, lo = self.points(scene.tele, scene.config.epochs)
        for frac in (lo, 1.0):
            yy = p.bottom - 1 - (frac - lo) / (1 - lo) * (p.height - 1)
            self.text.blit(surface, f"{100 * frac:.0f}%", (p.x - 3, yy), fs, DIM, False, "midright")
        self.text.blit(surface, "epoch 0", (p.x, p.bottom + 2), fs, DIM)
        self.text.blit(surface, f"{scene.config.epochs}", (p.right, p.bottom + 2), fs, DIM, False, "topright")
        if len(pts) < 1:
            self.text.blit(surface, "no evaluations yet", p.center, fs + 1, DIM, False, "center")
            return
        hover = self.class_at(pygame.mouse.get_pos(), scene) if pygame.mouse.get_focused() else None
        for c in range(10):
            xy = pts[:, c][np.isfinite(pts[:, c, 1])]
            width = 3 if c == hover else 1
            if len(xy) >= 2:
                pygame.draw.lines(surface, CLASS_COLORS[c], False, xy.tolist(), width)
            elif len(xy) == 1:
                pygame.draw.circle(surface, CLASS_COLORS[c], xy[0].astype(int).tolist(), 2)
            if len(xy):
                self.text.blit(surface, scene.short_names[c][:3], (p.right + 2, xy[-1][1]), fs - 1,
                               CLASS_COLORS[c], False, "midleft")
        if hover is not None:
            _, acc = self.series(scene.tele)
            self.text.blit(surface, f"{scene.names[hover]}: {100 * acc[-1, hover]:.1f} %, click: its mistakes",
                           (p.x + 4, p.y + 2), fs, TEXT)


class Panel(Region):
    """The side panel: training state, hyperparameters, curves, per-class accuracy, the
    digit on screen and the neurons it switches on."""

    def __init__(self, text):
        super().__init__(text)
        self.chart, self.bars, self.class_chart = Chart(text), ClassBars(text), ClassChart(text)

    def layout(self, rect, font_size):
        super().layout(rect, font_size)
        fs = font_size
        lh = fs + 5
        x, w = rect.x + 14, rect.width - 28
        top = rect.y + 10 + 7 * lh + 4                       # status (2 lines), hyperparameters (3), heading
        below = 9 * lh + 8              # heading line 2, digit on screen (+ its history), explained, neurons, fps
        free = rect.bottom - top - below - lh - 14            # for the chart and the ten bars
        bars_h = int(np.clip(free * 0.5, 10 * (lh - 1), 10 * (lh + 8)))
        chart_h = int(np.clip(free - bars_h, 80, 400))
        self.chart.layout(pygame.Rect(x, top, w, chart_h), fs - 3)
        self.bars_y = top + chart_h + 8
        self.bars.layout(pygame.Rect(x, self.bars_y + 2 * lh, w, bars_h), fs)
        self.class_chart.layout(self.bars.rect, fs)

    def hit(self, pos, scene):
        if scene.state.class_chart:
            return self.class_chart.hit(pos, scene)
        return None

    def draw(self, surface, scene):
        p, fs, cfg, tele, st = self.rect, self.fs, scene.config, scene.tele, scene.state
        pygame.draw.rect(surface, PANEL_BG, p)
        lh = fs + 5
        x, w = p.x + 14, p.width - 28
        y = p.y + 10

        def line(text, color=TEXT, bold=False, size=fs, one=False):
            """Text wrapped to the panel's width (`one`: cut to one line, so what follows stays put)."""
            nonlocal y
            for part in [self.text.fit(text, size, w, bold)] if one else self.text.wrap(text, size, w, bold):
                self.text.blit(surface, part, (x, y), size, color, bold)
                y += lh

        status, color = scene.status
        line(self.text.fit(status, fs + 1, w, True), color, True, fs + 1)
        if tele.trained_here or not cfg.no_train:
            rate = tele.samples_per_s()
            line(f"epoch {min(tele.epoch + (0 if tele.finished else 1), cfg.epochs)}/{cfg.epochs}   "
                 f"batch {tele.batch}/{tele.n_batches}   {rate:,.0f} samples/s", DIM, one=True)
        else:
            model = os.path.basename(cfg.load) if cfg.load else "untrained"
            line(f"model: {model}, {tele.epoch} epoch(s) trained", DIM, one=True)
        y += 4
        line("Hyperparameters", ACCENT, True)
        line(f"784-{'-'.join(map(str, cfg.hidden))}-10 {cfg.activation}, {cfg.optimizer}, batch {cfg.batch_size}",
             DIM, size=fs - 1, one=True)
        line(f"lr {cfg.learning_rate:g} {cfg.lr_schedule}" + (f", now {tele.lr:.2g}" if tele.trained_here else ""),
             DIM, size=fs - 1, one=True)
        line(f"weight decay {cfg.weight_decay:g}, dropout {cfg.dropout:g}" + (", augment" if cfg.augment else "")
             + f", seed {cfg.seed}", DIM, size=fs - 1, one=True)
        y = self.chart.rect.y - lh
        line("Loss and test accuracy", ACCENT, True)
        self.chart.draw(surface, scene)
        y = self.bars_y
        line("Per-class accuracy" + (" over time (T)" if st.class_chart else ""), ACCENT, True)
        label = "each line a class, at every evaluation" if st.class_chart else scene.classes[2]
        line(self.text.fit(label, fs - 2, w), DIM, size=fs - 2)
        (self.class_chart if st.class_chart else self.bars).draw(surface, scene)
        y = self.bars.rect.bottom + 8
        line(f"{scene.noun.capitalize()} on screen", ACCENT, True)
        v = scene.view
        if st.dream is not None:
            line(f"dreamt image: predicted {scene.names[v.pred]} ({100 * v.probs[v.pred]:.0f}%)", ACCENT)
        elif st.drawing and v.pred < 0:
            line("your drawing: empty canvas", DIM)
        elif st.drawing:
            line(f"your drawing: predicted {scene.names[v.pred]} ({100 * v.probs[v.pred]:.0f}%)", ACCENT)
        else:
            true = scene.true
            line(f"test #{st.index}: true {scene.names[true]}, predicted {scene.names[v.pred]} "
                 f"({100 * v.probs[v.pred]:.0f}%)", verdict_color(v.pred, true))
            y = self.draw_digit_history(surface, scene, x, y, w, true)
        if v.pred >= 0 and v.contrast is not None:
            gap = v.relevance.logit if v.relevance is not None else \
                float(np.log(max(v.probs[v.explained], 1e-30)) - np.log(max(v.probs[v.contrast], 1e-30)))
            line(f"lines and maps explain {v.explains(scene.names)} (score gap {gap:+.2f})", ACCENT, size=fs - 1)
        elif v.pred >= 0:
            what = "the prediction" if v.explained == v.pred else \
                f"class {scene.names[v.explained]} ({100 * v.probs[v.explained]:.1f}%), not the prediction"
            line(f"lines and maps explain {what}", ACCENT if v.explained != v.pred else DIM, size=fs - 1)
        parts = []
        for i, a in enumerate(v.acts[1:-1]):
            dead = "" if scene.sweep is None else f", {int(scene.sweep.dead[i].sum())} dead"
            parts.append(f"H{i + 1} {int((a > 0).sum())}/{len(a)} on{dead}")
        line("   ".join(parts), DIM, size=fs - 1)
        line(scene.fps_line, DIM, size=fs - 2)


    def draw_digit_history(self, surface, scene, x, y, w, true):
        """This digit under every snapshot: a cell per snapshot, green when read right,
        red when wrong, its height the probability of the true class; and in words."""
        self.history_cells = []
        have = scene.tele.digit_histories.get(scene.state.index)
        fs = self.fs - 2
        if have is None or not have[1]:
            return y
        rows = have[1]
        cell = max(3, min(12, (w - 4) // len(rows)))
        h = self.fs
        for i, (_, pred, p_true) in enumerate(rows):
            r = pygame.Rect(x + i * cell, y, cell - 1, h)
            pygame.draw.rect(surface, GRID_BG, r)
            fill = max(1, int(h * np.clip(np.nan_to_num(p_true), 0, 1)))
            pygame.draw.rect(surface, RIGHT if pred == true else WRONG, (r.x, r.bottom - fill, r.width, fill))
            if scene.state.rewind == i:
                pygame.draw.rect(surface, TEXT, r.inflate(2, 2), 1)
            self.history_cells.append((r, i))
        y += h + 4
        when = snapshot_namer(scene.tele.snapshots, scene.tele.n_batches)
        captions = history_caption(rows, true, scene.names, when)
        caption = next((c for c in captions if self.text.width(c, fs) <= w), captions[-1])
        self.text.blit(surface, self.text.fit(caption, fs, w), (x, y), fs, DIM)
        return y + fs + 6


def snapshot_namer(snapshots, n_batches=1):
    """progress -> where training stood ('epoch 1, batch 40'), from the (epoch, batch,
    progress) of the snapshots the trainer reported (a loaded model's too), else from the
    batches per epoch (unknown until training reports: 1)."""
    known = {round(q, 6): (int(e), int(b)) for e, b, q in snapshots}

    def when(q):
        e, b = known.get(round(q, 6), (int(q), round((q - int(q)) * n_batches)))
        return describe_position(e, b)
    return when


def history_caption(rows, true, names, when):
    """What a digit's history over the snapshots (progress, pred, p_true) says, as phrasings
    from the fullest to the shortest: the panel shows the first that fits its width.
    `when(progress)` names a snapshot's place in training (`snapshot_namer`)."""
    wrong = [(q, p) for q, p, _ in rows if p != true]
    if not wrong:
        return (f"read right at every snapshot ({len(rows)})", "right at every snapshot")
    now = names[rows[-1][1]]
    if len(wrong) == len(rows):
        return (f"read wrong at every snapshot, last as {now}", f"always wrong, now {now}")
    last_q, last_p = wrong[-1]
    if rows[-1][1] == true:
        since = next(q for q, p, _ in rows if q > last_q and p == true)
        until = "when untrained" if last_q == 0 else f"until {when(last_q)}"
        return (f"read as {names[last_p]} {until}, right since {when(since)}",
                f"right since {when(since)} (was {names[last_p]})", f"right since {when(since)}")
    right = len(rows) - len(wrong)
    return (f"now read as {now}; right at {right} of {len(rows)} snapshots",
            f"now {now}; right at {right} of {len(rows)}")


class ConfusionOverlay(Region):
    """The window's last full test-set pass as a confusion matrix (modal, over the
    network); click a cell to browse its digits."""

    def matrix_rect(self):
        net = self.rect
        side = min(net.width - 180, net.height - 110)
        return pygame.Rect(net.x + 130, net.y + 70, side, side)

    def cell_at(self, pos):
        r = self.matrix_rect()
        if not r.collidepoint(pos):
            return None
        cell = r.width / 10
        return int((pos[1] - r.y) // cell), int((pos[0] - r.x) // cell)

    def cell_rect(self, t, p):
        r = self.matrix_rect()
        cell = r.width / 10
        return pygame.Rect(int(r.x + p * cell), int(r.y + t * cell), int(cell) - 2, int(cell) - 2)

    def hit(self, pos, scene):
        cell = self.cell_at(pos)
        return None if cell is None else ("pair", cell)

    def draw(self, surface, scene):
        net, fs = self.rect, self.fs
        pygame.draw.rect(surface, BG, net)
        r = self.matrix_rect()
        self.text.blit(surface, "Confusion matrix on the test set (rows: true class, columns: predicted)",
                       (net.x + 20, net.y + 12), fs, TEXT, True)
        if scene.confusion is None:
            self.text.blit(surface, "computing the first test-set pass...", (net.x + 20, net.y + 20 + fs), fs - 1, DIM)
            return
        conf, label = scene.confusion
        self.text.blit(surface, self.text.fit(f"{label}; click a cell to browse its {scene.noun}s; X closes",
                                              fs - 1, net.width - 40), (net.x + 20, net.y + 14 + fs + 6), fs - 1, DIM)
        cell = r.width / 10
        cfs = max(10, min(fs, int(cell / 3)))
        row_max = conf.max(axis=1)
        named = scene.names[0] != "0"          # Fashion: rows "3 Dress"; columns "3" when too wide
        narrow = named and self.text.widest(scene.names, cfs) > cell - 4
        for t in range(10):
            row = self.text.fit(f"{t} {scene.names[t]}" if named else scene.names[t], cfs, 120)
            self.text.blit(surface, row, (r.x - 8, r.y + (t + 0.5) * cell), cfs, DIM, False, "midright")
            col = str(t) if narrow else scene.names[t]
            self.text.blit(surface, col, (r.x + (t + 0.5) * cell, r.bottom + 6), cfs, DIM, False, "midtop")
            for p in range(10):
                n = int(conf[t, p])
                cr = self.cell_rect(t, p)
                pygame.draw.rect(surface, confusion_color(n, row_max[t], t == p), cr)
                if n:
                    self.text.blit(surface, str(n), cr.center, cfs, TEXT, False, "center")
        acc = np.trace(conf) / max(conf.sum(), 1)
        self.text.blit(surface, f"accuracy {100 * acc:.2f} %", (r.right, r.y - 6), fs - 1, TEXT, False, "bottomright")


CLASS_COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))   # map only


class MapOverlay(Region):
    """The representation map (modal, over the network): one point per digit of a fixed,
    balanced test subset, coloured by true class, mistakes crossed, the digit on screen
    ringed; hover names a point, click opens it."""

    def __init__(self, text):
        super().__init__(text)
        self.screen_points = None            # (n, 2) pixel positions of the last draw (hit tests)
        self.indices = None

    def plot_rect(self):
        r = self.rect
        return pygame.Rect(r.x + 30, r.y + 2 * self.fs + 40, r.width - 60, r.height - 2 * self.fs - 60)

    def to_screen(self, pts, bounds):
        p = self.plot_rect()
        lo, hi = bounds
        span = np.maximum(hi - lo, 1e-9)
        scale = min(p.width / span[0], p.height / span[1])
        centre = (lo + hi) / 2
        return np.stack([p.centerx + (pts[:, 0] - centre[0]) * scale,
                         p.centery - (pts[:, 1] - centre[1]) * scale], 1)

    def nearest(self, pos, radius=8):
        """Test index of the point nearest pos within radius pixels, or None."""
        if self.screen_points is None:
            return None
        d = np.hypot(*(self.screen_points - np.asarray(pos, np.float64)).T)
        i = int(np.argmin(d))
        return int(self.indices[i]) if d[i] <= radius else None

    def hit(self, pos, scene):
        k = self.nearest(pos)
        return None if k is None else ("open", k)

    def draw(self, surface, scene):
        r, fs, m = self.rect, self.fs, scene.map
        pygame.draw.rect(surface, BG, r)
        layer = scene.state.map_layer
        self.text.blit(surface, f"What hidden layer {layer + 1} makes of {len(m.subset):,} test {scene.noun}s "
                                f"(first two principal components)", (r.x + 20, r.y + 12), fs, TEXT, True)
        x = r.x + 20
        for c in range(10):                                   # the colours mean classes here
            pygame.draw.circle(surface, CLASS_COLORS[c], (x + 5, r.y + 22 + fs + 6), 5)
            x = self.text.blit(surface, scene.short_names[c], (x + 14, r.y + 22 + fs + 6), fs - 2, DIM, False,
                               "midleft").right + 12
        x = self.text.blit(surface, "filled = right, hollow = wrong;  white ring = on screen;  P: next layer / close",
                           (x + 6, r.y + 22 + fs + 6), fs - 2, DIM, False, "midleft").right
        pts = scene.map_points
        self.screen_points = None
        if pts is None or m.layer != layer:
            self.text.blit(surface, "projecting...", self.plot_rect().center, fs, DIM, False, "center")
            return
        bounds = (pts.min(axis=0), pts.max(axis=0))
        xy = self.to_screen(pts, bounds)
        self.screen_points, self.indices = xy, m.subset
        y_true = scene.state.y_test[m.subset]
        wrong = m.predictions != y_true
        for c in range(10):                     # filled: read right; hollow: read wrong
            for px, py in xy[(y_true == c) & ~wrong].astype(int).tolist():
                pygame.draw.circle(surface, CLASS_COLORS[c], (px, py), 3)
            for px, py in xy[(y_true == c) & wrong].astype(int).tolist():
                pygame.draw.circle(surface, CLASS_COLORS[c], (px, py), 3, 1)
        if scene.view is not None and m._transform is not None:
            here = [int(v) for v in self.to_screen(m.project(scene.view.acts[layer + 1])[None], bounds)[0]]
            if self.plot_rect().inflate(20, 20).collidepoint(here):
                pygame.draw.circle(surface, TEXT, here, 9, 2)
        k = self.nearest(pygame.mouse.get_pos()) if pygame.mouse.get_focused() else None
        if k is not None:
            what = f"test #{k}: true {scene.names[int(scene.state.y_test[k])]}; click opens it"
            self.text.blit(surface, what, (r.right - 20, r.bottom - 10), fs - 1, TEXT, False, "bottomright")


class HelpOverlay(Region):
    """Every key and mouse action, from the app's key table."""

    def draw(self, surface, scene):
        fs = self.fs
        lh = fs + 6
        rows = [(k.label, k.help) for k in scene.keys]
        key_w = self.text.widest([r[0] for r in rows], fs, True) + 24
        widest = key_w + self.text.widest([r[1] for r in rows], fs)
        box = pygame.Rect(0, 0, min(self.rect.width - 20, widest + 60), lh * len(rows) + 60)
        box.center = self.rect.center
        box.clamp_ip(self.rect)
        pygame.draw.rect(surface, PANEL_BG, box)
        pygame.draw.rect(surface, ACCENT, box, 2)
        self.text.blit(surface, "Keys and mouse (H, F1 or Esc closes)", (box.x + 20, box.y + 14), fs + 2, ACCENT, True)
        y = box.y + 20 + lh + 6
        for label, help_text in rows:
            self.text.blit(surface, label, (box.x + 24, y), fs, TEXT, True)
            self.text.blit(surface, self.text.fit(help_text, fs, box.right - box.x - key_w - 40),
                           (box.x + 24 + key_w, y), fs, DIM)
            y += lh
