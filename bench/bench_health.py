"""What measuring training health costs the training throughput (budget: 3 %), headless and
in the window's training process, and what recording the steps (StepWatch) adds there.

    python bench/bench_health.py            # the default network on MNIST, 15 rounds of 100 batches each
    python bench/bench_health.py --quick    # smoke run: the bundled sample, a small network
    python bench/bench_health.py --figures  # the health figures the warnings' thresholds come from

Each case runs in its own process: "headless" with the BLAS's default threads, "window"
with OPENBLAS_NUM_THREADS=1 as the window's training process has it. In a case one Trainer
trains on, round after round, and the rounds alternate the observers (A: none; B: the
HealthMonitor at its default schedule; window only, C: B plus StepWatch at its defaults,
its messages pickled as the queue to the window would) in the order A B C, B C A, C A B, ...
Each round times its batches (before_batch, the step, on_batch; the epoch's test evaluation
is not run) in wall and in CPU seconds of the process, and the observers' own busy seconds.
Printed: medians over the rounds of the throughput, of each variant's cost against A in the
same cycle of rounds (wall, and CPU: steadier on a machine shared with other jobs), and of
the observers' busy time as a share of the round. ../shared/data/mnist is used when
present, else the bundled sample. Health is measured at every 100th batch of the run (a
round is 100 batches: one measurement each; the run's first batches 1, 3, 10, 30 add 4
more once per run, here in the warm-up).

--figures: one epoch of the default network at learning rates that train well and at ones
too high and too low, each measured at the default schedule; per run its test accuracy,
the largest update ratio of the hidden layers and of the output layer, the smallest one
while the rate is at least half its peak, the largest share of a hidden layer off for a
whole batch, and the warnings health_warnings says (training/health.py's thresholds).
"""
from __future__ import annotations

import argparse
import os
import pickle
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "mnist"


def _data(quick):
    from mnist_live import data_loader
    if SHARED.is_dir() and not quick:
        return data_loader.load_dataset("mnist", data_dir=str(SHARED), log=lambda *a: None)
    return data_loader.load_dataset("mnist", offline=True, log=lambda *a: None)


def _round(trainer, observers, n):
    """(wall s, CPU s) for n batches with these observers (the loop's hooks around each step)."""
    from mnist_live.training.loop import Run
    run = Run(trainer, trainer.x_train[:1], trainer.y_train[:1], observers)
    run.notify("on_start")
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        run.notify("before_batch")
        stats = trainer.train_batch()
        run.notify("on_batch", stats)
    return time.perf_counter() - t0, time.process_time() - c0


def case(name, quick):
    """One case in this process: prints one line per variant (parsed by the parent)."""
    from mnist_live.training.config import Config
    from mnist_live.training.health import HealthMonitor
    from mnist_live.training.steps import StepWatch
    from mnist_live.training.trainer import Trainer
    data = _data(quick)
    config = Config(hidden=(64, 32) if quick else (1024, 512), epochs=1000, lr_schedule="constant")
    trainer = Trainer(config, data.x_train, data.y_train)
    rounds, n = (3, 10) if quick else (15, 100)
    every = 10 if quick else 100
    variants = {"A": [], "B": [HealthMonitor(every)]}      # made once, as in a run: their buffers too
    if name == "window":
        variants["C"] = [HealthMonitor(every), StepWatch(lambda m: pickle.dumps(m))]
    _round(trainer, [HealthMonitor(every)], 100 if not quick else 10)        # warm up: the early measurements
    wall, cpu, busy = ({k: [] for k in variants} for _ in range(3))
    keys = list(variants)
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            observers = variants[k]
            for o in observers:
                o.busy_s = 0.0
            w, c = _round(trainer, observers, n)
            wall[k].append(w)
            cpu[k].append(c)
            busy[k].append(sum(getattr(o, "busy_s", 0.0) for o in observers) / w)
    B = config.batch_size
    for k in keys:
        cost = statistics.median(t / a - 1 for t, a in zip(wall[k], wall["A"]))
        cpu_cost = statistics.median(t / a - 1 for t, a in zip(cpu[k], cpu["A"]))
        print(f"RESULT {name} {k} {B * n / statistics.median(wall[k]):.1f} {100 * cost:.2f} {100 * cpu_cost:.2f} "
              f"{100 * statistics.median(busy[k]):.2f} {' '.join(f'{B * n / t:.0f}' for t in wall[k])}")


