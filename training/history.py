"""What a run remembers about itself: every evaluation (with per-class accuracy), the loss
curve, the learning-rate changes a user made, the measurements of training health
(`HealthRecord`, made by health.HealthMonitor), and float16 weight snapshots to rewind to.

All of it goes into model files (members `history`, `lr_scale`, `snap_*`) and the
`history` of --metrics, so a loaded model shows its curves and can be rewound. Imports
NumPy and `model_file` (for its error type); nothing here trains.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from mnist_live.training.model_file import ModelFileError

MAX_LOSS_POINTS = 5000        # loss curve length bound: older points are merged pairwise
MAX_HEALTH_POINTS = 1000      # health records kept: past it every other one of the older half goes
PERCENTILES = (0, 7, 16, 31, 50, 69, 84, 93, 100)   # a distribution's bands, as TensorBoard's (-inf, -1.5,
                                                    # -1, -0.5, 0, 0.5, 1, 1.5 sigma, +inf for a normal one)
EVAL_KINDS = ("full", "subset", "val", "val_subset")   # the test set, its first images; the validation split, ditto
SNAPSHOT_BUDGET = 150 * 2**20  # bytes of float16 snapshots kept (default network: 2.54 MiB each, 58 fit)


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation of the network at a training position: the one record of an evaluation
    from the trainer to the pixels (the history, the window's reports, the run library and
    sweeps all carry this type)."""
    progress: float          # epochs done as a float (fractional)
    kind: str                # "full" (whole test set), "subset" (its first images), "val", "val_subset" (--val)
    accuracy: float
    per_class: tuple         # 10 floats (NaN for classes absent from the evaluated set)
    epoch: int               # training position of the evaluated weights
    batch: int               # batches done in that epoch (0 between epochs)
    n: int = 0               # images evaluated (0: not known, an older model file)
    elapsed_s: float | None = None                  # seconds since the run started, when known
    confusion: np.ndarray | None = field(default=None, compare=False, repr=False)    # (10, 10) int64, rows true
    predictions: np.ndarray | None = field(default=None, compare=False, repr=False)  # (n,) int16 predicted class

    @property
    def position(self) -> tuple[int, int]:
        return self.epoch, self.batch

    def slim(self) -> EvalRecord:
        """The record without its per-image predictions (what the history keeps)."""
        return self if self.predictions is None else dataclasses.replace(self, predictions=None)

    def to_json(self):
        out = {"progress": self.progress, "kind": self.kind, "accuracy": _json_float(self.accuracy),
               "per_class": [_json_float(v) for v in self.per_class], "epoch": self.epoch, "batch": self.batch}
        if self.n:
            out["n"] = self.n
        if self.elapsed_s is not None:
            out["elapsed_s"] = self.elapsed_s
        return out


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


@dataclass(frozen=True)
class LayerHealth:
    """One layer pair's health (input -> h1 first): its weights, the gradient and the step
    through them, and the layer they feed (NaN where a figure does not apply)."""
    grad_norm: float          # ||dloss/dW|| of the batch (mean loss + weight decay), weights before the step
    update_ratio: float       # ||dw|| / ||w||: the step's change over the weights (~1e-3 is the rule of thumb)
    inactive: float           # share of (digit, neuron) pairs of the batch where the ReLU is off; NaN: not ReLU
    silent: float             # share of the layer's neurons off for every digit of the batch; NaN: not ReLU
    weights: tuple            # the weights' PERCENTILES (after the step)
    activations: tuple        # PERCENTILES of the layer's outputs on the batch (ReLU outputs; logits for the last)

    def to_json(self):
        return {"grad_norm": _json_float(self.grad_norm), "update_ratio": _json_float(self.update_ratio),
                "inactive": _json_float(self.inactive), "silent": _json_float(self.silent),
                "weights": [_json_float(v) for v in self.weights],
                "activations": [_json_float(v) for v in self.activations]}

    @classmethod
    def from_json(cls, d, f):
        if not isinstance(d, dict):
            raise _bad(f, "must be an object")
        bands = []
        for key in ("weights", "activations"):
            v = d.get(key)
            if not (isinstance(v, list) and len(v) == len(PERCENTILES)):
                raise _bad(f"{f}.{key}", f"must be a list of {len(PERCENTILES)} numbers")
            bands.append(tuple(_number(x, f"{f}.{key}[{i}]", allow_null=True) for i, x in enumerate(v)))
        return cls(*(_number(d.get(k), f"{f}.{k}", lo=0, allow_null=True) for k in ("grad_norm", "update_ratio")),
                   *(_number(d.get(k), f"{f}.{k}", lo=0, hi=1, allow_null=True) for k in ("inactive", "silent")),
                   *bands)


@dataclass(frozen=True)
class HealthRecord:
    """One measurement of training health, after a step (the one health record from the
    trainer to the window, the model file and the run library)."""
    progress: float           # epochs done after the step
    epoch: int                # training position after the step
    batch: int
    lr: float                 # the step's learning rate
    layers: tuple             # LayerHealth per layer pair, input -> h1 first

    def to_json(self):
        return {"progress": self.progress, "epoch": self.epoch, "batch": self.batch, "lr": _json_float(self.lr),
                "layers": [layer.to_json() for layer in self.layers]}

    @classmethod
    def from_json(cls, d, f):
        if not isinstance(d, dict):
            raise _bad(f, "must be an object")
        layers = d.get("layers")
        if not isinstance(layers, list) or not layers:
            raise _bad(f"{f}.layers", "must be a non-empty list")
        return cls(_number(d.get("progress"), f"{f}.progress", lo=0), _count(d.get("epoch"), f"{f}.epoch"),
                   _count(d.get("batch"), f"{f}.batch"), _number(d.get("lr"), f"{f}.lr", lo=0, allow_null=True),
                   tuple(LayerHealth.from_json(x, f"{f}.layers[{i}]") for i, x in enumerate(layers)))


