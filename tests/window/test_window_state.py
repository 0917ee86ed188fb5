"""The window's state and browsing under the filters, without a display (window_state has no pygame)."""
import numpy as np
import pytest

from mnist_live.window.state import K_STEPS, WindowState


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

