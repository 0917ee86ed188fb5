"""The backward pass, as the backward view shows it: for one digit and a target class, the
error at the output, every neuron's error signal and the weight gradient, layer by layer.

With the loss of one digit x (784,) for target class c, loss = -log softmax(z_out)[c]:

    e        = softmax(z_out) - onehot(c)                the error at the output (10,) = dloss/dz_out
    delta_l  = (delta_{l+1} @ W_{l+1}.T) * f'(z_l)       each hidden layer's error signal dloss/dz_l
    dloss/dW_l[i, j] = a_{l-1}[i] * delta_l[j],   dloss/db_l = delta_l      (a_0 = x)

so layer pair l's gradient is the outer product of its inputs' activations and its
outputs' error signals. For ReLU, f'(z) = 0 where the neuron is off (a = 0): its delta is
0 whatever comes back, and so is the gradient of every weight into it and out of it (the
`off` masks say where). The weight-decay term (wd * W) is not part of a digit's gradient:
it is the same for every digit (training/update_rule.py adds it when it plugs a gradient
into the optimizer's rule).

The target: the digit's true class when it has one (a test digit). A drawn digit has no
label; `backward(net, x)` then takes the predicted class, so the gradient is what a step
on this digit would change to make the network surer of the answer it already gives (the
window may pass any class instead, e.g. the class it explains). `Backward.labelled` says
which. Works on any MLP: the live weights, a rewound snapshot, the weights before a step.

`gradient_edges` picks the k edges of largest |a_i delta_j| per layer pair without building
the (fan_in, fan_out) gradient (`edges.top_of_outer`). `backward_batch` is the same pass for
a batch (training/health.py measures gradient norms and dead ReLUs with it). Imports NumPy,
`neural_network` and `explain.edges`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_live.explain.edges import top_of_outer
from mnist_live.neural_network import ACTIVATE_GRAD, MLP, to_float


@dataclass
class Backward:
    """One digit's backward pass (all float32, 1-D)."""
    target: int              # the class the loss is of
    labelled: bool           # True: the digit's true class; False: a class chosen for it (the predicted one)
    acts: list               # [x (784,), a_h1, ..., probs (10,)]: the forward pass
    deltas: list             # [delta_h1, ..., delta_out]: dloss/d(pre-activation) per layer; delta_out = error
    off: list                # per hidden layer, bool (n,): the ReLU is off (a = 0), so its delta is 0
    loss: float              # -log probs[target]

    @property
    def error(self) -> np.ndarray:
        """The error at the output, softmax - onehot(target) (10,)."""
        return self.deltas[-1]

    @property
    def probs(self) -> np.ndarray:
        return self.acts[-1]

    def weight_gradient(self, pair) -> np.ndarray:
        """dloss/dW of layer pair `pair` (0 = input -> h1), the whole (fan_in, fan_out) matrix
        a_i * delta_j (for a tooltip's single edge, index it: a[i] * delta[j])."""
        return np.outer(self.acts[pair], self.deltas[pair]).astype(np.float32)


def _inputs(net, x):
    """x as float32 (B, 784) in [0, 1] (uint8 is scaled by 1/255)."""
    x = np.asarray(x)
    return np.atleast_2d(to_float(x) if x.dtype == np.uint8 else x).astype(net.weights[0].dtype, copy=False)


def backward_batch(net: MLP, x, y):
    """Forward and backward of the mean cross-entropy of x (B, 784), y (B,) classes, no
    dropout: (acts [x, a_h1, ..., probs], deltas [delta_h1, ..., delta_out]), each (B, n),
    with delta the per-sample dloss_s/dz (not divided by B). The mean loss's gradient of
    pair l is acts[l].T @ deltas[l] / B (`mean_gradients`)."""
    y = np.asarray(y, np.intp).reshape(-1)
    act_grad = ACTIVATE_GRAD[net.activation]
    acts = net.forward(_inputs(net, x), return_all=True)   # [x (B, 784), a_h1 (B, n1), ..., probs (B, 10)]
    delta = acts[-1].copy()                              # (B, 10)
    delta[np.arange(len(y)), y] -= 1
    deltas = [delta]
    for i in range(net.n_layers - 1, 0, -1):
        delta = delta @ net.weights[i].T                 # (B, fan_out) @ (fan_out, fan_in)
        act_grad(acts[i], delta)
        deltas.insert(0, delta)
    return acts, deltas


def mean_gradients(acts, deltas, weights=None, weight_decay=0.0):
    """[dW1, db1, dW2, ...] of the mean loss from backward_batch's (acts, deltas), plus
    weight_decay * W on the weights when given (the order of MLP.params)."""
    B = len(deltas[-1])
    grads = []
    for i, d in enumerate(deltas):
        dW = acts[i].T @ d                               # (fan_in, B) @ (B, fan_out)
        dW *= 1.0 / B
        if weight_decay:
            dW += weight_decay * weights[i]
        grads += [dW, d.sum(axis=0) / B]
    return grads


def backward(net: MLP, x, target=None) -> Backward:
    """The backward pass of one digit x (784,) for class `target` (None: the predicted
    class, for a digit without a label; see the module docstring)."""
    n_out = net.sizes[-1]
    labelled = target is not None
    if labelled:
        target = int(target)
        if not 0 <= target < n_out:
            raise ValueError(f"target {target} is not a class (0..{n_out - 1})")
    else:
        target = int(net.forward(_inputs(net, x)[0]).argmax())
    acts, deltas = backward_batch(net, x, [target])
    acts, deltas = [a[0] for a in acts], [d[0] for d in deltas]
    off = [a == 0 for a in acts[1:-1]] if net.activation == "relu" else [np.zeros(len(a), bool) for a in acts[1:-1]]
    with np.errstate(divide="ignore"):
        loss = float(-np.log(np.float64(acts[-1][target])))
    return Backward(target, labelled, acts, deltas, off, loss)


def gradient_edges(bw: Backward, k) -> tuple[list, list]:
    """Per layer pair, the k edges of largest |dloss/dw| = |a_i delta_j| as (src, dst, signed
    gradient) arrays, weakest first (as lrp.top_edges), and the share in [0, 1] of the pair's
    total |gradient| those edges carry. Edges from switched-off sources or into switched-off
    targets have gradient 0 and are never returned."""
    edges, shares = [], []
    for pair in range(len(bw.deltas)):
        top, share = top_of_outer(bw.acts[pair], bw.deltas[pair], k)
        edges.append(top)
        shares.append(share)
    return edges, shares
