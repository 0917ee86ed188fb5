"""The side panel: training state, hyperparameters, the loss and accuracy chart, per-class
accuracy (bars or over time) and the digit on screen with its history. The panel draws as
one picture but pushes only the parts that changed (`part_keys`): new weights change the
digit's part, a report the state and charts, a key the rest."""
from __future__ import annotations

import os

import numpy as np
import pygame

from mnist_live.window.regions.base import CHROME, Region
from mnist_live.window.regions.charts import Chart, ClassBars, ClassChart, bar_floor
from mnist_live.window.regions.palette import (
    ACCENT,
    DIM,
    GRID_BG,
    LOSS_COLOR,
    PANEL_BG,
    RIGHT,
    TEXT,
    WRONG,
    verdict_color,
)
from mnist_live.window.state import SPEEDS
from mnist_live.window.view_model import describe_position


class Panel(Region):
    """The side panel: training state, hyperparameters, curves, per-class accuracy, the
    digit on screen and the neurons it switches on."""
    z = CHROME

    def __init__(self, text):
        super().__init__(text)
        self.chart, self.bars, self.class_chart = Chart(text), ClassBars(text), ClassChart(text)

    def area(self, layout):
        return layout.panel

    def key(self, scene):
        return scene.panel_key

    def part_keys(self, scene):
        """What each part of the panel shows depends on."""
        st, tele_seen = scene.state, scene.panel_key[0]
        dead = None if scene.test_pass is None else id(scene.test_pass)
        return {"top": (tele_seen, scene.status, st.pause_requested, st.speed),
                "chart": (tele_seen, st.rewind, scene.runs.version),
                "classes": (tele_seen, scene.classes, st.class_chart, st.pointer if st.class_chart else None),
                "digit": (scene.view_key, scene.fps_line, dead, scene.panel_tele.digit_histories.get(st.index),
                          st.index, st.rewind)}

    def part_rects(self):
        p, lh = self.rect, self.fs + 5
        chart_top, classes_top = self.chart.rect.y - lh - 2, self.bars_y - 2
        digit_top = self.bars.rect.bottom + 6
        return {"top": pygame.Rect(p.x, p.y, p.width, chart_top - p.y),
                "chart": pygame.Rect(p.x, chart_top, p.width, classes_top - chart_top),
                "classes": pygame.Rect(p.x, classes_top, p.width, digit_top - classes_top),
                "digit": pygame.Rect(p.x, digit_top, p.width, p.bottom - digit_top)}

    def dirty_rects(self):
        return self.dirty

    def paint(self, surface, scene):
        """Draw (or blit the cached picture), and note the parts that changed since the last
        picture drawn (what that picture showed: `_parts`)."""
        super().paint(surface, scene)
        if not self.redrew:
            self.dirty = []
            return
        keys, drawn = self.part_keys(scene), getattr(self, "_parts", None)
        if drawn is None or drawn[0] != self.rect.size:
            self.dirty = [self.rect]
        else:
            rects = self.part_rects()
            self.dirty = [rects[k] for k in keys if keys[k] != drawn[1][k]] or [self.rect]
        self._parts = (self.rect.size, keys)

    def place_at(self, rect, font_size):
        super().place_at(rect, font_size)
        fs = font_size
        lh = fs + 5
        x, w = rect.x + 14, rect.width - 28
        top = rect.y + 10 + 7 * lh + 4                       # status (2 lines), hyperparameters (3), heading
        below = 9 * lh + 8              # heading line 2, digit on screen (+ its history), explained, neurons, fps
        free = rect.bottom - top - below - lh - 14            # for the chart and the ten bars
        self.digit_shown = free >= 10 * (lh - 1) + 80         # a small window: the digit's part gives way
        if not self.digit_shown:                              # (its prediction is in the output column too)
            free += below - 2 * lh
        least = (10 * (lh - 1), 80) if self.digit_shown else (10 * (fs + 1), 60)   # ten bars, the chart
        bars_h = int(np.clip(free * 0.5, least[0], 10 * (lh + 8)))
        chart_h = int(np.clip(free - bars_h, least[1], 400))
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
        if self.chart.rect.collidepoint(pos):
            return ("overlay", "chart")                    # a click on the chart: the large chart (Z)
        return self.class_chart.hit(pos) if self.showing_chart else None

    def draw(self, surface, scene):
        p, fs, st = self.rect, self.fs, scene.state
        pygame.draw.rect(surface, PANEL_BG, p)
        out = Lines(self.text, surface, p.x + 14, p.y + 10, p.width - 28, fs + 5)
        self.draw_state(out, scene)
        out.y = self.chart.rect.y - out.lh
        out.line("Loss and test accuracy", fs, ACCENT, True)
        self.chart.draw(surface, scene)
        out.y = self.bars_y
        floor = 0.0 if scene.classes[0] is None else bar_floor(np.asarray(scene.classes[0], np.float64))
        if not st.class_chart and floor > 0:                  # the bars' zoomed scale, said
            self.text.blit(surface, f"bars from {100 * floor:.0f} %", (p.right - 14, out.y), fs - 2, DIM, False,
                           "topright")
        out.line("Per-class accuracy" + (" over time (T)" if st.class_chart else ""), fs, ACCENT, True)
        full = ClassChart.kind(scene.panel_tele) == "full"
        labels = (f"each line a class, at every {'full test-set' if full else '1,000-digit subset'} evaluation",
                  f"each line a class, {'full test set' if full else 'subset'}") if st.class_chart \
            else scene.classes[2]
        out.line(next((t for t in labels if self.text.width(t, fs - 2) <= out.w), labels[-1]), fs - 2, DIM, one=True)
        (self.class_chart if st.class_chart else self.bars).draw(surface, scene)
        out.y = self.bars.rect.bottom + 8
        if self.digit_shown:
            self.draw_digit(out, scene)

    def draw_state(self, out, scene):
        """Training state, position and rate, and the hyperparameters."""
        fs, cfg, tele = self.fs, scene.config, scene.panel_tele
        status, color = scene.status
        out.line(status, fs + 1, color, True, one=True)
        if tele.trained_here or not cfg.no_train:
            epoch, rate = f"{min(tele.epoch + (0 if tele.finished else 1), cfg.epochs)}/{cfg.epochs}", \
                rate_text(tele, scene.state)
            at = () if tele.finished and tele.batch == 0 else (f"{tele.batch}/{tele.n_batches}",)   # not 0/469
            short = rate.replace(' samples/s', '/s')
            said = ("   ".join([f"epoch {epoch}", *(f"batch {b}" for b in at), rate]),
                    "  ".join([f"epoch {epoch}", *(f"batch {b}" for b in at), short]),
                    "  ".join([f"ep {epoch}", *at, short]))
            out.line(next((t for t in said if self.text.width(t, fs) <= out.w), said[-1]), fs, DIM, one=True)
        else:
            model = os.path.basename(cfg.load) if cfg.load else "untrained"
            trained = f", trained for {tele.epoch} epoch{'s' * (tele.epoch != 1)}" if cfg.load else ""
            out.line(f"model: {model}{trained}", fs, DIM, one=True)
        out.y += 4
        out.line("Hyperparameters", fs, ACCENT, True)
        out.line(f"784-{'-'.join(map(str, cfg.hidden))}-10 {cfg.activation}, {cfg.optimizer}, batch {cfg.batch_size}",
                 fs - 1, DIM, one=True)
        out.line(f"lr {cfg.learning_rate:g} {cfg.lr_schedule}" + (f", now {tele.lr:.2g}" if tele.trained_here else ""),
                 fs - 1, DIM, one=True)
        out.line(f"weight decay {cfg.weight_decay:g}, dropout {cfg.dropout:g}" + (", augment" if cfg.augment else "")
                 + f", seed {cfg.seed}", fs - 1, DIM, one=True)

    def draw_digit(self, out, scene):
        """The digit on screen: how it is read, its history, what the lines explain, the neurons on."""
        fs, st, v = self.fs, scene.state, scene.view
        out.line(f"{scene.noun.capitalize()} on screen", fs, ACCENT, True)
        if st.dream is not None:
            out.line(f"dreamt image: predicted {scene.names[v.pred]} ({100 * v.probs[v.pred]:.0f}%)", fs, ACCENT)
        elif st.drawing and v.pred < 0:
            out.line("your drawing: empty canvas", fs, DIM)
        elif st.drawing:
            out.line(f"your drawing: predicted {scene.names[v.pred]} ({100 * v.probs[v.pred]:.0f}%)", fs, ACCENT)
        else:
            true = scene.true
            out.line(f"test #{st.index}: true {scene.names[true]}, predicted {scene.names[v.pred]} "
                     f"({100 * v.probs[v.pred]:.0f}%)", fs, verdict_color(v.pred, true))
            out.y = self.draw_digit_history(out.surface, scene, out.x, out.y, out.w, true)
        if v.pred >= 0 and v.contrast is not None:
            gap = v.relevance.logit if v.relevance is not None else \
                float(np.log(max(v.probs[v.explained], 1e-30)) - np.log(max(v.probs[v.contrast], 1e-30)))
            out.line(f"lines and maps explain {v.explains(scene.names)} (score gap {gap:+.2f})", fs - 1, ACCENT)
        elif v.pred >= 0:
            what = "the prediction" if v.explained == v.pred else \
                f"class {scene.names[v.explained]} ({100 * v.probs[v.explained]:.1f}%), not the prediction"
            out.line(f"lines and maps explain {what}", fs - 1, ACCENT if v.explained != v.pred else DIM)
        parts = []
        for i, a in enumerate(v.acts[1:-1]):
            dead = "" if scene.test_pass is None else f", {int(scene.test_pass.dead[i].sum())} dead"
            parts.append(f"H{i + 1} {int((a > 0).sum())}/{len(a)} on{dead}")
        out.line("   ".join(parts), fs - 1, DIM)
        out.line(scene.fps_line, fs - 2, DIM)

    def draw_digit_history(self, surface, scene, x, y, w, true):
        """This digit under every snapshot: a cell per snapshot, green when read right,
        red when wrong, its height the probability of the true class; and in words."""
        self.history_cells = []
        have = scene.panel_tele.digit_histories.get(scene.state.index)
        fs = self.fs - 2
        if have is None or not have[1]:
            return y
        rows = list(enumerate(have[1]))                   # (snapshot index, row)
        if len(rows) > (w - 4) // 3:                      # more snapshots than 3-px cells: evenly chosen ones
            keep = np.unique(np.linspace(0, len(rows) - 1, (w - 4) // 3).round().astype(int))
            rows = [rows[i] for i in keep]
        cell = max(3, min(12, (w - 4) // len(rows)))
        h = self.fs
        for n, (i, (_, pred, p_true)) in enumerate(rows):
            r = pygame.Rect(x + n * cell, y, cell - 1, h)
            pygame.draw.rect(surface, GRID_BG, r)
            fill = max(1, int(h * np.clip(np.nan_to_num(p_true), 0, 1)))
            pygame.draw.rect(surface, RIGHT if pred == true else WRONG, (r.x, r.bottom - fill, r.width, fill))
            if scene.state.rewind == i:
                pygame.draw.rect(surface, TEXT, r.inflate(2, 2), 1)
            self.history_cells.append((r, i))
        rows = have[1]
        y += h + 4
        when = snapshot_namer(scene.panel_tele.snapshots, scene.panel_tele.n_batches)
        captions = history_caption(rows, true, scene.names, when)
        caption = next((c for c in captions if self.text.width(c, fs) <= w), captions[-1])
        self.text.blit(surface, self.text.fit(caption, fs, w), (x, y), fs, DIM)
        return y + fs + 6


class Lines:
    """Lines of text written down the panel from `y`: each wrapped to the width `w` (or, with
    `one`, cut to one line so what follows stays put)."""

    def __init__(self, text, surface, x, y, w, lh):
        self.text, self.surface, self.x, self.y, self.w, self.lh = text, surface, x, y, w, lh

    def line(self, text, size, color=TEXT, bold=False, one=False):
        for part in [self.text.fit(text, size, self.w, bold)] if one else self.text.wrap(text, size, self.w, bold):
            self.text.blit(self.surface, part, (self.x, self.y), size, color, bold)
            self.y += self.lh


def rate_text(tele, state):
    """The training pace for the panel: the rate of the last seconds of training, or why
    there is none."""
    if tele.finished:
        return "finished"
    if tele.paused or state.pause_requested:
        return "paused"
    rate = tele.samples_per_s
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
