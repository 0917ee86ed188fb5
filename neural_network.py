"""A multilayer perceptron in NumPy: forward, backward, optimizers, augmentation.

No I/O and no pygame here. Arrays are batch-first; weights are shaped (fan_in, fan_out)
so `a @ W` maps a batch of activations to the next layer. Everything is float32 unless a
caller asks for float64 (the gradient check does). Training buffers are allocated once
per batch size and reused, and SGD/momentum update each weight matrix inside the product
that computes its gradient (`blas_gemm.gemm`), so a step is mostly BLAS time;
`bench/bench_train.py` measures it against the machine's matmul peak, its own products
alone, and PyTorch. Imports: NumPy and blas_gemm only.
"""
from __future__ import annotations

import math
import os

import numpy as np

from blas_gemm import gemm


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


def _add_scaled(y, a, x, scratch):
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
        self._wT = None     # layer -> contiguous transposed weights (see _get_buffers)

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
        if self._wT is None:
            # C-contiguous W.T for narrow layers (fan_out <= 64, i.e. the output layer):
            # OpenBLAS with 2 threads sometimes takes a very slow path for
            # (B, 10) @ W.T (10, 512) with the transposed operand; refreshing the small
            # copy each step costs microseconds.
            self._wT = {i: np.empty(W.shape[::-1], W.dtype) for i, W in enumerate(self.weights)
                        if i > 0 and W.shape[1] <= 64}
            self._wd_scratch = np.empty(min(65536, max(W.size for W in self.weights)),
                                        self.weights[0].dtype)
        return self._buffers[B]

    def train_step(self, x, y, grads, weight_decay=0.0, dropout=0.0, rng=None,
                   opt=None, lr=0.0, max_loss=math.inf):
        """Forward + backward on x (B, 784) float32, y (B,) int. Returns (mean loss, n correct).

        Without `opt`: writes the gradients into preallocated `grads` ([dW1, db1, ...],
        same shapes as params). With `opt` (an Optimizer over self.params): a whole
        training step at learning rate `lr`; when the loss is not <= max_loss (NaN,
        diverging) nothing is updated. SGD and momentum then update each weight matrix
        inside the product that computes its gradient (Optimizer.fused_weight_update), so
        dW arrays are neither written nor read; other optimizers go through `grads`."""
        B = len(x)
        weight_decay, dropout, lr = float(weight_decay), float(dropout), float(lr)  # no float64 scalars
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
                if dropout > 0:     # the next layer sees z * mask; z is kept for act_grad
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
        delta = deltas[-1]
        np.copyto(delta, logits)
        delta[rows, y] -= 1
        delta *= 1.0 / B                               # d loss / d logits (B, 10)
        for i in range(L - 1, -1, -1):
            a_prev = x if i == 0 else (buf["dropped"] if dropout > 0 else acts)[i - 1]
            if i > 0:    # before W changes: d_prev = delta @ W.T
                d_prev = deltas[i - 1]
                WT = self._wT.get(i)
                if WT is None:
                    WT = self.weights[i].T
                else:
                    np.copyto(WT, self.weights[i].T)
                np.matmul(delta, WT, out=d_prev)       # (B, fan_out) @ (fan_out, fan_in)
            if fused:
                opt.fused_weight_update(2 * i, a_prev.T, delta, lr, weight_decay)
            else:
                dW = grads[2 * i]
                gemm(a_prev.T, delta, dW)              # (fan_in, B) @ (B, fan_out)
                if weight_decay:
                    _add_scaled(dW, weight_decay, self.weights[i], self._wd_scratch)
            delta.sum(axis=0, out=grads[2 * i + 1])    # db (fan_out,)
            if i > 0:
                if dropout > 0:
                    d_prev *= buf["masks"][i - 1]
                act_grad(acts[i - 1], d_prev)
                delta = d_prev
        if opt is not None:
            opt.step(grads, lr, done=range(0, 2 * L, 2) if fused else ())
        return loss, correct


def default_threads():
    """Threads for the optimizer's elementwise work when `Optimizer(threads=None)`.

    Measured on a 2-CPU machine: a second thread only pays off (Adam -11 % step time)
    when OpenBLAS's idle workers stop spinning soon after each matmul, i.e. when
    OPENBLAS_THREAD_TIMEOUT (<= 10) was exported before NumPy was loaded; with the
    default busy-waiting worker the second thread competes with it and gains nothing.
    So: 1 thread unless that variable is set low and the BLAS itself may use more
    than one thread (the window's training child runs with OPENBLAS_NUM_THREADS=1)."""
    blas = None
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        try:
            blas = int(os.environ[var])
            break
        except (KeyError, ValueError):
            continue
    try:
        timeout = int(os.environ.get("OPENBLAS_THREAD_TIMEOUT", ""))
    except ValueError:
        timeout = None
    if timeout is None or timeout > 10 or (blas is not None and blas <= 1):
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(blas or cpus, cpus, 4))


