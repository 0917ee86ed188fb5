"""Tests of the NumPy engine: gradients, optimizers, augmentation, determinism, inference.

Fast (a few seconds) except the optional real-data test, which needs ../shared/data/mnist.
"""
import gzip
from pathlib import Path

import numpy as np
import pytest

from mnist_live.engine import blas, compiled
from mnist_live.neural_network import MLP, gemm, to_float
from mnist_live.training.augment import Shifter
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

@pytest.fixture(params=["blas", "numpy"])
def gemm_path(request, monkeypatch):
    """Run a test through NumPy's BLAS called directly, then through the np.matmul
    fallback that other NumPy builds get."""
    if request.param == "numpy":
        monkeypatch.setattr(blas, "_GEMM", {})
    elif not blas._checked_cblas():
        pytest.skip("this NumPy's BLAS was not found; only the np.matmul path runs")
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.3, 1.0), (2.0, 0.5)])
def test_gemm_matches_matmul(gemm_path, dtype, ta, tb, alpha, beta):
    rng = np.random.default_rng(0)
    m, k, n = 7, 5, 3
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    a, b = (a.T if ta else a), (b.T if tb else b)
    c = rng.standard_normal((m, n)).astype(dtype)
    want = alpha * (a.astype(np.float64) @ b) + beta * c
    out = gemm(a, b, c, alpha, beta)
    assert out is c and c.dtype == dtype
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)


def test_gemm_handles_views_it_cannot_pass_to_blas(gemm_path):
    a = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]      # (4, 3), strided
    b = np.ones((3, 2), np.float32)
    np.testing.assert_array_equal(gemm(a, b, np.zeros((4, 2), np.float32)), a @ b)


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


def test_gemm_on_blocks_of_rows_and_columns(gemm_path):
    """The blocks a training step hands to gemm: column blocks of W and of the output,
    row blocks of a transposed input, row blocks of W transposed."""
    rng = np.random.default_rng(3)
    a, W = rng.standard_normal((6, 20)).astype(np.float32), rng.standard_normal((20, 12)).astype(np.float32)
    out = rng.standard_normal((6, 12)).astype(np.float32)
    want = out.copy()
    want[:, 4:9] = 0.5 * want[:, 4:9] + 2.0 * (a @ W[:, 4:9])
    gemm(a, W[:, 4:9], out[:, 4:9], 2.0, 0.5)                   # (6, 20) @ (20, 5) into columns 4:9
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    d = rng.standard_normal((6, 12)).astype(np.float32)
    g = np.zeros((20, 12), np.float32)
    gemm(a[:, 3:11].T, d, g[3:11])                              # (8, 6) @ (6, 12) into rows 3:11
    np.testing.assert_allclose(g[3:11], a[:, 3:11].T @ d, rtol=1e-5, atol=1e-5)
    assert not g[:3].any() and not g[11:].any()
    dp = np.zeros((6, 20), np.float32)
    gemm(d, W[3:11].T, dp[:, 3:11])                             # (6, 12) @ (12, 8) into columns 3:11
    np.testing.assert_allclose(dp[:, 3:11], d @ W[3:11].T, rtol=1e-5, atol=1e-5)
    assert not dp[:, :3].any() and not dp[:, 11:].any()


def _split_net(sizes=(784, 96, 40, 10), blocks=3, seed=2, dtype=np.float32):
    """A network whose training step cuts every layer into `blocks` blocks (as a big
    network on a machine with that many CPUs)."""
    net = MLP(sizes, "relu", seed=seed, dtype=dtype)
    net.SPLIT_BELOW, net.BLOCKS = 1, blocks
    return net


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
    net, plain = _split_net(), MLP((784, 96, 40, 10), "relu", seed=2)
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


@pytest.mark.parametrize("kind,kw", [("sgd", {}), ("momentum", {}), ("momentum", {"nesterov": True}),
                                     ("adam", {})])
