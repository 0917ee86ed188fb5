"""Training runs: the epoch loop, test evaluation, model files, and the background
training process the window talks to.

`Trainer` owns a network, its optimizer and one random generator; `train_batch()` does one
step and `evaluate()` measures the test set. The headless command line drives it directly;
the window drives it through `TrainingProcess`, a child process that publishes weight
snapshots through shared memory and small messages through a queue, so training never
waits for a frame and a frame never waits for training.
"""
from __future__ import annotations

import enum
import json
import multiprocessing as mp
import os
import queue
import re
import signal
import time
import zipfile
import zlib
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from config import HYPERPARAMETERS, Config, value_problem
from neural_network import MLP, Optimizer, Shifter, lr_at
from utils import accuracy, atomic_save_npz, confusion_matrix, per_class_accuracy

FORMAT_VERSION = 1
DIVERGED_LOSS = 50.0          # chance level is ln(10) = 2.3; far above it the run has blown up
SUBSET_SIZE = 1000            # fixed test subset evaluated often, so per-class bars move early
SUBSET_EVERY = 100            # batches between subset evaluations in the window
PUBLISH_SECONDS = 0.05        # weight snapshots to the window at most 20 times a second


class TrainingDiverged(Exception):
    """Loss became NaN/inf or exploded; the message names the likely cause."""


class ModelFileError(Exception):
    """A model file could not be read or does not fit the configuration (one line)."""


@dataclass
class BatchStats:
    epoch: int            # 0-based epoch being trained
    batch: int            # batches done in this epoch
    n_batches: int
    loss: float           # this batch's mean cross-entropy
    accuracy: float       # running training accuracy in this epoch
    samples_per_s: float  # training throughput over this epoch
    lr: float


@dataclass
class Evaluation:
    accuracy: float
    per_class: np.ndarray     # (10,) recall per class
    confusion: np.ndarray     # (10, 10) int64, rows true
    predictions: np.ndarray   # (N,) int predicted class per test sample
    n: int


def evaluate(net, x, y):
    """Accuracy, per-class accuracy and confusion matrix of `net` on x (N, 784) uint8, y (N,)."""
    with np.errstate(over="ignore", invalid="ignore"):      # weights of a diverged run: no warnings
        pred = net.predict(x)
    conf = confusion_matrix(y, pred)
    return Evaluation(accuracy(conf), per_class_accuracy(conf), conf, pred.astype(np.int16), len(y))


# ------------------------------------------------------------------ history and snapshots
# What a run remembers about itself: every evaluation (with per-class accuracy), the loss
# curve, the learning-rate changes a user made, and float16 weight snapshots to rewind to.
# All of it goes into model files (members `history`, `lr_scale`, `snap_*`) and the
# `history` of --metrics, so a loaded model shows its curves and can be rewound.
MAX_LOSS_POINTS = 5000        # loss curve length bound: older points are merged pairwise
SNAPSHOT_BUDGET = 150 * 2**20  # bytes of float16 snapshots kept (default network: 2.54 MiB each, 58 fit)


@dataclass
class EvalRecord:
    """One evaluation of the network at a training position."""
    progress: float          # epochs done as a float (fractional)
    kind: str                # "full" (whole test set) or "subset"
    accuracy: float
    per_class: list          # 10 floats (NaN for classes absent from the evaluated set)
    epoch: int               # training position of the evaluated weights
    batch: int               # batches done in that epoch (0 between epochs)

    def to_json(self):
        return {"progress": self.progress, "kind": self.kind, "accuracy": _json_float(self.accuracy),
                "per_class": [_json_float(v) for v in self.per_class], "epoch": self.epoch, "batch": self.batch}


def _json_float(v):
    """JSON has no NaN: absent values are null."""
    v = float(v)
    return v if np.isfinite(v) else None


def _bad(field, why):
    return ModelFileError(f"the model's history is invalid: {field} {why}")


def _number(value, field, lo=None, hi=None, allow_null=False):
    """A finite float from JSON (bool is not a number here); null -> NaN when allowed."""
    if value is None and allow_null:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise _bad(field, f"must be a finite number, not {value!r}"[:120])
    if lo is not None and value < lo:
        raise _bad(field, f"must be >= {lo}, not {value!r}")
    if hi is not None and value > hi:
        raise _bad(field, f"must be <= {hi}, not {value!r}")
    return float(value)


def _count(value, field):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(field, f"must be a non-negative integer, not {value!r}"[:120])
    return value


def _pairs(d, key):
    """[(float, float), ...] from a JSON list of 2-number lists."""
    items = d.get(key, [])
    if not isinstance(items, list):
        raise _bad(key, "must be a list")
    out = []
    for i, item in enumerate(items):
        if not (isinstance(item, list) and len(item) == 2):
            raise _bad(f"{key}[{i}]", "must be a [progress, value] pair")
        out.append((_number(item[0], f"{key}[{i}][0]", lo=0), _number(item[1], f"{key}[{i}][1]")))
    return out


