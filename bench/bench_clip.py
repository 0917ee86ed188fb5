"""What one frame of a clip (Shift+S, --record) costs: reducing a 640-px picture of the
window to a palette, with Pillow's median cut (its default) and its fast octree (used),
then the app's whole `clip_frame` (reduce, mark unchanged pixels, encode).

    python bench/bench_clip.py             # the README's window pictures, 5 rounds
    python bench/bench_clip.py --quick     # one round

The two reductions run alternately on the same pictures, so a busy machine slows both
alike. Prints, per reduction: milliseconds per frame (median over the rounds), the mean
absolute difference from the picture (0-255 per channel).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
ROOT = Path(__file__).resolve().parents[1]
VIEWS = ROOT / "assets" / "views"
METHODS = {"median cut (Pillow's default)": "MEDIANCUT", "fast octree (used)": "FASTOCTREE"}


def pictures():
    """The README's window pictures at a clip's size: a list of (360, 640, 3) uint8."""
    from PIL import Image
    out = []
    for path in sorted(VIEWS.glob("*.png")):
        with Image.open(path) as im:
            out.append(np.asarray(im.convert("RGB").resize((640, 360), Image.Resampling.BILINEAR)))
    return out


def reduce(rgb, method):
    """rgb (h, w, 3) uint8 -> the palette picture back as RGB (h, w, 3), for the error."""
    from PIL import Image
    q = Image.fromarray(rgb, "RGB").quantize(colors=255, method=getattr(Image.Quantize, method))
    return np.asarray(q.convert("RGB"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one round (a smoke run)")
    args = ap.parse_args()
    args.rounds = 1 if args.quick else args.rounds
    from mnist_live.window.clips import clip_frame
    ps = pictures()
    times = {m: [] for m in METHODS.values()}
    whole = []
    for _ in range(args.rounds):
        for method in METHODS.values():                      # alternately, on the same pictures
            t0 = time.perf_counter()
            for p in ps:
                reduce(p, method)
            times[method].append((time.perf_counter() - t0) / len(ps))
        t0 = time.perf_counter()
        previous = None
        for p in ps:
            clip_frame(p, previous)
            previous = p
        whole.append((time.perf_counter() - t0) / len(ps))
    print(f"{len(ps)} window pictures at 640x360, {args.rounds} rounds\n")
    print("| reduction | ms per frame | mean abs difference (0-255) |")
    print("|---|---|---|")
    for label, method in METHODS.items():
        err = statistics.mean(float(np.abs(reduce(p, method).astype(np.int16) - p).mean()) for p in ps)
        print(f"| {label} | {1000 * statistics.median(times[method]):.1f} | {err:.2f} |")
    print(f"\nthe app's clip_frame (reduce + unchanged pixels + GIF encode): "
          f"{1000 * statistics.median(whole):.1f} ms per frame")


if __name__ == "__main__":
    main()
