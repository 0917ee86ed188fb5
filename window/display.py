"""The network as the window shows it: the weights on screen (live or a rewound snapshot)
and everything computed from them — the predictions the browsing and the film strip ask
for, the view of the digit on screen, the eased values the grids and the output column
draw, the window's test-set pass, the representation map and a dream. No pygame: the
frame loop feeds it weights and the state, and asks it what to draw.

When the picture follows new weights: a user's change recomputes the view at once; new
weights from the trainer at most every few refresh costs (the view plus the lines), and
their picture follows a frame later, so no frame both recomputes the view and redraws
the window.
"""
from __future__ import annotations

import time

import numpy as np

from mnist_live.neural_network import MLP, to_float
from mnist_live.window.drawn_digit import mnist_style
from mnist_live.window.learning import (
    PLAY_S,
    StepPlay,
    backward_view,
    playable,
    reveal,
    step_view,
    update_view,
    with_learning,
)
from mnist_live.window.side_views import Dreamer, ease_points
from mnist_live.window.state import SPEEDS, waiting_message
from mnist_live.window.view_model import Predictions, RepresentationMap, WeightsStamp, WindowPass, compute_view, ease

PASS_CHUNK = 32                   # test digits re-predicted per slice of a frame's idle time
BATCH_SHOWN = 12                  # step mode: the batch's first digits shown with their losses
ADOPT_S = 0.064                   # new weights at most this often (four frames: view, lines, two light ones)


