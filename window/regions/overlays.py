"""The modal overlays drawn over the network view: the confusion matrix, the
representation map and the help."""
from __future__ import annotations

import numpy as np
import pygame

from mnist_live.window.captions import IDEAS, LEARNING_IDEAS
from mnist_live.window.regions.base import MODAL, OVERLAY, Region
from mnist_live.window.regions.palette import (
    ACCENT,
    BG,
    CLASS_COLORS,
    DIM,
    PANEL_BG,
    TEXT,
    confusion_color,
)
from mnist_live.window.view_model import MAP_DIGITS


class ConfusionOverlay(Region):
    """The window's last full test-set pass as a confusion matrix (modal, over the
    network); click a cell to browse its digits."""
    modal, z, overlay = True, OVERLAY, "confusion"

    def legend(self, noun):
        return (f"each cell: the test {noun}s of its row's true class read as its column's class; "
                f"click one to browse them; X closes",
                f"cell = test {noun}s of the row's class read as the column's; click: browse them",
                "cell = row's class read as column's; click: browse")

    def caption(self, state, noun):
        return ((f"confusion matrix: each row is a true class, each column what the network read it as; the "
                 f"diagonal is right, every other cell a kind of mistake (click one to browse those {noun}s)",
                 "confusion: rows = true class, columns = read as; off the diagonal = mistakes",
                 "rows = true, columns = read as"),)

    def key(self, scene):
        conf = scene.confusion
        return None if conf is None else (conf[0].tobytes(), conf[1], scene.noun, scene.names, self.rect.size)

    def matrix_rect(self):
        net = self.rect
        side = min(net.width - 180, net.height - 110)
        return pygame.Rect(net.x + 130, net.y + 70, side, side)

    def cell_at(self, pos):
        r = self.matrix_rect()
        if not r.collidepoint(pos):
            return None
        cell = r.width / 10
        return int((pos[1] - r.y) // cell), int((pos[0] - r.x) // cell)

    def cell_rect(self, t, p):
        r = self.matrix_rect()
        cell = r.width / 10
        return pygame.Rect(int(r.x + p * cell), int(r.y + t * cell), int(cell) - 2, int(cell) - 2)

    def hit(self, pos):
        cell = self.cell_at(pos)
        return None if cell is None else ("pair", cell)

    def draw(self, surface, scene):
        net, fs = self.rect, self.fs
        pygame.draw.rect(surface, BG, net)
        r = self.matrix_rect()
        self.text.blit(surface, "Confusion matrix on the test set (rows: true class, columns: predicted)",
                       (net.x + 20, net.y + 12), fs, TEXT, True)
        if scene.confusion is None:
            self.text.blit(surface, "computing the first test-set pass...", (net.x + 20, net.y + 20 + fs), fs - 1, DIM)
            return
        conf, label = scene.confusion
        self.text.blit(surface, self.text.fit(f"{label}; click a cell to browse its {scene.noun}s; X closes",
                                              fs - 1, net.width - 40), (net.x + 20, net.y + 14 + fs + 6), fs - 1, DIM)
        cell = r.width / 10
        cfs = max(10, min(fs, int(cell / 3)))
        row_max = conf.max(axis=1)
        named = scene.names[0] != "0"          # Fashion: rows "3 Dress"; columns "3" when too wide
        narrow = named and self.text.widest(scene.names, cfs) > cell - 4
        for t in range(10):
            row = self.text.fit(f"{t} {scene.names[t]}" if named else scene.names[t], cfs, 120)
            self.text.blit(surface, row, (r.x - 8, r.y + (t + 0.5) * cell), cfs, DIM, False, "midright")
            col = str(t) if narrow else scene.names[t]
            self.text.blit(surface, col, (r.x + (t + 0.5) * cell, r.bottom + 6), cfs, DIM, False, "midtop")
            for p in range(10):
                n = int(conf[t, p])
                cr = self.cell_rect(t, p)
                pygame.draw.rect(surface, confusion_color(n, row_max[t], t == p), cr)
                if n:
                    self.text.blit(surface, str(n), cr.center, cfs, TEXT, False, "center")
        acc = np.trace(conf) / max(conf.sum(), 1)
        self.text.blit(surface, f"accuracy {100 * acc:.2f} %", (r.right, r.y - 6), fs - 1, TEXT, False, "bottomright")



class MapOverlay(Region):
    """The representation map (modal, over the network): one point per digit of a fixed,
    balanced test subset, coloured by true class, mistakes crossed, the digit on screen
    ringed; hover names a point, click opens it."""
    modal, z, overlay = True, OVERLAY, "map"

    def legend(self, noun):
        return (f"each point a test {noun}, coloured by its true class: filled = read right, hollow = read wrong; "
                f"white ring = the one on screen; click opens one; P: next layer / close",
                "filled = right, hollow = wrong;  white ring = on screen;  click opens;  P: next layer / close",
                "filled = right, hollow = wrong;  ring = on screen;  P: next / close")

    def caption(self, state, noun):
        layer = state.map_layer + 1
        return ((f"map (P): each dot a test {noun}, placed by what hidden layer {layer} makes of it (its first two "
                 f"principal components): {noun}s the layer tells apart lie apart",
                 f"map: each dot a test {noun}, placed by what hidden layer {layer} makes of it",
                 f"map: test {noun}s as hidden layer {layer} sees them"),)

    def __init__(self, text):
        super().__init__(text)
        self.screen_points = None            # (n, 2) pixel positions of the points (hit tests)
        self.indices = None
        self.bounds = None                   # the points' (min, max) corners: the map's scale
        self.hover = None                    # test index of the point under the pointer

    def update(self, scene):
        m = scene.map
        self.screen_points = self.bounds = None
        if m is not None:
            self.bounds = (m.points.min(axis=0), m.points.max(axis=0))
            self.screen_points, self.indices = self.to_screen(m.points, self.bounds), m.subset
        pointer = scene.state.pointer
        self.hover = None if pointer is None else self.nearest(pointer)

    def key(self, scene):
        m = scene.map
        return (None if m is None else m.points.tobytes(), scene.state.version, scene.view_key, scene.state.map_layer,
                self.hover, self.rect.size, int(100 * scene.map_done) if m is None else None)   # "projecting... 40 %"

    def plot_rect(self):
        r = self.rect
        return pygame.Rect(r.x + 30, r.y + 2 * self.fs + 40, r.width - 60, r.height - 2 * self.fs - 60)

    def to_screen(self, pts, bounds):
        p = self.plot_rect()
        lo, hi = bounds
        span = np.maximum(hi - lo, 1e-9)
        scale = min(p.width / span[0], p.height / span[1])
        centre = (lo + hi) / 2
        return np.stack([p.centerx + (pts[:, 0] - centre[0]) * scale,
                         p.centery - (pts[:, 1] - centre[1]) * scale], 1)

    def nearest(self, pos, radius=8):
        """Test index of the point nearest pos within radius pixels, or None."""
        if self.screen_points is None:
            return None
        d = np.hypot(*(self.screen_points - np.asarray(pos, np.float64)).T)
        i = int(np.argmin(d))
        return int(self.indices[i]) if d[i] <= radius else None

    def hit(self, pos):
        k = self.nearest(pos)
        return None if k is None else ("open", k)

    def draw(self, surface, scene):
        r, fs, m = self.rect, self.fs, scene.map
        pygame.draw.rect(surface, BG, r)
        layer = scene.state.map_layer
        self.text.blit(surface, f"What hidden layer {layer + 1} makes of {MAP_DIGITS:,} test {scene.noun}s "
                                f"(first two principal components)", (r.x + 20, r.y + 12), fs, TEXT, True)
        x = r.x + 20
        for c in range(10):                                   # the colours mean classes here
            pygame.draw.circle(surface, CLASS_COLORS[c], (x + 5, r.y + 22 + fs + 6), 5)
            x = self.text.blit(surface, scene.short_names[c], (x + 14, r.y + 22 + fs + 6), fs - 2, DIM, False,
                               "midleft").right + 12
        if self.screen_points is None:
            self.text.blit(surface, f"projecting... {100 * scene.map_done:.0f} %", self.plot_rect().center, fs, DIM,
                           False, "center")
            return
        xy, bounds = self.screen_points, self.bounds
        y_true = scene.state.y_test[m.subset]
        wrong = m.predictions != y_true
        for c in range(10):                     # filled: read right; hollow: read wrong
            for px, py in xy[(y_true == c) & ~wrong].astype(int).tolist():
                pygame.draw.circle(surface, CLASS_COLORS[c], (px, py), 3)
            for px, py in xy[(y_true == c) & wrong].astype(int).tolist():
                pygame.draw.circle(surface, CLASS_COLORS[c], (px, py), 3, 1)
        if m.here is not None:
            here = [int(v) for v in self.to_screen(m.here[None], bounds)[0]]
            if self.plot_rect().inflate(20, 20).collidepoint(here):
                pygame.draw.circle(surface, TEXT, here, 9, 2)
        k = self.hover
        if k is not None:
            what = f"test #{k}: true {scene.names[int(scene.state.y_test[k])]}; click opens it"
            self.text.blit(surface, what, (r.right - 20, r.bottom - 10), fs - 1, TEXT, False, "bottomright")


class HelpOverlay(Region):
    """The ideas on screen in a few words, then every key and mouse action (from the app's
    key table), in one or two columns, the font shrinking until it all fits."""
    modal, z, overlay, covers_network = True, MODAL, "help", False

    def caption(self, state, noun):
        return ()                                   # the help covers the window: nothing to caption

    def area(self, layout):
        return pygame.Rect(0, layout.header.bottom, layout.size[0], layout.size[1] - layout.header.bottom)   # not
        #                                                                         through the header's text

    def key(self, scene):
        return len(scene.keys), scene.noun, self.rect.size

    def blocks(self, scene):
        noun = scene.noun
        keys = [(k.label.replace("digit", noun), k.help.replace("digit", noun)) for k in scene.keys]
        return ([(None, "What the window shows")] + [(a, b.replace("{noun}", noun)) for a, b in IDEAS + LEARNING_IDEAS]
                + [(None, "Keys and mouse (H, F1 or Esc closes)")] + keys)

    def arrange(self, blocks, fs, width, height, force=False):
        """[(column, label, lines)] of the blocks at font size fs in the fewest columns that
        fit width x height, with the label column width; None when they do not fit (with
        `force`, three columns however far they run)."""
        lh = fs + 5
        key_w = self.text.widest([a for a, _ in blocks if a], fs, True) + 16
        for ncols in (1, 2, 3):
            col_w = (width - 30 * (ncols - 1)) // ncols
            placed, col, used = [], 0, 0
            for label, text in blocks:
                lines = [text] if label is None else self.text.wrap(text, fs, col_w - key_w)
                if used + len(lines) * lh > height:
                    col, used = col + 1, 0
                placed.append((col, label, lines, used))
                used += len(lines) * lh + (6 if label is None else 0)
            if (col < ncols or force and ncols == 3) and not any(t.endswith("...") for _, _, ls, _ in placed
                                                                 for t in ls):
                return placed, col_w, key_w, lh
        return None

    def tour_button(self):
        """The button that shows the guided tour again, at the box's bottom right."""
        area, fs = self.rect.inflate(-20, -20), self.fs
        r = pygame.Rect(0, 0, self.text.width("Take the tour again (F3)", fs, True) + 24, fs + 12)
        r.bottomright = (area.right - 16, area.bottom - 10)
        return r

    def hit(self, pos):
        shown = getattr(self, "button_shown", True)
        return ("key", pygame.K_F3) if shown and self.tour_button().collidepoint(pos) else None

    def draw(self, surface, scene):
        everything = self.blocks(scene)
        keys_only = everything[next(i for i, (a, _) in enumerate(everything) if a is None and i > 0):]
        area = self.rect.inflate(-20, -20)
        button = self.tour_button()
        tries = [(everything, fs, button.height + 10) for fs in range(self.fs, 9, -1)] + \
            [(everything, 9, 0), (keys_only, 10, 0), (keys_only, 9, 0), (keys_only, 8, 0)]   # the smallest windows
        for blocks, fs, room in tries:                 # leave out the button (F3 is listed), then the ideas
            got = self.arrange(blocks, fs, area.width - 48, area.height - 40 - room)
            if got is not None:
                break
        else:
            got = self.arrange(keys_only, 8, area.width - 48, area.height - 40, force=True)
        placed, col_w, key_w, lh = got
        box = area.copy()
        pygame.draw.rect(surface, BG, self.rect)             # the margin too: no toolbar button cut by the border
        pygame.draw.rect(surface, PANEL_BG, box)
        pygame.draw.rect(surface, ACCENT, box, 2)
        for col, label, lines, y in placed:
            x, y = box.x + 24 + col * (col_w + 30), box.y + 20 + y
            if label is None:
                self.text.blit(surface, lines[0], (x, y), fs + 1, ACCENT, True)
                continue
            self.text.blit(surface, label, (x, y), fs, TEXT, True)
            for i, part in enumerate(lines):
                self.text.blit(surface, part, (x + key_w, y + i * lh), fs, DIM)
        self.button_shown = bool(room)
        if room:
            pygame.draw.rect(surface, ACCENT, button, border_radius=4)
            self.text.blit(surface, "Take the tour again (F3)", button.center, self.fs, BG, True, "center")
