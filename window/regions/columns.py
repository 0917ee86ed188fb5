"""The regions the network view is made of besides its lines: `GridRegion` (the shared
layout, cached surfaces, column labels and crisp grids), the input column and the output
column. `network.NetworkColumns` places and draws them."""
from __future__ import annotations

import numpy as np
import pygame

from mnist_live.window.regions.base import Region
from mnist_live.window.regions.palette import (
    ACCENT,
    BG,
    DIM,
    GRID_BG,
    NEGATIVE,
    POSITIVE,
    RAMP_LUT,
    TEXT,
    diverging,
    verdict_color,
)


class GridRegion(Region):
    """A region of the network picture: shares the layout and cached surfaces."""

    def __init__(self, text):
        super().__init__(text)
        self.cache = {}            # surfaces by what they are of: a fixed set of slots per layout

    def place(self, layout):
        super().place(layout)
        self.cache.clear()

    def cached(self, slot, key, make):
        """The value made for `key` in this slot, made again (replacing it) when the key
        changes: one value per slot, so the cache does not grow with weights or hovers."""
        held = self.cache.get(slot)
        if held is None or held[0] != key:
            held = self.cache[slot] = (key, make())
        return held[1]

    def label_width(self, rect):
        """How wide a column's label may be: to half way to the neighbouring columns, less
        half the share of relevance written there (`coverage_anchor`)."""
        lay, share = self.lay, self.text.width("100 %", self.fs - 2) // 2 + 3
        cols = sorted([lay.input.rect] + [g.rect for g in lay.hidden] + [lay.output], key=lambda c: c.x)
        left = max([(c.right + rect.x) // 2 + share for c in cols if c.right <= rect.x], default=lay.network.x)
        right = min([(rect.right + c.x) // 2 - share for c in cols if c.x >= rect.right], default=lay.network.right)
        return max(20, 2 * min(rect.centerx - left, right - rect.centerx) - 4)

    def label(self, surface, rect, text, second="", short=()):
        """Label above a column (all columns share one row), with an optional second line;
        in its room so neighbouring labels never run into each other: the first of `text`
        and its `short` forms that fits, else cut."""
        y, w = self.lay.labels_y, self.label_width(rect)
        if second:                                    # phrasings, the first that fits ("softmax probability")
            seconds = (second,) if isinstance(second, str) else second
            second = next((t for t in seconds if self.text.width(t, self.fs - 2) <= w), seconds[-1])
            self.text.blit(surface, self.text.fit(second, self.fs - 2, w), (rect.centerx, y), self.fs - 2, DIM, False,
                           "midbottom")
            y -= self.fs + 2
        text = next((t for t in (text, *short) if self.text.width(t, self.fs) <= w), short[-1] if short else text)
        self.text.blit(surface, self.text.fit(text, self.fs, w), (rect.centerx, y), self.fs, TEXT, False, "midbottom")

    def grid_surface(self, key, rgb, rows, cols, cell, gaps=True):
        """Blit-ready surface of a rows x cols grid of colours rgb (rows*cols, 3), one
        colour per cell, scaled up crisply (nearest neighbour) with 1-px gaps."""
        if len(rgb) < rows * cols:                               # last grid row not full
            rgb = np.concatenate([rgb, np.tile(np.array(BG, np.uint8), (rows * cols - len(rgb), 1))])
        small = self.cache.get((key, "small"))
        if small is None or small.get_size() != (cols, rows):
            small = self.cache[(key, "small")] = pygame.Surface((cols, rows))
        pygame.surfarray.blit_array(small, rgb.reshape(rows, cols, 3).transpose(1, 0, 2))
        size = (cols * cell, rows * cell)
        big = self.cache.get(key)
        if big is None or big.get_size() != size:
            big = self.cache[key] = pygame.Surface(size)
        pygame.transform.scale(small, size, big)
        if gaps and cell >= 5:
            big.blit(self.gap_mask(size, cell), (0, 0))
        return big

    def gap_mask(self, size, cell):
        """Transparent surface with background-coloured lines between cells."""
        def make():
            mask = pygame.Surface(size)
            mask.fill((255, 0, 255))
            mask.set_colorkey((255, 0, 255))
            for x in range(cell - 1, size[0], cell):
                pygame.draw.line(mask, BG, (x, 0), (x, size[1]))
            for y in range(cell - 1, size[1], cell):
                pygame.draw.line(mask, BG, (0, y), (size[0], y))
            return mask
        return self.cached(("gaps", size), cell, make)


class InputColumn(GridRegion):
    """The input: the test digit (with the pixels the lines start from), the raw strokes
    of a drawing beside what the network sees, a dream, or a pixel map."""

    def area(self, layout):
        return layout.input.rect

    def canvas_at(self, pos):
        """(u, v) in [0, 1] of pos on the input column (drawing), or None outside it."""
        r = self.lay.input.rect
        if not r.inflate(8, 8).collidepoint(pos):
            return None
        return (pos[0] - r.x) / r.width, (pos[1] - r.y) / r.height

    def draw(self, surface, scene):
        st, v, g = scene.state, scene.view, self.lay.input
        if st.drawing and st.dream is None:
            # the raw strokes, where the pointer is; what the network sees, beside them
            canvas = (np.clip(st.canvas, 0, 1) * 255).astype(np.uint8)           # (280, 280)
            surf = pygame.surfarray.make_surface(np.repeat(canvas.T[:, :, None], 3, 2))
            surface.blit(pygame.transform.smoothscale(surf, g.rect.size), g.rect)
            pygame.draw.rect(surface, ACCENT, g.rect.inflate(4, 4), 1)
            self.label(surface, g.rect, "Your drawing", ("left draws, right erases", "left draws", "draw"))
            below = (self.lay.strip.y if self.lay.strip else self.lay.network.bottom) - g.rect.bottom - 14
            side = int(np.clip(below, 28, 84))
            seen = pygame.Rect(g.rect.x, g.rect.bottom + 8, side, side)
            if below < 28:                                   # no room below: inside the canvas corner
                seen.topright = (g.rect.right - 4, g.rect.y + 4)
            grey = (v.x * 255).astype(np.uint8).reshape(28, 28)
            small = pygame.surfarray.make_surface(np.repeat(grey.T[:, :, None], 3, 2))
            surface.blit(pygame.transform.scale(small, seen.size), seen)
            pygame.draw.rect(surface, DIM, seen.inflate(2, 2), 1)
            self.text.blit(surface, "what the network sees", (seen.right + 8, seen.centery), self.fs - 2, DIM,
                           False, "midleft")
            return
        grey = (v.x * 255).astype(np.uint8)
        rgb = np.repeat(grey[:, None], 3, 1)                      # true greyscale (784, 3)
        if v.saliency is not None:
            s = v.saliency / (np.abs(v.saliency).max() + 1e-12)
            overlay = diverging(s).astype(np.float32)
            alpha = np.abs(s)[:, None] ** 0.7
            rgb = (rgb * (1 - alpha) + overlay * alpha).astype(np.uint8)
        surface.blit(self.grid_surface("input", rgb, 28, 28, g.cell, gaps=False), g.rect)
        pygame.draw.rect(surface, DIM, g.rect.inflate(4, 4), 1)
        # the input pixels the drawn lines start from, marked on top of the image
        src, _, val = scene.view.conns[0] if st.hover is None else (np.zeros(0, int), None, None)
        if len(src) and g.cell >= 4:
            strongest = {}
            for s_, v_ in zip(src.tolist(), val.tolist()):
                strongest[s_] = v_                          # weakest first: the last is the strongest
            for s_, v_ in strongest.items():
                pygame.draw.rect(surface, POSITIVE if v_ >= 0 else NEGATIVE, g.cell_rect(s_), 1)
        if st.dream is not None:
            kind, *what = st.dream
            of = f"class {scene.names[what[0]]}" if kind == "class" else f"H{what[0] + 1} neuron {what[1]}"
            self.label(surface, g.rect, f"Dream of {of}", (f"step {scene.dream_step}, V or Esc returns",
                                                          f"step {scene.dream_step}"))
        else:
            self.label(surface, g.rect, "Input (784)", (f"test {scene.noun} #{st.index}", f"#{st.index}"),
                       ("Input", "In"))
        if v.saliency is not None:
            what = f"pixel relevance for {scene.names[v.explained]}" \
                if v.relevance is not None and st.saliency != "gradient" else \
                f"saliency: d score {scene.names[v.explained]} / d pixel"
            self.text.blit(surface, what, (g.rect.centerx, g.rect.bottom + 6), self.fs - 2, DIM, False, "midtop")
        learn = v.learn
        if learn is not None and learn.batch and learn.phase != "forward":
            self.draw_batch(surface, learn)

    def draw_batch(self, surface, learn):
        """Step mode: the batch trained, under the input: its mean loss, its first digits and
        each one's loss (under the weights before the step), as room allows."""
        g, fs = self.lay.input.rect, self.fs - 2
        bottom = (self.lay.strip.y if self.lay.strip else self.lay.network.bottom) - 6
        _, labels, losses = learn.batch
        y = g.bottom + 8
        text = (f"the batch: {len(labels)} digits, loss {learn.loss:.3g} on average; each one's:",
                f"batch of {len(labels)}: loss {learn.loss:.3g}", f"loss {learn.loss:.3g}")
        width = (self.lay.hidden[0].rect.x if self.lay.hidden else g.right + 160) - g.x - 12
        label = next((t for t in text if self.text.width(t, fs) <= width), text[-1])
        self.text.blit(surface, label, (g.x, y), fs, TEXT)
        y += self.text.font(fs).get_height() + 2
        small = self.text.font(fs - 2).get_height()
        side = int(min(40, bottom - y - small - 2))
        if learn.images is None or side < 14:
            return
        n = min(len(learn.images), width // (side + 4))
        for i in range(n):
            grey = learn.images[i].reshape(28, 28)
            thumb = pygame.surfarray.make_surface(np.repeat(grey.T[:, :, None], 3, 2))
            at = pygame.Rect(g.x + i * (side + 4), y, side, side)
            surface.blit(pygame.transform.smoothscale(thumb, at.size), at)
            self.text.blit(surface, f"{float(losses[i]):.2f}", (at.centerx, at.bottom + 1), fs - 2, DIM, False,
                           "midtop")



class OutputColumn(GridRegion):
    """The ten output neurons: probability, the prediction's ring (right / wrong), the true
    class outlined, the explained class marked; a click explains that class."""

    def area(self, layout):
        return layout.output

    def place(self, layout):
        super().place(layout)
        self.centers = np.array([[r.x + 10, r.centery] for r in layout.output_rows], np.float32)

    def output_neuron(self, c):
        """((x, y) centre, radius) of output neuron c; its ring is 2 px at radius + 2..3."""
        row = self.lay.output_rows[c]
        return (int(self.centers[c][0]), int(self.centers[c][1])), max(5, min(10, row.height // 2 - 3))

    # ------------------------------------------------------------------ drawing
    def hit(self, pos):
        """A click on an output neuron's row explains that class."""
        for c, row in enumerate(self.lay.output_rows):
            if row.collidepoint(pos):
                return ("explain", c)
        return None

    def draw(self, surface, scene):
        lay, v, fs = self.lay, scene.view, self.fs
        probs, pred, true = scene.shown["probs"], v.pred, scene.true
        ring = verdict_color(pred, true)
        name_w = self.text.widest(scene.names, fs, bold=True)
        learn = v.learn
        error = learn.error if learn is not None else None
        moved = learn is not None and learn.before is not None and learn.mode in ("updates", "step") \
            and learn.phase in ("", "update")
        second = (("bars: probability p; error p − y", "bars p; error p − y", "p; p − y") if error is not None else
                  ("probability before -> after the step", "before -> after", "->") if moved else
                  ("softmax probability", "probability", "softmax"))
        self.label(surface, lay.output, "Output (10)", second, ("Output", "Out"))
        for c, row in enumerate(lay.output_rows):
            (cx, cy), radius = self.output_neuron(c)
            fill = tuple(int(x) for x in RAMP_LUT[int(255 * np.sqrt(np.clip(probs[c], 0, 1)))])
            pygame.draw.circle(surface, fill, (cx, cy), radius)
            if c == pred:
                pygame.draw.circle(surface, ring, (cx, cy), radius + 3, 2)
            tall = row.height >= self.text.font(fs - 4).get_height() + self.text.font(fs - 2).get_height() + 2
            if c == v.explained and v.explained != pred:          # another class is being explained
                pygame.draw.circle(surface, ACCENT, (cx, cy), radius + 6, 1)
                if tall:                                          # above the percentage, never over it
                    self.text.blit(surface, "explained", (row.right, cy - row.height // 2), fs - 4, ACCENT, False,
                                   "topright")
            if c == v.contrast:                                   # explained rather than this class
                pygame.draw.circle(surface, DIM, (cx, cy), radius + 6, 1)
                if tall:
                    self.text.blit(surface, "rather than", (row.right, cy - row.height // 2), fs - 4, DIM, False,
                                   "topright")
            self.text.blit(surface, scene.names[c], (cx + radius + 6, cy), fs, TEXT if c in (pred, true) else DIM,
                           c == pred, "midleft")
            bar_x = cx + radius + 12 + name_w
            room = row.right - bar_x - self.text.width("100->100%", fs - 2) - 6
            both = moved and room >= 10                           # before -> after, or after alone when narrow
            bar_w = max(10, room if both else row.right - bar_x - 40)
            pygame.draw.rect(surface, GRID_BG, (bar_x, cy - 5, bar_w, 10))
            pygame.draw.rect(surface, ring if c == pred else ACCENT,
                             (bar_x, cy - 5, max(1, int(bar_w * np.clip(probs[c], 0, 1))), 10))
            if error is not None:                                 # backward: the error this class sends back
                e = float(error[c])
                said = f"{e:+.2f}".replace("-", "−") if abs(e) >= 0.005 else "0.00"     # never −0.00
                self.text.blit(surface, said, (row.right, cy), fs - 2,
                               POSITIVE if e > 0.005 else NEGATIVE if e < -0.005 else DIM, False, "midright")
            elif moved:                                           # the step: where the score was, where it is
                before = float(np.clip(learn.before[c], 0, 1))
                x = bar_x + int(bar_w * before)
                pygame.draw.line(surface, TEXT, (x, cy - 7), (x, cy + 6), 2)
                after = f"{100 * float(learn.after[c]):.0f}%"
                self.text.blit(surface, f"{100 * before:.0f}->{after}" if both else after, (row.right, cy),
                               fs - 2, DIM, False, "midright")
            else:
                self.text.blit(surface, f"{100 * v.probs[c]:.0f}%", (row.right, cy), fs - 2, DIM, False, "midright")
            if c == true:
                pygame.draw.rect(surface, TEXT, (bar_x - 3, cy - 8, bar_w + 6, 16), 1)
