"""What the window shows, computed without pygame: the window's state, the training
telemetry mirrored from the worker, browsing, and the numbers behind every mark.

Everything here is plain NumPy, so browsing, filters, connection ranking and the
telemetry are unit-tested without a display. `visualization.py` owns the loop and the
pygame regions in `regions.py` draw what this module computes.

One truth per frame: a `View` is computed for one weights snapshot (`WeightsStamp`) and
one digit, and every region that speaks of "the digit on screen" or "right / wrong now"
reads it (or asks `Predictions`, which answers for the same snapshot). Numbers that come
from elsewhere (a worker evaluation, the window's last full test-set pass) carry their
own stamp and are labelled with it.
"""
from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

import explain
from messages import (
    BatchReport,
    DigitHistory,
    EvalReport,
    Finished,
    Notice,
    Position,
    RunHistory,
    Saved,
    TrainerFailed,
)
from utils import confusion_matrix

SPEEDS = (0.0, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)   # seconds slept per batch ([ and ])
K_STEPS = (0, 5, 10, 20, 30, 60, 100, 200, 500, 1000, 2000, 5000)
CANVAS = 280                      # drawing canvas resolution (10x MNIST)
RATE_WINDOW_S = 2.0               # samples/s is measured over this much wall time
MAX_CURVE = 5000                  # points kept per curve (older ones are thinned)
MAX_DIGIT_HISTORIES = 64          # digits whose history over the snapshots is kept (the trainer resends)
RANK_MODES = ("relevance", "contribution", "weight")   # C cycles the line modes


# ----------------------------------------------------------------------- analysis
def strongest_connections(weights, acts, k, mode="contribution"):
    """For each layer pair, the k strongest connections as (src, dst, signed value),
    weakest first (so the strongest are drawn on top).

    contribution: |a_src * w| for the sample on screen (what drives *this* prediction);
    weight: |w| alone. weights[i] is (fan_in, fan_out), acts[i] is (fan_in,)."""
    empty = (np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32))
    out = []
    for W, a in zip(weights, acts):
        if mode == "contribution":
            src_pool = np.flatnonzero(a)                       # inactive sources contribute 0
            values = a[src_pool, None] * W[src_pool]          # (n_active, fan_out)
        else:
            src_pool = np.arange(W.shape[0])
            values = W
        flat = np.abs(values).ravel()
        kk = min(k, flat.size)
        if kk <= 0:
            out.append(empty)
            continue
        top = np.argpartition(flat, flat.size - kk)[flat.size - kk:]
        top = top[np.argsort(flat[top], kind="stable")]
        rows, cols = np.divmod(top, values.shape[1])
        out.append((src_pool[rows], cols, values.ravel()[top].astype(np.float32)))
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


@dataclass
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
    relevance: object = None                 # explain.Relevance of the explained class (relevance mode)
    contrast: int | None = None              # explained rather than this class (z_explained - z_contrast)

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
    if saliency:
        if rel is not None:
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
    rel = explain.relevance(net, x, target, contrast=contrast, input_rule="z+")
    return rel if all(np.isfinite(r).all() for r in rel.neurons) else None


def explain_top_edges(net, acts, rel, k):
    """The k most relevant edges per layer pair and the share of relevance they carry."""
    if k <= 0:
        empty = (np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32))
        return [empty] * net.n_layers, [0.0] * net.n_layers
    return explain.top_edges(net, acts, rel, k)


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


@dataclass
class Pass:
    """A completed pass of the whole test set under one weights snapshot."""
    stamp: WeightsStamp
    predictions: np.ndarray      # (N,) int16
    dead: list                   # per hidden layer: bool (n,) never active on the test set
    confusion: np.ndarray        # (10, 10) rows true
    stats: object = None         # explain.NeuronStats: each neuron's top digits and prototype
    preferred: list = None       # per hidden layer (n,): the class each neuron supports most

    @property
    def accuracy(self):
        return float(np.trace(self.confusion) / max(self.confusion.sum(), 1))


