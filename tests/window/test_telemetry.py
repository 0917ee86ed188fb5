"""The training as the window knows it: the trainer's reports folded into rates, curves and
labelled evaluations, without a display (telemetry has no pygame)."""
import numpy as np
import pytest

from mnist_live.training.history import MAX_LOSS_POINTS, EvalRecord, History
from mnist_live.training.messages import BatchReport, Finished, Position, TrainerFailed
from mnist_live.window.telemetry import Telemetry, evaluation_label


def batch(epoch, b, samples, t, n=100, loss=1.0):
    return BatchReport(epoch, b, n, ((epoch + b / n, loss),), 0.5, 0.01, samples, t)


def evaluation(kind, acc, epoch, b, n=1000):
    per = np.full(10, acc)
    conf = np.diag(np.full(10, n // 10))
    return EvalRecord(epoch + b / 100, kind, acc, tuple(per), epoch, b, int(conf.sum()), confusion=conf)


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


def test_the_loss_curve_is_the_trainers_point_for_point():
    """12,000 batches in 1,200 reports: the window's loss curve is exactly the one the trainer
    keeps (History.add_loss: bounded, the older half merged pairwise, the newest at full
    resolution), so the chart and the run library show the same curve."""
    tele, trainer_side, reported = Telemetry(), History(), []
    for i in range(1200):
        points = tuple(((10 * i + j) / 1000, 1.0 + 10 * i + j) for j in range(10))
        for p, v in points:
            trainer_side.add_loss(p, v)
        reported += points
        tele.apply(BatchReport(0, 1 + i % 99, 100, points, 0.5, 0.01, 10 * i, float(i)), now=float(i))
    curve = tele.loss_curve
    assert curve == trainer_side.loss and len(curve) <= MAX_LOSS_POINTS
    assert curve[-100:] == reported[-100:]                              # the newest at full resolution
    assert curve[0][0] < 0.01 * curve[-1][0] and len(curve) > MAX_LOSS_POINTS // 2   # the start, merged


def test_a_learning_rate_changed_while_paused_is_the_panels_at_once():
    """L while paused: the panel's "now" is the new rate at once, not when training resumes.
    Catches: the message saying 4.81e-05 while the panel still read 2.4e-05."""
    from mnist_live.training.messages import LrChange
    tele = Telemetry()
    tele.lr = 2.4e-5
    tele.apply(LrChange(2.5, 4.81e-5))
    assert tele.lr == 4.81e-5 and tele.lr_changes == [(2.5, 4.81e-5)]
