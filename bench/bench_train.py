"""Training throughput of the NumPy engine (headless), optionally against PyTorch CPU.

    python bench/bench_train.py                 # batches 64/128/256; sgd, momentum, adam
    python bench/bench_train.py --quick         # a couple of seconds: CI smoke test
    python bench/bench_train.py --threads 1 --batch-sizes 128 --batches 50

What is timed: one engine step, `MLP.train_step(..., opt=...)` as the app calls it, for
the default 784-1024-512-10 ReLU network in float32, on synthetic data (uniform [0, 1)
pixels and random labels, a few pre-made batches cycled), so data loading, augmentation
and the window are not included. Throughput does not depend on the values.

"% of GEMM peak": the useful matrix-multiply FLOPs of a step (forward 2*B*sum(fan_in*fan_out),
the weight gradients the same again, the input gradients the same without the first
layer) divided by the step time and by the FLOP/s of a large (2048^2) float32 matmul
measured in the same run with the same thread count.

"its products alone": the same eight products run back to back with np.matmul and
nothing else (GemmsOnly), timed alternately with the step. Their % of peak is the
ceiling of any engine on this BLAS at these shapes; "step / products alone" is how close
the step comes to it (it can pass 100 %: SGD folds its update into the products).

SGD and momentum use the fused path (the weight update inside the gradient product,
through NumPy's own BLAS gemm); MLP_NUMPY_GEMM=1 in the environment measures the plain
np.matmul path instead.

PyTorch (only when `import torch` works; never a dependency of the app): the same
architecture, He-normal weights and zero biases, the same batch, optimizer, learning
rate and thread count. Our runs and PyTorch runs alternate, with a short pause between
them so that one engine's spinning idle worker threads do not slow the other; every
number is a median. The machine may be shared: each timed run waits (at most --wait s)
for a second of idle machine and is repeated when other processes used more than
--max-other of a core during it (bench/idle.py); the load average is printed too.

Threads: --threads sets the BLAS (threadpoolctl) and torch thread counts. Our step then
runs on that many threads of its own (engine.threads.default_threads(), or --opt-threads)
with BLAS single-threaded inside it; "its products alone" use BLAS's own threads.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from idle import others_share, reading, wait_idle  # noqa: E402  (bench/ is the script's folder)
from mnist_live.neural_network import MLP  # noqa: E402
from mnist_live.training.optimizers import Optimizer, default_threads

SIZES = (784, 1024, 512, 10)
LR = {"sgd": 0.01, "momentum": 0.01, "adam": 1e-3}   # small enough that random labels never diverge
N_DATA_BATCHES = 4
COOL_DOWN = 0.3    # s between alternating runs (OpenBLAS workers spin ~0.1 s after a call)
CLOCK = [time.perf_counter]   # --clock cpu: time.thread_time (one thread only)


def gemm_flops_per_step(B, sizes=SIZES):
    pairs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * B * (2 * sum(pairs) + sum(pairs[1:]))


def measure_peak(n, repeats):
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    c = np.empty_like(a)
    np.matmul(a, a, out=c)
    times = []
    for _ in range(repeats):
        t = CLOCK[0]()
        np.matmul(a, a, out=c)
        times.append(CLOCK[0]() - t)
    return 2 * n ** 3 / np.median(times)


def make_data(B, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((B, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], B))
            for _ in range(N_DATA_BATCHES)]


class Ours:
    def __init__(self, kind, B, opt_threads):
        self.net = MLP(SIZES, "relu", seed=0)
        self.opt = Optimizer(self.net.params, kind, threads=opt_threads)
        self.grads = [np.empty_like(p) for p in self.net.params]
        self.data, self.lr = make_data(B), LR[kind]
        self.loss = 0.0

    def run(self, steps):
        net, opt, grads, data, lr = self.net, self.opt, self.grads, self.data, self.lr
        t = CLOCK[0]()
        for k in range(steps):
            x, y = data[k % N_DATA_BATCHES]
            self.loss, _ = net.train_step(x, y, grads, opt=opt, lr=lr)
        return CLOCK[0]() - t


class GemmsOnly:
    """The matrix products of one step and nothing else: forward a @ W, weight gradients
    a.T @ delta and input gradients delta @ W.T (not for the first layer), back to back on
    preallocated arrays with np.matmul. What a step would cost if all its other work were
    free: the ceiling for an engine built on this BLAS at these shapes."""

    def __init__(self, B):
        rng = np.random.default_rng(0)
        self.ops = []
        for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            a = rng.random((B, fan_in), dtype=np.float32)
            W = rng.random((fan_in, fan_out), dtype=np.float32)
            d = rng.random((B, fan_out), dtype=np.float32)
            self.ops.append((a, W, np.empty((B, fan_out), np.float32)))          # forward
            self.ops.append((a.T, d, np.empty((fan_in, fan_out), np.float32)))   # dW
            if i > 0:
                self.ops.append((d, W.T, np.empty((B, fan_in), np.float32)))     # d input

    def run(self, steps):
        ops = self.ops
        t = CLOCK[0]()
        for _ in range(steps):
            for a, b, out in ops:
                np.matmul(a, b, out=out)
        return CLOCK[0]() - t


class Torch:
    def __init__(self, torch, kind, B):
        nn = torch.nn
        torch.manual_seed(0)
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            lin = nn.Linear(fan_in, fan_out)
            with torch.no_grad():          # He normal, zero bias: as init_params
                lin.weight.normal_(0.0, float(np.sqrt(2.0 / fan_in)))
                lin.bias.zero_()
            layers.append(lin)
            if i < len(SIZES) - 2:
                layers.append(nn.ReLU())
        self.torch, self.model = torch, nn.Sequential(*layers)
        if kind in ("sgd", "momentum"):   # torch's momentum form is the same update at a fixed lr
            self.opt = torch.optim.SGD(self.model.parameters(), lr=LR[kind],
                                       momentum=0.9 if kind == "momentum" else 0.0)
        else:
            self.opt = torch.optim.Adam(self.model.parameters(), lr=LR[kind], betas=(0.9, 0.999), eps=1e-8)
        self.data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in make_data(B)]
        self.loss = 0.0

    def run(self, steps):
        F, model, opt, data = self.torch.nn.functional, self.model, self.opt, self.data
        t = CLOCK[0]()
        for k in range(steps):
            x, y = data[k % N_DATA_BATCHES]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        self.loss = float(loss.detach())
        return CLOCK[0]() - t


def median_rate(samples, B, steps):
    return B * steps / float(np.median(samples))


def load():
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny run (a couple of seconds, no PyTorch)")
    ap.add_argument("--batches", type=int, default=40, metavar="N",
                    help="timed training steps (mini-batches) per run (default 40)")
    ap.add_argument("--repeats", type=int, default=5, metavar="R",
                    help="alternating runs per engine; medians are reported (default 5)")
    ap.add_argument("--threads", type=int, default=None, metavar="N",
                    help="BLAS and torch threads (default: the BLAS default)")
    ap.add_argument("--opt-threads", type=int, default=None, metavar="N",
                    help="threads of our step (default: engine.threads.default_threads(), the BLAS threads)")
    ap.add_argument("--batch-sizes", default="64,128,256", metavar="B,B,..")
    ap.add_argument("--optimizers", default="sgd,momentum,adam", metavar="K,K")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: time runs by the main thread's CPU time, which other processes on a busy "
                         "machine do not inflate; only with --threads 1")
    ap.add_argument("--max-other", type=float, default=0.05, metavar="F",
                    help="repeat a run when other processes used more than F of a core during it (default 0.05)")
    ap.add_argument("--wait", type=float, default=30, metavar="S",
                    help="wait at most S s for an idle machine before each run (default 30)")
    args = ap.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.clock == "cpu":
        if args.threads != 1:
            ap.error("--clock cpu needs --threads 1 (CPU time adds up the threads)")
        CLOCK[0] = time.thread_time
    kinds = args.optimizers.split(",")
    steps, repeats, peak_n = args.batches, args.repeats, 2048
    if args.quick:
        batch_sizes, steps, repeats, peak_n = [128], 5, 2, 1024

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    threads = args.threads or (blas[0]["num_threads"] if blas else (os.cpu_count() or 1))
    torch = None
    torch_note = "skipped (--quick)" if args.quick else "skipped (--no-torch)"
    if not (args.quick or args.no_torch):
        try:
            import torch
            torch.set_num_threads(threads)
            torch_note = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
        except ImportError:
            torch_note = ("torch not installed (install a CPU build of PyTorch to compare; "
                          "a plain `pip install torch` may fetch a multi-GB CUDA build)")

    with threadpool_limits(limits=threads, user_api="blas"):
        print(f"# Training throughput, {'x'.join(map(str, SIZES))} ReLU float32, synthetic data")
        print(f"- CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
              f"load average before: {load()}")
        info = blas[0] if blas else {}
        print(f"- NumPy {np.__version__}, {info.get('internal_api', '?')} {info.get('version', '')} "
              f"({info.get('architecture', '')}); BLAS threads: {threads}; our step's threads: "
              f"{args.opt_threads or default_threads()}")
        print(f"- PyTorch: {torch_note}")
        print(f"- {steps} steps per run, {repeats} alternating runs per engine, medians; "
              f"lr {LR}; timed by {'CPU time' if args.clock == 'cpu' else 'wall clock'}")
        peaks = [measure_peak(peak_n, 5)]
        rows = []
        worst = 0.0
        for kind in kinds:
            for B in batch_sizes:
                ours, gemms = Ours(kind, B, args.opt_threads), GemmsOnly(B)
                ours.run(3)
                them = None
                if torch is not None:
                    them = Torch(torch, kind, B)
                    them.run(3)
                t_ours, t_gemms, t_them = [], [], []
                wait = 0 if args.quick else args.wait
                for _ in range(repeats):
                    for engine, times in ((gemms, t_gemms), (ours, t_ours), (them, t_them)):
                        if engine is None:
                            continue
                        if them is not None:
                            # let the other engine's idle BLAS/OpenMP workers stop
                            # spinning, so they do not steal the CPU from this run
                            time.sleep(COOL_DOWN)
                        for _attempt in range(3):    # again when other processes took CPU meanwhile
                            wait_idle(wait, 0.5)
                            engine.run(2)             # warm the caches and thread pools
                            start = reading()
                            took = engine.run(steps)
                            share = others_share(start)
                            if share <= args.max_other:
                                break
                        times.append(took)
                        worst = max(worst, share)
                if not np.isfinite(ours.loss):
                    print(f"warning: our loss is {ours.loss} ({kind}, batch {B})", file=sys.stderr)
                peaks.append(measure_peak(peak_n, 3))
                rows.append((kind, B, median_rate(t_ours, B, steps), median_rate(t_gemms, B, steps),
                             median_rate(t_them, B, steps) if t_them else None))
        peak = float(np.median(peaks))
        print(f"- float32 GEMM peak ({peak_n}^2 matmul, {threads} threads, median of "
              f"{len(peaks)} measurements through the run): {peak / 1e9:.1f} GFLOP/s")
        print(f"- load average after: {load()}; other processes used at most {100 * worst:.0f} % of a core "
              f"during a kept run (a run is repeated, up to 3 times, when they used more than "
              f"{100 * args.max_other:.0f} %)")
        print()
        print("| optimizer | batch | samples/s | s per 60k epoch | % of GEMM peak "
              "| its products alone, % of peak | step / products alone "
              "| PyTorch samples/s | ours / PyTorch |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for kind, B, rate, grate, trate in rows:
            frac, gfrac = (gemm_flops_per_step(B) * r / B / peak for r in (rate, grate))
            tcol = f"{trate:,.0f}" if trate else "n/a"
            ratio = f"{rate / trate:.2f}x" if trate else "n/a"
            print(f"| {kind} | {B} | {rate:,.0f} | {60000 / rate:.2f} | {100 * frac:.0f} % "
                  f"| {100 * gfrac:.0f} % | {100 * rate / grate:.0f} % | {tcol} | {ratio} |")
        if torch is None:
            print(f"\nPyTorch comparison: {torch_note}.")


if __name__ == "__main__":
    main()
