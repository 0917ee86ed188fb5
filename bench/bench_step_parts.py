"""Where a training step's time goes, on one thread, timed by CPU time.

    python bench/bench_step_parts.py            # default network, batch 128
    python bench/bench_step_parts.py --quick    # a few seconds (smoke test)

One BLAS thread and one step thread, so the main thread's CPU time is the work done, which
a busy shared machine does not inflate the way it does wall-clock time (the compiled
update's loader thread is not counted). Alternating runs,
medians. Two tables:
- the step in parts: the step's eight products alone (bench_train's GemmsOnly), the step
  computing gradients only (no optimizer), and whole steps with SGD and Adam (compiled
  update when numba is installed, else the NumPy passes), all on synthetic data;
- what cutting a product into blocks costs BLAS: the first layer's forward product
  (B, 784) @ (784, 1024) in 1, 2, 4 and 8 blocks of output columns.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bench_train import CLOCK, SIZES, GemmsOnly, make_data  # noqa: E402  (bench/ is the script's folder)
from mnist_live.engine.threads import blocks
from mnist_live.neural_network import MLP
from mnist_live.training.optimizers import Optimizer


def timed(fn, steps):
    t = time.thread_time()
    for k in range(steps):
        fn(k)
    return (time.thread_time() - t) / steps * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    steps, repeats = (3, 2) if args.quick else (args.steps, args.repeats)
    B = args.batch
    CLOCK[0] = time.thread_time
    with threadpool_limits(1):
        gem, data = GemmsOnly(B), make_data(B)
        net = MLP(SIZES, "relu", seed=0)
        grads = [np.empty_like(p) for p in net.params]
        adam, sgd = Optimizer(net.params, "adam", threads=1), Optimizer(net.params, "sgd", threads=1)

        def step(opt, lr, **kw):
            def run(k):
                x, y = data[k % len(data)]
                net.train_step(x, y, grads, opt=opt, lr=lr, **kw)
            return run
        parts = [("its eight products alone", lambda k: gem.run(1)),
                 ("step, gradients only", step(None, 0.0)),
                 ("step with SGD (update inside the products)", step(sgd, 1e-3)),
                 ("step with Adam", step(adam, 1e-3))]
        rng = np.random.default_rng(0)
        a = rng.random((B, SIZES[0]), dtype=np.float32)
        W = rng.random(SIZES[:2], dtype=np.float32)
        z = np.empty((B, SIZES[1]), np.float32)
        cuts = []
        for n in (1, 2, 4, 8):
            bounds = blocks(SIZES[1], n)

            def product(k, bounds=bounds):
                for c0, c1 in zip(bounds[:-1], bounds[1:]):
                    np.matmul(a, W[:, c0:c1], out=z[:, c0:c1])
            cuts.append((f"{n} block(s)", product))
        times = {name: [] for name, _ in parts + cuts}
        for _ in range(repeats):
            for name, fn in parts + cuts:
                fn(0)
                times[name].append(timed(fn, steps))
    adam.compiled   # noqa: B018  (waits for the compiled update if it was still loading)
    print(f"# A step's parts, {'x'.join(map(str, SIZES))} float32, batch {B}, one thread, CPU time")
    print(f"- {steps} steps x {repeats} alternating runs, medians; Adam's update "
          f"{'compiled' if adam.compiled else 'in NumPy passes'}\n")
    base = float(np.median(times[parts[0][0]]))
    print("| part | ms per step | products alone / this |")
    print("|---|---:|---:|")
    for name, _ in parts:
        ms = float(np.median(times[name]))
        print(f"| {name} | {ms:.2f} | {100 * base / ms:.0f} % |")
    print(f"\n| (B, {SIZES[0]}) @ ({SIZES[0]}, {SIZES[1]}) cut into | ms |")
    print("|---|---:|")
    for name, _ in cuts:
        print(f"| {name} | {float(np.median(times[name])):.2f} |")


if __name__ == "__main__":
    main()
