"""What a sweep's command line asks for: the sweep syntax and the plan, as small pure functions.

    mnist-live --headless --lr 0.0003 0.001 0.003 --batch-size 64 128      # a grid of 6 trials
    mnist-live --headless --search 16 --lr 1e-4:1e-2:log --dropout 0:0.5   # 16 TPE trials, pruned

This module owns the sweep options (`SWEEP_OPTIONS`, added to the parser by main.py), the
values and ranges given for an option (`parse_values` -> `Values` / `Range`), the grid
(`expand_grid`), the usage checks and the plan (`plan_sweep` -> `SweepPlan`, `SweepError`
for a sweep that cannot run: a one-line usage error), and the command line that trains a
Config (`command_line`). Running a plan is tuning.py.

Imports: the standard library and config only (main.py parses the command line with it
before NumPy is loaded).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
from dataclasses import dataclass

from mnist_live.training.config import HYPERPARAMETERS, Config, bounds_problem

SWEEPABLE = ("hidden", "lr", "momentum", "weight_decay", "dropout", "epochs", "batch_size", "seed",
             "optimizer", "activation", "lr_schedule", "nesterov", "augment")   # every model hyperparameter
FLAGS = ("nesterov", "augment")                         # on/off options: `--augment` alone, or `--augment no yes`
BOOLEAN = {"yes": True, "true": True, "on": True, "1": True, "no": False, "false": False, "off": False, "0": False}
MAX_GRID = 1000               # combinations a grid may have
MAX_DEPTH = 8                 # hidden layers a depth may ask for
PRUNERS = ("median", "halving", "none")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SweepError(Exception):
    """Bad sweep syntax or an impossible sweep: one line, a usage error (exit 2)."""


# ------------------------------------------------------------------ the sweep options
# The options that steer a sweep rather than describe a run. They are not Config fields:
# a Config describes one run (every trial's is stored in the run library and in its model
# file), and "16 trials, 2 at a time" is no property of a run. main.build_parser adds them
# from this table, in the same style as the Config fields' metadata.
SWEEP_OPTIONS = {
    "search": dict(type=int, min=1, max=100_000, metavar="N",
                   help="sweep: draw N trials with Optuna's TPE sampler (seeded from --seed) from the ranges "
                        "(--lr 1e-4:1e-2:log, --dropout 0:0.5, --batch-size 32:256) and value lists given"),
    "jobs": dict(type=int, min=1, max=1024, metavar="N",
                 help="sweep: trials run at once, one process each (default: the number of cores)"),
    "pruner": dict(choices=PRUNERS,
                   help="sweep: stop trials that are clearly behind at the quarter-epoch checkpoints "
                        "(default: median with --search, none for a grid)"),
    "resume": dict(metavar="SWEEP", help="continue an interrupted sweep: its unfinished grid combinations "
                                         "or the remaining trials of its search"),
    "sweep_name": dict(metavar="NAME", help="sweep: its name in the run library (default: sweep-DATE-TIME)"),
    "scheduler": dict(metavar="ADDR", help="sweep: run the trials on a Dask cluster (tcp://HOST:8786); "
                                           "needs pip install mnist-live[cluster]"),
    "repeats": dict(type=int, min=1, max=100, metavar="N",
                    help="sweep: train each configuration with N seeds (--seed, --seed + 1, ...); the leaderboard "
                         "shows their mean +- std and ranks by the mean (default 1)"),
    "prune_after": dict(type=float, min=0.0, max=1e6, metavar="EPOCHS",
                        help="sweep: the pruner's warm-up: no trial is stopped before it has trained this many "
                             "epochs' worth of images (default 1)"),
}
DEFAULT_VAL = {"full": 10_000, "sample": 1_000}     # a sweep's validation split (--val) unless given
SCHEDULER_RE = re.compile(r"(?:(tcp|tls|inproc|ucx|ws|wss)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?")


def sweep_help(name):
    """What the help of a sweepable option adds: how to sweep it (ranges only where they work)."""
    if name == "hidden":
        return ("; a sweep: architectures 512x256 1024x512, one layer's width 64,128,256 or (with --search) "
                "32:512[:log], depth 128x1:3")
    if name in FLAGS:
        return "; --FLAG no yes sweeps it"
    choices = "choices" in _field(name).metadata
    return "; several values sweep it" + ("" if choices else " (with --search, so does a range LO:HI[:log])")


def take_specs(ns):
    """{axis: Values or Range} of the sweepable options given in argparse namespace dict `ns`;
    an option given one value stays in `ns` as that value (a normal run), the others are
    taken out of it. SweepError naming the option for bad syntax."""
    specs = {}
    for name in SWEEPABLE:
        if name not in ns:
            continue
        try:
            if name == "hidden":                   # its own syntax: the axes are hidden, width or depth
                ns[name], axes = parse_hidden(ns[name])
                specs.update(axes)
                continue
            spec = parse_values(name, ns.pop(name))
        except SweepError as e:
            raise SweepError(f"argument {flag(name)}: {e}") from None
        if isinstance(spec, Values) and len(spec.values) == 1:
            ns[name] = spec.values[0]
        else:
            specs[name] = spec
    return specs


def flag(name):
    """The option an axis of a sweep comes from: --batch-size for batch_size, --hidden for width and depth."""
    return "--hidden" if name in ("width", "depth") else "--" + name.replace("_", "-")


# ------------------------------------------------------------------ sweep specs (pure)
@dataclass(frozen=True)
class Values:
    """Values listed for an option: one is a normal run, several a grid axis or a categorical."""
    values: tuple


@dataclass(frozen=True)
class Range:
    """LO:HI[:log] for --search: floats, or integers for integer options."""
    lo: float
    hi: float
    log: bool
    integer: bool

    def __str__(self):
        return f"{self.lo:g}:{self.hi:g}" + (":log" if self.log else "")


def _field(name):
    return next(f for f in dataclasses.fields(Config) if f.name == name)


def _convert(name, text):
    """One token as a value of Config field `name`, checked against its bounds."""
    meta = _field(name).metadata
    if "choices" in meta:
        if text not in meta["choices"]:
            raise SweepError(f"invalid choice: {text!r} (choose from {', '.join(meta['choices'])})")
        return text
    kind = meta["type"]
    try:
        value = kind(text)
    except ValueError:
        raise SweepError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    problem = bounds_problem(meta, value)
    if problem:
        raise SweepError(f"{problem}, got {text}")
    return value


def parse_values(name, tokens):
    """The tokens given after --NAME as Values or a Range; SweepError (one line, without the
    option's name: the caller says "argument --lr: ...") when they make no sense. --hidden
    has its own syntax (`parse_hidden`); an on/off option's tokens are yes/no words."""
    tokens = list(tokens)
    if name in FLAGS:
        return _flag_values(tokens)
    ranges = [t for t in tokens if ":" in t]
    if not ranges:
        values = [_convert(name, t) for t in tokens]
        for i, v in enumerate(values):
            if v in values[:i]:
                raise SweepError(f"{tokens[i]} is given twice")
        return Values(tuple(values))
    meta = _field(name).metadata
    if len(tokens) > 1:
        raise SweepError(f"a range is one token LO:HI[:log]; not with other values, got {' '.join(tokens)}")
    text = tokens[0]
    if "choices" in meta:
        raise SweepError(f"takes a list of choices ({', '.join(meta['choices'])}), not a range, got {text}")
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise SweepError(f"a range is LO:HI or LO:HI:log, got {text}")
    lo, hi = (_convert(name, p) for p in parts[:2])
    if not lo < hi:
        raise SweepError(f"empty range: LO must be below HI, got {text}")
    log = len(parts) == 3
    if log and lo <= 0:
        raise SweepError(f"a log range needs LO > 0, got {text}")
    return Range(lo, hi, log, meta["type"] is int)


def _flag_values(tokens):
    """`--augment` alone is on; `--augment no yes` sweeps it."""
    if not tokens:
        return Values((True,))
    values = []
    for t in tokens:
        if t.lower() not in BOOLEAN:
            raise SweepError(f"expected yes or no (on/off, true/false, 1/0), got {t!r}")
        if BOOLEAN[t.lower()] in values:
            raise SweepError(f"{t} is given twice")
        values.append(BOOLEAN[t.lower()])
    return Values(tuple(values))


# ------------------------------------------------------------------ --hidden (pure)
def architecture(text):
    """"512x256" -> (512, 256); SweepError for anything but layer widths joined by x."""
    sizes = text.lower().split("x")
    widths = []
    for w in sizes:
        try:
            widths.append(_convert("hidden", w))
        except SweepError as e:
            raise SweepError(f"{e} in the architecture {text!r} (layer widths joined by x, e.g. 512x256)") from None
    return tuple(widths)


def arch_text(hidden):
    return "x".join(str(w) for w in hidden)


def _count_spec(name, text):
    """A width or depth: N, choices N,M,... or (for --search) a range LO:HI[:log]."""
    if ":" in text:
        spec = parse_values("hidden", [text]) if name == "width" else _depth_range(text)
    else:
        spec = Values(tuple(_convert("hidden", t) if name == "width" else _depth(t) for t in text.split(",")))
        if len(set(spec.values)) < len(spec.values):
            raise SweepError(f"{text}: a {name} is given twice")
    return spec


def _depth(text):
    if not text.isdigit() or not 1 <= int(text) <= MAX_DEPTH:
        raise SweepError(f"a depth is a number of hidden layers, 1 to {MAX_DEPTH}, got {text!r}")
    return int(text)


def _depth_range(text):
    parts = text.split(":")
    if len(parts) != 2:
        raise SweepError(f"a depth range is LO:HI, got {text}")
    lo, hi = (_depth(p) for p in parts)
    if not lo < hi:
        raise SweepError(f"empty range: LO must be below HI, got {text}")
    return Range(lo, hi, False, True)


def parse_hidden(tokens):
    """(fixed architecture or None, {axis: spec}) of the tokens after --hidden:

        --hidden 1024 512             one architecture (a normal run): (1024, 512), {}
        --hidden 512x256 1024x512     architectures to choose from: {"hidden": Values(("512x256", "1024x512"))}
        --hidden 64,128,256           one layer's width, choices: {"width": Values((64, 128, 256))}
        --hidden 32:512:log           one layer's width, a range (--search)
        --hidden 128x1:3              depth: 1 to 3 layers of 128; 64,128x2 two layers of 64 or 128

    A width or depth that does not vary is fixed in the architecture returned."""
    tokens = list(tokens)
    if not any(c in t for t in tokens for c in ":,xX"):
        return tuple(_convert("hidden", t) for t in tokens), {}
    if len(tokens) == 1 and any(c in tokens[0] for c in ":,"):
        width_text, _, depth_text = tokens[0].lower().partition("x")
        width = _count_spec("width", width_text)
        depth = _count_spec("depth", depth_text) if depth_text else Values((1,))
        fixed_w = width.values[0] if isinstance(width, Values) else width.lo
        fixed_d = depth.values[0] if isinstance(depth, Values) else depth.lo
        axes = {k: v for k, v in (("width", width), ("depth", depth)) if isinstance(v, Range) or len(v.values) > 1}
        return (fixed_w,) * fixed_d, axes
    if any(":" in t or "," in t for t in tokens):
        raise SweepError(f"a width range or choices (32:512, 64,128,256) is one token; not with other "
                         f"architectures, got {' '.join(tokens)}")
    archs = [architecture(t) for t in tokens]
    if len(set(archs)) < len(archs):
        raise SweepError("an architecture is given twice")
    if len(archs) == 1:
        return archs[0], {}
    return archs[0], {"hidden": Values(tuple(arch_text(a) for a in archs))}


def expand_grid(specs):
    """Every combination of the Values in `specs` ({name: Values}), as a list of {name: value},
    the last option varying fastest; SweepError past MAX_GRID combinations."""
    names = list(specs)
    n = math.prod(len(specs[k].values) for k in names)
    if n > MAX_GRID:
        sizes = " x ".join(str(len(specs[k].values)) for k in names)
        raise SweepError(f"the grid has {n:,} combinations ({sizes}); at most {MAX_GRID:,} (use --search N)")
    return [dict(zip(names, combo)) for combo in itertools.product(*(specs[k].values for k in names))]


@dataclass(frozen=True)
class SweepPlan:
    """What to run: the base Config plus the varying options, and how."""
    base: Config
    specs: dict                   # {name: Values (2+ values) or Range}: the options that vary
    search: int | None = None     # trials to draw; None: a grid
    jobs: int | None = None       # None: os.cpu_count()
    pruner: str = "none"
    name: str | None = None       # None: sweep-DATE-TIME
    scheduler: str | None = None
    resume: str | None = None     # the name of the sweep to continue (then base/specs come from it)
    argv: tuple = ()
    repeats: int = 1              # seeds per configuration
    prune_after: float = 1.0      # epochs' worth of images before a trial may be pruned

    @property
    def kind(self):
        return "search" if self.search else "grid"

    @property
    def size(self):
        """Configurations to train: the search's trials, or the grid's combinations."""
        return self.search or len(expand_grid(self.specs))

    def to_json(self):
        return {"base": json.loads(self.base.to_json()), "search": self.search, "pruner": self.pruner,
                "specs": {k: _spec_json(s) for k, s in self.specs.items()}, "argv": list(self.argv),
                "repeats": self.repeats, "prune_after": self.prune_after}

    @classmethod
    def from_json(cls, d, **overrides):
        """The plan stored in a sweep's study (ValueError, KeyError or TypeError when it is not one)."""
        base = json.loads(json.dumps(d["base"]))
        base["hidden"] = tuple(base["hidden"])
        known = {f.name for f in dataclasses.fields(Config)}
        base = {k: v for k, v in base.items() if k in known}
        specs = {k: Range(s["lo"], s["hi"], s["log"], s["integer"]) if "lo" in s else Values(tuple(s["values"]))
                 for k, s in d["specs"].items()}
        return cls(Config(**base), specs, search=d["search"], pruner=d["pruner"], argv=tuple(d["argv"]),
                   repeats=d.get("repeats", 1), prune_after=d.get("prune_after", 1.0), **overrides)


def _spec_json(spec):
    return dataclasses.asdict(spec) if isinstance(spec, Range) else {"values": list(spec.values)}


RESUME_KEEPS = ("headless", "data_home", "runs")      # what --resume may be given besides --jobs and --scheduler


def plan_sweep(config, specs, options, argv=(), given=()):
    """A SweepPlan from the parsed command line, or None for a normal run. `config`: the base
    Config (the swept options at their defaults), `specs`: {name: Values or Range} of the
    sweepable options given, `options`: the sweep options given ({"search": 16, ...}),
    `given`: the names of the Config fields given explicitly.
    SweepError (a one-line usage error) for a sweep that cannot run."""
    varying = {k: s for k, s in specs.items() if isinstance(s, Range) or len(s.values) > 1}
    if not varying and not options:
        return None
    resume = options.get("resume")
    if resume is not None:
        extra = [flag(k) for k in (*given, *options) if k not in ("resume", "jobs", "scheduler", *RESUME_KEEPS)]
        if extra:
            raise SweepError(f"--resume continues the sweep as it was defined; not with {', '.join(extra)}")
        _check_name(resume, "--resume")
    elif not varying:
        given = ", ".join(flag(k) for k in options)
        raise SweepError(f"{given} {'is' if len(options) == 1 else 'are'} for sweeps: give several values "
                         f"(--lr 0.001 0.003) or, with --search N, a range (--lr 1e-4:1e-2:log)")
    if not config.headless:
        raise SweepError("a sweep runs in the terminal: add --headless (the window takes one run)")
    if config.no_runs:
        raise SweepError("a sweep records its trials in the run library; not with --no-runs")
    for name in ("load", "no_train", "metrics"):
        if getattr(config, name):
            raise SweepError(f"{flag(name)} is for one run; not with a sweep (the run library keeps every trial: "
                             f"mnist-live runs --where sweep=NAME)")
    search = options.get("search")
    ranges = [k for k, s in varying.items() if isinstance(s, Range)]
    if ranges and not search:
        raise SweepError(f"{flag(ranges[0])} {varying[ranges[0]]}: a range needs --search N "
                         f"(or give a list of values for a grid)")
    if search and "seed" in varying:
        raise SweepError("--seed seeds the sampler with --search: give it one value")
    repeats = options.get("repeats", 1)
    if repeats > 1 and "seed" in varying:
        raise SweepError(f"--repeats {repeats} trains each configuration with seeds --seed to --seed + {repeats - 1}; "
                         f"give --seed one value")
    if resume is None and not search:
        expand_grid(varying)                                  # its size
    name = options.get("sweep_name")
    if name is not None:
        _check_name(name, "--sweep-name")
    scheduler = options.get("scheduler")
    if scheduler is not None:
        check_scheduler(scheduler)
    pruner = options.get("pruner", "median" if search else "none")
    if "prune_after" in options and pruner == "none":
        raise SweepError("--prune-after is the pruner's warm-up; not with --pruner none")
    if config.val is None:                                    # prune and choose on held-out training images
        config = config.replace(val=DEFAULT_VAL["sample" if config.offline else "full"])
    return SweepPlan(config, varying, search=search, jobs=options.get("jobs"), pruner=pruner, name=name,
                     scheduler=scheduler, resume=resume, argv=tuple(argv), repeats=repeats,
                     prune_after=options.get("prune_after", 1.0))


def check_scheduler(address):
    """SweepError (a usage error) unless `address` looks like a Dask scheduler's: [tcp://]HOST[:PORT]."""
    m = SCHEDULER_RE.fullmatch(address.strip())
    if not address.strip() or not m or (m.group(3) and not 0 < int(m.group(3)) < 65536):
        raise SweepError(f"argument --scheduler: expected a Dask scheduler's address such as tcp://HOST:8786, "
                         f"got {address!r}")


def _check_name(name, option):
    if not NAME_RE.fullmatch(name):
        raise SweepError(f"argument {option}: a sweep name is 1-64 letters, digits, '_', '.', '-' "
                         f"(starting with a letter or digit), got {name!r}")


# ------------------------------------------------------------------ command lines (pure)
COMMAND_FIELDS = (*HYPERPARAMETERS, "data_dir", "data_home", "offline", "train_size", "test_size", "val",
                  "no_snapshots")


def command_line(config, program="mnist-live"):
    """The command that trains `config` (the options that differ from the defaults)."""
    words = [program, "--headless"]
    default = Config()
    for name in COMMAND_FIELDS:
        value = getattr(config, name)
        if name == "lr" and value is None:
            continue
        if value == getattr(default, name) and name != "lr":
            continue
        if isinstance(value, bool):
            words.append(flag(name))
        elif isinstance(value, tuple):
            words += [flag(name), *map(str, value)]
        else:
            words += [flag(name), f"{value:g}" if isinstance(value, float) else str(value)]
    return words


def trial_config(base, params):
    """The Config of one trial: `base` with the trial's parameters (as the study stores them:
    an architecture as "512x256", one layer's `width`, a `depth`) put in."""
    changes = {k: v for k, v in params.items() if k not in ("width", "depth")}
    if "hidden" in changes:
        changes["hidden"] = architecture(changes["hidden"])
    if "width" in params or "depth" in params:
        changes["hidden"] = (params.get("width", base.hidden[0]),) * params.get("depth", len(base.hidden))
    return base.replace(**changes)
