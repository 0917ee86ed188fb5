"""The two text bars: the header above everything (title, data, the latest evaluation,
modes, messages) and the legend under the network."""
from __future__ import annotations

import re
import time

import numpy as np
import pygame

from mnist_live.window.regions.base import CHROME, Region
from mnist_live.window.regions.palette import (
    ACCENT,
    BG,
    CHANGED,
    DEAD,
    DIM,
    GRID_BG,
    LOSS_COLOR,
    NEGATIVE,
    PANEL_BG,
    POSITIVE,
    RIGHT,
    TEXT,
    WRONG,
    ramp,
)
from mnist_live.window.view_model import describe_position, rank_label


class Header(Region):
    """Title, data source, the latest evaluation (with its kind), modes, messages."""
    z = CHROME

    def area(self, layout):
        return layout.header

    @staticmethod
    def modes(scene):
        """The modes shown at the right: rewound, drawing, filters."""
        st, tele, out = scene.state, scene.tele, []
        if st.rewind is not None and st.rewind < len(tele.snapshots):
            e, b, _ = tele.snapshots[st.rewind]
            out.append(f"REWOUND: {describe_position(e, b)}")
        if st.drawing:
            out.append("DRAWING")
        if st.mistakes_only:
            out.append("MISTAKES ONLY")
        if st.pair_filter is not None:
            t, p = st.pair_filter
            out.append(f"MISTAKES OF {scene.names[t]}" if p is None
                       else f"TRUE {scene.names[t]} / PRED {scene.names[p]}")
        return out

    @staticmethod
    def toast(state):
        """The message on screen now ('' when none)."""
        return state.toast if state.toast and time.monotonic() < state.toast_until else ""

    def key(self, scene):
        return (scene.dataset, scene.data_label, scene.data_offer,
                scene.accuracy or scene.headline, tuple(self.modes(scene)),
                self.toast(scene.state), self.rect.size)

    def draw(self, surface, scene):
        r, fs, st = self.rect, self.fs, scene.state
        pygame.draw.rect(surface, PANEL_BG, r)
        y1, y2 = r.y + 4, r.y + 6 + fs + 4
        title = f"Neural network learning {scene.dataset} - live"
        shortest = scene.accuracy.split(" (")[0] if scene.accuracy else scene.headline.phrasings[-1]
        narrow = self.text.width(title, fs + 1, True) + self.text.width(shortest, fs, True) + 180 > r.width
        if self.toast(st) and narrow:
            self.draw_toast(surface, self.toast(st), r.x + 8, r.right - 8)     # a narrow window: the message
            return                                                              # takes the header while it shows
        left = self.text.blit(surface, title, (12, y1), fs + 1, TEXT, True).right
        right_x = r.right - 12
        hint = "   ".join(self.modes(scene) + ["H: keys"])
        hint_rect = self.text.blit(surface, hint, (right_x, y2), fs - 2, DIM, False, "topright")
        room = max(40, hint_rect.x - 24 - 12)                                                 # never under the hint
        short = re.sub(r" \(.*?\)", "", scene.data_label)                      # without why, then fewer words
        label_text = next((t for t in (scene.data_label, short, short.replace(" training / ", " / ")
                                       .replace(" test images", " images")) if self.text.width(t, fs - 2) <= room),
                          self.text.fit(short, fs - 2, room))
        label = self.text.blit(surface, label_text, (12, y2), fs - 2, DIM)
        offer, colour, fraction = scene.data_offer
        if offer:                       # the full data set on its way: progress, then the offer to switch
            box = self.text.blit(surface, offer, (label.right + 6, y2), fs - 2, colour, colour != DIM)
            if fraction is not None:    # a thin bar under it: how much of the download is here
                bar = pygame.Rect(box.x, box.bottom + 1, box.width, 2)
                pygame.draw.rect(surface, GRID_BG, bar)
                pygame.draw.rect(surface, ACCENT, (bar.x, bar.y, round(bar.width * fraction), bar.height))
            label = label.union(box)
        left = max(left, label.right)
        said = (scene.accuracy, scene.accuracy.split(" (")[0], scene.accuracy.split(" (")[0].replace(
            "test accuracy ", "")) if scene.accuracy else scene.headline.phrasings
        room = right_x - left - 24                        # never over the title: a shorter phrasing, or cut
        toast = self.toast(st)
        fits = [t for t in said if self.text.width(t, fs, True) <= room]
        if toast and fits:                                 # a message shows: the longest phrasing that leaves it room
            fits = [t for t in fits if self.readable(toast, min(hint_rect.x, right_x - self.text.width(t, fs, True))
                                                     - left - 48)] or fits[:1]
        acc = fits[0] if fits else self.text.fit(said[-1], fs, max(40, room), True)
        colour = ACCENT if scene.accuracy or scene.headline.current else LOSS_COLOR   # older weights: said so
        acc_rect = self.text.blit(surface, acc, (right_x, y1), fs, colour, True, "topright")
        if toast:
            x0, x1 = left + 24, min(acc_rect.x, hint_rect.x) - 24
            if x1 - x0 > 80:
                self.draw_toast(surface, toast, x0, x1)

    def readable(self, toast, width):
        """Whether the message fits `width` in at most two lines at a size near the header's."""
        for size in range(self.fs - 2, self.fs - 5, -1):
            lines = self.text.wrap(toast, size, width - 20)
            if len(lines) <= 2 and len(lines) * self.text.font(size).get_height() <= self.rect.height - 10:
                return True
        return False

    def draw_toast(self, surface, toast, x0, x1):
        """The message in a box between x0 and x1: the largest size at which it fits in the
        header's height whole (two or three lines), cut only when even the smallest does not."""
        r, fs = self.rect, self.fs
        for size in range(fs - 2, 9, -1):
            line_h = self.text.font(size).get_height()
            lines = self.text.wrap(toast, size, x1 - x0 - 20)
            if len(lines) * line_h <= r.height - 10:
                break
        else:
            lines = lines[:max(1, (r.height - 10) // line_h)]
            lines[-1] = self.text.fit(lines[-1] + " ...", size, x1 - x0 - 20)
        surfs = [self.text.render(t, size, TEXT) for t in lines]
        box = pygame.Rect(0, 0, max(s.get_width() for s in surfs) + 20, r.height - 6)
        box.center = ((x0 + x1) // 2, r.centery)
        pygame.draw.rect(surface, BG, box)
        pygame.draw.rect(surface, ACCENT, box, 1)
        y = box.centery - sum(s.get_height() for s in surfs) // 2
        for surf, line in zip(surfs, lines):
            self.text.blit(surface, line, (box.centerx, y), size, TEXT, False, "midtop")
            y += surf.get_height()


class Legend(Region):
    """The strip under the network: what the colours and the lines mean, or the open
    overlay's legend (`scene.legend`, from the overlay's region)."""
    z = CHROME

    def area(self, layout):
        return layout.legend

    def key(self, scene):
        st, v = scene.state, scene.view
        learn = v.learn and (v.learn.mode, v.learn.marks_kind, v.learn.phase, bool(v.learn.marks))
        return st.k, st.rank_mode, v.explained, v.contrast, v.relevance is None, self.rect.size, scene.legend, learn

    def draw(self, surface, scene):
        r, st = self.rect, scene.state
        x, y = r.x + 14, r.centery
        fs = self.fs - 2
        labels = scene.legend
        if labels:                                     # an overlay is on screen: its legend, not the network's
            pygame.draw.rect(surface, BG, r)
            label = next((t for t in labels if self.text.width(t, fs) <= r.width - 28), labels[-1])
            self.text.blit(surface, self.text.fit(label, fs, r.width - 28), (x, y), fs, DIM, False, "midleft")
            return

        def swatch(color, label, line=False):
            nonlocal x
            if x + 26 + self.text.width(label, fs) > r.right - 10:       # no room left: the rest is left out
                x = r.right
                return
            if line:
                pygame.draw.line(surface, color, (x, y), (x + 20, y), 3)
                x += 26
            else:
                pygame.draw.rect(surface, color, (x, y - 6, 12, 12))
                x += 17
            x = self.text.blit(surface, label, (x, y), fs, DIM, False, "midleft").right + 14

        learn = scene.view.learn
        if learn is not None and learn.marks:
            marks, labels = learning_legend(learn, st.k)
            for color, label in marks:
                swatch(color, label)
            fit_right(self, surface, labels, x, y, fs)
            return
        relevance = scene.view.relevance is not None
        swatch(POSITIVE, "supports" if relevance else "excites")
        swatch(NEGATIVE, "opposes" if relevance else "inhibits")
        if x + 54 + self.text.width("activation", fs) <= r.right - 10:
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
        fit_right(self, surface, labels, x, y, fs)


def data_label(data, config, full=None):
    """Where the data came from and how much of it there is (shown in the header)."""
    source = data.source
    if full is not None:                  # the full set is on its way: FullData.offer says how far
        return f"data: bundled sample, {len(data.y_train):,} / {len(data.y_test):,} images  |"
    if source.startswith("bundled sample") and not config.offline and config.data_dir is None:
        source = "bundled sample (OpenML was unreachable)"
    return f"data: {source}; {len(data.y_train):,} training / {len(data.y_test):,} test images"


def fit_right(legend, surface, labels, x, y, fs):
    """The first of `labels` that fits between x and the legend's right end, right-aligned."""
    r = legend.rect
    for label in labels:
        if x + legend.text.width(label, fs) < r.right - 10:
            legend.text.blit(surface, label, (r.right - 10, y), fs, DIM, False, "midright")
            break


def learning_legend(learn, k):
    """A view of learning's legend: ((colour, what it means), ...) and the lines' phrasings."""
    if learn.marks_kind == "delta":
        return (((POSITIVE, "raises the loss"), (NEGATIVE, "lowers it"), (GRID_BG, "δ = 0 (off)")),
                (f"lines: the {k} largest gradients a·δ per layer pair, % = their share (J)",
                 f"lines: {k} largest a·δ (J)", "a·δ (J)"))
    if learn.marks_kind == "activation":               # step mode's forward wave and the batch's loss: no lines yet
        mode = "step mode (N)" if learn.paused else "slow motion"
        said = ((f"{mode}: the batch's loss, with the digit's activations before the step; no lines yet",
                 f"{mode}: the batch's loss", mode) if learn.phase == "loss" else
                (f"{mode}: the digit goes forward through the weights before the step; no lines yet",
                 f"{mode}: forward, before the step", mode))
        return (((tuple(int(c) for c in ramp(np.array([0.7]))[0]), "activation before the step"),), said)
    k = min(k, 60)
    return (((POSITIVE, "weight grew"), (NEGATIVE, "shrank"), (CHANGED, "inputs moved most")),
            (f"lines: the {k} largest Δw per layer pair, % = their share of |Δw| (Y)", f"lines: {k} largest Δw (Y)",
             "Δw (Y)"))
