"""Tests of the model (neural_network.py): gradients, the fused and blocked training step
against gradients-then-update, determinism, inference (the engine under it:
tests/engine/; the optimizers and augmentation: tests/training/).

Fast (a few seconds) except the optional real-data test, which needs ../shared/data/mnist.
"""
import gzip
from pathlib import Path

import numpy as np
import pytest

from conftest import split_net
from mnist_live.neural_network import MLP, to_float
from mnist_live.training.optimizers import Optimizer

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared/data/mnist"


def _batch(n_in, n_out, B, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.random((B, n_in)).astype(dtype), rng.integers(0, n_out, B)


# ---------------------------------------------------------------- gradients
def _numeric_grads(net, x, y, weight_decay, dropout, h=1e-6):
    """Central differences of loss_and_grads' loss w.r.t. every parameter (float64).
    With dropout, every evaluation draws the same masks from a freshly seeded rng."""
    def loss():
        return net.loss_and_grads(x, y, weight_decay, dropout, np.random.default_rng(42))[0]
    out = []
    for p in net.params:
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for k in range(flat.size):
            keep = flat[k]
            flat[k] = keep + h
            up = loss()
            flat[k] = keep - h
            down = loss()
            flat[k] = keep
            gflat[k] = (up - down) / (2 * h)
        out.append(g)
    return out


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("weight_decay,dropout", [(0.0, 0.0), (0.01, 0.0), (0.003, 0.3)])
def test_gradient_check_float64(activation, weight_decay, dropout):
    net = MLP((8, 7, 5, 3), activation, seed=1, dtype=np.float64)
    assert all(p.dtype == np.float64 for p in net.params)
    x, y = _batch(8, 3, 6, seed=2, dtype=np.float64)
    loss, grads = net.loss_and_grads(x, y, weight_decay, dropout, np.random.default_rng(42))
    assert np.isfinite(loss) and all(g.dtype == np.float64 for g in grads)
    numeric = _numeric_grads(net, x, y, weight_decay, dropout)
    for name, g, n in zip(["W1", "b1", "W2", "b2", "W3", "b3"], grads, numeric):
        assert g.shape == n.shape
        err = np.abs(g - n).max() / max(np.abs(n).max(), 1e-8)
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_train_step_matches_reference(activation, weight_decay):
    net = MLP((784, 64, 32, 10), activation, seed=3)
    x, y = _batch(784, 10, 50, seed=4)
    ref_loss, ref = net.loss_and_grads(x, y, weight_decay)
    grads = [np.empty_like(p) for p in net.params]
    for _ in range(2):   # second call reuses the preallocated buffers
        loss, correct = net.train_step(x, y, grads, weight_decay)
        assert loss == pytest.approx(ref_loss - 0.5 * weight_decay * sum((W * W).sum() for W in net.weights),
                                     rel=1e-5)
        for g, r in zip(grads, ref):
            assert g.dtype == np.float32
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)
    assert correct == int((net.predict(x) == y).sum())


# ---------------------------------------------------------------- gemm and fused steps


@pytest.mark.parametrize("kind,kw", [("sgd", {}), ("momentum", {}), ("momentum", {"nesterov": True}),
                                     ("adam", {})])
