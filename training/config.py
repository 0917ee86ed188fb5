"""The one configuration object shared by the command line, the trainer and the window.

`Config` is frozen: it describes a run. `main.py` builds its argparse parser from the
fields below (help text, choices and validation live in each field's metadata), the
trainer reads the hyperparameters from it, the window shows them, and a saved model
file stores it as JSON.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

ACTIVATIONS = ("relu", "sigmoid", "tanh")
OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step")
DATASETS = ("mnist", "fashion")
DATASET_NAMES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.05, "adam": 1e-3}  # used when --lr is not given


def _opt(help, **kw):
    """Field metadata: help text plus argparse extras (choices, nargs, flag, bounds)."""
    return dict(help=help, **kw)


@dataclass(frozen=True)
class Config:
    # --- model and optimisation -------------------------------------------------
    hidden: tuple = field(default=(1024, 512), metadata=_opt(
        "hidden layer sizes", nargs="+", type=int, min=1, max=16384, metavar="N"))
    activation: str = field(default="relu", metadata=_opt(
        "hidden-layer activation", choices=ACTIVATIONS))
    optimizer: str = field(default="adam", metadata=_opt(
        "optimizer", choices=OPTIMIZERS))
    lr: float | None = field(default=None, metadata=_opt(
        "learning rate (default: 0.001 adam, 0.05 momentum, 0.1 sgd)", type=float, min_excl=0.0, metavar="X"))
    lr_schedule: str = field(default="cosine", metadata=_opt(
        "learning-rate schedule over the run: cosine decays to 0 by the last epoch, "
        "step divides by 10 at 50%% and 75%%",
        choices=SCHEDULES))
    momentum: float = field(default=0.9, metadata=_opt(
        "momentum for --optimizer momentum (beta1 for adam)", type=float, min=0.0, max_excl=1.0, metavar="X"))
    nesterov: bool = field(default=False, metadata=_opt("Nesterov momentum (with --optimizer momentum)"))
    weight_decay: float = field(default=0.0, metadata=_opt(
        "L2 weight decay on the weights (not biases)", type=float, min=0.0, metavar="X"))
    dropout: float = field(default=0.0, metadata=_opt(
        "dropout probability on hidden layers while training", type=float, min=0.0, max_excl=1.0, metavar="P"))
    augment: bool = field(default=False, metadata=_opt("random shifts of up to 2 px while training"))
    epochs: int = field(default=10, metadata=_opt(
        "training epochs in total (a loaded model trains on up to N)", type=int, min=1, metavar="N"))
    batch_size: int = field(default=128, metadata=_opt("mini-batch size", type=int, min=1, metavar="N"))
    seed: int = field(default=0, metadata=_opt(
        "random seed: the same seed reproduces a run exactly", type=int, min=0, metavar="N"))
    # --- data -------------------------------------------------------------------
    dataset: str = field(default="mnist", metadata=_opt("data set", choices=DATASETS))
    data_dir: str | None = field(default=None, metadata=_opt(
        "read the four original IDX files from DIR instead of OpenML", metavar="DIR"))
    data_home: str | None = field(default=None, metadata=_opt(
        "OpenML download and cache folder (default: scikit-learn's, ~/scikit_learn_data)", metavar="DIR"))
    offline: bool = field(default=False, metadata=_opt("use the bundled 5,000/1,000-digit sample, no download"))
    train_size: int | None = field(default=None, metadata=_opt(
        "use only the first N training images", type=int, min=1, metavar="N"))
    test_size: int | None = field(default=None, metadata=_opt(
        "use only the first N test images", type=int, min=1, metavar="N"))
    val: int | None = field(default=None, metadata=_opt(
        "hold out the last N training images as a validation split, evaluated at each epoch's end; the test set is "
        "then scored once, at the end (default: none for a run, 10,000 for a sweep, 1,000 with --offline; 0: none)",
        type=int, min=0, metavar="N"))
    # --- model files and output -------------------------------------------------
    load: str | None = field(default=None, metadata=_opt("resume from (or explore) a saved model .npz", metavar="FILE"))
    save: str | None = field(default=None, metadata=_opt(
        "save the model .npz at the end of training and on quit", metavar="FILE"))
    no_snapshots: bool = field(default=False, metadata=_opt(
        "save model files without the weight snapshots (2.7 MB each at the default size; the history stays)"))
    no_train: bool = field(default=False, metadata=_opt("do not train: explore the (loaded) model"))
    headless: bool = field(default=False, metadata=_opt("no window: train in the terminal with a progress bar"))
    metrics: str | None = field(default=None, metadata=_opt("write run metrics as JSON to FILE", metavar="FILE"))
    health_every: int = field(default=100, metadata=_opt(
        "batches between measurements of training health (gradient norms, update/weight ratios, dead ReLUs, "
        "weight and activation distributions; also batches 1, 3, 10, 30); 0: none", type=int, min=0, metavar="N"))
    runs: str | None = field(default=None, metadata=_opt(
        "run library database file (default: <data home>/mnist_viz/runs.sqlite3)", metavar="FILE"))
    no_runs: bool = field(default=False, metadata=_opt("do not record this run in the run library"))
    # --- window -----------------------------------------------------------------
    connections: int = field(default=60, metadata=_opt(
        "strongest connections drawn per layer pair (keys + / -)", type=int, min=0, metavar="K"))
    width: int = field(default=1600, metadata=_opt("window width", type=int, min=640, metavar="PX"))
    height: int = field(default=900, metadata=_opt("window height", type=int, min=480, metavar="PX"))
    frames: int | None = field(default=None, metadata=_opt(
        "exit after N frames (benchmarks; with --metrics records frame times)", type=int, min=1, metavar="N"))
    screenshot: str | None = field(default=None, metadata=_opt(
        "render the view to a PNG after loading/training (or at the last of --frames) and exit", metavar="FILE"))
    record: str | None = field(default=None, metadata=_opt(
        "record the window to an animated GIF from launch until exit (5 frames a second, 640 px wide)",
        metavar="FILE"))
    compare: tuple | None = field(default=None, metadata=_opt(
        "overlay these runs of the run library on the charts (default: the previous finished run of the data "
        "set; K hides them, B lists the best runs)", nargs="+", type=int, min=1, metavar="ID"))
    watch: str | None = field(default=None, metadata=_opt(
        "show a sweep's trials' accuracy curves live from the run library (Shift+B)", metavar="SWEEP"))
    reset_view: bool = field(default=False, metadata=_opt(
        "forget the view settings the window remembers between launches (line mode, connections, order, "
        "captions, the tour seen, size: ~/.config/mnist-live/view.json) and start from the defaults"))
    start_view: str | None = field(default=None, metadata=_opt(
        "open the window on a view of learning: backward (J), updates (Y) or health (F4)",
        choices=("backward", "updates", "health")))

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def sizes(self) -> tuple:
        """Layer sizes including input and output, e.g. (784, 1024, 512, 10)."""
        return (784, *self.hidden, 10)

    def hyperparameters(self) -> dict:
        """The fields that define the learning problem (stored in model files and metrics)."""
        out = {k: getattr(self, k) for k in HYPERPARAMETERS if k != "lr"}
        out["hidden"] = list(self.hidden)
        out["lr"] = self.learning_rate
        return out

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return json.dumps(d, sort_keys=True)


# The fields that define the learning problem (what a model file brings along).
HYPERPARAMETERS = ("hidden", "activation", "optimizer", "lr", "lr_schedule", "momentum", "nesterov",
                   "weight_decay", "dropout", "augment", "epochs", "batch_size", "seed", "dataset")


def bounds_problem(meta, value):
    """None when number `value` is within the bounds in field metadata `meta`, else why not."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    for key, bad, text in (("min", lambda b: value < b, ">="), ("min_excl", lambda b: value <= b, ">"),
                           ("max", lambda b: value > b, "<="), ("max_excl", lambda b: value >= b, "<")):
        if key in meta and bad(meta[key]):
            return f"must be {text} {meta[key]}"
    return None


def value_problem(name, value):
    """None when `value` (as read from JSON) is a valid value of Config field `name`, else
    a short reason ("must be >= 1"): the same rules as the command line."""
    f = next(f for f in dataclasses.fields(Config) if f.name == name)
    meta = f.metadata
    if value is None:
        return None if f.default is None else "must not be null"
    if isinstance(f.default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if "choices" in meta:
        return None if value in meta["choices"] else f"must be one of {', '.join(meta['choices'])}"
    kind = meta.get("type")
    if kind is None:
        return None if isinstance(value, str) else "must be text"
    if "nargs" in meta:
        if not isinstance(value, list) or not value:
            return "must be a non-empty list"
        items = value
    else:
        items = [value]
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float) if kind is float else int):
            return "must be a number" if kind is float else "must be an integer"
        problem = bounds_problem(meta, v)
        if problem:
            return problem
    return None
