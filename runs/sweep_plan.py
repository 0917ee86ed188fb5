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

SWEEPABLE = ("lr", "momentum", "weight_decay", "dropout", "epochs", "batch_size", "seed",
             "optimizer", "activation", "lr_schedule")
MAX_GRID = 1000               # combinations a grid may have
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
}


def flag(name):
    return "--" + name.replace("_", "-")


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
    option's name: the caller says "argument --lr: ...") when they make no sense."""
    tokens = list(tokens)
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

    @property
    def kind(self):
        return "search" if self.search else "grid"

    def to_json(self):
        return {"base": json.loads(self.base.to_json()), "search": self.search, "pruner": self.pruner,
                "specs": {k: _spec_json(s) for k, s in self.specs.items()}, "argv": list(self.argv)}

    @classmethod
    def from_json(cls, d, **overrides):
        base = json.loads(json.dumps(d["base"]))
        base["hidden"] = tuple(base["hidden"])
        specs = {k: Range(s["lo"], s["hi"], s["log"], s["integer"]) if "lo" in s else Values(tuple(s["values"]))
                 for k, s in d["specs"].items()}
        return cls(Config(**base), specs, search=d["search"], pruner=d["pruner"], argv=tuple(d["argv"]), **overrides)


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
    ranges = [flag(k) for k, s in varying.items() if isinstance(s, Range)]
    if ranges and not search:
        raise SweepError(f"{ranges[0]} {varying[ranges[0][2:].replace('-', '_')]}: a range needs --search N "
                         f"(or give a list of values for a grid)")
    if search and "seed" in varying:
        raise SweepError("--seed seeds the sampler with --search: give it one value")
    if resume is None and not search:
        expand_grid(varying)                                  # its size
    name = options.get("sweep_name")
    if name is not None:
        _check_name(name, "--sweep-name")
    pruner = options.get("pruner", "median" if search else "none")
    return SweepPlan(config, varying, search=search, jobs=options.get("jobs"), pruner=pruner, name=name,
                     scheduler=options.get("scheduler"), resume=resume, argv=tuple(argv))


def _check_name(name, option):
    if not NAME_RE.fullmatch(name):
        raise SweepError(f"argument {option}: a sweep name is 1-64 letters, digits, '_', '.', '-' "
                         f"(starting with a letter or digit), got {name!r}")


# ------------------------------------------------------------------ command lines (pure)
COMMAND_FIELDS = (*HYPERPARAMETERS, "data_dir", "data_home", "offline", "train_size", "test_size", "no_snapshots")


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
    return base.replace(**params)