@pytest.mark.parametrize("weight_decay,dropout", [(0.0, 0.0), (1e-2, 0.3)])
def test_whole_step_matches_gradients_then_update(gemm_path, kind, kw, weight_decay, dropout):
    """train_step(opt=...) (SGD and momentum fold the weight update into the gradient
    product) gives the same parameters as gradients first, then Optimizer.step."""
    x, y = _batch(784, 10, 40, seed=7)
    fused, plain = MLP((784, 48, 24, 10), "relu", seed=2), MLP((784, 48, 24, 10), "relu", seed=2)
    opt_f, opt_p = Optimizer(fused.params, kind, **kw), Optimizer(plain.params, kind, **kw)
    grads_f, grads_p = ([np.empty_like(p) for p in net.params] for net in (fused, plain))
    rng_f, rng_p = np.random.default_rng(1), np.random.default_rng(1)
    for _ in range(4):
        loss_f, _ = fused.train_step(x, y, grads_f, weight_decay, dropout, rng_f, opt_f, lr=0.05)
        loss_p, _ = plain.train_step(x, y, grads_p, weight_decay, dropout, rng_p)
        opt_p.step(grads_p, 0.05)
        assert loss_f == pytest.approx(loss_p, rel=1e-5)
    assert opt_f.t == opt_p.t == 4
    for a, b in zip(fused.params, plain.params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key in opt_p.state:
        for a, b in zip(opt_f.state[key], opt_p.state[key]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(fused.weights[0], MLP((784, 48, 24, 10), "relu", seed=2).weights[0])


@pytest.mark.parametrize("kind,kw", [("sgd", {}), ("momentum", {}), ("momentum", {"nesterov": True}),
                                     ("adam", {})])
@pytest.mark.parametrize("weight_decay,dropout", [(0.0, 0.0), (1e-2, 0.3)])
def test_blocked_step_matches_gradients_then_update(gemm_path, update_path, kind, kw, weight_decay, dropout):
    """A step cut into blocks on two threads (products, updates and input gradients per
    block) gives the parameters and state of the whole-matrix gradients (train_step
    without an optimizer, one block per layer), then Optimizer.step; without dropout also
    those of the float64 reference loss_and_grads."""
    x, y = _batch(784, 10, 40, seed=7)
    lr = 1e-3 if kind == "adam" else 0.05
    net, plain = split_net(), MLP((784, 96, 40, 10), "relu", seed=2)
    ref = MLP((784, 96, 40, 10), "relu", seed=2, dtype=np.float64)
    opt, opt_p, opt_r = (Optimizer(n.params, kind, compiled=update_path, **kw) for n in (net, plain, ref))
    grads, grads_p = [np.empty_like(p) for p in net.params], [np.empty_like(p) for p in net.params]
    rng, rng_p = np.random.default_rng(1), np.random.default_rng(1)
    for _ in range(3):
        loss, _ = net.train_step(x, y, grads, weight_decay, dropout, rng, opt, lr=lr, threads=2)
        loss_p, _ = plain.train_step(x, y, grads_p, weight_decay, dropout, rng_p, threads=1)
        opt_p.step(grads_p, lr)
        assert loss == pytest.approx(loss_p, rel=1e-5)
        if not dropout:
            loss_r, grads_r = ref.loss_and_grads(x.astype(np.float64), y, weight_decay)
            opt_r.step(grads_r, lr)
            assert loss == pytest.approx(loss_r, rel=1e-5)
    for a, b in zip(net.params, plain.params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key in opt.state:
        for a, b in zip(opt.state[key], opt_p.state[key]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    if not dropout:
        for a, b in zip(net.params, ref.params):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_whole_step_leaves_parameters_alone_past_max_loss(kind):
    net = MLP((784, 16, 10), "relu", seed=0)
    before = [p.copy() for p in net.params]
    opt = Optimizer(net.params, kind)
    x, y = _batch(784, 10, 8, seed=1)
    grads = [np.empty_like(p) for p in net.params]
    loss, _ = net.train_step(x, y, grads, opt=opt, lr=0.1, max_loss=0.0)   # any loss is > 0
    assert loss > 0 and opt.t == 0
    for a, b in zip(net.params, before):
        np.testing.assert_array_equal(a, b)
    net.weights[0][0, 0] = np.nan
    x[:, 0] = 1.0
    loss, _ = net.train_step(x, y, grads, opt=opt, lr=0.1)                 # NaN is not <= inf
    assert np.isnan(loss) and opt.t == 0 and np.isfinite(net.weights[1]).all()


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_train_step_gradient_check_with_dropout(activation):
    """train_step's own gradients (float64, dropout masks fixed by reseeding) against
    central differences of its loss: the activation derivative must use the activation
    before dropout."""
    net = MLP((6, 5, 4, 3), activation, seed=2, dtype=np.float64)
    x, y = _batch(6, 3, 7, seed=3, dtype=np.float64)
    grads = [np.empty_like(p) for p in net.params]

    def loss():
        return net.train_step(x, y, grads, 0.0, 0.4, np.random.default_rng(5))[0]
    h = 1e-6
    numeric = []
    for p in net.params:
        flat, g = p.reshape(-1), np.zeros(p.size)
        for k in range(flat.size):
            keep = flat[k]
            flat[k] = keep + h
            up = loss()
            flat[k] = keep - h
            g[k] = (up - loss()) / (2 * h)
            flat[k] = keep
        numeric.append(g.reshape(p.shape))
    loss()
    for g, n in zip(grads, numeric):
        np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-8)


def test_train_step_float64_and_dropout_runs():
    net = MLP((20, 16, 4), "relu", seed=0, dtype=np.float64)
    x, y = _batch(20, 4, 9, seed=1, dtype=np.float64)
    grads = [np.empty_like(p) for p in net.params]
    loss, _ = net.train_step(x, y, grads, 0.0, 0.5, np.random.default_rng(0))
    assert np.isfinite(loss) and all(g.dtype == np.float64 for g in grads)
    # dropout zeroes about half the hidden units: some W1 columns get no gradient
    assert (np.abs(grads[0]).sum(axis=0) == 0).any()


# ---------------------------------------------------------------- optimizers


# ---------------------------------------------------------------- augmentation


# ---------------------------------------------------------------- determinism
def _run(seed, steps=5, threads=None):
    net = MLP((784, 64, 32, 10), seed=seed)
    opt = Optimizer(net.params, "adam", threads=threads)
    rng = np.random.default_rng(seed)
    grads = [np.empty_like(p) for p in net.params]
    x, y = _batch(784, 10, 32, seed=99)
    losses = []
    for _ in range(steps):
        loss, _ = net.train_step(x, y, grads, 1e-4, 0.25, rng)
        opt.step(grads, 1e-3)
        losses.append(loss)
    return net, losses


def test_same_seed_same_weights_with_dropout():
    a, la = _run(7)
    b, lb = _run(7, threads=1)
    c, _ = _run(8)
    assert la == lb
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a.weights[0], c.weights[0])
    assert la[-1] < la[0]                                     # and it learns the batch


# ---------------------------------------------------------------- inference
def test_forward_shapes_and_predict():
    net = MLP((784, 48, 24, 10), seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((5, 784), dtype=np.float32)
    acts = net.forward(x, return_all=True)
    assert [a.shape for a in acts] == [(5, 784), (5, 48), (5, 24), (5, 10)]
    one = net.forward(x[2], return_all=True)
    assert [a.shape for a in one] == [(784,), (48,), (24,), (10,)]
    for a, b in zip(one, acts):
        np.testing.assert_allclose(a, b[2], rtol=1e-4, atol=1e-6)
    probs = net.forward(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert (acts[1] >= 0).all()                               # ReLU
    np.testing.assert_array_equal(net.predict(x), probs.argmax(axis=1))
    np.testing.assert_allclose(net.predict_proba(x, batch_size=2), probs, rtol=1e-5, atol=1e-7)
    u8 = (x * 255).astype(np.uint8)
    np.testing.assert_allclose(net.predict_proba(u8), net.forward(u8.astype(np.float32) / 255),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_input_gradient_matches_finite_differences(activation):
    net = MLP((784, 32, 16, 10), activation, seed=5)
    x = np.random.default_rng(3).random(784, dtype=np.float32)
    target = 7
    grad = net.input_gradient(x, target)
    assert grad.shape == (784,)
    W = [w.astype(np.float64) for w in net.weights]
    b = [v.astype(np.float64) for v in net.biases]
    act = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
           "sigmoid": lambda z: 1 / (1 + np.exp(-z))}[activation]

    def logit(X):                                             # (N, 784) -> pre-softmax score (N,)
        a = X
        for i in range(len(W)):
            a = a @ W[i] + b[i]
            if i < len(W) - 1:
                a = act(a)
        return a[:, target]
    h = 1e-5
    eye = np.eye(784) * h
    x64 = x.astype(np.float64)
    numeric = (logit(x64 + eye) - logit(x64 - eye)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-4 * np.abs(numeric).max())


# ---------------------------------------------------------------- real data
def _idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


@pytest.mark.slow
def test_learns_real_mnist_digits():
    if not MNIST_DIR.is_dir():
        pytest.skip(f"../shared/data/mnist not found ({MNIST_DIR})")
    x_train = _idx(MNIST_DIR / "train-images-idx3-ubyte.gz", 16).reshape(-1, 784)[:3000]
    y_train = _idx(MNIST_DIR / "train-labels-idx1-ubyte.gz", 8)[:3000].astype(np.int64)
    x_test = _idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784)[:1000]
    y_test = _idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz", 8)[:1000]
    net = MLP((784, 256, 128, 10), seed=0)
    opt = Optimizer(net.params, "adam")
    grads = [np.empty_like(p) for p in net.params]
    rng = np.random.default_rng(0)
    xf = x_train.astype(np.float32) / 255
    for _ in range(8):                                        # 8 epochs of 47 batches (~1 s)
        perm = rng.permutation(len(xf))
        for s in range(0, len(xf), 64):
            idx = perm[s:s + 64]
            net.train_step(xf[idx], y_train[idx], grads)
            opt.step(grads, 2e-3)
    acc = (net.predict(x_test) == y_test).mean()
    assert acc >= 0.90, f"test accuracy {acc:.3f} after training on 3000 digits"


def test_to_float():
    x = np.array([[0, 51, 255]], np.uint8)
    f = to_float(x)
    assert f.dtype == np.float32 and f.shape == (1, 3)
    np.testing.assert_allclose(f, [[0.0, 0.2, 1.0]], rtol=1e-6)
