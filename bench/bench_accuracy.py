"""Accuracy per second: test accuracy after each epoch of a default headless run, with
the wall time a user waits for it.

    python bench/bench_accuracy.py                      # default settings, 10 epochs
    python bench/bench_accuracy.py --augment --epochs 20
    python bench/bench_accuracy.py --quick              # smoke run on the bundled sample

Extra options are passed to main.py unchanged. Needs ../shared/data/mnist (the full
60k/10k split) except with --quick.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "mnist"


def main():
    extra = sys.argv[1:]
    quick = "--quick" in extra
    extra = [a for a in extra if a != "--quick"]
    if quick:
        data = ["--offline", "--epochs", "2", "--hidden", "128"]
    elif SHARED.exists():
        data = ["--data-dir", os.path.relpath(SHARED)]
    else:
        raise SystemExit("error: ../shared/data/mnist not found (use --quick for the bundled sample)")
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "m.json"
        cmd = [sys.executable, str(ROOT / "main.py"), "--headless", *data, *extra, "--metrics", str(metrics)]
        print("command:", " ".join(["python", "main.py", "--headless", *data[:2], *data[2:], *extra]))
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
        if proc.returncode != 0:
            raise SystemExit(f"main.py failed: {proc.stderr.strip()}")
        m = json.loads(metrics.read_text())
    print("\n| epoch | test accuracy | train accuracy | wall time s |")
    print("|---|---|---|---|")
    for h in m["epochs"]:
        print(f"| {h['epoch']} | {100 * h['test_accuracy']:.2f} % | {100 * h['train_accuracy']:.2f} % "
              f"| {h['seconds']:.1f} |")
    print(f"\nfinal test accuracy {100 * m['test_accuracy']:.2f} %, {m['train_samples_per_s']:,.0f} samples/s; "
          f"hyperparameters {m['hyperparameters']}")


if __name__ == "__main__":
    main()
