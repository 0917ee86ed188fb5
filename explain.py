"""Explanations of a network's predictions: relevance, neuron statistics, projections, dreams.

Pure NumPy on top of `neural_network.MLP` (weights[i] is (fan_in, fan_out)); no pygame, so
the window draws what these functions compute and the tests check them against brute force.

Relevance (layer-wise relevance propagation, LRP) explains one score of one digit: the
target logit z_c (pre-softmax), or z_c - z_d for "c rather than d". The score is put on
the output layer and handed down layer by layer, each neuron passing its relevance R_j on
to its inputs in proportion to what each input contributed to it:

    dense layers (h2 -> out, h1 -> h2):  LRP-epsilon
        R_i = sum_j a_i W_ij / (z_j + eps sign z_j) * R_j
    pixels (input -> h1):  the z^B rule for inputs bounded to [l, h] = [0, 1]
        R_i = sum_j (x_i W_ij - l W+_ij - h W-_ij) / sum_i'(...) * R_j
            = sum_j (x_i W_ij - W-_ij) / D_j * R_j,   D_j = sum_i (x_i W_ij - W-_ij) > 0

(W+ = max(W, 0), W- = min(W, 0).) The z^B rule is the deep-Taylor rule for a bounded input
domain (Montavon et al., 2017): every term is >= 0, so it conserves the relevance exactly
and takes the sign of R_j; unlike z+ (R_i ~ x_i W+_ij) it also credits a blank pixel whose
ink would have worked against neuron j. `relevance(..., input_rule="z+")` or `"eps"` pick
the other rules. A switched-off neuron (ReLU output 0) gets R_j = a_j * (...) = 0, so the
edges into it carry exactly nothing. With biases the dense layers pass on only
sum_j R_j (z_j - b_j) / (z_j + eps sign z_j): the bias and eps keep the rest
(`relevance_absorbed` computes that share). LRP with these rules is linear in the output
relevance for a fixed forward pass, so relevance(c, contrast=d) = relevance(c) - relevance(d).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from neural_network import ACTIVATE, ACTIVATE_GRAD, MLP, to_float

INPUT_RULES = ("zB", "z+", "eps")


# ------------------------------------------------------------------ relevance (LRP)
@dataclass
class Relevance:
    target: int                 # explained class
    contrast: int | None        # class d in "target rather than d" (None: plain)
    neurons: list               # relevance per layer [R_input (784,), R_h1 (n1,), ..., R_out (10,)], float32
    logit: float                # the explained score (z_c, or z_c - z_d)
    eps: float = 0.01           # the epsilon of the dense layers' rule
    input_rule: str = "zB"      # the rule of the input -> h1 pair (see INPUT_RULES)
    # Per layer pair, s_j (fan_out,) float32 with R(i -> j) = c_ij * s_j, where c_ij is i's
    # contribution to j under the pair's rule (a_i W_ij; zB: x_i W_ij - W-_ij; z+: x_i W+_ij).
    # Zero for every neuron without relevance, in particular the switched-off ones.
    scales: list = field(default_factory=list, repr=False)


def forward_pre(net: MLP, x):
    """Activations [x, a1, ..., logits] and pre-activations [z1, ..., logits] of one
    sample x (784,) in [0, 1] (uint8 is scaled by 1/255), float32 (the logits are the
    last layer's pre-softmax scores)."""
    x = np.asarray(x)
    a = (to_float(x) if x.dtype == np.uint8 else x).astype(np.float32).reshape(-1)
    acts, zs = [a], []
    act = ACTIVATE[net.activation]
    for i, (W, b) in enumerate(zip(net.weights, net.biases)):
        z = a @ W + b                                    # (fan_in,) @ (fan_in, fan_out)
        zs.append(z)
        if i < net.n_layers - 1:
            a = z.copy()
            act(a)
        else:
            a = z
        acts.append(a)
    return acts, zs


def _stabilised(z, eps):
    """z + eps * sign(z), with sign(0) = +1, so |result| >= eps."""
    return z + np.where(z >= 0, np.float32(eps), np.float32(-eps))


def _divide(r, d):
    """r / d where r != 0 and d != 0, else 0 (no relevance, or nowhere to send it)."""
    out = np.zeros_like(r)
    np.divide(r, d, out=out, where=(r != 0) & (d != 0))
    return out


def relevance(net: MLP, x, target, contrast=None, eps=0.01, input_rule="zB") -> Relevance:
    """LRP of logit `target` (or z_target - z_contrast) for one digit x (784,) in [0, 1].

    Rules as in the module docstring: LRP-epsilon for the dense layers, `input_rule`
    ("zB" default, "z+" or "eps") for input -> h1. Derived for ReLU networks; for
    sigmoid/tanh the same formulas apply (and the conservation identity holds), but
    "switched off" has no meaning there."""
    n_out = net.sizes[-1]
    target = int(target)
    if not 0 <= target < n_out:
        raise ValueError(f"target {target} is not a class (0..{n_out - 1})")
    if contrast is not None:
        contrast = int(contrast)
        if not 0 <= contrast < n_out or contrast == target:
            raise ValueError(f"contrast {contrast} must be a class other than the target {target}")
    if input_rule not in INPUT_RULES:
        raise ValueError(f"unknown input rule {input_rule!r} (choose from {', '.join(INPUT_RULES)})")
    acts, zs = forward_pre(net, x)
    logits = zs[-1]
    R = np.zeros(n_out, np.float32)                      # (e_c - e_d) * logits
    R[target] = logits[target]
    if contrast is not None:
        R[contrast] = -logits[contrast]
    logit = float(logits[target] - (logits[contrast] if contrast is not None else 0.0))
    neurons, scales = [R], []
    for pair in range(net.n_layers - 1, -1, -1):
        W, a = net.weights[pair], acts[pair]
        if pair > 0 or input_rule == "eps":
            s = _divide(R, _stabilised(zs[pair], eps))   # (fan_out,)
            R = a * (W @ s)                               # (fan_in, fan_out) @ (fan_out,)
        elif input_rule == "zB":
            Wn = np.minimum(W, 0)
            s = _divide(R, a @ W - Wn.sum(axis=0))        # D_j = sum_i x_i W_ij - W-_ij
            R = a * (W @ s) - Wn @ s
        else:                                              # z+
            Wp = np.maximum(W, 0)
            s = _divide(R, a @ Wp)
            R = a * (Wp @ s)
        scales.insert(0, s.astype(np.float32))
        neurons.insert(0, R.astype(np.float32))
    return Relevance(target, contrast, neurons, logit, float(eps), input_rule, scales)


def relevance_absorbed(net: MLP, x, rel: Relevance) -> list:
    """Per layer pair, the relevance the biases and eps keep (float):
    sum(R_upper) - sum(R_lower) = sum_j R_j (b_j + eps sign z_j) / (z_j + eps sign z_j)
    for the epsilon rule; 0 for zB and z+ (conservative; up to neurons with D_j = 0)."""
    _, zs = forward_pre(net, x)
    out = []
    for pair in range(net.n_layers):
        R_up = rel.neurons[pair + 1].astype(np.float64)
        if pair > 0 or rel.input_rule == "eps":
            z = zs[pair].astype(np.float64)
            den = z + np.where(z >= 0, rel.eps, -rel.eps)
            keep = net.biases[pair] + (den - z)
            out.append(float(np.sum(np.where(R_up != 0, R_up * keep / np.where(den == 0, 1, den), 0))))
        else:
            out.append(float(np.sum(R_up[rel.scales[pair] == 0])))
    return out


def _contributions(net: MLP, acts, rel: Relevance, pair, rows, cols):
    """c_ij of the pair's rule for sources `rows` x targets `cols`: a new
    (len(rows), len(cols)) float32 array (computed in place: this is top_edges' hot path)."""
    W = net.weights[pair]
    c = np.take(W, rows, axis=0) if len(rows) < W.shape[0] else W
    c = np.take(c, cols, axis=1)                           # np.take: ~5x faster than W[:, cols]
    a = acts[pair][rows, None].astype(np.float32)
    if pair > 0 or rel.input_rule == "eps":
        c *= a
    elif rel.input_rule == "zB":
        neg = np.minimum(c, 0)
        c *= a
        c -= neg
    else:
        np.maximum(c, 0, out=c)
        c *= a
    return c


def edge_relevance(net: MLP, acts, rel: Relevance, pair) -> np.ndarray:
    """R(i -> j) (fan_in, fan_out) for layer pair `pair` (0 = input -> h1): i's share of
    j's relevance, c_ij * s_j (c_ij = a_i W_ij for the epsilon rule, so this is
    a_i W_ij / (z_j + eps sign z_j) * R_j). Summed over j it gives rel.neurons[pair].
    acts = net.forward(x, return_all=True) (only the layer inputs are read)."""
    W = net.weights[pair]
    out = np.zeros(W.shape, np.float32)
    s = rel.scales[pair]
    cols = np.flatnonzero(s)
    rows = np.arange(W.shape[0])
    out[:, cols] = _contributions(net, acts, rel, pair, rows, cols) * s[cols]
    return out


def top_edges(net: MLP, acts, rel: Relevance, k) -> tuple[list, list]:
    """The k edges of largest |R(i -> j)| per layer pair, as (src, dst, signed R) arrays,
    weakest first (like view_model.strongest_connections, so the strongest draw on top),
    and per pair the fraction in [0, 1] of the pair's total |R| those edges carry.

    Only edges into neurons with relevance are computed (a switched-off neuron has none),
    and for the epsilon and z+ rules only from sources that are on; zero edges are never
    returned, so a pair may give fewer than k."""
    edges, coverage = [], []
    empty = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.float32))
    for pair in range(net.n_layers):
        s = rel.scales[pair]
        cols = np.flatnonzero(s)
        a = acts[pair]
        if pair == 0 and rel.input_rule == "zB":
            rows = np.arange(len(a))                   # blank pixels carry relevance too
        else:
            rows = np.flatnonzero(a)
        vals = _contributions(net, acts, rel, pair, rows, cols)   # (n_rows, n_cols)
        vals *= s[cols]
        mag = np.abs(vals)                                           # (n_rows, n_cols)
        total = float(mag.sum(dtype=np.float64))
        mag = mag.ravel()
        kk = min(int(k), mag.size)
        if kk <= 0 or total == 0.0:
            edges.append(empty)
            coverage.append(0.0)
            continue
        cand = np.arange(mag.size)
        if len(cols) > kk:
            # kk columns have an edge >= the kk-th largest column maximum t, so the top kk
            # edges are all >= t: partition only those (a fraction of the matrix).
            col_max = mag.reshape(len(rows), len(cols)).max(axis=0)
            t = np.partition(col_max, len(cols) - kk)[len(cols) - kk]
            cand = np.flatnonzero(mag >= t)
        top = cand[np.argpartition(mag[cand], len(cand) - kk)[len(cand) - kk:]]
        top = top[mag[top] > 0]
        top = top[np.argsort(mag[top], kind="stable")]              # weakest first
        r, c = np.divmod(top, len(cols))
        edges.append((rows[r], cols[c], vals.ravel()[top].astype(np.float32)))
        coverage.append(min(1.0, float(mag[top].sum(dtype=np.float64)) / total))   # (rounding)
    return edges, coverage


