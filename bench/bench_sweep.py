"""Sweeps: what parallel trials and pruning buy, measured end to end through main.py.

    python bench/bench_sweep.py              # ../shared/data/mnist: an 8-trial grid, a 16-trial search
    python bench/bench_sweep.py --pairs 5    # more alternations on a noisy machine
    python bench/bench_sweep.py --quick      # smoke run on the bundled sample
    python bench/bench_sweep.py --only grid  # one of the two comparisons

(1) An 8-trial grid (--hidden 512 --train-size 30000 --epochs 3, 4 learning rates x 2 batch
sizes) with --jobs 2 against the same 8 trials one after another (--jobs 1). (2) --search 16
over --lr 1e-5:1:log (half the range is hopeless: too slow or unstable), 6 epochs each, with
the median pruner (its default warm-up: no trial stopped before one epoch) against --pruner
none, and the best validation accuracy each finds (what a sweep chooses on; the test accuracy
of that trial, scored once, is shown too). Every sweep holds out the default 10,000
validation images. A and B alternate (A B A B ...); the table gives the medians, and the
load average before each run (other work on a shared machine takes cores from the parallel
trials). Each sweep has its own run library in a temp folder.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "mnist"


BEST = re.compile(r"Best: trial \d+, validation accuracy ([\d.]+) % \(test accuracy ([\d.]+) %")


def sweep(args, home):
    """(wall seconds, best validation accuracy %, trials pruned, 1-minute load average before,
    that trial's test accuracy %) of `python main.py --headless ARGS`."""
    load = os.getloadavg()[0]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "HOME": home, "SCIKIT_LEARN_DATA": os.path.join(home, "sk")}
    env.pop("MNIST_LIVE_RUNS", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--headless", *args], capture_output=True,
                          text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"error: main.py {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    best = BEST.search(proc.stdout)
    pruned = re.search(r"(\d+) pruned", proc.stdout)
    return wall, float(best.group(1)), int(pruned.group(1)) if pruned else 0, load, float(best.group(2))


def alternate(tag, a, b, pairs, home):
    """Run sweeps a and b alternately `pairs` times: ([(wall, best, pruned)] of a, of b)."""
    out_a, out_b = [], []
    for i in range(pairs):
        out_a.append(sweep([*a, "--sweep-name", f"{tag}-a{i}"], home))
        out_b.append(sweep([*b, "--sweep-name", f"{tag}-b{i}"], home))
    return out_a, out_b


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run on the bundled sample")
    parser.add_argument("--pairs", type=int, default=3, help="A/B alternations per comparison (default 3)")
    parser.add_argument("--only", choices=("grid", "search"), help="run one of the two comparisons")
    opts = parser.parse_args()
    if opts.quick:
        data, size, pairs = ["--offline"], ["--hidden", "16", "--train-size", "500"], 1
        grid_lrs, search_n, grid_epochs, search_epochs = ["0.001", "0.003"], "4", "1", "2"
    elif SHARED.exists():
        data, size, pairs = ["--data-dir", str(SHARED)], ["--hidden", "512", "--train-size", "30000"], opts.pairs
        grid_lrs, search_n, grid_epochs, search_epochs = ["0.0005", "0.001", "0.002", "0.004"], "16", "3", "6"
    else:
        raise SystemExit("error: ../shared/data/mnist not found (use --quick for the bundled sample)")
    grid = [*data, *size, "--epochs", grid_epochs, "--lr", *grid_lrs, "--batch-size", "64", "128"]
    search = [*data, *size, "--epochs", search_epochs, "--search", search_n, "--lr", "1e-5:1:log"]
    print(f"cores: {os.cpu_count()}; {pairs} alternating pair(s) each; sizes: {' '.join(size)}")
    print(f"grid:   python main.py --headless {' '.join(grid)} --jobs 2   vs   --jobs 1")
    print(f"search: python main.py --headless {' '.join(search)} --jobs 2 --pruner median   vs   --pruner none\n")
    par = seq = pruned = full = []
    with tempfile.TemporaryDirectory() as home:
        if opts.only != "search":
            par, seq = alternate("grid", [*grid, "--jobs", "2"], [*grid, "--jobs", "1"], pairs, home)
        if opts.only != "grid":
            pruned, full = alternate("search", [*search, "--jobs", "2", "--pruner", "median"],
                                     [*search, "--jobs", "2", "--pruner", "none"], pairs, home)

    def med(rows, i=0):
        return statistics.median(r[i] for r in rows)

    print("| comparison | A: median s | B: median s | A / B | target | runs A/B s (load average before) |")
    print("|---|---|---|---|---|---|")
    for name, a, b, target in ((f"grid of {len(grid_lrs) * 2}: A --jobs 2, B --jobs 1", par, seq, 0.60),
                               (f"search {search_n}: A median pruner, B none", pruned, full, 0.60)):
        if not a:
            continue
        ratio = med(a) / med(b)
        runs = " ".join(f"{x[0]:.1f}/{y[0]:.1f} (load {x[3]:.1f}/{y[3]:.1f})" for x, y in zip(a, b))
        print(f"| {name} | {med(a):.1f} | {med(b):.1f} | {ratio:.2f} | <= {target:.2f} "
              f"{'met' if ratio <= target else 'NOT met'} | {runs} |")
    if not pruned:
        return
    print("\n| search | best val acc % per run | median | its test acc % (scored once) | trials pruned per run |")
    print("|---|---|---|---|---|")
    for name, rows in (("median pruner", pruned), ("no pruner", full)):
        print(f"| {name} | {' '.join(f'{r[1]:.2f}' for r in rows)} | {med(rows, 1):.2f} | "
              f"{' '.join(f'{r[4]:.2f}' for r in rows)} | {' '.join(str(r[2]) for r in rows)} |")
    gap = med(full, 1) - med(pruned, 1)
    print(f"\nbest with pruning is {gap:.2f} pt below the best without, on the validation split (target: within "
          f"0.3 pt: {'met' if gap <= 0.3 else 'NOT met'})")


if __name__ == "__main__":
    main()
