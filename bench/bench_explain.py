"""Which connections the window draws: the old ranking against relevance.

    python bench/bench_explain.py              # default network, 2 epochs, 200 test digits
    python bench/bench_explain.py --quick      # seconds: smoke run on the bundled sample

Trains the default network (784-1024-512-10, adam) for 2 epochs with `trainer.Trainer` on
../shared/data/mnist (the bundled 5,000-digit sample when that folder is missing), then for
each of the first 200 test digits draws k = 60 lines per layer pair, explaining the
predicted class, in two ways:

  contribution  view_model.strongest_connections(weights, acts, k, "contribution"), the
                ranking the window used: |a_i W_ij| whatever neuron j does;
  relevance     lrp.top_edges of lrp.relevance: |R(i -> j)|, the share of the
                class score that flows along the edge (LRP).

and counts the lines that end at a switched-off neuron (ReLU output 0: nothing flows
there, so such a line explains nothing about this prediction). "share of relevance carried" is the
fraction of the pair's total edge relevance |R(i -> j)| that the k drawn lines carry (for the
contribution ranking: its lines' edges looked up in the same relevance matrix). An extra row
gives the input pair under the z+ rule instead of z^B (see explain.py). The time is the median
of relevance + top_edges per digit with one BLAS thread (the window's setting). A second table
times projection.pca_2d on the hidden activations of a balanced subset of 2,000 test digits,
and a third the window's whole map build (P) with its peak NumPy memory.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mnist_live.data_loader import load_dataset  # noqa: E402
from mnist_live.explain import dreams, lrp, neurons, projection  # noqa: E402
from mnist_live.neural_network import to_float  # noqa: E402
from mnist_live.training.config import Config  # noqa: E402
from mnist_live.training.trainer import Trainer  # noqa: E402
from mnist_live.window.view_model import strongest_connections

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "mnist"


def train(quick):
    if quick:
        data = load_dataset("mnist", offline=True)
        cfg = Config(hidden=(256, 128), epochs=1)
    elif SHARED.exists():
        data = load_dataset("mnist", data_dir=str(SHARED))
        cfg = Config(epochs=2)
    else:
        print(f"note: {SHARED} not found: training on the bundled 5,000-digit sample instead")
        data = load_dataset("mnist", offline=True)
        cfg = Config(epochs=2)
    trainer = Trainer(cfg, data.x_train, data.y_train)
    t0 = time.perf_counter()
    while not trainer.finished:
        trainer.train_batch()
    net = trainer.net
    acc = float((net.predict(data.x_test) == data.y_test).mean())
    print(f"trained {'-'.join(map(str, net.sizes))} ({cfg.optimizer}, {cfg.epochs} epochs, "
          f"{len(data.x_train):,} digits) in {time.perf_counter() - t0:.1f} s: test accuracy {100 * acc:.2f} %")
    return net, data


def measure(net, x_test, n, k):
    L = net.n_layers
    off = {"contribution": np.zeros(L), "relevance": np.zeros(L)}    # lines ending at off neurons
    lines = {"contribution": np.zeros(L), "relevance": np.zeros(L)}
    carried = {"contribution": np.zeros(L), "relevance": np.zeros(L)}
    times, old_times = [], []
    cov_sum = np.zeros(L)
    zp = {"off": 0, "lines": 0, "carried": 0.0}       # input -> h1 under the z+ rule instead of z^B
    with threadpool_limits(1, user_api="blas"):
        for x in to_float(x_test[:n]):
            acts = net.forward(x, return_all=True)
            target = int(acts[-1].argmax())
            t0 = time.perf_counter()
            old = strongest_connections(net.weights, acts[:-1], k, "contribution")
            t1 = time.perf_counter()
            rel = lrp.relevance(net, x, target)
            new, coverage = lrp.top_edges(net, acts, rel, k)
            t2 = time.perf_counter()
            old_times.append(t1 - t0)
            times.append(t2 - t1)
            rel_zp = lrp.relevance(net, x, target, input_rule="z+")
            zp_edges, zp_cov = lrp.top_edges(net, acts, rel_zp, k)
            zp["off"] += int((acts[1][zp_edges[0][1]] == 0).sum())
            zp["lines"] += len(zp_edges[0][1])
            zp["carried"] += zp_cov[0]
            for pair in range(L):
                E = np.abs(lrp.edge_relevance(net, acts, rel, pair))
                total = E.sum(dtype=np.float64)
                for name, conns in (("contribution", old), ("relevance", new)):
                    src, dst, _ = conns[pair]
                    lines[name][pair] += len(dst)
                    if pair < L - 1:                      # the output layer has no ReLU
                        off[name][pair] += int((acts[pair + 1][dst] == 0).sum())
                    carried[name][pair] += E[src, dst].sum(dtype=np.float64) / total if total > 0 else 0.0
                cov_sum[pair] += coverage[pair]       # top_edges' own figure: must agree
    if not np.allclose(cov_sum, carried["relevance"], rtol=1e-3):
        raise SystemExit(f"error: top_edges coverage {cov_sum / n} disagrees with {carried['relevance'] / n}")
    return off, lines, carried, zp, np.array(times), np.array(old_times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run on the bundled sample")
    parser.add_argument("--digits", type=int, default=None, help="test digits (default 200; 20 with --quick)")
    parser.add_argument("-k", type=int, default=60, help="lines per layer pair")
    args = parser.parse_args()
    n = args.digits or (20 if args.quick else 200)
    net, data = train(args.quick)
    off, lines, carried, zp, times, old_times = measure(net, data.x_test, n, args.k)
    names = ["input"] + [f"h{i}" for i in range(1, net.n_layers)] + ["out"]
    print(f"\n{n} test digits, k = {args.k} lines per pair, explaining the predicted class\n")
    print("| layer pair | lines ending at switched-off neurons: contribution | : relevance "
          "| share of relevance carried (sum of abs R): contribution | : relevance |")
    print("|---|---|---|---|---|")
    for pair in range(net.n_layers):
        label = f"{names[pair]} -> {names[pair + 1]}"
        if pair < net.n_layers - 1:
            o = [f"{100 * off[m][pair] / max(lines[m][pair], 1):.1f} %" for m in ("contribution", "relevance")]
        else:
            o = ["n/a (no ReLU)"] * 2
        c = [f"{100 * carried[m][pair] / n:.1f} %" for m in ("contribution", "relevance")]
        print(f"| {label} | {o[0]} | {o[1]} | {c[0]} | {c[1]} |")
    print(f"| input -> h1, z+ rule for the pixels | | {100 * zp['off'] / max(zp['lines'], 1):.1f} % | "
          f"| {100 * zp['carried'] / n:.1f} % |")
    ms = 1e3 * times
    print(f"\nrelevance + top_edges per digit, 1 BLAS thread: median {np.median(ms):.2f} ms, "
          f"p90 {np.percentile(ms, 90):.2f} ms (strongest_connections alone: median "
          f"{1e3 * np.median(old_times):.2f} ms)")

    preferences(net, data.x_test, 50 if args.quick else 200)
    dream_figures(net, data)
    projections(net, data, 200 if args.quick else 2000)


def preferences(net, x_test, n):
    """How often neurons.preferred_class, a property of the weights alone, names the class a
    neuron supports most on data: the class c with the largest mean relevance R_j for logit
    c over n test digits (neurons never on for them are left out). With on-rates: the
    fraction of digits each neuron is on, from a NeuronStats sweep over the next 1,000."""
    L = net.n_layers
    mean_rel = [np.zeros((n_h, net.sizes[-1])) for n_h in net.sizes[1:-1]]
    ever_on = [np.zeros(n_h, bool) for n_h in net.sizes[1:-1]]
    stats = neurons.NeuronStats(net.sizes[1:-1])
    with threadpool_limits(1, user_api="blas"):
        for x in to_float(x_test[:n]):
            for c in range(net.sizes[-1]):
                rel = lrp.relevance(net, x, c)
                for layer in range(L - 1):
                    mean_rel[layer][:, c] += rel.neurons[layer + 1]
            for layer, a in enumerate(net.forward(x, return_all=True)[1:-1]):
                ever_on[layer] |= a > 0
        sweep = to_float(x_test[n:n + 1000])
        stats.update(sweep, net.forward(sweep, return_all=True)[1:-1], np.arange(n, n + len(sweep)))
    rules = {"weights alone": neurons.preferred_class(net),
             "with on-rates": neurons.preferred_class(net, stats.on_rates())}
    print(f"\n| hidden layer | neurons on for some of {n} digits | preferred_class = class of largest "
          "mean relevance: weights alone | : with on-rates |")
    print("|---|---|---|---|")
    for layer in range(L - 1):
        on, truth = ever_on[layer], mean_rel[layer].argmax(axis=1)
        agree = [f"{100 * (pref[layer][on] == truth[on]).mean():.1f} %" for pref in rules.values()]
        print(f"| h{layer + 1} | {on.sum()} of {len(on)} | {agree[0]} | {agree[1]} |")


def dream_figures(net, data):
    """dreams.dream with its defaults (60 steps) for every class: how sure the network is of
    the result, its ink against real digits', and the time per step (1 BLAS thread)."""
    probs, ink, times = [], [], []
    with threadpool_limits(1, user_api="blas"):
        for c in range(net.sizes[-1]):
            t0 = time.perf_counter()
            x = list(dreams.dream(net, c))[-1]
            times.append((time.perf_counter() - t0) / 60)
            probs.append(float(net.forward(x)[c]))
            ink.append(float(x.mean()))
    real = float(to_float(data.x_test[:1000]).mean())
    print("\n| dream, 60 steps, per class | probability of the class: min | : median | mean ink (test digits "
          f"{real:.2f}) | ms per step |")
    print("|---|---|---|---|---|")
    print(f"| 10 classes | {min(probs):.3f} | {np.median(probs):.3f} | {np.mean(ink):.2f} "
          f"| {1e3 * np.median(times):.2f} |")


