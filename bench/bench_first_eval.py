"""A learner's first second: how long after training starts the window's trainer tells the
window how well the weights on screen read the test digits (its first subset evaluation of
trained weights), and at which batch; beside it, when the same run reached the batch of
the old schedule's first one (batch 100, or the end of the first epoch when an epoch is
shorter: the bundled sample's 39 batches), the moment the window used to get it.

    python bench/bench_first_eval.py              # full MNIST (../shared/data/mnist), 3 launches
    python bench/bench_first_eval.py --quick      # the bundled sample, 1 launch (smoke run)

Runs the real training process (`training.process.TrainingProcess`, one BLAS thread, as the
window starts it) without a window; the clock starts when its report of the run's past
arrives (sent just before its training loop starts).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "mnist"
OLD_FIRST = 100                      # the old schedule's first subset evaluation (batch)


def one_launch(config, data, timeout=300.0):
    """(s to the first subset evaluation, its batch, s to the old schedule's first, that batch),
    from the start of the training loop."""
    from mnist_live.training.history import EvalRecord
    from mnist_live.training.messages import BatchReport, RunHistory
    from mnist_live.training.process import TrainingProcess
    proc = TrainingProcess(config, data)
    t0 = first = old = None
    deadline = time.monotonic() + timeout
    try:
        while (first is None or old is None) and time.monotonic() < deadline:
            reports, _ = proc.poll()
            now = time.perf_counter()
            for msg in reports:
                if isinstance(msg, RunHistory):            # sent just before the training loop starts
                    t0 = now
                elif isinstance(msg, BatchReport):
                    if old is None and (msg.batch >= min(OLD_FIRST, msg.n_batches)):
                        old = (now - t0, msg.batch)
                elif isinstance(msg, EvalRecord) and msg.kind == "subset" and msg.progress > 0 and first is None:
                    first = (now - t0, msg.batch)
            time.sleep(0.001)
    finally:
        proc.stop()
    if first is None or old is None:
        raise SystemExit("error: the trainer did not get there in time")
    return (*first, *old)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the bundled sample, one launch")
    parser.add_argument("--launches", type=int, default=3)
    args = parser.parse_args(argv)
    from mnist_live import main as cli
    quick = args.quick or not SHARED.exists()
    config, _ = cli.parse_config(["--offline"] if quick else ["--data-dir", str(SHARED)])
    config = config.replace(epochs=1, no_runs=True)
    data = cli.load_data(config, log=lambda *a: None)
    runs = [one_launch(config, data) for _ in range(1 if args.quick else args.launches)]
    med = [statistics.median(r[i] for r in runs) for i in range(4)]
    print(f"data: {data.source}; {len(data.y_train):,} training images; {len(runs)} launch(es), medians")
    print("| first evaluation of trained weights | s after training began | at batch |")
    print("|---|---|---|")
    print(f"| this code (subsets after batches 1, 2, 5, 10, 20, 50) | {med[0]:.3f} | {med[1]:.0f} |")
    print(f"| the old schedule (batch {OLD_FIRST} or the epoch's end), same run | {med[2]:.3f} | {med[3]:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
