"""A run in the terminal (--headless): the training loop with its progress bars, the test
results printed at the end, and the metrics `--metrics` writes. The caller adds its own
observers (the run library's recorder); this module never imports the run library."""
from __future__ import annotations

import sys
from collections import deque

from mnist_live.training.health import HealthMonitor, health_warnings
from mnist_live.training.loop import Observer, Outcome, Run, StopOnSignals, train
from mnist_live.training.progress import HeadlessProgress
from mnist_live.training.trainer import DivergenceCheck, SaveAtEnd, Trainer, evaluate
from mnist_live.utils import format_confusion, format_per_class

HISTORY_EPOCHS = 1000         # epochs kept in the metrics' per-epoch list (a run may have millions)


class EpochLog(Observer):
    """Each epoch's results for the metrics (the latest HISTORY_EPOCHS)."""

    def __init__(self):
        self.epochs = deque(maxlen=HISTORY_EPOCHS)

    def on_epoch_end(self, run, stats):
        measured = {"val_accuracy": run.last_val.accuracy} if run.val is not None else \
            {"test_accuracy": run.last_full.accuracy}
        self.epochs.append({"epoch": run.trainer.epoch, **measured,
                            "train_accuracy": stats.accuracy, "loss": stats.loss, "seconds": run.elapsed_s})


def run_headless(config, data, arrays=None, meta=None, observers=()):
    """Train in the terminal: progress bars, test results per epoch, and a per-class table and
    confusion matrix at the end; saves to --save. `observers`: more observers of the loop
    (the recorder). Returns (the metrics dict, the Run)."""
    trainer = Trainer(config, data.x_train, data.y_train)
    if arrays is not None:
        trainer.restore(arrays, meta)
        print(f"Loaded {config.load}: {trainer.epoch} epoch(s) done")
    log = EpochLog()
    val = getattr(data, "val", None)                        # (x_val, y_val) with --val (a training.split.SplitData)
    if config.no_train or trainer.finished:                 # nothing to train: evaluated, not added to the history
        run = Run(trainer, data.x_test, data.y_test, [log], val=val)
        at = (trainer.progress, *trainer.position)
        outcome = Outcome("finished", None, evaluate(trainer.net, data.x_test, data.y_test, "full", at),
                          None if val is None else evaluate(trainer.net, *val, "val", at))
    else:
        save = [SaveAtEnd(config.save)] if config.save else []
        progress = HeadlessProgress(trainer, config)
        health = HealthMonitor(config.health_every, log=progress.say)
        run = Run(trainer, data.x_test, data.y_test,
                  [DivergenceCheck(), health, progress, log, *save, *observers, StopOnSignals()], val=val)
        outcome = train(run)
    if outcome.status == "diverged":
        print(f"error: {outcome.error}", file=sys.stderr)
    elif outcome.status == "interrupted":
        print("interrupted")
    ev = outcome.final
    if outcome.val is not None:
        print(f"\nValidation accuracy {100 * outcome.val.accuracy:.2f} % on {outcome.val.n:,} held-out training images "
              f"(--val); the test set, scored once:")
    print(f"\nTest accuracy {100 * ev.accuracy:.2f} % on {ev.n} {data.name} test images ({data.source})")
    print(format_per_class(ev.per_class, data.class_names))
    print(format_confusion(ev.confusion, data.class_names))
    if run.model_file:
        print(f"Saved model to {run.model_file}")
    metrics = {
        "status": outcome.status,
        "test_accuracy": ev.accuracy,
        **({"val_accuracy": outcome.val.accuracy, "val_size": outcome.val.n} if outcome.val is not None else {}),
        "per_class_accuracy": list(ev.per_class),
        "confusion_matrix": ev.confusion.tolist(),
        "epochs_completed": trainer.epoch,
        "train_samples_per_s": run.samples_per_s or trainer.samples_per_s,
        "epochs": list(log.epochs),
        "history": trainer.history.to_json(),       # with the health records ("health")
        "health": {"every": config.health_every, "records": len(trainer.history.health),
                   "warnings": health_warnings(trainer.history.health)},
        "snapshots": {"count": len(trainer.snapshots), "bytes": trainer.snapshots.nbytes()},
        "hyperparameters": config.hyperparameters(),
        "dataset": data.summary(),
    }
    return metrics, run
