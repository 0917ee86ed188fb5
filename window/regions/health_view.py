"""Training health (F4), an overlay over the network view: per layer (a row each) and over
the run (x: epochs), the gradient's norm, the update ratio ||dw|| / ||w|| on a log scale
with the usual range (health.USUAL_RATIO) shaded, the share of ReLUs off on the batch, and
the weights' and the layer's outputs' distributions as percentile bands (as TensorBoard's
distributions); above them the plain-words warnings. A rewound snapshot shows the records
up to its own position (History.health_until's rule). Draws the telemetry's
history.HealthRecords with `training.health`'s series, names and warnings."""
from __future__ import annotations

import math

import numpy as np
import pygame

from mnist_live.training.health import USUAL_RATIO, all_is_well, health_warnings, layer_names, series
from mnist_live.window.captions import health_caption
from mnist_live.window.regions.base import OVERLAY, Region
from mnist_live.window.regions.palette import ACCENT, BG, DIM, GRID_BG, HEALTH_BAND, TEXT, WRONG

# (LayerHealth field, column title phrasings, log scale): the columns of the grid
PLOTS = (("grad_norm", ("gradient norm |g|", "|gradient|", "|g|"), True),
         ("update_ratio", ("update ratio |Δw|/|w|", "|Δw|/|w|", "ratio"), True),
         ("inactive", ("ReLUs off on the batch", "ReLUs off", "off"), False),
         ("weights", ("weights (bands)", "weights", "w"), False),
         ("activations", ("outputs (bands)", "outputs", "out"), False))
BAND_SHADES = (0.22, 0.4, 0.62)   # the 0-100, 7-93 and 16-84 (then 31-69) percentile bands: ACCENT's strength


def records_shown(tele, rewind):
    """The health records of the weights on screen: all of them live; a rewound snapshot's
    own (those at or before its position)."""
    if rewind is None or not tele.snapshots or rewind >= len(tele.snapshots):
        return tele.health
    progress = tele.snapshots[rewind][2]
    return tuple(r for r in tele.health if r.progress <= progress + 1e-9)


def _mix(strength):
    bg, fg = np.array(BG, np.float32), np.array(ACCENT, np.float32)
    return tuple(int(v) for v in bg + (fg - bg) * strength)


