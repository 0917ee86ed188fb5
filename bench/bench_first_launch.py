"""The first launch after a reinstall: OpenML's responses are in scikit-learn's cache but
the app's compact cache is not, so the window opens on the bundled sample and trains on
it while the full set is parsed in the background. Measures the first frame and how long
the parse takes to make the full set ready, for this code and (with --before DIR) an
earlier checkout, launches alternating.

    python bench/bench_first_launch.py                     # 3 launches
    python bench/bench_first_launch.py --before DIR        # and DIR's main.py, alternately
    python bench/bench_first_launch.py --quick             # a small fake data set (smoke run)

The scikit-learn cache is written once from the original MNIST files (../shared/data/mnist;
without them, and with --quick, from 2,000 fake digits). Runs the real window with the
dummy video driver; the machine has no network, so the fetch takes the cached responses.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SHARED = ROOT.parent / "shared" / "data" / "mnist"


def write_sklearn_cache(home, quick):
    """scikit-learn's OpenML cache of mnist_784 in `home` (no compact cache); returns the rows."""
    import numpy as np

    import fixtures_openml as fo
    from mnist_live import data_loader
    if SHARED.exists() and not quick:
        d = data_loader.load_dataset("mnist", data_dir=str(SHARED), log=lambda *a: None)
        x, y = np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])
    else:
        x, y = fo.fake_digits(2000)
    fo.write_fake_openml_cache(home, x, y, compresslevel=1)
    return len(y)


def launch(root, home, env, timeout):
    """(first frame s, seconds until the full set is ready, as the window's console said)."""
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "m.json"
        cmd = [sys.executable, str(Path(root) / "main.py"), "--data-home", home, "--metrics", str(metrics)]
        if root == ROOT:
            cmd.append("--no-runs")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready, deadline = None, time.monotonic() + timeout
        for line in proc.stdout:                     # the console lines of the background fetch
            m = re.search(r"ready \([\d,]+ images, (\d+) s\)", line)
            if m:
                ready = float(m.group(1))
                break
            if time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGTERM)             # ends the window like Ctrl+C; metrics are written
        proc.communicate(timeout=60)
        first = json.loads(metrics.read_text())["first_frame_s"]
    cache = Path(home) / "mnist_viz" / "mnist_784.npz"
    if cache.exists():
        cache.unlink()                               # the next launch is a first launch again
    return first, ready


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 fake digits, one launch each")
    ap.add_argument("--repeats", type=int, default=3, help="launches of each code")
    ap.add_argument("--before", metavar="DIR", help="also launch another checkout's main.py, alternately")
    args = ap.parse_args()
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    codes = [("this", ROOT)] + ([("before", Path(args.before))] if args.before else [])
    repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as home:
        rows = write_sklearn_cache(home, args.quick)
        print(f"scikit-learn's OpenML cache of {rows:,} rows, no compact cache; window on the bundled sample\n")
        print("| code | launch | first frame s | full set ready after s |")
        print("|---|---|---|---|")
        got = {name: [] for name, _ in codes}
        for i in range(repeats):
            for name, root in (codes if i % 2 == 0 else codes[::-1]):
                first, ready = launch(root, home, env, timeout=120)
                got[name].append((first, ready))
                print(f"| {name} | {i + 1} | {first:.2f} | {'-' if ready is None else f'{ready:.0f}'} |", flush=True)
    print()
    for name, runs in got.items():
        firsts = [f for f, _ in runs]
        readies = [r for _, r in runs if r is not None]
        print(f"{name}: first frame median {statistics.median(firsts):.2f} s; full set ready median "
              f"{statistics.median(readies) if readies else float('nan'):.0f} s over {len(runs)} launches")


if __name__ == "__main__":
    main()
