"""What the window computes beside the view of the digit: dreams (a gradient-ascent step
per frame), the representation map easing to its newest build, the grid orders, and which
evaluation the per-class bars and the confusion matrix show (with what it is of).
No pygame."""
from __future__ import annotations

import numpy as np

from mnist_live.explain import dreams
from mnist_live.explain.neurons import order_by_class
from mnist_live.utils import per_class_accuracy
from mnist_live.window.state import Overlay
from mnist_live.window.view_model import EASE_STEP, describe_position

DREAM_STEPS = 60                  # gradient-ascent steps of a dream, one per frame

class SideViews:
    """What the window computes beside the view of the digit: dreams, the representation
    map, grid orders, and which evaluation the per-class bars and the confusion matrix show."""

    def __init__(self, app):
        self.app = app
        self.dream_of, self.dreamer, self.dream_image, self.dream_step = None, None, None, 0

    def update_map(self):
        """Keep the open map building for the newest weights; its points glide there."""
        st = self.app.state
        if st.overlay is not Overlay.MAP:
            return
        layer = st.map_layer % len(self.app.config.hidden)
        if not self.app.map.busy and (self.app.map.stamp != self.app.stamp or self.app.map.layer != layer):
            self.app.map.start(self.app.net.weights, self.app.net.biases, self.app.stamp, layer)
        if self.app.map.points is None or self.app.map.layer != layer:
            self.app.shown.pop("map", None)
            return
        shown = self.app.shown.get("map")
        if shown is None or shown.shape != self.app.map.points.shape:
            self.app.shown["map"] = self.app.map.points.copy()
            self.app.needs_draw = True
        elif np.abs(self.app.map.points - shown).max() > 1e-4 * (np.abs(shown).max() + 1e-9):
            shown += (self.app.map.points - shown) * EASE_STEP
            self.app.needs_draw = True

    def step_dream(self):
        """One gradient-ascent step of the dream under way per frame (60 steps: a second)."""
        st = self.app.state
        if st.dream != self.dream_of:
            self.dream_of, self.dream_step, self.dream_image = st.dream, 0, None
            self.dreamer = None
            if st.dream is not None:
                kind, *what = st.dream
                target = what[0] if kind == "class" else what[1]
                layer = None if kind == "class" else what[0]
                self.dreamer = dreams.dream(self.app.net, target, steps=DREAM_STEPS, layer=layer)
        if self.dreamer is not None:
            with np.errstate(all="ignore"):
                img = next(self.dreamer, None)
            if img is None:
                self.dreamer = None
            else:
                self.dream_image, self.dream_step = img, self.dream_step + 1

    # -------------------------------------------------------------------- draw
    def classes(self):
        """(per-class accuracy, the previous of the same kind, what it is of) for the panel:
        the latest evaluation live; the window's own pass of the weights when rewound."""
        if self.app.state.rewind is None:
            ev, (prev, caption) = self.app.tele.latest, self.app.tele.class_change(self.app.state.noun)
            return (None if ev is None else ev.per_class), prev, caption
        ps = self.app.sweep.result
        if ps is None or ps.stamp != self.app.stamp:
            return None, None, "rewound: passing the test set with those weights..."
        return per_class_accuracy(ps.confusion), None, f"rewound: full test set, {ps.stamp.describe()}"

    def rewound_accuracy(self):
        """The header's accuracy while rewound: the window's pass of the snapshot."""
        if self.app.state.rewind is None:
            return ""
        ps = self.app.sweep.result
        if ps is None or ps.stamp != self.app.stamp:
            return "REWOUND: test accuracy being measured..."
        return f"REWOUND: test accuracy {100 * ps.accuracy:.2f} % (full test set, {ps.stamp.describe()})"

    def orders(self):
        """Hidden grids ordered by preferred class (O), from the last pass that found them:
        they change only when a pass completes, never from frame to frame."""
        ps = self.app.sweep.result
        if not self.app.state.sorted_grids or ps is None or ps.preferred is None:
            return None
        if getattr(self, "_orders_of", None) is not ps:
            self._orders_of, self._orders = ps, [order_by_class(p) for p in ps.preferred]
        return self._orders

    def newest_confusion(self):
        """(matrix, label) of the newest whole-test-set result: the window's own pass or
        the trainer's evaluation, whichever is of later weights; None before either."""
        ps, ev = self.app.sweep.result, self.app.tele.last_full
        options = []
        if ps is not None:
            options.append(((ps.stamp.epoch, ps.stamp.batch, 1), ps.confusion, ps.stamp.describe()))
        if ev is not None:
            options.append(((ev.epoch, ev.batch, 0), ev.confusion, describe_position(ev.epoch, ev.batch)))
        if not options:
            return None
        _, conf, when = max(options, key=lambda o: o[0])
        newer = "" if not self.app.sweep.busy else \
            f" (a pass of newer weights is {100 * self.app.sweep.pos / len(self.app.y_test):.0f} % done)"
        return conf, f"weights: {when}{newer}"
