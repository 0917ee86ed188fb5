"""One full training epoch on MNIST, this engine against PyTorch CPU, each in its own process.

    python bench/bench_epoch.py                          # adam and sgd, 5 alternating rounds
    python bench/bench_epoch.py --optimizers adam --rounds 3 --threads 1
    python bench/bench_epoch.py --hidden 64 --engines ours --threads 1,2   # one BLAS thread against two
    python bench/bench_epoch.py --quick                  # bundled sample, a few seconds (smoke test)
    python bench/bench_epoch.py --engines ours,base --baseline DIR    # against another checkout

What is timed: one epoch of the 60,000 training images in a fresh process, from the first
mini-batch to the last, with the data loop each side would use:
- ours: `Trainer.train_batch()` as the app calls it (the epoch's permutation, the uint8
  batch gathered and converted to float32, the training step, the divergence check);
- PyTorch (only when `import torch` works; never a dependency of the app): the same
  network (He-normal weights, zero biases, ReLU, softmax cross-entropy), `torch.randperm`,
  the uint8 batch indexed from a tensor and converted with `.float().div_(255)`, then
  zero_grad, forward, backward and `torch.optim.Adam` / `torch.optim.SGD` with their
  defaults (`--torch-fused` asks for fused=True).
Then the test set's evaluation pass is timed on its own (ours: `trainer.evaluate`;
PyTorch: the forward pass under no_grad in 2,000-row chunks).

`--baseline DIR` adds the engine "base": this script's `ours` run on the package in DIR
(a folder holding another checkout as `DIR/mnist_live`, e.g. `git archive COMMIT` unpacked
there), for measuring a change against the commit before it.

Rounds alternate engines (ours, torch, ours, torch, ...) and settings, each a new process
with the BLAS (and torch) thread count given; the tables quote medians and the range.

The machine may be shared, and a two-thread run slows by 2-10x (both engines) when another
process takes a core. So each run first waits until the machine has been idle for a second
(at most --wait s), and /proc/stat tells how much CPU other processes used during the run:
a run during which they used more than --max-other of a core is thrown away and run again
(up to 3 times; the table counts the runs kept and the worst share of those). The load
average is printed with each round as well.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from idle import others_share, reading, wait_idle  # noqa: E402  (bench/ is the script's folder)

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "mnist"
LR = {"sgd": 0.1, "momentum": 0.05, "adam": 1e-3}     # the app's defaults


def load():
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _data(quick):
    from mnist_live.data_loader import load_idx_dir, load_sample
    if quick or not SHARED.is_dir():
        return load_sample("mnist")
    return load_idx_dir("mnist", SHARED)


def child_ours(args):
    import numpy as np

    from mnist_live.training.config import Config
    from mnist_live.training.trainer import Trainer, evaluate
    data = _data(args.quick)
    cfg = Config(hidden=tuple(args.hidden), optimizer=args.optimizer, batch_size=args.batch_size,
                 epochs=10, seed=0)
    trainer = Trainer(cfg, data.x_train, data.y_train)
    n = trainer.n_batches
    t, c = time.perf_counter(), time.thread_time()
    for _ in range(n):
        stats = trainer.train_batch()
    train_s, train_cpu = time.perf_counter() - t, time.thread_time() - c
    t, c = time.perf_counter(), time.thread_time()
    ev = evaluate(trainer.net, data.x_test, data.y_test)
    eval_s, eval_cpu = time.perf_counter() - t, time.thread_time() - c
    return dict(samples=len(data.x_train), train_s=train_s, eval_s=eval_s, train_cpu=train_cpu, eval_cpu=eval_cpu,
                loss=float(stats.loss), accuracy=float(ev.accuracy), numpy=np.__version__)


def child_torch(args):
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    data = _data(args.quick)
    torch.manual_seed(0)
    nn, F = torch.nn, torch.nn.functional
    sizes = [784, *args.hidden, 10]
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            lin.weight.normal_(0.0, float(np.sqrt(2.0 / fan_in)))
            lin.bias.zero_()
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    extra = {"fused": True} if args.torch_fused else {}
    if args.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=LR["adam"], **extra)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=LR[args.optimizer],
                              momentum=0.9 if args.optimizer == "momentum" else 0.0, **extra)
    x = torch.from_numpy(data.x_train)                     # (N, 784) uint8
    y = torch.from_numpy(data.y_train.astype(np.int64))    # (N,)
    B, N = args.batch_size, len(x)
    t, c = time.perf_counter(), time.thread_time()
    perm = torch.randperm(N)
    for s in range(0, N, B):
        idx = perm[s:s + B]
        xb = x[idx].float().div_(255)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), y[idx])
        loss.backward()
        opt.step()
    loss = float(loss.detach())
    train_s, train_cpu = time.perf_counter() - t, time.thread_time() - c
    t, c = time.perf_counter(), time.thread_time()
    correct = 0
    with torch.no_grad():
        xt, yt = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test.astype(np.int64))
        for s in range(0, len(xt), 2000):
            correct += int((model(xt[s:s + 2000].float().div_(255)).argmax(1) == yt[s:s + 2000]).sum())
    eval_s, eval_cpu = time.perf_counter() - t, time.thread_time() - c
    return dict(samples=N, train_s=train_s, eval_s=eval_s, train_cpu=train_cpu, eval_cpu=eval_cpu, loss=loss,
                accuracy=correct / len(xt), torch=torch.__version__)


def run_child(engine, optimizer, threads, args):
    env = dict(os.environ)
    if engine == "base":
        engine, env["PYTHONPATH"] = "ours", args.baseline
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, __file__, "--child", engine, "--optimizer", optimizer, "--threads", str(threads),
           "--batch-size", str(args.batch_size), "--hidden", *map(str, args.hidden)]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--torch-fused"] if args.torch_fused else []
    for _attempt in range(3):
        wait_idle(args.wait)
        start = reading()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{engine} failed:\n{out.stderr}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["other"] = others_share(start)
        if result["other"] <= args.max_other:
            break
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--optimizers", default="adam,sgd", metavar="K,K")
    ap.add_argument("--engines", default="ours,torch", metavar="E,E", help="ours, torch and/or base")
    ap.add_argument("--baseline", metavar="DIR", help="the folder whose mnist_live the engine 'base' runs")
    ap.add_argument("--threads", default="2", metavar="N,N",
                    help="BLAS (and torch) thread counts to alternate (default 2)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--hidden", type=int, nargs="+", default=[1024, 512])
    ap.add_argument("--torch-fused", action="store_true", help="torch optimizers with fused=True")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: time by the main thread's CPU time, which other processes on a busy machine "
                         "do not inflate; only with --threads 1")
    ap.add_argument("--max-other", type=float, default=0.05, metavar="F",
                    help="run again when other processes used more than F of a core during it (default 0.05)")
    ap.add_argument("--wait", type=float, default=60, metavar="S",
                    help="wait at most S s for an idle machine before each run (default 60)")
    ap.add_argument("--quick", action="store_true", help="the bundled sample, 1 round (smoke test)")
    ap.add_argument("--child", choices=("ours", "torch"), help=argparse.SUPPRESS)
    ap.add_argument("--optimizer", default="adam", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.threads = int(args.threads)
        result = (child_ours if args.child == "ours" else child_torch)(args)
        print(json.dumps(result))
        return
    engines = args.engines.split(",")
    if "base" in engines and not args.baseline:
        ap.error("the engine 'base' needs --baseline DIR")
    if "torch" in engines:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch not installed: ours only (a CPU build of PyTorch compares; a plain "
                  "`pip install torch` may fetch a multi-GB CUDA build)")
            engines = [e for e in engines if e != "torch"]
    threads = [int(t) for t in args.threads.split(",")]
    if args.clock == "cpu" and threads != [1]:
        ap.error("--clock cpu needs --threads 1 (the work of other threads is not counted)")
    if args.clock == "cpu":
        args.wait, args.max_other = 0, float("inf")
    rounds = 1 if args.quick else args.rounds
    if args.quick:
        args.wait = 0
    data = "bundled sample" if args.quick or not SHARED.is_dir() else str(SHARED)
    sizes = "-".join(map(str, [784, *args.hidden, 10]))
    print(f"# One training epoch, {sizes} ReLU float32, batch {args.batch_size}, data: {data}")
    print(f"- {rounds} alternating round(s); each run a new process; timed by "
          f"{'the main thread CPU time' if args.clock == 'cpu' else 'wall clock'}; load average before: {load()}")
    results = {}
    for r in range(rounds):
        line = []
        for kind in args.optimizers.split(","):
            for n in threads:
                for engine in engines:
                    res = run_child(engine, kind, n, args)
                    cpu = args.clock == "cpu"
                    rate = res["samples"] / res["train_cpu" if cpu else "train_s"]
                    results.setdefault((kind, n, engine), []).append(
                        (rate, res["eval_cpu" if cpu else "eval_s"], res["accuracy"], res["other"]))
                    line.append(f"{engine}/{kind}/{n}t {rate:,.0f}/s (others {100 * res['other']:.0f} %)")
        print(f"- round {r + 1}: " + ", ".join(line) + f"; load {load()}", flush=True)
    print(f"- load average after: {load()}\n")
    import numpy as np
    print("| optimizer | BLAS threads | engine | samples/s (median) | range | epoch s | eval pass s "
          "| test acc. after 1 epoch | others' CPU, worst | ours / other |")
    print("|---|---:|---|---:|---|---:|---:|---:|---:|---:|")
    for (kind, n, engine), rows in results.items():
        rates = [r[0] for r in rows]
        med = float(np.median(rates))
        ratio = ""
        for ref in ("torch", "base"):
            other = results.get((kind, n, ref))
            if engine == "ours" and other:
                ratio += f"{med / float(np.median([r[0] for r in other])):.2f}x ({ref}) "
        print(f"| {kind} | {n} | {engine} | {med:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} "
              f"| {60000 / med:.2f} | {np.median([r[1] for r in rows]):.3f} "
              f"| {100 * np.median([r[2] for r in rows]):.2f} % | {100 * max(r[3] for r in rows):.0f} % "
              f"| {ratio} |")


if __name__ == "__main__":
    main()