class Sweep:
    """Re-predicts the whole test set a slice at a time (in the frame's idle time) on a
    frozen copy of the weights, so each completed `Pass` belongs to one snapshot. It
    records which hidden neurons were ever active (the rest are drawn as dead)."""

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
        for dst, src in zip(self.net.weights + self.net.biases, weights + biases):
            np.copyto(dst, src)
        self.stamp, self.pos = stamp, 0
        self._preds = np.zeros(len(self.y_test), np.int16)
        self._seen = [np.zeros(n, bool) for n in self.net.sizes[1:-1]]
        self._stats = explain.NeuronStats(tuple(self.net.sizes[1:-1])) if self.want_stats else None
        self._buffer = []

    @property
    def busy(self):
        return self.stamp is not None

    def step(self, chunk=32):
        """Predict the next chunk; returns True when this completed a pass."""
        if self.stamp is None:
            return False
        end = min(self.pos + chunk, len(self.y_test))
        xb = self.x_test[self.pos:end].astype(np.float32) * np.float32(1 / 255)
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
                preferred = explain.preferred_class(self.net, on_rates=rates)
        self.result = Pass(self.stamp, self._preds, [~s for s in self._seen], conf, self._stats, preferred)
        self.stamp = None
        return True

    def finish(self):
        while self.busy:
            self.step(2000)


class RepresentationMap:
    """A 2-D map (PCA) of one hidden layer's activations for a fixed, class-balanced set
    of test digits, rebuilt a slice at a time on a frozen copy of the weights and aligned
    with the previous map, so points move as the network learns rather than flip."""

    def __init__(self, net_factory, x_test, y_test, n=2000, chunk=128):
        self.net = net_factory()
        self.x_test, self.y_test, self.chunk = x_test, y_test, chunk
        self.subset = explain.balanced_subset(y_test, n)           # (n,) test indices
        self.layer = None                  # hidden layer being mapped (None: the map is closed)
        self.points = None                 # (n, 2) of the last complete map
        self.predictions = None            # (n,) predicted classes of the subset under those weights
        self.stamp = None                  # weights of the last complete map
        self._building = None              # (stamp, layer) of the build under way
        self._transform = None             # (mean (d,), A (d, 2), shift (2,)): hidden -> map

    def start(self, weights, biases, stamp, layer):
        if self._building is not None or (stamp, layer) == (self.stamp, self.layer):
            return
        for dst, src in zip(self.net.weights + self.net.biases, weights + biases):
            np.copyto(dst, src)
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
            acts = self.net.forward(self.x_test[idx].astype(np.float32) * np.float32(1 / 255), return_all=True)
        self._acts.append(acts[self.layer + 1])
        self._preds.append(acts[-1].argmax(axis=1))
        self._pos += len(idx)
        if self._pos < len(self.subset):
            return False
        X = np.nan_to_num(np.concatenate(self._acts), copy=False)                 # (n, d) float32
        self._acts = []
        Y, *self._transform = explain.pca_2d_fit(X, previous=self.points)         # (n, 2); the map of any row
        self.points, self.predictions = Y, np.concatenate(self._preds)
        self.stamp, self._building = self._building[0], None
        return True

    def project(self, hidden):
        """Map position (2,) of one digit's activations of the mapped layer (d,)."""
        mean, A, shift = self._transform
        return ((np.asarray(hidden, np.float64) - mean) @ A + shift).astype(np.float32)


# ----------------------------------------------------------------------- telemetry
@dataclass
class Evaluation:
    """The most recent evaluation the worker reported, labelled with what it covered."""
    kind: str                    # "full" (whole test set) or "subset"
    accuracy: float
    per_class: np.ndarray        # (10,)
    confusion: np.ndarray        # (10, 10)
    n: int                       # test digits evaluated
    epoch: int
    batch: int
    progress: float              # epochs done as a float

    def label(self):
        what = "full test set" if self.kind == "full" else f"{self.n:,}-digit subset"
        return f"{what}, {describe_position(self.epoch, self.batch)}"