def pixel_relevance(rel: Relevance) -> np.ndarray:
    """The input relevance map (784,), signed: > 0 pixels speak for the explained score."""
    return rel.neurons[0]


# ------------------------------------------------------------------ neuron roles
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

    def prototypes(self, layer) -> np.ndarray:
        """(n, 784) all prototypes of a layer (for an atlas)."""
        w = self.weight[layer].astype(np.float32)
        out = np.zeros_like(self.sums[layer])
        np.divide(self.sums[layer], w[:, None], out=out, where=w[:, None] > 0)
        return out


# ------------------------------------------------------------------ projections
def _top2_components(Xc):
    """First two principal axes (d, 2) of centred Xc (N, d), as float64: subspace iteration
    with Rayleigh-Ritz on the smaller of Xc.T Xc and Xc Xc.T (a full eigh of a 1024 x 1024
    matrix takes seconds on a busy 2-core machine; this takes tens of milliseconds)."""
    N, d = Xc.shape
    small = (Xc.T @ Xc if d <= N else Xc @ Xc.T).astype(np.float64)   # (m, m), in Xc's precision
    m = small.shape[0]
    p = min(m, 12)
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((m, p)))[0]
    vecs = Q[:, :2]
    for _ in range(500):
        Z = small @ Q                                       # (m, p)
        T = Q.T @ Z                                         # Rayleigh quotient (p, p)
        w, V = np.linalg.eigh((T + T.T) / 2)
        order = np.argsort(w)[::-1]
        w, V = w[order], V[:, order]
        vecs = Q @ V[:, :2]
        resid = Z @ V[:, :2] - vecs * w[:2]
        if w[0] <= 0 or np.linalg.norm(resid, axis=0).max() <= 1e-10 * w[0]:
            break
        Q = np.linalg.qr(Z @ V)[0]
    if d > N:                                               # left vectors -> right ones
        vecs = Xc.T @ vecs
        vecs /= np.maximum(np.linalg.norm(vecs, axis=0), 1e-300)
    return vecs[:, :2] if vecs.shape[1] >= 2 else np.pad(vecs, ((0, 0), (0, 2 - vecs.shape[1])))