class History:
    """Evaluations, loss curve and learning-rate changes of a run, in training order."""

    def __init__(self):
        self.evals: list[EvalRecord] = []
        self.loss: list[tuple[float, float]] = []         # (progress, loss), at most MAX_LOSS_POINTS
        self.lr_changes: list[tuple[float, float]] = []   # (progress, new effective lr)

    def add_eval(self, rec: EvalRecord):
        """Append; an evaluation of the same kind at the same position replaces the last
        one (the same weights, e.g. a paused window or a loaded model evaluated again)."""
        last = self.evals[-1] if self.evals else None
        if last is not None and (last.kind, last.epoch, last.batch) == (rec.kind, rec.epoch, rec.batch):
            self.evals[-1] = rec
        else:
            self.evals.append(rec)

    def add_loss(self, progress, loss):
        """Append a point; past MAX_LOSS_POINTS the older half is merged pairwise (means of
        progress and loss), so recent training stays at full resolution."""
        self.loss.append((float(progress), float(loss)))
        if len(self.loss) > MAX_LOSS_POINTS:
            half = len(self.loss) // 2 // 2 * 2
            old = np.asarray(self.loss[:half]).reshape(-1, 2, 2).mean(axis=1)   # (half/2, 2)
            self.loss[:half] = [(float(p), float(v)) for p, v in old]

    def add_lr_change(self, progress, lr):
        self.lr_changes.append((float(progress), float(lr)))

    def per_class_series(self, kind="full"):
        """(progress (E,), per-class accuracy (E, 10)) of the evaluations of one kind."""
        recs = [r for r in self.evals if r.kind == kind]
        return (np.array([r.progress for r in recs], np.float64),
                np.array([r.per_class for r in recs], np.float64).reshape(len(recs), 10))

    def __eq__(self, other):
        return isinstance(other, History) and self.to_json() == other.to_json()

    def to_json(self) -> dict:
        return {"evals": [r.to_json() for r in self.evals],
                "loss": [[p, v] for p, v in self.loss],
                "lr_changes": [[p, v] for p, v in self.lr_changes]}

    @classmethod
    def from_json(cls, d) -> History:
        """Validated: a ModelFileError naming the first bad field."""
        if not isinstance(d, dict):
            raise _bad("history", "must be a JSON object")
        h = cls()
        evals = d.get("evals", [])
        if not isinstance(evals, list):
            raise _bad("evals", "must be a list")
        for i, e in enumerate(evals):
            f = f"evals[{i}]"
            if not isinstance(e, dict):
                raise _bad(f, "must be an object")
            if e.get("kind") not in ("full", "subset"):
                raise _bad(f"{f}.kind", f"must be 'full' or 'subset', not {e.get('kind')!r}"[:120])
            per_class = e.get("per_class")
            if not (isinstance(per_class, list) and len(per_class) == 10):
                raise _bad(f"{f}.per_class", "must be a list of 10 numbers")
            h.evals.append(EvalRecord(
                _number(e.get("progress"), f"{f}.progress", lo=0), e["kind"],
                _number(e.get("accuracy"), f"{f}.accuracy", lo=0, hi=1, allow_null=True),
                [_number(v, f"{f}.per_class[{j}]", lo=0, hi=1, allow_null=True) for j, v in enumerate(per_class)],
                _count(e.get("epoch"), f"{f}.epoch"), _count(e.get("batch"), f"{f}.batch")))
        h.loss = _pairs(d, "loss")
        if len(h.loss) > MAX_LOSS_POINTS:
            raise _bad("loss", f"has {len(h.loss)} points, more than {MAX_LOSS_POINTS}")
        h.lr_changes = _pairs(d, "lr_changes")
        return h


class Snapshots:
    """Weight snapshots, float16, with a byte budget.

    Schedule (`due`): after batches 1, 3, 10, 30, 100, 300, 1000, ... of the first epoch
    (log-spaced, where a network changes fastest) and at every epoch end; the trainer also
    takes the untrained weights as the first one. Over budget, `take` drops the snapshot
    whose neighbours are closest in log(batches trained), among the in-epoch ones first,
    then among epoch ends; the first and the newest are always kept. A network whose two
    snapshots exceed the budget keeps none."""

    def __init__(self, sizes, budget_bytes=SNAPSHOT_BUDGET):
        self.sizes = tuple(int(s) for s in sizes)
        self.budget = int(budget_bytes)
        self.snap_bytes = 2 * sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        self._W: list[list[np.ndarray]] = []   # per snapshot: W_i float16 (fan_in, fan_out)
        self._b: list[list[np.ndarray]] = []   # per snapshot: b_i float16 (fan_out,)
        self._info: list[tuple[int, int, float]] = []   # (epoch, batch, progress)

    @staticmethod
    def due(epoch, batch, n_batches) -> bool:
        """Whether the weights after `batch` batches of `epoch` (0-based) get a snapshot."""
        if batch >= n_batches:
            return True
        if epoch != 0 or batch < 1:
            return False
        k = 10 ** int(np.floor(np.log10(batch) + 1e-9))   # batch = 1, 3 times a power of ten
        return batch in (k, 3 * k)

    @property
    def capacity(self):
        return self.budget // self.snap_bytes if self.snap_bytes else 0

    def take(self, net, epoch, batch, progress):
        """Store a float16 copy of net's weights at this position, then thin to the budget."""
        if self.capacity < 2:
            return
        info = (int(epoch), int(batch), float(progress))
        with np.errstate(over="ignore"):          # weights past float16's range become inf (a blown-up run)
            self._W.append([W.astype(np.float16) for W in net.weights])
            self._b.append([b.astype(np.float16) for b in net.biases])
        self._info.append(info)
        self._thin()

    def _thin(self):
        while len(self._info) > self.capacity:
            self._drop(self._victim())

    def _victim(self):
        """Index of the interior snapshot with the smallest log-progress gap between its
        neighbours; in-epoch snapshots (batch > 0) go before epoch ends."""
        x = np.log1p(np.array([p for _, _, p in self._info]) * 1000.0)   # (S,) progress, log-spaced
        gap = x[2:] - x[:-2]                                             # (S-2,) for indices 1..S-2
        in_epoch = np.array([b > 0 for _, b, _ in self._info[1:-1]])
        candidates = np.flatnonzero(in_epoch) if in_epoch.any() else np.arange(len(gap))
        return int(candidates[np.argmin(gap[candidates])]) + 1

    def _drop(self, i):
        del self._W[i], self._b[i], self._info[i]

    def __len__(self):
        return len(self._info)

    def info(self, i) -> tuple[int, int, float]:
        """(epoch, batch, progress) of snapshot i."""
        return self._info[i]

    def weights(self, i):
        """(list of W_i float32 (fan_in, fan_out), list of b_i float32 (fan_out,)) of snapshot i."""
        return [W.astype(np.float32) for W in self._W[i]], [b.astype(np.float32) for b in self._b[i]]

    def load_into(self, net, i):
        """Copy snapshot i into net's weights (float16 -> float32)."""
        for dst, src in zip(net.weights + net.biases, self._W[i] + self._b[i]):
            dst[...] = src

    def nearest(self, progress) -> int:
        """Index of the snapshot closest to `progress` (-1 when there is none)."""
        if not self._info:
            return -1
        return int(np.argmin([abs(p - progress) for _, _, p in self._info]))

    def nbytes(self) -> int:
        return sum(a.nbytes for s in self._W + self._b for a in s)

    def state_arrays(self):
        """{snap_info (S, 3) float64, snap_W1 (S, fan_in, fan_out) float16, snap_b1 (S, fan_out), ...}."""
        out = {"snap_info": np.array(self._info, np.float64).reshape(len(self), 3)}
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            out[f"snap_W{i + 1}"] = np.array([s[i] for s in self._W], np.float16).reshape(len(self), fan_in, fan_out)
            out[f"snap_b{i + 1}"] = np.array([s[i] for s in self._b], np.float16).reshape(len(self), fan_out)
        return out

    def load_arrays(self, arrays):
        """Replace the snapshots by those in `arrays` (none when snap_info is absent),
        checking names, shapes and dtypes; ModelFileError names the bad member."""
        self._W, self._b, self._info = [], [], []
        if "snap_info" not in arrays:
            return
        info = arrays["snap_info"]
        if info.dtype != np.float64 or info.ndim != 2 or info.shape[1] != 3 or not np.isfinite(info).all() \
                or (info < 0).any() or (info[:, :2] != np.round(info[:, :2])).any():
            raise ModelFileError("the model file's snap_info must be (S, 3) float64 rows of epoch, batch, progress "
                                 f"(got {info.dtype} {info.shape})")
        n = len(info)
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            for name, shape in ((f"snap_W{i}", (n, fan_in, fan_out)), (f"snap_b{i}", (n, fan_out))):
                a = arrays.get(name)
                if a is None or a.dtype != np.float16 or a.shape != shape:
                    got = "missing" if a is None else f"{a.dtype} {a.shape}"
                    raise ModelFileError(f"the model file's {name} must be float16 {shape} (got {got})")
            layers.append((arrays[f"snap_W{i}"], arrays[f"snap_b{i}"]))
        for s in range(n):
            self._W.append([W[s].copy() for W, _ in layers])
            self._b.append([b[s].copy() for _, b in layers])
            self._info.append((int(info[s, 0]), int(info[s, 1]), float(info[s, 2])))
        self._thin()