def projections(net, data, n):
    """Time of projection.pca_2d on hidden activations of a balanced test subset, 1 BLAS thread."""
    idx = projection.balanced_subset(data.y_test, n)
    acts = net.forward(to_float(data.x_test[idx]), return_all=True)
    print("\n| pca_2d of | points x dims | time ms | aligned to the previous projection: time ms |")
    print("|---|---|---|---|")
    with threadpool_limits(1, user_api="blas"):
        for layer in range(1, net.n_layers):
            A = acts[layer]
            t0 = time.perf_counter()
            Y = projection.pca_2d(A)
            t1 = time.perf_counter()
            projection.pca_2d(A * 1.01, previous=Y)
            t2 = time.perf_counter()
            print(f"| h{layer} activations | {A.shape[0]} x {A.shape[1]} | {1e3 * (t1 - t0):.0f} "
                  f"| {1e3 * (t2 - t1):.0f} |")
        A = acts[1] - acts[1].mean(axis=0)
        t0 = time.perf_counter()
        np.linalg.eigh((A.T @ A).astype(np.float64))       # what pca_2d avoids: every eigenpair
        print(f"| for comparison: covariance + numpy.linalg.eigh, h1 | {A.shape[0]} x {A.shape[1]} "
              f"| {1e3 * (time.perf_counter() - t0):.0f} | |")
    map_builds(net, data, n)


