"""The run library's modal overlays over the network view: the leaderboard of the data
set's best runs (B; a click on a row overlays that run on the charts) and a sweep watched
live (--watch, Shift+B: every trial's accuracy curve, marked by its status, and its
hyperparameters as parallel coordinates). What they show comes from `comparison.py`
through the scene (scene.runs, scene.watch); they only draw and hit-test."""
from __future__ import annotations

import numpy as np
import pygame

from mnist_live.window.regions.base import OVERLAY, Region
from mnist_live.window.regions.charts import spread
from mnist_live.window.regions.palette import (
    ACCENT,
    BG,
    COMPARE_COLORS,
    DIM,
    GRID_BG,
    PANEL_BG,
    TEXT,
    TRIAL_COLORS,
    TRIAL_OTHER,
)


class LeaderboardOverlay(Region):
    """The best runs of the data set, best first: accuracy, time to 98 %, wall time and
    the hyperparameters that differ between the rows; the run on screen marked, the
    overlaid ones in their chart colour. A click on a row overlays that run (again: off)."""
    modal, z, overlay = True, OVERLAY, "leaderboard"

    def legend(self, noun):
        return ("the data set's best runs in the run library, best first, with the hyperparameters that differ; "
                "click a row: its curves on the loss and accuracy chart (again: off); B or Esc closes",
                "best runs first; click a row: overlay it on the chart; B or Esc closes",
                "click a row: overlay it; B closes")

    def caption(self, state, noun):
        return (("leaderboard (B): the best runs of this data set in the run library; a click puts a run's curves "
                 "on the chart beside the live one",
                 "leaderboard: the data set's best runs; click one to overlay it",
                 "best runs; click to overlay"),)

    def __init__(self, text):
        super().__init__(text)
        self.rows = []               # (pygame.Rect, run id) of the rows drawn (hit tests)

    def key(self, scene):
        return scene.runs.version, self.rect.size, scene.runs.data

    def row_h(self):
        return self.text.font(self.fs - 1).get_height() + 6

    def top(self):
        return self.rect.y + 2 * self.fs + 44

    def update(self, scene):
        self.rows = []
        h, y = self.row_h(), self.top() + self.row_h()
        for run_id in scene.runs.board_ids:
            if y + h > self.rect.bottom - 10:
                break
            self.rows.append((pygame.Rect(self.rect.x + 14, y, self.rect.width - 28, h), run_id))
            y += h

    def hit(self, pos):
        for rect, run_id in self.rows:
            if rect.collidepoint(pos):
                return "compare_run", run_id
        return None

    def columns(self, header, body, fs, width):
        """x offsets of the columns that fit `width` (the hyperparameter columns dropped from the right)."""
        widths = [max(self.text.width(str(v), fs) for v in col) + 18 for col in zip(header, *body)]
        while len(widths) > 5 and sum(widths) > width:
            widths.pop()
        xs, x = [], 0
        for w in widths:
            xs.append(x)
            x += w
        return xs

    def draw(self, surface, scene):
        r, fs = self.rect, self.fs
        pygame.draw.rect(surface, BG, r)
        self.text.blit(surface, self.text.fit(f"Best runs on the same data: {scene.runs.data}", fs, r.width - 40),
                       (r.x + 20, r.y + 12), fs, TEXT, True)
        self.text.blit(surface, self.text.fit("click a row: overlay that run on the loss and accuracy chart (again: "
                                              "off); B or Esc closes", fs - 1, r.width - 40),
                       (r.x + 20, r.y + 18 + fs), fs - 1, DIM)
        ids = scene.runs.board_ids
        if not ids:
            self.text.blit(surface, "no runs on this data recorded yet", r.center, fs, DIM, False, "center")
            return
        header, body, marks = scene.runs.board
        sfs = fs - 1
        mark_w = self.text.width("on screen", sfs) + 16
        xs = self.columns(header, body, sfs, r.width - 28 - mark_w)
        x0 = r.x + 14 + mark_w
        y = self.top()
        for i, x in enumerate(xs):
            self.text.blit(surface, header[i], (x0 + x, y), sfs, ACCENT, True)
        for (rect, _), cells, mark in zip(self.rows, body, marks):
            color = COMPARE_COLORS[mark % len(COMPARE_COLORS)] if isinstance(mark, int) else TEXT
            if mark is not None:
                pygame.draw.rect(surface, GRID_BG, rect)
            if mark == "live":
                self.text.blit(surface, "on screen", (rect.x + 4, rect.y + 3), sfs, ACCENT, True)
            elif isinstance(mark, int):
                pygame.draw.line(surface, color, (rect.x + 4, rect.centery), (rect.x + mark_w - 12, rect.centery), 3)
            for i, x in enumerate(xs):
                self.text.blit(surface, cells[i], (x0 + x, rect.y + 3), sfs, color)
        if len(self.rows) < len(ids):
            self.text.blit(surface, f"{len(ids) - len(self.rows)} more not shown", (r.right - 20, r.bottom - 8),
                           sfs, DIM, False, "bottomright")