def history_member(name) -> bool:
    """Whether a model-file member belongs to the history (for readers that list members)."""
    return name in ("history", "lr_scale", "snap_info") or name.startswith(("snap_W", "snap_b"))


def history_arrays(trainer, with_snapshots=True):
    """The model-file members of the history: `history` (JSON string), `lr_scale` and,
    unless left out, the snapshots (`snap_*`)."""
    out = {"history": np.array(json.dumps(trainer.history.to_json(), allow_nan=False)),
           "lr_scale": np.array(trainer.lr_scale, np.float64)}
    if with_snapshots:
        out.update(trainer.snapshots.state_arrays())
    return out


def read_history(arrays, sizes, budget_bytes=SNAPSHOT_BUDGET):
    """(History, Snapshots, lr_scale) from model-file members; an older file without them
    gives an empty history, no snapshots and scale 1. ModelFileError names a bad member."""
    history = History()
    if "history" in arrays:
        h = arrays["history"]
        if h.dtype.kind != "U" or h.ndim != 0:
            raise ModelFileError(f"the model file's history must be a JSON string (got {h.dtype} {h.shape})")
        try:
            d = json.loads(str(h))
        except ValueError:
            raise ModelFileError("the model file's history is not valid JSON") from None
        history = History.from_json(d)
    scale = 1.0
    if "lr_scale" in arrays:
        s = arrays["lr_scale"]
        if s.shape != () or s.dtype.kind != "f" or not np.isfinite(s) or s <= 0:
            raise ModelFileError(f"the model file's lr_scale must be a positive number (got {s.dtype} {s!r})"[:160])
        scale = float(s)
    snapshots = Snapshots(sizes, budget_bytes)
    snapshots.load_arrays(arrays)
    return history, snapshots, scale


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

    def record_eval(self, kind, ev):
        """Add an evaluation (trainer.Evaluation) of the current weights to the history."""
        epoch, batch = self.position
        self.history.add_eval(EvalRecord(self.progress, kind, float(ev.accuracy),
                                         [float(v) for v in ev.per_class], epoch, batch))

    def snapshot_now(self):
        """Snapshot the current weights at the current position."""
        epoch, batch = self.position
        self.snapshots.take(self.net, epoch, batch, self.progress)

    def train_batch(self) -> BatchStats:
        """One optimisation step on the next mini-batch; starts a new epoch when needed."""
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
        np.multiply(xb_u8, np.float32(1 / 255), out=xb)
        yb = self.y_train[idx]
        lr = self.current_lr()
        with np.errstate(over="ignore", invalid="ignore"):   # a blow-up is reported below, in one line
            loss, correct = self.net.train_step(xb, yb, self.grads, self.config.weight_decay,
                                                self.config.dropout, self.rng, self.opt, lr,
                                                max_loss=DIVERGED_LOSS)  # no update past it
        if not np.isfinite(loss) or loss > DIVERGED_LOSS:
            raise TrainingDiverged(self._divergence_message(loss))
        self.batch += 1
        self._epoch_seen += len(idx)
        self._epoch_correct += correct
        self._epoch_time += time.perf_counter() - t0
        stats = BatchStats(self.epoch, self.batch, self.n_batches, loss,
                           self._epoch_correct / self._epoch_seen, self.samples_per_s, lr)
        due = self.snapshots.due(self.epoch, self.batch, self.n_batches)
        if self.batch >= self.n_batches:
            self.epoch += 1
            self.perm = None
        self.history.add_loss(self.progress, loss)
        if due:
            self.snapshot_now()
        return stats

    def _divergence_message(self, loss):
        cfg = self.config
        what = "became NaN/inf" if not np.isfinite(loss) else f"exploded to {loss:.3g}"
        where = f"training diverged at epoch {self.epoch + 1}, batch {self.batch + 1}: the loss {what}; "
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
        out["batch"] = np.array(self.batch if self.perm is not None else 0, dtype=np.int64)
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


