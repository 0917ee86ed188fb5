"""What a sweep says about its hyperparameters: `mnist-live runs sweeps`, `mnist-live runs
analyze SWEEP`, and the numbers behind the window's views of a watched sweep.

What it owns:
- `sweeps` (the subcommand): every sweep of the library's sweeps folder with its kind,
  its trials finished / pruned / failed / left, and its best (validation and test).
- `analyze` (the subcommand): parameter importance by Optuna's evaluators (fANOVA and
  PED-ANOVA) printed, and optuna.visualization's plots written as HTML files: parallel
  coordinates, slices, importance, and accuracy against training time (the Pareto front of
  an in-memory two-objective copy of the study). Plotting needs plotly, the `analysis`
  extra; the importances do not.
- For the window (pure, no pygame): `parallel_coordinates` (one axis per hyperparameter
  that varies and one for the accuracy, each value at a height 0..1: log axes for
  positive ranges wider than LOG_RATIO, categories evenly spaced) and `hover_text` (what a
  trial is, in one line).

Imports: the standard library, runs.library (no NumPy) and the sweep modules that import
none at import time; Optuna (and so NumPy) and plotly inside the subcommands, so `mnist-live
runs` itself stays fast.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass

SUBCOMMANDS = ("sweeps", "analyze")
LOG_RATIO = 20.0              # a positive axis spanning more than this is drawn on a log scale
PLOTS = ("parallel_coordinate", "slice", "param_importances", "pareto_front")


# ------------------------------------------------------------------ like with like (pure)
# The images of the full data sets and of the bundled samples (data_loader; a test checks
# these against it): what a run's --train-size, --test-size and --val leave of them.
SIZES = {"full": (60_000, 10_000), "sample": (5_000, 1_000)}
NAMES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}


@dataclass(frozen=True)
class Data:
    """What a run trained and was measured on: never ranked or overlaid with other data as alike."""
    dataset: str
    source: str                   # "full" or "sample" (the bundled one)
    train: int | None
    val: int
    test: int | None
    augment: bool

    def label(self):
        """"MNIST: 60,000 train / 10,000 val / 10,000 test images, augmented"."""
        sizes = " / ".join(f"{n:,} {what}" for n, what in ((self.train, "train"), (self.val, "val"),
                                                          (self.test, "test")) if n)
        return (f"{NAMES.get(self.dataset, self.dataset)}{' (bundled sample)' if self.source == 'sample' else ''}: "
                f"{sizes} images" + (", augmented" if self.augment else ""))


def data_of(run):
    """The Data of a run as the library stores it (a `RunLibrary.runs()` or `.run()` dict)."""
    config = run.get("config") or {}
    source = "sample" if "sample" in (run.get("data_source") or "").lower() or config.get("offline") else "full"
    return Data(run.get("dataset") or config.get("dataset", "mnist"), source, run.get("n_train"),
                int(config.get("val") or 0), run.get("n_test"), bool(config.get("augment")))


def expected_data(config, summary=None):
    """The Data a run of `config` (a config.Config) trains on: from `summary` (the data set's
    `summary()`) when given; else from the options when they decide it (--offline, --data-dir);
    else None (a window may start on the bundled sample while the full set downloads)."""
    val = config.val or 0
    if summary is not None:
        source = "sample" if "sample" in str(summary.get("source", "")).lower() else "full"
        return Data(summary.get("name", config.dataset), source, summary.get("train"), val, summary.get("test"),
                    config.augment)
    if not config.offline and config.data_dir is None:
        return None
    source = "sample" if config.offline else "full"
    n_train, n_test = SIZES[source]
    train = max(n_train - val, 0)
    return Data(config.dataset, source, min(config.train_size or train, train), val,
                min(config.test_size or n_test, n_test), config.augment)


def data_differences(mine, other):
    """What `other` (a Data) trained or was measured on differently: ["6,000 train images", ...]
    (not augmentation, which the hyperparameters' differences name)."""
    out = []
    if other.dataset != mine.dataset:
        out.append(NAMES.get(other.dataset, other.dataset))
    if other.source != mine.source:
        out.append("the bundled sample" if other.source == "sample" else "the full data set")
    for what, a, b in (("train", mine.train, other.train), ("val", mine.val, other.val),
                       ("test", mine.test, other.test)):
        if a != b:
            out.append("no val split" if what == "val" and not b else f"{b:,} {what} images" if b else f"? {what}")
    return out                    # augmentation is a hyperparameter too: comparison.differences names it


def by_data(rows):
    """[(Data label, rows)] of `rows` grouped by what they trained on, each group in the
    order of `rows`, the group of the first row first."""
    groups = {}
    for r in rows:
        groups.setdefault(data_of(r), []).append(r)
    return [(data.label(), group) for data, group in groups.items()]


def print_by_data(rows, table, out=None):
    """Print `table(rows)` once per data group, each under its data; one group: its data below."""
    groups = by_data(rows)
    for data, group in groups:
        print(f"{data}:\n{table(group)}\n" if len(groups) > 1 else table(group), file=out or sys.stdout)
    if len(groups) == 1:
        print(f"\ndata: {groups[0][0]}", file=out or sys.stdout)


def steering_note(run):
    """[("note", why)] for `runs show` of a run whose learning rate was changed by hand, else []."""
    if not run.get("lr_changes"):
        return []
    return [("note", f"its learning rate was changed by hand {len(run['lr_changes'])} time(s) while it trained; "
                     f"the command above trains it without those changes")]


# ------------------------------------------------------------------ the window's views (pure)
@dataclass(frozen=True)
class Axis:
    name: str                     # a hyperparameter, or "accuracy"
    label: str                    # what the axis says ("lr (log)", "val acc %")
    scale: str                    # "linear", "log" or "categories"
    ticks: tuple                  # ((height 0..1, text), ...) from the bottom up


def _text(value):
    """A hyperparameter's value as the views show it (an architecture as 128x64)."""
    from mnist_live.runs.command import _hp_text
    return "x".join(str(v) for v in value) if isinstance(value, list) else _hp_text(value)


def _numeric(values):
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _axis(name, values):
    """(Axis, {value as text: height}) of one hyperparameter's values."""
    if _numeric(values):
        lo, hi = min(values), max(values)
        log = lo > 0 and hi / lo > LOG_RATIO
        f = math.log if log else float

        def height(v):
            return 0.5 if hi == lo else (f(v) - f(lo)) / (f(hi) - f(lo))
        marks = sorted({lo, hi})
        return (Axis(name, name + (" (log)" if log else ""), "log" if log else "linear",
                     tuple((height(v), _text(v)) for v in marks)),
                {_text(v): height(v) for v in values})
    order = sorted({_text(v) for v in values}, key=lambda t: (len(t), t))
    place = {t: 0.5 if len(order) == 1 else i / (len(order) - 1) for i, t in enumerate(order)}
    return Axis(name, name, "categories", tuple((place[t], t) for t in order)), place


def final_accuracy(trial):
    """(what, accuracy) of a watched trial (comparison.RunCurves): its last validation accuracy
    for a run with a validation split, else its test accuracy."""
    if getattr(trial, "kind", "full") == "val":
        return "val", trial.acc[-1][1] if trial.acc else None
    return "test", trial.test_accuracy


def parallel_coordinates(trials):
    """(axes, lines) for the parallel-coordinates view of watched trials (RunCurves with
    `hyper` and `status`): one axis per hyperparameter that differs between them, then
    the accuracy; a line per trial: (trial, [height 0..1 or None per axis])."""
    from mnist_live.runs.command import differing_hyperparameters
    rows = [{"hyperparameters": t.hyper} for t in trials]
    names = [n for n in differing_hyperparameters(rows) if n != "dataset"] if len(rows) > 1 else []
    axes, places = [], []
    for name in names:
        values = [t.hyper[name] for t in trials if t.hyper.get(name) is not None]
        axis, place = _axis(name, values)
        axes.append(axis)
        places.append(place)
    measured = [final_accuracy(t) for t in trials]
    what = measured[0][0] if measured else "test"
    accs = [a for _, a in measured if a is not None]
    if accs:
        lo, hi = min(accs), max(accs)
        marks = {(0.0 if hi == lo else (v - lo) / (hi - lo), f"{100 * v:.2f}") for v in (lo, hi)}
        axes.append(Axis("accuracy", f"{what} acc %", "linear", tuple(sorted(marks))))
    lines = []
    for t, (_, acc) in zip(trials, measured):
        heights = [place.get(_text(t.hyper.get(name))) for name, place in zip(names, places)]
        if accs:
            heights.append(None if acc is None else 0.5 if hi == lo else (acc - lo) / (hi - lo))
        lines.append((t, heights))
    return axes, lines


def hover_text(trial, varying):
    """One line saying what a watched trial is: "trial 3 (run 17): lr=0.003 batch_size=64 |
    val 97.10 % | finished at 3.00 epochs"."""
    params = " ".join(f"{name}={_text(trial.hyper.get(name))}" for name in varying) or "the sweep's base configuration"
    what, acc = final_accuracy(trial)
    measured = f"{what} {100 * acc:.2f} %" if acc is not None else f"no {what} accuracy yet"
    test = f", test {100 * trial.test_accuracy:.2f} %" if what == "val" and trial.test_accuracy is not None else ""
    done = trial.acc[-1][0] if trial.acc else 0.0
    return f"trial {trial.trial} (run {trial.id}): {params} | {measured}{test} | {trial.status} at {done:.2f} epochs"


# ------------------------------------------------------------------ the subcommands
def main(sub, argv):
    """`mnist-live runs sweeps|analyze ...`: the exit status (1 for a failure, 2 for bad usage)."""
    from mnist_live.runs.command import _common, _Parser
    parser = _Parser(prog=f"mnist-live runs {sub}", description=(
        "the sweeps of the run library: trials finished, pruned, failed and left, the best" if sub == "sweeps" else
        "which hyperparameters mattered in a sweep: importance, and the plots as HTML files"))
    _common(parser)
    if sub == "analyze":
        parser.add_argument("sweep", metavar="SWEEP")
        parser.add_argument("--out", metavar="DIR", help="where the plots go (default: ./SWEEP-analysis)")
    args = parser.parse_args(argv)
    from mnist_live.runs.library import default_path
    from mnist_live.runs.sweeps import sweep_folder
    path = os.path.expanduser(args.runs) if args.runs else default_path(
        os.path.expanduser(args.data_home) if args.data_home else None)
    folder = sweep_folder(path)
    try:
        return list_sweeps(folder) if sub == "sweeps" else analyze(folder, args.sweep, args.out, parser)
    except BrokenPipeError:
        return 0


def _load(folder, name):
    from mnist_live.runs.study import journal_path, open_study
    return open_study(journal_path(folder, name), name)


def list_sweeps(folder, out=None):
    out = out or sys.stdout
    names = sorted(f[:-len(".journal")] for f in os.listdir(folder) if f.endswith(".journal")) \
        if os.path.isdir(folder) else []
    if not names:
        print(f"no sweeps yet in {folder}", file=out)
        return 0
    from mnist_live.runs.study import SweepFailed
    header = ["sweep", "kind", "trials", "finished", "pruned", "failed", "left", "best (val / test)", "state"]
    body = []
    for name in names:
        try:
            body.append(_summary(name, *_load(folder, name), folder))
        except SweepFailed as e:
            body.append([name, "?", "-", "-", "-", "-", "-", "-", f"damaged: {str(e)[:60]}"])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *body]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)
    return 0


