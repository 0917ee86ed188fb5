"""Live MNIST network visualizer: command line and wiring.

    python main.py                      # open the window and watch the network learn
    python main.py --headless           # train in the terminal
    python main.py --help               # every option
    mnist-live ...                      # the same, once installed (pip install -e .)

Bad input ends with a one-line `error: ...` and a non-zero exit status, never a traceback.

From a clone, `python main.py` imports this folder as the package `mnist_live` (what
`pip install .` installs it as) before anything else; see `_import_clone`.
"""
from __future__ import annotations


def _import_clone():
    """`python main.py` in a clone (and a child process re-running this file as its main
    module): import the folder holding this file as the package `mnist_live`, the name
    `pip install .` gives it, so the modules import each other as `mnist_live.*` either way."""
    import importlib.util
    import os
    import sys
    if "mnist_live" in sys.modules:
        return
    root = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("mnist_live", os.path.join(root, "__init__.py"),
                                                  submodule_search_locations=[root])
    package = importlib.util.module_from_spec(spec)
    sys.modules["mnist_live"] = package
    spec.loader.exec_module(package)


if not __package__:                    # run as a script, not imported as mnist_live.main
    _import_clone()
    if __name__ == "__main__":
        from mnist_live.main import cli
        cli()

import argparse
import dataclasses
import functools
import os
import signal
import sys
import time

from mnist_live import __version__
from mnist_live.runs import sweep_plan
from mnist_live.runs.sweep_plan import SWEEP_OPTIONS, SWEEPABLE
from mnist_live.training.config import DATASET_NAMES, HYPERPARAMETERS, Config, bounds_problem


