"""The optimizer's update rule for one parameter, with its numbers plugged in: what a tooltip
shows when a line or a neuron is hovered.

`rule_state(opt, k, index)` reads one element of the optimizer's state (optimizers.py) and
converts it to the textbook quantities: momentum's velocity m; Adam's moments m and v. The
optimizer keeps Adam's moments as plain decayed sums, M = m / (1 - b1) and
V = v / (1 - b2) * G_SCALE^2 (g is scaled by G_SCALE before it is squared), so
m = (1 - b1) M and v = (1 - b2) V / G_SCALE^2 exactly. `next_update(state, g, w, lr, wd)`
then applies the rule the optimizer applies, for gradient g (e.g. one digit's a * delta,
explain/backward.py), in float64, and writes it out as text lines:

    sgd       g' = g + wd*w;  dw = -lr*g'
    momentum  m' = mu*m - lr*g';  dw = m'            (Nesterov: dw = mu*m' - lr*g')
    adam      m' = b1*m + (1-b1)*g';  v' = b2*v + (1-b2)*g'^2;  t' = t + 1
              m^ = m'/(1-b1^t');  v^ = v'/(1-b2^t');  dw = -lr*m^/(sqrt(v^) + eps^)

with eps^ = eps / sqrt(1 - b2^t'): the optimizer computes lr*sqrt(1-b2^t)/(1-b1^t) *
m/(sqrt(v) + eps), which is exactly this (weight decay wd applies to weights, not biases).
Imports the standard library and `optimizers` (for G_SCALE); the state values are floats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from mnist_live.training.optimizers import Optimizer


@dataclass(frozen=True)
class RuleState:
    """One parameter's optimizer state before the next step, in the textbook form."""
    kind: str                # sgd, momentum, adam
    momentum: float          # mu (momentum) or b1 (adam)
    nesterov: bool
    beta2: float
    eps: float
    t: int                   # steps taken so far (the next one is t + 1)
    m: float = 0.0           # momentum: the velocity; adam: the first moment (mean of g, decayed)
    v: float = 0.0           # adam: the second moment (mean of g^2, decayed)


@dataclass(frozen=True)
class Update:
    """The next update of one parameter under its rule: the change and the lines showing it."""
    dw: float                # the change of the parameter
    m: float                 # the state after it (momentum: velocity; adam: first moment)
    v: float                 # adam: the second moment after it
    lines: tuple             # text, one step of the rule per line, with the numbers plugged in


def rule_state(opt: Optimizer, k, index) -> RuleState:
    """The state of element `index` (a tuple, or an int into the flattened array) of
    parameter k of `opt` (MLP.params order: W1, b1, W2, ...)."""
    m = v = 0.0
    if opt.kind == "momentum":
        m = float(opt.state["m"][k][index])
    elif opt.kind == "adam":
        b1, b2 = opt.momentum, opt.beta2
        m = (1 - b1) * float(opt.state["M"][k][index])
        v = (1 - b2) * float(opt.state["V"][k][index]) / opt.G_SCALE ** 2
    return RuleState(opt.kind, float(opt.momentum), bool(opt.nesterov), float(opt.beta2), float(opt.eps),
                     int(opt.t), m, v)


def _n(x):
    """A number for a tooltip: 3 significant digits, a minus sign that reads as one."""
    return f"{x + 0.0:.3g}".replace("-", "−")          # + 0.0: -0.0 reads as 0


def _gradient(g, w, weight_decay):
    """(g + wd*w, its line)."""
    if not weight_decay:
        return g, (f"g = {_n(g)}",)
    gt = g + weight_decay * w
    return gt, (f"g = {_n(g)} + wd·w = {_n(g)} + {_n(weight_decay)}×{_n(w)} = {_n(gt)}",)


def next_update(state: RuleState, g, w, lr, weight_decay=0.0, name="w") -> Update:
    """The optimizer's next update of a parameter w with gradient g (its data part: the
    weight-decay term wd*w is added here) at learning rate lr, and its lines, which call the
    parameter `name` (w for a weight, b for a bias)."""
    g, w, lr, wd = float(g), float(w), float(lr), float(weight_decay)
    g, lines = _gradient(g, w, wd)
    d = f"Δ{name}"
    if state.kind == "sgd":
        dw = -lr * g
        return Update(dw, 0.0, 0.0, lines + (f"SGD: {d} = −lr·g = −{_n(lr)}×{_n(g)} = {_n(dw)}",))
    if state.kind == "momentum":
        mu = state.momentum
        m = mu * state.m - lr * g
        lines += (f"momentum: m ← μm − lr·g = {_n(mu)}×{_n(state.m)} − {_n(lr)}×{_n(g)} = {_n(m)}",)
        if state.nesterov:
            dw = mu * m - lr * g
            return Update(dw, m, 0.0, lines + (f"Nesterov: {d} = μm − lr·g = {_n(mu)}×{_n(m)} − {_n(lr)}×{_n(g)}"
                                               f" = {_n(dw)}",))
        return Update(m, m, 0.0, lines + (f"{d} = m = {_n(m)}",))
    b1, b2, t = state.momentum, state.beta2, state.t + 1
    m = b1 * state.m + (1 - b1) * g
    v = b2 * state.v + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    eps_hat = state.eps / math.sqrt(1 - b2 ** t)
    dw = -lr * m_hat / (math.sqrt(v_hat) + eps_hat)
    lines += (f"Adam step {t}: m ← β1·m + (1−β1)·g = {_n(b1)}×{_n(state.m)} + {_n(1 - b1)}×{_n(g)} = {_n(m)}",
              f"v ← β2·v + (1−β2)·g² = {_n(b2)}×{_n(state.v)} + {_n(1 - b2)}×{_n(g * g)} = {_n(v)}",
              f"m̂ = m/(1−β1^{t}) = {_n(m_hat)},  v̂ = v/(1−β2^{t}) = {_n(v_hat)}",
              f"{d} = −lr·m̂/(√v̂ + ε) = −{_n(lr)}×{_n(m_hat)}/({_n(math.sqrt(v_hat))} + {_n(eps_hat)}) = {_n(dw)}")
    return Update(dw, m, v, lines)


def edge_lines(a, w, delta, last_dw=None):
    """What a hovered connection (source activation a, weight w, target error signal delta)
    carries and its gradient, as text lines; `last_dw`: the change the last recorded step
    applied to w (None: none recorded)."""
    lines = (f"a = {_n(a)},  w = {_n(w)},  a·w = {_n(a * w)}",
             f"∂loss/∂w = a·δ = {_n(a)}×{_n(delta)} = {_n(a * delta)}")
    if last_dw is not None:
        lines += (f"last update Δw = {_n(last_dw)}",)
    return lines


def neuron_lines(a, z, b, delta, off, last_db=None):
    """A hovered neuron: its activation a = f(z), pre-activation z, bias b, error signal delta
    (the gradient of its bias) and, for a ReLU that is off, why delta is 0."""
    why = "  (off: a ReLU at 0 passes no gradient back)" if off else ""
    lines = (f"z = {_n(z)} (bias {_n(b)}),  a = {_n(a)}",
             f"δ = ∂loss/∂z = {_n(delta)}{why}")
    if last_db is not None:
        lines += (f"last update Δb = {_n(last_db)}",)
    return lines
