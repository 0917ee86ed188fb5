"""A multilayer perceptron in NumPy: forward, backward, and its training step.

No I/O and no pygame here. Arrays are batch-first; weights are shaped (fan_in, fan_out)
so `a @ W` maps a batch of activations to the next layer. Everything is float32 unless a
caller asks for float64 (the gradient check does). Training buffers are allocated once
per batch size and reused. A training step cuts each big layer into blocks (of output
columns forward, of weight rows backward) and runs them on its own threads with BLAS
single-threaded (`run_blocks`); each weight block is updated right after the product that
computes its gradient: SGD/momentum inside that product (`engine.blas.gemm`), Adam from
the gradient block while it is in cache. `bench/bench_train.py` measures a step against the machine's
matmul peak, its own products alone, and PyTorch; `bench/bench_epoch.py` a whole epoch.
The optimizers are `training/optimizers.py` (a step takes one as `opt`); the BLAS binding
and the step's threads are `engine/`.
Imports: the standard library, NumPy and `engine`.
"""
from __future__ import annotations

import math
import os

import numpy as np

from mnist_live.engine.blas import gemm  # noqa: F401 (the training step's products; optimizers use it too)
from mnist_live.engine.threads import blocks, default_threads, run_blocks, single_threaded_blas


# Activation functions applied in place, and their derivatives written in terms of the
# activation output `a` (cheaper than keeping the pre-activation around).
def _relu(z):
    np.maximum(z, 0, out=z)


def _sigmoid(z):
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1
    np.reciprocal(z, out=z)


def _tanh(z):
    np.tanh(z, out=z)


def _relu_grad(a, delta):
    delta *= a > 0


def _sigmoid_grad(a, delta):
    delta *= a * (1 - a)


def _tanh_grad(a, delta):
    delta *= 1 - a * a


ACTIVATE = {"relu": _relu, "sigmoid": _sigmoid, "tanh": _tanh}
ACTIVATE_GRAD = {"relu": _relu_grad, "sigmoid": _sigmoid_grad, "tanh": _tanh_grad}


def softmax(z):
    """Row-wise softmax of logits z (B, C), in place; returns z."""
    z -= z.max(axis=1, keepdims=True)
    # exp(-87) is float32's smallest normal number; below it exp() returns denormals,
    # which cost ~100x on x86 in every later product. exp(-80) is 1.8e-35: no change.
    np.maximum(z, -80.0, out=z)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def add_scaled(y, a, x, scratch):
    """y += a*x in place, in chunks of len(scratch): no parameter-sized temporary."""
    yf, xf, n = y.reshape(-1), x.reshape(-1), len(scratch)
    for s in range(0, yf.size, n):
        t = scratch[:min(n, yf.size - s)]
        np.multiply(xf[s:s + n], a, out=t)
        yf[s:s + n] += t


def init_params(sizes, activation, rng, dtype=np.float32):
    """He (ReLU) or Glorot (sigmoid/tanh) normal initialisation; zero biases."""
    weights, biases = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        if activation == "relu":
            std = np.sqrt(2.0 / fan_in)
        else:
            std = np.sqrt(2.0 / (fan_in + fan_out))
        weights.append((rng.standard_normal((fan_in, fan_out)) * std).astype(dtype))
        biases.append(np.zeros(fan_out, dtype=dtype))
    return weights, biases


PIXEL_SCALE = np.float32(1 / 255)   # uint8 pixels -> the network's inputs in [0, 1]


def to_float(x) -> np.ndarray:
    """uint8 (..., 784) -> float32 in [0, 1] (x / 255): what the network reads."""
    return np.asarray(x, dtype=np.float32) * PIXEL_SCALE


def copy_params(dst, src):
    """Copy each array of `src` into the array of `dst` at the same place (lists of weight
    and bias arrays of the same shapes; float16 snapshots widen to float32)."""
    for d, s in zip(dst, src):
        np.copyto(d, s)


