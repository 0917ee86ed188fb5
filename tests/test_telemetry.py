"""The training as the window knows it: the trainer's reports folded into rates, curves and
labelled evaluations, without a display (telemetry has no pygame)."""
import numpy as np
import pytest

from mnist_live.training.messages import BatchReport, EvalReport, Finished, Position, TrainerFailed
from mnist_live.window.telemetry import MAX_CURVE, Telemetry, evaluation_label


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
    assert evaluation_label(tele.latest) == "full test set, untrained"
    tele.apply(evaluation("subset", 0.90, 0, 100))
    assert tele.latest.kind == "subset" and evaluation_label(tele.latest) == "1,000-digit subset, epoch 1, batch 100"
    assert tele.class_change()[0] is None                    # a subset is never compared
    tele.apply(evaluation("subset", 0.93, 0, 200))
    prev, caption = tele.class_change()
    assert prev is None and "too noisy" in caption[0]          # not even with a subset (100 a class: noise)
    tele.apply(evaluation("full", 0.97, 1, 0))
    assert evaluation_label(tele.latest) == "full test set, after epoch 1"
    prev, caption = tele.class_change()
    np.testing.assert_allclose(prev, 0.08)                   # full with full
    assert caption[0] == "full test set, after epoch 1; +/- since untrained"
    tele.apply(evaluation("subset", 0.97, 1, 100))
    assert tele.class_change()[0] is None
    assert evaluation_label(tele.latest, "image") == "1,000-image subset, epoch 2, batch 100"
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
    """12,000 reports keep at most MAX_CURVE points: the oldest thinned (every other one), the
    newest all there, in order, and each kept point is one that was reported."""
    tele = Telemetry()
    reported = []
    for i in range(12000):
        msg = batch(0, 1 + i % 99, i, float(i), loss=1.0 + i)
        reported.append((msg.epoch + msg.batch / msg.n_batches, msg.loss))
        tele.apply(msg, now=float(i))
    curve = tele.loss_curve
    assert len(curve) <= MAX_CURVE
    assert curve[0] == pytest.approx(reported[0])                       # the first point survives
    assert curve[-100:] == reported[-100:]                              # the newest at full resolution
    losses = [v for _, v in curve]
    assert losses == sorted(losses) and len(set(losses)) == len(losses)  # in order, no duplicates
    assert set(losses) <= {v for _, v in reported}                      # nothing invented
    assert len(curve) > MAX_CURVE // 2                                  # thinned, not emptied
