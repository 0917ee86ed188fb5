"""The hovered neuron's portrait (its tooltip) and the film strip of neighbouring test
digits: the two regions that sit in the network view beside the columns."""
from __future__ import annotations

import weakref

import numpy as np
import pygame

from mnist_live.window.regions.base import Region
from mnist_live.window.regions.caches import PICTURE_CACHE_BYTES, THUMB_CACHE_BYTES, BoundedCache
from mnist_live.window.regions.palette import (
    DIM,
    PANEL_BG,
    TEXT,
    diverging,
    verdict_color,
)

HOVER_PX = 6                      # receptive-field pixels per input pixel in the tooltip


def portrait_area(lay):
    """Where a portrait may go: the network view left of the output column."""
    return pygame.Rect(lay.network.x, lay.network.y, lay.output.x - 12 - lay.network.x, lay.network.height)


def portrait_px(lay):
    """Screen pixels per image pixel of a portrait's three pictures: 6 in a wide window, 5,
    and less where three of them would not fit beside each other (640x480)."""
    fits = (portrait_area(lay).width - 40) // (3 * 28)
    return max(2, min(HOVER_PX if lay.size[0] >= 1500 else HOVER_PX - 1, fits))


def portrait_box(lay, fs, cell):
    """The rectangle of the portrait of the neuron whose cell is `cell` (layout `lay`, the
    region's font size `fs`): beside the cell, never on it, never over the output column."""
    fs, side = fs - 1, 28 * portrait_px(lay)
    box = pygame.Rect(0, 0, 3 * side + 40, side + 3 * fs + 44)
    cell = pygame.Rect(cell).inflate(4, 4)
    area = portrait_area(lay)
    for corner, at in (("topleft", cell.bottomright), ("topright", cell.bottomleft),
                       ("bottomleft", cell.topright), ("bottomright", cell.topleft)):
        setattr(box, corner, (at[0] + (12 if "left" in corner else -12), at[1] + (12 if "top" in corner else -12)))
        box.clamp_ip(area)
        if not box.colliderect(cell):
            break
    return box


