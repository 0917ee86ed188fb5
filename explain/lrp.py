"""Relevance: layer-wise relevance propagation (LRP) of one score of one digit.

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
the other rules. The window explains with z+ at the input (`view_model.explain_relevance`):
only ink passes relevance on there, so its lines and pixel maps run from the ink; its maps
are not those of z^B (on a trained network the two correlate weakly). A switched-off
neuron (ReLU output 0) gets R_j = a_j * (...) = 0, so the
edges into it carry exactly nothing. With biases the dense layers pass on only
sum_j R_j (z_j - b_j) / (z_j + eps sign z_j): the bias and eps keep the rest
(`relevance_absorbed` computes that share). LRP with these rules is linear in the output
relevance for a fixed forward pass, so relevance(c, contrast=d) = relevance(c) - relevance(d).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mnist_live.explain.edges import top_of_matrix
from mnist_live.neural_network import ACTIVATE, MLP, to_float

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
        top, share = top_of_matrix(vals, k, rows, cols)
        edges.append(top)
        coverage.append(share)
    return edges, coverage


def pixel_relevance(rel: Relevance) -> np.ndarray:
    """The input relevance map (784,), signed: > 0 pixels speak for the explained score."""
    return rel.neurons[0]
