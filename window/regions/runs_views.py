"""The run library's modal overlays over the network view: the leaderboard of the data
set's best runs (B; a click on a row overlays that run on the charts) and a sweep watched
live (--watch, Shift+B: every trial's test-accuracy curve, marked by its status). What
they show comes from `comparison.py` through the scene (scene.runs, scene.watch); they only
draw and hit-test."""
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
        return scene.runs.version, self.rect.size, scene.dataset

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
        self.text.blit(surface, f"Best {scene.dataset} runs in the run library", (r.x + 20, r.y + 12), fs, TEXT, True)
        self.text.blit(surface, self.text.fit("click a row: overlay that run on the loss and accuracy chart (again: "
                                              "off); B or Esc closes", fs - 1, r.width - 40),
                       (r.x + 20, r.y + 18 + fs), fs - 1, DIM)
        ids = scene.runs.board_ids
        if not ids:
            self.text.blit(surface, "no runs of this data set recorded yet", r.center, fs, DIM, False, "center")
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
    """A sweep's trials watched live: every trial's test-accuracy curve in one chart
    (against epochs or seconds, E), coloured by status (finished, pruned, running),
    each named at its end; re-read from the library every second by a thread."""
    modal, z, overlay = True, OVERLAY, "watch"

    def legend(self, noun):
        return ("each trial's test accuracy over its epochs, coloured by how it ended (finished, pruned, "
                "still running), read from the run library every second; Shift+B or Esc closes",
                "each trial's accuracy, coloured by finished / pruned / running; Shift+B closes",
                "trials: finished / pruned / running")

    def caption(self, state, noun):
        return (("watched sweep (Shift+B): every trial's test accuracy as it trains, so a pruned trial stops where "
                 "the pruner judged it behind",
                 "watched sweep: every trial's accuracy as it trains", "the sweep's trials"),)

    def key(self, scene):
        w = scene.watch
        return None if w is None else (w.version, scene.runs.axis, self.rect.size)

    def plot_rect(self):
        r, th = self.rect, self.text.font(self.fs - 1).get_height()
        label_w = self.text.width("#000 100.0%", self.fs - 2) + 8
        return pygame.Rect(r.x + 60, r.y + 2 * self.fs + 52, r.width - 80 - label_w, r.height - 2 * self.fs - 80 - th)

    def draw(self, surface, scene):
        r, fs, w = self.rect, self.fs, scene.watch
        pygame.draw.rect(surface, BG, r)
        trials = w.trials if w is not None else []
        counts = {s: sum(t.status == s for t in trials) for s in ("finished", "pruned", "running")}
        self.text.blit(surface, f"Sweep {w.sweep if w else '?'}: {len(trials)} trials, test accuracy",
                       (r.x + 20, r.y + 12), fs, TEXT, True)
        x = r.x + 20
        for status, n in counts.items():                      # the colours mean statuses here
            color = TRIAL_COLORS[status]
            y = r.y + 22 + fs + 6
            pygame.draw.line(surface, color, (x, y), (x + 14, y), 3)
            x = self.text.blit(surface, f"{status} {n}", (x + 20, y), fs - 2, DIM, False, "midleft").right + 16
        self.text.blit(surface, "read from the run library every second; Shift+B or Esc closes", (x + 10, y),
                       fs - 2, DIM, False, "midleft")
        p = self.plot_rect()
        pygame.draw.rect(surface, PANEL_BG, p)
        if w is not None and w.error:
            self.text.blit(surface, self.text.fit(w.error, fs - 1, p.width - 20), p.center, fs - 1, DIM, False,
                           "center")
            return
        axis = scene.runs.axis
        curves = [(t, t.acc_on(axis)) for t in trials]
        accs = [a for _, c in curves for _, a in c]
        if not accs:
            self.text.blit(surface, "no evaluations yet", p.center, fs, DIM, False, "center")
            return
        lo = min(0.9, max(0.0, np.floor(min(accs) * 20) / 20 - 0.05))
        span = max([xv for _, c in curves for xv, _ in c] + [1e-9]) if axis == "seconds" \
            else max(t.epochs for t in trials)
        sfs = fs - 2
        for frac in (lo, (1 + lo) / 2, 1.0):
            yy = int(p.bottom - 1 - (frac - lo) / (1 - lo) * (p.height - 1))
            pygame.draw.line(surface, GRID_BG, (p.x, yy), (p.right - 1, yy))
            self.text.blit(surface, f"{100 * frac:.1f}%", (p.x - 4, yy), sfs, DIM, False, "midright")
        self.text.blit(surface, "epoch 0" if axis == "epochs" else "0 s", (p.x, p.bottom + 4), sfs, DIM)
        self.text.blit(surface, f"{span}" if axis == "epochs" else f"{span:,.0f} s", (p.right, p.bottom + 4), sfs,
                       DIM, False, "topright")
        ends = []
        for t, c in sorted(curves, key=lambda tc: tc[0].status == "running"):   # running trials on top
            if not c:
                continue
            color = TRIAL_COLORS.get(t.status, TRIAL_OTHER)
            xy = [self.to_px(p, xv, a, span, lo) for xv, a in c]
            if len(xy) >= 2:
                pygame.draw.lines(surface, color, False, xy, 3 if t.status == "running" else 2)
            pygame.draw.circle(surface, color, xy[-1], 3)
            ends.append((xy[-1], t, c[-1][1], color))
        lh = self.text.font(sfs).get_height()
        ys = spread([e[0][1] for e in ends], lh, p.y + lh / 2, p.bottom - lh / 2)
        for (_, t, acc, color), y in zip(ends, ys):
            self.text.blit(surface, f"#{t.trial if t.trial is not None else t.id} {100 * acc:.1f}%", (p.right + 6, y),
                           sfs, color, False, "midleft")

    @staticmethod
    def to_px(p, x, acc, span, lo):
        return (int(round(p.x + np.clip(x / max(span, 1e-9), 0, 1) * (p.width - 1))),
                int(round(p.bottom - 1 - np.clip((acc - lo) / (1 - lo), 0, 1) * (p.height - 1))))
