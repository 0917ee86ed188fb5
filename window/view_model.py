"""What the window shows, computed without pygame: the view of the digit on screen (its
activations, prediction and the connections drawn), the current weights' predictions,
the window's test-set pass and the representation map.

Everything here is plain NumPy, so connection ranking and the passes are unit-tested
without a display. The window's state is `window_state.py`, the training as the window
knows it `telemetry.py`; `visualization.py` owns the loop and the pygame regions in
`regions/` draw what these modules compute.

One truth per frame: a `View` is computed for one weights snapshot (`WeightsStamp`) and
one digit, and every region that speaks of "the digit on screen" or "right / wrong now"
reads it (or asks `Predictions`, which answers for the same snapshot). Numbers that come
from elsewhere (a worker evaluation, the window's last full test-set pass) carry their
own stamp and are labelled with it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_live.explain import lrp, neurons, projection
from mnist_live.explain.edges import top_of_matrix
from mnist_live.neural_network import to_float
from mnist_live.utils import confusion_matrix

RANK_MODES = ("relevance", "contribution", "weight")   # C cycles the line modes
MAP_DIGITS = 2000                 # test digits on the representation map (class-balanced)


# ----------------------------------------------------------------------- analysis
def strongest_connections(weights, acts, k, mode="contribution"):
    """For each layer pair, the k strongest connections as (src, dst, signed value),
    weakest first (so the strongest are drawn on top), no zero ones (explain.edges).

    contribution: |a_src * w| for the sample on screen (what drives *this* prediction);
    weight: |w| alone. weights[i] is (fan_in, fan_out), acts[i] is (fan_in,)."""
    out = []
    for W, a in zip(weights, acts):
        if mode == "contribution":
            pool = np.flatnonzero(a)                              # inactive sources contribute 0
            edges, _ = top_of_matrix(a[pool, None] * W[pool], k, rows=pool)   # (n_active, fan_out) values
        else:
            edges, _ = top_of_matrix(W, k)
        out.append(edges)
    return out


def receptive_field(weights, layer, j):
    """Input-space picture (28, 28) of hidden neuron j of hidden layer `layer` (0-based):
    its input weights for the first layer, weights projected back (W1 @ W2[:, j]) deeper."""
    v = weights[layer][:, j]
    for W in reversed(weights[:layer]):
        v = W @ v                                              # (fan_in, fan_out) @ (fan_out,)
    return v.reshape(28, 28)


def hover_connections(weights, layer, j, k=12):
    """The k strongest incoming and outgoing weights of hidden neuron j of `layer`, as
    per-pair (src, dst, value) lists like `strongest_connections` (other pairs empty)."""
    empty = (np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32))
    w_in, w_out = weights[layer][:, j], weights[layer + 1][j]
    src = np.argsort(np.abs(w_in), kind="stable")[-k:]
    dst = np.argsort(np.abs(w_out), kind="stable")[-k:]
    conns = [empty] * len(weights)
    conns[layer] = (src, np.full(len(src), j), w_in[src])
    conns[layer + 1] = (np.full(len(dst), j), dst, w_out[dst])
    return conns


# ------------------------------------------------------------------ weights stamps
@dataclass(frozen=True)
class WeightsStamp:
    """Which weights a number belongs to: the worker's publication counter and the
    training position at which it published them."""
    version: int = 0
    epoch: int = 0               # completed epochs
    batch: int = 0               # batches done in the current epoch

    def describe(self):
        return describe_position(self.epoch, self.batch)

    def weights(self):
        """These weights in words: 'the untrained weights', 'the weights after epoch 2',
        'the weights at epoch 3, batch 40'."""
        where = self.describe()
        if where == "untrained":
            return "the untrained weights"
        return f"the weights {where}" if where.startswith("after") else f"the weights at {where}"


@dataclass(frozen=True)
class View:
    """The digit on screen under one weights snapshot: everything the network column,
    the output column, the panel and the film strip say about it."""
    stamp: WeightsStamp
    x: np.ndarray                # (784,) float32 input
    acts: list                   # [x, h1, ..., probs], 1-D each
    probs: np.ndarray            # (10,)
    pred: int                    # -1: nothing to predict (empty canvas)
    explained: int               # the class the lines and maps explain (the prediction unless chosen)
    conns: list                  # per layer pair (src, dst, value)
    saliency: np.ndarray | None  # (784,) pixel map when G is on: relevance, or d logit / d pixel
    coverage: list | None = None             # relevance mode: share of each pair's relevance the lines carry
    relevance: lrp.Relevance | None = None   # relevance of the explained class (relevance mode)
    contrast: int | None = None              # explained rather than this class (z_explained - z_contrast)
    learn: object = None                     # learning.LearnView: a view of learning (J, Y, step mode) or None

    def explains(self, names):
        """What the lines and maps explain, in words: "3" or "3 rather than 5"."""
        c = names[self.explained]
        return c if self.contrast is None else f"{c} rather than {names[self.contrast]}"


def compute_view(net, x, stamp, k, rank_mode, saliency=False, empty=False, explain=None, contrast=None):
    """The View of input x (784,): activations, prediction, the k lines per layer pair
    ranked by `rank_mode`, and the saliency of the explained class when asked; with
    `contrast` d, what is explained is z_explained - z_d (the class rather than d)."""
    with np.errstate(all="ignore"):            # a diverged model may overflow: draw it anyway
        acts = [np.nan_to_num(a, nan=0.0, posinf=1e30, neginf=-1e30)
                for a in net.forward(x, return_all=True)]
    probs = acts[-1]
    pred = -1 if empty else int(probs.argmax())
    explained = int(probs.argmax()) if explain is None else int(explain)
    contrast = None if contrast is None or int(contrast) == explained else int(contrast)
    rel = coverage = None
    if rank_mode == "relevance":
        with np.errstate(all="ignore"):
            rel = explain_relevance(net, x, explained, contrast)
        if rel is not None:
            conns, coverage = explain_top_edges(net, acts, rel, k)
    if rel is None:                            # other modes, or a blown-up network (no finite relevance)
        conns = strongest_connections(net.weights, acts[:-1], k, "weight" if rank_mode == "weight" else "contribution")
    sal = None
    if saliency:                               # "relevance" (or True) / "gradient": which pixel map
        if rel is not None and saliency != "gradient":
            sal = rel.neurons[0]
        else:                                  # d (z_c - z_d) / d pixel
            sal = net.input_gradient(x, explained)
            if contrast is not None:
                sal = sal - net.input_gradient(x, contrast)
    return View(stamp, x, acts, probs, pred, explained, conns, sal, coverage, rel, contrast)


def explain_relevance(net, x, target, contrast=None):
    """LRP relevance of class `target` (rather than `contrast`) for x, or None when it is
    not finite. The pixels use the z+ rule: only ink passes relevance on, so the lines
    run from the ink."""
    rel = lrp.relevance(net, x, target, contrast=contrast, input_rule="z+")
    return rel if all(np.isfinite(r).all() for r in rel.neurons) else None


def explain_top_edges(net, acts, rel, k):
    """The k most relevant edges per layer pair and the share of relevance they carry."""
    if k <= 0:
        empty = (np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32))
        return [empty] * net.n_layers, [0.0] * net.n_layers
    return lrp.top_edges(net, acts, rel, k)


class Predictions:
    """Test-set predictions for the window's *current* weights, computed on demand and
    cached until the weights change: the film strip's frames, M and the filters' landing
    digits all ask here, so they agree with the output column by construction."""

    def __init__(self, net, x_test):
        self.net, self.x_test = net, x_test
        self.known = np.full(len(x_test), -1, np.int16)       # -1 = not computed yet
        self.stamp = None

    def reset(self, stamp):
        if stamp != self.stamp:
            self.known.fill(-1)
            self.stamp = stamp

    def __call__(self, indices):
        """Predicted classes (len(indices),) under the current weights."""
        indices = np.asarray(indices, np.int64)
        missing = indices[self.known[indices] < 0]
        if len(missing):
            with np.errstate(all="ignore"):
                self.known[missing] = self.net.predict(self.x_test[missing])
        return self.known[indices].astype(np.int64)


@dataclass(frozen=True)
class Pass:
    """A completed pass of the whole test set under one weights snapshot (read-only arrays)."""
    stamp: WeightsStamp
    predictions: np.ndarray      # (N,) int16
    dead: list                   # per hidden layer: bool (n,) never active on the test set
    confusion: np.ndarray        # (10, 10) rows true
    stats: neurons.NeuronStats | None = None   # each neuron's top digits and prototype
    preferred: list | None = None              # per hidden layer (n,): the class each neuron supports most

    @property
    def accuracy(self):
        return float(np.trace(self.confusion) / max(self.confusion.sum(), 1))


class WindowPass:
    """The window's pass over the test set: re-predicts every test digit a slice at a time
    (in the frame's idle time) on a frozen copy of the weights, so each completed `Pass`
    belongs to one snapshot. It records which hidden neurons were ever active (the rest
    are drawn as dead)."""

    def __init__(self, net_factory, x_test, y_test):
        self.net = net_factory()                # private network: weights frozen per pass
        self.x_test, self.y_test = x_test, y_test
        self.result = None                      # the last completed Pass
        self.stamp = None                       # weights of the pass under way (None: idle)
        self.pos = 0
        self.want_preferred = False             # also find each neuron's class (about 60 ms) at the end
        self.want_stats = False                 # also gather neuron portraits (doubles a pass's cost)
        self._buffer = []                       # (x, hidden acts, indices) not yet in the statistics

    def needs_pass(self, stamp):
        """Whether a pass should start for these weights: none of them yet, or the last
        one lacks what is now wanted (portraits, preferred classes)."""
        if self.busy:
            return False
        r = self.result
        return r is None or r.stamp != stamp or (self.want_stats and r.stats is None) \
            or (self.want_preferred and r.preferred is None)

    def start(self, weights, biases, stamp):
        """Begin a pass over these weights (copied)."""
        self.net.set_params(weights, biases)
        self.stamp, self.pos = stamp, 0
        self._preds = np.zeros(len(self.y_test), np.int16)
        self._seen = [np.zeros(n, bool) for n in self.net.sizes[1:-1]]
        self._stats = neurons.NeuronStats(tuple(self.net.sizes[1:-1])) if self.want_stats else None
        self._buffer = []

    @property
    def busy(self):
        return self.stamp is not None

    def step(self, chunk=32):
        """Predict the next chunk; returns True when this completed a pass."""
        if self.stamp is None:
            return False
        end = min(self.pos + chunk, len(self.y_test))
        xb = to_float(self.x_test[self.pos:end])
        with np.errstate(all="ignore"):
            acts = self.net.forward(xb, return_all=True)
        self._preds[self.pos:end] = acts[-1].argmax(axis=1)
        for seen, a in zip(self._seen, acts[1:-1]):
            seen |= (a > 0).any(axis=0)
        if self._stats is not None:
            self._buffer.append((xb, acts[1:-1], np.arange(self.pos, end)))
        self.pos = end
        if self._buffer and (sum(len(b[2]) for b in self._buffer) >= 128 or self.pos >= len(self.y_test)):
            self._stats.update(np.concatenate([b[0] for b in self._buffer]),        # in blocks: the top-k
                               [np.concatenate(h) for h in zip(*[b[1] for b in self._buffer])],  # merge costs
                               np.concatenate([b[2] for b in self._buffer]))       # per block, not per row
            self._buffer = []
        if self.pos < len(self.y_test):
            return False
        conf = confusion_matrix(self.y_test, self._preds)
        preferred = None
        if self.want_preferred:
            with np.errstate(all="ignore"):
                rates = self._stats.on_rates() if self._stats is not None else None   # how often each is on
                preferred = neurons.preferred_class(self.net, on_rates=rates)
        for stats_array in ([] if self._stats is None else self._stats.arrays()):
            stats_array.flags.writeable = False              # a finished pass never changes: drawn as it is
        self.result = Pass(self.stamp, _frozen(self._preds), [_frozen(~s) for s in self._seen], _frozen(conf),
                           self._stats, None if preferred is None else [_frozen(p) for p in preferred])
        self.stamp = None
        return True

    def finish(self):
        while self.busy:
            self.step(2000)


class RepresentationMap:
    """A 2-D map (PCA) of one hidden layer's activations for a fixed, class-balanced set
    of test digits, rebuilt a slice at a time on a frozen copy of the weights and aligned
    with the previous map, so points move as the network learns rather than flip."""

    def __init__(self, net_factory, x_test, y_test, n=MAP_DIGITS, chunk=128):
        self.net = net_factory()
        self.x_test, self.y_test, self.chunk = x_test, y_test, chunk
        self.subset = projection.balanced_subset(y_test, n)           # (n,) test indices
        self.layer = None                  # hidden layer being mapped (None: the map is closed)
        self.points = None                 # (n, 2) of the last complete map
        self.predictions = None            # (n,) predicted classes of the subset under those weights
        self.stamp = None                  # weights of the last complete map
        self._building = None              # (stamp, layer) of the build under way
        self._transform = None             # (mean (d,), A (d, 2), shift (2,)): hidden -> map

    def start(self, weights, biases, stamp, layer):
        if self._building is not None or (stamp, layer) == (self.stamp, self.layer):
            return
        self.net.set_params(weights, biases)
        if layer != self.layer:
            self.points = None                                       # another layer: no alignment
        self._building, self.layer = (stamp, layer), layer
        self._pos, self._acts, self._preds = 0, [], []

    @property
    def busy(self):
        return self._building is not None

    def step(self):
        """Project the next chunk; returns True when this completed a map."""
        if self._building is None:
            return False
        idx = self.subset[self._pos:self._pos + self.chunk]
        with np.errstate(all="ignore"):
            acts = self.net.forward(to_float(self.x_test[idx]), return_all=True)
        self._acts.append(acts[self.layer + 1])
        self._preds.append(acts[-1].argmax(axis=1))
        self._pos += len(idx)
        if self._pos < len(self.subset):
            return False
        X = np.nan_to_num(np.concatenate(self._acts), copy=False)                 # (n, d) float32
        self._acts = []
        Y, *self._transform = projection.pca_2d_fit(X, previous=self.points)         # (n, 2); the map of any row
        self.points, self.predictions = Y, np.concatenate(self._preds)
        self.stamp, self._building = self._building[0], None
        return True

    @property
    def done(self):
        """How much of the map under way is built (0 when none is)."""
        return self._pos / len(self.subset) if self._building is not None else 0.0

    @property
    def can_project(self):
        """Whether a map is complete, so `project` can place a digit on it."""
        return self._transform is not None

    def project(self, hidden):
        """Map position (2,) of one digit's activations of the mapped layer (d,)."""
        mean, A, shift = self._transform
        return ((np.asarray(hidden, np.float64) - mean) @ A + shift).astype(np.float32)



def _frozen(array):
    array.flags.writeable = False
    return array


def describe_position(epoch, batch):
    """Where training stood: 'untrained', 'after epoch 2' or 'epoch 3, batch 40'."""
    if batch == 0:
        return "untrained" if epoch == 0 else f"after epoch {epoch}"
    return f"epoch {epoch + 1}, batch {batch}"


def rank_label(mode):
    return {"relevance": "relevance (LRP)", "contribution": "|activation x weight|", "weight": "|weight|"}[mode]


EASE_STEP = 0.35                  # per-frame step of the display towards new activations (about 6 frames)


def ease(shown, view, snap):
    """Move the displayed activations and probabilities in `shown` a step towards the
    view's (all the way when snap); returns True while they still move."""
    targets = {"probs": view.probs}
    for i, a in enumerate(view.acts[1:-1]):
        peak = a.max()
        # brightness = positive activation (tanh can go negative); sqrt keeps faint activity visible
        targets[("hidden", i)] = np.sqrt(np.clip(a, 0, None) / peak) if peak > 0 else np.zeros_like(a)
    moving = False
    for key, target in targets.items():
        current = shown.get(key)
        if snap or current is None or current.shape != target.shape:
            shown[key] = target.astype(np.float32)
            continue
        diff = target - current
        if np.abs(diff).max() > 2e-3:
            current += diff * EASE_STEP
            moving = True
        else:
            current[...] = target
    return moving
