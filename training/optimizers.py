"""The optimizers a training step applies (SGD, momentum, Adam) and the learning-rate schedule.

`Optimizer` updates a list of parameter arrays in place from their gradients, with its state
allocated once; SGD and momentum can also fold a weight update into the product that
computes its gradient (`fused_weight_update`, called from `MLP.train_step`). `lr_at` is the
schedule over a run. Imports the standard library, NumPy and `neural_network` (its gemm).
"""
from __future__ import annotations

import math
import os

import numpy as np

from mnist_live.neural_network import add_scaled, gemm


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
                add_scaled(m, -lr * weight_decay, W, self._scratch[0])
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
