"""The side panel's charts: the loss and accuracy chart (earlier runs overlaid), the
per-class accuracy bars and the per-class accuracy over time (T). Each is a region the
panel places inside its own rectangle."""
from __future__ import annotations

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
)

NO_TRAINING = "no training in this session"       # the chart of a --no-train window


class Chart(Region):
    """Loss (left scale) and test accuracy (right scale, zoomed) against epochs or seconds
    (E), with earlier runs of the run library overlaid (K; `scene.runs`): each in its
    own colour, its accuracy thick and its loss thin, named in a legend under the axis by
    what it does differently. Legend above, scales and time axis outside the plot, so no
    label sits on a curve."""
    legend_rows = 0              # overlaid runs named under the axis (set by `update`)

    def overlays(self, scene):
        """The overlaid runs that fit (as many legend rows as leave the plot 3 lines high)."""
        runs = scene.runs.runs
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
        return scene.runs.axis

    def span(self, scene, runs):
        """The time axis' extent: the epochs of the longest run, or the seconds of the longest so far."""
        if self.axis_of(scene) == "epochs":
            return max([scene.config.epochs] + [r.epochs for r in runs])
        clock = scene.panel_tele.clock
        return max([clock[-1][1] if clock else 0.0] + [r.seconds for r in runs] + [1.0])

    def live(self, scene, points):
        """The live run's (progress, value) points on the chart's time axis."""
        return on_axis(points, scene.panel_tele.clock, self.axis_of(scene))

    def draw(self, surface, scene):
        tele, r, fs = scene.panel_tele, self.rect, self.fs
        runs = self.overlays(scene)
        self.legend_rows = len(runs)
        axis, span = self.axis_of(scene), self.span(scene, runs)
        pygame.draw.rect(surface, PANEL_BG, r)
        x = self.text.blit(surface, "loss (log)", (r.x, r.y), fs, LOSS_COLOR).right + 10
        x = self.text.blit(surface, "test acc", (x, r.y), fs, ACCENT).right + 8
        self.text.blit(surface, "subset", (x, r.y), fs, SUBSET_COLOR)
        p = self.plot_rect()
        if p.height < 10 or p.width < 20:
            return
        pygame.draw.rect(surface, BG, p)
        run_acc = [run.acc_on(axis) for run in runs]
        lo, _ = self.acc_range(tele, [pt for curve in run_acc for pt in curve])
        self.draw_scale(surface, lo, span)
        self.draw_losses(surface, scene, runs, span)
        labels = self.draw_lr_marks(surface, tele, axis, lo, span)
        self.draw_accuracies(surface, scene, run_acc, lo, span)
        labels += self.draw_rewind(surface, scene, axis, lo, span, [box for _, box, _ in labels])
        for text, box, colour in labels:                     # last, on the background: no curve runs through them
            pygame.draw.rect(surface, BG, box.inflate(2, 0))
            self.text.blit(surface, text, box.topleft, self.fs - 1, colour)
        first, last = ("epoch 0", f"{span}") if axis == "epochs" else ("0 s", f"{span:,.0f} s")
        self.text.blit(surface, first, (p.x, p.bottom + 2), fs, DIM)
        self.text.blit(surface, last, (p.right, p.bottom + 2), fs, DIM, False, "topright")
        self.draw_run_legend(surface, scene, runs, p.bottom + 2 + self.text.font(fs).get_height() + 1)
        if not tele.trained_here and scene.config.no_train and not runs and not tele.loss_curve \
                and not tele.acc_curve:                      # why the chart is empty (a loaded run's curves are not)
            self.text.blit(surface, NO_TRAINING, p.center, fs + 2, DIM, False, "center")

    def draw_scale(self, surface, lo, span):
        """The accuracy scale's grid lines, labelled at the right."""
        p, fs = self.plot_rect(), self.fs
        th = self.text.font(fs).get_height()
        for frac in (lo, (1 + lo) / 2, 1.0) if p.height >= 2 * th + 4 else (lo, 1.0):
            yy = self.to_px(0, frac, span, lo)[1]
            pygame.draw.line(surface, GRID_BG, (p.x, yy), (p.right - 1, yy))
            self.text.blit(surface, f"{100 * frac:.0f}%", (self.rect.right, yy), fs, ACCENT, False, "midright")

    def draw_lr_marks(self, surface, tele, axis, lo, span):
        """Where the user steered the learning rate: a line, and the new rate as a label for
        later (close marks stack): [(text, box, colour)]."""
        p, fs, taken, labels = self.plot_rect(), self.fs, [], []
        lr_x = to_seconds([q for q, _ in tele.lr_changes], tele.clock) if axis == "seconds" else \
            [q for q, _ in tele.lr_changes]
        for xv, (_, lr) in zip(lr_x, tele.lr_changes):
            lx = self.to_px(xv, lo, span, lo)[0]
            pygame.draw.line(surface, TEXT, (lx, p.y), (lx, p.bottom - 1), 1)
            label = f"lr {lr:.2g}"
            box = pygame.Rect((lx + 2, p.y + 1), self.text.render(label, fs - 1, TEXT).get_size())
            if box.right > p.right:                           # near the right end: left of the marker
                box.right = lx - 2
            while box.collidelist(taken) >= 0 and box.bottom + box.height <= p.bottom:
                box.y += box.height
            taken.append(box)
            labels.append((label, box, TEXT))
        return labels

    def draw_accuracies(self, surface, scene, run_acc, lo, span):
        """The earlier runs' accuracy under the live run's (its evaluation points marked) and the subset's."""
        tele = scene.panel_tele
        for i, curve in enumerate(run_acc):
            if curve:
                xy = np.array([self.to_px(xv, a, span, lo) for xv, a in curve], np.float64)
                self.polyline(surface, xy[:, 0], xy[:, 1], COMPARE_COLORS[i % len(COMPARE_COLORS)])
        live_acc = self.live(scene, [c for c in tele.acc_curve if c[0] > 0])
        for curve, color in ((self.live(scene, tele.subset_curve), SUBSET_COLOR), (live_acc, ACCENT)):
            if curve:
                xy = np.array([self.to_px(xv, a, span, lo) for xv, a in curve], np.float64)
                self.polyline(surface, xy[:, 0], xy[:, 1], color)
                if color == ACCENT:
                    for px, py in xy.astype(int).tolist():
                        pygame.draw.circle(surface, color, (px, py), 3)

    def draw_rewind(self, surface, scene, axis, lo, span, taken=()):
        """Where the rewound snapshot sits on the time axis: its line, and its label for later,
        clear of the learning-rate labels (`taken`): [(text, box, colour)] or []."""
        tele, rewind, p, fs = scene.panel_tele, scene.state.rewind, self.plot_rect(), self.fs
        if rewind is None or rewind >= len(tele.snapshots):
            return []
        q = tele.snapshots[rewind][2]
        rx = self.to_px(to_seconds([q], tele.clock)[0] if axis == "seconds" and tele.clock else q, lo, span, lo)[0]
        pygame.draw.line(surface, LOSS_COLOR, (rx, p.y), (rx, p.bottom - 1), 2)
        box = pygame.Rect((0, 0), self.text.render("rewound", fs - 1, LOSS_COLOR).get_size())
        if rx < p.centerx:
            box.bottomleft = (rx + 3, p.bottom - 2)
        else:
            box.bottomright = (rx - 3, p.bottom - 2)
        while box.collidelist(list(taken)) >= 0 and box.y - box.height >= p.y:
            box.y -= box.height
        return [("rewound", box, LOSS_COLOR)]

    def draw_run_legend(self, surface, scene, runs, y):
        """Under the axis, each overlaid run named by what it does differently, in its colour."""
        r, fs = self.rect, self.fs
        th = self.text.font(fs).get_height()
        for i, run in enumerate(runs):
            color = COMPARE_COLORS[i % len(COMPARE_COLORS)]
            pygame.draw.line(surface, color, (r.x, y + th // 2), (r.x + 12, y + th // 2), 3)
            text = f"run {run.id}: {scene.runs.labels[i]}"
            self.text.blit(surface, self.text.fit(text, fs, r.width - 18), (r.x + 18, y), fs, color)
            y += th + 1

    def draw_losses(self, surface, scene, runs, span):
        """The live loss (thick) and the overlaid runs' (thin), smoothed, on one log scale."""
        p, fs = self.plot_rect(), self.fs
        curves = [(self.live(scene, scene.panel_tele.loss_curve), LOSS_COLOR, 2)]
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

    @staticmethod
    def kind(tele):
        """Which evaluations the lines go through: the full test set's once there is one of
        trained weights, the subset's before (never both: their noise differs, a zig-zag)."""
        return "full" if any(r.kind == "full" and r.progress > 0 for r in tele.evals) else "subset"

    def series(self, tele):
        """(progress (E,), per_class (E, 10)) of the evaluations of one kind, oldest first."""
        kind = self.kind(tele)
        ev = sorted((r for r in tele.evals if r.progress > 0 and r.kind == kind), key=lambda r: r.progress)
        if not ev:                                                  # not the untrained start
            return np.zeros(0), np.zeros((0, 10))
        return np.array([r.progress for r in ev]), np.array([r.per_class for r in ev], np.float64)

    @staticmethod
    def scale(acc):
        """(low, high) of the accuracy axis: the data's range in whole 2-point steps, a step of room."""
        if not acc.size or not np.isfinite(acc).any():
            return 0.0, 1.0
        lo = round(max(0.0, np.floor(float(np.nanmin(acc)) * 50) / 50 - 0.02), 6)
        hi = round(min(1.0, np.ceil(float(np.nanmax(acc)) * 50) / 50 + 0.02), 6)
        return lo, max(hi, lo + 0.04)

    def points(self, tele, epochs):
        """(E, 10, 2) pixel positions of every class's line, and the accuracy axis (low, high)."""
        q, acc = self.series(tele)
        p = self.plot()
        lo, hi = self.scale(acc)
        start = self.start(q)
        x = p.x + np.clip((q - start) / max(epochs - start, 1e-9), 0, 1) * (p.width - 1)
        y = p.bottom - 1 - np.clip((acc - lo) / (hi - lo), 0, 1) * (p.height - 1)
        return np.stack([np.broadcast_to(x[:, None], y.shape), y], 2), (lo, hi)

    @staticmethod
    def start(q):
        """The epoch axis starts at the first evaluation (the lines start at the left edge)."""
        return float(q[0]) if len(q) else 0.0

    def update(self, scene):
        self.pts, self.lo = self.points(scene.panel_tele, scene.config.epochs)   # what is drawn and hit-tested
        self.acc = self.series(scene.panel_tele)[1]
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
        pts, (lo, hi), hover = self.pts, self.lo, self.hover
        for frac in (lo, hi):
            yy = p.bottom - 1 - (frac - lo) / (hi - lo) * (p.height - 1)
            self.text.blit(surface, f"{100 * frac:.0f}%", (p.x - 3, yy), fs, DIM, False, "midright")
        start = self.start(self.series(scene.panel_tele)[0])
        self.draw_rewind(surface, scene, p, start)
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


    def draw_rewind(self, surface, scene, p, start):
        """Where the rewound snapshot sits on the epoch axis (as on the loss chart)."""
        tele, rewind = scene.panel_tele, scene.state.rewind
        if rewind is None or rewind >= len(tele.snapshots):
            return
        q = tele.snapshots[rewind][2]
        x = int(round(p.x + np.clip((q - start) / max(scene.config.epochs - start, 1e-9), 0, 1) * (p.width - 1)))
        pygame.draw.line(surface, LOSS_COLOR, (x, p.y), (x, p.bottom - 1), 2)


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