class Display:
    """The weights on screen and what the window computes from them."""

    def __init__(self, config, x_test, y_test, live=True, x_train=None):
        def network():
            return MLP(config.sizes, config.activation, seed=config.seed)
        self.net, self.x_test, self.y_test, self.x_train = network(), x_test, y_test, x_train
        self.stamp = None if live else WeightsStamp()    # None: no weights from the training process yet
        self.predict = Predictions(self.net, x_test)
        self.test_pass = WindowPass(network, x_test, y_test)
        self.map = RepresentationMap(network, x_test, y_test)
        self.dreamer = Dreamer()
        self.view = self.view_key = self.lines_key = None
        self.shown, self.map_points = {}, None           # eased display values; the map's eased points
        self.view_cost, self.last_adopt, self.pass_cost = 0.0, 0.0, 0.0
        self.snap, self.draw_later = True, False
        self.waiting = False                             # the trainer published weights newer than these
        self.pass_shown = None                           # the per cent a hovered portrait and the map show
        self.trains = live and not config.no_train       # a training process steps these weights
        self.watch_token = 0                             # the WATCH token of the digit on screen (trainer_link)
        self.play, self.played = None, 0                 # step mode: the step played (learning.StepPlay), its seq

    @property
    def pass_done(self):
        """How much of the test-set pass under way is done (0 when none is)."""
        return self.test_pass.pos / len(self.y_test) if self.test_pass.busy else 0.0

    def adopt_due(self, user_changed, lines_seconds, now):
        """Whether waiting new weights are taken now: at once for a user's change, else at
        most every few refresh costs (thousands of lines, K = 5000, cannot eat every frame)."""
        return user_changed or now - self.last_adopt >= max(ADOPT_S, 6 * (self.view_cost + lines_seconds))

    def take(self, stamp, now=None):
        """The weights in `net` are now those of `stamp`."""
        self.last_adopt = time.perf_counter() if now is None else now
        if stamp is not None and stamp != self.stamp:
            self.stamp = stamp
            self.predict.reset(stamp)

    def known_predictions(self, record):
        """A full evaluation's per-image predictions, when they are of the weights on screen."""
        if self.stamp is not None and (self.stamp.epoch, self.stamp.batch) == record.position:
            self.predict.reset(self.stamp)
            self.predict.known[:] = record.predictions

    def update(self, state, training=None):
        """The pass, the map, the dream and the view brought up to date with the state, the
        weights and what `training` (telemetry.Telemetry) says of the steps; the values shown
        eased a step. Returns (whether the picture changed, a message the user waits on or None)."""
        changed = False
        tp = self.test_pass
        tp.want_stats = state.hover is not None or state.atlas
        tp.want_preferred = state.hover is not None or state.sorted_grids
        if tp.needs_pass(self.stamp):
            tp.start(self.net.weights, self.net.biases, self.stamp)
        waiting = waiting_message(state, tp.result, self.pass_done)
        shown = (int(100 * self.pass_done) if tp.busy and state.hover is not None else None,
                 int(100 * self.map.done) if self.map.busy and state.overlay == "map" else None)
        changed |= shown != self.pass_shown                # a hovered portrait and the map say how far they are
        self.pass_shown = shown
        changed |= self.dreamer.step(state.dream, self.net)
        changed |= self.update_map(state)
        self.follow_steps(state, training)
        changed |= self.update_view(state, training)
        changed |= ease(self.shown, self.view, self.snap)
        self.snap = False
        return changed, waiting

    def follow_steps(self, state, training):
        """Step mode: play a new detailed step of the weights and the digit on screen while
        paused (N) or in slow motion of half a second a batch or more; end a play that is over
        or no longer of the weights or the digit on screen."""
        record = getattr(training, "step", None)
        slow = SPEEDS[state.speed] >= 0.5
        if record is not None and record.seq != self.played and (state.pause_requested or slow) \
                and playable(record, self.stamp, self.watch_token):
            scale = 1.0 if state.pause_requested else 0.8 * SPEEDS[state.speed] / PLAY_S   # fits the batch's pause
            self.play, self.played = StepPlay(record, scale=scale, paused=state.pause_requested), record.seq
        if self.play is not None and (self.play.phase() is None or state.dream is not None
                                      or not playable(self.play.record, self.stamp, self.watch_token)):
            self.play = None

    def learn_key(self, state, training):
        """What a view of learning depends on beyond the state and the weights."""
        if self.play is not None:
            phase = self.play.phase()
            wave = phase is not None and phase[0] in ("forward", "backward")
            return ("play", self.play.record.seq, phase and phase[0],
                    reveal(len(self.net.sizes) - 2, phase[1]) if wave else None)
        if state.learn == "updates":
            step, span = getattr(training, "step", None), getattr(training, "span", None)
            return ("updates", step and step.seq, span and (span.after, span.steps), self.watch_token)
        return state.learn

    def learned(self, view, state, training, x):
        """The view with the backward pass, the steps' changes or the step played drawn."""
        n_layers = len(self.net.sizes) - 1
        if self.play is not None and self.play.phase() is not None:
            phase, fraction = self.play.phase()
            rec = self.play.record
            images = self.x_train[rec.indices[:BATCH_SHOWN]] if self.x_train is not None and rec.indices is not None \
                else None
            conns, shares, learn, probs = step_view(rec, phase, fraction, state.k, n_layers, images, self.play.paused)
            return with_learning(view, conns, shares, learn, probs)
        if state.learn == "backward":
            target = None if state.drawing or state.dream is not None else int(self.y_test[state.index])
            return with_learning(view, *backward_view(self.net, x, target, state.k))
        if state.learn == "updates":
            return with_learning(view, *update_view(getattr(training, "step", None), getattr(training, "span", None),
                                                    self.stamp, self.watch_token, state.update_span, state.k,
                                                    n_layers, self.trains))
        return view

    def update_view(self, state, training=None):
        """Recompute the view when the state, the weights, the dream or the steps shown changed."""
        user_changed = self.view_key is None or state.version != self.view_key[0]
        key = (state.version, self.stamp, self.dreamer.step_no, self.learn_key(state, training))
        changed = self.lines_key != self.view_key        # after new weights the lines follow one frame later
        self.lines_key = self.view_key
        if key == self.view_key:
            return changed
        t0 = time.perf_counter()
        if state.dream is not None and self.dreamer.image is not None:
            x = self.dreamer.image
        else:
            x = mnist_style(state.canvas).reshape(784) if state.drawing else to_float(self.x_test[state.index])
        learning = state.learn is not None or self.play is not None      # its own lines, not the forward's
        self.view = compute_view(self.net, x, self.stamp, 0 if learning else state.k,
                                 "contribution" if learning else state.rank_mode, None if learning else state.saliency,
                                 empty=state.drawing and not state.canvas.any(), explain=state.explain_class,
                                 contrast=state.contrast_class)
        if learning:
            self.view = self.learned(self.view, state, training, x)
        self.view_cost = time.perf_counter() - t0
        self.draw_later = not user_changed                 # new weights: drawn next frame; a key's answer at once
        self.snap = self.snap or (user_changed and key[2] == 0)   # a new digit jumps; weights, dreams glide
        self.view_key = key
        if user_changed or self.lines_key is None:
            self.lines_key = key
        return True

    def update_map(self, state):
        """Keep the open map building for the weights on screen; its points glide there."""
        if state.overlay != "map":
            return False
        layer = state.map_layer % (len(self.net.sizes) - 2)
        m = self.map
        if not m.busy and (m.stamp != self.stamp or m.layer != layer):
            m.start(self.net.weights, self.net.biases, self.stamp, layer)
        self.map_points, moved = ease_points(self.map_points, m.points if m.layer == layer else None)
        return moved

    def map_here(self, state):
        """Where the digit on screen lies on the open map (2,), or None."""
        m = self.map
        if self.view is None or not m.can_project or m.layer != state.map_layer % (len(self.net.sizes) - 2):
            return None
        return m.project(self.view.acts[m.layer + 1])

    def idle_work(self, deadline):
        """The open map, then the test-set pass, in slices while they fit before `deadline`
        (at least one slice a frame, so they always progress); returns whether a map or a
        pass completed (the picture changed)."""
        changed = self.map.busy and self.map.step()
        cost = self.pass_cost
        while self.test_pass.busy:
            t = time.perf_counter()
            changed |= self.test_pass.step(PASS_CHUNK)            # dead neurons, the confusion matrix
            cost = max(time.perf_counter() - t, 0.9 * cost)
            if time.perf_counter() + cost > deadline:
                break
        self.pass_cost = cost
        return bool(changed)

    def strip_digits(self, state, count):
        """The film strip's digits: `count` indices around the one on screen under the active
        filter as the last test-set pass sees it (the weights on screen until one exists),
        how the weights on screen read them, and how many digits the filter keeps."""
        result = self.test_pass.result
        mask = state.filter_mask(self.predict if result is None else (lambda idx: result.predictions[idx]))
        order = np.arange(state.n) if mask is None else np.flatnonzero(mask)
        pos = int(np.searchsorted(order, state.index))
        start = int(np.clip(pos - count // 3, 0, max(0, len(order) - count)))
        idx = order[start:start + count]
        return idx, self.predict(idx), len(order)
