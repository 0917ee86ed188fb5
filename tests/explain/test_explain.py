"""explain.py against brute force: LRP written out edge by edge in float64, sorting whole
edge matrices, numpy.linalg.svd, and per-neuron sorts over small random sets."""
import numpy as np
import pytest

from float64_net import forward64
from mnist_live.explain import dreams, lrp, neurons, projection
from mnist_live.neural_network import MLP


def _net(sizes=(784, 48, 24, 10), seed=0, bias=0.1):
    net = MLP(sizes, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for b in net.biases:
        b[:] = rng.normal(0, bias, b.shape).astype(np.float32)
    return net


def _digit(seed=0):
    """A sparse 'digit': 20 % of the pixels inked, grey levels in (0, 1]."""
    rng = np.random.default_rng(seed)
    return (rng.random(784) * (rng.random(784) < 0.2)).astype(np.float32)


def _brute_lrp(net, x, target, contrast=None, eps=0.01, input_rule="zB"):
    """Float64 LRP with every edge written out: (neurons [R_in, ..., R_out], edges per pair)."""
    W, b, acts, zs = forward64(net, x)
    R = np.zeros(len(zs[-1]))
    R[target] = zs[-1][target]
    if contrast is not None:
        R[contrast] = -zs[-1][contrast]
    neurons, edges = [R], []
    for pair in range(len(W) - 1, -1, -1):
        a, w = acts[pair], W[pair]
        if pair > 0 or input_rule == "eps":
            contrib = a[:, None] * w                                # (fan_in, fan_out)
            den = zs[pair] + eps * np.where(zs[pair] >= 0, 1.0, -1.0)
        elif input_rule == "zB":
            contrib = a[:, None] * w - 0.0 * np.maximum(w, 0) - 1.0 * np.minimum(w, 0)  # l=0, h=1
            den = contrib.sum(axis=0)
        else:
            contrib = a[:, None] * np.maximum(w, 0)
            den = contrib.sum(axis=0)
        E = np.where(R != 0, contrib * R / np.where(den == 0, 1, den), 0.0)
        edges.insert(0, E)
        R = E.sum(axis=1)
        neurons.insert(0, R)
    return neurons, edges, acts, zs


@pytest.mark.parametrize("rule", lrp.INPUT_RULES)
@pytest.mark.parametrize("contrast", [None, 7])
def test_relevance_matches_brute_force(rule, contrast):
    net, x = _net(), _digit()
    rel = lrp.relevance(net, x, 3, contrast=contrast, input_rule=rule)
    want, _, _, zs = _brute_lrp(net, x, 3, contrast, input_rule=rule)
    assert rel.target == 3 and rel.contrast == contrast
    assert rel.logit == pytest.approx(zs[-1][3] - (zs[-1][contrast] if contrast is not None else 0), rel=1e-5)
    assert [r.shape for r in rel.neurons] == [(784,), (48,), (24,), (10,)]
    for got, ref in zip(rel.neurons, want):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_array_equal(lrp.pixel_relevance(rel), rel.neurons[0])
    if rule == "zB" and contrast is None:                       # a uint8 digit means the same picture
        as_bytes = np.round(x * 255).astype(np.uint8)
        again = lrp.relevance(net, as_bytes, 3)
        np.testing.assert_allclose(again.neurons[0], lrp.relevance(net, as_bytes / 255, 3).neurons[0],
                                   rtol=1e-5, atol=1e-7)


def test_relevance_is_conserved_up_to_the_exact_bias_and_eps_share():
    net, x = _net(bias=0.3), _digit(1)
    eps = 0.05
    rel = lrp.relevance(net, x, 5, eps=eps)
    _, _, acts, zs = _brute_lrp(net, x, 5, eps=eps)
    sums = [float(r.astype(np.float64).sum()) for r in rel.neurons]
    assert sums[-1] == pytest.approx(rel.logit, rel=1e-6)
    for pair in (2, 1):            # epsilon rule: sum_i R_i = sum_j R_j (z_j - b_j) / (z_j + eps sign z_j)
        z, R_up = zs[pair], rel.neurons[pair + 1].astype(np.float64)
        den = z + eps * np.where(z >= 0, 1, -1)
        share = float(np.sum(R_up * (net.biases[pair] + eps * np.where(z >= 0, 1, -1)) / den))
        assert abs(share) > 1e-3                               # the bias share is not negligible here...
        assert sums[pair] == pytest.approx(sums[pair + 1] - share, abs=2e-5 * abs(rel.logit) + 1e-6)
        assert lrp.relevance_absorbed(net, x, rel)[pair] == pytest.approx(share, rel=1e-4, abs=1e-7)
    assert sums[0] == pytest.approx(sums[1], rel=1e-5)          # ...and z^B conserves exactly
    assert lrp.relevance_absorbed(net, x, rel)[0] == 0.0


def test_without_biases_and_with_small_eps_every_layer_sums_to_the_logit():
    net, x = _net(bias=0.0), _digit(2)
    for target in range(10):
        rel = lrp.relevance(net, x, target, eps=1e-6)
        for r in rel.neurons:
            assert float(r.astype(np.float64).sum()) == pytest.approx(rel.logit, rel=1e-4, abs=1e-6)


def test_switched_off_neurons_and_the_edges_into_them_carry_exactly_nothing():
    net, x = _net(), _digit(3)
    acts = net.forward(x, return_all=True)
    rel = lrp.relevance(net, x, 2, contrast=4)
    for layer in (1, 2):
        off = acts[layer] == 0
        assert 0 < off.sum() < len(off)                         # both kinds exist in this net
        assert np.all(rel.neurons[layer][off] == 0)
        into = lrp.edge_relevance(net, acts, rel, layer - 1)
        assert np.all(into[:, off] == 0)
        out_of = lrp.edge_relevance(net, acts, rel, layer)  # epsilon rule: nothing from them either
        assert np.all(out_of[off] == 0)
    edges, _ = lrp.top_edges(net, acts, rel, 500)
    for pair in (0, 1):
        assert len(edges[pair][1]) > 0
        assert np.all(acts[pair + 1][edges[pair][1]] > 0)


@pytest.mark.parametrize("rule", lrp.INPUT_RULES)
def test_edge_relevance_matches_brute_force_and_sums_to_the_source_layer(rule):
    net, x = _net(), _digit(4)
    acts = net.forward(x, return_all=True)
    rel = lrp.relevance(net, x, 6, input_rule=rule)
    _, want, _, _ = _brute_lrp(net, x, 6, input_rule=rule)
    for pair in range(3):
        E = lrp.edge_relevance(net, acts, rel, pair)
        assert E.shape == net.weights[pair].shape and E.dtype == np.float32
        np.testing.assert_allclose(E, want[pair], rtol=1e-4, atol=1e-6 * np.abs(want[pair]).max())
        np.testing.assert_allclose(E.sum(axis=1), rel.neurons[pair], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("k", [1, 25, 60, 10**6])
@pytest.mark.parametrize("contrast", [None, 1])
def test_top_edges_equal_a_brute_force_sort_of_all_edges(k, contrast):
    net, x = _net((784, 96, 40, 10)), _digit(5)
    acts = net.forward(x, return_all=True)
    rel = lrp.relevance(net, x, 8, contrast=contrast)
    edges, coverage = lrp.top_edges(net, acts, rel, k)
    assert len(edges) == len(coverage) == 3
    for pair, ((src, dst, val), cov) in enumerate(zip(edges, coverage)):
        E = lrp.edge_relevance(net, acts, rel, pair).astype(np.float64)
        mag = np.abs(E).ravel()
        order = np.argsort(-mag, kind="stable")
        n = min(k, int((mag > 0).sum()))
        want = order[:n][::-1]                                 # weakest first
        assert len(src) == n
        got = src * E.shape[1] + dst
        np.testing.assert_array_equal(np.sort(got), np.sort(want))      # the same edges (no ties at the cut)
        np.testing.assert_allclose(val, E.ravel()[got], rtol=1e-5, atol=1e-9)
        assert np.all(np.diff(np.abs(val)) >= 0)                        # weakest first (ties in any order)
        assert cov == pytest.approx(mag[want].sum() / mag.sum(), rel=1e-5)
        assert 0 <= cov <= 1
    if k == 10**6:                                             # more than there are: all nonzero ones
        assert coverage == pytest.approx([1.0] * 3)


def test_top_edges_on_the_default_network_with_k_60():
    net, x = MLP((784, 1024, 512, 10), seed=1), _digit(6)
    acts = net.forward(x, return_all=True)
    rel = lrp.relevance(net, x, 0)
    edges, coverage = lrp.top_edges(net, acts, rel, 60)
    for pair, (src, dst, val) in enumerate(edges):
        E = lrp.edge_relevance(net, acts, rel, pair)
        mag = np.abs(E)
        assert len(val) == 60
        assert mag[src, dst].min() >= np.partition(mag.ravel(), mag.size - 60)[mag.size - 60]
        assert coverage[pair] == pytest.approx(mag[src, dst].sum(dtype=np.float64) / mag.sum(dtype=np.float64),
                                               rel=1e-4)


def test_contrast_relevance_is_the_difference_of_the_plain_ones():
    net, x = _net(), _digit(7)
    for rule in lrp.INPUT_RULES:
        both = lrp.relevance(net, x, 3, contrast=8, input_rule=rule)
        c = lrp.relevance(net, x, 3, input_rule=rule)
        d = lrp.relevance(net, x, 8, input_rule=rule)
        assert both.logit == pytest.approx(c.logit - d.logit, rel=1e-5)
        for rb, rc, rd in zip(both.neurons, c.neurons, d.neurons):
            np.testing.assert_allclose(rb, rc - rd, rtol=1e-4, atol=1e-6 * max(np.abs(rc).max(), 1e-6))


def test_relevance_rejects_bad_classes_and_rules():
    net, x = _net(), _digit()
    for kw in (dict(target=10), dict(target=-1), dict(target=3, contrast=3), dict(target=3, contrast=10),
               dict(target=3, input_rule="w2")):
        with pytest.raises(ValueError):
            lrp.relevance(net, x, **kw)


# ------------------------------------------------------------------ neuron roles
def _hand_net():
    """4 inputs -> 3 -> 2 -> 3 classes, weights chosen so the rules can be followed by hand."""
    net = MLP((4, 3, 2, 3), seed=0)
    net.weights[1][:] = [[1.0, 0.0],        # j0 excites k0
                         [0.1, -3.0],       # j1: weakly excites k0, strongly inhibits k1
                         [-1.0, -1.0]]      # j2: inhibits both
    net.weights[2][:] = [[0.0, 0.0, 5.0],   # k0 -> class 2
                         [-4.0, 1.0, 0.0]]  # k1 -> class 1
    return net


def test_preferred_class_sums_the_paths_weighted_by_how_often_neurons_are_on():
    net = _hand_net()
    plain = neurons.preferred_class(net)
    assert [p.tolist() for p in plain] == [[2, 0, 0], [2, 1]]
    # j0: 1 * 5 -> class 2. j1: [0.1, -3] @ W3 = [12, -3, 0.5]: class 0, through k1's -4.
    # j2: [-1, -1] @ W3 = [4, -1, -5]: class 0.
    gated = neurons.preferred_class(net, on_rates=[np.ones(3), np.array([1.0, 0.01])])
    # k1 is almost never on: j1 = 0.1 * [0, 0, 5] - 3 * 0.01 * [-4, 1, 0] = [0.12, -0.03, 0.5] -> 2
    assert [p.tolist() for p in gated] == [[2, 2, 0], [2, 1]]
    assert all(p.dtype.kind == "i" for p in plain + gated)
    with pytest.raises(ValueError):
        neurons.preferred_class(net, on_rates=[np.ones(3)])
    deep = MLP((5, 4, 3, 2, 3), seed=1)                        # three hidden layers: the full product
    want = deep.weights[1].astype(np.float64) @ deep.weights[2] @ deep.weights[3]
    assert neurons.preferred_class(deep)[0].tolist() == want.argmax(axis=1).tolist()


def test_order_by_class_groups_neurons_by_class_stably():
    order = neurons.order_by_class(np.array([2, 1, 0, 1, 2, 0]))
    assert order.tolist() == [2, 5, 1, 3, 0, 4]
    pref = neurons.preferred_class(MLP((784, 30, 20, 10), seed=3))
    for p in pref:
        o = neurons.order_by_class(p)
        assert sorted(o.tolist()) == list(range(len(p)))
        assert np.all(np.diff(p[o]) >= 0)


def test_neuron_stats_equal_brute_force_over_chunks():
    rng = np.random.default_rng(0)
    N, sizes, k = 61, (7, 5), 4
    x = rng.random((N, 784)).astype(np.float32)
    acts = [np.maximum(rng.normal(0, 1, (N, n)), 0).astype(np.float32) for n in sizes]
    acts[0][:, 3] = 0                                     # never active
    acts[1][:, 2] = 0
    acts[1][[5, 40], 2] = [0.5, 2.0]                      # active on two digits only (fewer than k)
    indices = 1000 + rng.permutation(N)                   # test-set indices, not positions
    stats = neurons.NeuronStats(sizes, k=k)
    for s in range(0, N, 13):
        stats.update(x[s:s + 13], [a[s:s + 13] for a in acts], indices[s:s + 13])
    for layer, a in enumerate(acts):
        protos = stats.prototypes(layer)
        assert protos.shape == (sizes[layer], 784)
        for j in range(sizes[layer]):
            col = a[:, j]
            order = np.argsort(-col, kind="stable")
            want = indices[order[:k]][col[order[:k]] > 0]
            np.testing.assert_array_equal(stats.top_digits(layer, j), want)
            w = col.astype(np.float64)
            proto = (w @ x) / w.sum() if w.sum() > 0 else np.zeros(784)
            np.testing.assert_allclose(stats.prototype(layer, j), proto, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(protos[j], proto, rtol=1e-4, atol=1e-6)
    for got, a in zip(stats.on_rates(), acts):
        np.testing.assert_allclose(got, (a > 0).mean(axis=0))
    assert stats.top_digits(0, 3).size == 0 and not stats.prototype(0, 3).any()
    assert stats.top_digits(1, 2).tolist() == [indices[40], indices[5]]


# ------------------------------------------------------------------ projections
def _planted(N=300, d=40, seed=0):
    """Points with a spectrum like hidden activations' (the 3rd axis 0.85 of the 2nd)."""
    rng = np.random.default_rng(seed)
    scales = 3.0 * 0.92 ** np.arange(d)
    return (rng.normal(size=(N, d)) * scales) @ np.linalg.qr(rng.normal(size=(d, d)))[0] + 5


@pytest.mark.parametrize("shape", [(300, 40), (30, 100)])        # covariance and Gram branches
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pca_matches_svd_up_to_sign(shape, dtype):
    X = _planted(*shape)
    Y = projection.pca_2d(X.astype(dtype))
    Xc = X - X.mean(axis=0)
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    want = U[:, :2] * S[:2]
    assert Y.shape == (shape[0], 2) and Y.dtype == np.float32
    for c in range(2):
        sign = np.sign(want[:, c] @ Y[:, c])
        np.testing.assert_allclose(sign * Y[:, c], want[:, c], rtol=1e-4, atol=1e-4 * S[0] / np.sqrt(shape[0]))


def test_pca_alignment_undoes_a_rotation_reflection_scale_and_shift():
    X = _planted()
    Y = projection.pca_2d(X).astype(np.float64)
    t = 0.7
    Q = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ np.diag([1, -1])
    previous = 2.5 * Y @ Q + [3.0, -1.0]
    np.testing.assert_allclose(projection.pca_2d(X, previous=previous), previous, rtol=1e-4, atol=1e-4)
    # A changed data set: aligned, the points are closer to where they were than unaligned.
    X2 = X + np.random.default_rng(1).normal(0, 0.2, X.shape)
    far = np.linalg.norm(projection.pca_2d(X2) - previous)
    near = np.linalg.norm(projection.pca_2d(X2, previous=previous) - previous)
    assert near < 0.2 * far
    with pytest.raises(ValueError):
        projection.pca_2d(X, previous=previous[:10])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pca_fit_gives_the_affine_map_of_its_points(dtype):
    X = _planted().astype(dtype)
    Y, mean, A, shift = projection.pca_2d_fit(X)
    np.testing.assert_allclose((X - mean) @ A + shift, Y, rtol=1e-4, atol=1e-4 * np.abs(Y).max())
    np.testing.assert_array_equal(Y, projection.pca_2d(X))
    previous = 2.5 * Y[:, ::-1] + [3.0, -1.0]                  # a swap of axes, a scale and a shift
    Y2, mean, A, shift = projection.pca_2d_fit(X, previous=previous)
    np.testing.assert_allclose(Y2, previous, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose((X - mean) @ A + shift, Y2, rtol=1e-4, atol=1e-4 * np.abs(Y2).max())


def test_balanced_subset_is_fixed_and_balanced():
    y = np.random.default_rng(0).integers(0, 10, 5000)
    y[y == 9] = 8                                         # class 9 missing
    y[:30] = 9                                            # and now 30 of them: fewer than the quota
    idx = projection.balanced_subset(y, n=1000, seed=3)
    counts = np.bincount(y[idx], minlength=10)
    assert counts.tolist() == [100] * 9 + [30]
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, projection.balanced_subset(y, n=1000, seed=3))
    assert not np.array_equal(idx, projection.balanced_subset(y, n=1000, seed=4))
    assert np.bincount(y[projection.balanced_subset(y, n=995)], minlength=10).tolist()[:6] == [100] * 5 + [99]


# ------------------------------------------------------------------ dreams
def _logit(net, x, c):
    return float(lrp.forward_pre(net, x)[1][-1][c])


@pytest.fixture(scope="module")
def trained_small():
    """784-64-32-10 trained for 2 epochs on the bundled sample (well under a second)."""
    from mnist_live.data_loader import load_dataset
    from mnist_live.training.config import Config
    from mnist_live.training.trainer import Trainer
    data = load_dataset("mnist", offline=True)
    trainer = Trainer(Config(hidden=(64, 32), epochs=2), data.x_train, data.y_train)
    while not trainer.finished:
        trainer.train_batch()
    return trainer.net


def _start():
    return np.random.default_rng(0).uniform(0, 0.05, 784).astype(np.float32)   # dream's seed-0 start


def test_dream_raises_the_target_logit_until_the_network_is_sure(trained_small):
    net = trained_small
    for target in (0, 4, 8):
        frames = list(dreams.dream(net, target))
        assert len(frames) == 60
        assert all(f.shape == (784,) and f.dtype == np.float32 and f.min() >= 0 and f.max() <= 1 for f in frames)
        start, end = _logit(net, _start(), target), _logit(net, frames[-1], target)
        assert end > start + 5
        assert net.forward(frames[-1])[target] > 0.9            # the dream is a `target` to the network
        assert 0.02 < frames[-1].mean() < 0.5                    # neither blank nor a white sheet


def test_dream_raises_a_hidden_neuron(trained_small):
    net = trained_small
    for layer, neuron in ((0, 5), (1, 7)):
        frames = list(dreams.dream(net, 0, steps=30, layer=layer, neuron=neuron))
        before = lrp.forward_pre(net, _start())[0][layer + 1][neuron]
        after = lrp.forward_pre(net, frames[-1])[0][layer + 1][neuron]
        assert after > before + 1.0
    with pytest.raises(ValueError):
        next(dreams.dream(net, 0, layer=2))
