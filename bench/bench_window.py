"""Window benchmarks: frame times while training, training throughput with the window
open against headless (measured alternately), idle CPU, launch to first frame, memory,
and the same frame times in a real X window when Xvfb is installed.

    python bench/bench_window.py                 # full table (several minutes)
    python bench/bench_window.py --quick         # smoke run in seconds (also used by a test)

Runs the real app (`main.py`) as a user would. The data is the original MNIST files from
../shared/data/mnist, written once into a temporary OpenML cache so the launches measure
the cached path a returning user gets; without ../shared it falls back to the bundled
sample (--offline).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "mnist"
TICK = os.sysconf("SC_CLK_TCK")


def descendants(pid):
    """pid and all its descendants (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_pss_kb(pid):
    """Proportional set size of a process and its descendants (shared memory counted once)."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except OSError:
            pass
    return total


def cpu_seconds(pid):
    """user + system CPU seconds of one process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run_app(args, data_args, env, sample_memory=False, root=ROOT):
    """Run main.py (of the checkout `root`) with --metrics; returns (metrics dict, peak PSS
    MiB or None, wall s)."""
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "m.json"
        cmd = [sys.executable, str(Path(root) / "main.py"), *data_args, *args, "--metrics", str(metrics)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = [0]
        if sample_memory:
            def poll():
                while proc.poll() is None:
                    peak[0] = max(peak[0], tree_pss_kb(proc.pid))
                    time.sleep(0.2)
            threading.Thread(target=poll, daemon=True).start()
        out, err = proc.communicate()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"main.py failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
        return json.loads(metrics.read_text()), (peak[0] / 1024 if sample_memory else None), wall


def first_launch(env, seconds=4.0):
    """A first launch with an empty data folder (no cache): the window opens on the bundled
    sample while the full set is fetched in the background (here offline, so the fetch
    fails in the background). Returns (first_frame_s, data source shown)."""
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "m.json"
        proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--data-home", home, "--metrics", str(metrics)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(seconds)
        proc.send_signal(signal.SIGTERM)                  # ends the run like Ctrl+C; metrics are written
        proc.communicate(timeout=30)
        m = json.loads(metrics.read_text())
        return m["first_frame_s"], m["dataset"]["source"]


def idle_cpu(data_args, env, settle_s, measure_s):
    """% of one core used by the window and by its (paused) trainer while nothing changes."""
    cmd = [sys.executable, str(ROOT / "main.py"), *data_args, "--no-train"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(settle_s)                       # launch, first frames, the test-set pass
        pids = descendants(proc.pid)
        trainer = [p for p in pids[1:] if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        before = {p: cpu_seconds(p) for p in [proc.pid] + trainer}
        time.sleep(measure_s)
        used = {p: cpu_seconds(p) - before[p] for p in before}
    finally:
        proc.send_signal(signal.SIGTERM)      # like Ctrl+C (SIGINT is ignored in background jobs)
        proc.wait(20)
    window = 100 * used[proc.pid] / measure_s
    worker = 100 * sum(used[p] for p in trainer) / measure_s
    return window, worker


class Xvfb:
    """A virtual X server for the real-window figures (None when Xvfb is not installed)."""

    def __enter__(self):
        # a display nobody else uses (two benchmarks on one display would type into each other's windows)
        n = next(n for n in range(57, 200) if not os.path.exists(f"/tmp/.X{n}-lock")
                 and not os.path.exists(f"/tmp/.X11-unix/X{n}"))
        self.display = f":{n}"
        self.proc = subprocess.Popen(["Xvfb", self.display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(5)


def prepare_cache(data_home, data_dir=SHARED):
    """Write the OpenML cache from the original IDX files, as a first launch would."""
    from mnist_live import data_loader
    data = data_loader.load_dataset("mnist", data_dir=str(data_dir), log=lambda *a: None)
    path = data_loader.cache_path("mnist", data_home)
    path.parent.mkdir(parents=True, exist_ok=True)
    data_loader.atomic_save_npz(path, {k: getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")})


def frame_row(label, m, headless=None):
    ratio = f"{100 * m['train_samples_per_s'] / headless:.0f} %" if headless else "-"
    return (f"| {label} | {m['frame_ms_p50']:.1f} | {m['frame_ms_p95']:.1f} | {m['frame_ms_p99']:.1f} | "
            f"{m['fps']:.1f} | {m['train_samples_per_s']:,.0f} | {ratio} |")


def xvfb_rows(data_args, env, frames, repeats, before=None, sizes=((1280, 720), (1600, 900)), view=None):
    """The real X window while training, at each size: headless, this code's window and (with
    `before`, another checkout) the earlier code's window, run alternately, `repeats` rounds;
    `view`: this code's window opens on that view of learning (--start-view; the earlier code
    without the option shows its network view). Prints a table row per run and the medians."""
    ms = lambda m, k: "-" if m.get(k) is None else f"{m[k]:.1f}"                          # noqa: E731
    print("| code | window | frame p50 ms | frame p95 ms | draw p95 ms | push p95 ms | pushed | FPS "
          "| train samples/s | vs headless |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    codes = [("this", ROOT)] + ([("before", Path(before))] if before else [])
    got = {}
    for rnd in range(repeats):
        for w, h in sizes:
            head, _, _ = run_app(["--headless", "--epochs", "1", "--no-runs"], data_args, env)
            for name, root in (codes if rnd % 2 == 0 else codes[::-1]):           # alternate the order too
                extra = ["--no-runs", *(["--start-view", view] if view else [])] if name == "this" else []
                m, _, _ = run_app(["--frames", str(frames), "--width", str(w), "--height", str(h), *extra],
                                  data_args, env, root=root)
                ratio = m["train_samples_per_s"] / head["train_samples_per_s"]
                got.setdefault((name, w), []).append((m, ratio))
                share = "-" if m.get("push_share") is None else f"{100 * m['push_share']:.0f} %"
                print(f"| {name} | {w}x{h} | {m['frame_ms_p50']:.1f} | {m['frame_ms_p95']:.1f} "
                      f"| {ms(m, 'draw_ms_p95')} | {ms(m, 'push_ms_p95')} | {share} | {m['fps']:.1f} "
                      f"| {m['train_samples_per_s']:,.0f} "
                      f"| {100 * ratio:.0f} % |", flush=True)
    print()
    for (name, w), runs in got.items():
        p95 = statistics.median(m["frame_ms_p95"] for m, _ in runs)
        ratio = statistics.median(r for _, r in runs)
        print(f"{name} code at width {w}: median frame p95 {p95:.1f} ms, window/headless {100 * ratio:.0f} % "
              f"(each: {', '.join(f'{100 * r:.0f} %' for _, r in runs)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--frames", type=int, default=900, help="frames per window run (default 900 = 15 s)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating headless/window pairs, and launches")
    ap.add_argument("--xvfb", action="store_true",
                    help="only the real-X-window rows (Xvfb) at 1280x720 and 1600x900 while training, "
                         "with headless runs between them for the throughput ratio")
    ap.add_argument("--before", metavar="DIR",
                    help="with --xvfb: also run the window of another checkout (e.g. a worktree of an "
                         "earlier commit), alternating with this one")
    ap.add_argument("--data-dir", metavar="DIR", default=str(SHARED),
                    help="the MNIST IDX files (default: ../shared/data/mnist; without them: the bundled sample)")
    ap.add_argument("--view", choices=("backward", "updates", "health"),
                    help="with --xvfb: the window opens on this view of learning (--start-view) in every run, "
                         "this code's and --before's alike when it has the option")
    ap.add_argument("--full", action="store_true",
                    help="also measure peak memory over a full default run (10 epochs) with the window")
    args = ap.parse_args()
    dummy = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    frames = 30 if args.quick else args.frames
    repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as home:
        if Path(args.data_dir).exists():
            prepare_cache(home, args.data_dir)
            data_args = ["--data-home", home]
            source = "MNIST 60k/10k from the OpenML cache"
        else:
            data_args = ["--offline"]
            source = "bundled 5k/1k sample (../shared/data/mnist not found)"
        if args.quick:
            data_args += ["--train-size", "2000", "--test-size", "500"]
        if args.xvfb:
            if not shutil.which("Xvfb"):
                raise SystemExit("error: Xvfb is not installed (apt-get install xvfb)")
            print(f"data: {source}; {frames} frames per window run, real X window (Xvfb), while training\n")
            with Xvfb() as x:
                env = {k: v for k, v in dummy.items() if k != "SDL_VIDEODRIVER"}
                env["DISPLAY"] = x.display
                xvfb_rows(data_args, env, frames, repeats, args.before, view=args.view)
            return
        print(f"data: {source}; {frames} frames per window run at 1600x900\n")

        # throughput: headless and window runs alternate, so a drifting machine hits both
        pairs = []
        for _ in range(repeats):
            h, _, _ = run_app(["--headless", "--epochs", "1"], data_args, dummy)
            w, peak, _ = run_app(["--frames", str(frames)], data_args, dummy, sample_memory=True)
            pairs.append((h["train_samples_per_s"], w, peak))
        rows = []
        for k in ([] if args.quick else [2000, 5000]):
            m, _, _ = run_app(["--frames", str(frames), "--connections", str(k)], data_args, dummy)
            rows.append((k, m))
        window_idle = idle_cpu(data_args, dummy, 4 if args.quick else 8, 3 if args.quick else 10)
        starts = sorted(run_app(["--frames", "2", "--no-train"], data_args, dummy)[0]["first_frame_s"]
                        for _ in range(repeats))
        firsts = sorted(first_launch(dummy)[0] for _ in range(repeats))
        real = None
        if shutil.which("Xvfb") and not args.quick:
            with Xvfb() as x:
                env = {k: v for k, v in dummy.items() if k != "SDL_VIDEODRIVER"}
                env["DISPLAY"] = x.display
                real = run_app(["--frames", str(frames)], data_args, env)[0], idle_cpu(data_args, env, 6, 6), \
                    sorted(first_launch(env)[0] for _ in range(repeats))
        full = None
        if args.full:
            with tempfile.TemporaryDirectory() as tmp:
                full = run_app(["--screenshot", str(Path(tmp) / "end.png")], data_args, dummy, sample_memory=True)

    print("| run (dummy video driver unless said) | frame p50 ms | frame p95 ms | frame p99 ms | FPS "
          "| train samples/s (window) | vs headless |")
    print("|---|---|---|---|---|---|---|")
    for i, (h, w, _) in enumerate(pairs):
        print(frame_row(f"K=60, pair {i + 1} (headless {h:,.0f}/s)", w, h))
    for k, m in rows:
        print(frame_row(f"K={k}", m, statistics.median(h for h, _, _ in pairs)))
    if real is not None:
        print(frame_row("K=60, real X window (Xvfb)", real[0], statistics.median(h for h, _, _ in pairs)))
    ratios = [w["train_samples_per_s"] / h for h, w, _ in pairs]
    print(f"\nwindow throughput / headless, alternating pairs: median {100 * statistics.median(ratios):.0f} % "
          f"(each: {', '.join(f'{100 * r:.0f} %' for r in ratios)})")
    print(f"idle CPU (--no-train, nothing changing, dummy driver): window {window_idle[0]:.1f} %, "
          f"trainer {window_idle[1]:.1f} % of one core")
    if real is not None:
        print(f"idle CPU in a real X window (Xvfb): window {real[1][0]:.1f} %, trainer {real[1][1]:.1f} % of one core")
        print(f"first launch, empty data folder, real X window (Xvfb): first frame after median "
              f"{real[2][len(real[2]) // 2]:.2f} s (min {real[2][0]:.2f}, max {real[2][-1]:.2f})")
    else:
        why = "--quick" if args.quick else "Xvfb not installed: apt-get install xvfb"
        print(f"real X window: skipped ({why})")
    print(f"launch to first frame (cached data, --no-train): median {starts[len(starts) // 2]:.2f} s "
          f"over {len(starts)} launches (min {starts[0]:.2f}, max {starts[-1]:.2f})")
    print(f"first launch, empty data folder (window on the bundled sample, full set fetched in the background): "
          f"first frame after median {firsts[len(firsts) // 2]:.2f} s over {len(firsts)} launches "
          f"(min {firsts[0]:.2f}, max {firsts[-1]:.2f})")
    print(f"peak memory (PSS of window + training process), K=60 runs of {frames} frames: "
          f"{max(p for _, _, p in pairs):.0f} MiB")
    if full is not None:
        m, peak, wall = full
        print(f"full default run with the window: peak {peak:.0f} MiB, {m['epochs_completed']} epochs in {wall:.0f} s, "
              f"test accuracy {100 * m['test_accuracy']:.2f} %, {m['train_samples_per_s']:,.0f} samples/s")
    print("\nframe time = events + update + draw + flip of a drawn frame (the 60 FPS cap's sleep excluded);"
          " targets: p95 <= 16.7 ms, window throughput >= 75 % of headless, idle CPU <= 5 %,"
          " first frame <= 0.6 s (cached), <= 1.5 s (first launch)")


if __name__ == "__main__":
    main()
