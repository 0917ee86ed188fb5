"""The modal overlays drawn over the network view: the confusion matrix, the
representation map and the help."""
from __future__ import annotations

import numpy as np
import pygame

from regions.base import Region
from regions.palette import (
    ACCENT,
    BG,
    CLASS_COLORS,
    DIM,
    PANEL_BG,
    TEXT,
    confusion_color,
)


class ConfusionOverlay(Region):
    """The window's last full test-set pass as a confusion matrix (modal, over the
    network); click a cell to browse its digits."""

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

    def hit(self, pos, scene):
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

    def __init__(self, text):
        super().__init__(text)
        self.screen_points = None            # (n, 2) pixel positions of the last draw (hit tests)
        self.indices = None

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

    def hit(self, pos, scene):
        k = self.nearest(pos)
        return None if k is None else ("open", k)

    def draw(self, surface, scene):
        r, fs, m = self.rect, self.fs, scene.map
        pygame.draw.rect(surface, BG, r)
        layer = scene.state.map_layer
        self.text.blit(surface, f"What hidden layer {layer + 1} makes of {len(m.subset):,} test {scene.noun}s "
                                f"(first two principal components)", (r.x + 20, r.y + 12), fs, TEXT, True)
        x = r.x + 20
        for c in range(10):                                   # the colours mean classes here
            pygame.draw.circle(surface, CLASS_COLORS[c], (x + 5, r.y + 22 + fs + 6), 5)
            x = self.text.blit(surface, scene.short_names[c], (x + 14, r.y + 22 + fs + 6), fs - 2, DIM, False,
                               "midleft").right + 12
        pts = scene.map_points
        self.screen_points = None
        if pts is None or m.layer != layer:
            self.text.blit(surface, "projecting...", self.plot_rect().center, fs, DIM, False, "center")
            return
        bounds = (pts.min(axis=0), pts.max(axis=0))
        xy = self.to_screen(pts, bounds)
        self.screen_points, self.indices = xy, m.subset
        y_true = scene.state.y_test[m.subset]
        wrong = m.predictions != y_true
        for c in range(10):                     # filled: read right; hollow: read wrong
            for px, py in xy[(y_true == c) & ~wrong].astype(int).tolist():
                pygame.draw.circle(surface, CLASS_COLORS[c], (px, py), 3)
            for px, py in xy[(y_true == c) & wrong].astype(int).tolist():
                pygame.draw.circle(surface, CLASS_COLORS[c], (px, py), 3, 1)
        if scene.view is not None and m._transform is not None:
            here = [int(v) for v in self.to_screen(m.project(scene.view.acts[layer + 1])[None], bounds)[0]]
            if self.plot_rect().inflate(20, 20).collidepoint(here):
                pygame.draw.circle(surface, TEXT, here, 9, 2)
        k = self.nearest(pygame.mouse.get_pos()) if pygame.mouse.get_focused() else None
        if k is not None:
            what = f"test #{k}: true {scene.names[int(scene.state.y_test[k])]}; click opens it"
            self.text.blit(surface, what, (r.right - 20, r.bottom - 10), fs - 1, TEXT, False, "bottomright")


class HelpOverlay(Region):
    """Every key and mouse action, from the app's key table."""

    def draw(self, surface, scene):
        fs = self.fs
        lh = fs + 6
        rows = [(k.label.replace("digit", scene.noun), k.help.replace("digit", scene.noun)) for k in scene.keys]
        key_w = self.text.widest([r[0] for r in rows], fs, True) + 24
        widest = key_w + self.text.widest([r[1] for r in rows], fs)
        box = pygame.Rect(0, 0, min(self.rect.width - 20, widest + 60), lh * len(rows) + 60)
        box.center = self.rect.center
        box.clamp_ip(self.rect)
        pygame.draw.rect(surface, PANEL_BG, box)
        pygame.draw.rect(surface, ACCENT, box, 2)
        self.text.blit(surface, "Keys and mouse (H, F1 or Esc closes)", (box.x + 20, box.y + 14), fs + 2, ACCENT, True)
        y = box.y + 20 + lh + 6
        for label, help_text in rows:
            self.text.blit(surface, label, (box.x + 24, y), fs, TEXT, True)
            self.text.blit(surface, self.text.fit(help_text, fs, box.right - box.x - key_w - 40),
                           (box.x + 24 + key_w, y), fs, DIM)
            y += lh