# ------------------------------------------------------------------------ model files
# The members a model file may hold; nothing else in the archive is ever read.
_MEMBER = re.compile(r"(meta|epoch|batch|perm|progress|opt_t|[Wb][1-9]\d{0,2}|opt_[mMV]\d{1,4}"
                     r"|history|lr_scale|snap_info|snap_[Wb][1-9]\d{0,2})")
MAX_SNAPSHOTS = 10_000        # rows of snap_info a file may claim
TERM_GRACE_S = 3.0            # after SIGTERM the trainer waits this long for the window's stop order
MAX_META_CHARS = 1 << 16      # the meta JSON is ~2 KB
MAX_WIDTH = 16384             # widest layer (the --hidden bound)
MAX_PERM = 10 ** 7            # longest data order (MNIST: 60,000)
MAX_EPOCH = 2 ** 31 - 1


def read_model(path):
    """(arrays, meta) from a model file, with a one-line ModelFileError on any problem.

    Our files hold W1, b1, ..., the optimizer state, the data position and a JSON `meta`.
    An .npz of only W1, b1, W2, b2, ... (from other code, e.g. PyTorch) is accepted too:
    the layer sizes come from the shapes, in our (fan_in, fan_out) layout or PyTorch's
    (fan_out, fan_in), which is transposed; `meta["foreign"]` then says which.

    Only the members named above are read, and each .npy header (shape, dtype) is checked
    before its data, so a huge or hostile member costs no memory. Every field of the
    training state is validated (ModelFileError naming the field)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"model file {path} does not exist")
    if not os.path.isfile(path):                         # a folder, FIFO (would block) or device
        raise ModelFileError(f"{path} is not a model file: not a regular file")
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":              # every .npz is a zip archive
                raise ModelFileError(f"{path} is not a model file: not a NumPy .npz archive")
        with zipfile.ZipFile(path) as zf:
            reader = _MemberReader(path, zf)
            if "meta" in reader.headers:
                return _read_own_model(reader)
            return _read_foreign_model(reader)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, zlib.error) as e:
        message = f"{path} is not a readable model .npz file ({type(e).__name__}: {e})"
        raise ModelFileError(message.splitlines()[0]) from None


class _MemberReader:
    """The .npy members of an .npz that belong to the model format: their headers first
    (shape, dtype: no data read), then their data on request."""

    def __init__(self, path, zf):
        self.path, self.zf = path, zf
        self.names = {}
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else None
            if key and _MEMBER.fullmatch(key):
                self.names[key] = info.filename
        self.headers = {key: self._header(key) for key in self.names}

    def _header(self, key):
        with self.zf.open(self.names[key]) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"{key}: unsupported .npy version {version}")
        if dtype.hasobject:                          # object arrays: never unpickled here
            raise ModelFileError(f"{self.path} is not a model file: it holds Python objects, "
                                 f"not only numeric arrays ({key})")
        return shape, dtype

    def expect(self, key, shape, kinds, what):
        """Raise unless member `key` exists with exactly `shape` (None: any 1-D) and a dtype kind in `kinds`."""
        if key not in self.headers:
            raise ModelFileError(f"{self.path}: {key} is missing ({what})")
        got_shape, dtype = self.headers[key]
        if (shape is None and len(got_shape) != 1) or (shape is not None and got_shape != tuple(shape)):
            want = "1-D" if shape is None else f"shaped {tuple(shape)}"
            raise ModelFileError(f"{self.path}: {key} is shaped {got_shape}, but {what} must be {want}")
        if dtype.kind not in kinds:
            raise ModelFileError(f"{self.path}: {key} holds {dtype}, but {what} must be "
                                 f"{'floating-point' if kinds == 'f' else 'integer'} numbers")

    def read(self, key):
        with self.zf.open(self.names[key]) as f:
            return np.lib.format.read_array(f, allow_pickle=False)


def _read_own_model(r):
    path = r.path
    shape, dtype = r.headers["meta"]
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_META_CHARS:
        raise ModelFileError(f"{path} has an unreadable meta entry ({dtype} {shape}, expected a JSON string)")
    try:
        meta = json.loads(str(r.read("meta")))
    except ValueError:
        raise ModelFileError(f"{path} has an unreadable meta entry") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) \
            or not isinstance(meta.get("sizes"), list):
        raise ModelFileError(f"{path} has a meta entry without the expected config and sizes")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path} has model format {meta.get('format_version')}, expected {FORMAT_VERSION}")
    saved = meta["config"]
    for key in HYPERPARAMETERS:
        problem = value_problem(key, saved[key]) if key in saved else None
        if problem:
            raise ModelFileError(f"{path}: meta.config.{key} {problem} (got {saved[key]!r})")
    if "hidden" not in saved:
        raise ModelFileError(f"{path}: meta.config.hidden is missing")
    sizes = meta["sizes"]
    if sizes != [784, *saved["hidden"], 10]:
        raise ModelFileError(f"{path}: meta.sizes {sizes} does not match meta.config.hidden {saved['hidden']}")
    if "rng_state" in meta:
        try:
            np.random.default_rng().bit_generator.state = meta["rng_state"]
        except (TypeError, ValueError, KeyError, OverflowError):
            raise ModelFileError(f"{path}: meta.rng_state is not a PCG64 generator state") from None
    # headers before data: shapes follow from meta.sizes
    params = [(f"{wb}{i}", shp) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1)
              for wb, shp in (("W", (a, b)), ("b", (b,)))]
    for key, shp in params:
        r.expect(key, shp, "f", f"layer {key[1:]} of a {'-'.join(map(str, sizes))} network")
    scalars = [k for k in ("epoch", "batch", "opt_t") if k in r.headers]
    for key in scalars:
        r.expect(key, (), "iu", key)
    if "perm" in r.headers:
        r.expect("perm", None, "iu", "perm (the data order)")
        if r.headers["perm"][0][0] > MAX_PERM:
            raise ModelFileError(f"{path}: perm has {r.headers['perm'][0][0]:,} entries, more than any training set")
    if "progress" in r.headers:
        r.expect("progress", (2,), "iu", "progress (samples seen, correct)")
    opt_keys = []
    if "opt_t" in r.headers:                       # the saved optimizer's state, complete
        kinds = {"adam": ("M", "V"), "momentum": ("m",)}.get(saved.get("optimizer"), ())
        for kind in kinds:
            for j, (key, shp) in enumerate(params):
                r.expect(f"opt_{kind}{j}", shp, "f", f"{saved.get('optimizer')} state of {key}")
                opt_keys.append(f"opt_{kind}{j}")
    history_keys = _expect_history(r, params)
    arrays = {}
    for key, _ in params:
        arrays[key] = r.read(key).astype(np.float32, copy=False)
    for key in scalars + [k for k in ("perm", "progress") if k in r.headers] + opt_keys + history_keys:
        arrays[key] = r.read(key)
    _check_state(path, arrays, saved)
    return arrays, meta


def _expect_history(r, params):
    """Check the headers of the history members (JSON history, lr_scale, snapshots) before
    any is read; returns the keys present."""
    keys = []
    if "history" in r.headers:
        shape, dtype = r.headers["history"]
        if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * 64 * 2**20:
            raise ModelFileError(f"{r.path}: history is {dtype} {shape}, expected a JSON string")
        keys.append("history")
    if "lr_scale" in r.headers:
        r.expect("lr_scale", (), "f", "lr_scale (the steering factor)")
        keys.append("lr_scale")
    if "snap_info" in r.headers:
        shape, _ = r.headers["snap_info"]
        if len(shape) != 2 or shape[1] != 3 or shape[0] > MAX_SNAPSHOTS:
            raise ModelFileError(f"{r.path}: snap_info is shaped {shape}, expected (snapshots, 3)")
        r.expect("snap_info", shape, "f", "snap_info (epoch, batch, progress of each snapshot)")
        keys.append("snap_info")
        for key, shp in params:
            r.expect(f"snap_{key}", (shape[0], *shp), "f", f"the snapshots of {key}")
            keys.append(f"snap_{key}")
    return keys


def _check_state(path, arrays, saved):
    """ModelFileError naming the first field of the training state that is out of range."""
    def bad(field, why):
        raise ModelFileError(f"{path}: {field} {why}")

    epoch, batch = int(arrays.get("epoch", 0)), int(arrays.get("batch", 0))
    if not 0 <= epoch <= MAX_EPOCH:
        bad("epoch", f"must be between 0 and {MAX_EPOCH} (got {epoch})")
    perm = arrays.get("perm", np.zeros(0, np.int64))
    n = len(perm)
    if n and not np.array_equal(np.sort(perm), np.arange(n)):
        bad("perm", f"is not an order of the {n} training samples (each of 0..{n - 1} once)")
    n_batches = -(-n // saved.get("batch_size", 1))
    if not 0 <= batch <= n_batches:
        bad("batch", f"must be between 0 and {n_batches} (the batches in an epoch; got {batch})")
    if "progress" in arrays:
        seen, correct = (int(v) for v in arrays["progress"])
        limit = n or 2 ** 62                        # between epochs it holds the last epoch's counts
        if not 0 <= correct <= seen <= limit:
            bad("progress", f"must be 0 <= correct <= seen{f' <= {n}' if n else ''} "
                            f"(got seen {seen}, correct {correct})")
    if "opt_t" in arrays and not 0 <= int(arrays["opt_t"]) <= 2 ** 53:
        bad("opt_t", f"must be a step count >= 0 (got {int(arrays['opt_t'])})")
    for key, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad(key, "contains NaN or inf")
        if key.startswith("opt_V") and (a < 0).any():
            bad(key, "must not be negative (sums of squares)")


def _read_foreign_model(r):
    """W1, b1, W2, b2, ... only: layer sizes from the shapes, either layout."""
    path = r.path
    n = 0
    while f"W{n + 1}" in r.headers and f"b{n + 1}" in r.headers:
        n += 1
    if n == 0:
        raise ModelFileError(f"{path} is not a model file: it has no W1 and b1 arrays")
    shapes = [r.headers[f"W{i}"][0] for i in range(1, n + 1)]
    biases = [r.headers[f"b{i}"][0] for i in range(1, n + 1)]
    layout = _weight_layout(shapes, biases)
    if layout is None:
        desc = ", ".join(f"W{i} {s}" for i, s in enumerate(shapes, start=1))
        raise ModelFileError(f"{path}: W1..W{n} ({desc}) do not chain from 784 inputs to 10 outputs "
                             f"in (fan_in, fan_out) or PyTorch's (fan_out, fan_in) layout")
    torch = layout == "pytorch"
    sizes = [784] + [s[0] if torch else s[1] for s in shapes]
    if any(not 1 <= h <= MAX_WIDTH for h in sizes[1:-1]):
        raise ModelFileError(f"{path}: a hidden layer of {max(sizes[1:-1]):,} units is wider than {MAX_WIDTH}")
    for i in range(1, n + 1):
        for key in (f"W{i}", f"b{i}"):
            if r.headers[key][1].kind != "f":
                raise ModelFileError(f"{path}: {key} holds {r.headers[key][1]}, expected floating-point numbers")
    arrays = {}
    for i in range(1, n + 1):
        W = r.read(f"W{i}")
        arrays[f"W{i}"] = np.ascontiguousarray(W.T if torch else W, dtype=np.float32)   # (fan_in, fan_out)
        arrays[f"b{i}"] = r.read(f"b{i}").astype(np.float32, copy=False)
        for key in (f"W{i}", f"b{i}"):
            if not np.isfinite(arrays[key]).all():
                raise ModelFileError(f"{path}: {key} contains NaN or inf")
    layout_text = ("PyTorch's (fan_out, fan_in) layout, transposed" if torch else "(fan_in, fan_out) layout")
    meta = {"format_version": FORMAT_VERSION, "config": {"hidden": sizes[1:-1]}, "sizes": sizes,
            "foreign": f"weights only, {'-'.join(map(str, sizes))} network in {layout_text}; "
                       f"fresh optimizer state"}
    return arrays, meta


def _weight_layout(shapes, biases):
    """'numpy' when W_i are (fan_in, fan_out) chaining 784 -> ... -> 10, 'pytorch' when they
    are (fan_out, fan_in), else None (b_i must be (fan_out,) either way)."""
    for layout, (i_in, i_out) in (("numpy", (0, 1)), ("pytorch", (1, 0))):
        fan_in = 784
        ok = True
        for s, b in zip(shapes, biases):
            if len(s) != 2 or s[i_in] != fan_in or b != (s[i_out],):
                ok = False
                break
            fan_in = s[i_out]
        if ok and fan_in == 10:
            return layout
    return None


def check_model_fits(path, arrays, meta, config):
    """ModelFileError unless the file's layer shapes match `config`."""
    sizes = tuple(meta.get("sizes", ()))
    if sizes != config.sizes:
        raise ModelFileError(
            f"{path} holds a {'-'.join(map(str, sizes))} network but the configuration asks for "
            f"{'-'.join(map(str, config.sizes))} (use --hidden {' '.join(map(str, sizes[1:-1]))})")
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        W, b = arrays.get(f"W{i}"), arrays.get(f"b{i}")
        if W is None or b is None or W.shape != (fan_in, fan_out) or b.shape != (fan_out,):
            raise ModelFileError(f"{path}: W{i}/b{i} missing or not shaped ({fan_in}, {fan_out})")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ModelFileError(f"{path}: W{i}/b{i} contain NaN or inf")


