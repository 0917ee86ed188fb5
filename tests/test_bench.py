"""Smoke runs of the benchmark scripts with tiny sizes, so they keep working; the real
figures come from running them in full (see the README's Performance section)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("script, header", [
    ("bench_train.py", "| optimizer | batch | samples/s"),
    ("bench_epoch.py", "| optimizer | BLAS threads | engine | samples/s"),
    ("bench_step_parts.py", "| part | ms per step |"),
    ("bench_data.py", "cached load"),
    ("bench_accuracy.py", "| epoch | test accuracy"),
    ("bench_window.py", "| run (dummy video driver unless said) | frame p50 ms"),
    ("bench_explain.py", "| layer pair | lines ending at switched-off neurons"),
    ("bench_clip.py", "| reduction | ms per frame"),
    ("bench_sweep.py", "| comparison | A: median s | B: median s | A / B"),
    ("bench_runs.py", "| time inside RunRecorder calls |"),
    ("bench_health.py", "| case | observers | samples/s (median)"),
    ("bench_first_eval.py", "| first evaluation of trained weights |"),
    pytest.param("bench_heap.py", "| heap setting | window PSS MiB", marks=pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="reads /proc and glibc's mallinfo2: Linux only")),
])
def test_benchmark_quick_run_prints_its_table(script, header):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick"], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert header in proc.stdout
    assert "Traceback" not in proc.stderr