class Tooltip(Region):
    """The hovered neuron's portrait, beside the neuron (never on it, never over the output
    column): activation, share of the relevance, the class it supports most, its receptive
    field, its prototype (what it responds to) and the test digits that excite it most."""

    def __init__(self, text):
        super().__init__(text)
        self.cache = BoundedCache(PICTURE_CACHE_BYTES)
        self.heatmap_rect = self.prototype_rect = self.box = None     # last drawn (tests read them)
        self.top_rects = []
        self.dirty, self._drawn = [], None        # what the last draw changed; what that draw showed

    def pixel_size(self):
        """Screen pixels per image pixel of the portrait's pictures (as portrait_box sizes them)."""
        return portrait_px(self.lay)

    def update(self, scene):
        """Where the portrait goes: beside the hovered neuron's cell (`scene.hovered`), never
        on it, never over the output column."""
        self.box = None if scene.hovered is None else portrait_box(self.lay, self.fs, scene.hovered.cell)

    def picture(self, key, make):
        return self.cache.made(key, make)

    def receptive_surface(self, scene, layer, j, px):
        def make():
            rf = scene.hovered.receptive_field
            return _big_image(diverging(rf / (np.abs(rf).max() + 1e-12)), px)     # (28, 28, 3)
        return self.picture(("rf", layer, j, scene.lines_stamp, px), make)

    def prototype_surface(self, stats, layer, j, px):
        def make():
            proto = stats.prototype(layer, j)
            grey = (255 * proto / max(float(proto.max()), 1e-12)).astype(np.uint8).reshape(28, 28)
            return _big_image(np.repeat(grey[:, :, None], 3, 2), px)
        return self.picture(("proto", weakref.ref(stats), layer, j, px), make)

    def quick_surface(self, proto, px):
        grey = (255 * proto / max(float(proto.max()), 1e-12)).astype(np.uint8).reshape(28, 28)
        return _big_image(np.repeat(grey[:, :, None], 3, 2), px)

    def draw(self, surface, scene):
        self.heatmap_rect = self.prototype_rect = None
        self.top_rects = []
        box = self.box
        waiting = scene.test_pass is None or scene.test_pass.stats is None
        shows = (None if box is None else tuple(box), scene.state.hover, scene.view_key, id(scene.test_pass),
                 scene.lines_stamp, int(100 * scene.pass_done) if waiting else None,
                 id(scene.portrait))               # everything the portrait's pixels depend on
        if shows != self._drawn:                   # it changed: where it is and where it was are pushed
            self.dirty = [pygame.Rect(r) for r in (box, self._drawn and self._drawn[0]) if r]
        else:
            self.dirty = []
        self._drawn = shows
        if scene.hovered is None or box is None:
            return
        fs = self.fs - 1
        layer, j = scene.hovered.layer, scene.hovered.neuron
        px = self.pixel_size()
        side = 28 * px
        rf_surf = self.receptive_surface(scene, layer, j, px)
        ps, v = scene.test_pass, scene.view
        dead = ps is not None and ps.dead[layer][j]
        title = f"Hidden {layer + 1}, neuron {j}" + (" (dead: never on in the test set)" if dead else "")
        facts = [f"activation {float(v.acts[layer + 1][j]):.3f}"]
        if v.relevance is not None:
            r = np.abs(v.relevance.neurons[layer + 1])
            facts.append(f"{100 * r[j] / max(float(r.sum()), 1e-12):.1f} % of the relevance for "
                         f"{scene.names[v.explained]}")
        if ps is not None and ps.preferred is not None:
            facts.append(f"supports {scene.names[int(ps.preferred[layer][j])]} most")
        pygame.draw.rect(surface, PANEL_BG, box)
        pygame.draw.rect(surface, DIM, box, 1)
        x, y = box.x + 10, box.y + 8
        self.text.blit(surface, self.text.fit(title, fs, box.width - 20, True), (x, y), fs, TEXT, True)
        self.text.blit(surface, self.text.fit("   ".join(facts), fs - 1, box.width - 20), (x, y + fs + 4), fs - 1, DIM)
        y += 2 * fs + 14
        self.heatmap_rect = pygame.Rect(x, y, side, side)
        surface.blit(rf_surf, self.heatmap_rect)
        self.draw_pictures(surface, scene, x, y, layer, j)

    def draw_pictures(self, surface, scene, x, y, layer, j):
        """What the neuron responds to and the digits that excite it most: of the whole test
        set's pass, or first of the first digits alone (scene.portrait) while it runs."""
        ps, fs, px = scene.test_pass, self.fs - 1, self.pixel_size()
        side = 28 * px
        captions = ["input weights" if layer == 0 else "weights, projected", "responds to", "excite it most"]
        stats = ps.stats if ps is not None else None
        quick = scene.portrait if stats is None else None
        if stats is not None or quick is not None:
            self.prototype_rect = pygame.Rect(x + side + 10, y, side, side)
            surface.blit(self.prototype_surface(stats, layer, j, px) if quick is None else
                         self.quick_surface(quick[0], px), self.prototype_rect)
            thumb = side // 3
            top = stats.top_digits(layer, j)[:9].tolist() if quick is None else quick[1].tolist()
            for i, k in enumerate(top):
                r = pygame.Rect(x + 2 * side + 20 + (i % 3) * thumb, y + (i // 3) * thumb, thumb - 2, thumb - 2)
                grey = scene.images[k].reshape(28, 28)
                small = pygame.surfarray.make_surface(np.repeat(grey.T[:, :, None], 3, 2))
                surface.blit(pygame.transform.smoothscale(small, r.size), r)
                self.top_rects.append((r, k))
        else:
            self.text.blit(surface, f"portraits: passing the test set... {100 * scene.pass_done:.0f} %",
                           (x + side + 10, y + side // 2), fs - 2, DIM, False, "midleft")
        if quick is not None:                      # of the first digits; the whole test set is on its way
            captions[1:] = [f"responds to (first {quick[2]:,})", f"all: {100 * scene.pass_done:.0f} %"]
        for i, cap in enumerate(captions):
            self.text.blit(surface, cap, (x + i * (side + 10), y + side + 4), fs - 3, DIM)

    def dirty_rects(self):
        return self.dirty              # the portrait hangs over the network view, also below its columns


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
        self.boxes = []                      # (rect, test index) of the thumbnails (hit tests)
        self.idx, self.total, self.preds = np.zeros(0, np.int64), 0, np.zeros(0, np.int64)

    def area(self, layout):
        return layout.strip or pygame.Rect(0, 0, 0, 0)

    def capacity(self):
        """How many thumbnails fit (what the window asks `scene.strip` to hold)."""
        if self.rect.height == 0:
            return 0
        _, _, _, per_row, rows = self.geometry()
        return per_row * rows

    def update(self, scene):
        """Which digits the strip shows (`scene.strip`), how the current weights read them, and where."""
        strip = scene.strip
        self.idx, self.preds, self.total = (strip.indices, strip.predictions, strip.total) if strip is not None \
            else (np.zeros(0, np.int64), np.zeros(0, np.int64), 0)
        fs, thumb, step, per_row, _ = self.geometry()
        y = self.rect.y + fs + 8
        self.boxes = [] if thumb < 16 or self.total == 0 else \
            [(pygame.Rect(self.rect.x + 6 + (i % per_row) * step, y + (i // per_row) * (thumb + fs + 12), thumb, thumb),
              k) for i, k in enumerate(self.idx.tolist())]

    def key(self, scene):
        return (scene.state.version, id(scene.test_pass), self.idx.tobytes(), self.preds.tobytes(), self.rect.size)

    def geometry(self):
        """(font size, thumbnail side, step between thumbnails, per row, rows)."""
        fs = self.fs - 2
        room = self.rect.height - fs - 8
        rows = 2 if room >= 2 * (64 + fs + 12) else 1
        thumb = int(min(80, room / rows - fs - 12))
        step = thumb + 12
        return fs, thumb, step, max(1, (self.rect.width - 12 + 12) // step), rows

    def draw(self, surface, scene):
        if self.rect.height == 0:
            return
        st, r = scene.state, self.rect
        fs, thumb, step, per_row, rows = self.geometry()
        total = self.total
        which = f"{st.filter_label()} ({total:,}" + ("" if not st.filtering or scene.test_pass is None
                                                     else f" with {scene.test_pass.stamp.weights()}") + ")"
        self.text.blit(surface, self.text.fit(
            f"Browsing {which}: click one to open it; frame = right / wrong now", fs, r.width), (r.x, r.y), fs, DIM)
        for (box, k), pred in zip(self.boxes, self.preds.tolist()):           # frames inside the boxes
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
            labels = strip_labels(scene.short_names, true, pred)
            label = next((t for t in labels if self.text.width(t, fs) <= step - 2), labels[-1])
            self.text.blit(surface, self.text.fit(label, fs, step - 2), (box.centerx, box.bottom + 4), fs,
                           color if pred != true else DIM, False, "midtop")

    def hit(self, pos):
        for box, k in self.boxes:
            if box.inflate(6, 6).collidepoint(pos):
                return ("open", k)
        return None


def strip_labels(names, true, pred):
    """A thumbnail's caption as phrasings from the fullest to the shortest: its class when
    read right; when wrong, the true class then what it was read as ('Coat>Pullover',
    'Coat>Pull', 'Coa>Pul')."""
    if pred == true:
        return (names[true],)
    return (f"{names[true]}>{names[pred]}", f"{names[true][:4]}>{names[pred][:4]}",
            f"{names[true][:3]}>{names[pred][:3]}")