# ------------------------------------------------------------------ background process
# What the window and the training process say to each other: small typed records.
class Command(enum.Enum):
    PAUSE = "pause"          # pause, publish the weights and evaluate the full test set
    RESUME = "resume"
    STEP = "step"            # one batch while paused
    DELAY = "delay"          # slow motion: seconds to sleep per batch
    SAVE = "save"            # save the model to `path`
    STOP = "stop"            # save to `path` if given, then exit
    SCALE_LR = "scale_lr"    # multiply the learning rate by `value` from now on
    SNAPSHOT = "snapshot"    # send the weights of snapshot `index`
    DIGIT_HISTORY = "digit_history"   # send test digit `index`'s prediction under every snapshot


@dataclass(frozen=True)
class Order:
    command: Command
    seconds: float = 0.0
    path: str | None = None
    value: float = 0.0
    index: int = -1


@dataclass(frozen=True)
class BatchReport:
    epoch: int               # 0-based epoch being trained
    batch: int               # batches done in this epoch
    n_batches: int
    loss: float              # mean loss since the previous report
    accuracy: float          # running training accuracy in this epoch
    lr: float
    samples: int             # samples trained in this session so far
    time: float              # time.monotonic() when the batch ended


@dataclass(frozen=True)
class EvalReport:
    kind: str                # "full" (whole test set) or "subset"
    accuracy: float
    per_class: np.ndarray    # (10,)
    confusion: np.ndarray    # (10, 10) rows true
    predictions: np.ndarray | None   # (N,) for "full"
    epoch: int
    batch: int
    progress: float          # epochs done as a float
    seconds: float


