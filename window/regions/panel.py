"""The side panel and its charts: training state, hyperparameters, the loss and accuracy
chart, per-class accuracy (bars or over time) and the digit on screen with its history."""
from __future__ import annotations

import os

import numpy as np
import pygame

from mnist_live.runs.comparison import on_axis, to_seconds
from mnist_live.window.regions.base import Region
from mnist_live.window.regions.palette import (
    ACCENT,
    BG,
    CLASS_COLORS,
    COMPARE_COLORS,
    DIM,
    GRID_BG,
    LOSS_COLOR,
    PANEL_BG,
    RIGHT,
    SUBSET_COLOR,
    TEXT,
    WRONG,
    verdict_color,
)
from mnist_live.window.state import SPEEDS
from mnist_live.window.view_model import describe_position


class Chart(Region):
    """Loss (left scale) and test accuracy (right scale, zoomed) against epochs or seconds
    (E), with earlier runs of the run library overlaid (K; `scene.compare`): each in its
    own colour, its accuracy thick and its loss thin, named in a legend under the axis by
    what it does differently. Legend above, scales and time axis outside the plot, so no
    label sits on a curve."""
    legend_rows = 0              # overlaid runs named under the axis (set by `update`)

    def overlays(self, scene):
        """The overlaid runs that fit (as many legend rows as leave the plot 3 lines high)."""
        runs = scene.compare.shown() if scene.compare is not None else []
        th = self.text.font(self.fs).get_height()
        room = max(0, (self.rect.height - 5 * th - 6) // (th + 1))
        return runs[:room]

    def update(self, scene):
        self.legend_rows = len(self.overlays(scene))

    def plot_rect(self):
        fs = self.fs
        th = self.text.font(fs).get_height()
        gl, gr = self.text.width("0.00", fs) + 4, self.text.width("100%", fs) + 4
        r = self.rect
        return pygame.Rect(r.x + gl, r.y + th + 4, r.width - gl - gr,
                           r.height - 2 * th - 6 - self.legend_rows * (th + 1))

    def acc_range(self, tele, extra=()):
        accs = [a for q, a in tele.acc_curve + tele.subset_curve if q > 0] + [a for _, a in extra]
        lo = max(0.0, np.floor(min(accs) * 20) / 20 - 0.05) if accs else 0.0
        return min(lo, 0.9), 1.0

    def to_px(self, x, acc, span, lo):
        """Pixel position of (x on the time axis, accuracy) on the plot spanning [0, span]."""
        p = self.plot_rect()
        px = p.x + np.clip(x / max(span, 1e-9), 0, 1) * (p.width - 1)
        py = p.bottom - 1 - np.clip((acc - lo) / (1 - lo), 0, 1) * (p.height - 1)
        return int(round(px)), int(round(py))

    def point(self, tele, epochs, q, acc):
        """Pixel position of a live accuracy point (progress q, accuracy) on an epoch axis
        of `epochs`, no run overlaid."""
        return self.to_px(q, acc, epochs, self.acc_range(tele)[0])

    @staticmethod
    def axis_of(scene):
        return scene.compare.axis if scene.compare is not None else "epochs"

    def span(self, scene, runs):
        """The time axis' extent: the epochs of the longest run, or the seconds of the longest so far."""
        if self.axis_of(scene) == "epochs":
            return max([scene.config.epochs] + [r.epochs for r in runs])
        clock = scene.tele.clock
        return max([clock[-1][1] if clock else 0.0] + [r.seconds for r in runs] + [1.0])

    def live(self, scene, points):
        """The live run's (progress, value) points on the chart's time axis."""
        return on_axis(points, scene.tele.clock, self.axis_of(scene))

    def draw(self, surface, scene):
        tele, r, fs = scene.tele, self.rect, self.fs
        runs = self.overlays(scene)
        self.legend_rows = len(runs)
        axis = self.axis_of(scene)
        span = self.span(scene, runs)
        pygame.draw.rect(surface, PANEL_BG, r)
        x = self.text.blit(surface, "loss (log)", (r.x, r.y), fs, LOSS_COLOR).right + 10
        x = self.text.blit(surface, "test acc", (x, r.y), fs, ACCENT).right + 8
        self.text.blit(surface, "subset", (x, r.y), fs, SUBSET_COLOR)
        p = self.plot_rect()
        if p.height < 10 or p.width < 20:
            return
        pygame.draw.rect(surface, BG, p)
        run_acc = [run.acc_on(axis) for run in runs]
        lo, hi = self.acc_range(tele, [pt for curve in run_acc for pt in curve])
        th = self.text.font(fs).get_height()
        fracs = (lo, (1 + lo) / 2, 1.0) if p.height >= 2 * th + 4 else (lo, 1.0)
        for frac in fracs:
            yy = self.to_px(0, frac, span, lo)[1]
            pygame.draw.line(surface, GRID_BG, (p.x, yy), (p.right - 1, yy))
            self.text.blit(surface, f"{100 * frac:.0f}%", (r.right, yy), fs, ACCENT, False, "midright")
        self.draw_losses(surface, scene, runs, span)
        taken = []                                            # label rects so far: close markers stack
        lr_x = to_seconds([q for q, _ in tele.lr_changes], tele.clock) if axis == "seconds" else \
            [q for q, _ in tele.lr_changes]
        for xv, (_, lr) in zip(lr_x, tele.lr_changes):        # the user steered the learning rate here
            lx = self.to_px(xv, lo, span, lo)[0]
            pygame.draw.line(surface, TEXT, (lx, p.y), (lx, p.bottom - 1), 1)
            label = f"lr {lr:.2g}"
            box = pygame.Rect(lx + 2, p.y + 1, self.text.width(label, fs - 1), self.text.font(fs - 1).get_height())
            if box.right > p.right:                           # near the right end: left of the marker
                box.right = lx - 2
            while box.collidelist(taken) >= 0 and box.bottom + box.height <= p.bottom:
                box.y += box.height
            taken.append(self.text.blit(surface, label, box.topleft, fs - 1, TEXT))
        for i, curve in enumerate(run_acc):                   # earlier runs under the live one
            if curve:
                xy = np.array([self.to_px(xv, a, span, lo) for xv, a in curve], np.float64)
                self.polyline(surface, xy[:, 0], xy[:, 1], COMPARE_COLORS[i % len(COMPARE_COLORS)])
        live_acc = self.live(scene, [c for c in tele.acc_curve if c[0] > 0])
        for curve, color in ((self.live(scene, tele.subset_curve), SUBSET_COLOR), (live_acc, ACCENT)):
            if curve:
                xy = np.array([self.to_px(xv, a, span, lo) for xv, a in curve], np.float64)
                self.polyline(surface, xy[:, 0], xy[:, 1], color)
                if color == ACCENT:
                    for px, py in xy.astype(int).tolist():      # evaluation points marked
                        pygame.draw.circle(surface, color, (px, py), 3)
        rewind = scene.state.rewind
        if rewind is not None and rewind < len(tele.snapshots):          # where the rewound snapshot sits
            q = tele.snapshots[rewind][2]
            rx = self.to_px(to_seconds([q], tele.clock)[0] if axis == "seconds" and tele.clock else q, lo, span, lo)[0]
            pygame.draw.line(surface, LOSS_COLOR, (rx, p.y), (rx, p.bottom - 1), 2)
            self.text.blit(surface, "rewound", (rx + 3, p.bottom - 2) if rx < p.centerx else (rx - 3, p.bottom - 2),
                           fs - 1, LOSS_COLOR, False, "bottomleft" if rx < p.centerx else "bottomright")
        first, last = ("epoch 0", f"{span}") if axis == "epochs" else ("0 s", f"{span:,.0f} s")
        self.text.blit(surface, first, (p.x, p.bottom + 2), fs, DIM)
        self.text.blit(surface, last, (p.right, p.bottom + 2), fs, DIM, False, "topright")
        y = p.bottom + 2 + th + 1
        for i, run in enumerate(runs):                        # the legend of the overlaid runs
            color = COMPARE_COLORS[i % len(COMPARE_COLORS)]
            pygame.draw.line(surface, color, (r.x, y + th // 2), (r.x + 12, y + th // 2), 3)
            text = f"run {run.id}: {scene.compare.label(run)}"
            self.text.blit(surface, self.text.fit(text, fs, r.width - 18), (r.x + 18, y), fs, color)
            y += th + 1
        if not tele.trained_here and scene.config.no_train and not runs:
            self.text.blit(surface, "no training in this session", p.center, fs + 2, DIM, False, "center")

    def draw_losses(self, surface, scene, runs, span):
        """The live loss (thick) and the overlaid runs' (thin), smoothed, on one log scale."""
        p, fs = self.plot_rect(), self.fs
        curves = [(self.live(scene, scene.tele.loss_curve), LOSS_COLOR, 2)]
        curves += [(run.loss_on(self.axis_of(scene)), COMPARE_COLORS[i % len(COMPARE_COLORS)], 1)
                   for i, run in enumerate(runs)]
        smoothed = [(np.asarray(c, np.float64), ema(np.asarray(c, np.float64)[:, 1]), color, width)
                    for c, color, width in curves if c]
        if not smoothed:
            return
        # log scale: the late epochs' small losses stay readable
        top = max(max(float(np.nanmax(sm)) for _, sm, _, _ in smoothed), 1e-6)
        bottom = max(min(float(np.nanmin(sm)) for _, sm, _, _ in smoothed), 1e-6)
        lt, lb = np.log10(top), min(np.log10(bottom), np.log10(top) - 0.5)
        for pts, sm, color, width in reversed(smoothed):      # the live loss on top
            xs = p.x + np.clip(pts[:, 0] / max(span, 1e-9), 0, 1) * (p.width - 1)
            ys = p.bottom - 1 - np.clip((np.log10(np.maximum(sm, 1e-6)) - lb) / (lt - lb), 0, 1) * (p.height - 1)
            self.polyline(surface, xs, ys, color, width)
        self.text.blit(surface, f"{top:.2g}", (p.x - 3, p.y), fs, LOSS_COLOR, False, "topright")
        self.text.blit(surface, f"{10 ** lb:.1g}", (p.x - 3, p.bottom), fs, LOSS_COLOR, False, "bottomright")

    @staticmethod
    def polyline(surface, xs, ys, color, width=2):
        if len(xs) < 2:
            return
        if len(xs) > 400:
            keep = np.linspace(0, len(xs) - 1, 400).astype(int)
            xs, ys = xs[keep], ys[keep]
        pygame.draw.lines(surface, color, False, np.stack([xs, ys], 1).tolist(), width)


def ema(values, keep=0.9):
    """values (n,) smoothed by an exponential moving average (the loss curves)."""
    out = np.empty(len(values))
    acc = values[0]
    for i, v in enumerate(values):
        acc = keep * acc + (1 - keep) * v
        out[i] = acc
    return out


def bar_floor(per_class):
    """Where the per-class bars start: 2 points below the lowest class, in whole per cent,
    so 97 % and 99.3 % look different; 0 when a class is under 50 % (the whole scale)."""
    lowest = float(np.nanmin(per_class)) if np.isfinite(per_class).any() else 0.0
    return 0.0 if lowest < 0.5 else max(0.0, np.floor(round(100 * lowest, 6) - 2) / 100)


class ClassBars(Region):
    """Per-class accuracy of the latest evaluation on a scale zoomed to the data (from
    `bar_floor`), the hardest class marked, with the change since the previous full
    test-set evaluation."""
    fill_color = ACCENT

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
        per = None if per_class is None else np.asarray(per_class, np.float64)
        lo = 0.0 if per is None else bar_floor(per)
        hardest = None if per is None or not np.isfinite(per).any() or np.nanmin(per) == np.nanmax(per) \
            else int(np.nanargmin(per))
        for c, bar in enumerate(self.bar_rects(scene.names)):
            self.text.blit(surface, scene.names[c], (self.rect.x, bar.centery), fs, WRONG if c == hardest else TEXT,
                           c == hardest, "midleft")
            pygame.draw.rect(surface, GRID_BG, bar)
            if per is None or np.isnan(per[c]):
                continue
            a = float(per[c])
            fill = int(bar.width * np.clip((a - lo) / (1 - lo), 0, 1))
            pygame.draw.rect(surface, self.fill_color, (bar.x, bar.y, fill, bar.height))
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
        label_w = self.text.width("Snea", self.fs - 4) + 4            # the class names at the lines' ends
        return pygame.Rect(r.x + 30, r.y + 4, r.width - 30 - label_w, r.height - self.fs - 8)

    def series(self, tele):
        """(progress (E,), per_class (E, 10)) of the evaluations, oldest first."""
        if not tele.evals:
            return np.zeros(0), np.zeros((0, 10))
        ev = sorted((r for r in tele.evals if r.progress > 0), key=lambda r: r.progress)   # not the untrained start
        if not ev:
            return np.zeros(0), np.zeros((0, 10))
        return np.array([r.progress for r in ev]), np.array([r.per_class for r in ev], np.float64)

    def points(self, tele, epochs):
        """(E, 10, 2) pixel positions of every class's line, and the accuracy floor."""
        q, acc = self.series(tele)
        p = self.plot()
        lo = float(np.nanmin(acc)) if acc.size and np.isfinite(acc).any() else 0.0
        lo = min(0.9, max(0.0, np.floor(lo * 10) / 10))
        start = self.start(q)
        x = p.x + np.clip((q - start) / max(epochs - start, 1e-9), 0, 1) * (p.width - 1)
        y = p.bottom - 1 - np.clip((acc - lo) / (1 - lo), 0, 1) * (p.height - 1)
        return np.stack([np.broadcast_to(x[:, None], y.shape), y], 2), lo

    @staticmethod
    def start(q):
        """The epoch axis starts at the first evaluation (the lines start at the left edge)."""
        return float(q[0]) if len(q) else 0.0

    def update(self, scene):
        self.pts, self.lo = self.points(scene.tele, scene.config.epochs)   # what is drawn and hit-tested
        self.acc = self.series(scene.tele)[1]
        pointer = scene.state.pointer
        self.hover = None if pointer is None else self.class_at(pointer)

    def class_at(self, pos):
        pts = self.pts
        if not len(pts) or not self.plot().inflate(6, 6).collidepoint(pos):
            return None
        d = np.hypot(pts[..., 0] - pos[0], pts[..., 1] - pos[1])      # (E, 10)
        e, c = np.unravel_index(np.nanargmin(np.where(np.isfinite(d), d, np.inf)), d.shape)
        return int(c) if d[e, c] <= 10 else None

    def hit(self, pos):
        c = self.class_at(pos)
        return None if c is None else ("mistakes_of", c)

    def draw(self, surface, scene):
        p, fs = self.plot(), self.fs - 3
        pygame.draw.rect(surface, BG, p)
        pts, lo, hover = self.pts, self.lo, self.hover
        for frac in (lo, 1.0):
            yy = p.bottom - 1 - (frac - lo) / (1 - lo) * (p.height - 1)
            self.text.blit(surface, f"{100 * frac:.0f}%", (p.x - 3, yy), fs, DIM, False, "midright")
        start = self.start(self.series(scene.tele)[0])
        self.text.blit(surface, f"epoch {start:.2g}", (p.x, p.bottom + 2), fs, DIM)
        self.text.blit(surface, f"{scene.config.epochs}", (p.right, p.bottom + 2), fs, DIM, False, "topright")
        if len(pts) < 1:
            self.text.blit(surface, "no evaluations yet", p.center, fs + 1, DIM, False, "center")
            return
        ends = [pts[:, c][np.isfinite(pts[:, c, 1])] for c in range(10)]
        have = [c for c in range(10) if len(ends[c])]
        label_h = self.text.font(fs - 1).get_height()
        label_y = dict(zip(have, spread([ends[c][-1][1] for c in have], label_h + 1, p.y + label_h / 2,
                                        p.bottom - label_h / 2)))
        for c in range(10):
            xy = pts[:, c][np.isfinite(pts[:, c, 1])]
            width = 3 if c == hover else 1
            if len(xy) >= 2:
                pygame.draw.lines(surface, CLASS_COLORS[c], False, xy.tolist(), width)
            elif len(xy) == 1:
                pygame.draw.circle(surface, CLASS_COLORS[c], xy[0].astype(int).tolist(), 2)
            if len(xy):
                self.text.blit(surface, scene.short_names[c][:3], (p.right + 2, label_y[c]), fs - 1,
                               CLASS_COLORS[c], False, "midleft")
        if hover is not None:
            self.text.blit(surface, f"{scene.names[hover]}: {100 * self.acc[-1, hover]:.1f} %, click: its mistakes",
                           (p.x + 4, p.y + 2), fs, TEXT)


def spread(ys, gap, top, bottom):
    """Label centres near `ys` that are at least `gap` apart, within [top, bottom], in the
    order of ys (labels at the ends of lines that end close together)."""
    ys = np.asarray(ys, np.float64)
    if not len(ys):
        return []
    order = np.argsort(ys, kind="stable")
    out = np.clip(ys[order], top, bottom)
    for i in range(1, len(out)):                          # push down past the one above
        out[i] = max(out[i], out[i - 1] + gap)
    overflow = out[-1] - bottom
    if overflow > 0:                                       # then up from the bottom, if it ran over
        out[-1] = bottom
        for i in range(len(out) - 2, -1, -1):
            out[i] = min(out[i], out[i + 1] - gap)
    result = np.empty_like(out)
    result[order] = out
    return result.tolist()


class Panel(Region):
    """The side panel: training state, hyperparameters, curves, per-class accuracy, the
    digit on screen and the neurons it switches on."""

    def __init__(self, text):
        super().__init__(text)
        self.chart, self.bars, self.class_chart = Chart(text), ClassBars(text), ClassChart(text)

    def area(self, layout):
        return layout.panel

    def key(self, scene):
        return scene.panel_key

    def place_at(self, rect, font_size):
        super().place_at(rect, font_size)
        fs = font_size
        lh = fs + 5
        x, w = rect.x + 14, rect.width - 28
        top = rect.y + 10 + 7 * lh + 4                       # status (2 lines), hyperparameters (3), heading
        below = 9 * lh + 8              # heading line 2, digit on screen (+ its history), explained, neurons, fps
        free = rect.bottom - top - below - lh - 14            # for the chart and the ten bars
        bars_h = int(np.clip(free * 0.5, 10 * (lh - 1), 10 * (lh + 8)))
        chart_h = int(np.clip(free - bars_h, 80, 400))
        self.chart.place_at(pygame.Rect(x, top, w, chart_h), fs - 3)
        self.bars_y = top + chart_h + 8
        self.bars.place_at(pygame.Rect(x, self.bars_y + 2 * lh, w, bars_h), fs)
        self.class_chart.place_at(self.bars.rect, fs)
        self.showing_chart = False

    def update(self, scene):
        self.chart.update(scene)
        self.showing_chart = scene.state.class_chart
        if self.showing_chart:
            self.class_chart.update(scene)

    def hit(self, pos):
        return self.class_chart.hit(pos) if self.showing_chart else None

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
            line(f"epoch {min(tele.epoch + (0 if tele.finished else 1), cfg.epochs)}/{cfg.epochs}   "
                 f"batch {tele.batch}/{tele.n_batches}   {rate_text(tele, st)}", DIM, one=True)
        else:
            model = os.path.basename(cfg.load) if cfg.load else "untrained"
            trained = f", trained for {tele.epoch} epoch{'s' * (tele.epoch != 1)}" if cfg.load else ""
            line(f"model: {model}{trained}", DIM, one=True)
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
        floor = 0.0 if scene.classes[0] is None else bar_floor(np.asarray(scene.classes[0], np.float64))
        if not st.class_chart and floor > 0:                  # the bars' zoomed scale, said
            self.text.blit(surface, f"bars from {100 * floor:.0f} %", (p.right - 14, y), fs - 2, DIM, False, "topright")
        line("Per-class accuracy" + (" over time (T)" if st.class_chart else ""), ACCENT, True)
        labels = ("each line a class, at every evaluation",) if st.class_chart else scene.classes[2]
        labels = (labels,) if isinstance(labels, str) else labels          # phrasings, the fullest first
        line(self.text.fit(next((t for t in labels if self.text.width(t, fs - 2) <= w), labels[-1]), fs - 2, w),
             DIM, size=fs - 2)
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


def rate_text(tele, state):
    """The training pace for the panel: the rate of the last seconds of training, or why
    there is none."""
    if tele.finished:
        return "finished"
    if tele.paused or state.pause_requested:
        return "paused"
    rate = tele.samples_per_s()
    return "measuring samples/s..." if rate is None else f"{rate:,.0f} samples/s"


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
        return (f"wrong at every snapshot, read as {now} now", f"always wrong, now {now}")
    last_q, last_p = wrong[-1]
    if rows[-1][1] == true:
        since = next(q for q, p, _ in rows if q > last_q and p == true)
        until = "when untrained" if last_q == 0 else f"until {when(last_q)}"
        return (f"read as {names[last_p]} {until}, right since {when(since)}",
                f"right since {when(since)} (was {names[last_p]})", f"right since {when(since)}")
    right = len(rows) - len(wrong)
    return (f"now read as {now}; right at {right} of {len(rows)} snapshots",
            f"now {now}; right at {right} of {len(rows)}")


def status_line(tele, state, config, worker):
    """(text, colour) of the training state, for the panel's first line."""
    if state.rewind is not None and state.rewind < len(tele.snapshots):
        e, b, _ = tele.snapshots[state.rewind]
        return f"REWOUND: {describe_position(e, b)}", LOSS_COLOR
    if tele.failed:
        return "TRAINER STOPPED: " + tele.failed, WRONG
    if tele.diverged:
        return "DIVERGED", WRONG
    if tele.finished:
        return "FINISHED", RIGHT
    if config.no_train or worker is None:
        return "EXPLORING (no training)", ACCENT
    if state.pause_requested:
        return "PAUSED", LOSS_COLOR
    s = SPEEDS[state.speed]
    return ("TRAINING" if s == 0 else f"SLOW MOTION: {s * 1000:g} ms/batch"), RIGHT
