"""explain/backward.py and explain/edges.py: one digit's backward pass against a float64
finite-difference gradient and against MLP.loss_and_grads on a batch of one; signs and layer
order; the top edges against sorting the whole gradient matrix."""
import numpy as np
import pytest

from mnist_live.explain import backward as bk
from mnist_live.explain.edges import top_of_matrix, top_of_outer
from mnist_live.neural_network import MLP
from mnist_live.training.history import Snapshots


def _net(sizes=(784, 40, 24, 10), seed=0, dtype=np.float32):
    net = MLP(sizes, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 100)
    for b in net.biases:
        b[:] = rng.normal(0, 0.1, b.shape).astype(dtype)
    return net


def _digit(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random(784) * (rng.random(784) < 0.2)).astype(np.float32)


def _loss64(net, x, target):
    a = x.astype(np.float64)
    for i, (W, b) in enumerate(zip(net.weights, net.biases)):
        z = a @ W + b
        a = np.maximum(z, 0) if i < net.n_layers - 1 else z
    z = a - a.max()
    return float(np.log(np.exp(z).sum()) - z[target])


@pytest.mark.parametrize("target", [3, None])
def test_gradients_match_a_float64_finite_difference(target):
    """Every layer pair's a_i * delta_j and every bias's delta_j, at edges that carry a
    gradient and at edges into switched-off neurons (0 both ways), against central
    differences of the float64 loss."""
    net, x = _net(dtype=np.float64), _digit(1).astype(np.float64)
    bw = bk.backward(net, x, target)
    c = bw.target
    assert bw.labelled is (target is not None)
    if target is None:
        assert c == int(net.forward(x).argmax())
    rng = np.random.default_rng(5)
    h = 1e-6
    for pair in range(net.n_layers):
        W, b = net.weights[pair], net.biases[pair]
        on = np.flatnonzero(bw.deltas[pair])
        off = np.flatnonzero(bw.deltas[pair] == 0)
        src = np.flatnonzero(bw.acts[pair])
        picks = [(int(rng.choice(src)), int(rng.choice(on))) for _ in range(6)]
        if len(off):
            picks.append((int(rng.choice(src)), int(off[0])))
        for i, j in picks:
            old = W[i, j]
            W[i, j] = old + h
            up = _loss64(net, x, c)
            W[i, j] = old - h
            down = _loss64(net, x, c)
            W[i, j] = old
            assert bw.acts[pair][i] * bw.deltas[pair][j] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)
        for j in list(on[:4]) + list(off[:1]):
            old = b[j]
            b[j] = old + h
            up = _loss64(net, x, c)
            b[j] = old - h
            down = _loss64(net, x, c)
            b[j] = old
            assert bw.deltas[pair][j] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)
    assert bw.loss == pytest.approx(_loss64(net, x, c), rel=1e-9)


def test_the_gradient_is_loss_and_grads_on_a_batch_of_one():
    net, x = _net(), _digit(2)
    bw = bk.backward(net, x, 7)
    _, grads = net.loss_and_grads(x[None], np.array([7]))
    for pair in range(net.n_layers):
        np.testing.assert_allclose(bw.weight_gradient(pair), grads[2 * pair], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(bw.deltas[pair], grads[2 * pair + 1], rtol=1e-5, atol=1e-7)


def test_mean_gradients_of_a_batch_are_loss_and_grads_with_weight_decay():
    net = _net()
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 784), dtype=np.float32), rng.integers(0, 10, 16)
    acts, deltas = bk.backward_batch(net, x, y)
    mine = bk.mean_gradients(acts, deltas, net.weights, weight_decay=0.01)
    _, ref = net.loss_and_grads(x, y, weight_decay=0.01)
    for a, r in zip(mine, ref):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-7)


def test_signs_layer_order_and_the_switched_off_neurons():
    net, x = _net(), _digit(3)
    bw = bk.backward(net, x, 4)
    p = net.forward(x)
    np.testing.assert_allclose(bw.error, p - np.eye(10, dtype=np.float32)[4], atol=1e-7)
    assert bw.error[4] < 0 and (np.delete(bw.error, 4) > 0).all()       # raise the target, lower the rest
    assert [len(d) for d in bw.deltas] == [40, 24, 10] and [len(o) for o in bw.off] == [40, 24]
    assert [len(a) for a in bw.acts] == [784, 40, 24, 10]
    for a, d, off in zip(bw.acts[1:-1], bw.deltas[:-1], bw.off):
        np.testing.assert_array_equal(off, a == 0)
        assert off.any() and (d[off] == 0).all() and (d[~off] != 0).all()
    # a small step against the gradient lowers the loss: the sign is the loss's
    for pair in range(net.n_layers):
        net.weights[pair] -= 1e-3 * bw.weight_gradient(pair)
    assert bk.backward(net, x, 4).loss < bw.loss


def test_a_rewound_snapshot_is_explained_with_its_own_weights():
    net, x = _net(), _digit(4)
    snaps = Snapshots(net.sizes)
    snaps.take(net, 0, 0, 0.0)
    for W in net.weights:
        W *= 1.5                               # the live weights move on
    old = MLP(net.sizes)
    snaps.load_into(old, 0)
    bw = bk.backward(old, x, 2)
    half = _net()                              # the snapshot's float16 weights, by hand
    for W in half.weights:
        W[...] = W.astype(np.float16)
    for b in half.biases:
        b[...] = b.astype(np.float16)
    np.testing.assert_array_equal(bw.deltas[0], bk.backward(half, x, 2).deltas[0])
    assert not np.allclose(bw.deltas[0], bk.backward(net, x, 2).deltas[0])


def _brute_top(full, k):
    mag = np.abs(full).ravel()
    order = np.argsort(mag, kind="stable")[::-1][:k]
    order = order[mag[order] > 0]
    return {tuple(np.unravel_index(i, full.shape)) for i in order}, mag[order].sum() / mag.sum()


@pytest.mark.parametrize("k", [1, 7, 60, 5000])
def test_gradient_edges_are_the_largest_of_the_whole_gradient(k):
    net, x = _net(), _digit(5)
    bw = bk.backward(net, x, 1)
    edges, shares = bk.gradient_edges(bw, k)
    for pair, ((src, dst, val), share) in enumerate(zip(edges, shares)):
        full = bw.weight_gradient(pair)
        want, want_share = _brute_top(full, k)
        assert set(zip(src.tolist(), dst.tolist())) == want
        np.testing.assert_allclose(val, full[src, dst], rtol=1e-6)
        assert (np.diff(np.abs(val)) >= 0).all()                          # weakest first
        assert share == pytest.approx(want_share, rel=1e-5)


def test_top_of_matrix_and_outer_against_sorting():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(50, 30)).astype(np.float32) * (rng.random((50, 30)) < 0.5)
    (src, dst, val), share = top_of_matrix(m, 25, rows=np.arange(50) + 100, cols=np.arange(30) * 2)
    want, want_share = _brute_top(m, 25)
    assert set(zip((src - 100).tolist(), (dst // 2).tolist())) == want and share == pytest.approx(want_share, rel=1e-5)
    a, d = rng.normal(size=40).astype(np.float32), rng.normal(size=20).astype(np.float32)
    a[::3] = 0
    (src, dst, val), share = top_of_outer(a, d, 33)
    want, want_share = _brute_top(np.outer(a, d), 33)
    assert set(zip(src.tolist(), dst.tolist())) == want and share == pytest.approx(want_share, rel=1e-5)
    assert top_of_outer(np.zeros(5), d, 3)[1] == 0.0 and len(top_of_outer(a, d, 0)[0][0]) == 0
