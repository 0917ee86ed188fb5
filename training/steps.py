"""What the optimizer's steps change, captured where the training runs: `StepWatch`, an
observer of the training loop in the window's training process (training/process.py builds
it), and `WeightsCopy`, the weights kept from before a step.

Dw is measured as applied: a copy of the weights is taken right before a step, and after
the step dw = weights after - that copy (SGD, momentum and Adam, dropout and weight decay
alike: whatever the step did). A copy of the default network's 1.3 M weights costs ~0.1 ms
but summarizing dw ~1 ms per layer pair, so StepWatch does it only for sampled steps (every
`every`-th batch, at most every `min_gap_s` seconds), for every step the window asks to see
in detail (step mode, slow motion: `detailed()`), and once per span of at least `span`
batches and 5 x `min_gap_s` seconds for the change over the span. Each
captured step is sent as a messages.StepRecord, each span as a messages.UpdateSummary; the
last step's dw stays here for `inspect` (a tooltip's Command.INSPECT).

Imports NumPy, the network, `explain.backward` and `explain.edges`, the loop's Observer,
the messages and `update_rule`.
"""
from __future__ import annotations

import copy
import time

import numpy as np

from mnist_live.explain.backward import backward
from mnist_live.explain.edges import top_of_matrix
from mnist_live.neural_network import to_float
from mnist_live.training.loop import Observer
from mnist_live.training.messages import DigitStep, Inspection, StepRecord, UpdateSummary
from mnist_live.training.update_rule import rule_state

SAMPLE_EVERY = 25             # batches between sampled step records (live "last step" view)
SPAN = 50                     # batches of an UpdateSummary over several steps (at least)
MIN_GAP_S = 0.2               # and seconds at least between sampled records, and between summaries x 5: a
                              # small network trains thousands of batches a second, the window needs a few
TOP_K = 60                    # edges per layer pair in a summary (the window draws up to --connections)


def norm(a) -> float:
    """||a|| (Frobenius) of a float32 array: one BLAS dot (0.05 ms for the first layer's
    800 k weights, relative error ~1e-6; float64 accumulation would take 1.2 ms)."""
    flat = a.reshape(-1)
    return float(np.sqrt(np.dot(flat, flat)))


class WeightsCopy:
    """A copy of a network's weights and biases at a training position; its buffers are
    allocated once. `delta_from(net)` turns it into net's weights minus the copy, in place."""

    def __init__(self):
        self.weights = self.biases = None
        self.position = None     # (epoch, batch) of the copied weights
        self.is_delta = False    # True after delta_from: the buffers hold after - before

    def take(self, net, position):
        if self.weights is None:
            self.weights = [w.copy() for w in net.weights]
            self.biases = [b.copy() for b in net.biases]
        else:
            for dst, src in zip(self.weights + self.biases, net.weights + net.biases):
                np.copyto(dst, src)
        self.position, self.is_delta = tuple(position), False

    def as_net(self, net):
        """An MLP like `net` that computes with the copied weights (shares the buffers)."""
        view = copy.copy(net)
        view.weights, view.biases = self.weights, self.biases
        return view

    def norms(self):
        """||W|| per layer pair (float)."""
        return [norm(w) for w in self.weights]

    def delta_from(self, net):
        """Buffers := net's weights - buffers (the change since the copy), in place."""
        for buf, now in zip(self.weights + self.biases, net.weights + net.biases):
            np.subtract(now, buf, out=buf)
        self.is_delta = True


def summarize(delta: WeightsCopy, norms_before, after, steps, k=TOP_K) -> UpdateSummary:
    """The UpdateSummary of a change (a WeightsCopy after delta_from): its k largest edges
    per layer pair, each neuron's incoming change, the bias changes, ||dw|| / ||w||."""
    edges, shares, neuron_in, ratio = [], [], [], []
    for dW, w_norm in zip(delta.weights, norms_before):
        top, share = top_of_matrix(dW, k)
        edges.append(top)
        shares.append(share)
        col = np.sqrt(np.einsum("ij,ij->j", dW, dW))                   # (fan_out,) float32
        neuron_in.append(col)
        d_norm = norm(dW)
        ratio.append(d_norm / w_norm if w_norm > 0 else float("inf") if d_norm > 0 else 0.0)
    return UpdateSummary(delta.position, tuple(after), int(steps), edges, shares, neuron_in,
                         [b.copy() for b in delta.biases], ratio)


def sample_losses(net, x, y):
    """Each sample's cross-entropy (B,) float32 under net, no dropout; never below 0 (a float32
    softmax may give a sure class 1 + 1e-7, whose -log would be shown as -0.00)."""
    p = net.forward(x)[np.arange(len(y)), np.asarray(y, np.intp)]        # (B,)
    return (np.float32(0) - np.log(np.clip(p, np.float32(1e-30), np.float32(1.0)))).astype(np.float32)   # 0, not -0


