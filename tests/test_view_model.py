"""The window's state, browsing and telemetry, without a display (view_model has no pygame)."""
import numpy as np
import pytest

from messages import BatchReport, EvalReport, Finished, Position, TrainerFailed
from neural_network import MLP
from telemetry import Telemetry
from view_model import (
    Predictions,
    RepresentationMap,
    Sweep,
    WeightsStamp,
    hover_connections,
    receptive_field,
    strongest_connections,
)
from window_state import K_STEPS, WindowState


def oracle(preds):
    """predict(indices) for a fixed prediction array, counting how many digits it was asked."""
    asked = []

    def predict(idx):
        idx = np.asarray(idx)
        asked.append(len(idx))
        return preds[idx]
    predict.asked = asked
    return predict


@pytest.fixture
def state():
    y = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 3, np.int64)
    return WindowState(y)


def test_next_mistake_forward_backward_and_wrapping(state):
    preds = state.y_test.copy()
    preds[[4, 17, 25]] += 1                     # three mistakes
    predict = oracle(preds % 10)
    state.go(5)
    state.next_mistake(1, predict)
    assert state.index == 17
    state.next_mistake(1, predict)
    assert state.index == 25
    state.next_mistake(1, predict)              # wraps round
    assert state.index == 4
    state.next_mistake(-1, predict)
    assert state.index == 25
    assert state.next_mistake(1, oracle(state.y_test)) == "no misclassified test digits"


def test_mistakes_only_steps_through_mistakes_of_the_current_predictions(state):
    preds = state.y_test.copy()
    preds[[2, 3, 11, 29]] = (preds[[2, 3, 11, 29]] + 1) % 10
    predict = oracle(preds)
    state.go(0)
    assert state.toggle_mistakes(predict) == "browsing mistakes only"
    assert state.index == 2                      # F lands on a mistake
    seen = [state.index]
    for _ in range(3):
        state.step(1, predict)
        seen.append(state.index)
    assert seen == [2, 3, 11, 29]
    assert state.step(1, predict) == "no more test digits match the filter"
    state.step(-2, predict)
    assert state.index == 3
    state.home_end(True, predict)
    assert state.index == 29
    state.toggle_mistakes(predict)
    assert not state.mistakes_only


def test_digit_keys_under_mistakes_only_pick_misclassified_digits_of_that_class(state):
    preds = state.y_test.copy()
    preds[[13, 23]] = 0                          # two 3s read as 0
    predict = oracle(preds)
    state.mistakes_only = True
    state.go(0)
    state.next_of_class(3, predict)
    assert state.index == 13
    state.next_of_class(3, predict)
    assert state.index == 23
    assert "no misclassified test digit of class 4" == state.next_of_class(4, predict)


def test_pair_filter_browses_exactly_that_cell(state):
    preds = state.y_test.copy()
    preds[[7, 27]] = 1                           # 7s read as 1
    predict = oracle(preds)
    msg = state.choose_pair(7, 1, predict)
    assert msg.startswith("browsing 2 digits") and state.index == 7
    state.step(1, predict)
    assert state.index == 27
    state.toggle_mistakes(predict)               # F leaves the pair filter
    assert state.pair_filter is None and not state.mistakes_only


def test_scanning_stops_early_on_a_trained_network():
    y = np.arange(10000) % 10
    preds = y.copy()
    preds[300] = 5 if y[300] != 5 else 6
    predict = oracle(preds)
    s = WindowState(y)
    s.next_mistake(1, predict)
    assert s.index == 300 and sum(predict.asked) <= 512     # two chunks, not the whole test set