def test_step_does_not_depend_on_the_thread_count(gemm_path, update_path, kind, kw):
    """The blocks depend on the shapes only; each is computed by one thread: 1, 2 or 3
    threads give the same parameters, optimizer state and losses, bit for bit."""
    x, y = _batch(784, 10, 32, seed=5)
    results = []
    for threads in (1, 2, 3):
        net = _split_net(blocks=4)
        opt = Optimizer(net.params, kind, threads=threads, compiled=update_path, **kw)
        grads = [np.empty_like(p) for p in net.params]
        rng = np.random.default_rng(0)
        losses = [net.train_step(x, y, grads, 1e-3, 0.2, rng, opt, lr=0.01)[0] for _ in range(4)]
        results.append((losses, net.params, [a for arrays in opt.state.values() for a in arrays]))
    for losses, params, state in results[1:]:
        assert losses == results[0][0]
        for a, b in zip(params + state, results[0][1] + results[0][2]):
            np.testing.assert_array_equal(a, b)


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
P0 = np.array([1.0, -2.0, 0.5, 3.0])
G1 = np.array([0.5, 0.1, -1.0, 0.0])
G2 = np.array([-0.2, 0.3, 0.4, 2.0])


@pytest.fixture(params=["numpy", "compiled"])
def update_path(request):
    """Run a test through the NumPy update passes (the reference), then through the
    compiled one-pass rules (engine/compiled.py) when numba is installed."""
    if request.param == "compiled" and compiled.kernels() is None:
        pytest.skip("numba is not installed (or MLP_NUMPY_UPDATE=1): only the NumPy updates run")
    return request.param == "compiled"


def _two_steps(kind, lrs=(0.1, 0.05), compiled=False, **kw):
    p = P0.copy()
    opt = Optimizer([p], kind, compiled=compiled, **kw)
    for g, lr in zip((G1, G2), lrs):
        opt.step([g.copy()], lr)
    return p


def test_sgd_step(update_path):
    np.testing.assert_allclose(_two_steps("sgd", compiled=update_path), P0 - 0.1 * G1 - 0.05 * G2, rtol=1e-12)


def test_momentum_step(update_path):
    m1 = -0.1 * G1                       # m = mu*m - lr*g
    p1 = P0 + m1
    m2 = 0.9 * m1 - 0.05 * G2
    np.testing.assert_allclose(_two_steps("momentum", compiled=update_path, momentum=0.9), p1 + m2, rtol=1e-12)


