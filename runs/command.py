"""The `mnist-live runs` command: the run library in the terminal.

What it owns: the subcommand's arguments (`runs_main`: the leaderboard, `show`, `compare`,
`export`, `rm`; `sweeps` and `analyze` are analysis.py's), the --where / --sort language
(SQL conditions over the runs table for `RunLibrary.runs`), the tables it prints (one per
data: analysis.by_data), and the command that reproduces a run (`reproduce_command`). The
CSV and JSON exports are runs/export.py.

Imports: the standard library, `config`, `run_library`, `analysis` (no NumPy at import time)
and, lazily, `files` for exports.
No NumPy: with 10,000 runs in the library the command must answer in well under a second
(bench/bench_runs.py).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shlex
import sys
import time

from mnist_live.runs import analysis
from mnist_live.runs.library import RunLibrary, RunLibraryError, default_path
from mnist_live.runs.schema import HP_COLUMNS
from mnist_live.training import config as config_module

# The options that say which data a run trained on (part of its reproduce command).
DATA_OPTIONS = ("dataset", "data_dir", "data_home", "offline", "train_size", "test_size", "val")


class UsageError(ValueError):
    """A bad --where expression or --sort key (the `runs` command exits 2)."""


# sort key -> (SQL expression, descending: best first)
SORT_KEYS = {"accuracy": ("test_accuracy", True), "best": ("best_accuracy", True),
             "time98": ("time_to_98", False), "time97": ("time_to_97", False), "wall": ("wall_s", False),
             "speed": ("samples_per_s", True), "started": ("started", True), "id": ("id", True),
             "status": ("status", False), "sweep": ("sweep", False), "trial": ("trial", False)}
# where field -> (SQL expression, kind: "num", "text", "bool", "hidden")
_WHERE_FIELDS = {"accuracy": ("test_accuracy", "num"), "test_accuracy": ("test_accuracy", "num"),
                 "best": ("best_accuracy", "num"), "time98": ("time_to_98", "num"), "time97": ("time_to_97", "num"),
                 "wall": ("wall_s", "num"), "speed": ("samples_per_s", "num"),
                 "samples_per_s": ("samples_per_s", "num"),
                 "id": ("id", "num"), "status": ("status", "text"), "sweep": ("sweep", "text"),
                 "trial": ("trial", "num"), "host": ("host", "text"), "n_train": ("n_train", "num"),
                 "n_test": ("n_test", "num"), "model_file": ("model_file", "text"), "dataset": ("dataset", "text")}


def _config_fields():
    return {f.name: f for f in dataclasses.fields(config_module.Config)}


def _field(name):
    """(SQL expression, kind) of a where/sort field, or UsageError."""
    if name in _WHERE_FIELDS:
        return _WHERE_FIELDS[name]
    fields = _config_fields()
    if name not in fields:
        known = sorted(set(_WHERE_FIELDS) | set(config_module.HYPERPARAMETERS))
        raise UsageError(f"unknown field {name!r} (fields: {', '.join(known)}, or any option name)")
    f = fields[name]
    if name == "hidden":
        kind = "hidden"
    elif isinstance(f.default, bool):
        kind = "bool"
    elif f.metadata.get("type") in (int, float):
        kind = "num"
    else:
        kind = "text"
    if name in HP_COLUMNS:
        return name, kind
    source = "hyper" if name in config_module.HYPERPARAMETERS else "config"
    return f"(CASE WHEN json_valid({source}) THEN json_extract({source}, '$.{name}') END)", kind   # damaged: NULL


_WHERE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$")


def _clip(text, n=40):
    """What the user typed, shortened for a one-line message."""
    return text if len(text) <= n else text[:n - 3] + "..."


def parse_where(expr):
    """("SQL condition", [args]) for "FIELD OP VALUE" (OP one of = == != < <= > >=), or UsageError."""
    m = _WHERE_RE.match(expr)
    if not m or not m.group(3):
        raise UsageError(f"--where {_clip(expr)!r}: expected FIELD OP VALUE, e.g. lr<0.01 or optimizer=adam "
                         f"(OP: = != < <= > >=)")
    name, op, text = m.group(1).replace("-", "_"), m.group(2), m.group(3)
    column, kind = _field(name)
    op = "=" if op == "==" else op
    if kind == "num":
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--where {_clip(expr)!r}: {name} is a number, not {_clip(text)!r}") from None
    elif kind == "bool":
        value = {"true": 1, "yes": 1, "1": 1, "false": 0, "no": 0, "0": 0}.get(text.lower())
        if value is None:
            raise UsageError(f"--where {_clip(expr)!r}: {name} is true or false, not {_clip(text)!r}")
    elif kind == "hidden":
        sizes = re.split(r"[\s,x]+", text.strip())
        if not all(s.isdigit() and len(s) <= 18 for s in sizes):
            raise UsageError(f"--where {_clip(expr)!r}: hidden is layer sizes such as 1024,512, not {_clip(text)!r}")
        value = " ".join(str(int(s)) for s in sizes)
    else:
        value = text
    if kind in ("text", "bool", "hidden") and op not in ("=", "!="):
        raise UsageError(f"--where {_clip(expr)!r}: {name} can only be compared with = or !=")
    if op == "!=":
        return f"({column} IS NULL OR {column}!=?)", [value]
    return f"{column}{op}?", [value]


def order_by(sort):
    """The ORDER BY clause of a sort key, best first, runs without a value last ("-KEY" reverses)."""
    key = sort or "accuracy"
    reverse = key.startswith("-")
    key = key.lstrip("-").replace("-", "_")
    if key in SORT_KEYS:
        column, desc = SORT_KEYS[key]
    else:
        try:
            column, kind = _field(key)
        except UsageError:
            raise UsageError(f"--sort {sort!r}: unknown key (keys: {', '.join(SORT_KEYS)}, "
                             f"or a hyperparameter such as lr or batch_size)") from None
        desc = False
    desc ^= reverse
    first = "status!='finished', " if key in ("accuracy", "best") else ""      # running runs rank below
    return f"{first}{column} IS NULL, {column} {'DESC' if desc else 'ASC'}, id ASC"


# ------------------------------------------------------------------ the reproduce command
def reproduce_command(cfg: dict) -> list[str]:
    """argv that trains the same run again: `mnist-live --headless` with the stored config's
    non-default hyperparameters and data options (and --load when it resumed a model file)."""
    fields = _config_fields()
    argv = ["mnist-live", "--headless"]
    for name in (*config_module.HYPERPARAMETERS, *DATA_OPTIONS[1:], "load"):
        if name not in fields or name not in cfg:
            continue
        value, default = cfg[name], fields[name].default
        if name == "hidden":
            value, default = list(value), list(default)
        if value == default or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif name == "hidden":
            argv += [flag, *(str(v) for v in value)]
        else:
            argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


def command_text(cfg):
    return " ".join(shlex.quote(a) for a in reproduce_command(cfg))


# ------------------------------------------------------------------ the `runs` command
class _Parser(argparse.ArgumentParser):
    """Usage errors as one line ("error: ..."), exit 2."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _common(parser):
    parser.add_argument("--runs", metavar="FILE", help="the run library (default: <data home>/mnist_viz/runs.sqlite3)")
    parser.add_argument("--data-home", metavar="DIR", help="the data home whose library to read (as for training)")