def pca_2d(X, previous=None) -> np.ndarray:
    """(N, d) -> (N, 2) float32: the points on their first two principal components
    (sign fixed so each axis' largest loading is positive). With `previous` (N, 2), the
    projection is aligned to it by orthogonal Procrustes (the rotation or reflection and
    the scale, plus the shift, that bring it closest in least squares), so between two
    snapshots the points move rather than flip."""
    return pca_2d_fit(X, previous)[0]


def pca_2d_fit(X, previous=None):
    """`pca_2d` and the affine map it applied: (Y (N, 2) float32, mean (d,), A (d, 2), shift
    (2,)), Y = (X - mean) @ A + shift, so any other row of the same layer maps the same way."""
    X = np.asarray(X)
    X = X if X.dtype == np.float32 else X.astype(np.float64)    # float32 stays: half the time
    mean = X.mean(axis=0, dtype=np.float64)                     # (d,)
    Xc = X - mean.astype(X.dtype)                               # (N, d)
    V = _top2_components(Xc)                                    # (d, 2) float64
    flip = np.sign(V[np.abs(V).argmax(axis=0), [0, 1]])
    A, shift = V * np.where(flip == 0, 1, flip), np.zeros(2)
    Y = Xc @ A                                                  # (N, 2) float64
    if previous is not None:
        scale, R, mu_y, mu_p = _procrustes(Y, previous)
        A, shift = scale * A @ R, mu_p - scale * mu_y @ R      # scale * (Y - mu_y) @ R + mu_p
        Y = scale * (Y - mu_y) @ R + mu_p
    return Y.astype(np.float32), mean, A, shift


