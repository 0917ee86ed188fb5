"""training/steps.py: the dw StepWatch shows is the weights after minus the weights before a
real step (a spy copies both), for SGD, momentum and Adam, dropout on and off, with and
without weight decay; the span summary; step mode's record of the batch and the watched
digit; a tooltip's inspection of one parameter."""
import numpy as np
import pytest

from mnist_live.explain.backward import backward
from mnist_live.neural_network import MLP, to_float
from mnist_live.training.config import Config
from mnist_live.training.loop import Observer, Run, train
from mnist_live.training.messages import StepRecord, UpdateSummary
from mnist_live.training.steps import StepWatch
from mnist_live.training.trainer import Trainer

SMALL = dict(hidden=(24, 16), epochs=1, batch_size=50, seed=1, lr_schedule="constant")   # 300 images: 6 batches


class WeightSpy(Observer):
    """Copies every parameter right before and right after each step."""

    def __init__(self):
        self.steps = []          # (params before, params after, position before, position after)

    def before_batch(self, run):
        self._before = ([p.copy() for p in run.trainer.net.params], run.trainer.position)

    def on_batch(self, run, stats):
        self.steps.append((self._before[0], [p.copy() for p in run.trainer.net.params],
                           self._before[1], run.trainer.position))


def _run(sample, watch_kw=None, n=300, **config):
    trainer = Trainer(Config(**{**SMALL, **config}), sample.x_train[:n], sample.y_train[:n])
    sent, spy = [], WeightSpy()
    watch = StepWatch(sent.append, **{"min_gap_s": 0.0, **(watch_kw or {})})
    run = Run(trainer, sample.x_test[:100], sample.y_test[:100], [spy, watch])
    return trainer, watch, spy, sent, run


def _largest(dW, k):
    """The k largest |dW|, ascending (Adam's first steps are all +-lr: many ties, so the
    edges are compared by their sizes)."""
    mag = np.sort(np.abs(dW).ravel())[-k:]
    return mag[mag > 0]