@dataclass(frozen=True)
class Position:
    epoch: int
    batch: int
    paused: bool


@dataclass(frozen=True)
class Finished:
    epoch: int


@dataclass(frozen=True)
class Saved:
    path: str
    reason: str


@dataclass(frozen=True)
class TrainerFailed:
    text: str
    diverged: bool           # False: the process died or failed otherwise


@dataclass(frozen=True)
class RunHistory:
    history: dict            # History.to_json(): evaluations, loss curve, learning-rate changes
    snapshots: list          # (epoch, batch, progress) of each snapshot kept, oldest first


@dataclass(frozen=True)
class SnapshotWeights:
    index: int
    info: tuple              # (epoch, batch, progress)
    weights: list            # float16 (fan_in, fan_out) per layer
    biases: list             # float16 (fan_out,) per layer


@dataclass(frozen=True)
class DigitHistory:
    index: int               # test digit
    rows: list               # per snapshot: (progress, predicted class, probability of the true class)


@dataclass(frozen=True)
class Notice:
    text: str                # e.g. a save that failed


def _shared_copy(arr):
    """(shared memory block, array view on it holding a copy of arr, spec for _attach)."""
    shm = shared_memory.SharedMemory(create=True, size=max(arr.nbytes, 1))
    view = np.ndarray(arr.shape, arr.dtype, buffer=shm.buf)
    view[...] = arr
    return shm, view, (shm.name, arr.shape, arr.dtype.str)


def _attach(spec):
    name, shape, dtype = spec
    shm = shared_memory.SharedMemory(name=name)
    return shm, np.ndarray(shape, np.dtype(dtype), buffer=shm.buf)