def value_range(values, log):
    """(lo, hi) of the finite values to plot (positive ones on a log scale), never empty."""
    v = values[np.isfinite(values)]
    if log:
        v = v[v > 0]
    if not v.size:
        return (1e-4, 1.0) if log else (0.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    if log:
        return (lo / 1.5, hi * 1.5) if hi > lo else (lo / 3, hi * 3)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


class HealthOverlay(Region):
    """The training-health view: a grid of small plots, a row per layer, a column per figure."""
    modal, z, overlay = True, OVERLAY, "health"

    def legend(self, noun):
        return ("rows: the layer each figure is of; x: epochs; the shaded band of the update ratio is the usual "
                "range (about 1/1,000 a step); F4 closes",
                "rows: layers; x: epochs; shaded: the usual update ratio; F4 closes", "F4 closes")

    def caption(self, state, noun):
        return (health_caption(),)

    def key(self, scene):
        tele = scene.tele
        return len(tele.health), tele.health[-1] if tele.health else None, scene.state.rewind, self.rect.size

    # ------------------------------------------------------------------ where things go
    def grid(self, n_layers):
        """(label column x, plot rectangles [layer][column]) under the title and warnings."""
        r, fs = self.rect, self.fs
        top = r.y + 12 + (fs + 6) + 3 * (fs + 2) + fs + 8           # title, warnings, column titles
        label_w = self.text.width("Hidden 8", fs - 1) + 16
        bottom = r.bottom - fs - 14                                  # the x axis's labels below
        gap = 10
        width = (r.width - 20 - label_w - gap * (len(PLOTS) - 1)) // len(PLOTS)
        height = (bottom - top - gap * (n_layers - 1)) // max(1, n_layers)
        rects = [[pygame.Rect(r.x + 10 + label_w + c * (width + gap), top + row * (height + gap), width, height)
                  for c in range(len(PLOTS))] for row in range(n_layers)]
        return r.x + 10, rects

    def plot_rect(self, layer, name, n_layers):
        """The rectangle of layer `layer`'s plot of figure `name` (tests read it)."""
        return self.grid(n_layers)[1][layer][[p[0] for p in PLOTS].index(name)]

    @staticmethod
    def to_y(value, lo, hi, rect, log):
        """The screen y of a value on a plot's axis."""
        if log:
            value, lo, hi = math.log10(max(value, 1e-30)), math.log10(lo), math.log10(hi)
        t = (value - lo) / (hi - lo) if hi > lo else 0.5
        return rect.bottom - 1 - t * (rect.height - 2)

    # ------------------------------------------------------------------ drawing
    def draw(self, surface, scene):
        r, fs = self.rect, self.fs
        pygame.draw.rect(surface, BG, r)
        records = records_shown(scene.tele, scene.state.rewind)
        title = "Training health, per layer over time" + (" (up to the rewound snapshot)"
                                                            if scene.state.rewind is not None else "")
        self.text.blit(surface, self.text.fit(title, fs, r.width - 40), (r.x + 20, r.y + 12), fs, TEXT, True)
        if not records:
            self.text.blit(surface, self.text.fit("no measurements yet: training health is measured every 100 "
                                                  "batches (and at batches 1, 3, 10, 30)", fs - 1, r.width - 40),
                           (r.x + 20, r.y + 20 + fs), fs - 1, DIM)
            return
        n_layers = len(records[-1].layers)
        names = layer_names(n_layers)
        warnings = health_warnings(list(records), names)
        y = r.y + 12 + fs + 6
        for line in (warnings or [all_is_well(records)])[:3]:
            self.text.blit(surface, self.text.fit(line, fs - 1, r.width - 40), (r.x + 20, y), fs - 1,
                           WRONG if warnings else DIM)
            y += fs + 2
        label_x, rects = self.grid(n_layers)
        progress = np.array([rec.progress for rec in records], np.float64)
        x_range = (float(progress.min()), float(progress.max()))
        for c, (_, titles, _) in enumerate(PLOTS):
            head = rects[0][c]
            title = next((t for t in titles if self.text.width(t, fs - 2) <= head.width), titles[-1])
            self.text.blit(surface, self.text.fit(title, fs - 2, head.width), (head.x, head.y - 4), fs - 2, TEXT,
                           False, "bottomleft")
        for layer in range(n_layers):
            row = rects[layer]
            self.text.blit(surface, names[layer], (label_x, row[0].centery), fs - 1, TEXT, True, "midleft")
            for c, (name, _, log) in enumerate(PLOTS):
                self.draw_plot(surface, row[c], series(records, layer, name), x_range, log, name)
        last = rects[-1][0]
        self.text.blit(surface, f"epoch {x_range[0]:.2f}", (last.x, last.bottom + 4), fs - 3, DIM)
        right = rects[-1][-1]
        self.text.blit(surface, f"epoch {x_range[1]:.2f}", (right.right, right.bottom + 4), fs - 3, DIM, False,
                       "topright")

    def draw_plot(self, surface, rect, data, x_range, log, name):
        """One small plot: its frame, the usual band (update ratio), the series or its bands,
        the axis's top and bottom values."""
        progress, values = data
        pygame.draw.rect(surface, GRID_BG, rect, 1)
        if not np.isfinite(values).any():          # the output layer's "ReLUs off": it has no ReLU
            word = next((t for t in ("no ReLU", "none") if self.text.width(t, self.fs - 3) <= rect.width - 6), None)
            if word is not None:
                self.text.blit(surface, word, rect.center, self.fs - 3, DIM, False, "center")
            return
        if name == "inactive":
            lo, hi = 0.0, 1.0
        else:
            lo, hi = value_range(values, log)
        if name == "update_ratio":
            lo, hi = min(lo, USUAL_RATIO[0] / 2), max(hi, USUAL_RATIO[1] * 2)
            top, bottom = self.to_y(USUAL_RATIO[1], lo, hi, rect, log), self.to_y(USUAL_RATIO[0], lo, hi, rect, log)
            pygame.draw.rect(surface, HEALTH_BAND, (rect.x + 1, int(top), rect.width - 2, int(bottom - top)))
        span = max(x_range[1] - x_range[0], 1e-9)
        xs = rect.x + 1 + (progress - x_range[0]) / span * (rect.width - 3) if len(progress) > 1 \
            else np.full(len(progress), rect.centerx, np.float64)
        if values.ndim == 2:                       # percentile bands: widest first, the median on top
            k = values.shape[1]
            for shade, i in zip(BAND_SHADES + (0.85,), range(k // 2)):
                self.band(surface, rect, xs, values[:, i], values[:, k - 1 - i], lo, hi, _mix(shade))
            self.line(surface, rect, xs, values[:, k // 2], lo, hi, False, TEXT)
        else:
            self.line(surface, rect, xs, values, lo, hi, log, ACCENT)
        fsm = self.fs - 4
        if rect.height >= 2 * self.text.font(fsm).get_height() + 6:
            for v, anchor, at in ((hi, "topleft", rect.y + 2), (lo, "bottomleft", rect.bottom - 2)):
                label = f"{100 * v:.0f} %" if name == "inactive" else f"{v:.2g}"
                self.text.blit(surface, label, (rect.x + 3, at), fsm, DIM, False, anchor)

    def line(self, surface, rect, xs, values, lo, hi, log, color):
        ok = np.isfinite(values) & ((values > 0) if log else True)
        pts = [(float(x), self.to_y(float(v), lo, hi, rect, log)) for x, v in zip(xs[ok], values[ok])]
        if len(pts) == 1:
            pygame.draw.circle(surface, color, (int(pts[0][0]), int(pts[0][1])), 2)
        elif pts:
            pygame.draw.lines(surface, color, False, pts, 2)

    def band(self, surface, rect, xs, low, high, lo, hi, color):
        ok = np.isfinite(low) & np.isfinite(high)
        if ok.sum() < 2:
            return
        upper = [(float(x), self.to_y(float(v), lo, hi, rect, False)) for x, v in zip(xs[ok], high[ok])]
        lower = [(float(x), self.to_y(float(v), lo, hi, rect, False)) for x, v in zip(xs[ok], low[ok])]
        pygame.draw.polygon(surface, color, upper + lower[::-1])