def map_builds(net, data, n):
    """The window's map (view_model.RepresentationMap): a whole build, chunk by chunk, then the
    fit, first and aligned to the build before; its time and the peak of NumPy's memory
    during it (tracemalloc, which NumPy reports its buffers to), 1 BLAS thread."""
    import tracemalloc

    from mnist_live.neural_network import MLP
    from mnist_live.window.view_model import RepresentationMap
    m = RepresentationMap(lambda: MLP(net.sizes, net.activation), data.x_test, data.y_test, n=n)
    print("\n| map build (P) of | time ms: first | aligned | peak NumPy memory MB: first | aligned |")
    print("|---|---|---|---|---|")
    tracemalloc.start()
    with threadpool_limits(1, user_api="blas"):
        for layer in range(net.n_layers - 1):
            row = []
            for stamp in (2 * layer, 2 * layer + 1):            # a new layer, then the same one aligned
                m.start(net.weights, net.biases, stamp, layer)
                tracemalloc.reset_peak()
                base, t0 = tracemalloc.get_traced_memory()[0], time.perf_counter()
                while not m.step():
                    pass
                row.append((1e3 * (time.perf_counter() - t0), (tracemalloc.get_traced_memory()[1] - base) / 2**20))
            print(f"| h{layer + 1} | {row[0][0]:.0f} | {row[1][0]:.0f} | {row[0][1]:.1f} | {row[1][1]:.1f} |")
    tracemalloc.stop()


if __name__ == "__main__":
    main()
