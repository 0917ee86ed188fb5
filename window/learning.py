"""Watching it learn, on the window's side (issue 34): the backward view (J), what the
steps changed (Y) and step mode (N while paused; slow motion), as what the network view
draws instead of the forward pass: which lines, which colour each hidden neuron takes,
what the output column says. No pygame: `Display` asks `learn_view` for a `LearnView`
and the regions draw it.

The backward view is computed here, from the window's own copy of the weights on screen
(live or a rewound snapshot) with `explain.backward`: the error at the output, every
hidden neuron's error signal delta as its colour (warm: raising the neuron's input would
raise the loss; cool: lower it; dark: 0, the ReLU is off), the lines the largest
gradients a*delta with the share they carry.

What the steps changed comes from the training process (`steps.StepWatch`: a
`StepRecord` per recorded step, an `UpdateSummary` per span of steps) and is shown only
of the weights on screen (`fresh`): a record's `update.after` must be the position of the
weights on screen, and the digit's scores before and after a step only for the digit on
screen (its WATCH token); otherwise the view says what it waits for.

Step mode plays one detailed StepRecord (`StepPlay`) in four phases with that step's own
numbers: the forward wave (the digit's activations under the weights before the step,
layer by layer), the batch's loss (its digits and their losses), the backward wave (the
error signals from the output back) and the update (the largest changes, the scores
moving to after the step). A play stops the moment its record is no longer of the weights
on screen or of the digit on screen: it never shows a stale step.

Imports NumPy, `explain.backward`, `explain.edges`, `view_model` (the View it completes) and
`training.update_rule` (the maths on hover: `maths_lines`); pure, tested without a display.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from mnist_live.explain.backward import backward, gradient_edges
from mnist_live.explain.edges import EMPTY
from mnist_live.training.update_rule import edge_lines, neuron_lines, next_update
from mnist_live.window.view_model import describe_position

PHASES = (("forward", 0.8), ("loss", 0.9), ("backward", 1.0), ("update", 1.1))   # step mode: (phase, seconds)
PLAY_S = sum(s for _, s in PHASES)


@dataclass(frozen=True)
class LearnView:
    """What the network view draws in a view of learning, beside the View's lines (which
    it replaces) and coverage (the share the lines carry)."""
    mode: str                    # "backward", "updates" or "step"
    marks: tuple = ()            # per hidden layer (n,) float32: delta in [-1, 1] ("delta"), change in [0, 1]
    marks_kind: str = "delta"    # ("change") or activation in [0, 1] ("activation"); () : the forward pass
    off: tuple = ()              # per hidden layer bool (n,): the ReLU is off (delta 0)
    error: object = None         # (10,) softmax - one-hot of the target (backward)
    target: int = -1             # the class the loss is of
    labelled: bool = True        # target is the digit's true class (not the network's own answer)
    before: object = None        # (10,) the digit's probabilities before the step (updates, step)
    after: object = None         # (10,) after it
    steps: int = 1               # the steps the lines' change spans
    awaited: str = ""            # what the view waits for ('' when it shows a step)
    phase: str = ""              # step mode: forward, loss, backward, update
    loss: float = float("nan")   # step mode: the batch's mean loss
    batch: tuple = ()            # step mode: (training indices (B,), labels (B,), losses (B,))
    images: object = None        # step mode: (n, 784) uint8, the batch's first training images
    seq: int = 0                 # the StepRecord shown (0: none)
    over_span: bool = False      # Y's second mode: the change over the last batches
    paused: bool = True          # step mode: a step played while paused (N), else in slow motion
    reached: tuple = ()          # step mode's waves: per hidden layer, whether the wave has reached it yet
    elsewhere: tuple = ()        # where the change ends and where the weights on screen are ("epoch 3, batch 40",
                                 # ...) when it is of other weights


def position(stamp):
    return None if stamp is None else (stamp.epoch, stamp.batch)


def fresh(record, stamp):
    """Whether a StepRecord or UpdateSummary is of the weights on screen (the staleness
    rule): its `after` position is theirs, and they are live weights (not a snapshot)."""
    if record is None or stamp is None or stamp.version < 0:
        return False
    update = getattr(record, "update", record)
    return tuple(update.after) == position(stamp)


def digit_fresh(record, stamp, token):
    """Whether a StepRecord's digit scores are of the weights and the digit on screen."""
    return fresh(record, stamp) and record.digit is not None and record.digit.token == token


def per_layer(values, n_hidden, signed):
    """Each hidden layer's values scaled by its own largest magnitude: [-1, 1] or [0, 1]."""
    out = []
    for v in values[:n_hidden]:
        v = np.nan_to_num(np.asarray(v, np.float32))
        peak = float(np.abs(v).max()) if v.size else 0.0
        out.append(v / peak if peak > 0 else np.zeros_like(v))
    return tuple(out)