@dataclass
class Telemetry:
    """The training process as the window knows it, mirrored from its typed reports."""
    epoch: int = 0               # completed epochs
    batch: int = 0
    n_batches: int = 1
    lr: float = 0.0
    train_acc: float = 0.0
    paused: bool = False         # the worker acknowledged a pause
    finished: bool = False
    diverged: str = ""
    failed: str = ""             # the training process stopped (why)
    trained_here: bool = False   # a batch was trained in this session
    latest: Evaluation | None = None                    # newest evaluation of any kind
    last: dict = field(default_factory=dict)            # kind -> its newest evaluation
    previous: dict = field(default_factory=dict)        # kind -> the evaluation before it
    loss_curve: list = field(default_factory=list)      # (progress, loss)
    acc_curve: list = field(default_factory=list)       # (progress, accuracy), full test set
    subset_curve: list = field(default_factory=list)    # (progress, accuracy), subset
    evals: list = field(default_factory=list)           # (progress, kind, accuracy, per_class (10,)) per evaluation
    lr_changes: list = field(default_factory=list)      # (progress, new lr) where the user steered
    snapshots: list = field(default_factory=list)       # (epoch, batch, progress) the trainer can rewind to
    digit_histories: dict = field(default_factory=dict)  # test index -> [(progress, pred, p_true)] per snapshot
    rate_samples: deque = field(default_factory=lambda: deque(maxlen=400))  # (time, samples trained)
    full_speed_rates: deque = field(default_factory=lambda: deque(maxlen=2000))
    saved_path: str = ""
    version: int = 0             # bumped by every report (regions redraw when it changes)

    def samples_per_s(self, now=None):
        """Samples actually trained per second of wall time over the last few seconds
        (slow motion shows its real rate; 0 when nothing was trained lately)."""
        now = time.monotonic() if now is None else now
        pts = self.rate_samples                       # (worker time, samples trained so far)
        if len(pts) < 2:
            return 0.0
        t1, s1 = pts[-1]
        gap = t1 - pts[-2][0]
        if now - t1 > max(RATE_WINDOW_S, 1.5 * gap):
            return 0.0
        i = len(pts) - 2                              # the earliest report within the window
        while i > 0 and t1 - pts[i - 1][0] <= RATE_WINDOW_S:
            i -= 1
        t0, s0 = pts[i]
        return (s1 - s0) / max(t1 - t0, 1e-9)

    def apply(self, msg, now=None, full_speed=True):
        """Fold one report from the training process into the telemetry; returns a
        message for the user, or None."""
        now = time.monotonic() if now is None else now
        self.version += 1
        if isinstance(msg, BatchReport):
            self.epoch, self.batch, self.n_batches = msg.epoch, msg.batch, msg.n_batches
            self.lr, self.train_acc, self.trained_here = msg.lr, msg.accuracy, True
            if self.rate_samples and full_speed and not self.paused:
                t0, s0 = self.rate_samples[-1]
                if msg.time > t0 and msg.samples > s0:
                    self.full_speed_rates.append((msg.samples - s0) / (msg.time - t0))
            self.rate_samples.append((msg.time, msg.samples))
            _append(self.loss_curve, (msg.epoch + msg.batch / msg.n_batches, msg.loss))
            if msg.batch >= msg.n_batches:                      # the epoch is complete
                self.epoch, self.batch = msg.epoch + 1, 0
        elif isinstance(msg, EvalReport):
            ev = Evaluation(msg.kind, msg.accuracy, np.asarray(msg.per_class, np.float64),
                            np.asarray(msg.confusion), int(np.sum(msg.confusion)), msg.epoch, msg.batch,
                            msg.progress)
            if msg.kind in self.last:
                self.previous[msg.kind] = self.last[msg.kind]
            self.latest = self.last[msg.kind] = ev
            _append(self.acc_curve if msg.kind == "full" else self.subset_curve, (msg.progress, msg.accuracy))
            _append(self.evals, (msg.progress, msg.kind, msg.accuracy, ev.per_class))
        elif isinstance(msg, RunHistory):
            self.take_history(msg)
        elif isinstance(msg, DigitHistory):
            self.digit_histories.pop(msg.index, None)
            self.digit_histories[msg.index] = (len(self.snapshots), msg.rows)
            while len(self.digit_histories) > MAX_DIGIT_HISTORIES:       # the oldest answers go first
                del self.digit_histories[next(iter(self.digit_histories))]
        elif isinstance(msg, Position):
            self.epoch, self.batch, self.paused = msg.epoch, msg.batch, msg.paused
        elif isinstance(msg, Finished):
            self.finished, self.epoch, self.batch = True, msg.epoch, 0
            return f"training finished after {msg.epoch} epochs"
        elif isinstance(msg, Saved):
            self.saved_path = msg.path
            return f"model saved to {msg.path}"
        elif isinstance(msg, TrainerFailed):
            if msg.diverged:
                self.diverged, self.paused = msg.text, True
            else:
                self.failed = msg.text
            return msg.text
        elif isinstance(msg, Notice):
            return msg.text
        return None

    def take_history(self, msg):
        """The trainer's own record of the run (also what a loaded model file carried): it
        replaces the curves, so a loaded model shows its whole past."""
        h = msg.history
        evals = [(e["progress"], e["kind"], e["accuracy"],
                  np.array([np.nan if v is None else v for v in e["per_class"]], np.float64)) for e in h["evals"]]
        self.evals = evals
        self.acc_curve = [(q, a) for q, k, a, _ in evals if k == "full"]
        self.subset_curve = [(q, a) for q, k, a, _ in evals if k == "subset"]
        if h["loss"]:
            self.loss_curve = [tuple(p) for p in h["loss"]]
        self.lr_changes = [tuple(p) for p in h["lr_changes"]]
        self.snapshots = [tuple(s) for s in msg.snapshots]

    @property
    def last_full(self):
        """The newest evaluation on the whole test set, or None."""
        return self.last.get("full")

    def previous_per_class(self):
        """Per-class accuracy of the evaluation before the latest, of the same kind
        (compare like with like), or None."""
        if self.latest is None:
            return None
        prev = self.previous.get(self.latest.kind)
        return None if prev is None else prev.per_class


