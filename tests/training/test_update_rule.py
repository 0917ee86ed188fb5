"""training/update_rule.py: the update rule with one parameter's numbers plugged in must give
the optimizer's real next update (MLP.train_step with the Optimizer), for SGD, momentum,
Nesterov and Adam, with and without weight decay; Adam's moments read from its decayed sums."""
import numpy as np
import pytest

from mnist_live.explain.backward import backward
from mnist_live.neural_network import MLP
from mnist_live.training.optimizers import Optimizer
from mnist_live.training.update_rule import edge_lines, neuron_lines, next_update, rule_state

KINDS = [("sgd", False, 0.1), ("momentum", False, 0.05), ("momentum", True, 0.05), ("adam", False, 1e-3)]


def _trained(kind, nesterov, lr, wd, steps=3, seed=0):
    net = MLP((784, 32, 16, 10), seed=seed)
    opt = Optimizer(net.params, kind, 0.9, nesterov)
    grads = [np.empty_like(p) for p in net.params]
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x, y = rng.random((20, 784), dtype=np.float32), rng.integers(0, 10, 20)
        net.train_step(x, y, grads, wd, 0.0, rng, opt, lr)
    return net, opt, grads, rng


def _ulp(w):
    """w - dw is rounded to float32: the change as applied is off by up to a unit of w's last place."""
    return 2 * float(np.spacing(np.float32(abs(w))))


def _elements(net, rng, n=6):
    """(k, index) of some weights and biases of every layer, incl. ones whose gradient is 0."""
    out = []
    for pair, W in enumerate(net.weights):
        for _ in range(n):
            out.append((2 * pair, (int(rng.integers(W.shape[0])), int(rng.integers(W.shape[1])))))
        out.append((2 * pair + 1, (int(rng.integers(W.shape[1])),)))
    return out


@pytest.mark.parametrize("kind,nesterov,lr", KINDS)
@pytest.mark.parametrize("wd", [0.0, 1e-3])
def test_the_plugged_in_rule_gives_the_optimizers_real_next_update(kind, nesterov, lr, wd):
    net, opt, grads, rng = _trained(kind, nesterov, lr, wd)
    x, y = rng.random((20, 784), dtype=np.float32), rng.integers(0, 10, 20)
    _, g = net.loss_and_grads(x, y)                         # the data part of the next step's gradient
    picks = _elements(net, rng)
    before = [(rule_state(opt, k, i), float(net.params[k][i])) for k, i in picks]
    net.train_step(x, y, grads, wd, 0.0, rng, opt, lr)
    for (k, i), (state, w) in zip(picks, before):
        up = next_update(state, g[k][i], w, lr, wd if k % 2 == 0 else 0.0)
        real = float(net.params[k][i]) - w
        assert up.dw == pytest.approx(real, rel=1e-3, abs=_ulp(w)), (k, i)
        after = rule_state(opt, k, i)                        # the state it leaves is the optimizer's
        assert after.t == state.t + 1
        if kind != "sgd":
            assert up.m == pytest.approx(after.m, rel=1e-3, abs=1e-12)
        if kind == "adam":
            assert up.v == pytest.approx(after.v, rel=1e-3, abs=1e-18)


@pytest.mark.parametrize("kind,nesterov,lr", KINDS)
def test_a_digits_gradient_plugged_in_is_the_step_on_that_digit_alone(kind, nesterov, lr):
    """The tooltip plugs in the gradient of the digit on screen (a * delta): the update it
    shows is the one the optimizer makes on a batch of that one digit."""
    net, opt, grads, rng = _trained(kind, nesterov, lr, 0.0)
    x = (rng.random(784) * (rng.random(784) < 0.2)).astype(np.float32)
    bw = backward(net, x, 6)
    picks = [(k, i) for k, i in _elements(net, rng) if k % 2 == 0]
    before = [(rule_state(opt, k, i), float(net.params[k][i])) for k, i in picks]
    net.train_step(x[None], np.array([6]), grads, 0.0, 0.0, rng, opt, lr)
    for (k, (i, j)), (state, w) in zip(picks, before):
        g = bw.acts[k // 2][i] * bw.deltas[k // 2][j]
        real = float(net.params[k][i, j]) - w
        assert next_update(state, g, w, lr).dw == pytest.approx(real, rel=1e-3, abs=_ulp(w))


def test_adams_moments_are_its_decayed_sums_converted():
    net, opt, _, _ = _trained("adam", False, 1e-3, 0.0, steps=2)
    s = rule_state(opt, 0, (5, 7))
    assert s.m == pytest.approx(0.1 * float(opt.state["M"][0][5, 7]), rel=1e-12)
    assert s.v == pytest.approx(0.001 * float(opt.state["V"][0][5, 7]) / 2.0 ** 64, rel=1e-12)
    assert s.t == 2 and s.kind == "adam"


def test_the_lines_show_the_numbers():
    s = rule_state(_trained("momentum", False, 0.05, 0.0)[1], 0, (1, 2))
    up = next_update(s, 0.02, -0.5, 0.05, weight_decay=0.01)
    text = "\n".join(up.lines)
    assert "wd·w" in text and f"{up.dw:.3g}".replace("-", "−") in text and "μm" in text
    adam = next_update(rule_state(_trained("adam", False, 1e-3, 0.0)[1], 0, (1, 2)), 0.02, 0.1, 1e-3)
    assert any("m̂" in line for line in adam.lines) and "step 4" in adam.lines[1]
    assert edge_lines(0.5, -0.2, 0.1, last_dw=-1e-4)[1].endswith("0.05")
    assert "off" in neuron_lines(0.0, -0.3, 0.1, 0.0, True)[1]


def test_a_bias_update_is_called_delta_b():
    """Catches: the maths box of a hovered neuron (its bias) writing the rule as Δw = ..."""
    state = rule_state(_trained("adam", False, 1e-3, 0.0)[1], 1, (2,))
    bias, weight = next_update(state, 0.02, 0.1, 1e-3, name="b"), next_update(state, 0.02, 0.1, 1e-3)
    assert bias.dw == weight.dw and any("Δb = " in t for t in bias.lines)
    assert not any("Δw" in t for t in bias.lines) and any("Δw = " in t for t in weight.lines)
