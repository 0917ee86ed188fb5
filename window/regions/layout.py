"""Where everything sits: the layout maths for a window size, pure so tests can check
that nothing overlaps. No drawing."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pygame

HEADER_H = 44                     # title bar: two text lines
TOOLBAR_H = 26                    # the toolbar under it, over the network: views and actions with their keys
LEGEND_H = 34                     # legend strip under the network
HOVER_PX = 6                      # receptive-field pixels per input pixel in the tooltip
MIN_SIZE = (640, 400)             # smaller windows show a notice instead of the network

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
    caption: pygame.Rect | None = None    # the caption strip above the legend (None: captions off)
    toolbar: pygame.Rect | None = None    # the toolbar between the header and the network


def _grid_options(n):
    """(rows, cols) shapes for n cells, narrowest first: power-of-two column counts."""
    shapes = {(int(np.ceil(n / c)), c) for c in (2 ** p for p in range(0, 12)) if c <= n and np.ceil(n / c) <= 256}
    return sorted(shapes, key=lambda s: s[1])


def _fit_columns(max_h, net_w, hidden_sizes, out_w, min_gap=40):
    """(cell, input cell, grid shapes, column widths, gap) of the biggest hidden cells
    whose columns fit max_h and the width with at least min_gap between them, each grid
    in its narrowest shape that fits."""
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
        if gap >= min_gap:
            return cell, in_cell, shapes, widths, gap
    return None


def font_size_for(width, height):
    """The base font size for a window of this size (14, 15 or 17 px)."""
    return 14 if height < 700 or width < 1100 else 15 if height < 850 or width < 1500 else 17


def caption_height(font_size):
    """The caption strip's height: two lines of the legend's text size."""
    return 2 * (font_size + 1) + 8


def compute_layout(width, height, hidden_sizes, label_w=20, caption=True):
    """All rectangles for a window of this size; pure, so tests can check for overlap.
    label_w is the pixel width of the longest output class name; `caption`: a strip for
    the caption between the network and the legend (captions on). The network grows to
    the largest cell size that fits; each hidden grid takes the narrowest shape that
    fits the height; the film strip takes the height left over."""
    font_size = font_size_for(width, height)
    panel_w = int(np.clip(width * 0.26, 290, 440))
    header = pygame.Rect(0, 0, width, HEADER_H)
    panel = pygame.Rect(width - panel_w, HEADER_H, panel_w, height - HEADER_H)
    caption_h = caption_height(font_size) if caption else 0
    toolbar = pygame.Rect(0, HEADER_H, width - panel_w, TOOLBAR_H)
    net = pygame.Rect(0, toolbar.bottom, width - panel_w, height - toolbar.bottom - LEGEND_H - caption_h)
    legend = pygame.Rect(0, height - LEGEND_H, width - panel_w, LEGEND_H)
    caption_rect = pygame.Rect(0, legend.y - caption_h, legend.width, caption_h) if caption else None
    label_h = 2 * font_size + 16                       # two label lines above the columns
    out_w = 96 + int(1.2 * label_w) + (30 if width >= 1400 else 0)
    strip_min = 2 * font_size + 62                     # the smallest useful film strip

    usable_h = net.height - label_h - 10
    got = (_fit_columns(usable_h - strip_min, net.width, hidden_sizes, out_w)
           or _fit_columns(usable_h, net.width, hidden_sizes, out_w)
           or _fit_columns(usable_h, net.width, hidden_sizes, out_w, min_gap=16)    # the smallest windows
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
                  labels_y, caption_rect, toolbar)
