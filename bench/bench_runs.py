"""The run library's costs: what recording takes from a training run, how fast
`mnist-live runs` answers with 10,000 runs in the library, and what exporting 100,000
runs takes in time and memory.

    python bench/bench_runs.py              # (a) 3 epochs on 10,000 MNIST digits, 4 pairs; (b) 10,000 runs;
                                            # (c) 100,000 runs exported
    python bench/bench_runs.py --quick      # smoke run: the bundled sample, 300 runs

(a) A real small headless run (../shared/data/mnist via --data-dir when present, else
--offline): the seconds spent inside run_recorder.RunRecorder calls (the run's metrics say, under
`run_library`) as a share of the run's wall time; then whole runs alternating with and
without recording (A B A B ...), medians.
(b) A library of N runs made in a temp folder through RunLibrary (varied hyperparameters,
one full evaluation per epoch, 100 loss points each), then the whole `python main.py runs`
process timed, median of several, also with `--where lr<0.01 --sort time98`.
(c) A library of 100,000 such runs, then `python main.py runs export --json` (to standard
output and to a file) and `--csv FILE`, each a whole process: its wall time and peak
resident memory (getrusage's ru_maxrss of the child), median of 3.
"""
from __future__ import annotations

import functools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "mnist"

from mnist_live.runs import host, schema  # noqa: E402  (after the path set-up)
from mnist_live.runs import library as run_library  # noqa: E402
from mnist_live.training.config import Config  # noqa: E402


