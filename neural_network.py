"""A multilayer perceptron in NumPy: forward, backward, optimizers, augmentation.

No I/O and no pygame here. Arrays are batch-first; weights are shaped (fan_in, fan_out)
so `a @ W` maps a batch of activations to the next layer. Everything is float32 unless a
caller asks for float64 (the gradient check does). Training buffers are allocated once
per batch size and reused, so a step is almost pure BLAS time.
"""
from __future__ import annotations

import numpy as np

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
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


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


class MLP:
    """Fully connected network: ReLU/sigmoid/tanh hidden layers, softmax output."""

    def __init__(self, sizes, activation="relu", seed=0, dtype=np.float32):
        if activation not in ACTIVATE:
            raise ValueError(f"unknown activation {activation!r}")
        self.sizes = tuple(int(s) for s in sizes)
        self.activation = activation
        self.weights, self.biases = init_params(self.sizes, activation, np.random.default_rng(seed), dtype)
        self._buffers = {}  # batch size -> preallocated training buffers

    @property
    def n_layers(self):
        return len(self.weights)

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
                chunk = chunk.astype(np.float32) * np.float32(1 / 255)
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
        acts, masks = [x], []
        a = x
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ W + b
            if i < self.n_layers - 1:
                act(z)
                if dropout > 0:
                    m = (rng.random(z.shape) >= dropout) / (1 - dropout)
                    z *= m
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
                grad(acts[i], delta)
        return float(loss), grads

    def _get_buffers(self, B):
        if B not in self._buffers:
            dt = self.weights[0].dtype
            self._buffers[B] = dict(
                acts=[np.empty((B, n), dt) for n in self.sizes[1:]],   # h1..logits
                deltas=[np.empty((B, n), dt) for n in self.sizes[1:]],
                masks=[np.empty((B, n), dt) for n in self.sizes[1:-1]],
                rows=np.arange(B),
            )
        return self._buffers[B]

    def train_step(self, x, y, grads, weight_decay=0.0, dropout=0.0, rng=None):
        """Forward + backward on x (B, 784) float32, y (B,) int into preallocated `grads`
        ([dW1, db1, ...], same shapes as params). Returns (mean loss, n correct)."""
        B = len(x)
        buf = self._get_buffers(B)
        acts, deltas, rows = buf["acts"], buf["deltas"], buf["rows"]
        act, act_grad = ACTIVATE[self.activation], ACTIVATE_GRAD[self.activation]
        L = self.n_layers
        a = x
        for i in range(L):
            z = acts[i]
            np.matmul(a, self.weights[i], out=z)   # (B, fan_in) @ (fan_in, fan_out)
            z += self.biases[i]
            if i < L - 1:
                act(z)
                if dropout > 0:
                    m = buf["masks"][i]
                    rng.random(out=m, dtype=m.dtype)
                    np.greater_equal(m, dropout, out=m)
                    m *= 1.0 / (1.0 - dropout)
                    z *= m
            a = z
        logits = acts[-1]                              # (B, 10)
        correct = int((logits.argmax(axis=1) == y).sum())
        softmax(logits)                                # now probabilities
        loss = -float(np.log(np.maximum(logits[rows, y], 1e-30)).mean())
        delta = deltas[-1]
        np.copyto(delta, logits)
        delta[rows, y] -= 1
        delta *= 1.0 / B                               # d loss / d logits (B, 10)
        for i in range(L - 1, -1, -1):
            a_prev = x if i == 0 else acts[i - 1]
            dW, db = grads[2 * i], grads[2 * i + 1]
            np.matmul(a_prev.T, delta, out=dW)         # (fan_in, B) @ (B, fan_out)
            if weight_decay:
                dW += weight_decay * self.weights[i]
            delta.sum(axis=0, out=db)
            if i > 0:
                d_prev = deltas[i - 1]
                np.matmul(delta, self.weights[i].T, out=d_prev)  # (B, fan_out) @ (fan_out, fan_in)
                if dropout > 0:
                    d_prev *= buf["masks"][i - 1]
                act_grad(acts[i - 1], d_prev)
                delta = d_prev
        return loss, correct