_POOLS = {}  # worker count -> ThreadPoolExecutor shared by all optimizers
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOLS.clear)  # a forked child has no pool threads


def _pool(workers):
    pool = _POOLS.get(workers)
    if pool is None:
        from concurrent.futures import ThreadPoolExecutor  # only when threads > 1 (~20 ms import)
        pool = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="nn-optimizer")
    return pool


def _flat(a):
    if not a.flags.c_contiguous:
        raise ValueError("optimizer arrays must be C-contiguous")
    return a.reshape(-1)


class Optimizer:
    """SGD, momentum (optionally Nesterov) and Adam over a list of parameter arrays,
    updating them in place. State arrays are allocated once.

    Update rules (lr may change every step; t counts steps from 1):
      sgd       p -= lr*g
      momentum  m = mu*m - lr*g;  p += m            (Nesterov: p += mu*m - lr*g)
      adam      m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
                p -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)

    Speed: the update is a handful of elementwise passes over every parameter, as
    expensive as all the matrix products of a step if done naively. So the work is cut
    into cache-sized chunks (each chunk goes through all passes while it sits in L2,
    with a small scratch buffer instead of parameter-sized temporaries), and the chunks
    can be shared among `threads` threads (NumPy ufuncs release the GIL; default
    `default_threads()`, usually 1). The result does not depend on the number of
    threads. Adam keeps M = m/(1-b1) and V = v/(1-b2), the plain decayed sums of g and
    g^2, which saves two passes; the constant factors are folded into the scalar step
    size and eps. `grads` are read, never modified.
    """

    CHUNK = 65536  # elements per work item: all arrays of one chunk fit in L2 together
    G_SCALE = 2.0 ** 32   # Adam squares g*G_SCALE: squares of tiny gradients stay normal floats
    FLUSH_EVERY = 64      # steps between flushing decayed-to-nothing state to exact zeros
    FLUSH_BELOW = 1e-30   # (state of parameters whose gradient is 0, e.g. into dead neurons,
                          #  decays geometrically into denormals, which are ~100x slower)

    def __init__(self, params, kind="adam", momentum=0.9, nesterov=False,
                 beta2=0.999, eps=1e-8, threads=None):
        if kind not in ("sgd", "momentum", "adam"):
            raise ValueError(f"unknown optimizer {kind!r}")
        self.params = params
        self.kind = kind
        self.momentum = momentum
        self.nesterov = nesterov
        self.beta2, self.eps = beta2, eps
        self.t = 0
        self.state = {}
        if kind == "momentum":
            self.state["m"] = [np.zeros_like(p) for p in params]
        elif kind == "adam":   # decayed sums: m = (1-b1)*M, v = (1-b2)*V
            self.state["M"] = [np.zeros_like(p) for p in params]
            self.state["V"] = [np.zeros_like(p) for p in params]
        self._flat_params = [_flat(p) for p in params]
        self._flat_state = {k: [_flat(a) for a in arrays] for k, arrays in self.state.items()}
        self.threads = default_threads() if threads is None else max(1, int(threads))
        # Work items (param index, start, stop); no thread gets less than 2 chunks' worth.
        items = [(i, s, min(s + self.CHUNK, p.size))
                 for i, p in enumerate(params) for s in range(0, p.size, self.CHUNK)]
        total = sum(p.size for p in params)
        n = max(1, min(self.threads, total // (2 * self.CHUNK)))
        loads, shares = [0] * n, [[] for _ in range(n)]
        for item in sorted(items, key=lambda it: it[1] - it[2]):   # largest first
            k = loads.index(min(loads))
            shares[k].append(item)
            loads[k] += item[2] - item[1]
        self._shares = [sorted(s) for s in shares]
        dtype = np.result_type(*params) if params else np.float32
        self._scratch = [np.empty(min(self.CHUNK, max(total, 1)), dtype) for _ in range(n)]

    @property
    def fuses(self):
        """Whether weight updates can be folded into the gradient product (see
        fused_weight_update): plain SGD and momentum, not Nesterov or Adam."""
        return self.kind == "sgd" or (self.kind == "momentum" and not self.nesterov)

    def fused_weight_update(self, k, a_t, delta, lr, weight_decay=0.0):
        """Update params[k], a weight matrix whose gradient is a_t @ delta + weight_decay*W
        ((fan_in, B) @ (B, fan_out)), without materialising that gradient:
          sgd       W = (1 - lr*wd)*W - lr*(a_t @ delta)          one gemm
          momentum  m = mu*m - lr*(a_t @ delta);  m -= lr*wd*W;  W += m
        The caller then runs step(..., done=[k, ...]) for the rest and the step count."""
        W = self.params[k]
        if self.kind == "sgd":
            gemm(a_t, delta, W, -lr, 1.0 - lr * weight_decay)
        elif self.fuses:
            m = self.state["m"][k]
            gemm(a_t, delta, m, -lr, float(self.momentum))
            if weight_decay:
                _add_scaled(m, -lr * weight_decay, W, self._scratch[0])
            W += m
        else:
            raise ValueError(f"{self.kind} (nesterov={self.nesterov}) updates cannot be fused")

    def step(self, grads, lr, done=()):
        """One update of every parameter from `grads` (same shapes as params), except
        the indices in `done`, already updated by fused_weight_update this step."""
        self.t += 1
        # Python floats, not np.float64: with NumPy 2 a float64 scalar would make every
        # float32 pass compute in float64 through a slow casting loop.
        lr = float(lr)
        flat_grads = [g.reshape(-1) for g in grads]
        if self.kind == "sgd":
            update, args = self._sgd, (lr,)
        elif self.kind == "momentum":
            update, args = self._momentum, (float(self.momentum), lr)
        else:
            b1, b2 = self.momentum, self.beta2
            # step*m/(sqrt(v)+eps) with m=(1-b1)M, v=(1-b2)V:
            #   = step*(1-b1)/sqrt(1-b2) * M/(sqrt(V) + eps/sqrt(1-b2))
            # V holds sums of (g*G_SCALE)^2, so sqrt(V) is G_SCALE times too large:
            # scale eps and the step by the same factor.
            step = lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
            update = self._adam
            args = (float(b1), float(b2), step * (1 - b1) / math.sqrt(1 - b2) * self.G_SCALE,
                    float(self.eps) / math.sqrt(1 - b2) * self.G_SCALE)
        if self.t % self.FLUSH_EVERY == 0:
            for arrays in self.state.values():
                for a in arrays:
                    np.copyto(a, 0, where=np.abs(a) < self.FLUSH_BELOW)
        shares = self._shares
        if done:
            done = set(done)
            shares = [[it for it in share if it[0] not in done] for share in shares]
        if len(shares) == 1:
            update(shares[0], self._scratch[0], flat_grads, *args)
            return
        pool = _pool(len(shares) - 1)
        futures = [pool.submit(update, share, scratch, flat_grads, *args)
                   for share, scratch in zip(shares[1:], self._scratch[1:])]
        update(shares[0], self._scratch[0], flat_grads, *args)
        for f in futures:
            f.result()

    # Each update runs over one thread's chunks; t is the scratch buffer.
    def _sgd(self, share, scratch, grads, lr):
        P = self._flat_params
        for i, s, e in share:
            t = scratch[:e - s]
            np.multiply(grads[i][s:e], lr, out=t)
            P[i][s:e] -= t

    def _momentum(self, share, scratch, grads, mu, lr):
        P, Ms = self._flat_params, self._flat_state["m"]
        for i, s, e in share:
            p, m, t = P[i][s:e], Ms[i][s:e], scratch[:e - s]
            np.multiply(grads[i][s:e], lr, out=t)
            m *= mu
            m -= t
            if self.nesterov:            # p += mu*m - lr*g
                p -= t
                np.multiply(m, mu, out=t)
                p += t
            else:
                p += m

    def _adam(self, share, scratch, grads, b1, b2, step, eps):
        P, Ms, Vs = self._flat_params, self._flat_state["M"], self._flat_state["V"]
        for i, s, e in share:
            p, g, M, V, t = P[i][s:e], grads[i][s:e], Ms[i][s:e], Vs[i][s:e], scratch[:e - s]
            M *= b1
            M += g
            np.multiply(g, self.G_SCALE, out=t)
            np.multiply(t, t, out=t)
            V *= b2
            V += t
            np.sqrt(V, out=t)
            t += eps
            np.divide(M, t, out=t)
            t *= step
            p -= t

    def state_arrays(self):
        """{name: array} of the optimizer state, for model files (Adam: opt_M*, opt_V*,
        the decayed sums M = m/(1-b1) and V = v/(1-b2) * G_SCALE^2)."""
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
