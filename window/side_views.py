"""What the window computes beside the view of the digit: a dream (a gradient-ascent step
per frame), the representation map's points easing to its newest build, the grid orders,
and which evaluation the per-class bars, the header and the confusion matrix show (with
what it is of). Small pure functions and one stateful `Dreamer`; no pygame."""
from __future__ import annotations

import numpy as np

from mnist_live.explain import dreams
from mnist_live.explain.neurons import order_by_class
from mnist_live.neural_network import to_float
from mnist_live.utils import per_class_accuracy
from mnist_live.window.telemetry import class_change
from mnist_live.window.view_model import EASE_STEP, describe_position

DREAM_STEPS = 60                  # gradient-ascent steps of a dream, one per frame


class Dreamer:
    """The dream under way: what it dreams (`state.dream`), its generator, the image so far."""

    def __init__(self):
        self.of, self.steps, self.image, self.step_no = None, None, None, 0

    def step(self, dream, net):
        """One gradient-ascent step of `dream` (("class", c) or ("neuron", layer, j), or None)
        with `net`'s weights (60 steps: a second); returns whether the image changed."""
        if dream != self.of:
            self.of, self.step_no, self.image, self.steps = dream, 0, None, None
            if dream is not None:
                kind, *what = dream
                target = what[0] if kind == "class" else what[1]
                layer = None if kind == "class" else what[0]
                self.steps = dreams.dream(net, target, steps=DREAM_STEPS, layer=layer)
        if self.steps is None:
            return False
        with np.errstate(all="ignore"):
            img = next(self.steps, None)
        if img is None:
            self.steps = None
            return False
        self.image, self.step_no = img, self.step_no + 1
        return True


QUICK_DIGITS = 1000               # a hovered neuron's first portrait: from this many test digits


def quick_portrait(net, x_test, layer, j, n=QUICK_DIGITS):
    """The hovered neuron's portrait from the first `n` test digits alone, while the whole
    pass gathers every neuron's (a few tens of ms instead of seconds): (what it responds
    to (784,) float32, up to nine test indices exciting it most (activation > 0), n)."""
    x = to_float(x_test[:n])                                                  # (n, 784)
    with np.errstate(all="ignore"):
        a = np.nan_to_num(net.forward(x, return_all=True)[layer + 1][:, j])   # (n,)
    w = np.maximum(a, 0)
    proto = (w @ x / max(float(w.sum()), 1e-12)).astype(np.float32)
    top = np.argsort(-a, kind="stable")[:9]
    return proto, top[a[top] > 0], len(x)


def portrait_of(display, hover):
    """The hovered neuron's quick portrait (`quick_portrait`) with the weights of the pass
    under way, while no finished pass has every neuron's; None otherwise."""
    tp = display.test_pass
    if hover is None or not tp.busy or (tp.result is not None and tp.result.stats is not None):
        return None
    return quick_portrait(tp.net, display.x_test, *hover)


def ease_points(shown, points):
    """The map's shown points (n, 2) a step towards its newest `points` (a new array when
    there were none or the shape changed); returns (shown, whether they moved)."""
    if points is None:
        return None, shown is not None
    if shown is None or shown.shape != points.shape:
        return points.copy(), True
    if np.abs(points - shown).max() > 1e-4 * (np.abs(shown).max() + 1e-9):
        shown += (points - shown) * EASE_STEP
        return shown, True
    return shown, False


def evaluation_of(tele, stamp):
    """The trainer's full test-set evaluation of the weights `stamp` stands for, or None."""
    if stamp is None:
        return None
    return next((r for r in reversed(tele.evals) if r.kind == "full" and r.position == (stamp.epoch, stamp.batch)),
                None)


def classes(state, tele, result, stamp, pass_done=0.0, lead=None):
    """(per-class accuracy, the previous of the same kind, what it is of) for the panel: live,
    the evaluation the header leads with (`lead`, else the latest); rewound, the trainer's
    evaluation of that snapshot when there is one, else the window's own pass of it
    (`pass_done`: how far the pass under way is)."""
    if state.rewind is None:
        ev = lead if lead is not None else tele.latest
        prev, caption = class_change(ev, tele.previous.get("full"), state.noun)
        return (None if ev is None else tuple(ev.per_class)), \
            (None if prev is None else tuple(prev)), caption
    known = evaluation_of(tele, stamp)
    if known is not None:
        return tuple(known.per_class), None, (f"rewound: full test set, {stamp.describe()}",)
    if result is None or result.stamp != stamp:
        return None, None, (f"rewound: passing the test set with those weights... {100 * pass_done:.0f} %",)
    return tuple(per_class_accuracy(result.confusion)), None, (f"rewound: full test set, {result.stamp.describe()}",)


def rewound_accuracy(state, tele, result, stamp, pass_done=0.0):
    """The header's accuracy while rewound: the trainer's evaluation of the snapshot, or the
    window's pass of it ('' live)."""
    if state.rewind is None:
        return ""
    known = evaluation_of(tele, stamp)
    if known is not None:
        return f"REWOUND: test accuracy {100 * known.accuracy:.2f} % (full test set, {stamp.describe()})"
    if result is None or result.stamp != stamp:
        return f"REWOUND: test accuracy being measured... {100 * pass_done:.0f} %"
    return f"REWOUND: test accuracy {100 * result.accuracy:.2f} % (full test set, {result.stamp.describe()})"


LEARNED = 0.5                     # the grids are grouped once the weights read this much of the test set right


def grid_orders(state, result):
    """Hidden grids ordered by preferred class (on by default, O), from the last pass that
    found them: by default once the network has learned a little (an untrained network's
    preferred classes are noise), at once when O asked for them. They change only when a
    pass completes, never from frame to frame (None: index order)."""
    if not state.sorted_grids or result is None or result.preferred is None:
        return None
    if result.accuracy < LEARNED and not state.grouping_asked:
        return None
    return tuple(order_by_class(p) for p in result.preferred)


def newest_confusion(result, last_full, busy_fraction=None):
    """(matrix, label) of the newest whole-test-set result: the window's own pass or the
    trainer's evaluation, whichever is of later weights; None before either.
    `busy_fraction`: how much of a pass of newer weights is done (None: none under way)."""
    options = []
    if result is not None:
        options.append(((result.stamp.epoch, result.stamp.batch, 1), result.confusion, result.stamp.describe()))
    if last_full is not None:
        options.append(((last_full.epoch, last_full.batch, 0), last_full.confusion,
                        describe_position(last_full.epoch, last_full.batch)))
    if not options:
        return None
    _, conf, when = max(options, key=lambda o: o[0])
    newer = "" if busy_fraction is None else f" (a pass of newer weights is {100 * busy_fraction:.0f} % done)"
    return conf, f"weights: {when}{newer}"
