"""The view of the digit, connection ranking, cached predictions, test-set passes and the
map, without a display (view_model has no pygame)."""
import numpy as np

from mnist_live.neural_network import MLP
from mnist_live.window.view_model import (
    Predictions,
    RepresentationMap,
    WeightsStamp,
    WindowPass,
    hover_connections,
    receptive_field,
    strongest_connections,
)


def test_strongest_connections_ranks_by_contribution_and_by_weight():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 4)).astype(np.float32)
    a = np.array([0, 2, 0, 1, 0.5], np.float32)
    (src, dst, val), = strongest_connections([W], [a], 3)
    c = a[:, None] * W
    order = np.argsort(np.abs(c).ravel())[-3:]
    assert list(zip(src, dst)) == [divmod(int(i), 4) for i in order]
    assert np.allclose(val, c.ravel()[order])
    (src, dst, val), = strongest_connections([W], [a], 3, "weight")
    assert np.allclose(np.sort(np.abs(val)), np.sort(np.abs(W).ravel())[-3:])


def test_receptive_field_and_hover_connections():
    rng = np.random.default_rng(1)
    W = [rng.standard_normal(s).astype(np.float32) for s in ((784, 20), (20, 8), (8, 10))]
    np.testing.assert_allclose(receptive_field(W, 1, 3).ravel(), W[0] @ W[1][:, 3], rtol=1e-5)
    conns = hover_connections(W, 1, 3, k=4)
    src, dst, val = conns[1]
    assert set(dst) == {3} and np.allclose(val, W[1][src, 3])
    src, dst, val = conns[2]
    assert set(src) == {3} and set(dst) == set(np.argsort(np.abs(W[2][3]))[-4:])
    assert len(conns[0][0]) == 0


def test_predictions_are_cached_per_weights_and_reset_when_they_change():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (50, 784), dtype=np.uint8)
    net = MLP((784, 16, 10), seed=0)
    p = Predictions(net, x)
    p.reset(WeightsStamp(1))
    np.testing.assert_array_equal(p(np.arange(50)), net.predict(x))
    net.weights[-1][...] = 0
    net.biases[-1][...] = np.arange(10, dtype=np.float32)      # now everything predicts 9
    assert (p(np.arange(50)) != 9).any()                        # same stamp: cached
    p.reset(WeightsStamp(2))
    assert (p(np.arange(50)) == 9).all()


def test_sweep_pass_is_of_the_frozen_weights_and_marks_dead_neurons():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (300, 784), dtype=np.uint8)
    y = rng.integers(0, 10, 300)
    net = MLP((784, 16, 10), seed=0)
    net.biases[0][5] = -1e4                                     # neuron 5 can never switch on
    sweep = WindowPass(lambda: MLP((784, 16, 10), seed=9), x, y)
    sweep.start(net.weights, net.biases, WeightsStamp(1, 0, 3))
    expected = net.predict(x)
    net.weights[0][...] = 0                                     # later changes do not leak in
    sweep.finish()
    res = sweep.result
    np.testing.assert_array_equal(res.predictions, expected)
    assert res.stamp == WeightsStamp(1, 0, 3)
    assert res.dead[0][5] and res.dead[0].sum() < 16
    assert res.confusion.sum() == 300


def test_the_map_places_any_digit_where_its_point_is_after_alignment():
    """project() (the on-screen marker of the digit being viewed) must land on the digit's own
    point, on a first map and on a map aligned to the one before."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (400, 784), dtype=np.uint8)
    y = np.arange(400) % 10
    net = MLP([784, 32, 16, 10], seed=0)
    m = RepresentationMap(lambda: MLP([784, 32, 16, 10], seed=0), x, y, n=200, chunk=64)
    for stamp in (1, 2):
        m.start(net.weights, net.biases, stamp, layer=1)
        while not m.step():
            pass
        hidden = net.forward(x[m.subset].astype(np.float32) / 255, return_all=True)[2]     # (200, 16)
        placed = np.array([m.project(h) for h in hidden])                               # (200, 2)
        np.testing.assert_allclose(placed, m.points, atol=1e-4 * np.abs(m.points).max())
        for W in net.weights:
            W += rng.normal(0, 0.05, W.shape).astype(np.float32)                         # the next snapshot