def add_loss_point(curve, progress, loss):
    """Append (progress, loss) to a loss curve; past MAX_LOSS_POINTS the older half is merged
    pairwise (means of progress and loss), so recent training stays at full resolution."""
    curve.append((float(progress), float(loss)))
    if len(curve) > MAX_LOSS_POINTS:
        half = len(curve) // 2 // 2 * 2
        old = np.asarray(curve[:half]).reshape(-1, 2, 2).mean(axis=1)   # (half/2, 2)
        curve[:half] = [(float(p), float(v)) for p, v in old]


class History:
    """Evaluations, loss curve and learning-rate changes of a run, in training order."""

    def __init__(self):
        self.evals: list[EvalRecord] = []
        self.loss: list[tuple[float, float]] = []         # (progress, loss), at most MAX_LOSS_POINTS
        self.lr_changes: list[tuple[float, float]] = []   # (progress, new effective lr)
        self.health: list[HealthRecord] = []              # at most MAX_HEALTH_POINTS, oldest first

    def add_eval(self, rec: EvalRecord):
        """Append (without its per-image predictions); an evaluation of the same kind at the
        same position replaces the last one (the same weights, e.g. a paused window or a
        loaded model evaluated again)."""
        rec = rec.slim()
        last = self.evals[-1] if self.evals else None
        if last is not None and (last.kind, last.epoch, last.batch) == (rec.kind, rec.epoch, rec.batch):
            self.evals[-1] = rec
        else:
            self.evals.append(rec)

    def add_loss(self, progress, loss):
        add_loss_point(self.loss, progress, loss)

    def add_lr_change(self, progress, lr):
        self.lr_changes.append((float(progress), float(lr)))

    def add_health(self, rec: HealthRecord):
        """Append; past MAX_HEALTH_POINTS every other record of the older half is dropped."""
        self.health.append(rec)
        if len(self.health) > MAX_HEALTH_POINTS:
            half = len(self.health) // 2
            self.health[:half] = self.health[:half:2]

    def health_until(self, progress):
        """The health records of the weights at or before `progress` (a rewound snapshot's own)."""
        return [r for r in self.health if r.progress <= progress + 1e-9]

    def per_class_series(self, kind="full"):
        """(progress (E,), per-class accuracy (E, 10)) of the evaluations of one kind."""
        recs = [r for r in self.evals if r.kind == kind]
        return (np.array([r.progress for r in recs], np.float64),
                np.array([r.per_class for r in recs], np.float64).reshape(len(recs), 10))

    def copy(self) -> History:
        """A copy that later training does not change (what the window is sent)."""
        h = History()
        h.evals, h.loss, h.lr_changes = list(self.evals), list(self.loss), list(self.lr_changes)
        h.health = list(self.health)
        return h

    def __eq__(self, other):
        return isinstance(other, History) and self.to_json() == other.to_json()

    def to_json(self) -> dict:
        out = {"evals": [r.to_json() for r in self.evals],
               "loss": [[p, v] for p, v in self.loss],
               "lr_changes": [[p, v] for p, v in self.lr_changes]}
        if self.health:                                   # (files from before health records have none)
            out["health"] = [r.to_json() for r in self.health]
        return out

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
            if e.get("kind") not in EVAL_KINDS:
                raise _bad(f"{f}.kind", f"must be one of {', '.join(EVAL_KINDS)}, not {e.get('kind')!r}"[:120])
            per_class = e.get("per_class")
            if not (isinstance(per_class, list) and len(per_class) == 10):
                raise _bad(f"{f}.per_class", "must be a list of 10 numbers")
            h.evals.append(EvalRecord(
                _number(e.get("progress"), f"{f}.progress", lo=0), e["kind"],
                _number(e.get("accuracy"), f"{f}.accuracy", lo=0, hi=1, allow_null=True),
                tuple(_number(v, f"{f}.per_class[{j}]", lo=0, hi=1, allow_null=True) for j, v in enumerate(per_class)),
                _count(e.get("epoch"), f"{f}.epoch"), _count(e.get("batch"), f"{f}.batch"),
                _count(e.get("n", 0), f"{f}.n"),
                None if e.get("elapsed_s") is None else _number(e["elapsed_s"], f"{f}.elapsed_s", lo=0)))
        h.loss = _pairs(d, "loss")
        if len(h.loss) > MAX_LOSS_POINTS:
            raise _bad("loss", f"has {len(h.loss)} points, more than {MAX_LOSS_POINTS}")
        h.lr_changes = _pairs(d, "lr_changes")
        health = d.get("health", [])
        if not isinstance(health, list) or len(health) > MAX_HEALTH_POINTS:
            raise _bad("health", f"must be a list of at most {MAX_HEALTH_POINTS} records")
        h.health = [HealthRecord.from_json(r, f"health[{i}]") for i, r in enumerate(health)]
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
        net.set_params(self._W[i], self._b[i])

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
