"""What each hidden neuron does: the class it supports most, and its statistics over the test
set (the digits that excite it most, what it responds to, how often it is on).

Pure NumPy on top of `neural_network.MLP`; no pygame.
"""
from __future__ import annotations

import numpy as np

from mnist_live.neural_network import MLP


def preferred_class(net: MLP, on_rates=None) -> list:
    """Per hidden layer, (n,) int: the output class each neuron most supports.

    Last hidden layer: argmax_c W_out[j, c]. Deeper layers: argmax_c of the product of the
    downstream weights, W_{l+1} D_{l+1} W_{l+2} ... D_last W_out, the neuron's summed paths
    to each class. D is the identity without `on_rates`. With `on_rates` (per hidden layer
    (n,), the fraction of digits on which each neuron is on, e.g. NeuronStats.on_rates()),
    D = diag(on rate): a path through a ReLU counts as often as that neuron passes
    anything on. This is the expected gradient if the neurons switch independently.
    bench/bench_explain.py checks both rules against the class of largest mean relevance
    on test digits (see its README section for the figures)."""
    L = net.n_layers
    if L < 2:
        return []
    if on_rates is not None and len(on_rates) != L - 1:
        raise ValueError(f"on_rates has {len(on_rates)} layers, the network {L - 1} hidden layers")
    paths = net.weights[-1].astype(np.float64)            # (n_last, C): summed paths to each class
    out = [paths.argmax(axis=1)]
    for layer in range(L - 3, -1, -1):
        if on_rates is not None:
            paths = np.asarray(on_rates[layer + 1], np.float64)[:, None] * paths
        paths = net.weights[layer + 1].astype(np.float64) @ paths   # (n_l, n_next) @ (n_next, C)
        out.insert(0, paths.argmax(axis=1))
    return [p.astype(np.int64) for p in out]


def order_by_class(preferred: np.ndarray) -> np.ndarray:
    """(n,) permutation grouping neurons by preferred class 0, 1, ..., keeping their order
    within a class (for grids sorted by class)."""
    return np.argsort(np.asarray(preferred), kind="stable")


class NeuronStats:
    """Accumulated over a test-set sweep, chunk by chunk (the window feeds chunks in its
    idle time): per hidden neuron the k test digits that activate it most, and the
    activation-weighted mean of the digits (what it responds to).

    Memory: per layer the prototype sums (n, 784) float32, the weight sums (n,) and the
    running top k (n, k); each chunk's top k is merged in with one argpartition."""

    def __init__(self, sizes_hidden: tuple, k=9):
        self.k = int(k)
        self.sizes = tuple(int(n) for n in sizes_hidden)
        self.sums = [np.zeros((n, 784), np.float32) for n in self.sizes]     # sum_b a_bj x_b
        self.weight = [np.zeros(n, np.float64) for n in self.sizes]          # sum_b a_bj
        self.top_value = [np.full((n, self.k), -np.inf, np.float32) for n in self.sizes]
        self.top_index = [np.full((n, self.k), -1, np.int64) for n in self.sizes]
        self.on_count = [np.zeros(n, np.int64) for n in self.sizes]             # digits with a > 0
        self.seen = 0

    def update(self, x_chunk_float, hidden_acts, indices):
        """x_chunk_float (B, 784) in [0, 1]; hidden_acts [(B, n_1), ...]; indices (B,) the
        test-set indices of the chunk's digits."""
        x = np.asarray(x_chunk_float, np.float32)
        indices = np.asarray(indices, np.int64)
        for layer, h in enumerate(hidden_acts):
            h = np.asarray(h, np.float32)                                     # (B, n)
            self.sums[layer] += h.T @ x                                       # (n, B) @ (B, 784)
            self.weight[layer] += h.sum(axis=0, dtype=np.float64)
            self.on_count[layer] += (h > 0).sum(axis=0)
            vals = np.concatenate([self.top_value[layer], h.T], axis=1)       # (n, k + B)
            idx = np.concatenate([self.top_index[layer], np.broadcast_to(indices, h.T.shape)], axis=1)
            if vals.shape[1] > self.k:
                part = np.argpartition(-vals, self.k - 1, axis=1)[:, :self.k]
                vals = np.take_along_axis(vals, part, axis=1)
                idx = np.take_along_axis(idx, part, axis=1)
            self.top_value[layer], self.top_index[layer] = vals, idx
        self.seen += len(x)

    def top_digits(self, layer, j) -> np.ndarray:
        """Up to k test indices that activate neuron j most (activation > 0), strongest
        first (ties: lower index first)."""
        v, i = self.top_value[layer][j], self.top_index[layer][j]
        keep = v > 0
        v, i = v[keep], i[keep]
        return i[np.lexsort((i, -v))]

    def prototype(self, layer, j) -> np.ndarray:
        """(784,) activation-weighted mean of the digits seen; zeros if never active."""
        w = self.weight[layer][j]
        if w <= 0:
            return np.zeros(784, np.float32)
        return (self.sums[layer][j] / np.float32(w)).astype(np.float32)

    def on_rates(self) -> list:
        """Per layer (n,) float: the fraction of the digits seen on which each neuron was on
        (for preferred_class)."""
        return [c / max(self.seen, 1) for c in self.on_count]

    def arrays(self) -> list:
        """Every array it accumulates (to make them read-only once the statistics are complete)."""
        return [*self.sums, *self.weight, *self.top_value, *self.top_index, *self.on_count]

    def prototypes(self, layer) -> np.ndarray:
        """(n, 784) all prototypes of a layer (for an atlas)."""
        w = self.weight[layer].astype(np.float32)
        out = np.zeros_like(self.sums[layer])
        np.divide(self.sums[layer], w[:, None], out=out, where=w[:, None] > 0)
        return out