class MLP:
    """Fully connected network: ReLU/sigmoid/tanh hidden layers, softmax output."""

    def __init__(self, sizes, activation="relu", seed=0, dtype=np.float32):
        if activation not in ACTIVATE:
            raise ValueError(f"unknown activation {activation!r}")
        self.sizes = tuple(int(s) for s in sizes)
        self.activation = activation
        self.weights, self.biases = init_params(self.sizes, activation, np.random.default_rng(seed), dtype)
        self._buffers = {}  # batch size -> preallocated training buffers
        self._blocks = None  # layer -> (forward, backward) block boundaries (see _get_buffers)
        self._scratches = {}  # thread lane -> scratch array

    @property
    def n_layers(self):
        return len(self.weights)

    def set_params(self, weights, biases):
        """Take these weights (fan_in, fan_out) and biases (fan_out,) per layer (copied)."""
        copy_params(self.weights + self.biases, list(weights) + list(biases))

    @property
    def params(self):
        """[W1, b1, W2, b2, ...] — the order optimizers and model files use."""
        return [p for wb in zip(self.weights, self.biases) for p in wb]

    # ------------------------------------------------------------------ inference
    def forward(self, x, return_all=False):
        """Probabilities (B, 10) for x (B, 784) or (784,); with return_all, every layer's
        activations [x, h1, ..., probs] (a single sample gives 1-D arrays)."""
        single = x.ndim == 1
        a = np.atleast_2d(x).astype(self.weights[0].dtype, copy=False)
        acts = [a]
        act = ACTIVATE[self.activation]
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ W            # (B, fan_in) @ (fan_in, fan_out) -> (B, fan_out)
            z += b
            if i < self.n_layers - 1:
                act(z)
            else:
                softmax(z)
            a = z
            acts.append(a)
        if single:
            acts = [v[0] for v in acts]
        return acts if return_all else acts[-1]

    def predict_proba(self, x, batch_size=2000):
        """Probabilities (N, 10) for x (N, 784), in chunks to bound memory."""
        out = np.empty((len(x), self.sizes[-1]), dtype=np.float32)
        for s in range(0, len(x), batch_size):
            chunk = x[s:s + batch_size]
            if chunk.dtype == np.uint8:
                chunk = to_float(chunk)
            out[s:s + batch_size] = self.forward(chunk)
        return out

    def predict(self, x, batch_size=2000):
        """Predicted class (N,) for x (N, 784) float in [0,1] or uint8."""
        return self.predict_proba(x, batch_size).argmax(axis=1)

    def input_gradient(self, x, target):
        """d score[target] / d x for one sample x (784,): the saliency map (784,).

        The score is the pre-softmax logit, which shows what pushes towards `target`
        without the saturation of the probability."""
        acts = self.forward(x[None].astype(np.float32), return_all=True)
        delta = np.zeros((1, self.sizes[-1]), dtype=np.float32)
        delta[0, target] = 1.0
        grad = ACTIVATE_GRAD[self.activation]
        for i in range(self.n_layers - 1, -1, -1):
            delta = delta @ self.weights[i].T  # (1, fan_out) @ (fan_out, fan_in)
            if i > 0:
                grad(acts[i], delta)
        return delta[0]

    # ------------------------------------------------------------------- training
    def loss_and_grads(self, x, y, weight_decay=0.0, dropout=0.0, rng=None):
        """Mean cross-entropy (+ L2 term) and gradients [dW1, db1, ...] for x (B, 784), y (B,).

        Allocates fresh arrays in x's dtype; used by the gradient check and as the
        readable reference for `train_step`."""
        B = len(x)
        act, grad = ACTIVATE[self.activation], ACTIVATE_GRAD[self.activation]
        acts, hidden, masks = [x], [None], []  # layer inputs; activations before dropout
        a = x
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ W + b
            if i < self.n_layers - 1:
                act(z)
                hidden.append(z)
                if dropout > 0:
                    m = (rng.random(z.shape) >= dropout) / (1 - dropout)
                    z = z * m
                    masks.append(m)
            a = z
            acts.append(a)
        logits = acts[-1]
        logp = logits - logits.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        loss = -logp[np.arange(B), y].mean()
        loss += 0.5 * weight_decay * sum(float((W * W).sum()) for W in self.weights)
        delta = np.exp(logp)
        delta[np.arange(B), y] -= 1
        delta /= B                                   # (B, 10): d loss / d logits
        grads = []
        for i in range(self.n_layers - 1, -1, -1):
            dW = acts[i].T @ delta + weight_decay * self.weights[i]
            grads[:0] = [dW, delta.sum(axis=0)]
            if i > 0:
                delta = delta @ self.weights[i].T
                if dropout > 0:
                    delta *= masks[i - 1]
                grad(hidden[i], delta)   # the derivative needs the activation before dropout
        return float(loss), grads

    # Blocks of a training step (see run_blocks): a layer's forward product is cut into
    # blocks of its output columns, its backward work into blocks of the weight matrix's
    # rows (their input gradient, weight gradient and update), one block per CPU of the
    # machine (os.cpu_count(), whatever the threads of this process: the blocks decide
    # the rounding, so they must not change with the thread count). Layers with fewer
    # than SPLIT_BELOW weights stay whole: one product on one thread. Fewer, larger blocks
    # are faster (measured: eight blocks cost 10-14 % more BLAS time than one).
    SPLIT_BELOW = 1 << 17
    MAX_BLOCKS = 8
    BLOCKS = None        # blocks per split layer; None: os.cpu_count() (at most MAX_BLOCKS)

    def _get_buffers(self, B):
        if B not in self._buffers:
            dt = self.weights[0].dtype
            self._buffers[B] = dict(
                acts=[np.empty((B, n), dt) for n in self.sizes[1:]],   # h1..logits
                deltas=[np.empty((B, n), dt) for n in self.sizes[1:]],
                masks=[np.empty((B, n), dt) for n in self.sizes[1:-1]],
                dropped=[np.empty((B, n), dt) for n in self.sizes[1:-1]],  # acts * masks
                rows=np.arange(B),
            )
        if self._blocks is None:
            n = self.BLOCKS or min(os.cpu_count() or 1, self.MAX_BLOCKS)
            parts = [1 if W.size < self.SPLIT_BELOW else n for W in self.weights]
            # (the first layer's rows have no input gradient: nothing shared in a cache line)
            self._blocks = [(blocks(W.shape[1], k), blocks(W.shape[0], k, 16 if i else 1))
                            for i, (W, k) in enumerate(zip(self.weights, parts))]
        return self._buffers[B]

    def _scratch(self, lane):
        t = self._scratches.get(lane)
        if t is None:
            t = self._scratches[lane] = np.empty(65536, self.weights[0].dtype)
        return t

    def train_step(self, x, y, grads, weight_decay=0.0, dropout=0.0, rng=None,
                   opt=None, lr=0.0, max_loss=math.inf, threads=None):
        """Forward + backward on x (B, 784) float32, y (B,) int. Returns (mean loss, n correct).

        Without `opt`: writes the gradients into preallocated `grads` ([dW1, db1, ...],
        same shapes as params). With `opt` (an Optimizer over self.params): a whole
        training step at learning rate `lr`; when the loss is not <= max_loss (NaN,
        diverging) nothing is updated. Each weight matrix is updated block by block right
        after the product that computes that block's gradient (SGD and momentum inside
        that product: Optimizer.fused_weight_update; Adam and Nesterov from the block of
        `grads` while it is in cache: Optimizer.update).

        Threads: `threads`, else opt.threads, else default_threads(). BLAS itself runs
        single-threaded inside the step; the blocks are shared among the threads, and the
        result is the same for any number of them."""
        B = len(x)
        weight_decay, dropout, lr = float(weight_decay), float(dropout), float(lr)  # no float64 scalars
        buf = self._get_buffers(B)
        if threads is None:
            threads = opt.threads if opt is not None else default_threads()
        with single_threaded_blas():
            return self._step(x, y, grads, weight_decay, dropout, rng, opt, lr, max_loss, buf, threads)

    def _step(self, x, y, grads, weight_decay, dropout, rng, opt, lr, max_loss, buf, threads):
        B = len(x)
        acts, deltas, rows = buf["acts"], buf["deltas"], buf["rows"]
        act, act_grad = ACTIVATE[self.activation], ACTIVATE_GRAD[self.activation]
        L = self.n_layers
        a = x
        for i in range(L):
            z, W, b, hidden = acts[i], self.weights[i], self.biases[i], i < L - 1

            def forward(lane, c0, c1, a=a, z=z, W=W, b=b, hidden=hidden):
                zc = np.matmul(a, W[:, c0:c1], out=z[:, c0:c1])   # (B, fan_in) @ (fan_in, cols)
                zc += b[c0:c1]
                if hidden:
                    act(zc)
            run_blocks(forward, self._blocks[i][0], threads)
            if hidden and dropout > 0:     # the next layer sees z * mask; z is kept for act_grad
                m = buf["masks"][i]
                rng.random(out=m, dtype=m.dtype)
                np.greater_equal(m, dropout, out=m)
                m *= 1.0 / (1.0 - dropout)
                z = np.multiply(z, m, out=buf["dropped"][i])
            a = z
        logits = acts[-1]                              # (B, 10)
        correct = int((logits.argmax(axis=1) == y).sum())
        softmax(logits)                                # now probabilities
        loss = -float(np.log(np.maximum(logits[rows, y], 1e-30)).mean())
        if opt is not None and not loss <= max_loss:
            return loss, correct
        fused = opt is not None and opt.fuses
        if opt is not None:
            opt.begin(lr)
        delta = deltas[-1]
        np.copyto(delta, logits)
        delta[rows, y] -= 1
        delta *= 1.0 / B                               # d loss / d logits (B, 10)
        for i in range(L - 1, -1, -1):
            a_prev = x if i == 0 else (buf["dropped"] if dropout > 0 else acts)[i - 1]
            d_prev = deltas[i - 1] if i > 0 else None
            W, dW, fan_out = self.weights[i], grads[2 * i], self.weights[i].shape[1]

            def backward(lane, r0, r1, i=i, a_prev=a_prev, d_prev=d_prev, delta=delta, W=W, dW=dW,
                         fan_out=fan_out):
                # rows r0:r1 of W, i.e. inputs r0:r1 of layer i
                if d_prev is not None:     # before these rows change: d_prev = delta @ W.T
                    dp = np.matmul(delta, W[r0:r1].T, out=d_prev[:, r0:r1])   # (B, fan_out) @ (fan_out, rows)
                    if dropout > 0:
                        dp *= buf["masks"][i - 1][:, r0:r1]
                    act_grad(acts[i - 1][:, r0:r1], dp)
                a_t = a_prev[:, r0:r1].T                     # (rows, B)
                if fused:
                    opt.fused_weight_update(2 * i, a_t, delta, lr, weight_decay, (r0, r1), lane)
                    return
                g = np.matmul(a_t, delta, out=dW[r0:r1])     # (rows, B) @ (B, fan_out)
                if opt is not None:
                    opt.update(2 * i, r0 * fan_out, r1 * fan_out, g.reshape(-1), lane, weight_decay)
                elif weight_decay:
                    add_scaled(g, weight_decay, W[r0:r1], self._scratch(lane))
            run_blocks(backward, self._blocks[i][1], threads)
            delta.sum(axis=0, out=grads[2 * i + 1])    # db (fan_out,)
            if i > 0:
                delta = d_prev
        if opt is not None:
            opt.rest(grads, done=range(0, 2 * L, 2), threads=threads)
        return loss, correct