class WatchOverlay(Region):
    """A sweep's trials watched live. Above: every trial's accuracy curve (validation
    accuracy when the sweep holds out a validation split, else test; against epochs or
    seconds, E), coloured by status (finished, pruned, running), each named at its end.
    Below: parallel coordinates, one axis per hyperparameter that differs between the
    trials and one for the accuracy, a line per trial. Pointing at a trial's line names its
    hyperparameters and scores. Re-read from the library every second by a thread."""
    modal, z, overlay = True, OVERLAY, "watch"
    HOVER_PX = 6                 # how near the pointer must come to a trial's line to name it

    def legend(self, noun):
        return ("above, each trial's accuracy over its epochs; below, its hyperparameters and final accuracy as "
                "one line across the axes; coloured by how it ended (finished, pruned, still running); point at "
                "a line to name the trial; Shift+B or Esc closes",
                "each trial's accuracy and hyperparameters, coloured by finished / pruned / running; point at one",
                "trials: finished / pruned / running")

    def caption(self, state, noun):
        return (("watched sweep (Shift+B): every trial's accuracy as it trains, so a pruned trial stops where "
                 "the pruner judged it behind; below, which settings each trial had and where it ended",
                 "watched sweep: every trial's accuracy and settings", "the sweep's trials"),)

    def __init__(self, text):
        super().__init__(text)
        self.paths = []              # (trial, curve points, parallel-coordinates points, label) as drawn
        self.axes = ()               # analysis.Axis of the parallel coordinates
        self.frame = None            # (span of the time axis, lowest accuracy) of the curves
        self.hovered = None          # the path under the pointer

    def key(self, scene):
        w = scene.watch
        hovered = None if self.hovered is None else self.hovered[0].id
        return None if w is None else (w.version, scene.runs.axis, self.rect.size, hovered)

    # ------------------------------------------------------------ geometry
    def _rows(self):
        th = self.text.font(self.fs - 1).get_height()
        top = self.rect.y + 2 * self.fs + 52
        bottom = self.rect.bottom - th - 14                       # the hover line under the plots
        curves_h = int((bottom - top - 3 * th - 16) * 0.5)
        return th, top, curves_h, bottom

    def plot_rect(self):
        """The accuracy curves' rectangle."""
        th, top, curves_h, _ = self._rows()
        label_w = self.text.width("#000 100.0%", self.fs - 2) + 8
        return pygame.Rect(self.rect.x + 60, top, self.rect.width - 80 - label_w, curves_h)

    def coords_rect(self):
        """The parallel coordinates' rectangle (its axis names above it)."""
        th, top, curves_h, bottom = self._rows()
        p = self.plot_rect()
        y = p.bottom + th + 8 + 2 * th + 8
        return pygame.Rect(p.x, y, p.width, max(bottom - th // 2 - 6 - y, 20))   # room for the lowest values

    def axis_x(self, i, n):
        c = self.coords_rect()
        return c.x + (c.width - 1) * (0.5 if n == 1 else i / (n - 1))

    def update(self, scene):
        w = scene.watch
        trials = w.trials if w is not None else ()
        self.axes = w.axes if w is not None else ()
        p, c = self.plot_rect(), self.coords_rect()
        curves = {t.id: t.acc_on(scene.runs.axis) for t in trials}
        self.frame = curve_frame(trials, curves, scene.runs.axis)
        self.paths = []
        for (t, heights), label in zip(w.lines if w is not None else (), w.labels if w is not None else ()):
            curve = [self.to_px(p, x, a, *self.frame) for x, a in curves[t.id]] if self.frame else []
            coords = [(int(round(self.axis_x(i, len(heights)))), int(round(c.bottom - 1 - h * (c.height - 1))))
                      for i, h in enumerate(heights) if h is not None]
            self.paths.append((t, curve, coords, label))
        pointer = scene.state.pointer
        self.hovered = None if pointer is None else nearest_path(self.paths, pointer, self.HOVER_PX)

    # ------------------------------------------------------------ drawing
    def draw(self, surface, scene):
        r, fs, w = self.rect, self.fs, scene.watch
        pygame.draw.rect(surface, BG, r)
        trials = w.trials if w is not None else ()
        what = "val" if trials and trials[0].kind == "val" else "test"
        counts = {s: sum(t.status == s for t in trials) for s in ("finished", "pruned", "running")}
        self.text.blit(surface, f"Sweep {w.sweep if w else '?'}: {len(trials)} trials, "
                                f"{'validation' if what == 'val' else 'test'} accuracy", (r.x + 20, r.y + 12), fs,
                       TEXT, True)
        x, y = r.x + 20, r.y + 22 + fs + 6
        for status, n in counts.items():                      # the colours mean statuses here
            pygame.draw.line(surface, TRIAL_COLORS[status], (x, y), (x + 14, y), 3)
            x = self.text.blit(surface, f"{status} {n}", (x + 20, y), fs - 2, DIM, False, "midleft").right + 16
        self.text.blit(surface, self.text.fit("read from the run library every second; Shift+B or Esc closes",
                                              fs - 2, r.right - x - 30), (x + 10, y), fs - 2, DIM, False, "midleft")
        p = self.plot_rect()
        pygame.draw.rect(surface, PANEL_BG, p)
        if w is not None and w.error:
            self.text.blit(surface, self.text.fit(w.error, fs - 1, p.width - 20), p.center, fs - 1, DIM, False,
                           "center")
            return
        if not self.frame:
            self.text.blit(surface, "no evaluations yet", p.center, fs, DIM, False, "center")
            return
        self.draw_curves(surface, scene.runs.axis)
        self.draw_coordinates(surface)
        self.draw_hover(surface)

    def draw_curves(self, surface, axis):
        p, sfs, (span, lo) = self.plot_rect(), self.fs - 2, self.frame
        for frac in (lo, (1 + lo) / 2, 1.0):
            yy = int(p.bottom - 1 - (frac - lo) / (1 - lo) * (p.height - 1))
            pygame.draw.line(surface, GRID_BG, (p.x, yy), (p.right - 1, yy))
            self.text.blit(surface, f"{100 * frac:.1f}%", (p.x - 4, yy), sfs, DIM, False, "midright")
        self.text.blit(surface, "epoch 0" if axis == "epochs" else "0 s", (p.x, p.bottom + 4), sfs, DIM)
        self.text.blit(surface, f"{span}" if axis == "epochs" else f"{span:,.0f} s", (p.right, p.bottom + 4), sfs,
                       DIM, False, "topright")
        ends = []
        for t, xy, _, _ in self.in_drawing_order():
            if not xy:
                continue
            color = TRIAL_COLORS.get(t.status, TRIAL_OTHER)
            if len(xy) >= 2:
                pygame.draw.lines(surface, color, False, xy, self.width_of(t))
            pygame.draw.circle(surface, color, xy[-1], 3)
            ends.append((xy[-1], t, t.acc[-1][1], color))
        lh = self.text.font(sfs).get_height()
        ys = spread([e[0][1] for e in ends], lh, p.y + lh / 2, p.bottom - lh / 2)
        for (_, t, acc, color), y in zip(ends, ys):
            self.text.blit(surface, f"#{t.trial if t.trial is not None else t.id} {100 * acc:.1f}%", (p.right + 6, y),
                           sfs, color, False, "midleft")

    def draw_coordinates(self, surface):
        c, sfs, n = self.coords_rect(), self.fs - 2, len(self.axes)
        th = self.text.font(sfs).get_height()
        if not n:
            return
        if n == 1:                                                 # the accuracy's axis only
            self.text.blit(surface, "every trial has the same hyperparameters", (c.x, c.y - 2 * th - 6), sfs, DIM)
        for i, axis in enumerate(self.axes):
            x = int(round(self.axis_x(i, n)))
            pygame.draw.line(surface, GRID_BG, (x, c.y), (x, c.bottom - 1), 2)
            anchor = "topleft" if i == 0 and n > 1 else "topright" if i == n - 1 and n > 1 else "midtop"
            gap = (c.width / max(n - 1, 1)) - 8
            self.text.blit(surface, self.text.fit(axis.label, sfs, max(gap, 40), True), (x, c.y - 2 * th - 6), sfs,
                           TEXT, True, anchor)
        for t, _, xy, _ in self.in_drawing_order():
            if len(xy) >= 2:
                pygame.draw.lines(surface, TRIAL_COLORS.get(t.status, TRIAL_OTHER), False, xy, self.width_of(t))
        for i, axis in enumerate(self.axes):                       # the values over the lines
            x = int(round(self.axis_x(i, n)))
            right = i == n - 1 and n > 1
            for h, text in axis.ticks:
                y = int(round(c.bottom - 1 - h * (c.height - 1)))
                pos = (x - 5, y) if right else (x + 5, y)
                label = self.text.render(text, sfs, TEXT)
                box = label.get_rect(**{"midright" if right else "midleft": pos}).clamp(c.inflate(60, th))
                surface.fill(BG, box.inflate(4, 0))
                surface.blit(label, box)

    def draw_hover(self, surface):
        r, sfs = self.rect, self.fs - 1
        if self.hovered is not None:
            text, color = self.hovered[3], TEXT
        else:
            text, color = "point at a trial's line to see its hyperparameters and accuracy", DIM
        self.text.blit(surface, self.text.fit(text, sfs, r.width - 40), (r.x + 20, r.bottom - 8), sfs, color, False,
                       "bottomleft")

    def in_drawing_order(self):
        """Running trials over the others, the hovered one over all."""
        return sorted(self.paths, key=lambda p: (p is self.hovered, p[0].status == "running"))

    def width_of(self, trial):
        return 4 if self.hovered is not None and trial is self.hovered[0] else 3 if trial.status == "running" else 2

    @staticmethod
    def to_px(p, x, acc, span, lo):
        return (int(round(p.x + np.clip(x / max(span, 1e-9), 0, 1) * (p.width - 1))),
                int(round(p.bottom - 1 - np.clip((acc - lo) / (1 - lo), 0, 1) * (p.height - 1))))


def curve_frame(trials, curves, axis):
    """(span of the time axis, lowest accuracy shown) of the watched trials' curves, or None without any."""
    accs = [a for c in curves.values() for _, a in c]
    if not accs:
        return None
    lo = min(0.9, max(0.0, np.floor(min(accs) * 20) / 20 - 0.05))
    span = max([x for c in curves.values() for x, _ in c] + [1e-9]) if axis == "seconds" \
        else max(t.epochs for t in trials)
    return span, lo


def nearest_path(paths, pointer, within):
    """The path (trial, curve, coordinates, label) whose drawn lines pass nearest `pointer`,
    if within `within` pixels; else None."""
    best, best_d = None, within
    q = np.asarray(pointer, np.float64)
    for path in paths:
        for xy in path[1:3]:
            pts = np.asarray(xy, np.float64).reshape(-1, 2)                # (n, 2)
            if len(pts) == 1:
                d = float(np.hypot(*(q - pts[0])))
            elif len(pts):
                a, b = pts[:-1], pts[1:]                                   # (n-1, 2) segments
                ab = b - a
                t = np.clip(((q - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-9), 0, 1)
                d = float(np.hypot(*(a + t[:, None] * ab - q).T).min())
            else:
                continue
            if d <= best_d:
                best, best_d = path, d
    return best