def _append(curve, point):
    curve.append(point)
    if len(curve) > MAX_CURVE:                   # bounded: keep every other old point
        del curve[1:MAX_CURVE // 2:2]


# --------------------------------------------------------------------- window state
class Overlay(enum.Enum):
    NONE = "none"
    HELP = "help"
    CONFUSION = "confusion"
    MAP = "map"


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
            return (self.y_test == t) & (preds == p)
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
            return lambda idx, pred: (self.y_test[idx] == t) & (pred == p)
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
            return "no more test digits match the filter" if self.filter_mask(predict).any() \
                else "no test digits match the filter"
        self.go(landed)
        return None

    def home_end(self, last, predict):
        mask = self.filter_mask(predict)
        if mask is None:
            self.go(self.n - 1 if last else 0)
            return None
        idx = np.flatnonzero(mask)
        if not len(idx):
            return "no test digits match the filter"
        self.go(idx[-1] if last else idx[0])
        return None

    def next_of_class(self, digit, predict):
        """Next test digit of true class `digit` (a mistake, when browsing mistakes)."""
        among = np.flatnonzero(self.y_test == digit)
        mistakes = self.mistakes_only
        i = self._scan(self._ring(1, among), (lambda idx, pred: pred != self.y_test[idx]) if mistakes
                       else (lambda idx, pred: np.ones(len(idx), bool)), predict)
        if i is None:
            return f"no {'misclassified ' if mistakes else ''}test digit of class {self.class_names[digit]}"
        self.go(i)
        return None

    def next_mistake(self, direction, predict):
        """Next (direction 1) or previous (-1) digit the current weights get wrong."""
        i = self._scan(self._ring(direction), lambda idx, pred: pred != self.y_test[idx], predict)
        if i is None:
            return "no misclassified test digits"
        self.go(i)
        return None

    def random(self, rng, predict):
        mask = self.filter_mask(predict)
        idx = np.arange(self.n) if mask is None else np.flatnonzero(mask)
        if not len(idx):
            return "no test digits match the filter"
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
        return "browsing all test digits"

    def choose_pair(self, true, pred, predict):
        """Browse exactly the digits of class `true` predicted as `pred` (a confusion cell)."""
        self.pair_filter, self.mistakes_only, self.overlay = (true, pred), False, Overlay.NONE
        mask = self.filter_mask(predict)
        idx = np.flatnonzero(mask)
        if len(idx):
            self.go(idx[0])
        else:
            self.touch()
        return (f"browsing {len(idx)} digits: true {self.class_names[true]}, predicted {self.class_names[pred]}"
                f" (Left/Right; F leaves the filter)")

    def filter_label(self):
        if self.pair_filter is not None:
            t, p = self.pair_filter
            return f"true {self.class_names[t]}, predicted {self.class_names[p]}"
        return "mistakes only" if self.mistakes_only else "all test digits"


@dataclass
class WindowState(Browsing):
    """What the person looking at the window has chosen: the digit, filters, overlays.
    Browsing methods take `predict(indices) -> classes` for the current weights and
    return a message for the user (or None)."""
    y_test: np.ndarray                               # (N,) int64 true classes
    class_names: tuple = tuple(str(d) for d in range(10))
    index: int = 0                                   # test digit on screen
    drawing: bool = False
    canvas: np.ndarray = field(default_factory=lambda: np.zeros((CANVAS, CANVAS), np.float32))
    k: int = 60
    rank_mode: str = "relevance"
    mistakes_only: bool = False
    pair_filter: tuple | None = None                 # (true, predicted) from the confusion matrix
    overlay: Overlay = Overlay.NONE
    saliency: bool = False
    explain_class: int | None = None                 # explain this class instead of the prediction
    contrast_class: int | None = None                # ... rather than this one (relevance of z_c - z_d)
    sorted_grids: bool = False                       # hidden grids ordered by preferred class
    atlas: bool = False                              # hidden grids show each neuron's prototype
    map_layer: int = -1                              # hidden layer of the representation map (-1: last)
    rewind: int | None = None                        # snapshot shown instead of the live weights
    class_chart: bool = False                        # per-class accuracy over time instead of bars
    dream: tuple | None = None                       # ("class", c) or ("neuron", layer, j) being dreamt
    hover: tuple | None = None                       # (hidden layer, neuron) under the pointer
    speed: int = 0                                   # index into SPEEDS
    pause_requested: bool = False
    running: bool = True
    toast: str = ""
    toast_until: float = 0.0
    version: int = 0                                 # bumped by every change the view depends on

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
        self.overlay = Overlay.NONE if self.overlay == overlay else overlay
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
        self.sorted_grids = not self.sorted_grids
        self.touch()
        return ("hidden neurons grouped by the class they support most" if self.sorted_grids
                else "hidden neurons in index order")

    def step_rewind(self, direction, snapshots, live_progress):
        """Step back (-1) or forward (+1) through the snapshots; forward past the newest
        returns to the live weights."""
        n = len(snapshots)
        if n == 0:
            return "no snapshots yet"
        if self.rewind is None:
            if direction > 0:
                return "already showing the live weights (, steps back)"
            older = [i for i, s in enumerate(snapshots) if s[2] < live_progress]
            self.rewind = older[-1] if older else 0
        elif direction < 0:
            self.rewind = max(0, self.rewind - 1)
        elif self.rewind + 1 < n:
            self.rewind += 1
        else:
            self.rewind = None
        self.touch()
        if self.rewind is None:
            return "back to the live weights"
        epoch, batch, _ = snapshots[self.rewind]
        return f"rewound to snapshot {self.rewind + 1} of {n}: {describe_position(epoch, batch)}"

    def cycle_map(self, n_hidden):
        """P: the map of the last hidden layer, then of each earlier one, then closed."""
        if self.overlay is not Overlay.MAP:
            self.overlay, self.map_layer = Overlay.MAP, n_hidden - 1
        elif self.map_layer > 0:
            self.map_layer -= 1
        else:
            self.overlay = Overlay.NONE
        self.touch()
        return f"map of hidden layer {self.map_layer + 1}" if self.overlay is Overlay.MAP else "map closed"

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
        return f"dreaming {what}: gradient ascent from a blank image (V or Esc returns)"

    def toggle_saliency(self):
        self.saliency = not self.saliency
        self.touch()

    def toggle_drawing(self):
        self.drawing = not self.drawing
        self.touch()
        return ("draw: left button draws, right erases, Backspace clears" if self.drawing
                else "back to the test images")

    def clear_canvas(self):
        if self.drawing:
            self.canvas[...] = 0
            self.touch()

    def paint(self, u, v, erase=False):
        """An anti-aliased round brush at canvas fraction (u, v) in [0, 1]."""
        cx, cy = u * CANVAS, v * CANVAS
        radius = CANVAS / 28 * 1.3
        ys, xs = np.ogrid[0:CANVAS, 0:CANVAS]
        d = np.sqrt((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2)
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


def describe_position(epoch, batch):
    """Where training stood: 'untrained', 'after epoch 2' or 'epoch 3, batch 40'."""
    if batch == 0:
        return "untrained" if epoch == 0 else f"after epoch {epoch}"
    return f"epoch {epoch + 1}, batch {batch}"


def rank_label(mode):
    return {"relevance": "relevance (LRP)", "contribution": "|activation x weight|", "weight": "|weight|"}[mode]