def test_nesterov_step(update_path):
    m1 = -0.1 * G1
    p1 = P0 + 0.9 * m1 - 0.1 * G1        # p += mu*m - lr*g
    m2 = 0.9 * m1 - 0.05 * G2
    p2 = p1 + 0.9 * m2 - 0.05 * G2
    got = _two_steps("momentum", compiled=update_path, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(got, p2, rtol=1e-12)


def test_adam_step(update_path):
    b1, b2, eps = 0.9, 0.999, 1e-8
    p, m, v = P0.copy(), np.zeros(4), np.zeros(4)
    for t, (g, lr) in enumerate(((G1, 0.1), (G2, 0.05)), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(_two_steps("adam", compiled=update_path), p, rtol=1e-12)
    # the first step moves every parameter with a nonzero gradient by about lr
    one = P0.copy()
    Optimizer([one], "adam", compiled=update_path).step([G1.copy()], 0.1)
    np.testing.assert_allclose(np.abs(one - P0)[:3], 0.1, rtol=1e-5)


@pytest.mark.parametrize("kind,kw", [("sgd", {}), ("momentum", {}), ("momentum", {"nesterov": True}),
                                     ("adam", {})])
def test_optimizer_threads_and_float32_agree(kind, kw):
    """Chunked + threaded updates equal one plain pass, bit for bit, and float32 matches
    the float64 formulas to float32 precision."""
    rng = np.random.default_rng(0)
    shapes = [(700, 600), (600,), (600, 300), (3,)]          # > 2 chunks, uneven sizes
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    gs = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    results = []
    for threads in (1, 2, 3):
        ps = [a.copy() for a in start]
        opt = Optimizer(ps, kind, threads=threads, **kw)
        for g in gs:
            opt.step([a.copy() for a in g], 0.01)
        results.append(ps)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    ps64 = [a.astype(np.float64) for a in start]
    opt = Optimizer(ps64, kind, threads=1, **kw)
    for g in gs:
        opt.step([a.astype(np.float64) for a in g], 0.01)
    for a, b in zip(results[0], ps64):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind,kw", [("sgd", {}), ("momentum", {}), ("momentum", {"nesterov": True}),
                                     ("adam", {})])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_updates_equal_the_numpy_reference(kind, kw, weight_decay, dtype):
    """The compiled one-pass rules do the reference's operations in the same order and
    precision: the same parameters and state, bit for bit, over blocks of any size (with
    weight decay, zero gradients and the state flush too)."""
    if compiled.kernels() is None:
        pytest.skip("numba is not installed (or MLP_NUMPY_UPDATE=1)")
    rng = np.random.default_rng(4)
    shapes = [(300, 500), (500,), (500, 7), (7,)]
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gs = [[(rng.standard_normal(s) * 1e-3).astype(dtype) for s in shapes] for _ in range(5)]
    for g in gs:
        g[0][:50] = 0                                         # dead inputs: their state decays
    out = []
    for fast in (False, True):
        ps = [a.copy() for a in start]
        opt = Optimizer(ps, kind, compiled=fast, **kw)
        opt.FLUSH_EVERY = 2
        for arrays in opt.state.values():
            arrays[0][:50] = 1e-35                            # all but decayed: flushed at step 2
        for g in gs:
            opt.begin(1e-3 if kind == "adam" else 0.05)
            g = [a.copy() for a in g]
            for k, a in enumerate(g):                         # uneven blocks
                flat = a.reshape(-1)
                for s, e in ((0, flat.size // 3), (flat.size // 3, flat.size)):
                    opt.update(k, s, e, flat[s:e], lane=k % 2, weight_decay=weight_decay * (k % 2 == 0))
        assert opt.compiled == fast
        if kind != "sgd" and not weight_decay:
            assert all((arrays[0][:50] == 0).all() for arrays in opt.state.values())
        out.append(ps + [a for arrays in opt.state.values() for a in arrays])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["momentum", "adam"])
def test_optimizer_state_round_trip_is_exact(kind):
    rng = np.random.default_rng(1)
    gs = [rng.standard_normal(50).astype(np.float32) for _ in range(6)]
    p = np.ones(50, np.float32)
    opt = Optimizer([p], kind)
    for g in gs[:3]:
        opt.step([g.copy()], 0.01)
    saved = {k: np.array(v) for k, v in opt.state_arrays().items()}
    q = p.copy()
    restored = Optimizer([q], kind)
    restored.load_state(saved)
    for g in gs[3:]:
        opt.step([g.copy()], 0.01)
        restored.step([g.copy()], 0.01)
    np.testing.assert_array_equal(p, q)


# ---------------------------------------------------------------- augmentation
class _FixedShifts:
    """Stands in for the rng: Shifter draws one table index per image."""

    def __init__(self, idx):
        self.idx = np.asarray(idx)

    def integers(self, low, high, size):
        assert (low, high, size) == (0, 25, len(self.idx))
        return self.idx


def _shift_zero_fill(img, dy, dx):
    out = np.roll(img, (dy, dx), axis=(0, 1))
    if dy > 0:
        out[:dy] = 0
    elif dy < 0:
        out[dy:] = 0
    if dx > 0:
        out[:, :dx] = 0
    elif dx < 0:
        out[:, dx:] = 0
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_shifter_known_shifts(dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(1, 256, (25, 784)).astype(dtype)        # no zero pixels: shifts are visible
    shifter = Shifter(2)
    out = shifter(x, _FixedShifts(np.arange(25)))             # table k = (dy, dx) in row-major order
    assert out.shape == x.shape and out.dtype == x.dtype
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    for k, (dy, dx) in enumerate(shifts):
        expected = _shift_zero_fill(x[k].reshape(28, 28), dy, dx)
        np.testing.assert_array_equal(out[k].reshape(28, 28), expected, err_msg=f"shift {(dy, dx)}")
    np.testing.assert_array_equal(out[12], x[12])            # (0, 0) is the identity
    assert not np.shares_memory(out, x)


def test_shifter_random_shifts_are_at_most_two_pixels():
    rng = np.random.default_rng(1)
    x = rng.integers(1, 256, (200, 784)).astype(np.uint8)
    out = Shifter(2)(x, np.random.default_rng(2))
    seen = set()
    for img, shifted in zip(x.reshape(-1, 28, 28), out.reshape(-1, 28, 28)):
        # the number of zeroed rows/columns gives |dy|, |dx|; the content gives the sign
        match = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                 if np.array_equal(shifted, _shift_zero_fill(img, dy, dx))]
        assert len(match) == 1 and max(map(abs, match[0])) <= 2
        seen.add(match[0])
    assert len(seen) == 25                                   # every allowed shift occurs


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
