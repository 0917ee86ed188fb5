"""The optimizers a training step applies (SGD, momentum, Adam) and the learning-rate schedule.

`Optimizer` updates a list of parameter arrays in place from their gradients, with its state
allocated once; SGD and momentum can also fold a weight update into the product that
computes its gradient (`fused_weight_update`, called from `MLP.train_step`). `lr_at` is the
schedule over a run. The update rules themselves are plain functions on a chunk (`RULES`).
Imports the standard library, NumPy, `engine` and `neural_network` (add_scaled).
"""
from __future__ import annotations

import math

import numpy as np

from mnist_live.engine.blas import gemm
from mnist_live.engine.compiled import Loading, kernel
from mnist_live.engine.threads import default_threads, thread_pool  # noqa: F401 (default_threads: public here too)
from mnist_live.neural_network import add_scaled


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

    A step is `begin(lr)` (the step count and this step's scalars), then `update` on
    blocks of parameters (any order, any threads: `MLP.train_step` calls it on each block
    of a weight matrix right after the product that computed that block's gradient, while
    it is still in cache) and `rest(grads)` for what is left; `step(grads, lr)` does all
    three. Each block goes through the update rule in cache-sized chunks, a handful of
    NumPy passes per chunk with a small scratch buffer per thread (`lane`) instead of
    parameter-sized temporaries. The result does not depend on the blocks, the chunks or
    the threads. Adam keeps M = m/(1-b1) and V = v/(1-b2), the plain decayed sums of g and
    g^2, which saves two passes; the constant factors are folded into the scalar step
    size and eps. `grads` are read, never modified (except by `update(weight_decay=...)`,
    which adds the decay term into the gradient block it is given).
    """

    CHUNK = 65536  # elements per work item: all arrays of one chunk fit in L2 together
    G_SCALE = 2.0 ** 32   # Adam squares g*G_SCALE: squares of tiny gradients stay normal floats
    FLUSH_EVERY = 64      # steps between flushing decayed-to-nothing state to exact zeros
    FLUSH_BELOW = 1e-30   # (state of parameters whose gradient is 0, e.g. into dead neurons,
                          #  decays geometrically into denormals, which are ~100x slower)
    MAX_LANES = 8         # threads one optimizer may be updated from at once

    def __init__(self, params, kind="adam", momentum=0.9, nesterov=False,
                 beta2=0.999, eps=1e-8, threads=None, compiled=None):
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
        self._threads = None if threads is None else max(1, int(threads))
        self._items = [(i, s, min(s + self.CHUNK, p.size))
                       for i, p in enumerate(params) for s in range(0, p.size, self.CHUNK)]
        self._dtype = np.result_type(*params) if params else np.float32
        self._scratch = {}
        self._rest_items = {}   # `done` -> the work items rest() has left
        self._args = self._cargs = ()
        self._flush = 0.0
        # compiled.py's one-pass rules when available (compiled=None: loaded in the background
        # from the first step on, NumPy passes until then), required (True) or not used (False)
        self._want_compiled, self._fast, self._loading = compiled, None, None
        if compiled:
            self._fast = kernel(kind, self._dtype)
            if self._fast is None:
                raise RuntimeError("compiled optimizer updates need numba (pip install 'mnist-live[fast]')")

    # compiled=None loads the compiled rules only where they pay for numba's import (0.5-1 s
    # of CPU, most of it holding the GIL, beside the first steps): Adam and Nesterov (SGD
    # and momentum update the weights inside the products), over at least this many
    # parameters (below it the NumPy passes cost well under a millisecond a step; measured:
    # a 784-64-10 epoch ran 2.5x slower while numba loaded beside it).
    COMPILE_FROM = 1 << 19

    def _poll_kernel(self, wait=False):
        if self._want_compiled is None:                       # first step: start loading?
            worth = (self.kind == "adam" or self.nesterov and self.kind == "momentum") and \
                sum(p.size for p in self.params) >= self.COMPILE_FROM
            self._want_compiled = "loading" if worth else False
            self._loading = Loading(self.kind, self._dtype) if worth else None
        if self._loading is not None and (wait or not self._loading.is_alive()):
            self._loading.join()
            self._fast, self._loading = self._loading.result, None
            self._want_compiled = self._fast is not None

    @property
    def compiled(self):
        """Whether updates run compiled (compiled.py) rather than as NumPy passes (waits
        for the compiled rules to load if they are loading)."""
        if self._want_compiled is not False:
            self._poll_kernel(wait=True)
        return self._fast is not None

    @property
    def threads(self):
        """Threads of a step: as given, or default_threads() now (it follows BLAS's limit)."""
        return self._threads if self._threads is not None else default_threads()

    def scratch(self, lane):
        """A CHUNK-sized scratch array for thread `lane` (0 .. MAX_LANES-1)."""
        t = self._scratch.get(lane)
        if t is None:
            t = self._scratch[lane] = np.empty(self.CHUNK, self._dtype)
        return t

    @property
    def fuses(self):
        """Whether weight updates can be folded into the gradient product (see
        fused_weight_update): plain SGD and momentum, not Nesterov or Adam."""
        return self.kind == "sgd" or (self.kind == "momentum" and not self.nesterov)

    def fused_weight_update(self, k, a_t, delta, lr, weight_decay=0.0, rows=None, lane=0):
        """Update params[k] (or its rows [r0, r1) when rows=(r0, r1)), a weight matrix whose
        gradient is a_t @ delta + weight_decay*W ((fan_in, B) @ (B, fan_out); a_t holds
        just those rows), without materialising that gradient:
          sgd       W = (1 - lr*wd)*W - lr*(a_t @ delta)          one gemm
          momentum  m = mu*m - lr*(a_t @ delta);  m -= lr*wd*W;  W += m
        The caller then runs step(..., done=[k, ...]) (or rest) for the other parameters."""
        sl = slice(None) if rows is None else slice(*rows)
        W = self.params[k][sl]
        if self.kind == "sgd":
            gemm(a_t, delta, W, -lr, 1.0 - lr * weight_decay)
        elif self.fuses:
            m = self.state["m"][k][sl]
            if self._flush:
                np.copyto(m, 0, where=np.abs(m) < self._flush)
            gemm(a_t, delta, m, -lr, float(self.momentum))
            if weight_decay:
                add_scaled(m, -lr * weight_decay, W, self.scratch(lane))
            W += m
        else:
            raise ValueError(f"{self.kind} (nesterov={self.nesterov}) updates cannot be fused")

    def begin(self, lr):
        """Start a step at learning rate lr: count it, and fix its scalars for `update`."""
        if self._want_compiled is None or self._loading is not None:
            self._poll_kernel()
        self.t += 1
        self._args = step_scalars(self.kind, float(lr), self.t, self.momentum, self.beta2, self.eps,
                                  self.nesterov, self.G_SCALE)
        c = self._dtype.type   # the compiled rules compute in the parameters' precision, as NumPy does
        if self.kind == "momentum":
            self._cargs = (c(self._args[0]), c(self._args[1]), bool(self._args[2]))
        elif self.kind == "adam":
            b1, b2, step, eps = self._args
            self._cargs = (c(b1), c(b2), c(self.G_SCALE), c(step), c(eps))
        else:
            self._cargs = tuple(c(a) for a in self._args)
        # every FLUSH_EVERY steps each block's state is flushed before its update (in `update`,
        # fused_weight_update), in the same pass when compiled
        self._flush = self.FLUSH_BELOW if self.t % self.FLUSH_EVERY == 0 else 0.0

    def update(self, k, start, stop, g, lane=0, weight_decay=0.0):
        """Update elements [start, stop) of params[k] (flattened) from g, their gradient
        (a flat array of stop - start elements), with this step's scalars (begin).
        weight_decay: add weight_decay * p into g first (the NumPy passes modify g for it).
        Compiled (compiled.py): one pass over the block; else NumPy passes, chunk by chunk."""
        p = self._flat_params[k]
        if self._fast is not None and g.dtype == p.dtype and (stop - start > 4096 or self.kind == "adam"):
            # (a call into compiled code costs a few us: NumPy's two or three passes are
            #  quicker for small SGD or momentum blocks, and give the same numbers)
            wd, sl, flush = p.dtype.type(weight_decay), slice(start, stop), p.dtype.type(self._flush)
            if self.kind == "adam":
                self._fast(p[sl], g, self._flat_state["M"][k][sl], self._flat_state["V"][k][sl], wd, flush,
                           *self._cargs)
            elif self.kind == "momentum":
                mu, lr, nesterov = self._cargs
                self._fast(p[sl], g, self._flat_state["m"][k][sl], wd, flush, mu, lr, nesterov)
            else:
                self._fast(p[sl], g, wd, *self._cargs)
            return
        t, state = self.scratch(lane), [arrays[k] for arrays in self._flat_state.values()]   # [] | [m] | [M, V]
        for s in range(start, stop, self.CHUNK):
            e = min(s + self.CHUNK, stop)
            gc = g[s - start:e - start]
            if self._flush:
                for arrays in self._flat_state.values():
                    a = arrays[k][s:e]
                    np.copyto(a, 0, where=np.abs(a) < self._flush)
            if weight_decay:
                tc = t[:e - s]
                np.multiply(p[s:e], weight_decay, out=tc)
                gc += tc
            RULES[self.kind](p[s:e], *(a[s:e] for a in state), gc, t[:e - s], *self._args)

    def rest(self, grads, done=(), threads=None):
        """Update every parameter but the indices in `done` (already updated this step)
        from `grads` (same shapes as params), on `threads` threads (default self.threads)."""
        done = tuple(done)
        items = self._rest_items.get(done)
        if items is None:
            items = self._rest_items[done] = [it for it in self._items if it[0] not in done]
        flat_grads = [g.reshape(-1) for g in grads]
        n = max(1, min(threads or self.threads, sum(e - s for _, s, e in items) // (2 * self.CHUNK), self.MAX_LANES))
        if n == 1:
            self._run(0, items, flat_grads)
            return
        shares = _shares(items, n)
        pool = thread_pool(n - 1)
        futures = [pool.submit(self._run, lane, share, flat_grads) for lane, share in enumerate(shares[1:], 1)]
        try:
            self._run(0, shares[0], flat_grads)
        finally:
            for f in futures:
                f.result()

    def _run(self, lane, items, flat_grads):
        for k, s, e in items:
            self.update(k, s, e, flat_grads[k][s:e], lane)

    def step(self, grads, lr, done=()):
        """One update of every parameter from `grads` (same shapes as params), except
        the indices in `done`, already updated by fused_weight_update this step."""
        self.begin(lr)
        self.rest(grads, done)

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


# ------------------------------------------------------------------ the update rules (NumPy)
def step_scalars(kind, lr, t, momentum, beta2, eps, nesterov, g_scale):
    """The scalars of step t of an update rule (RULES' arguments after the arrays), as
    Python floats: with NumPy 2 a float64 scalar would make every float32 pass compute in
    float64 through a slow casting loop."""
    if kind == "sgd":
        return (lr,)
    if kind == "momentum":
        return (float(momentum), lr, bool(nesterov))
    b1, b2 = momentum, beta2
    # step*m/(sqrt(v)+eps) with m=(1-b1)M, v=(1-b2)V:
    #   = step*(1-b1)/sqrt(1-b2) * M/(sqrt(V) + eps/sqrt(1-b2))
    # V holds sums of (g*G_SCALE)^2, so sqrt(V) is G_SCALE times too large:
    # scale eps and the step by the same factor.
    step = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    return (float(b1), float(b2), step * (1 - b1) / math.sqrt(1 - b2) * g_scale,
            float(eps) / math.sqrt(1 - b2) * g_scale)


# Each rule updates one chunk in place: p the parameters, then the optimizer's state
# arrays (m, or M and V), g their gradient, t a scratch array of the same size (all 1-D).
def sgd_rule(p, g, t, lr):
    np.multiply(g, lr, out=t)
    p -= t


def momentum_rule(p, m, g, t, mu, lr, nesterov):
    np.multiply(g, lr, out=t)
    m *= mu
    m -= t
    if nesterov:                 # p += mu*m - lr*g
        p -= t
        np.multiply(m, mu, out=t)
        p += t
    else:
        p += m


def adam_rule(p, M, V, g, t, b1, b2, step, eps):
    M *= b1
    M += g
    np.multiply(g, Optimizer.G_SCALE, out=t)
    np.multiply(t, t, out=t)
    V *= b2
    V += t
    np.sqrt(V, out=t)
    t += eps
    np.divide(M, t, out=t)
    t *= step
    p -= t


RULES = {"sgd": sgd_rule, "momentum": momentum_rule, "adam": adam_rule}


def _shares(items, n):
    """Work items [(k, start, stop)] dealt to n threads, largest first to the least loaded."""
    loads, shares = [0] * n, [[] for _ in range(n)]
    for item in sorted(items, key=lambda it: it[1] - it[2]):
        j = loads.index(min(loads))
        shares[j].append(item)
        loads[j] += item[2] - item[1]
    return shares


def lr_at(base_lr, schedule, progress):
    """Learning rate at `progress` in [0, 1] of the whole run."""
    if schedule == "cosine":
        return base_lr * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0)))
    if schedule == "step":
        return base_lr * (0.1 if progress >= 0.5 else 1.0) * (0.1 if progress >= 0.75 else 1.0)
    return base_lr