# ------------------------------------------------------------------------ parsing
def _checked(kind, meta, flag):
    """An argparse `type=` that converts and checks the bounds given in field metadata."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        problem = bounds_problem(meta, value)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {text}")
        return value
    convert.__name__ = kind.__name__
    return convert


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line ("error: ..."), exit 2: no usage block before it."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser():
    """The parser is generated from `Config`, so the CLI and the config never disagree.
    Options the user does not give are absent from the namespace (SUPPRESS), which tells
    explicit choices apart from defaults (needed when a model file brings its own)."""
    parser = _Parser(prog="mnist-live",
        argument_default=argparse.SUPPRESS,
        description="Watch a NumPy multilayer perceptron learn MNIST, live, in a Pygame window.",
        epilog="Keys in the window: H or F1 lists them all.")
    parser.add_argument("--version", action="version", version=f"mnist-live {__version__}")
    for f in dataclasses.fields(Config):
        meta = dict(f.metadata)
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        help_text = meta["help"]
        if f.name in sweep_plan.FLAGS:              # --augment, or --augment no yes: a sweep
            parser.add_argument(flag, nargs="*", metavar="yes|no", help=help_text + sweep_plan.sweep_help(f.name))
            continue
        if f.type == "bool" or isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=help_text)
            continue
        kw = {}
        if "choices" in meta:
            kw["choices"] = meta["choices"]
        if f.name in SWEEPABLE:                    # several values or a range sweep it (sweep_plan.take_specs)
            kw["nargs"] = "+"
            help_text += sweep_plan.sweep_help(f.name)
        elif "type" in meta:
            kw["type"] = _checked(meta["type"], meta, flag)
        if "nargs" in meta:
            kw["nargs"] = meta["nargs"]
        if "metavar" in meta:
            kw["metavar"] = meta["metavar"]
        if default is not None:
            shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
            help_text += f" (default: {shown})"
        parser.add_argument(flag, help=help_text, **kw)
    sweep = parser.add_argument_group("sweeps (several values for an option run every combination; see README)")
    for name, meta in SWEEP_OPTIONS.items():
        meta = dict(meta)
        kw = {k: meta[k] for k in ("choices", "metavar") if k in meta}
        if "type" in meta:
            kw["type"] = _checked(meta["type"], meta, name)
        sweep.add_argument("--" + name.replace("_", "-"), help=meta["help"], **kw)
    return parser


PATH_OPTIONS = ("load", "save", "metrics", "screenshot", "record", "data_dir", "data_home", "runs")


def parse_config(argv=None):
    """(Config, set of option names given explicitly) of one run. Exits 2 on bad input, a sweep included."""
    config, given, plan = parse_command(argv)
    if plan is not None:
        build_parser().error("several values or a range sweep an option; here one run is expected")
    return config, given


def parse_command(argv=None):
    """(Config, set of option names given explicitly, sweep_plan.SweepPlan or None). Several
    values or a range for a sweepable option, or a sweep option, make a sweep; its base
    Config has those options at their defaults. Exits 2 on bad input."""
    parser = build_parser()
    ns = vars(parser.parse_args(argv))
    options = {k: ns.pop(k) for k in SWEEP_OPTIONS if k in ns}
    try:
        specs = sweep_plan.take_specs(ns)           # several values or a range for an option: a sweep
    except sweep_plan.SweepError as e:
        parser.error(str(e))
    for key in ("hidden", "compare"):
        if key in ns:
            ns[key] = tuple(ns[key])
    for key in PATH_OPTIONS:                       # ~ and ~user, also where no shell expanded them
        if key in ns:
            ns[key] = os.path.expanduser(ns[key])
    config = Config(**ns)
    _check_outputs(parser, config)
    window_only = [f"--{k.replace('_', '-')}" for k in ("frames", "screenshot", "record", "width", "height",
                                                        "connections", "compare", "watch")
                   if k in ns]
    if config.headless and window_only:
        parser.error(f"{', '.join(window_only)} {'is' if len(window_only) == 1 else 'are'} for the window; "
                     f"not with --headless")
    if config.offline and (config.data_dir is not None or config.data_home is not None):
        parser.error(f"--offline uses the bundled sample; not with "
                     f"{'--data-dir' if config.data_dir is not None else '--data-home'}")
    if config.data_dir is not None and config.data_home is not None:
        parser.error("--data-dir reads IDX files; --data-home is for the OpenML download: give one of them")
    if config.val and not config.headless:
        parser.error("--val holds out a validation split for --headless runs and sweeps; the window trains and "
                     "tests on the whole sets")
    if config.no_train and config.headless and config.load is None:
        parser.error("--headless --no-train needs --load FILE (there is nothing to train or explore)")
    try:
        plan = sweep_plan.plan_sweep(config, specs, options, argv=sys.argv[1:] if argv is None else argv,
                                 given=sorted(set(ns) | set(specs)))
    except sweep_plan.SweepError as e:
        parser.error(str(e))
    return config, set(ns) | set(specs), plan


def _check_outputs(parser, config):
    """Usage errors (exit 2) for output files that cannot or must not be written, before any work."""
    from mnist_live.training.files import output_target  # standard library only: NumPy is not imported yet
    seen = {}
    for flag, path in (("--save", config.save), ("--metrics", config.metrics), ("--screenshot", config.screenshot),
                       ("--record", config.record)):
        if path is None:
            continue
        try:
            real = output_target(path)
        except OSError as e:
            parser.error(f"argument {flag}: {e.strerror}")
        folder = os.path.dirname(real)
        if not os.path.isdir(folder):
            parser.error(f"argument {flag}: folder {folder} does not exist")
        if not _can_create_in(folder):
            parser.error(f"argument {flag}: folder {folder} is not writable")
        if real in seen:
            parser.error(f"argument {flag}: {path} is also the {seen[real]} file; give each output its own file")
        seen[real] = flag
        if flag != "--save" and config.load and real == os.path.realpath(config.load):
            parser.error(f"argument {flag}: {path} is the --load model file; it would be overwritten")


def _can_create_in(folder):
    """Whether a file can really be created in folder (os.access says yes to root on
    read-only places such as /proc)."""
    import tempfile
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------ wiring
def fail(message, status=1):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def load_data(config, log=print):
    """The data set named by the config, cut to --train-size / --test-size."""
    from mnist_live import data_loader
    try:
        data = data_loader.load_dataset(config.dataset, data_dir=config.data_dir, data_home=config.data_home,
                                        offline=config.offline, log=log)
    except data_loader.DataError as e:
        fail(str(e))
    return cut_data(data, config)


def cut_data(data, config):
    """`data` with the --val split held out, cut to --train-size / --test-size (training.split)."""
    from mnist_live.training import split
    try:
        return split.cut(data, config.val, config.train_size, config.test_size)
    except split.SplitError as e:
        fail(str(e), status=2)


def start_fetch(config):
    """A window.fetch.BackgroundFetch of the full data set when this launch would download it
    from OpenML (no --offline, no --data-dir, no valid cache), else None. An unwritable
    data folder is an error at once, not after the download."""
    from mnist_live import data_loader
    if not data_loader.needs_fetch(config.dataset, config.data_dir, config.data_home, config.offline):
        return None
    try:
        data_loader.check_cache_folder(config.dataset, config.data_home)
    except data_loader.DataError as e:
        fail(str(e))
    from mnist_live.window import fetch as background_fetch
    return background_fetch.BackgroundFetch(config.dataset, config.data_home)


def wait_for_fetch(fetch, config, out=None, interval=0.2):
    """--headless (or a scripted window run) on a cache miss: wait for `fetch` with its
    progress on the console (window.fetch.wait_on_console). Returns the full data set, or
    the bundled sample after a one-line reason."""
    from mnist_live import data_loader
    from mnist_live.window.fetch import wait_on_console
    out = out or sys.stdout
    data, reason = wait_on_console(fetch, out, interval)
    if data is not None:
        try:
            return cut_data(data, config)
        except data_loader.DataError as e:
            reason = str(e)
    sample = load_sample_or_fail(config)
    kind = "digits" if config.dataset == "mnist" else "images"
    print(f"{DATASET_NAMES[config.dataset]} unavailable ({reason}); using the bundled sample of "
          f"{len(sample.y_train):,}/{len(sample.y_test):,} {kind} instead (--offline skips the download)", file=out)
    return cut_data(sample, config)


def load_sample_or_fail(config):
    from mnist_live import data_loader
    try:
        return data_loader.load_sample(config.dataset)
    except data_loader.DataError as e:
        fail(str(e))


def resolve_model_file(config, given):
    """Read --load; adopt the file's architecture unless the user set it explicitly.
    Returns (config, arrays, meta) or (config, None, None)."""
    if not config.load:
        return config, None, None
    import numpy as np

    from mnist_live.training.model_file import ModelFileError, check_model_fits, read_model
    try:
        arrays, meta = read_model(config.load)
        saved = meta.get("config", {})
        adopt = {k: v for k, v in saved.items() if k in HYPERPARAMETERS and k not in given}
        if "optimizer" in given:                 # another optimizer: its own default lr
            adopt.pop("lr", None)
        if "hidden" in adopt:
            adopt["hidden"] = tuple(adopt["hidden"])
        config = config.replace(**adopt)
        check_model_fits(config.load, arrays, meta, config)
        try:                                      # a dry run of the restore catches odd files
            from mnist_live.training.trainer import Trainer
            Trainer(config, np.zeros((1, 784), np.uint8), np.zeros(1, np.uint8)).restore(arrays, meta)
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise ModelFileError(f"{config.load} has incomplete or inconsistent training state ({e!r})") from None
    except ModelFileError as e:
        fail(str(e))
    if meta.get("foreign"):
        print(f"Loaded {config.load}: {meta['foreign']}")
    trained_on = saved.get("dataset")
    if trained_on in DATASET_NAMES and trained_on != config.dataset:
        print(f"warning: {config.load} was trained on {DATASET_NAMES[trained_on]}, not "
              f"{DATASET_NAMES[config.dataset]} (--dataset {config.dataset}); its accuracy here means little",
              file=sys.stderr)
    elif trained_on in DATASET_NAMES and "dataset" not in given and trained_on != Config.dataset:
        print(f"Using {DATASET_NAMES[trained_on]}, the data set {config.load} was trained on")
    return config, arrays, meta


def recording(config, data, command=None):
    """The run library's observer of this run (None with --no-runs); a library it cannot use
    costs one line ("runs not recorded: ..."), never the run."""
    if config.no_runs:
        return None
    from mnist_live.runs import library
    from mnist_live.runs.recorder import Recording
    path = config.runs or library.default_path(config.data_home)
    return Recording(path, config, data.summary(), command=command, log=lambda line: print(line, file=sys.stderr))


def run_headless(config, data, arrays=None, meta=None, command=None):
    """Train in the terminal (training.headless), recorded in the run library. Returns the
    metrics dict; a model that could not be saved is a one-line error."""
    from mnist_live.training.headless import run_headless as train_in_terminal
    recorder = recording(config, data, command)
    metrics, run = train_in_terminal(config, data, arrays, meta, observers=[recorder] if recorder else [])
    if run.save_error:
        fail(run.save_error)
    metrics["run_library"] = None if recorder is None or recorder.recorder is None else \
        {"file": recorder.path, "run_id": recorder.run_id, "recording_s": recorder.busy_s,
         "writing_s": recorder.write_s}
    return metrics


def no_display(environ=os.environ, platform=sys.platform):
    """True on X11/Wayland systems (Linux, BSD) when there is no display to open a window on
    and SDL would quietly fall back to an invisible offscreen window. An explicit
    SDL_VIDEODRIVER (dummy, offscreen, kmsdrm, ...) is the user's choice and respected."""
    if platform.startswith(("win", "darwin", "cygwin", "emscripten")):
        return False
    return not any(environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"))


# OpenBLAS, OpenMP, MKL, and Apple's Accelerate (NumPy's BLAS on macOS, which ignores the others)
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def limit_blas_threads(environ=os.environ):
    """One BLAS thread for this process and the processes it starts, unless the user chose
    otherwise; only effective before NumPy is imported."""
    for var in BLAS_THREAD_VARS:
        environ.setdefault(var, "1")


def _terminate_like_ctrl_c(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "runs":                 # `mnist-live runs ...`: the run library (no NumPy)
        from mnist_live.runs import command as runs_command
        return runs_command.runs_main(argv[1:])
    start = time.perf_counter()
    config, given, plan = parse_command(argv)
    if plan is not None:
        return run_sweep(plan)
    if not config.headless and (config.compare or config.watch):
        from mnist_live.runs import comparison  # --compare IDs and --watch SWEEP must be in the library
        problem = comparison.check_options(config)
        if problem:
            fail(problem, status=2)
    if not config.headless and no_display():
        fail("no display to open a window on (DISPLAY and WAYLAND_DISPLAY are not set): use --headless to "
             "train in the terminal, or set SDL_VIDEODRIVER (e.g. offscreen for --screenshot)")
    # `kill PID` (a logout, a batch system's time limit) ends the run as Ctrl+C does: the
    # headless loop and the window both stop, save and write their metrics.
    signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if not config.headless:
        # The window and the training process get one core each: a second BLAS thread in
        # either would only fight the other (must be set before NumPy is imported).
        limit_blas_threads()
    from mnist_live.training.files import atomic_write_json
    config, arrays, meta = resolve_model_file(config, given)
    fetch = start_fetch(config)
    if fetch is None:
        data = load_data(config)
    elif config.headless or config.frames or config.screenshot:
        data, fetch = wait_for_fetch(fetch, config), None        # nobody to press U: wait for the full set
    else:                                                        # the window at once, on the bundled sample
        data = cut_data(load_sample_or_fail(config), config)
    if config.headless:
        if config.reset_view:
            from mnist_live.window import settings as view_settings
            view_settings.forget(view_settings.default_path())
        metrics = run_headless(config, data, arrays, meta, command=argv)
    else:
        from mnist_live import visualization
        config, view, view_path = window_view(config, given)
        metrics = visualization.run_app(config, data, start, fetch=fetch, command=argv,
                                        prepare=functools.partial(cut_data, config=config), view=view,
                                        view_path=view_path)
    if config.metrics and metrics is not None:
        try:
            atomic_write_json(config.metrics, metrics)
        except OSError as e:
            fail(f"could not write metrics to {config.metrics}: {e.strerror or e}")
    if metrics is not None and metrics.get("errors"):   # a save or screenshot failed (already printed)
        return 1
    if metrics is not None and metrics.get("status") == "failed":     # the training process died
        print(f"error: {metrics.get('error')}", file=sys.stderr)
        return 1
    if config.headless and metrics is not None and metrics.get("status") == "interrupted":
        return 130                     # Ctrl+C or `kill PID`: saved and reported, but not a finished run (as a sweep)
    return 0 if metrics is None or metrics.get("status") != "diverged" else 3


def window_view(config, given, environ=os.environ):
    """(config, view settings, the file to remember them in or None) of a window run: the
    settings remembered from the last launch, the command line winning (--reset-view:
    forgotten). Runs that end by themselves (--frames, --screenshot: benchmarks, pictures)
    start from a first launch's defaults without the tour and remember nothing, so they
    look the same on every machine and as a user's window does."""
    from mnist_live.window import settings as view_settings
    path = view_settings.default_path(environ)
    if config.frames or config.screenshot:
        if config.reset_view:
            view_settings.forget(path)
        return config, view_settings.ViewSettings(toured=True), None
    config, view = view_settings.at_launch(config, given, path)
    return config, view, path


def headless_data(config):
    """The data set of a headless run: the cache, the IDX files, the sample, or a download waited for."""
    fetch = start_fetch(config)
    return load_data(config) if fetch is None else wait_for_fetch(fetch, config)


def run_sweep(plan):
    """Hand a sweep over to runs.sweeps.run_sweep (trials in worker processes, one BLAS thread each)."""
    signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    limit_blas_threads()
    from mnist_live.runs import sweeps as tuning
    try:
        return tuning.run_sweep(plan, headless_data)
    except sweep_plan.SweepError as e:
        fail(str(e), status=2)
    except tuning.SweepFailed as e:                 # locked, a damaged journal, no cluster, ...
        fail(str(e))
    except OSError as e:                            # a full disk under the journal or the temp files
        fail(f"the sweep stopped: {e.filename + ': ' if e.filename else ''}{e.strerror or e}")


def cli(argv=None):
    """The `mnist-live` command and `python main.py`: main() with its exit status, Ctrl+C
    and running out of memory as one line instead of a traceback."""
    try:
        sys.exit(main(argv))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
    except MemoryError:
        print("error: not enough memory for this network and data (try smaller --hidden sizes)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli()