class StepWatch(Observer):
    """Records what the optimizer's steps do (module docstring). `send(message)` delivers a
    StepRecord or UpdateSummary; `detailed()` says whether the coming step is to be recorded
    in detail (the window is in step mode or slow motion)."""

    def __init__(self, send, every=SAMPLE_EVERY, span=SPAN, k=TOP_K, detailed=lambda: False, min_gap_s=MIN_GAP_S):
        self.send, self.k, self.detailed = send, k, detailed
        self.every, self.span, self.min_gap_s = max(1, int(every)), max(1, int(span)), float(min_gap_s)
        self._last_sample = self._anchor_t = -float("inf")        # perf_counter of the last record / span start
        self._anchor_steps = 0
        self.before, self.anchor = WeightsCopy(), WeightsCopy()
        self.digit = None            # (x (784,) float32, class or None, token) of the watched digit
        self.seq = 0                 # StepRecords sent
        self.steps = 0               # batches trained in this session
        self._capture = self._detail = False
        self.last_step = None        # ((epoch, batch) before, after) of the step whose dw `before` holds
        self._anchor_norms = None
        self.busy_s = 0.0            # seconds spent capturing and summarizing (the benchmark reads it)

    def watch(self, pixels, label, token):
        """The digit on screen (uint8 (784,); label -1 or None: it has none); None: no digit."""
        if pixels is None:
            self.digit = None
            return
        pixels = np.asarray(pixels)
        if pixels.size != 784 or pixels.dtype != np.uint8:
            raise ValueError(f"a digit is 784 uint8 pixels, not {pixels.size} {pixels.dtype}")
        label = None if label is None or int(label) < 0 else int(label)
        self.digit = (to_float(pixels.reshape(784)), label, int(token))

    # ------------------------------------------------------------ the loop's observer
    def on_start(self, run):
        self._take_anchor(run.trainer)

    def _take_anchor(self, t):
        self.anchor.take(t.net, t.position)
        self._anchor_norms = self.anchor.norms()
        self._anchor_steps, self._anchor_t = self.steps, time.perf_counter()

    def before_batch(self, run):
        self._detail = bool(self.detailed())
        now = time.perf_counter()
        due = (self.steps + 1) % self.every == 0 and now - self._last_sample >= self.min_gap_s
        self._capture = self._detail or due
        if self._capture:
            self._last_sample = now
            t0 = time.perf_counter()
            self.before.take(run.trainer.net, run.trainer.position)
            self.busy_s += time.perf_counter() - t0

    def on_batch(self, run, stats):
        if stats.diverged:                       # nothing was applied
            return
        t0 = time.perf_counter()
        self._after_batch(run, stats)
        self.busy_s += time.perf_counter() - t0

    def _after_batch(self, run, stats):
        self.steps += 1
        t = run.trainer
        if self._capture:
            with np.errstate(all="ignore"):      # weights blowing up: the record shows it, no warnings
                self.send(self._record(t, stats))
        steps = self.steps - self._anchor_steps
        if steps >= self.span and time.perf_counter() - self._anchor_t >= 5 * self.min_gap_s \
                and self.anchor.weights is not None:
            with np.errstate(all="ignore"):
                self.anchor.delta_from(t.net)
                self.send(summarize(self.anchor, self._anchor_norms, t.position, steps, self.k))
            self._take_anchor(t)

    def _record(self, t, stats):
        net, before_net = t.net, self.before.as_net(t.net)
        digit = indices = labels = losses = None
        if self.digit is not None:
            x, label, token = self.digit
            bw = backward(before_net, x, label) if self._detail else None
            p_before = bw.probs if bw is not None else before_net.forward(x)
            digit = DigitStep(token, p_before, net.forward(x), bw)
        if self._detail and t.last_batch is not None:
            idx, xb, yb = t.last_batch
            indices, labels = np.array(idx, np.int64), np.array(yb, np.int64)
            losses = sample_losses(before_net, xb, yb)
        norms = self.before.norms()
        self.before.delta_from(net)
        self.last_step = (self.before.position, t.position)
        self.seq += 1
        return StepRecord(self.seq, self._detail, float(stats.lr), float(stats.loss),
                          summarize(self.before, norms, t.position, 1, self.k), digit, indices, labels, losses)

    # ------------------------------------------------------------ a tooltip's question
    def inspect(self, trainer, at, token=0) -> Inspection:
        """One parameter (`at`: ("weight", pair, i, j) or ("bias", pair, j)) now: its value,
        optimizer state, the next step's learning rate and its change in the last recorded
        step. ValueError when `at` names no parameter of the network."""
        net = trainer.net
        try:
            kind, pair, *where = at
            pair, index = int(pair), tuple(int(v) for v in where)
        except (TypeError, ValueError):
            raise ValueError(f"no parameter {at!r}") from None
        if kind not in ("weight", "bias") or not 0 <= pair < net.n_layers:
            raise ValueError(f"no parameter {at!r}")
        arrays = net.weights if kind == "weight" else net.biases
        shape = arrays[pair].shape
        if len(index) != len(shape) or not all(0 <= v < n for v, n in zip(index, shape)):
            raise ValueError(f"no parameter {at!r}")
        k = 2 * pair + (kind == "bias")
        last = self.before if self.before.is_delta else None
        last_dw = None if last is None else float((last.weights if kind == "weight" else last.biases)[pair][index])
        return Inspection(int(token), tuple(at), trainer.position, float(arrays[pair][index]),
                          rule_state(trainer.opt, k, index), float(trainer.current_lr()),
                          float(trainer.config.weight_decay) if kind == "weight" else 0.0,
                          last_dw, self.last_step if last is not None else None)
