"""Window benchmarks: frame times while training, throughput with the window open vs
headless, launch-to-first-frame with cached data, and peak memory (PSS) of the app.

    python bench/bench_window.py                 # full table (a few minutes)
    python bench/bench_window.py --quick         # smoke run in seconds (also used by a test)

Runs the real app (`main.py`) as a user would, with SDL's dummy video driver. The data is
the original MNIST files from ../shared/data/mnist, written once into a temporary OpenML
cache so the launches measure the cached path a returning user gets; without ../shared
it falls back to the bundled sample (--offline).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "mnist"


def tree_pss_kb(pid):
    """Proportional set size of a process and all its descendants (shared memory counted once)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def run_app(args, data_args, env, sample_memory=False):
    """Run main.py with --metrics; returns (metrics dict, peak PSS MiB or None, wall s)."""
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "m.json"
        cmd = [sys.executable, str(ROOT / "main.py"), *data_args, *args, "--metrics", str(metrics)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = [0]
        if sample_memory:
            def poll():
                while proc.poll() is None:
                    peak[0] = max(peak[0], tree_pss_kb(proc.pid))
                    time.sleep(0.2)
            t = threading.Thread(target=poll, daemon=True)
            t.start()
        out, err = proc.communicate()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"main.py failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
        return json.loads(metrics.read_text()), (peak[0] / 1024 if sample_memory else None), wall


def prepare_cache(data_home):
    """Write the OpenML cache from the original IDX files, as a first launch would."""
    import data_loader
    data = data_loader.load_dataset("mnist", data_dir=str(SHARED), log=lambda *a: None)
    path = data_loader.cache_path("mnist", data_home)
    path.parent.mkdir(parents=True, exist_ok=True)
    data_loader.atomic_save_npz(path, {k: getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--frames", type=int, default=900, help="frames per window run (default 900 = 15 s)")
    ap.add_argument("--repeats", type=int, default=3, help="launches for the start-up figure")
    ap.add_argument("--full", action="store_true",
                    help="also measure peak memory over a full default run (10 epochs) with the window")
    args = ap.parse_args()
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    frames = 30 if args.quick else args.frames
    with tempfile.TemporaryDirectory() as home:
        if SHARED.exists():
            prepare_cache(home)
            data_args = ["--data-home", home]
            source = "MNIST 60k/10k from the OpenML cache"
        else:
            data_args = ["--offline"]
            source = "bundled 5k/1k sample (../shared/data/mnist not found)"
        if args.quick:
            data_args += ["--train-size", "2000", "--test-size", "500"]
        print(f"data: {source}; {frames} frames per run at 1600x900; dummy video driver\n")

        # headless reference throughput (same data, same defaults)
        headless, _, _ = run_app(["--headless", "--epochs", "1"] + (["--train-size", "2000"] if args.quick else []),
                                 data_args, env)
        rows = []
        for k in ([60] if args.quick else [60, 2000, 5000]):
            m, peak, _ = run_app(["--frames", str(frames), "--connections", str(k)], data_args, env,
                                 sample_memory=(k == 60))
            rows.append((k, m, peak))
        full = None
        if args.full:
            with tempfile.TemporaryDirectory() as tmp:
                full = run_app(["--screenshot", str(Path(tmp) / "end.png")], data_args, env, sample_memory=True)
        starts = []
        for _ in range(1 if args.quick else args.repeats):
            m, _, _ = run_app(["--frames", "2", "--no-train"], data_args, env)
            starts.append(m["first_frame_s"])

    print("| connections K | frame p50 ms | frame p95 ms | frame p99 ms | FPS | train samples/s (window) | vs headless |")
    print("|---|---|---|---|---|---|---|")
    hs = headless["train_samples_per_s"]
    for k, m, _ in rows:
        ratio = m["train_samples_per_s"] / hs if hs else float("nan")
        print(f"| {k} | {m['frame_ms_p50']:.1f} | {m['frame_ms_p95']:.1f} | {m['frame_ms_p99']:.1f} | {m['fps']:.1f} | "
              f"{m['train_samples_per_s']:,.0f} | {100 * ratio:.0f} % |")
    print(f"\nheadless training: {hs:,.0f} samples/s (1 epoch, default network, batch 128)")
    starts.sort()
    print(f"launch to first frame (cached data, --no-train): median {starts[len(starts) // 2]:.2f} s "
          f"over {len(starts)} launches (min {starts[0]:.2f}, max {starts[-1]:.2f})")
    peak = rows[0][2]
    print(f"peak memory (PSS of window + training process), K=60 run of {frames} frames: {peak:.0f} MiB")
    if full is not None:
        m, peak, wall = full
        print(f"full default run with the window: peak {peak:.0f} MiB, {m['epochs_completed']} epochs in {wall:.0f} s, "
              f"test accuracy {100 * m['test_accuracy']:.2f} %, {m['train_samples_per_s']:,.0f} samples/s")
    print("\nframe time = events + update + draw + flip of one frame (the 60 FPS cap's sleep excluded);"
          " targets: p95 <= 16.7 ms, p99 <= 25 ms, window throughput >= 60 % of headless, first frame <= 1.0 s")


if __name__ == "__main__":
    main()
