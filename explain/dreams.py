"""Dreams: the input the network's gradient ascends to for a class or a hidden neuron, from
faint noise, with an L2 pull towards blank and a light blur. Pure NumPy.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from mnist_live.explain.lrp import forward_pre
from mnist_live.neural_network import ACTIVATE_GRAD, MLP


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