class Optimizer:
    """SGD, momentum (optionally Nesterov) and Adam over a list of parameter arrays,
    updating them in place. State arrays are allocated once."""

    def __init__(self, params, kind="adam", momentum=0.9, nesterov=False,
                 beta2=0.999, eps=1e-8):
        self.params = params
        self.kind = kind
        self.momentum = momentum
        self.nesterov = nesterov
        self.beta2, self.eps = beta2, eps
        self.t = 0
        self.state = {}
        if kind in ("momentum", "adam"):
            self.state["m"] = [np.zeros_like(p) for p in params]
        if kind == "adam":
            self.state["v"] = [np.zeros_like(p) for p in params]
        self._tmp = [np.empty_like(p) for p in params]

    def step(self, grads, lr):
        self.t += 1
        if self.kind == "sgd":
            for p, g in zip(self.params, grads):
                g *= lr
                p -= g
        elif self.kind == "momentum":
            mu = self.momentum
            for p, g, m in zip(self.params, grads, self.state["m"]):
                m *= mu                       # m = mu*m - lr*g
                g *= lr
                m -= g
                if self.nesterov:             # p += mu*m - lr*g
                    p -= g
                    g[...] = m
                    g *= mu
                    p += g
                else:
                    p += m
        else:  # adam
            b1, b2 = self.momentum, self.beta2
            step = lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
            for p, g, m, v, tmp in zip(self.params, grads, self.state["m"], self.state["v"], self._tmp):
                m *= b1                       # m = b1*m + (1-b1)*g
                np.multiply(g, 1 - b1, out=tmp)
                m += tmp
                np.multiply(g, g, out=tmp)    # v = b2*v + (1-b2)*g^2
                tmp *= 1 - b2
                v *= b2
                v += tmp
                np.sqrt(v, out=tmp)
                tmp += self.eps
                np.divide(m, tmp, out=tmp)
                tmp *= step
                p -= tmp

    def state_arrays(self):
        """{name: array} of the optimizer state, for model files."""
        out = {"opt_t": np.array(self.t, dtype=np.int64)}
        for key, arrays in self.state.items():
            for i, a in enumerate(arrays):
                out[f"opt_{key}{i}"] = a
        return out

    def load_state(self, arrays):
        self.t = int(arrays["opt_t"])
        for key, dst in self.state.items():
            for i, a in enumerate(dst):
                a[...] = arrays[f"opt_{key}{i}"]


def lr_at(base_lr, schedule, progress):
    """Learning rate at `progress` in [0, 1] of the whole run."""
    if schedule == "cosine":
        return base_lr * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0)))
    if schedule == "step":
        return base_lr * (0.1 if progress >= 0.5 else 1.0) * (0.1 if progress >= 0.75 else 1.0)
    return base_lr


class Shifter:
    """Random shifts of up to `max_shift` px, vectorised over the batch.

    Each image is padded into a (28+2s)^2 canvas once per batch, and a single gather with
    precomputed index tables (one table per shift) reads every shifted image at once."""

    def __init__(self, max_shift=2, side=28):
        s, n = max_shift, side + 2 * max_shift
        self.max_shift, self.side, self.padded_side = s, side, n
        rr, cc = np.mgrid[0:side, 0:side]
        tables = []
        for dy in range(-s, s + 1):
            for dx in range(-s, s + 1):
                tables.append(((rr + s - dy) * n + (cc + s - dx)).ravel())
        self.tables = np.stack(tables)        # (n_shifts, 784) flat indices into the padded canvas
        self._pad = {}

    def __call__(self, x, rng):
        """x (B, 784) -> shifted copy (B, 784), same dtype."""
        B, s, n, side = len(x), self.max_shift, self.padded_side, self.side
        pad = self._pad.get((B, x.dtype))
        if pad is None:
            pad = self._pad[(B, x.dtype)] = np.zeros((B, n, n), x.dtype)
        pad[:, s:s + side, s:s + side] = x.reshape(B, side, side)
        idx = self.tables[rng.integers(0, len(self.tables), B)]      # (B, 784)
        return np.take_along_axis(pad.reshape(B, n * n), idx, axis=1)
