"""training/loop.py: the one training loop and its observers. The headless run, the window's
training process and a sweep trial drive the same loop (a spy observer sees the same events
from each); how a run ends (finished, stopped by an observer, Ctrl+C, an exception)."""
import functools
import os
import queue
import signal
import time

import numpy as np
import pytest

from loop_spy import EventLog, events
from mnist_live.training.config import Config
from mnist_live.training.loop import Observer, Run, StopOnSignals, StopTraining, train
from mnist_live.training.trainer import DivergenceCheck, Trainer

SMALL = dict(hidden=(16,), epochs=2, batch_size=125, seed=3, lr_schedule="constant")   # 500 images: 4 batches an epoch
ONE_RUN = ["start"] + (["batch"] * 4 + ["evaluation full", "epoch_end"]) * 2 + ["end finished"]


def small(sample, n=500):
    return sample.x_train[:n], sample.y_train[:n], sample.x_test[:200], sample.y_test[:200]


class Recorder(Observer):
    def __init__(self):
        self.seen = []

    def on_start(self, run):
        self.seen.append("start")

    def on_batch(self, run, stats):
        self.seen.append(("batch", stats.epoch, stats.batch))

    def on_evaluation(self, run, record):
        self.seen.append(("evaluation", record.kind, record.position))

    def on_epoch_end(self, run, stats):
        self.seen.append("epoch_end")

    def on_end(self, run, outcome):
        self.seen.append(("end", outcome.status))


def test_a_run_is_batches_an_evaluation_at_each_epoch_end_and_one_end(sample):
    x, y, xt, yt = small(sample)
    spy = Recorder()
    run = Run(Trainer(Config(**SMALL), x, y), xt, yt, [spy])
    outcome = train(run)
    batches = [("batch", e, b) for e in range(2) for b in range(1, 5)]
    assert spy.seen == ["start", *batches[:4], ("evaluation", "full", (1, 0)), "epoch_end",
                        *batches[4:], ("evaluation", "full", (2, 0)), "epoch_end", ("end", "finished")]
    assert outcome.status == "finished" and outcome.final is run.last_full      # no second evaluation at the end
    assert outcome.final.n == 200 and outcome.final.confusion.sum() == 200 and len(outcome.final.predictions) == 200
    assert [r.kind for r in run.trainer.history.evals] == ["full", "full"]
    assert run.samples == 1000 and run.samples_per_s > 0


class StopAt(Observer):
    def __init__(self, batches, status, evaluate=True):
        self.batches, self.status, self.evaluate = batches, status, evaluate

    def on_batch(self, run, stats):
        self.batches -= 1
        if not self.batches:
            raise StopTraining(self.status, f"stopped: {self.status}", evaluate=self.evaluate)


@pytest.mark.parametrize("evaluate", [True, False])
def test_an_observer_ends_the_run_and_every_observer_hears_how(sample, evaluate):
    x, y, xt, yt = small(sample)
    spy = Recorder()
    run = Run(Trainer(Config(**SMALL), x, y), xt, yt, [StopAt(6, "pruned", evaluate), spy])
    outcome = train(run)
    assert (outcome.status, outcome.error) == ("pruned", "stopped: pruned")
    assert spy.seen[-1] == ("end", "pruned") and ("batch", 1, 2) not in spy.seen   # the 6th batch was the last
    if evaluate:                       # the weights it ends with, evaluated once: epoch 2, batch 2
        assert outcome.final.position == (1, 2) and spy.seen[-2] == ("evaluation", "full", (1, 2))
    else:
        assert outcome.final is None and spy.seen[-2] == ("batch", 1, 1)


def test_ctrl_c_is_an_interrupted_run_and_an_exception_a_failed_one(sample):
    x, y, xt, yt = small(sample)

    class Raise(Observer):
        def __init__(self, error):
            self.error = error

        def on_batch(self, run, stats):
            raise self.error

    spy = Recorder()
    outcome = train(Run(Trainer(Config(**SMALL), x, y), xt, yt, [Raise(KeyboardInterrupt()), spy]))
    assert outcome.status == "interrupted" and outcome.final.position == (0, 1)
    spy = Recorder()
    run = Run(Trainer(Config(**SMALL), x, y), xt, yt, [Raise(MemoryError("no room")), spy])
    with pytest.raises(MemoryError):
        train(run)
    assert spy.seen[-1] == ("end", "failed") and run.outcome.error == "MemoryError: no room"