class TrainingProcess:
    """A Trainer in a child process with one BLAS thread (the window keeps the other core).

    The parent calls `poll()` once per frame: it returns new reports and, when the worker
    published new weights, `take_weights` copies them into the caller's arrays and returns
    their stamp (publication counter, epoch, batch)."""

    def __init__(self, config: Config, data, model_file=None):
        ctx = mp.get_context("spawn")
        self._shms = []
        specs = {}
        for key in ("x_train", "y_train", "x_test", "y_test"):
            shm, _, specs[key] = _shared_copy(getattr(data, key))
            self._shms.append(shm)
        sizes = config.sizes
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        shm, self.params_flat, specs["params"] = _shared_copy(np.zeros(n_params, np.float32))
        self._shms.append(shm)
        shm, self.stamp_shared, specs["stamp"] = _shared_copy(np.zeros(3, np.int64))   # version, epoch, batch
        self._shms.append(shm)
        self.sizes = sizes
        self.lock = ctx.Lock()
        self.commands = ctx.Queue()
        self.messages = ctx.Queue()
        self.seen_version = 0
        env_before = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"   # inherited by the spawned child only
        try:
            self.process = ctx.Process(
                target=_worker_main, daemon=True, name="trainer",
                args=(config, specs, model_file, self.lock, self.commands, self.messages))
            self.process.start()
        finally:
            if env_before is None:
                os.environ.pop("OPENBLAS_NUM_THREADS", None)
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = env_before

    def send(self, order: Order):
        if self.process.is_alive():
            self.commands.put(order)

    def poll(self, max_messages=200):
        """(reports, whether newer weights than the last taken ones are published)."""
        out = []
        for _ in range(max_messages):
            try:
                out.append(self.messages.get_nowait())
            except (queue.Empty, EOFError, OSError):
                break
        return out, int(self.stamp_shared[0]) != self.seen_version

    def take_weights(self, weights, biases):
        """Copy the newest published weights into `weights` / `biases` (lists of arrays
        shaped like the network's); returns their stamp (version, epoch, batch), or None
        when nothing was published yet."""
        shared_w, shared_b = _split_params(self.params_flat, self.sizes)
        with self.lock:
            stamp = tuple(int(v) for v in self.stamp_shared)
            if stamp[0] == 0:
                return None
            for dst, src in zip(weights + biases, shared_w + shared_b):     # straight from shared memory
                np.copyto(dst, src)
        self.seen_version = stamp[0]
        return stamp

    def stop(self, save_path=None, timeout=10.0):
        """Stop the worker (saving first when asked) and free shared memory.
        Returns the last reports (e.g. the `Saved` one)."""
        out = []
        if self.process.is_alive():
            self.commands.put(Order(Command.STOP, path=save_path))
            deadline = time.monotonic() + timeout
            while self.process.is_alive() and time.monotonic() < deadline:
                try:
                    out.append(self.messages.get(timeout=0.05))
                except (queue.Empty, EOFError, OSError):
                    pass
            if self.process.is_alive():
                self.process.kill()                 # it ignores SIGTERM
            self.process.join(1.0)
        while True:
            try:
                out.append(self.messages.get_nowait())
            except (queue.Empty, EOFError, OSError, ValueError):
                break
        for q in (self.commands, self.messages):
            q.cancel_join_thread()
            q.close()
        for shm in self._shms:
            shm.close()
            try:
                shm.unlink()
            except FileNotFoundError:
                pass
        self._shms = []
        return out


class ParentWatch:
    """In a child process: has the process that started it died?

    `os.getppid()` changing is no test everywhere: Windows never re-parents an orphan. So
    this asks multiprocessing's parent sentinel instead (POSIX: a pipe whose other end only
    the parent holds, readable once it dies; Windows: the parent's process handle). A
    process not started by multiprocessing falls back to the re-parenting test."""

    def __init__(self):
        self._parent = mp.parent_process()
        self._ppid = os.getppid()

    def gone(self):
        if self._parent is not None:
            return not self._parent.is_alive()
        return os.getppid() != self._ppid


