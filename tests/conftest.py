"""Test set-up: headless SDL before pygame is imported, repo root on sys.path, and
paths to the shared MNIST files (present on the dev machines and CI only)."""
import os
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
