"""Training health: `HealthMonitor`, the observer of the training loop that measures, every
`every` batches, per layer pair: the gradient norm, the update/weight ratio, the share of
ReLUs off on the batch, and the weights' and activations' distributions as percentile
bands (history.HealthRecord, kept in the run's history); `health_warnings`, the plain
words a view or the terminal says when those numbers are off.

Where the numbers come from, without slowing the step (MLP.train_step and the optimizers
are not touched; SGD and momentum never even write a gradient array): before a sampled
step the weights are copied (steps.WeightsCopy, ~0.1 ms); after it, dw = weights after -
the copy gives the update ratio exactly as applied, and one forward and backward pass of
the batch just trained (its inputs as trained, augmentation included) under the copied
weights gives the step's gradient and the activations: the same numbers the step used,
except that no dropout mask is applied (the step's mask is not kept). The bands are
percentiles of at most BAND_SAMPLE values per layer (a fixed random subset, within 0.5 % of
the 7th-93rd percentile spread of the exact ones; min and max are exact): exact percentiles
of the 800 k first-layer weights would cost ~18 ms, these ~1 ms.
bench/bench_health.py measures what it all costs (budget: 3 % of the training throughput).

Imports NumPy, `explain.backward`, the loop's Observer, `history` and `steps`.
"""
from __future__ import annotations

import math
import time

import numpy as np

from mnist_live.explain.backward import backward_batch
from mnist_live.training.history import PERCENTILES, HealthRecord, LayerHealth
from mnist_live.training.loop import Observer
from mnist_live.training.steps import WeightsCopy, norm

HEALTH_EVERY = 100            # batches between measurements (the default network: ~1 s headless)
EARLY = (1, 3, 10, 30)        # and these batches, where training changes fastest
BAND_SAMPLE = 65536           # values a layer's percentile band is computed from

# Warnings (health_warnings), from the default network learning MNIST for an epoch
# (bench/README.md, "Training health": the figures and the command). The update ratio
# ||dw|| / ||w|| per step: ~1e-3 is the common rule of thumb; healthy runs (Adam 1e-3, SGD
# 0.1, momentum 0.05) stay below 0.022 in the hidden layers (Adam's first steps move every
# weight by ~lr) and their output layer's few small weights below 0.03; runs whose rate is
# too high (Adam 1e-2, SGD 1.0, 3.0) reach 0.05-1 in the first batches. Too low: SGD 1e-4
# (12 % after an epoch) is at 3e-6, Adam 1e-5 (80 %) at 1e-4; healthy runs stay above 5e-4
# while their rate is over half its peak (a schedule's tail is slow by design). Dead ReLUs:
# healthy runs have 0-13 % of a hidden layer off for a whole batch, Adam 1e-2 has 80 % of
# Hidden 1 and SGD 1.0 30 %.
RATIO_HIGH = 0.03             # on the two newest records (a hidden layer; the output layer's: x3)
RATIO_EXTREME = 0.1           # on the newest alone (x3 for the output layer)
RATIO_LOW = 2e-4              # while the learning rate is at least half its peak
SILENT_HIGH = 0.25            # share of a hidden layer off for every digit of the batch
USUAL_RATIO = (RATIO_LOW, RATIO_HIGH)   # the band a plot of the update ratio shades: no warning inside it


_PICKS = {}                   # (size, sample) -> the indices band() takes


def band(values, sample=BAND_SAMPLE):
    """PERCENTILES of `values` as a tuple of floats: min and max exact, the rest from a fixed
    random subset of at most `sample` values (the same subset for every call of a size)."""
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        return tuple(float("nan") for _ in PERCENTILES)
    lo, hi = float(flat.min()), float(flat.max())
    if flat.size > sample:
        picks = _PICKS.get((flat.size, sample))
        if picks is None:
            picks = _PICKS[(flat.size, sample)] = np.sort(np.random.default_rng(0).choice(flat.size, sample, False))
        flat = flat[picks]
    inner = np.percentile(flat, PERCENTILES[1:-1])
    return (lo, *(float(v) for v in inner), hi)


def is_due(step, every=HEALTH_EVERY):
    """Whether the weights after batch `step` (counted over the whole run, from 1) are measured."""
    return every > 0 and step > 0 and (step % every == 0 or (step in EARLY and step < every))


class HealthMonitor(Observer):
    """Measures training health every `every` batches (and at batches 1, 3, 10, 30), adds each
    HealthRecord to the trainer's history and hands it to `send` (the window's training
    process sends it to the window); `log` says each new warning once (the terminal).
    `min_gap_s`: skip a due batch that comes sooner than this after the last measurement
    (the window: a small network trains thousands of batches a second)."""

    def __init__(self, every=HEALTH_EVERY, send=None, log=None, min_gap_s=0.0):
        self.every, self.send, self.log, self.min_gap_s = int(every), send, log, float(min_gap_s)
        self._last = -float("inf")
        self.copy = WeightsCopy()
        self.busy_s = 0.0            # seconds spent measuring (the benchmark reads it)
        self._due = False
        self._said = set()

    @staticmethod
    def _step(t):
        return t.epoch * t.n_batches + t.position[1]

    def before_batch(self, run):
        t = run.trainer
        t0 = time.perf_counter()
        self._due = is_due(self._step(t) + 1, self.every) and t0 - self._last >= self.min_gap_s
        if self._due:
            self._last = t0
            self.copy.take(t.net, t.position)
            self.busy_s += time.perf_counter() - t0

    def on_batch(self, run, stats):
        if not self._due or stats.diverged:
            return
        t0 = time.perf_counter()
        t = run.trainer
        with np.errstate(all="ignore"):          # weights blowing up: the record says so, no warnings
            rec = measure(t.net, self.copy, t.last_batch, t.config.weight_decay, (t.progress, *t.position), stats.lr)
        t.history.add_health(rec)
        self.busy_s += time.perf_counter() - t0
        if self.send is not None:
            self.send(rec)
        if self.log is not None:
            for key, line in keyed_warnings(t.history.health):
                if key not in self._said:                # the same warning with other numbers: said once
                    self._said.add(key)
                    self.log(f"training health: {line}")