class SignalAt(Observer):
    """Sends this process `signals` (one per listed batch) after those batches."""
    def __init__(self, at):
        self.at, self.went_on = dict(at), []

    def on_batch(self, run, stats):
        sig = self.at.get((stats.epoch, stats.batch))
        if sig is not None:
            os.kill(os.getpid(), sig)
            self.went_on.append(stats.batch)          # not reached when the signal raises here


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_the_run_between_two_batches(sample, sig):
    """StopOnSignals: the signal ends the run before the next batch as `interrupted`, with the
    final evaluation and every observer's end, and the handlers are put back. Catches: the
    signal raising KeyboardInterrupt mid-batch (then inside a queue's put, it could lose a
    writer thread's wake-up); the run going on; the handler left installed."""
    def like_ctrl_c(signum, frame):                      # main.py's SIGTERM: never the default (the end of pytest)
        raise KeyboardInterrupt
    x, y, xt, yt = small(sample)
    first = signal.signal(signal.SIGTERM, like_ctrl_c)
    try:
        spy, before, sender = Recorder(), signal.getsignal(sig), SignalAt({(0, 2): sig})
        run = Run(Trainer(Config(**SMALL), x, y), xt, yt, [spy, sender, StopOnSignals()])
        outcome = train(run)
        assert signal.getsignal(sig) is before
    finally:
        signal.signal(signal.SIGTERM, first)
    assert sender.went_on == [2]                           # the batch's observers finished it
    assert outcome.status == "interrupted" and outcome.final is not None
    assert [e for e in spy.seen if e[0] == "batch"] == [("batch", 0, 1), ("batch", 0, 2)]
    assert spy.seen[-1] == ("end", "interrupted")


def test_a_second_ctrl_c_interrupts_at_once_and_an_ignored_one_stays_ignored(sample):
    x, y, xt, yt = small(sample)
    run = Run(Trainer(Config(**SMALL), x, y), xt, yt, [SignalAt({(0, 1): signal.SIGINT, (0, 2): signal.SIGINT}),
                                                      StopOnSignals()])
    with pytest.raises(KeyboardInterrupt):                   # both arrive before the next batch is asked
        run.notify("on_start")
        for _ in range(2):
            run.train_batch()
    run.notify("on_end", None)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)           # a background job: Ctrl+C ignored
    try:
        stop = StopOnSignals()
        stop.on_start(run)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        stop.on_end(run, None)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_blown_up_loss_ends_the_run_as_diverged_with_the_likely_cause(sample):
    x, y, xt, yt = small(sample)
    trainer = Trainer(Config(**{**SMALL, "optimizer": "sgd", "lr": 80.0}), x, y)
    before = [w.copy() for w in trainer.net.weights]
    outcome = train(Run(trainer, xt, yt, [DivergenceCheck()]))
    assert outcome.status == "diverged" and "learning rate 80 is probably too high for sgd" in outcome.error
    assert all(np.isfinite(w).all() for w in trainer.net.weights)         # the blown-up step was not applied
    assert trainer.position != (0, 0) or all((w == b).all() for w, b in zip(trainer.net.weights, before))


# ------------------------------------------------------------------ one loop, three drivers
def test_the_headless_run_drives_the_loop(sample, tmp_path, capsys):
    from mnist_live.training.headless import run_headless
    x, y, xt, yt = small(sample)
    data = sample.__class__(sample.name, sample.source, sample.class_names, x, y, xt, yt)
    log = tmp_path / "events"
    metrics, _ = run_headless(Config(**SMALL, headless=True), data, observers=[EventLog(log)])
    assert events(log) == ONE_RUN and metrics["status"] == "finished"


@pytest.mark.slow
def test_the_window_training_process_drives_the_same_loop(sample, tmp_path):
    from mnist_live.training.process import TrainingProcess
    x, y, xt, yt = small(sample)
    data = sample.__class__(sample.name, sample.source, sample.class_names, x, y, xt, yt)
    log = tmp_path / "events"
    proc = TrainingProcess(Config(**SMALL), data, observers=[functools.partial(EventLog, str(log))])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (log.exists() and "end finished" in log.read_text()):
            proc.poll()
            time.sleep(0.05)
    finally:
        proc.stop()
    assert events(log) == ONE_RUN


def test_a_sweep_trial_drives_the_same_loop(sample, tmp_path):
    from mnist_live.runs.trials import Channel, TrialJob, run_trial

    class Parent:                                   # answers every checkpoint with "go"
        def __init__(self):
            self.reports = queue.Queue()

        def get(self, timeout):
            return "go"

        def qsize(self):
            return 0

    x, y, xt, yt = small(sample)
    log = tmp_path / "events"
    job = TrialJob(0, Config(**SMALL), {}, observers=(functools.partial(EventLog, str(log)),))
    parent = Parent()
    status = run_trial(job, {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt},
                       Channel(parent.reports, parent))
    assert status == "finished" and events(log) == ONE_RUN
    sent = [parent.reports.get_nowait() for _ in range(parent.reports.qsize())]
    assert [m["kind"] for m in sent][0] == "start" and sent[-1]["kind"] == "done"
    assert sent[-1]["final"].kind == "full" and sent[-1]["final"].position == (2, 0)