def _procrustes(Y, previous):
    """(scale, R (2, 2), mu_y (2,), mu_p (2,)) minimising ||scale (Y - mu_y) R + mu_p - previous||."""
    Y = np.asarray(Y, np.float64)
    P = np.asarray(previous, np.float64)
    if P.shape != Y.shape:
        raise ValueError(f"previous has shape {P.shape}, expected {Y.shape}")
    mu_y, mu_p = Y.mean(axis=0), P.mean(axis=0)
    Yc, Pc = Y - mu_y, P - mu_p
    U, S, Vt = np.linalg.svd(Yc.T @ Pc)                     # (2, 2)
    R = U @ Vt                                              # argmin ||Yc R - Pc||, R orthogonal
    norm = float((Yc * Yc).sum())
    scale = S.sum() / norm if norm > 0 else 1.0
    return scale, R, mu_y, mu_p


def balanced_subset(y, n=2000, seed=0) -> np.ndarray:
    """Sorted indices of a fixed class-balanced subset of labels y: n // C per class (the
    first n % C classes one more), all of a class when it has fewer; the same for the
    same y, n and seed."""
    y = np.asarray(y)
    classes = np.unique(y)
    rng = np.random.default_rng(seed)
    picks = []
    for i, c in enumerate(classes):
        members = np.flatnonzero(y == c)
        quota = n // len(classes) + (1 if i < n % len(classes) else 0)
        picks.append(rng.choice(members, size=min(quota, len(members)), replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.intp)


# ------------------------------------------------------------------ dreams
def _unit_gradient(net: MLP, x, layer, unit):
    """(score, d score / d x (784,)) for one unit: the logit `unit` when layer is None,
    else the pre-activation of neuron `unit` of hidden layer `layer` (0-based) — the
    pre-activation so a neuron that is off still has a direction to turn on."""
    acts, zs = forward_pre(net, x)
    top = net.n_layers - 1 if layer is None else layer
    delta = np.zeros(net.sizes[top + 1], np.float32)
    delta[unit] = 1.0
    grad = ACTIVATE_GRAD[net.activation]
    for i in range(top, -1, -1):
        delta = net.weights[i] @ delta                      # (fan_in, fan_out) @ (fan_out,)
        if i > 0:
            grad(acts[i], delta)
    return float(zs[top][unit]), delta


def _blur(img):
    """Light separable [1, 2, 1] / 4 blur of a (784,) image, edges repeated."""
    a = img.reshape(28, 28)
    p = np.pad(a, 1, mode="edge")
    a = (p[:-2] + 2 * p[1:-1] + p[2:]) / 4                   # rows (28, 30)
    a = (a[:, :-2] + 2 * a[:, 1:-1] + a[:, 2:]) / 4          # cols (28, 28)
    return a.reshape(784).astype(np.float32)


def dream(net: MLP, target, steps=60, lr=0.05, l2=1.0, blur_every=4, layer=None, neuron=None,
          seed=0) -> Iterator[np.ndarray]:
    """Gradient ascent on the input, from faint noise: maximise logit `target`, or with
    `layer` (0-based hidden layer) the pre-activation of neuron `neuron` (default: target).

    Each step moves the pixels by lr times the gradient divided by its RMS (so lr is the
    typical change per pixel per step, whatever the network's scale) minus lr * l2 * x
    (an L2 pull towards blank: 5 % of the ink per step by default) and clips to [0, 1];
    every `blur_every` steps it first blurs lightly (strokes rather than single-pixel
    noise). Yields the (784,) image after each step. bench/bench_explain.py measures what
    the defaults give on a trained network."""
    if layer is None:
        unit = int(target)
        if not 0 <= unit < net.sizes[-1]:
            raise ValueError(f"target {unit} is not a class")
    else:
        if not 0 <= layer < net.n_layers - 1:
            raise ValueError(f"layer {layer} is not a hidden layer (0..{net.n_layers - 2})")
        unit = int(target if neuron is None else neuron)
        if not 0 <= unit < net.sizes[layer + 1]:
            raise ValueError(f"neuron {unit} is not in hidden layer {layer}")
    x = np.random.default_rng(seed).uniform(0, 0.05, 784).astype(np.float32)
    for step in range(1, steps + 1):
        if blur_every and step % blur_every == 0:
            x = _blur(x)                                   # before the step: every frame ends on one
        _, g = _unit_gradient(net, x, layer, unit)
        rms = float(np.sqrt(np.mean(g * g)))
        if rms > 0:
            x = x + np.float32(lr / rms) * g
        x -= np.float32(lr * l2) * x
        np.clip(x, 0, 1, out=x)
        yield x.copy()
