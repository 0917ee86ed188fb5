"""A training run's state: `Trainer` (network, optimizer, data order and position, all
reproducible from the seed and resumable from a model file), test evaluation and the
divergence check.

`Trainer.train_batch()` does one step; `Trainer.evaluate()` measures test images and keeps
the record in the run's history. The one loop that drives a trainer is `loop.py`;
`DivergenceCheck` is the observer that ends a run whose loss blew up. What a run remembers
(history, snapshots) is in `history.py`, the model-file format in `model_file.py`.
Imports NumPy, the network, the config and those two; never pygame or multiprocessing.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from mnist_live.neural_network import MLP, PIXEL_SCALE
from mnist_live.training.augment import Shifter
from mnist_live.training.config import Config
from mnist_live.training.files import atomic_save_npz
from mnist_live.training.history import EvalRecord, History, Snapshots, history_arrays, read_history
from mnist_live.training.loop import Observer, StopTraining
from mnist_live.training.model_file import FORMAT_VERSION
from mnist_live.training.optimizers import Optimizer, lr_at
from mnist_live.utils import accuracy, confusion_matrix, per_class_accuracy

DIVERGED_LOSS = 50.0          # chance level is ln(10) = 2.3; far above it the run has blown up


@dataclass
class BatchStats:
    epoch: int            # 0-based epoch being trained
    batch: int            # batches done in this epoch
    n_batches: int
    loss: float           # this batch's mean cross-entropy
    accuracy: float       # running training accuracy in this epoch
    samples_per_s: float  # training throughput over this epoch
    lr: float
    samples: int = 0      # images in this batch
    diverged: bool = False  # the loss blew up: the step was not applied (DivergenceCheck ends the run)


def evaluate(net, x, y, kind="full", at=(0.0, 0, 0), elapsed_s=None) -> EvalRecord:
    """The record of `net` evaluated on x (N, 784) uint8, y (N,): accuracy, per-class accuracy,
    confusion matrix and each image's predicted class; `at` is (progress, epoch, batch) of the
    weights, `elapsed_s` the seconds since the run started."""
    with np.errstate(over="ignore", invalid="ignore"):      # weights of a diverged run: no warnings
        pred = net.predict(x)
    conf = confusion_matrix(y, pred)
    progress, epoch, batch = at
    return EvalRecord(float(progress), kind, accuracy(conf), tuple(float(v) for v in per_class_accuracy(conf)),
                      int(epoch), int(batch), len(y), elapsed_s, conf, pred.astype(np.int16))


class Trainer:
    """One training run: network, optimizer, data order and position, all reproducible
    from the seed and resumable from a model file."""

    def __init__(self, config: Config, x_train, y_train):
        self.config = config
        self.x_train = x_train                       # (N, 784) uint8
        self.y_train = y_train.astype(np.int64)      # (N,)
        self.rng = np.random.default_rng(config.seed)
        self.net = MLP(config.sizes, config.activation, seed=config.seed)
        self.grads = [np.empty_like(p) for p in self.net.params]
        self.opt = Optimizer(self.net.params, config.optimizer, config.momentum, config.nesterov)
        self.shifter = Shifter(2) if config.augment else None
        self.epoch = 0           # completed epochs
        self.batch = 0           # batches done in the current epoch
        self.perm = None         # data order of the current epoch
        self._epoch_seen = self._epoch_correct = 0
        self._epoch_time = 0.0
        self._xb = {}            # batch size -> float32 input buffer
        self.history = History()
        self.snapshots = Snapshots(config.sizes)
        self.lr_scale = 1.0      # the user's steering, on top of the schedule (scale_lr)
        self._untrained = True   # the next batch is the run's first: snapshot the initial weights
        self.last_batch = None   # (indices (B,), inputs (B, 784) float32 as trained, classes (B,)) of the last batch

    @property
    def n_batches(self):
        return -(-len(self.x_train) // self.config.batch_size)

    @property
    def finished(self):
        return self.epoch >= self.config.epochs

    @property
    def samples_per_s(self):
        return self._epoch_seen / self._epoch_time if self._epoch_time > 0 else 0.0

    @property
    def progress(self):
        """Epochs done, as a float (2.5 = half-way through the third epoch)."""
        in_epoch = self.batch / self.n_batches if self.perm is not None else 0.0  # between epochs: 0
        return self.epoch + in_epoch

    def current_lr(self):
        return self.lr_scale * lr_at(self.config.learning_rate, self.config.lr_schedule,
                                     self.progress / self.config.epochs)

    @property
    def position(self):
        """(epoch, batch) of the current weights; batch 0 between epochs."""
        return self.epoch, self.batch if self.perm is not None else 0

    def scale_lr(self, factor):
        """Multiply the learning rate from now on (x2 / /2 steering) and return the new one.
        Recorded in the history; the scale is saved and a loaded run keeps it."""
        if not (np.isfinite(factor) and factor > 0):
            raise ValueError(f"learning-rate factor must be a positive number, not {factor!r}")
        self.lr_scale *= float(factor)
        self.history.add_lr_change(self.progress, self.current_lr())
        return self.current_lr()

    def evaluate(self, x, y, kind="full", elapsed_s=None) -> EvalRecord:
        """Evaluate the current weights on x (N, 784) uint8, y (N,) and keep the record in
        the history (without its predictions); returns the whole record."""
        record = evaluate(self.net, x, y, kind, (self.progress, *self.position), elapsed_s)
        self.history.add_eval(record)
        return record

    def snapshot_now(self):
        """Snapshot the current weights at the current position."""
        epoch, batch = self.position
        self.snapshots.take(self.net, epoch, batch, self.progress)

    def train_batch(self) -> BatchStats:
        """One optimisation step on the next mini-batch; starts a new epoch when needed.
        A batch whose loss blew up (NaN, inf, above DIVERGED_LOSS) changes nothing and
        comes back with `diverged` set: the same batch would blow up again, so whoever
        drives the trainer stops (the loop's DivergenceCheck does)."""
        cfg = self.config
        t0 = time.perf_counter()
        if self._untrained:
            self.snapshot_now()                                # the untrained weights
            self._untrained = False
        if self.perm is None:
            self.perm = self.rng.permutation(len(self.x_train))
            self.batch = 0
            self._epoch_seen = self._epoch_correct = 0
            self._epoch_time = 0.0
        idx = self.perm[self.batch * cfg.batch_size:(self.batch + 1) * cfg.batch_size]
        xb_u8 = self.x_train[idx]                              # (B, 784) uint8
        if self.shifter is not None:
            xb_u8 = self.shifter(xb_u8, self.rng)
        xb = self._xb.get(len(idx))
        if xb is None:
            xb = self._xb[len(idx)] = np.empty((len(idx), 784), np.float32)
        np.multiply(xb_u8, PIXEL_SCALE, out=xb)
        yb = self.y_train[idx]
        self.last_batch = (idx, xb, yb)                        # xb: a buffer the next batch reuses
        lr = self.current_lr()
        with np.errstate(over="ignore", invalid="ignore"):   # a blow-up is reported below, in one line
            loss, correct = self.net.train_step(xb, yb, self.grads, self.config.weight_decay,
                                                self.config.dropout, self.rng, self.opt, lr,
                                                max_loss=DIVERGED_LOSS)  # no update past it
        if not np.isfinite(loss) or loss > DIVERGED_LOSS:     # nothing was updated: the position stays
            return BatchStats(self.epoch, self.batch + 1, self.n_batches, loss, 0.0, self.samples_per_s, lr,
                              len(idx), diverged=True)
        self.batch += 1
        self._epoch_seen += len(idx)
        self._epoch_correct += correct
        self._epoch_time += time.perf_counter() - t0
        stats = BatchStats(self.epoch, self.batch, self.n_batches, loss,
                           self._epoch_correct / self._epoch_seen, self.samples_per_s, lr, len(idx))
        due = self.snapshots.due(self.epoch, self.batch, self.n_batches)
        if self.batch >= self.n_batches:
            self.epoch += 1
            self.perm = None
        self.history.add_loss(self.progress, loss)
        if due:
            self.snapshot_now()
        return stats

    def divergence_message(self, stats):
        """Why the run of `stats` (a diverged BatchStats) blew up, and what to try."""
        cfg, loss = self.config, stats.loss
        what = "became NaN/inf" if not np.isfinite(loss) else f"exploded to {loss:.3g}"
        where = f"training diverged at epoch {stats.epoch + 1}, batch {stats.batch}: the loss {what}; "
        if cfg.learning_rate * cfg.weight_decay >= 1:   # each step would scale weights by 1 - lr*decay <= 0
            return where + (f"the weight decay {cfg.weight_decay:g} is too strong for the learning rate "
                            f"{cfg.learning_rate:g} (lr x decay = {cfg.learning_rate * cfg.weight_decay:.3g} "
                            f"must stay well below 1; try --weight-decay 0.0001)")
        return where + (f"the learning rate {cfg.learning_rate:g}{self._steered()} is probably too high for "
                        f"{cfg.optimizer} "
                        f"(try --lr {cfg.learning_rate / 10:g})")

    def _steered(self):
        return f" (x{self.lr_scale:g} by steering)" if self.lr_scale != 1 else ""

    # ----------------------------------------------------------------- model files
    def state_arrays(self):
        """Everything needed to reproduce and resume the run, as named arrays."""
        out = {}
        for i, (W, b) in enumerate(zip(self.net.weights, self.net.biases), start=1):
            out[f"W{i}"], out[f"b{i}"] = W, b
        out.update(self.opt.state_arrays())
        out["epoch"] = np.array(self.epoch, dtype=np.int64)
        out["batch"] = np.array(self.position[1], dtype=np.int64)
        out["perm"] = self.perm if self.perm is not None else np.zeros(0, dtype=np.int64)
        out["progress"] = np.array([self._epoch_seen, self._epoch_correct], dtype=np.int64)
        meta = {"format_version": FORMAT_VERSION, "config": json.loads(self.config.to_json()),
                "sizes": list(self.net.sizes), "rng_state": self.rng.bit_generator.state}
        out["meta"] = np.array(json.dumps(meta))
        out.update(history_arrays(self, with_snapshots=not self.config.no_snapshots))
        return out

    def save(self, path):
        """Write the model atomically as .npz (W1, b1, ... usable from any NumPy code)."""
        atomic_save_npz(path, self.state_arrays())

    def restore(self, arrays, meta):
        """Load weights, optimizer state and data position read by `read_model`.

        The run resumes exactly when the data and batch size are the same; otherwise the
        interrupted epoch starts again (its position means nothing for other batches),
        and another optimizer starts with fresh state."""
        for i in range(self.net.n_layers):
            self.net.weights[i][...] = arrays[f"W{i + 1}"]
            self.net.biases[i][...] = arrays[f"b{i + 1}"]
        saved = meta["config"]
        if saved.get("optimizer") == self.config.optimizer and "opt_t" in arrays:
            self.opt.load_state(arrays)
        self.epoch = int(arrays.get("epoch", 0))
        perm = arrays.get("perm", np.zeros(0))
        same_batches = saved.get("batch_size") == self.config.batch_size
        batch = int(arrays.get("batch", 0))
        if len(perm) == len(self.x_train) and same_batches and 0 < batch < self.n_batches and "progress" in arrays:
            self.perm = perm.astype(np.int64)
            self.batch = batch
            self._epoch_seen, self._epoch_correct = (int(v) for v in arrays["progress"])
        if "rng_state" in meta:
            self.rng.bit_generator.state = meta["rng_state"]
        self._restore_history(arrays)

    def _restore_history(self, arrays):
        """History, snapshots and lr scale from a model file (old files: empty, none, 1)."""
        self.history, self.snapshots, self.lr_scale = read_history(arrays, self.config.sizes)
        self._untrained = not self.history.loss and self.position == (0, 0)


class DivergenceCheck(Observer):
    """Ends the run (status "diverged") at the first batch whose loss blew up, with a message
    naming the likely cause (the learning rate, or the weight decay)."""

    def on_batch(self, run, stats):
        if stats.diverged:
            raise StopTraining("diverged", run.trainer.divergence_message(stats))


class SaveAtEnd(Observer):
    """Saves the model to `path` when the run ends (not after it diverged: those weights are
    no use) and sets `run.model_file`; a save that fails sets `run.save_error` instead."""

    def __init__(self, path):
        self.path = path

    def on_end(self, run, outcome):
        if outcome.status in ("diverged", "failed"):
            return
        try:
            run.trainer.save(self.path)
            run.model_file = self.path
        except OSError as e:
            run.save_error = f"could not save the model to {self.path}: {e.strerror or e}"
