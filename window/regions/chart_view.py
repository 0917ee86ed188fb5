"""The large chart (Z, or a click on the panel's chart): the loss and accuracy chart over
the network view, the earlier runs overlaid, and under it a line per run that answers
"did it help?": its final figures against the run on screen and how much sooner or later
it reached a common accuracy ("lr 0.003: 98.48 %, +0.96 pt over the run on screen, 40 s
sooner to 98 %"). `verdict` is pure; the region draws the panel's own `Chart` larger."""
from __future__ import annotations

import math
import re

import pygame

from mnist_live.runs.comparison import on_axis
from mnist_live.window.regions.base import OVERLAY, Region
from mnist_live.window.regions.charts import Chart
from mnist_live.window.regions.palette import ACCENT, BG, COMPARE_COLORS, DIM, TEXT
from mnist_live.window.view_model import describe_position


def shorter(text):
    """Phrasings of a line from the fullest to the shortest: without its parenthesis, then
    without its last clauses (", ...")."""
    plain = re.sub(r" \(.*?\)", "", text)
    parts = plain.split(", ")
    return (text, plain, *(", ".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)))


def time_to(curve, level):
    """Seconds at which an accuracy curve [(seconds, accuracy)] first reached `level`, or None."""
    return next((t for t, a in curve if a >= level - 1e-12), None)


def common_level(finals):
    """The accuracy every run reached, in whole per cent, at most 98 %: what "sooner to" compares."""
    return min(0.98, math.floor(100 * min(finals) + 1e-9) / 100)


def verdict(label, other, live, other_final, live_final):
    """One line on an overlaid run against the run on screen. `other`, `live`: their
    accuracy curves [(seconds, accuracy)] of the full test set; the finals are their last
    (or recorded) test accuracy, None when unknown."""
    if other_final is None:
        return f"{label}: no test accuracy recorded"
    said = f"{label}: {100 * other_final:.2f} %"
    if live_final is None:
        return f"{said} (the run on screen has no full test-set figure yet)"
    gap = 100 * (other_final - live_final)
    said += f", {gap:+.2f} pt {'over' if gap >= 0 else 'under'} the run on screen"
    level = common_level([other_final, live_final])
    t_other, t_live = time_to(other, level), time_to(live, level)
    if t_other is not None and t_live is not None and level > 0:
        dt = t_other - t_live
        said += f", {abs(dt):.0f} s {'sooner' if dt < 0 else 'later'} to {100 * level:.0f} %" if abs(dt) >= 0.5 \
            else f", as soon to {100 * level:.0f} %"
    return said


class ChartOverlay(Region):
    """The chart, large, with a verdict per overlaid run under it."""
    modal, z, overlay = True, OVERLAY, "chart"

    def __init__(self, text):
        super().__init__(text)
        self.chart = Chart(text)

    def legend(self, noun):
        return ("the loss (orange, log scale) and test accuracy (blue) of the run on screen, earlier runs in their "
                "own colours; E: epochs / seconds, K: earlier runs on / off; Z or Esc closes",
                "loss and accuracy, earlier runs in their colours; E: axis, K: runs; Z closes", "Z closes")

    def caption(self, state, noun):
        return (("did it help? each earlier run's final test accuracy against the run on screen, and how much sooner "
                 "or later it reached the same accuracy (E: against seconds)",
                 "each earlier run against the one on screen: final accuracy, time to the same accuracy",
                 "earlier runs against this one"),)

    def lines(self, scene):
        """(text, colour) under the chart: the run on screen, then a verdict per overlaid run."""
        tele, runs = scene.panel_tele, scene.runs
        live_final = tele.last_full.accuracy if tele.last_full is not None else None
        live_curve = on_axis([c for c in tele.acc_curve if c[0] > 0], tele.clock, "seconds")
        head = "run on screen: no full test-set evaluation yet" if live_final is None else \
            f"run on screen: {100 * live_final:.2f} % (full test set, {describe_position(*tele.last_full.position)})"
        out = [(head, ACCENT)]
        for i, run in enumerate(scene.runs.runs[:len(COMPARE_COLORS)]):
            final = run.test_accuracy if run.test_accuracy is not None else (run.acc[-1][1] if run.acc else None)
            text = verdict(f"run {run.id}, {runs.labels[i]}", run.acc_on("seconds"), live_curve, final, live_final)
            out.append((text, COMPARE_COLORS[i % len(COMPARE_COLORS)]))
        return out

    def place_at(self, rect, font_size):
        super().place_at(rect, font_size)
        lh = font_size + 4
        below = (1 + 6) * lh + 16
        self.chart.place_at(pygame.Rect(rect.x + 20, rect.y + font_size + 24, rect.width - 40,
                                        rect.height - font_size - 24 - below), font_size)

    def update(self, scene):
        self.chart.update(scene)

    def key(self, scene):
        return scene.panel_key, scene.runs.version, self.rect.size

    def draw(self, surface, scene):
        r, fs = self.rect, self.fs
        pygame.draw.rect(surface, BG, r)
        titles = (("Loss and test accuracy, earlier runs overlaid: did it help?", "Did it help?")
                  if self.chart.overlays(scene) else ("Loss and test accuracy", "Loss and accuracy"))
        title = next((t for t in titles if self.text.width(t, fs + 1, True) <= r.width - 40), titles[-1])
        self.text.blit(surface, title, (r.x + 20, r.y + 10), fs + 1, TEXT, True)
        self.chart.draw(surface, scene)
        y = self.chart.rect.bottom + 10
        for text, colour in self.lines(scene):
            said = shorter(text)
            line = next((t for t in said if self.text.width(t, fs) <= r.width - 40), said[-1])
            self.text.blit(surface, self.text.fit(line, fs, r.width - 40), (r.x + 20, y), fs, colour)
            y += fs + 4
        if not scene.runs.runs:
            said = ("no earlier run overlaid: K shows the previous one, B lists the best, F2 starts a new one",
                    "no earlier run overlaid (K, B, F2)", "no earlier run")
            self.text.blit(surface, next((t for t in said if self.text.width(t, fs - 1) <= r.width - 40), said[-1]),
                           (r.x + 20, y), fs - 1, DIM)