def _check_summary(summary, before, after, k):
    for pair in range(len(summary.edges)):
        dW = after[2 * pair] - before[2 * pair]                       # as applied
        src, dst, val = summary.edges[pair]
        np.testing.assert_array_equal(val, dW[src, dst])
        np.testing.assert_array_equal(np.abs(val), _largest(dW, k))         # the largest, weakest first
        assert len(set(zip(src.tolist(), dst.tolist()))) == len(src)
        assert summary.shares[pair] == pytest.approx(np.abs(val).sum() / np.abs(dW).sum(), rel=1e-5)
        np.testing.assert_allclose(summary.neuron_in[pair], np.linalg.norm(dW, axis=0), rtol=1e-5)
        np.testing.assert_array_equal(summary.bias[pair], after[2 * pair + 1] - before[2 * pair + 1])
        assert summary.ratio[pair] == pytest.approx(np.linalg.norm(dW) / np.linalg.norm(before[2 * pair]), rel=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_the_shown_dw_is_the_weights_after_minus_before_a_real_step(sample, optimizer, dropout, weight_decay):
    trainer, watch, spy, sent, run = _run(sample, dict(every=1, span=3, k=30), optimizer=optimizer,
                                          dropout=dropout, weight_decay=weight_decay)
    train(run)
    records = [m for m in sent if isinstance(m, StepRecord)]
    assert [r.seq for r in records] == list(range(1, 7)) and not any(r.detailed for r in records)
    for r, (before, after, pos0, pos1) in zip(records, spy.steps):
        assert (r.update.before, r.update.after, r.update.steps) == (pos0, pos1, 1)
        _check_summary(r.update, before, after, 30)
    span = [m for m in sent if isinstance(m, UpdateSummary)]
    assert [(s.before, s.after, s.steps) for s in span] == [((0, 0), (0, 3), 3), ((0, 3), (1, 0), 3)]
    _check_summary(span[0], spy.steps[0][0], spy.steps[2][1], 30)
    _check_summary(span[1], spy.steps[3][0], spy.steps[5][1], 30)
    if optimizer != "sgd":                    # as applied, not lr x gradient: momentum and Adam differ from it
        before, after, _, _ = spy.steps[-1]
        net = MLP(trainer.net.sizes)
        net.set_params(before[::2], before[1::2])
        _, g = net.loss_and_grads(*_batch(trainer), weight_decay=weight_decay)
        assert not np.allclose(after[0] - before[0], -records[-1].lr * g[0], rtol=0.1, atol=1e-6)


def _batch(trainer):
    _, xb, yb = trainer.last_batch
    return xb, yb


def test_only_sampled_steps_are_recorded(sample):
    _, _, _, sent, run = _run(sample, dict(every=3, span=100))
    train(run)
    records = [m for m in sent if isinstance(m, StepRecord)]
    assert [r.update.after for r in records] == [(0, 3), (1, 0)]            # the 3rd and 6th batches
    assert not [m for m in sent if isinstance(m, UpdateSummary)]


def test_step_mode_records_the_batch_and_the_watched_digit(sample):
    trainer, watch, spy, sent, run = _run(sample, dict(every=1000, detailed=lambda: True))
    x_u8, label = sample.x_test[5], int(sample.y_test[5])
    watch.watch(x_u8, label, token=42)
    train(run)
    records = [m for m in sent if isinstance(m, StepRecord)]
    assert len(records) == 6 and all(r.detailed for r in records)
    perm_seen = np.concatenate([r.indices for r in records])
    assert sorted(perm_seen.tolist()) == list(range(300))                   # each image once in the epoch
    x = to_float(x_u8)
    for r, (before, after, _, _) in zip(records, spy.steps):
        np.testing.assert_array_equal(r.labels, sample.y_train[r.indices])
        net0 = MLP(trainer.net.sizes)
        net0.set_params(before[::2], before[1::2])
        p0 = net0.forward(to_float(sample.x_train[r.indices]))
        np.testing.assert_allclose(r.losses, -np.log(p0[np.arange(50), r.labels]), rtol=1e-5)
        assert float(r.losses.mean()) == pytest.approx(r.loss, rel=1e-5)      # no dropout: the step's own loss
        d = r.digit
        assert d.token == 42
        np.testing.assert_allclose(d.probs_before, net0.forward(x), rtol=1e-6)
        net1 = MLP(trainer.net.sizes)
        net1.set_params(after[::2], after[1::2])
        np.testing.assert_allclose(d.probs_after, net1.forward(x), rtol=1e-6)
        ref = backward(net0, x, label)
        assert d.backward.target == label and d.backward.labelled
        for got, want in zip(d.backward.deltas, ref.deltas):
            np.testing.assert_array_equal(got, want)
    watch.watch(None, -1, 0)
    assert watch.digit is None
    for bad in (np.zeros(100, np.uint8), np.zeros(784, np.float32)):
        with pytest.raises(ValueError, match="784 uint8 pixels"):
            watch.watch(bad, 1, 1)


def test_an_unlabelled_watched_digit_is_explained_for_its_predicted_class(sample):
    trainer, watch, _, sent, run = _run(sample, dict(every=1000, detailed=lambda: True), n=50)
    watch.watch(sample.x_test[0], -1, token=7)
    train(run)
    d = [m for m in sent if isinstance(m, StepRecord)][0].digit
    assert not d.backward.labelled and d.backward.target == int(np.argmax(d.probs_before))


def test_inspect_reads_the_parameter_its_state_and_the_last_recorded_change(sample):
    trainer, watch, spy, sent, run = _run(sample, dict(every=2), optimizer="adam", weight_decay=1e-3)
    assert watch.inspect(trainer, ("weight", 0, 3, 4)).last_dw is None        # nothing recorded yet
    train(run)
    before, after, pos0, pos1 = spy.steps[-1]                                # the 6th step was recorded
    got = watch.inspect(trainer, ("weight", 1, 3, 4), token=9)
    assert got.token == 9 and got.position == trainer.position == pos1
    assert got.value == float(after[2][3, 4]) and got.last_dw == float(after[2][3, 4] - before[2][3, 4])
    assert got.last_step == (pos0, pos1) and got.rule.kind == "adam" and got.rule.t == 6
    assert got.weight_decay == 1e-3 and got.lr == pytest.approx(trainer.current_lr())
    bias = watch.inspect(trainer, ("bias", 2, 9))
    assert bias.weight_decay == 0.0 and bias.last_dw == float(after[5][9] - before[5][9])
    for bad in [("weight", 3, 0, 0), ("weight", 0, 784, 0), ("bias", 0, 1, 2), ("neuron", 0, 1), (), None,
                ("weight", "x", 1, 1), ("bias", 0, -1)]:
        with pytest.raises(ValueError):
            watch.inspect(trainer, bad)


@pytest.mark.slow
def test_the_window_training_process_records_a_step_of_step_mode(sample):
    """Paused, a STEP order trains one batch: its record is detailed, of the watched digit,
    and its `after` is the stamp of the weights published after it; INSPECT answers with that
    step's change; sampled records and health records come while training runs."""
    import time

    from mnist_live.training.history import HealthRecord
    from mnist_live.training.messages import Command, Inspection, Order
    from mnist_live.training.process import TrainingProcess
    data = sample.__class__(sample.name, sample.source, sample.class_names, sample.x_train[:1000],
                            sample.y_train[:1000], sample.x_test[:200], sample.y_test[:200])
    proc = TrainingProcess(Config(hidden=(16,), batch_size=10, epochs=50, health_every=20), data)
    got = []

    def until(what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got.extend(proc.poll()[0])
            found = [m for m in got if what(m)]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError("nothing came")

    try:
        until(lambda m: isinstance(m, StepRecord) and not m.detailed)          # training: sampled steps
        until(lambda m: isinstance(m, HealthRecord))
        proc.send(Order(Command.PAUSE))
        paused = until(lambda m: getattr(m, "paused", False))
        proc.send(Order(Command.WATCH, pixels=sample.x_test[3], index=int(sample.y_test[3]), token=5))
        proc.send(Order(Command.STEP))
        rec = until(lambda m: isinstance(m, StepRecord) and m.detailed)
        assert rec.update.before == (paused.epoch, paused.batch) and rec.update.steps == 1
        assert rec.digit.token == 5 and rec.digit.backward.target == int(sample.y_test[3])
        assert len(rec.indices) == len(rec.losses) == 10
        W = [np.zeros((784, 16), np.float32), np.zeros((16, 10), np.float32)]
        b = [np.zeros(16, np.float32), np.zeros(10, np.float32)]
        assert proc.take_weights(W, b)[1:] == rec.update.after                   # the weights after that step
        proc.send(Order(Command.INSPECT, at=("weight", 1, 2, 3), token=8))
        ins = until(lambda m: isinstance(m, Inspection))
        assert ins.token == 8 and ins.position == rec.update.after and ins.last_step == (rec.update.before,
                                                                                         rec.update.after)
        assert ins.value == W[1][2, 3]
        proc.send(Order(Command.INSPECT, at=("weight", 9, 0, 0)))            # a bad order: said, nothing breaks
        proc.send(Order(Command.WATCH, pixels=np.zeros(3, np.uint8)))
        until(lambda m: getattr(m, "text", "").startswith("cannot watch: a digit is 784 uint8 pixels"))
        assert until(lambda m: getattr(m, "text", "").startswith("cannot inspect: no parameter"))
        assert proc.process.is_alive()
    finally:
        proc.stop()


def test_a_fast_network_is_sampled_by_time_too(sample):
    """Thousands of batches a second must not flood the window: a sampled record needs
    min_gap_s since the last one, a span 5 x min_gap_s."""
    _, _, _, sent, run = _run(sample, dict(every=1, span=1, min_gap_s=1000.0))
    train(run)
    assert [m.update.after for m in sent if isinstance(m, StepRecord)] == [(0, 1)]
    assert not [m for m in sent if isinstance(m, UpdateSummary)]


def test_a_sure_samples_loss_is_zero_never_negative():
    """A float32 softmax can give the right class 1 + 1e-7; its loss is 0, not -1e-7 (which
    the batch strip of step mode showed as -0.00)."""
    from mnist_live.training.steps import sample_losses

    class Sure:
        def forward(self, x):
            p = np.zeros((len(x), 10), np.float32)
            p[:, 3] = np.nextafter(np.float32(1), np.float32(2))             # 1 + 1.2e-7
            return p
    losses = sample_losses(Sure(), np.zeros((4, 784), np.float32), [3, 3, 3, 3])
    assert (losses == 0).all() and f"{float(losses[0]):.2f}" == "0.00"
