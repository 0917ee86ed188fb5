"""A multilayer perceptron in NumPy: forward, backward, and the BLAS gemm its training step uses.

No I/O and no pygame here. Arrays are batch-first; weights are shaped (fan_in, fan_out)
so `a @ W` maps a batch of activations to the next layer. Everything is float32 unless a
caller asks for float64 (the gradient check does). Training buffers are allocated once
per batch size and reused, and SGD/momentum update each weight matrix inside the product
that computes its gradient (`gemm`, below), so a step is mostly BLAS time;
`bench/bench_train.py` measures it against the machine's matmul peak, its own products
alone, and PyTorch. The optimizers are `training/optimizers.py` (a step takes one as `opt`).
Imports: the standard library and NumPy only (ctypes and glob on first use).
"""
from __future__ import annotations

import math
import os

import numpy as np

# ---------------------------------------------------------------- BLAS gemm
# np.matmul computes C = A @ B only. BLAS's gemm computes C = alpha*A@B + beta*C, which
# lets a training step fold a weight update into the product that computes its
# gradient (SGD: W = (1 - lr*wd)*W - lr*(a.T @ delta)) instead of writing a gradient
# array and passing over it again. We call the BLAS NumPy itself ships and uses, so
# there is one thread pool and threadpoolctl limits apply; elsewhere (a NumPy on
# Accelerate or MKL, say) `gemm` computes the same thing with np.matmul.
_CBLAS = (("scipy_cblas_{}gemm64_", 64), ("cblas_{}gemm64_", 64),   # NumPy >= 2 / 1.22+ wheels
          ("scipy_cblas_{}gemm", 32), ("cblas_{}gemm", 32))
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _load_cblas():
    """{dtype: ctypes gemm} from the OpenBLAS in NumPy's wheel, or {} when not found."""
    import ctypes
    import glob
    root = os.path.dirname(os.path.abspath(np.__file__))
    paths = sorted(glob.glob(os.path.join(root + ".libs", "*openblas*"))
                   + glob.glob(os.path.join(root, ".dylibs", "*openblas*")))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern, bits in _CBLAS:
            try:
                fns = {np.dtype(np.float32): getattr(lib, pattern.format("s")),
                       np.dtype(np.float64): getattr(lib, pattern.format("d"))}
            except AttributeError:
                continue
            i, p, e = (ctypes.c_int64 if bits == 64 else ctypes.c_int), ctypes.c_void_p, ctypes.c_int
            for dt, fn in fns.items():
                f = ctypes.c_float if dt == np.float32 else ctypes.c_double
                fn.argtypes = [e, e, e, i, i, i, f, p, i, p, i, f, p, i]
                fn.restype = None
            return fns
    return {}


def _trans(a):
    """(BLAS transpose flag, leading dimension, data pointer) of a 2-D array that is
    C-contiguous or the transpose of one, else None."""
    if a.flags.c_contiguous:
        return _NO_TRANS, max(a.shape[1], 1), a.ctypes.data
    if a.T.flags.c_contiguous:
        return _TRANS, max(a.shape[0], 1), a.ctypes.data
    return None


def gemm(a, b, out, alpha=1.0, beta=0.0):
    """out = alpha * a @ b + beta * out, in place, for 2-D a (m, k), b (k, n), out (m, n).
    `a` and `b` may be transposed views (x.T) of C-contiguous arrays. Returns out."""
    blas = _GEMM if _GEMM is not None else _checked_cblas()
    fn = blas.get(out.dtype) if out.dtype == a.dtype == b.dtype else None
    ta, tb = _trans(a), _trans(b)
    if fn is None or ta is None or tb is None or not out.flags.c_contiguous or 0 in a.shape:
        if beta == 0.0:
            np.matmul(a, b, out=out)
            if alpha != 1.0:
                out *= alpha
        else:
            if beta != 1.0:
                out *= beta
            out += alpha * (a @ b)
        return out
    (m, n), k = out.shape, a.shape[1]
    fn(_ROW_MAJOR, ta[0], tb[0], m, n, k, alpha, ta[2], ta[1], tb[2], tb[1], beta,
       out.ctypes.data, max(n, 1))
    return out


def _checked_cblas():
    """Sets and returns _GEMM: _load_cblas() if it agrees with np.matmul on a small case
    (transposes, alpha, beta) for both dtypes, else {}: a wrong guess about the library
    costs speed, never correctness. MLP_NUMPY_GEMM=1 in the environment skips it."""
    global _GEMM
    _GEMM = {} if os.environ.get("MLP_NUMPY_GEMM") == "1" else _load_cblas()
    rng = np.random.default_rng(0)
    for dt in list(_GEMM):
        a, b, c = (rng.standard_normal(s).astype(dt) for s in ((5, 3), (4, 5), (3, 4)))
        want = 0.5 * c + 2.0 * (a.T @ b.T)
        if not np.allclose(gemm(a.T, b.T, c.copy(), 2.0, 0.5), want, rtol=1e-4, atol=1e-5):
            _GEMM = {}
    return _GEMM


_GEMM = None   # {dtype: BLAS gemm}, loaded on first use (the window's UI process never trains)


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
                    add_scaled(dW, weight_decay, self.weights[i], self._wd_scratch)
            delta.sum(axis=0, out=grads[2 * i + 1])    # db (fan_out,)
            if i > 0:
                if dropout > 0:
                    d_prev *= buf["masks"][i - 1]
                act_grad(acts[i - 1], d_prev)
                delta = d_prev
        if opt is not None:
            opt.step(grads, lr, done=range(0, 2 * L, 2) if fused else ())
        return loss, correct