def measure(net, before: WeightsCopy, batch, weight_decay, at, lr) -> HealthRecord:
    """The HealthRecord of a step: `net` holds the weights after it, `before` those before it,
    `batch` is (indices, inputs as trained (B, 784) float32, classes (B,)); `at` is
    (progress, epoch, batch) after the step. `before` holds dw afterwards."""
    _, xb, yb = batch
    before_net = before.as_net(net)
    acts, deltas = backward_batch(before_net, xb, yb)            # [x, h1, ..., probs], [d_h1, ..., d_out]
    relu = net.activation == "relu"
    B, layers = len(yb), []
    norms = before.norms()
    grad_norms = []
    for i, d in enumerate(deltas):
        g = acts[i].T @ d                                          # (fan_in, B) @ (B, fan_out)
        g *= 1.0 / B
        if weight_decay:
            g += weight_decay * before.weights[i]
        grad_norms.append(norm(g))
    logits = acts[-2] @ before.weights[-1] + before.biases[-1]   # (B, 10): the last layer before softmax
    before.delta_from(net)
    for i, W in enumerate(net.weights):
        d_norm = norm(before.weights[i])
        out = acts[i + 1] if i < net.n_layers - 1 else logits
        hidden = i < net.n_layers - 1 and relu
        off = out == 0 if hidden else None
        layers.append(LayerHealth(grad_norms[i], d_norm / norms[i] if norms[i] > 0 else math.nan,
                                  float(off.mean()) if hidden else math.nan,
                                  float(off.all(axis=0).mean()) if hidden else math.nan,
                                  band(W), band(out)))
    progress, epoch, batch_no = at
    return HealthRecord(float(progress), int(epoch), int(batch_no), float(lr), tuple(layers))


def series(records, layer, name):
    """One figure of layer pair `layer` over `records` (oldest first), for a plot: (progress
    (N,) float64, values (N,) float64), or (N, 9) for the bands "weights" and "activations".
    `name` is a LayerHealth field: grad_norm, update_ratio, inactive, silent, weights, activations."""
    progress = np.array([r.progress for r in records], np.float64)
    values = np.array([getattr(r.layers[layer], name) for r in records], np.float64)
    if name in ("weights", "activations"):
        values = values.reshape(len(records), len(PERCENTILES))
    return progress, values


def layer_names(n_layers):
    """The layers a pair feeds: 'Hidden 1', 'Hidden 2', ..., 'Output'."""
    return [f"Hidden {i + 1}" for i in range(n_layers - 1)] + ["Output"]


def _one_in(r):
    return f"1/{1 / r:,.0f}" if r < 0.5 else f"{r:.2g}x"


def _too_high(records, i):
    """The newest update ratio of pair i when it is too high (RATIO_*), else None."""
    scale = 3.0 if i == len(records[-1].layers) - 1 else 1.0
    r = records[-1].layers[i].update_ratio
    before = records[-2].layers[i].update_ratio if len(records) > 1 else 0.0
    return r if r > RATIO_EXTREME * scale or min(r, before) > RATIO_HIGH * scale else None


def keyed_warnings(records, names=None):
    """health_warnings with a key each: [((kind, layer pair), text)], the key the same for
    the same warning whatever its numbers (the terminal says each once)."""
    if not records:
        return []
    rec = records[-1]
    names = names or layer_names(len(rec.layers))
    peak_lr = max(r.lr for r in records)
    out = []
    for i, (layer, name) in enumerate(zip(rec.layers, names)):
        r = layer.update_ratio
        if _too_high(records, i):
            out.append((("high", i), f"updates into {name} are {_one_in(r)} of the weights (about 1/1,000 is "
                                     f"usual): learning rate too high?"))
        elif 0 < r < RATIO_LOW and rec.lr >= 0.5 * peak_lr:
            out.append((("low", i), f"updates into {name} are {_one_in(r)} of the weights (about 1/1,000 is "
                                    f"usual): learning rate too low?"))
        if layer.silent >= SILENT_HIGH:
            out.append((("silent", i), f"{100 * layer.silent:.0f} % of {name} never fires on a whole batch: those "
                                       f"neurons no longer learn (learning rate too high?)"))
    return out


def all_is_well(records):
    """What the health view says when there is no warning, in words true of the newest record:
    its update ratios inside the shaded band, or, when some fell under it only because the
    learning rate is below half its peak (a schedule's tail), that."""
    rec = records[-1]
    ratios = [layer.update_ratio for layer in rec.layers if layer.update_ratio > 0]
    if all(USUAL_RATIO[0] <= r <= USUAL_RATIO[1] for r in ratios):
        return "no warnings: the figures are within their usual ranges"
    peak_lr = max(r.lr for r in records)
    if any(r < USUAL_RATIO[0] for r in ratios) and rec.lr < 0.5 * peak_lr:
        return (f"no warnings: the update ratio is under the shaded band because the learning rate is "
                f"{100 * rec.lr / peak_lr:.0f} % of its peak (the schedule lowers it)")
    return "no warnings"


def health_warnings(records, names=None):
    """Plain-words warnings about the newest of `records` (history.HealthRecord, oldest
    first; the earlier ones give the context), at most one per kind and layer; [] when all
    is well. `names`: the layers the pairs feed (default layer_names)."""
    return [text for _, text in keyed_warnings(records, names)]