def _filters(parser):
    parser.add_argument("--where", action="append", default=[], metavar="EXPR",
                        help="keep runs matching FIELD OP VALUE: lr<0.01, optimizer=adam, batch_size>=64, "
                             "dataset=fashion, status=finished, sweep=NAME (repeatable: all must hold)")
    parser.add_argument("--sort", default="accuracy", metavar="KEY",
                        help="accuracy (default), time98, time97, wall, speed, started, id, or a hyperparameter "
                             "name; -KEY reverses")
    parser.add_argument("--last", type=_positive, metavar="N", help="only the N most recently started runs (0: all)")


def _positive(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def _build_parsers():
    top = _Parser(prog="mnist-live runs", description="The run library: every training run recorded. "
                  "Subcommands: show ID, compare ID ID ..., export --csv FILE|- / --json FILE|-, rm ID ..., "
                  "sweeps, analyze SWEEP")
    _common(top)
    _filters(top)
    top.add_argument("--top", type=_positive, default=25, metavar="N",
                     help="show the best N runs (default 25; 0: all)")
    subs = {}
    p = _Parser(prog="mnist-live runs show", description="one run: config, timings, evaluations, per-class accuracy")
    p.add_argument("id", type=int)
    _common(p)
    subs["show"] = p
    p = _Parser(prog="mnist-live runs compare", description="runs side by side; * marks the rows that differ")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    _common(p)
    subs["compare"] = p
    p = _Parser(prog="mnist-live runs export", description="every run (or those --where selects) as CSV or JSON")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--csv", metavar="FILE", help="one row per run ('-': standard output)")
    g.add_argument("--json", metavar="FILE", help="every field, evaluations and curves included ('-': stdout)")
    _common(p)
    _filters(p)
    subs["export"] = p
    p = _Parser(prog="mnist-live runs rm", description="delete runs from the library")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    p.add_argument("--force", action="store_true", help="also runs still recorded as running")
    _common(p)
    subs["rm"] = p
    return top, subs


def runs_main(argv) -> int:
    """The `mnist-live runs ...` subcommand; its exit status (0, 1 library errors, 2 usage)."""
    argv = _reversed_sort_keys(argv)
    top, subs = _build_parsers()
    sub, rest = _subcommand(argv, {**subs, **dict.fromkeys(analysis.SUBCOMMANDS)})
    if sub in analysis.SUBCOMMANDS:                  # `runs sweeps`, `runs analyze SWEEP`: runs/analysis.py
        return analysis.main(sub, rest)
    args = (subs[sub] if sub else top).parse_args(rest)
    for flag, value in (("--runs", args.runs), ("--data-home", args.data_home)):
        if value is not None and not value.strip():
            (subs[sub] if sub else top).error(f"argument {flag}: an empty name")
    path = os.path.expanduser(args.runs) if args.runs else default_path(
        os.path.expanduser(args.data_home) if args.data_home else None)
    if sub is None:
        try:                                            # usage errors before the file is opened
            for expr in args.where:
                parse_where(expr)
            order_by(args.sort)
        except UsageError as e:
            top.error(str(e))
    if not os.path.lexists(path):
        if sub in ("show", "compare", "rm"):
            print(f"error: no runs recorded yet in {path}", file=sys.stderr)
            return 1
        print(f"no runs recorded yet in {path}")
        return 0
    try:
        with RunLibrary(path, create=False) as lib:
            if sub is None:
                return _leaderboard(lib, args, path)
            if sub == "show":
                print(format_show(lib.run(args.id)))
            elif sub == "compare":
                print(format_compare([lib.run(i) for i in args.ids]))
            elif sub == "export":
                from mnist_live.runs.export import export
                try:
                    return export(lib, args)
                except UsageError as e:
                    subs["export"].error(str(e))
            elif sub == "rm":
                return _remove(lib, args, path)
            return 0
    except RunLibraryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:                              # `mnist-live runs | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")           # noqa: SIM115 - the interpreter closes it at exit
        return 0


def _remove(lib, args, path):
    """`runs rm`: a run still recorded as running is only removed with --force."""
    running = lib.running(args.ids) if not args.force else []
    if running:
        rid, host, pid = running[0]
        where = "this host" if host == lib.host else host
        print(f"error: run {rid} is still running (pid {pid} on {where}): stop it first, or add --force",
              file=sys.stderr)
        return 1
    lib.remove(args.ids)
    print(f"removed {len(args.ids)} run{'s' if len(args.ids) != 1 else ''} from {path}")
    return 0


def _subcommand(argv, subs):
    """(subcommand or None, the other arguments): the subcommand may follow --runs FILE / --data-home DIR."""
    i = 0
    while i < len(argv):
        if argv[i] in ("--runs", "--data-home"):
            i += 2
        elif argv[i].startswith(("--runs=", "--data-home=")):
            i += 1
        elif argv[i] in subs:
            return argv[i], argv[:i] + argv[i + 1:]
        else:
            break
    return None, argv


def _reversed_sort_keys(argv):
    """`--sort -lr` as `--sort=-lr` (argparse would take -lr for an option)."""
    out, items = [], iter(argv)
    for a in items:
        following = next(items, None) if a == "--sort" else None
        if following is not None and following[:1] == "-" and following[1:2].isalpha():
            out.append(f"--sort={following}")
        else:
            out += [a] + ([following] if following is not None else [])
    return out


def query(args):
    """RunLibrary.runs' conditions and order for --where and --sort (UsageError when bad)."""
    return {"conditions": [parse_where(expr) for expr in args.where], "order": order_by(args.sort)}


def _leaderboard(lib, args, path):
    total = lib.count()
    if total == 0:
        print(f"no runs recorded yet in {path}")
        return 0
    rows = lib.runs(**query(args), last=args.last or None, limit=args.top or None)
    warn_damaged(lib.skipped)
    matching = lib.count_matching(conditions=query(args)["conditions"], last=args.last or None)
    if not rows:
        print(f"no runs match ({total:,} in {path})")
        return 0
    analysis.print_by_data(rows, format_leaderboard)   # runs on other data are never ranked together
    more = f" (--top 0 shows all {matching:,})" if matching > len(rows) else ""
    print(f"\n{len(rows):,} of {matching:,} matching run{'s' if matching != 1 else ''} shown{more}; "
          f"{total:,} in {path}")
    return 0


def warn_damaged(skipped):
    """One line on stderr for the damaged rows a read skipped."""
    if skipped:
        more = f" (and {len(skipped) - 1} more damaged)" if len(skipped) > 1 else ""
        print(f"warning: skipped {skipped[0][1]}{more}", file=sys.stderr)


# ------------------------------------------------------------------ formatting
def pct(v):
    return "-" if v is None else f"{100 * v:.2f} %"


def secs(v):
    return "-" if v is None else f"{v:.1f} s"


def rate(v):
    return "-" if v is None else f"{v:,.0f}"


def hp_text(v):
    if isinstance(v, list):
        return " ".join(map(str, v))
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def differing_hyperparameters(rows):
    """The hyperparameter names whose values are not the same in all `rows`, in Config order."""
    names = [n for n in config_module.HYPERPARAMETERS]
    extra = sorted({k for r in rows for k in r["hyperparameters"]} - set(names))
    return [n for n in names + extra if len({json.dumps(r["hyperparameters"].get(n)) for r in rows}) > 1]


def _table(header, rows, right=()):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    def line(cells):
        parts = [f"{c:>{w}}" if i in right else f"{c:<{w}}" for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def leaderboard(rows, short_names=None, compact=False):
    """The leaderboard's cells, best first as `rows` come: (header, body rows of text). Id,
    status, test accuracy, time to 98 %, wall time and the hyperparameters that differ
    between the rows; the terminal's (not `compact`) also samples/s, the sweep and the
    command that reproduces each, the window's board (`compact`) names the
    hyperparameters by `short_names`."""
    hps = [n for n in differing_hyperparameters(rows) if not compact or n != "dataset"] \
        if len(rows) > 1 or not compact else []
    sweep = not compact and any(r["sweep"] for r in rows)
    named = [(short_names or {}).get(n) or n for n in hps]
    header = ["id" if not compact else "run", "status", "test acc", "to 98 %", "wall",
              *([] if compact else ["samples/s"]), *(["sweep"] if sweep else []), *named,
              *([] if compact else ["reproduce with"])]
    body = []
    for r in rows:
        body.append([str(r["id"]), r["status"], pct(r["test_accuracy"]), secs(r["time_to_98"]), secs(r["wall_s"]),
                     *([] if compact else [rate(r["samples_per_s"])]),
                     *([f"{r['sweep']}#{r['trial']}" if r["sweep"] else "-"] if sweep else []),
                     *(hp_text(r["hyperparameters"].get(n, "-")) for n in hps),
                     *([] if compact else [command_text(r["config"])])])
    return header, body


def format_leaderboard(rows):
    """The terminal's leaderboard table of `rows` (`leaderboard`'s cells, aligned)."""
    return _table(*leaderboard(rows), right={0, 2, 3, 4, 5})


def _when(t):
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _summary_fields(r):
    """(label, text) rows describing one run (show and compare)."""
    out = [("status", r["status"] + (f" ({r['error']})" if r["error"] else "")),
           ("test accuracy", pct(r["test_accuracy"])), ("best accuracy", pct(r["best_accuracy"])),
           ("time to 97 %", secs(r["time_to_97"])), ("time to 98 %", secs(r["time_to_98"])),
           ("wall time", secs(r["wall_s"])), ("samples/s", rate(r["samples_per_s"])),
           ("data", f"{r['dataset']}: {r['n_train']:,} train / {r['n_test']:,} test ({r['data_source']})"
            if r["n_train"] is not None else r["dataset"])]
    hp = r["hyperparameters"]
    out += [(n, hp_text(hp[n])) for n in sorted(hp, key=_hp_order) if n != "dataset"]
    if r["sweep"]:
        out.append(("sweep", f"{r['sweep']} trial {r['trial']}"))
    out += [("started", _when(r["started"])), ("ended", _when(r["ended"])),
            ("machine", f"{r['host']}, {r['machine'].get('cores')} cores, NumPy {r['machine'].get('numpy')}, "
                        f"BLAS {r['machine'].get('blas') or 'unknown'}"),
            ("model file", r["model_file"] or "-"), ("reproduce with", command_text(r["config"]))]
    return out + analysis.steering_note(r)


def _hp_order(name):
    known = config_module.HYPERPARAMETERS
    return (known.index(name), "") if name in known else (len(known), name)


def format_show(r):
    lines = [f"run {r['id']}"]
    fields = _summary_fields(r)
    w = max(len(k) for k, _ in fields)
    lines += [f"  {k:<{w}}  {v}" for k, v in fields]
    if r["command"]:
        lines.append(f"  {'command':<{w}}  {' '.join(shlex.quote(a) for a in ['mnist-live', *r['command']])}")
    evals = r["evaluations"]
    lines.append(f"\nevaluations ({len(evals)}; loss points {len(r['losses'])}, lr changes {len(r['lr_changes'])})")
    if evals:
        lines.append(_table(["epochs", "kind", "accuracy", "elapsed"],
                            [[f"{e['progress']:.2f}", e["kind"], pct(e["accuracy"]), secs(e["elapsed_s"])]
                             for e in evals], right={0, 2, 3}))
        names = _class_names(r["dataset"])
        rows = [[f"{e['progress']:.2f}", *("-" if v is None else f"{100 * v:.1f}" for v in e["per_class"])]
                for e in evals if e["kind"] == "full"]
        if r["per_class"] is not None and (not evals or r["per_class"] != evals[-1]["per_class"]):
            rows.append(["final", *("-" if v is None else f"{100 * v:.1f}" for v in r["per_class"])])
        if rows:
            lines.append("\nper-class accuracy % (full test-set evaluations)")
            lines.append(_table(["epochs", *names], rows, right=set(range(11))))
    return "\n".join(lines)


def _class_names(dataset):
    if dataset == "fashion":       # data_loader.FASHION_CLASSES, shortened (data_loader imports NumPy)
        return ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
    return [str(i) for i in range(10)]


def format_compare(runs):
    """Runs side by side, one column each; '*' marks the rows that differ."""
    table = [_summary_fields(r) for r in runs]
    labels = []
    for fields in table:
        labels += [k for k, _ in fields if k not in labels]
    rows = []
    for label in labels:
        if label in ("started", "ended", "machine"):
            continue
        values = [dict(f).get(label, "-") for f in table]
        rows.append(["*" if len(set(values)) > 1 else " ", label, *values])
    return _table(["", "run", *(str(r["id"]) for r in runs)], rows)
