"""Test set-up: headless SDL before pygame is imported, repo root on sys.path, and
paths to the shared MNIST files (present on the dev machines and CI only)."""
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
SHARED_FASHION = ROOT.parent / "shared" / "data" / "fashion-mnist"
NO_SHARED = "../shared/data/mnist not found (it exists only on the development machines and CI)"


MAIN = str(ROOT / "main.py")


def run(*args, timeout=120):
    """Run main.py as a user would (dummy video driver); the finished process."""
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    return subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True, timeout=timeout, env=env)


def assert_one_line_error(proc, status, *fragments):
    """The run ended with `status` and a one-line 'error: ...' holding each fragment."""
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines and "error:" in lines[-1], proc.stderr
    for frag in fragments:
        assert frag in lines[-1], lines[-1]