def _summary(name, study, plan, folder):
    from mnist_live.runs.sweep_end import rows
    from mnist_live.runs.sweep_report import best_trial, mean
    board = rows(study, plan)
    count = {s: sum(r["status"] == s for r in board) for s in ("finished", "pruned")}
    failed = sum(r["status"] in ("failed", "diverged") for r in board)
    left = max(plan.size - sum(r["status"] != "interrupted" for r in board), 0)
    best = best_trial(board, bool(plan.base.val))
    best_text = "-" if best is None else (
        f"{100 * mean(best['val']):.2f} % / " if best["val"] else "- / ") + \
        (f"{100 * mean(best['test']):.2f} %" if best["test"] else "-") + f" (trial {best['number']})"
    state = "running" if _locked(folder, name) else "done" if not left else "interrupted (--resume continues it)"
    return [name, plan.kind, str(plan.size), str(count["finished"]), str(count["pruned"]), str(failed), str(left),
            best_text, state]


def _locked(folder, name):
    import fcntl
    path = os.path.join(folder, f"{name}.lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def importances(study):
    """{evaluator name: {parameter: importance}} by Optuna's fANOVA and PED-ANOVA evaluators
    over the finished trials; {} with fewer than two of them."""
    import optuna
    from optuna.trial import TrialState
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return {}
    out = {}
    for label, evaluator in (("fANOVA", optuna.importance.FanovaImportanceEvaluator(seed=0)),
                             ("PED-ANOVA", optuna.importance.PedAnovaImportanceEvaluator())):
        try:
            out[label] = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (ValueError, RuntimeError) as e:          # e.g. every finished trial has the same value
            out[label] = {"(not computed)": str(e)}
    return out


def analyze(folder, name, out_dir, parser):
    from mnist_live.runs.study import SweepFailed, journal_path
    if not os.path.isfile(journal_path(folder, name)):
        parser.error(f"argument SWEEP: no sweep {name!r} in {folder} (mnist-live runs sweeps lists them)")
    try:
        study, plan = _load(folder, name)
    except SweepFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    import warnings
    warnings.filterwarnings("ignore", category=Warning, module="optuna")
    found = importances(study)
    finished = sum(t.state.name == "COMPLETE" for t in study.trials)
    print(f"Sweep {name}: {plan.kind} over {', '.join(plan.specs)}, "
          f"{finished} finished trial(s) of {len(study.trials)}")
    if not found:
        print("parameter importance needs at least two finished trials")
    for label, imp in found.items():
        print(f"\nparameter importance ({label}, of the {'validation' if plan.base.val else 'test'} accuracy):")
        for param, value in imp.items():
            print(f"  {param:<16} {value:.3f}" if isinstance(value, float) else f"  {param}: {value}")
    return write_plots(study, name, out_dir or f"{name}-analysis")


def write_plots(study, name, out_dir):
    """The plots as HTML files in `out_dir` (one copy of plotly.js beside them); 1 with one
    line when plotly is missing or there is nothing to plot."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        print("error: the plots need plotly: pip install 'mnist-live[analysis]' (the importances above do not)",
              file=sys.stderr)
        return 1
    from optuna.trial import TrialState
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        print("error: no trial of the sweep finished: nothing to plot", file=sys.stderr)
        return 1
    import optuna.visualization as vis

    from mnist_live.training.files import atomic_file
    try:
        os.makedirs(out_dir, exist_ok=True)
        written = []
        for kind in PLOTS:
            figure = pareto_figure(study) if kind == "pareto_front" else getattr(vis, f"plot_{kind}")(study)
            target = os.path.join(out_dir, f"{name}-{kind}.html")
            with atomic_file(target) as f:
                f.write(figure.to_html(include_plotlyjs="directory", full_html=True).encode("utf-8"))
            written.append(target)
        with atomic_file(os.path.join(out_dir, "plotly.min.js")) as f:
            from plotly.offline import get_plotlyjs
            f.write(get_plotlyjs().encode("utf-8"))
    except OSError as e:
        print(f"error: could not write the plots into {out_dir}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"\nplots: {', '.join(os.path.basename(w) for w in written)} in {out_dir}")
    return 0


def pareto_figure(study):
    """Accuracy against training time: optuna.visualization's Pareto front of a two-objective
    copy of the study's finished trials (accuracy up, seconds of training down)."""
    import optuna
    from optuna.trial import TrialState
    copy = optuna.create_study(directions=["maximize", "minimize"])
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        copy.add_trial(optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                 values=[t.value, t.user_attrs.get("wall_s") or 0.0],
                                                 user_attrs=t.user_attrs))
    return optuna.visualization.plot_pareto_front(copy, target_names=["accuracy", "training seconds"])