def test_k_steps_and_rank_modes(state):
    state.k = 60
    state.change_k(True)
    assert state.k == K_STEPS[K_STEPS.index(60) + 1]
    state.change_k(False)
    state.change_k(False)
    assert state.k == K_STEPS[K_STEPS.index(60) - 1]
    assert state.rank_mode == "relevance"                  # the default
    v = state.version
    state.cycle_rank_mode()
    assert state.rank_mode == "contribution" and state.version > v
    state.cycle_rank_mode()
    assert state.rank_mode == "weight"
    state.cycle_rank_mode()
    assert state.rank_mode == "relevance"


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
    sweep = Sweep(lambda: MLP((784, 16, 10), seed=9), x, y)
    sweep.start(net.weights, net.biases, WeightsStamp(1, 0, 3))
    expected = net.predict(x)
    net.weights[0][...] = 0                                     # later changes do not leak in
    sweep.finish()
    res = sweep.result
    np.testing.assert_array_equal(res.predictions, expected)
    assert res.stamp == WeightsStamp(1, 0, 3)
    assert res.dead[0][5] and res.dead[0].sum() < 16
    assert res.confusion.sum() == 300


def batch(epoch, b, samples, t, n=100, loss=1.0):
    return BatchReport(epoch, b, n, loss, 0.5, 0.01, samples, t)


def evaluation(kind, acc, epoch, b, n=1000):
    per = np.full(10, acc)
    conf = np.diag(np.full(10, n // 10))
    return EvalReport(kind, acc, per, conf, None, epoch, b, epoch + b / 100, 0.0)


def test_rate_is_what_actually_happened_in_slow_motion_and_zero_when_paused():
    tele = Telemetry()
    for i in range(5):                       # 1 s per batch of 128
        tele.apply(batch(0, i + 1, 128 * (i + 1), 10.0 + i), now=10.0 + i)
    assert tele.samples_per_s(now=14.2) == pytest.approx(128, rel=0.01)
    assert tele.samples_per_s(now=20.0) == 0.0              # nothing trained lately


def test_rate_at_full_speed():
    tele = Telemetry()
    for i in range(30):                      # a report every 0.1 s, 640 samples each
        tele.apply(batch(0, i + 1, 640 * (i + 1), 5.0 + 0.1 * i), now=5.0 + 0.1 * i)
    assert tele.samples_per_s(now=7.95) == pytest.approx(6400, rel=0.01)


def test_latest_evaluation_is_labelled_with_its_kind_and_deltas_compare_like_with_like():
    tele = Telemetry()
    tele.apply(evaluation("full", 0.08, 0, 0))
    assert tele.latest.label() == "full test set, untrained"
    tele.apply(evaluation("subset", 0.90, 0, 100))
    assert tele.latest.kind == "subset" and tele.latest.label() == "1,000-digit subset, epoch 1, batch 100"
    assert tele.previous_per_class() is None                 # no earlier subset evaluation
    tele.apply(evaluation("subset", 0.93, 0, 200))
    np.testing.assert_allclose(tele.previous_per_class(), 0.90)
    tele.apply(evaluation("full", 0.97, 1, 0))
    assert tele.latest.label() == "full test set, after epoch 1"
    np.testing.assert_allclose(tele.previous_per_class(), 0.08)
    assert [p for p, _ in tele.acc_curve] == [0.0, 1.0]


def test_trainer_failure_diverged_and_finished_are_mirrored():
    tele = Telemetry()
    assert tele.apply(TrainerFailed("boom", diverged=False)) == "boom" and tele.failed == "boom"
    tele = Telemetry()
    tele.apply(TrainerFailed("lr too high", diverged=True))
    assert tele.diverged and tele.paused
    assert "finished after 3 epochs" in tele.apply(Finished(3))
    tele.apply(Position(3, 0, True))
    assert tele.epoch == 3 and tele.paused


def test_curves_are_bounded():
    tele = Telemetry()
    for i in range(12000):
        tele.apply(batch(0, 1 + i % 99, i, float(i)), now=float(i))
    assert len(tele.loss_curve) <= 5000 and tele.loss_curve[0][0] == pytest.approx(0.01)


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
