"""The compute engine (engine/): the BLAS product against np.matmul, a training step's
result whatever the thread count, and the compiled optimizer updates bit for bit against
the NumPy reference."""
import numpy as np
import pytest

from conftest import split_net
from mnist_live.engine import compiled
from mnist_live.neural_network import gemm
from mnist_live.training.optimizers import Optimizer


def _batch(n_in, n_out, B, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.random((B, n_in)).astype(dtype), rng.integers(0, n_out, B)


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


@pytest.mark.parametrize("kind,kw", [("sgd", {}), ("momentum", {}), ("momentum", {"nesterov": True}),
                                     ("adam", {})])
def test_step_does_not_depend_on_the_thread_count(gemm_path, update_path, kind, kw):
    """The blocks depend on the shapes only; each is computed by one thread: 1, 2 or 3
    threads give the same parameters, optimizer state and losses, bit for bit."""
    x, y = _batch(784, 10, 32, seed=5)
    results = []
    for threads in (1, 2, 3):
        net = split_net(blocks=4)
        opt = Optimizer(net.params, kind, threads=threads, compiled=update_path, **kw)
        grads = [np.empty_like(p) for p in net.params]
        rng = np.random.default_rng(0)
        losses = [net.train_step(x, y, grads, 1e-3, 0.2, rng, opt, lr=0.01)[0] for _ in range(4)]
        results.append((losses, net.params, [a for arrays in opt.state.values() for a in arrays]))
    for losses, params, state in results[1:]:
        assert losses == results[0][0]
        for a, b in zip(params + state, results[0][1] + results[0][2]):
            np.testing.assert_array_equal(a, b)


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
