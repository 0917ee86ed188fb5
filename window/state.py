"""What the person looking at the window has chosen: the digit, filters, overlays, modes
(`WindowState`), and browsing under the filters; `StateView`, the frozen copy of it a frame
draws from. Plain NumPy: tested without a display."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from mnist_live.window.view_model import RANK_MODES, describe_position, rank_label

SPEEDS = (0.0, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)   # seconds slept per batch ([ and ])
K_STEPS = (0, 5, 10, 20, 30, 60, 100, 200, 500, 1000, 2000, 5000)
CANVAS = 280                      # drawing canvas resolution (10x MNIST)


def waiting_message(state, result, fraction):
    """What the user waits for from the test-set pass under way (`fraction` of it done):
    'grouping neurons... 40 %' (O pressed after a pass that did not group them), 'drawing
    the atlas... 40 %' (A); None when nothing is waited for. `result` is the last complete
    pass (view_model.Pass) or None (the grids start grouped: the first pass groups them)."""
    if state.sorted_grids and result is not None and result.preferred is None:
        what = "grouping neurons"
    elif state.atlas and (result is None or result.stats is None):
        what = "drawing the atlas"
    else:
        return None
    return f"{what}... {100 * fraction:.0f} %"


# --------------------------------------------------------------------- window state
class Browsing:
    """WindowState's browsing: which test digit comes next under the filters, always
    judged by `predict(indices) -> classes` of the weights on screen (part of the state;
    a separate class only to keep each class readable)."""

    def go(self, index):
        self.index = int(np.clip(index, 0, self.n - 1))
        self.drawing = False
        self.dream = None
        self.explain_class = None                    # a new digit: explain its prediction
        self.contrast_class = None
        self.touch()

    @property
    def filtering(self):
        """Whether browsing is limited (mistakes only, or a confusion cell)."""
        return self.pair_filter is not None or self.mistakes_only

    def filter_mask(self, predict):
        """bool (N,) of the digits the active filter keeps, under the current weights
        (None: no filter). Costs a test-set pass the first time after new weights."""
        if not self.filtering:
            return None
        preds = predict(np.arange(self.n))
        if self.pair_filter is not None:
            t, p = self.pair_filter
            return (self.y_test == t) & ((preds != t) if p is None else (preds == p))
        return preds != self.y_test

    def _scan(self, order, wanted, predict, chunk=256):
        """First index of `order` whose current prediction satisfies wanted(idx, pred),
        predicting in chunks so a trained network answers after a few hundred digits."""
        for s in range(0, len(order), chunk):
            idx = order[s:s + chunk]
            hit = np.flatnonzero(wanted(idx, predict(idx)))
            if len(hit):
                return int(idx[hit[0]])
        return None

    def _ring(self, direction, among=None):
        """Indices after (or before) the current one in browsing order, wrapping round."""
        idx = np.arange(self.n) if among is None else among
        if direction > 0:
            return np.concatenate([idx[idx > self.index], idx[idx <= self.index]])
        return np.concatenate([idx[idx < self.index][::-1], idx[idx >= self.index][::-1]])

    def _keep(self):
        """wanted(idx, pred) for the active filter."""
        if self.pair_filter is not None:
            t, p = self.pair_filter
            return lambda idx, pred: (self.y_test[idx] == t) & ((pred != t) if p is None else (pred == p))
        if self.mistakes_only:
            return lambda idx, pred: pred != self.y_test[idx]
        return lambda idx, pred: np.ones(len(idx), bool)

    def step(self, delta, predict):
        """Move by delta digits, within the active filter if there is one."""
        if not self.filtering:
            self.go(self.index + delta)
            return None
        keep, landed = self._keep(), None
        order = self._ring(delta)
        # no wrapping for steps: stop at the first/last matching digit
        order = order[order > self.index] if delta > 0 else order[order < self.index]
        for s in range(0, len(order), 256):
            idx = order[s:s + 256]
            hits = idx[keep(idx, predict(idx))]
            for i in hits:
                landed = int(i)
                delta -= 1 if delta > 0 else -1
                if delta == 0:
                    break
            if delta == 0:
                break
        if landed is None:
            return f"no more test {self.noun}s match the filter" if self.filter_mask(predict).any() \
                else f"no test {self.noun}s match the filter"
        self.go(landed)
        return None

    def home_end(self, last, predict):
        mask = self.filter_mask(predict)
        if mask is None:
            self.go(self.n - 1 if last else 0)
            return None
        idx = np.flatnonzero(mask)
        if not len(idx):
            return f"no test {self.noun}s match the filter"
        self.go(idx[-1] if last else idx[0])
        return None

    def next_of_class(self, digit, predict):
        """Next test digit of true class `digit` (a mistake, when browsing mistakes)."""
        among = np.flatnonzero(self.y_test == digit)
        mistakes = self.mistakes_only
        i = self._scan(self._ring(1, among), (lambda idx, pred: pred != self.y_test[idx]) if mistakes
                       else (lambda idx, pred: np.ones(len(idx), bool)), predict)
        if i is None:
            return f"no {'misclassified ' if mistakes else ''}test {self.noun} of class {self.class_names[digit]}"
        self.go(i)
        return None

    def next_mistake(self, direction, predict):
        """Next (direction 1) or previous (-1) digit the current weights get wrong."""
        i = self._scan(self._ring(direction), lambda idx, pred: pred != self.y_test[idx], predict)
        if i is None:
            return f"no misclassified test {self.noun}s"
        self.go(i)
        return None

    def random(self, rng, predict):
        mask = self.filter_mask(predict)
        idx = np.arange(self.n) if mask is None else np.flatnonzero(mask)
        if not len(idx):
            return f"no test {self.noun}s match the filter"
        self.go(rng.choice(idx))
        return None

    def toggle_mistakes(self, predict):
        self.mistakes_only = not self.mistakes_only and self.pair_filter is None   # F also leaves a pair filter
        self.pair_filter = None
        self.touch()
        if self.mistakes_only:
            if predict(np.array([self.index]))[0] == self.y_test[self.index]:
                self.next_mistake(1, predict)
            return "browsing mistakes only"
        return f"browsing all test {self.noun}s"

    def choose_pair(self, true, pred, predict):
        """Browse exactly the digits of class `true` predicted as `pred` (a confusion cell)."""
        self.pair_filter, self.mistakes_only, self.overlay = (true, pred), False, None
        mask = self.filter_mask(predict)
        idx = np.flatnonzero(mask)
        if len(idx):
            self.go(idx[0])
        else:
            self.touch()
        return (f"browsing {len(idx)} {self.noun}s: true {self.class_names[true]}, predicted {self.class_names[pred]}"
                f" (Left/Right; F leaves the filter)")

    def browse_mistakes_of(self, true, predict):
        """Browse exactly the test digits of class `true` the weights on screen get wrong."""
        self.pair_filter, self.mistakes_only = (true, None), False
        idx = np.flatnonzero(self.filter_mask(predict))
        if len(idx):
            self.go(idx[0])
        else:
            self.touch()
        return (f"browsing the {len(idx)} mistakes of class {self.class_names[true]} (Left/Right; F leaves the filter)"
                if len(idx) else f"no mistakes of class {self.class_names[true]} now")

    def filter_label(self):
        if self.pair_filter is not None:
            t, p = self.pair_filter
            if p is None:
                return f"mistakes of class {self.class_names[t]}"
            return f"true {self.class_names[t]}, predicted {self.class_names[p]}"
        return "mistakes only" if self.mistakes_only else f"all test {self.noun}s"


@dataclass
class WindowState(Browsing):
    """What the person looking at the window has chosen: the digit, filters, overlays.
    Browsing methods take `predict(indices) -> classes` for the current weights and
    return a message for the user (or None)."""
    y_test: np.ndarray                               # (N,) int64 true classes
    class_names: tuple = tuple(str(d) for d in range(10))
    noun: str = "digit"                              # "image" for Fashion-MNIST
    index: int = 0                                   # test digit on screen
    drawing: bool = False
    canvas: np.ndarray = field(default_factory=lambda: np.zeros((CANVAS, CANVAS), np.float32))
    k: int = 60
    rank_mode: str = "relevance"
    mistakes_only: bool = False
    pair_filter: tuple | None = None                 # (true, predicted) from the confusion matrix
    overlay: str | None = None                       # the name of the overlay view open (None: the network)
    form: object = None                              # experiment.Form of a new run while the settings are open
    tour_step: int = 0                               # the guided tour's step on screen (window.tour)
    toured: bool = False                             # the tour was closed once (remembered: not shown again)
    saliency: str | None = None                      # pixel map (G): None, "relevance" or "gradient"
    explain_class: int | None = None                 # explain this class instead of the prediction
    contrast_class: int | None = None                # ... rather than this one (relevance of z_c - z_d)
    sorted_grids: bool = False                       # hidden grids ordered by preferred class (on by default
    grouping_asked: bool = False                     # through the view settings, once learned; O: at once)
    atlas: bool = False                              # hidden grids show each neuron's prototype
    map_layer: int = -1                              # hidden layer of the representation map (-1: last)
    rewind: int | None = None                        # snapshot shown instead of the live weights
    class_chart: bool = False                        # per-class accuracy over time instead of bars
    learn: str | None = None                         # a view of learning: "backward" (J), "updates" (Y)
    update_span: bool = False                        # Y: the change over the last batches, not the last step
    captions: bool = True                            # the caption strip above the legend (I)
    dream: tuple | None = None                       # ("class", c) or ("neuron", layer, j) being dreamt
    hover: tuple | None = None                       # (hidden layer, neuron) under the pointer
    hover_edge: tuple | None = None                  # (layer pair, source, target): the drawn line under it
    stroke_from: tuple | None = None                 # (u, v) where the stroke under way last painted
    pointer: tuple | None = None                     # (x, y) of the mouse in the window (None: outside)
    speed: int = 0                                   # index into SPEEDS
    pause_requested: bool = False
    running: bool = True
    toast: str = ""
    toast_until: float = 0.0
    version: int = 0                                 # bumped by every change the view depends on

    def __post_init__(self):
        self.y_test = _read_only(np.asarray(self.y_test).copy())    # the labels never change

    @property
    def n(self):
        return len(self.y_test)

    def say(self, text, seconds=3.0):
        self.toast, self.toast_until = text, time.monotonic() + seconds

    def touch(self):
        self.version += 1

    # ------------------------------------------------------------------ display
    def change_k(self, up):
        if up:
            larger = [k for k in K_STEPS if k > self.k]
            self.k = larger[0] if larger else self.k
        else:
            smaller = [k for k in K_STEPS if k < self.k]
            self.k = smaller[-1] if smaller else self.k
        self.touch()
        return f"{self.k} connections per layer pair"

    def cycle_rank_mode(self):
        self.rank_mode = RANK_MODES[(RANK_MODES.index(self.rank_mode) + 1) % len(RANK_MODES)]
        self.touch()
        return f"connections ranked by {rank_label(self.rank_mode)}"

    def toggle_overlay(self, overlay):
        """Open the overlay view named `overlay`, or close it when it is open."""
        self.overlay = None if self.overlay == overlay else overlay
        self.toast = ""                              # a message of the view that was on screen
        self.touch()

    def explain(self, c, predicted):
        """Explain class c instead of the prediction; choosing it again (or the predicted
        class) returns to explaining the prediction."""
        self.explain_class = None if c in (self.explain_class, predicted) else int(c)
        self.contrast_class = None
        self.touch()
        if self.explain_class is None:
            return "explaining the prediction"
        return f"explaining class {self.class_names[c]} (click it again, or the prediction, to return)"

    def contrast(self, d, explained):
        """Explain the explained class *rather than* class d: the relevance of z_c - z_d
        (what tells them apart); d again, or the explained class, returns."""
        self.contrast_class = None if d in (self.contrast_class, explained) else int(d)
        self.touch()
        c = self.class_names[explained]
        if self.contrast_class is None:
            return f"explaining {c} on its own"
        return (f"explaining {c} rather than {self.class_names[d]}: the evidence that tells them apart "
                f"(again to return)")

    def toggle_sorted(self):
        self.sorted_grids, self.grouping_asked = not self.sorted_grids, True
        self.touch()
        return ("hidden neurons grouped by the class they support most (once the network reads half the test "
                f"{self.noun}s right)" if self.sorted_grids else "hidden neurons in index order")

    def step_rewind(self, direction, snapshots, live_progress):
        """Step back (-1) or forward (+1) through the snapshots older than the live weights
        (one taken of the live weights is the live weights: --no-train); forward past the
        newest of them returns to the live weights."""
        older = [i for i, s in enumerate(snapshots) if s[2] < live_progress]
        if not older:
            return "no snapshots yet" if not snapshots else "no snapshot older than the live weights"
        if self.rewind is None:
            if direction > 0:
                return "already showing the live weights (, steps back)"
            self.rewind = older[-1]
        elif direction < 0:
            self.rewind = max(0, self.rewind - 1)
        elif self.rewind + 1 in older:
            self.rewind += 1
        else:
            self.rewind = None
        self.touch()
        if self.rewind is None:
            return "back to the live weights"
        epoch, batch, _ = snapshots[self.rewind]
        return f"rewound to snapshot {self.rewind + 1} of {len(older)}: {describe_position(epoch, batch)}"

    def cycle_map(self, n_hidden):
        """P: the map of the last hidden layer, then of each earlier one, then closed."""
        if self.overlay != "map":
            self.toggle_overlay("map")
            self.map_layer = n_hidden - 1
        elif self.map_layer > 0:
            self.map_layer -= 1
        else:
            self.overlay = None
        self.touch()
        return f"map of hidden layer {self.map_layer + 1}" if self.overlay == "map" else "map closed"

    def toggle_class_chart(self):
        self.class_chart = not self.class_chart
        self.touch()

    def toggle_captions(self):
        self.captions = not self.captions
        self.touch()
        return "captions: what the view on screen shows, above the legend" if self.captions else "captions off"

    def toggle_atlas(self):
        self.atlas = not self.atlas
        self.touch()
        return "atlas: each hidden neuron shows what it responds to" if self.atlas else "atlas off"

    def start_dream(self, explained):
        """Dream the hovered neuron, or else the explained class; V again stops."""
        if self.dream is not None:
            self.dream = None
            self.touch()
            return f"back to the test {'drawing' if self.drawing else 'image'}"
        if self.hover is not None:
            self.dream = ("neuron", *self.hover)
            what = f"hidden {self.hover[0] + 1} neuron {self.hover[1]}"
        else:
            self.dream = ("class", int(explained))
            what = f"class {self.class_names[explained]}"
        self.touch()
        return f"dreaming {what}: gradient ascent from faint noise (V or Esc returns)"

    def back(self):
        """Esc: one step back - the overlay, then the dream, then "rather than", then the
        explained class, then drawing, then the filter. Never quits (Q does)."""
        if self.overlay is not None:
            self.toggle_overlay(self.overlay)
            return None
        if self.dream is not None:
            return self.start_dream(None)
        if self.contrast_class is not None:
            self.contrast_class = None
            self.touch()
            return "explaining the class on its own again"
        if self.explain_class is not None:
            self.explain_class = None
            self.touch()
            return "explaining the prediction again"
        if self.drawing:
            return self.toggle_drawing()
        if self.filtering:
            self.mistakes_only, self.pair_filter = False, None
            self.touch()
            return f"browsing all test {self.noun}s"
        return "nothing to step back from (Q quits)"

    def cycle_saliency(self, relevance):
        """G: off -> relevance -> gradient -> off (off -> gradient -> off when the lines
        are not ranked by relevance: there is no relevance to map)."""
        order = (None, "relevance", "gradient") if relevance else (None, "gradient")
        self.saliency = order[(order.index(self.saliency) + 1) % len(order)] if self.saliency in order else None
        self.touch()
        if self.saliency == "relevance":
            return "pixel map: each pixel's share of the evidence (relevance); G again: the gradient"
        if self.saliency == "gradient":
            return "pixel map: d score / d pixel, how the score would change with each pixel; G again: off"
        return "pixel map off"

    def toggle_drawing(self):
        self.drawing = not self.drawing
        self.touch()
        return ("draw: left button draws, right erases, Backspace clears" if self.drawing
                else "back to the test images")

    def clear_canvas(self):
        if self.drawing:
            self.canvas[...] = 0
            self.touch()

    def paint(self, u, v, erase=False, stroke=False):
        """An anti-aliased round brush at canvas fraction (u, v) in [0, 1]; with `stroke`, a
        brush dragged from where the stroke last painted, so a fast stroke is a line, not
        dots where the pointer was seen."""
        u0, v0 = self.stroke_from if stroke and self.stroke_from is not None else (u, v)
        self.stroke_from = (u, v)
        ax, ay, bx, by = u0 * CANVAS, v0 * CANVAS, u * CANVAS, v * CANVAS
        radius = CANVAS / 28 * 1.3
        ys, xs = np.ogrid[0:CANVAS, 0:CANVAS]
        px, py = xs + 0.5 - ax, ys + 0.5 - ay                           # (1, W), (H, 1)
        dx, dy = bx - ax, by - ay
        t = np.clip((px * dx + py * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)   # (H, W): nearest point
        d = np.sqrt((px - t * dx) ** 2 + (py - t * dy) ** 2)            # distance to the segment
        ink = np.clip(radius - d + 0.5, 0, 1).astype(np.float32)     # 1 inside, soft 1-px edge
        if erase:
            np.minimum(self.canvas, 1 - ink, out=self.canvas)
        else:
            np.maximum(self.canvas, ink, out=self.canvas)
        self.touch()

    def change_speed(self, slower):
        self.speed = int(np.clip(self.speed + (1 if slower else -1), 0, len(SPEEDS) - 1))
        s = SPEEDS[self.speed]
        return "full speed" if s == 0 else f"slow motion: {s * 1000:g} ms pause per batch"

    def frozen(self) -> StateView:
        """A copy of the state that nothing changes any more: what one frame draws from."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["canvas"] = _read_only(self.canvas.copy()) if self.drawing else _NO_CANVAS   # shown only while drawing
        return StateView(**values)


def _read_only(array):
    array.flags.writeable = False
    return array


_NO_CANVAS = _read_only(np.zeros((CANVAS, CANVAS), np.float32))


class _Reading:
    """What the frozen state answers besides its fields."""

    @property
    def n(self):
        return len(self.y_test)

    filtering = Browsing.filtering
    filter_label = Browsing.filter_label


StateView = dataclasses.make_dataclass(
    "StateView", [(f.name, f.type) for f in dataclasses.fields(WindowState)], bases=(_Reading,), frozen=True,
    namespace={"__doc__": "WindowState as it was when a frame began (its fields, frozen; the canvas a copy)."})
