"""The network view: the input column, the hidden grids, the output column and the
connection lines between them (their positions, drawing and hit tests)."""
from __future__ import annotations

import time
import weakref

import numpy as np
import pygame

from mnist_live.window.regions.base import Region
from mnist_live.window.regions.palette import (
    ACCENT,
    BG,
    DEAD,
    DIM,
    GRID_BG,
    NEGATIVE,
    POSITIVE,
    RAMP_LUT,
    TEXT,
    diverging,
    ramp,
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
        self.label(surface, lay.output, "Output (10)", ("softmax probability", "probability", "softmax"),
                   ("Output", "Out"))
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
            bar_w = max(10, row.right - bar_x - 40)
            pygame.draw.rect(surface, GRID_BG, (bar_x, cy - 5, bar_w, 10))
            pygame.draw.rect(surface, ring if c == pred else ACCENT,
                             (bar_x, cy - 5, max(1, int(bar_w * np.clip(probs[c], 0, 1))), 10))
            self.text.blit(surface, f"{100 * v.probs[c]:.0f}%", (row.right, cy), fs - 2, DIM, False, "midright")
            if c == true:
                pygame.draw.rect(surface, TEXT, (bar_x - 3, cy - 8, bar_w + 6, 16), 1)



class NetworkColumns(GridRegion):
    """Input, hidden layers, output column and the connection lines between them."""

    def __init__(self, text):
        super().__init__(text)
        self.input, self.output = InputColumn(text), OutputColumn(text)
        self.lines_seconds = 0.0                            # what the last redraw of the lines cost
        self.dirty = []                                     # rectangles the last draw changed
        self._drawn = None                                  # the part keys of the last draw

    def place(self, layout):
        super().place(layout)
        self.input.place(layout)
        self.output.place(layout)
        self.orders = [None] * len(layout.hidden)       # per hidden layer: position -> neuron (None: index order)
        self.inverse = [None] * len(layout.hidden)      # neuron -> position
        self.set_orders(None)

    def set_orders(self, orders):
        """Neuron positions: index order, or `orders[l]` (position -> neuron) per hidden layer."""
        orders = orders or [None] * len(self.lay.hidden)
        if all((a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
               for a, b in zip(orders, self.orders)) and hasattr(self, "centers"):
            return
        self.orders = list(orders)
        self.inverse = [None if o is None else np.argsort(o) for o in orders]
        hidden = [g.centers() if inv is None else g.centers()[inv] for g, inv in zip(self.lay.hidden, self.inverse)]
        self.centers = [self.lay.input.centers()] + hidden + \
                       [np.array([[r.x + 10, r.centery] for r in self.lay.output_rows], np.float32)]
        for key in [k for k in self.cache if k[0] == "lines_stamp"]:
            self.cache[key] = None                       # the lines move with their neurons

    def neuron_rect(self, layer, j):
        """Screen cell of neuron j of hidden layer `layer` under the current order."""
        inv = self.inverse[layer]
        return self.lay.hidden[layer].cell_rect(int(j if inv is None else inv[j]))

    # -------------------------------------------------------------- hit testing
    def neuron_at(self, pos):
        """(hidden layer, neuron) under pos, or None."""
        for layer, grid in enumerate(self.lay.hidden):
            p = grid.index_at(pos)
            if p is not None:
                return layer, int(p if self.orders[layer] is None else self.orders[layer][p])
        return None

    def update(self, scene):
        self.set_orders(scene.orders)

    def part_keys(self, scene):
        """What each part of the picture depends on. `whole`: the user's changes, the hovered
        neuron, the grid orders, the layout; a change there redraws the whole view.
        Otherwise only the parts whose key changed: the lines (the span of the columns they
        cross), the input column (and the captions under it), the column labels (and the
        relevance shares between them), each hidden grid (its eased activations, dead
        neurons, atlas) and the output column (its eased probabilities)."""
        st = scene.state
        keys = {"whole": (st.version, st.hover, self.rect.size,
                          tuple(None if o is None else o.tobytes() for o in self.orders)),
                "lines": scene.lines_stamp, "input": scene.view_key, "labels": scene.view_key,
                "output": (scene.view_key, scene.shown["probs"].tobytes())}
        for i in range(len(self.lay.hidden)):
            keys[("hidden", i)] = (id(scene.test_pass), scene.shown[("hidden", i)].tobytes())
        return keys

    def part_rects(self):
        """The screen rectangle of each part but `whole`."""
        lay, net, fs = self.lay, self.rect, self.fs
        below = (lay.strip.y if lay.strip else net.bottom) - lay.input.rect.y
        rects = {"input": pygame.Rect(lay.input.rect.x - 4, lay.input.rect.y - 4, lay.input.rect.width + 8 + 200,
                                      below + 4).clip(net),
                 "labels": pygame.Rect(net.x, lay.labels_y - 3 * fs - 8, net.width, 3 * fs + 10),
                 "output": lay.output.inflate(8, 8),
                 "lines": lay.input.rect.unionall([g.rect for g in lay.hidden] + [lay.output]).inflate(8, 8)}
        for i, g in enumerate(lay.hidden):
            rects[("hidden", i)] = g.rect
        return rects

    def dirty_rects(self):
        return self.dirty

    def hit(self, pos):
        return self.output.hit(pos)

    def find_dirty(self, scene):
        """The rectangles this draw changes (see `part_keys`)."""
        keys, drawn = self.part_keys(scene), self._drawn
        self._drawn = keys
        if drawn is None or drawn["whole"] != keys["whole"] or drawn.keys() != keys.keys():
            return [self.rect]
        rects = self.part_rects()
        return [rects[part] for part, key in keys.items() if part != "whole" and drawn[part] != key]

    def draw(self, surface, scene):
        lay = self.lay
        self.dirty = self.find_dirty(scene)
        hovered = scene.hovered
        if hovered is None:                           # a hovered neuron shows only its own lines
            self.draw_lines(surface, "view", scene.view.conns, scene.lines_stamp)
        else:
            self.draw_lines(surface, "hover", hovered.connections, (hovered.layer, hovered.neuron, scene.lines_stamp),
                            width_scale=1.5)
        self.input.draw(surface, scene)
        for layer, grid in enumerate(lay.hidden):
            self.draw_hidden(surface, scene, layer, grid)
        self.output.draw(surface, scene)
        if scene.view.coverage is not None and scene.state.hover is None:
            self.draw_coverage(surface, scene.view.coverage)
        if scene.state.hover is not None:
            layer, j = scene.state.hover
            pygame.draw.rect(surface, TEXT, self.neuron_rect(layer, j).inflate(4, 4), 2)

    def atlas_surface(self, stats, layer, grid):
        """Every neuron's prototype, scaled into its own cell (in the grid's current order)."""
        order = self.orders[layer]
        key = (weakref.ref(stats), grid.cell, None if order is None else order.tobytes())    # no stale id()

        def make():                              # in uint8 as soon as possible: few, small temporaries
            protos = stats.prototypes(layer)                                   # (n, 784) float32, >= 0
            peak = protos.max(axis=1, keepdims=True) / np.float32(255)
            np.divide(protos, peak, out=protos, where=peak > 0)                 # each prototype's ink to 0..255
            tiles = np.zeros((grid.rows * grid.cols, 784), np.uint8)           # (cells, 784)
            tiles[:grid.n] = protos
            if order is not None:
                tiles[:grid.n] = tiles[order]
            cols = tiles.reshape(grid.rows, grid.cols, 28, 28).transpose(1, 3, 0, 2).reshape(grid.cols * 28, -1)
            small = pygame.surfarray.make_surface(np.repeat(cols[:, :, None], 3, 2))   # (x, y) = (cols*28, rows*28)
            big = pygame.transform.smoothscale(small, grid.rect.size)
            if grid.cell >= 5:
                big.blit(self.gap_mask(grid.rect.size, grid.cell), (0, 0))
            return big
        return self.cached(("atlas", layer), key, make)

    def coverage_anchor(self, pair):
        """Where the share of relevance carried by pair's lines is written: centred in
        the gap between the two columns, on the upper label row."""
        rects = [self.lay.input.rect] + [g.rect for g in self.lay.hidden] + [self.lay.output]
        return (rects[pair].right + rects[pair + 1].x) // 2, self.lay.labels_y - self.fs - 2

    def draw_coverage(self, surface, coverage):
        for pair, share in enumerate(coverage):
            self.text.blit(surface, f"{100 * share:.0f} %", self.coverage_anchor(pair), self.fs - 2, POSITIVE,
                           False, "midbottom")

    def draw_hidden(self, surface, scene, layer, grid):
        a = scene.view.acts[layer + 1]
        if scene.state.atlas and scene.test_pass is not None and scene.test_pass.stats is not None:
            surface.blit(self.atlas_surface(scene.test_pass.stats, layer, grid), grid.rect)
            self.label(surface, grid.rect, f"Hidden {layer + 1} ({grid.n})",
                       ("atlas: what each responds to", "atlas: prototypes", "atlas"),
                       (f"H{layer + 1} ({grid.n})", f"H{layer + 1}"))
            return
        rgb = ramp(scene.shown[("hidden", layer)])
        dead = scene.test_pass.dead[layer] if scene.test_pass is not None else None
        if dead is not None:
            rgb[dead] = DEAD
        order = self.orders[layer]
        if order is not None:
            rgb = rgb[order]                                 # position p shows neuron order[p]
        surface.blit(self.grid_surface(f"hidden{layer}", rgb, grid.rows, grid.cols, grid.cell), grid.rect)
        if order is not None:
            self.draw_bands(surface, scene, layer, grid, order)
        active = int((a > 0).sum())
        self.label(surface, grid.rect, f"Hidden {layer + 1} ({grid.n})",
                   (f"{active} active", f"{active} on", f"{active}"),
                   (f"H{layer + 1} ({grid.n})", f"H{layer + 1}"))

    def draw_bands(self, surface, scene, layer, grid, order):
        """A grid ordered by preferred class: a line between one class's band and the next
        (a step where a band ends inside a row) and each band's class left of the grid at
        its first row, on the background so no connection line runs through it."""
        preferred = scene.test_pass.preferred[layer][order] if scene.test_pass is not None and \
            scene.test_pass.preferred is not None else None
        if preferred is None:
            return
        cell, left, right, top = grid.cell, grid.rect.x, grid.rect.x + grid.cols * grid.cell - 1, grid.rect.y
        for p in (np.flatnonzero(np.diff(preferred)) + 1).tolist():          # where a new band begins
            r, c = divmod(p, grid.cols)
            y, x = top + r * cell - 1, left + c * cell - 1
            steps = [(right, y), (max(x, left), y)] + ([(x, y + cell), (left, y + cell)] if c else [])
            pygame.draw.lines(surface, TEXT, False, steps, 1)
        last_y = -10 ** 6
        for c in range(10):
            first = np.flatnonzero(preferred == c)
            y = top + (first[0] // grid.cols + 0.5) * cell if len(first) else None
            if y is not None and y - last_y >= self.fs - 3:
                label = self.text.render(scene.short_names[c][:3], self.fs - 4, ACCENT)
                box = label.get_rect(midright=(grid.rect.x - 4, y))
                pygame.draw.rect(surface, BG, box.inflate(4, 2))
                surface.blit(label, box)
                last_y = y

    def draw_lines(self, surface, name, conns, stamp, width_scale=1.0):
        """Lines between the exact cells of each pair, on a translucent layer so the
        grids stay readable; strongest drawn last; redrawn only when the stamp changes."""
        net = self.rect
        layer = self.cache.get(("lines", name))
        if layer is None or layer.get_size() != net.size:
            layer = self.cache[("lines", name)] = pygame.Surface(net.size, pygame.SRCALPHA)
            self.cache[("lines_stamp", name)] = None
        if self.cache.get(("lines_stamp", name)) != stamp:
            self.cache[("lines_stamp", name)] = stamp
            t0 = time.perf_counter()
            layer.fill((0, 0, 0, 0))
            self.cache[("lines_count", name)] = draw_connection_lines(layer, conns, self.centers, net.topleft,
                                                                      width_scale)
            self.lines_seconds = time.perf_counter() - t0
        surface.blit(layer, net.topleft)

    def lines_drawn(self, name="view"):
        return self.cache.get(("lines_count", name), 0)


    # the input and output columns are regions of their own
    def canvas_at(self, pos):
        return self.input.canvas_at(pos)

    def output_neuron(self, c):
        return self.output.output_neuron(c)


def draw_connection_lines(layer, conns, centers, origin, width_scale=1.0):
    """Draw each pair's (src, dst, value) lines on `layer`; returns how many were drawn."""
    offset = np.array(origin, np.float32)
    drawn = 0
    for pair, (src, dst, val) in enumerate(conns):
        if len(val) == 0:
            continue
        mag = np.abs(val) / max(float(np.abs(val).max()), 1e-12)
        a, b = centers[pair][src] - offset, centers[pair + 1][dst] - offset
        rgb = np.where(val[:, None] >= 0, np.array(POSITIVE), np.array(NEGATIVE))
        alpha = (70 + 185 * mag).astype(int)
        widths = ((1 + (mag > 0.5) + (mag > 0.85)) * width_scale).astype(int)
        for p0, p1, (r, g, b_), al, w in zip(a.tolist(), b.tolist(), rgb.tolist(), alpha.tolist(), widths.tolist()):
            pygame.draw.line(layer, (r, g, b_, al), p0, p1, w)
            drawn += 1
    return drawn