# ------------------------------------------------------------------ the backward view
def backward_view(net, x, target, k):
    """The backward view of digit x (784,) for class `target` (None: the network's own
    answer): (lines per pair, their shares, LearnView)."""
    with np.errstate(all="ignore"):
        bw = backward(net, x, target)
    conns, shares = gradient_edges(bw, k) if k > 0 else ([EMPTY] * net.n_layers, [0.0] * net.n_layers)
    n_hidden = net.n_layers - 1
    learn = LearnView("backward", per_layer(bw.deltas, n_hidden, True), "delta", tuple(bw.off), bw.error.copy(),
                      bw.target, bw.labelled)
    return conns, shares, learn


# ------------------------------------------------------------------ what the steps changed
def update_view(step, span, stamp, token, over_span, k, n_layers, live):
    """What the steps changed, of the weights on screen: (lines, shares, LearnView); the lines
    None when there is nothing fresh to show (the LearnView then says what is awaited)."""
    if not live:
        return None, None, LearnView("updates", awaited="no training in this session (--no-train): no steps")
    if stamp is not None and stamp.version < 0:
        return None, None, LearnView("updates", awaited="rewound: the steps are of live training (. returns)")
    summary = span if over_span else (step.update if step is not None else None)
    if summary is None or stamp is None:
        awaited = ("waiting for the change over the next batches" if over_span else
                   "waiting for a recorded step (one every few batches; or pause with Space and press N)")
        return None, None, LearnView("updates", awaited=awaited, steps=0, over_span=over_span)
    edges = [_weakest_first(e, k) for e in summary.edges]
    before = after = None
    if not over_span and digit_fresh(step, stamp, token):
        before, after = step.digit.probs_before, step.digit.probs_after
    marks = per_layer(summary.neuron_in, n_layers - 1, False)
    elsewhere = () if fresh(summary, stamp) else (describe_position(*summary.after),     # the newest recorded one
                                                  describe_position(*position(stamp)))
    learn = LearnView("updates", marks, "change", before=before, after=after, steps=summary.steps,
                      seq=step.seq if step is not None and not over_span else 0, over_span=over_span,
                      elsewhere=elsewhere)
    return edges, list(summary.shares), learn


def _weakest_first(edge, k):
    """The k strongest of an edge list kept weakest first."""
    src, dst, val = edge
    return (src[-k:], dst[-k:], val[-k:]) if k > 0 else EMPTY


# ------------------------------------------------------------------ step mode
class StepPlay:
    """One detailed step played in phases (module docstring); `scale` shortens it (slow
    motion fits a play into its pause per batch)."""

    def __init__(self, record, now=None, scale=1.0, paused=True):
        self.record, self.started, self.scale = record, time.monotonic() if now is None else now, float(scale)
        self.paused = paused                     # N while paused (else slow motion plays it in its pause)

    def phase(self, now=None):
        """(phase, fraction of it done in [0, 1]), or None once the play is over."""
        t = ((time.monotonic() if now is None else now) - self.started) / self.scale
        for name, seconds in PHASES:
            if t < seconds:
                return name, max(0.0, t / seconds)
            t -= seconds
        return None


def playable(record, stamp, token):
    """Whether a StepRecord can be played: detailed, of the weights on screen and of the digit
    on screen (its backward pass under the weights before the step is in it)."""
    return record is not None and record.detailed and digit_fresh(record, stamp, token) \
        and record.digit.backward is not None


def reveal(n, fraction):
    """How many of n layers a wave has reached at `fraction` of its phase (all at 1)."""
    got = int(np.floor(fraction * (n + 1)))
    return min(n, got)


def step_view(record, phase, fraction, k, n_layers, images=None, paused=True):
    """The network view at `phase` of a played step: (lines, shares, LearnView, acts or None,
    probs shown). The forward wave lights the hidden layers one by one with the digit's
    activations before the step (`images`: the batch's first training images to show); the
    backward wave colours them from the output back with
    their error signals; the update draws the step's largest changes."""
    bw, n_hidden = record.digit.backward, n_layers - 1
    empty = [EMPTY] * n_layers
    base = dict(mode="step", phase=phase, loss=record.loss, target=bw.target, labelled=bw.labelled,
                before=record.digit.probs_before, after=record.digit.probs_after, seq=record.seq,
                batch=(record.indices, record.labels, record.losses) if record.indices is not None else (),
                images=images, paused=paused)
    if phase in ("forward", "loss"):
        lit = reveal(n_hidden, 1.0 if phase == "loss" else fraction)
        acts = per_layer([np.clip(a, 0, None) for a in bw.acts[1:-1]], n_hidden, False)
        marks = tuple(np.sqrt(a) if i < lit else np.zeros_like(a) for i, a in enumerate(acts))
        return empty, None, LearnView(marks=marks, marks_kind="activation", reached=tuple(i < lit for i in
                                                                                       range(n_hidden)), **base), \
            bw.probs
    if phase == "backward":
        lit = reveal(n_hidden, fraction)                 # from the output back: the last layers first
        deltas = per_layer(bw.deltas, n_hidden, True)
        marks = tuple(d if i >= n_hidden - lit else np.zeros_like(d) for i, d in enumerate(deltas))
        edges, shares = gradient_edges(bw, k) if k > 0 else (empty, [0.0] * n_layers)
        edges = [e if pair >= n_layers - 1 - lit else EMPTY for pair, e in enumerate(edges)]
        return edges, None, LearnView(marks=marks, marks_kind="delta", off=tuple(bw.off), error=bw.error.copy(),
                                      reached=tuple(i >= n_hidden - lit for i in range(n_hidden)), **base), bw.probs
    up = record.update
    marks = per_layer(up.neuron_in, n_hidden, False)
    edges = [_weakest_first(e, k) for e in up.edges]
    return edges, list(up.shares), LearnView(marks=marks, marks_kind="change", **base), record.digit.probs_after