FIGURE_RUNS = (("adam", 1e-3), ("sgd", 0.1), ("momentum", 0.05),      # the defaults: healthy
               ("adam", 1e-2), ("sgd", 1.0), ("sgd", 1e-4), ("adam", 1e-5))


def _short(warning):
    """'updates into Hidden 1 are 1/7 ...: learning rate too high?' -> 'Hidden 1: 1/7, too high'."""
    m = re.search(r"updates into (.+?) are (\S+) of the weights.*(too \w+)\?", warning)
    if m:
        return f"{m[1]}: {m[2]}, {m[3]}"
    m = re.search(r"(\d+) % of (.+?) never fires", warning)
    return f"{m[2]}: {m[1]} % off" if m else warning


def figures(quick):
    from mnist_live.training.config import Config
    from mnist_live.training.health import HealthMonitor
    from mnist_live.training.loop import Run, train
    from mnist_live.training.trainer import DivergenceCheck, Trainer
    data = _data(quick)
    print("| run (1 epoch) | test accuracy | max update ratio, hidden | max, output | min while lr >= peak/2 | "
          "max share of a hidden layer off for a whole batch | warnings said |")
    print("|---|---|---|---|---|---|---|")
    for optimizer, lr in FIGURE_RUNS[:2] if quick else FIGURE_RUNS:
        config = Config(optimizer=optimizer, lr=lr, epochs=1, hidden=(64, 32) if quick else (1024, 512))
        trainer = Trainer(config, data.x_train, data.y_train)
        said = []
        outcome = train(Run(trainer, data.x_test, data.y_test, [DivergenceCheck(), HealthMonitor(log=said.append)]))
        recs = trainer.history.health
        hidden = max(la.update_ratio for r in recs for la in r.layers[:-1])
        out = max(r.layers[-1].update_ratio for r in recs)
        low = min(la.update_ratio for r in recs if r.lr >= 0.5 * lr for la in r.layers)
        silent = max(la.silent for r in recs for la in r.layers[:-1])
        kinds = [_short(w) for w in said]
        print(f"| {optimizer} {lr:g} | {100 * outcome.final.accuracy:.2f} % | {hidden:.3g} | {out:.3g} | {low:.2g} | "
              f"{100 * silent:.0f} % | {len(said)}: {'; '.join(kinds) or '-'} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--figures", action="store_true")
    parser.add_argument("--case", choices=("headless", "window"))
    args = parser.parse_args()
    if args.case:
        case(args.case, args.quick)
        return
    if args.figures:
        figures(args.quick)
        return
    print(f"data: {'the bundled sample' if args.quick or not SHARED.is_dir() else SHARED}; "
          f"network: {'784-64-32-10' if args.quick else '784-1024-512-10'}, Adam, batch 128\n")
    print("| case | observers | samples/s (median) | cost vs none: wall | cost vs none: CPU | observers' busy share "
          "| samples/s per round |")
    print("|---|---|---|---|---|---|---|")
    names = {"A": "none", "B": "HealthMonitor", "C": "HealthMonitor + StepWatch"}
    for name in ("headless", "window"):
        env = dict(os.environ)
        if name == "window":
            env["OPENBLAS_NUM_THREADS"] = "1"
        cmd = [sys.executable, __file__, "--case", name] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                _, case_name, k, thr, cost, cpu_cost, share, *per = line.split()
                cells = ["", "", ""] if k == "A" else [f"{float(cost):+.2f} %", f"{float(cpu_cost):+.2f} %",
                                                       f"{float(share):.2f} %"]
                print(f"| {case_name} | {names[k]} | {float(thr):,.0f} | {' | '.join(cells)} | {', '.join(per)} |")


if __name__ == "__main__":
    main()
