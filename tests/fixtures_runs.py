"""What the run library tests share: a data set description, runs made through the
library, and the `runs` command called in this process."""
from mnist_live.runs.command import runs_main
from mnist_live.training.config import Config

DATASET = {"name": "mnist", "source": "bundled sample", "train": 5000, "test": 1000}
QUICK = ("--headless", "--offline", "--hidden", "16", "--train-size", "500", "--test-size", "200")   # a run of seconds


def per_class(base):
    return [min(1.0, base + i / 1000) for i in range(10)]


def add_run(lib, acc, config=None, evals=(), status="finished", sweep=None, trial=None, wall=10.0):
    """A finished run with evaluations [(elapsed_s, accuracy)] (full, one per epoch)."""
    config = config or Config()
    rid = lib.start_run(config, DATASET, sweep=sweep, trial=trial)
    for i, (el, a) in enumerate(evals):
        lib.add_evaluation(rid, i + 1.0, "full", a, per_class(a - 0.01), i + 1, 0, el)
    lib.finish_run(rid, status, test_accuracy=acc, per_class=per_class(acc - 0.01), wall_s=wall,
                   samples_per_s=20000.0)
    return rid


def call(argv, capsys):
    """runs_main(argv) -> (status, stdout, stderr)."""
    try:
        status = runs_main(argv)
    except SystemExit as e:
        status = e.code
    out = capsys.readouterr()
    return status, out.out, out.err