def with_learning(view, conns, shares, learn, probs=None):
    """The View with the lines, their shares and the LearnView of a view of learning (the
    probabilities of the step's before or after, in step mode)."""
    changes = dict(conns=conns if conns is not None else [EMPTY] * len(view.conns), coverage=shares,
                   learn=learn, relevance=None, saliency=None)
    if probs is not None:                        # the step's own scores: its prediction is explained
        pred = int(np.argmax(probs))
        changes.update(probs=np.asarray(probs, np.float32), pred=pred,
                       explained=pred if view.explained == view.pred else view.explained)
    return dataclasses.replace(view, **changes)


# ------------------------------------------------------------------ the keys
def toggle_backward(state):
    """J: the backward view on / off."""
    state.learn = None if state.learn == "backward" else "backward"
    state.touch()
    if state.learn is None:
        return "backward view off"
    return "backward view: each neuron's error signal δ, the lines the largest gradients a·δ (J again: off)"


def cycle_updates(state):
    """Y: what the last step changed -> over the last batches -> off."""
    if state.learn != "updates":
        state.learn, state.update_span = "updates", False
    elif not state.update_span:
        state.update_span = True
    else:
        state.learn, state.update_span = None, False
    state.touch()
    if state.learn is None:
        return "Δw view off"
    return ("Δw: the weights the last step changed most (Y again: over the last batches)" if not state.update_span
            else "Δw: the weights changed most over the last batches (Y again: off)")


# ------------------------------------------------------------------ the maths on hover
def parameter_at(hover, hover_edge):
    """The parameter a hover is about, as Command.INSPECT names it: a hidden neuron's bias
    ("bias", pair, j) or a line's weight ("weight", pair, i, j); None when nothing is hovered."""
    if hover is not None:
        return ("bias", hover[0], hover[1])
    if hover_edge is not None:
        return ("weight", *hover_edge)
    return None


def maths_lines(net, view, target, at, inspection, trains):
    """The hovered neuron's or line's numbers for the digit on screen under the weights on
    screen (a, w, a*w or z and b, delta, the gradient), then the optimizer's next update
    of it with those numbers plugged in, from `inspection` (messages.Inspection: the
    parameter as the training process has it now; None until it answers for `at`).
    `target`: the class the loss is of (None: the network's own answer)."""
    if at is None or view is None:
        return ()
    with np.errstate(all="ignore"):
        bw = backward(net, view.x, target)
    kind, pair, *where = at
    last = inspection.last_dw if inspection is not None else None
    if kind == "bias":
        j = where[0]
        z = float(bw.acts[pair] @ net.weights[pair][:, j] + net.biases[pair][j])
        g, w = float(bw.deltas[pair][j]), float(net.biases[pair][j])
        head = (f"Hidden {pair + 1} neuron {j}, for this digit (class {bw.target}):",)
        lines = neuron_lines(float(bw.acts[pair + 1][j]), z, w, g, bool(bw.off[pair][j]), last)
    else:
        i, j = where
        a, w, delta = float(bw.acts[pair][i]), float(net.weights[pair][i, j]), float(bw.deltas[pair][j])
        g = a * delta
        names = ["pixel"] + [f"H{n + 1}" for n in range(net.n_layers - 1)] + ["output"]
        head = (f"line {names[pair]} {i} -> {names[pair + 1]} {j}, for this digit (class {bw.target}):",)
        lines = edge_lines(a, w, delta, last)
    if inspection is None:
        rule = ("the optimizer's next update: asking the training process..." if trains
                else "no training in this session: no optimizer state to plug in",)
    else:
        where = describe_position(*inspection.position)                 # as the panel counts: epoch 3, batch 1
        update = next_update(inspection.rule, g, inspection.value, inspection.lr, inspection.weight_decay,
                             "b" if kind == "bias" else "w")
        rule = (f"were this digit the batch, the next step ({inspection.rule.kind}, lr {inspection.lr:.3g}; the "
                f"value now, {where}, is {inspection.value:.3g}):", *update.lines)
    return head + tuple(lines) + rule