def headless(args, tmp, record):
    """(process wall s, metrics) of one headless run."""
    metrics = Path(tmp) / "m.json"
    runs = ["--runs", str(Path(tmp) / "lib.sqlite3")] if record else ["--no-runs"]
    cmd = [sys.executable, str(ROOT / "main.py"), "--headless", *args, *runs, "--metrics", str(metrics)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or "runs not recorded" in proc.stderr:
        raise SystemExit(f"main.py failed: {proc.stderr.strip()[-500:]}")
    return wall, json.loads(metrics.read_text())


def recording_cost(args, pairs):
    print(f"(a) recording cost: python main.py --headless {' '.join(args)} (--runs FILE / --no-runs), "
          f"{pairs} pairs alternating\n")
    with_rec, without, shares, writes = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(pairs):
            wall, m = headless(args, tmp, record=True)
            lib = m["run_library"]
            with run_library.RunLibrary(lib["file"]) as rl:
                run_wall = rl.run(lib["run_id"])["wall_s"]
            shares.append((lib["recording_s"], run_wall))
            writes.append(lib["writing_s"])
            with_rec.append(wall)
            without.append(headless(args, tmp, record=False)[0])
    rec_s = statistics.median(s for s, _ in shares)
    run_s = statistics.median(w for _, w in shares)
    share = statistics.median(s / w for s, w in shares)
    a, b = statistics.median(with_rec), statistics.median(without)
    print("| measure | median | all |")
    print("|---|---|---|")
    print(f"| time inside RunRecorder calls | {1000 * rec_s:.1f} ms | "
          f"{', '.join(f'{1000 * s:.1f}' for s, _ in shares)} ms |")
    print(f"| time the background writer spent writing (its own thread) | {1000 * statistics.median(writes):.1f} ms | "
          f"{', '.join(f'{1000 * w:.1f}' for w in writes)} ms |")
    print(f"| the run's wall time (recorded) | {run_s:.2f} s | {', '.join(f'{w:.2f}' for _, w in shares)} s |")
    print(f"| **recording share of the run** | **{100 * share:.3f} %** | "
          f"{', '.join(f'{100 * s / w:.3f}' for s, w in shares)} % |")
    print(f"| whole process, recording | {a:.2f} s | {', '.join(f'{w:.2f}' for w in with_rec)} s |")
    print(f"| whole process, --no-runs | {b:.2f} s | {', '.join(f'{w:.2f}' for w in without)} s |")
    print(f"| difference (noise included) | {100 * (a - b) / b:+.1f} % | |")


def make_library(path, n, seed=0, per_transaction=1000):
    """n finished runs with plausible, varied hyperparameters and curves (stdlib random):
    one full evaluation per epoch, 100 loss points; written `per_transaction` runs at a time."""
    rnd = random.Random(seed)
    t0 = time.perf_counter()
    dataset = {"name": "mnist", "source": "bench", "train": 60000, "test": 10000}

    def add(cur, i, host):
        cfg = Config(lr=rnd.choice([0.0003, 0.001, 0.003, 0.01, 0.03]), batch_size=rnd.choice([32, 64, 128, 256]),
                     optimizer=rnd.choice(["adam", "momentum", "sgd"]), epochs=rnd.choice([2, 5, 10]),
                     hidden=rnd.choice([(1024, 512), (256,), (512, 256)]), seed=i % 7, dropout=rnd.choice([0.0, 0.2]))
        rid = schema.insert_run(cur, schema.run_row(cfg, dataset, host, trial=i % 100,
                                                              sweep=f"sweep{i // 100}" if i % 3 == 0 else None))
        top = rnd.uniform(0.95, 0.99)
        cur.executemany("INSERT INTO evaluations VALUES (?, ?, ?, 'full', ?, ?, ?, 0, ?)",
                        [(rid, e, e + 1.0, top - 0.03 / (e + 1), json.dumps([top] * 10), e + 1, 7.0 * (e + 1))
                         for e in range(cfg.epochs)])
        cur.executemany("INSERT INTO losses VALUES (?, ?, ?, ?)",
                        [(rid, k, k / 100 * cfg.epochs, 2.3 / (1 + k)) for k in range(100)])
        schema.end_run(cur, rid, "finished" if i % 20 else "diverged",
                                       test_accuracy=top - 0.03 / cfg.epochs, per_class=[top] * 10,
                                       wall_s=7.0 * cfg.epochs + 1, samples_per_s=rnd.uniform(15000, 25000))

    real_machine_info = host.machine_info
    host.machine_info = functools.cache(real_machine_info)        # one machine: asked once, not per run
    with run_library.RunLibrary(path) as lib:
        for first in range(0, n, per_transaction):
            lib.transaction(lambda cur, first=first: [add(cur, i, lib.host)
                                                      for i in range(first, min(n, first + per_transaction))])
    host.machine_info = real_machine_info
    return time.perf_counter() - t0


def timed(cmd, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return times


def query_speed(n, repeats):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "runs.sqlite3")
        made = make_library(path, n)
        size = os.path.getsize(path) + sum(os.path.getsize(path + s) for s in ("-wal",) if os.path.exists(path + s))
        print(f"\n(b) `python main.py runs` against a library of {n:,} runs ({size / 2**20:.1f} MiB, made in "
              f"{made:.1f} s), median of {repeats}\n")
        main_py = [sys.executable, str(ROOT / "main.py")]
        rows = [("python -c pass (the interpreter alone)", [sys.executable, "-c", "pass"]),
                ("python main.py runs --runs FILE", [*main_py, "runs", "--runs", path]),
                ("python main.py runs --runs FILE --where lr<0.01 --sort time98",
                 [*main_py, "runs", "--runs", path, "--where", "lr<0.01", "--sort", "time98"]),
                ("python main.py runs --runs FILE --sort batch_size --where optimizer=adam",
                 [*main_py, "runs", "--runs", path, "--sort", "batch_size", "--where", "optimizer=adam"]),
                (f"python main.py runs show {n // 2} --runs FILE",
                 [*main_py, "runs", "show", str(n // 2), "--runs", path])]
        print("| command | median s | min s | max s |")
        print("|---|---|---|---|")
        for label, cmd in rows:
            t = timed(cmd, repeats)
            print(f"| `{label}` | {statistics.median(t):.3f} | {min(t):.3f} | {max(t):.3f} |")


PEAK = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak(cmd):
    """(wall s, peak resident MiB) of the process `cmd`, its standard output thrown away."""
    t0 = time.perf_counter()
    status, kib = subprocess.run([sys.executable, "-c", PEAK, *cmd], capture_output=True, text=True,
                                 check=True).stdout.split()
    if status != "0":
        raise SystemExit(f"{' '.join(cmd)} exited {status}")
    return time.perf_counter() - t0, int(kib) / 1024          # ru_maxrss is in KiB on Linux


def export_memory(n, repeats):
    """(c) `runs export` of n runs: wall time and peak memory of the whole process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "runs.sqlite3")
        made = make_library(path, n)
        size = os.path.getsize(path) / 2**20
        print(f"\n(c) `python main.py runs export` of a library of {n:,} runs ({size:.0f} MiB, made in {made:.0f} s): "
              f"wall time and peak resident memory (ru_maxrss) of the whole process, "
              f"median of {repeats}\n")
        main_py = [sys.executable, str(ROOT / "main.py"), "runs", "export"]
        out_json, out_csv = os.path.join(tmp, "all.json"), os.path.join(tmp, "all.csv")
        rows = [("export --json - (to /dev/null)", [*main_py, "--json", "-", "--runs", path], None),
                ("export --json FILE", [*main_py, "--json", out_json, "--runs", path], out_json),
                ("export --csv FILE", [*main_py, "--csv", out_csv, "--runs", path], out_csv)]
        print("| command | median s | peak MiB (median) | peak MiB (max) | output MiB |")
        print("|---|---|---|---|---|")
        for label, cmd, out in rows:
            got = [peak(cmd) for _ in range(repeats)]
            size = f"{os.path.getsize(out) / 2**20:.0f}" if out else "-"
            print(f"| `{label}` | {statistics.median(w for w, _ in got):.1f} | "
                  f"**{statistics.median(m for _, m in got):.0f}** | {max(m for _, m in got):.0f} | {size} |")


def main():
    quick = "--quick" in sys.argv[1:]
    if quick:
        args = ["--offline", "--epochs", "1", "--hidden", "32", "--train-size", "1000", "--test-size", "200"]
        pairs, n, repeats, n_export = 1, 300, 2, 300
    else:
        data = ["--data-dir", os.path.relpath(SHARED)] if SHARED.exists() else ["--offline"]
        args = [*data, "--epochs", "3", "--train-size", "10000"]
        pairs, n, repeats, n_export = 4, 10000, 7, 100000
    recording_cost(args, pairs)
    query_speed(n, repeats)
    export_memory(n_export, 3 if not quick else 1)


if __name__ == "__main__":
    main()