def _split_params(flat, sizes):
    """Views W_i (fan_in, fan_out) and b_i (fan_out,) into one flat float32 array."""
    weights, biases, o = [], [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        weights.append(flat[o:o + fan_in * fan_out].reshape(fan_in, fan_out))
        o += fan_in * fan_out
        biases.append(flat[o:o + fan_out])
        o += fan_out
    return weights, biases


def _eval_report(kind, ev, trainer, elapsed):
    return EvalReport(kind, ev.accuracy, ev.per_class, ev.confusion, ev.predictions if kind == "full" else None,
                      trainer.epoch, trainer.batch if trainer.perm is not None else 0, trainer.progress, elapsed)


class _Worker:
    """The training process's loop: train, publish, obey orders, never block the UI."""

    def __init__(self, config, arr, model_file, lock, commands, messages):
        self.config, self.lock, self.commands, self.messages = config, lock, commands, messages
        self.trainer = Trainer(config, arr["x_train"], arr["y_train"])
        self.x_test, self.y_test = arr["x_test"], arr["y_test"]
        self.subset = np.arange(min(SUBSET_SIZE, len(self.y_test)))
        if model_file:
            arrays, meta = read_model(model_file)
            self.trainer.restore(arrays, meta)
        self.weights, self.biases = _split_params(arr["params"], config.sizes)
        self.stamp = arr["stamp"]
        self.paused, self.delay, self.running = config.no_train, 0.0, True
        self.samples = 0
        self.sent_snapshots = None              # what the window was last told of the snapshots

    def publish(self):
        t = self.trainer
        with self.lock:
            for dst, src in zip(self.weights + self.biases, t.net.weights + t.net.biases):
                np.copyto(dst, src)
            self.stamp[:] = (self.stamp[0] + 1, t.epoch, t.batch if t.perm is not None else 0)

    def evaluate(self, kind):
        t0 = time.perf_counter()
        if kind == "full":
            ev = evaluate(self.trainer.net, self.x_test, self.y_test)
        else:
            ev = evaluate(self.trainer.net, self.x_test[self.subset], self.y_test[self.subset])
        self.trainer.record_eval(kind, ev)
        self.messages.put(_eval_report(kind, ev, self.trainer, time.perf_counter() - t0))

    def position(self):
        t = self.trainer
        self.messages.put(Position(t.epoch, t.batch if t.perm is not None else 0, self.paused))

    def save(self, path, reason):
        try:
            self.trainer.save(path)
            self.messages.put(Saved(path, reason))
        except OSError as e:
            self.messages.put(Notice(f"could not save {path}: {e.strerror or e}"))

    def train_one(self):
        """One batch; None (and paused) when the run diverged."""
        try:
            stats = self.trainer.train_batch()
        except TrainingDiverged as e:
            self.messages.put(TrainerFailed(str(e), diverged=True))
            self.paused = True
            return None
        self.samples += self.config.batch_size if stats.batch < stats.n_batches else \
            len(self.trainer.x_train) - (stats.n_batches - 1) * self.config.batch_size
        return stats

    def report(self, stats, loss):
        self.messages.put(BatchReport(stats.epoch, stats.batch, stats.n_batches, float(loss), stats.accuracy,
                                      stats.lr, self.samples, time.monotonic()))

    def handle(self, order):
        c = order.command
        if c is Command.STOP:
            if order.path:
                self.save(order.path, "quit")
            self.running = False
        elif c is Command.PAUSE:
            self.paused = True
            self.publish()
            self.position()
            self.evaluate("full")
        elif c is Command.RESUME:
            self.paused = False
            self.position()
        elif c is Command.DELAY:
            self.delay = float(order.seconds)
        elif c is Command.SAVE:
            self.save(order.path, "key")
        elif c is Command.SCALE_LR:
            lr = self.trainer.scale_lr(order.value)
            self.messages.put(Notice(f"learning rate now {lr:.3g} (x{self.trainer.lr_scale:g} of the schedule)"))
            self.send_history()
        elif c is Command.SNAPSHOT and 0 <= order.index < len(self.trainer.snapshots):
            snaps = self.trainer.snapshots
            W, b = snaps.weights(order.index)
            self.messages.put(SnapshotWeights(order.index, snaps.info(order.index),
                                              [w.astype(np.float16) for w in W], [v.astype(np.float16) for v in b]))
        elif c is Command.DIGIT_HISTORY:
            self.messages.put(DigitHistory(order.index, self.digit_history(order.index)))
        elif c is Command.STEP and not self.trainer.finished:
            epoch = self.trainer.epoch
            stats = self.train_one()
            if stats is not None:
                self.report(stats, stats.loss)
                self.publish()
                self.evaluate("full" if self.trainer.epoch != epoch else "subset")
                self.after_epoch(epoch)

    def snapshot_mark(self):
        """(count, newest info) of the snapshots: changes whenever one is taken or thinned."""
        snaps = self.trainer.snapshots
        return len(snaps), snaps.info(len(snaps) - 1) if len(snaps) else None

    def send_history(self):
        snaps = self.trainer.snapshots
        self.messages.put(RunHistory(self.trainer.history.to_json(), [snaps.info(i) for i in range(len(snaps))]))
        self.sent_snapshots = self.snapshot_mark()

    def digit_history(self, index):
        """(progress, predicted class, probability of the true class) of test digit `index`
        under each snapshot, oldest first."""
        snaps, rows = self.trainer.snapshots, []
        if not 0 <= index < len(self.y_test):
            return rows
        net = MLP(self.config.sizes, self.config.activation, seed=0)
        x = self.x_test[index].astype(np.float32) * np.float32(1 / 255)
        for i in range(len(snaps)):
            snaps.load_into(net, i)
            with np.errstate(all="ignore"):
                p = net.forward(x)
            p = np.nan_to_num(p)
            rows.append((snaps.info(i)[2], int(p.argmax()), float(p[int(self.y_test[index])])))
        return rows

    def after_epoch(self, epoch_before):
        t = self.trainer
        if t.epoch == epoch_before:
            return
        if t.finished:
            if self.config.save:
                self.save(self.config.save, "finished")
            self.messages.put(Finished(t.epoch))

    def wait_for_orders(self):
        """Commands first, so keys feel instant even mid-epoch. Idle or in slow motion,
        wait for them (instead of sleeping) so Space still answers at once."""
        begin = time.perf_counter()
        while self.running:
            idle = self.paused or self.trainer.finished
            remaining = begin + (0.05 if idle else self.delay) - time.perf_counter()  # re-read per order
            try:
                order = self.commands.get(timeout=remaining) if remaining > 0 else self.commands.get_nowait()
            except queue.Empty:
                return
            except (EOFError, OSError):           # the window is gone
                order = Order(Command.STOP)
            self.handle(order)

    def run(self, parent_alive):
        t = self.trainer
        self.position()
        if t.finished:                            # a loaded run that is already complete
            self.messages.put(Finished(t.epoch))
        self.publish()
        self.evaluate("full")
        self.send_history()
        last_publish = last_report = time.perf_counter()
        losses = []
        while self.running and parent_alive():
            self.wait_for_orders()
            if not self.running or self.paused or t.finished:
                continue
            epoch_before = t.epoch
            stats = self.train_one()
            if stats is None:
                continue
            losses.append(stats.loss)
            now = time.perf_counter()
            slow = self.delay > 0
            if slow or now - last_report > 0.1 or t.epoch != epoch_before:
                self.report(stats, np.mean(losses))
                losses = []
                last_report = now
            if t.epoch != epoch_before:
                self.publish()
                self.evaluate("full")
                self.after_epoch(epoch_before)
                self.send_history()                       # the epoch's evaluation and snapshot, once
            else:
                if slow or now - last_publish > PUBLISH_SECONDS:
                    self.publish()
                    last_publish = now
                if t.batch % SUBSET_EVERY == 0:
                    self.evaluate("subset")
                if self.snapshot_mark() != self.sent_snapshots:
                    self.send_history()                   # a new snapshot to rewind to


def _worker_main(config, specs, model_file, lock, commands, messages):
    """Body of the training process."""
    # Ctrl+C and SIGTERM (also when sent to the whole process group) are the window's to
    # handle: it asks this process to save and stop. A SIGTERM that no order follows (a
    # window gone without closing, multiprocessing's exit) ends it after a grace period.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = []
    signal.signal(signal.SIGTERM, lambda *_: terminated.append(time.monotonic()))
    parent = ParentWatch()
    shms, arr = [], {}
    for key, spec in specs.items():
        shm, arr[key] = _attach(spec)
        shms.append(shm)
    try:
        _Worker(config, arr, model_file, lock, commands, messages).run(
            lambda: not parent.gone() and not (terminated and time.monotonic() - terminated[0] > TERM_GRACE_S))
    except Exception as e:                         # noqa: BLE001 - said to the window, which stays up
        messages.put(TrainerFailed(f"the training process failed: {type(e).__name__}: {e}".splitlines()[0], False))
        raise
    finally:
        for shm in shms:
            shm.close()
