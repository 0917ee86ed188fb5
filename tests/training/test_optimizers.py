"""The optimizers (training/optimizers.py): each rule's two steps against its formula, the
same numbers whatever the threads and chunks, float32 against float64, the state saved and
restored exactly."""
import numpy as np
import pytest

from mnist_live.training.optimizers import Optimizer

P0 = np.array([1.0, -2.0, 0.5, 3.0])
G1 = np.array([0.5, 0.1, -1.0, 0.0])
G2 = np.array([-0.2, 0.3, 0.4, 2.0])


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
