"""The network view: the input column, the hidden grids, the output column and the
connection lines between them (their positions, drawing and hit tests). The columns and
the grid drawing they share are `columns.py`."""
from __future__ import annotations

import time
import weakref

import numpy as np
import pygame

from mnist_live.window.regions.columns import GridRegion, InputColumn, OutputColumn
from mnist_live.window.regions.palette import ACCENT, BG, DEAD, NEGATIVE, POSITIVE, TEXT, change_ramp, diverging, ramp


class NetworkColumns(GridRegion):
    """Input, hidden layers, output column and the connection lines between them."""

    def __init__(self, text):
        super().__init__(text)
        self.input, self.output = InputColumn(text), OutputColumn(text)
        self.lines_seconds = 0.0                            # what the last redraw of the lines cost
        self.dirty = []                                     # rectangles the last draw changed
        self._drawn = None                                  # the part keys of the last draw
        self.drawn_conns = ()                               # the lines drawn (per pair (src, dst, value))

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
        learning = scene.view_key if scene.view.learn is not None else None      # its marks change with the view
        for i in range(len(self.lay.hidden)):
            keys[("hidden", i)] = (id(scene.test_pass), scene.shown[("hidden", i)].tobytes(), learning)
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
            self.drawn_conns = scene.view.conns                      # what a pointer over a line is over
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

    def draw_learning(self, surface, scene, learn, layer, grid):
        """A hidden grid in a view of learning: each neuron's error signal (warm raises the loss,
        cool lowers it, dark 0), how far its incoming weights moved, or the forward wave's
        activations; labelled with what its colour is; grouped by class with its bands, as
        in the other views."""
        marks = learn.marks[layer]
        if learn.marks_kind == "delta":
            rgb = diverging(marks)
            off = int(learn.off[layer].sum()) if learn.off else 0
            second = (f"δ; {off} off (ReLU: δ = 0)", f"δ; {off} off", "δ")
        elif learn.marks_kind == "change":
            rgb = change_ramp(marks)
            second = ("how far its inputs moved", "|Δw| into each", "|Δw|", "Δ")
        else:
            rgb = ramp(marks)
            second = (f"{int((marks > 0).sum())} active", f"{int((marks > 0).sum())}", "on")
        if learn.reached and not learn.reached[layer]:      # a wave that has not come here yet: nothing to count
            second = ("the wave has not reached it yet", "not reached yet", "...")
        order = self.orders[layer]
        if order is not None:
            rgb = rgb[order]
        surface.blit(self.grid_surface(f"hidden{layer}", rgb, grid.rows, grid.cols, grid.cell), grid.rect)
        if order is not None:
            draw_bands(surface, self.text, self.fs, scene, layer, grid, order)
        self.label(surface, grid.rect, f"Hidden {layer + 1} ({grid.n})", second,
                   (f"H{layer + 1} ({grid.n})", f"H{layer + 1}"))

    def draw_hidden(self, surface, scene, layer, grid):
        a = scene.view.acts[layer + 1]
        learn = scene.view.learn
        if learn is not None and learn.marks:
            self.draw_learning(surface, scene, learn, layer, grid)
            return
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
            draw_bands(surface, self.text, self.fs, scene, layer, grid, order)
        active = int((a > 0).sum())
        self.label(surface, grid.rect, f"Hidden {layer + 1} ({grid.n})",
                   (f"{active} active", f"{active} on", f"{active}"),
                   (f"H{layer + 1} ({grid.n})", f"H{layer + 1}"))

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

    def edge_at(self, pos, reach=3.0):
        """(layer pair, source, target) of the drawn line nearest pos within `reach` pixels
        (the strongest where lines cross), or None."""
        best, p = None, np.array(pos, np.float32)
        for pair, (src, dst, val) in enumerate(self.drawn_conns):
            if not len(val):
                continue
            a, b = self.centers[pair][src], self.centers[pair + 1][dst]             # (n, 2) each
            ab = b - a
            t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-9), 0, 1)
            d = np.hypot(*(a + t[:, None] * ab - p).T)                             # (n,)
            near = np.flatnonzero(d <= reach)
            if len(near):
                i = near[-1]                                                       # weakest first: the last
                if best is None or abs(val[i]) > best[0]:
                    best = (abs(float(val[i])), (pair, int(src[i]), int(dst[i])))
        return None if best is None else best[1]

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


def draw_bands(surface, text, fs, scene, layer, grid, order):
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
        if y is not None and y - last_y >= fs - 3:
            label = text.render(scene.short_names[c][:3], fs - 4, ACCENT)
            box = label.get_rect(midright=(grid.rect.x - 4, y))
            pygame.draw.rect(surface, BG, box.inflate(4, 2))
            surface.blit(label, box)
            last_y = y
