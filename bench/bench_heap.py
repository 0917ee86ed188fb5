"""The window's memory second by second, in its own process: what it holds with each view,
and what trimming the heap more often would buy (and cost in late frames).

    python bench/bench_heap.py                     # 2 seeds x 2 heap settings, 120 s each
    python bench/bench_heap.py --seconds 60 --seeds 1
    python bench/bench_heap.py --quick             # 10 s, a smoke run

Each run is a fresh process with the real App and its training process under the dummy
driver (1600x900), fed bench_soak's random input mix (keys as pygame events, clicks and
drags) while training on the cached 60k/10k data. The heap settings alternate run by run:
the app's own (`utils.Heap`: trim every 5 s, up to 16 MB kept free at the heap's top) and
a stricter one (trim every 1 s, 1 MB). From the first minute on, once a second: the PSS,
the heap's PSS, glibc's bytes in use (`mallinfo2`), and what the window shows. Prints per
setting the PSS band (5th-95th percentile), the freed memory still resident in the heap,
and the share of frames that started late (more than 17.5 ms after the one before, over
the whole run); then, for the app's own setting, the mean PSS with and without the atlas,
a clip recording and a rewound snapshot. Linux with glibc only.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
SETTINGS = {"app's own: trim every 5 s, 16 MB": (5.0, 16 << 20), "stricter: trim every 1 s, 1 MB": (1.0, 1 << 20)}


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def one_run(seconds, seed, every, slack):
    """The child: run the app, return its per-second samples and frame start times."""
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
    import pygame

    from bench_soak import input_gap, pss_by_kind, pss_kb, random_input
    from bench_window import prepare_cache
    from mnist_live import data_loader, utils
    from mnist_live.training.config import Config
    from mnist_live.visualization import App
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    home = tempfile.mkdtemp()
    prepare_cache(home)
    data = data_loader.load_dataset("mnist", data_home=home, log=lambda *a: None)
    os.chdir(tempfile.mkdtemp())                         # S and Shift+S write here
    utils.HEAP_SLACK = slack
    pygame.display.init()
    pygame.font.init()
    screen = pygame.display.set_mode((1600, 900), pygame.RESIZABLE)
    app = App(Config(seed=1, epochs=50), data, screen, worker=True)
    app.heap.every = every
    names = {"Right": "right", "Left": "left", "Prior": "page up", "Next": "page down", "Home": "home",
             "End": "end", "bracketleft": "[", "bracketright": "]", "plus": "+", "minus": "-",
             "BackSpace": "backspace", "comma": ",", "period": "."}
    rng = random.Random(seed)
    W, H = screen.get_size()
    samples, starts = [], []
    t0 = next_sample = next_input = time.monotonic()
    while time.monotonic() - t0 < seconds and app.state.running:
        now = time.monotonic()
        if now >= next_sample:
            st = app.state
            samples.append(dict(t=now - t0, pss=pss_kb(os.getpid()) >> 10, heap=pss_by_kind(os.getpid())["heap"] >> 10,
                                used=libc.mallinfo2().uordblks >> 20, atlas=st.atlas,
                                clip=app.outputs.recorder is not None,
                                rewound=st.rewind is not None))
            next_sample += 1
        if now >= next_input:                             # bench_soak's mix, as pygame events
            kind, pos, detail = random_input(rng, W, H)
            pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=pos, rel=(0, 0), buttons=(0, 0, 0)))
            if kind == "key":
                name, mod = detail, 0
                for prefix, m in (("shift+", pygame.KMOD_LSHIFT), ("ctrl+", pygame.KMOD_LCTRL)):
                    if name.startswith(prefix):
                        name, mod = name[len(prefix):], m
                code = pygame.key.key_code(names.get(name, name))
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=code, mod=mod, unicode="", scancode=0))
            else:
                button, to = (detail, pos) if kind == "click" else (1, (pos[0] + detail[0], pos[1] + detail[1]))
                pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=button))
                if kind == "drag":
                    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=to, rel=(0, 0), buttons=(1, 0, 0)))
                pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=to, button=button))
            next_input = now + input_gap(rng) + 0.015     # the 15 ms xdotool adds in bench_soak
        starts.append(time.perf_counter())
        app.frame()
        wait = app.frame_start + 1 / 60 - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    app.state.running = False
    app.close()
    pygame.quit()
    return {"samples": samples, "starts": starts}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--seeds", type=int, default=2, help="runs per setting (seeds 1, 2, ...)")
    ap.add_argument("--quick", action="store_true", help="one 10-s run per setting (a smoke run)")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.seeds = 10, 1
    settled = min(60, args.seconds // 2)                     # samples from here on: the first minute warms up
    if args.child:
        seconds, seed, every, slack = args.child
        print(json.dumps(one_run(int(seconds), int(seed), float(every), int(slack))))
        return
    results = {label: [] for label in SETTINGS}
    for seed in range(1, args.seeds + 1):
        for label, (every, slack) in SETTINGS.items():        # alternately, so noise hits both alike
            child = subprocess.run([sys.executable, __file__, "--child", str(args.seconds), str(seed), str(every),
                                    str(slack)], stdout=subprocess.PIPE, text=True)   # its stderr: ours, said
            if child.returncode != 0:
                raise SystemExit(f"error: the {label} run (seed {seed}) exited {child.returncode}; "
                                 f"its errors are above")
            results[label].append(json.loads(child.stdout.splitlines()[-1]))
    print(f"{args.seeds} run(s) per setting, {args.seconds} s each, 1600x900, dummy driver; "
          f"samples from {settled} s on\n")
    print("| heap setting | window PSS MiB, 5th-95th percentile (median) | freed memory resident in the heap MiB, "
          "median / 95th | frames started late (whole run) |")
    print("|---|---|---|---|")
    for label, runs in results.items():
        later = [s for r in runs for s in r["samples"] if s["t"] >= settled]
        pss = np.array([s["pss"] for s in later])
        free = np.array([s["heap"] - s["used"] for s in later])
        late = [100 * float((np.diff(r["starts"]) > 0.0175).mean()) for r in runs]
        print(f"| {label} | {np.percentile(pss, 5):.0f}-{np.percentile(pss, 95):.0f} ({np.median(pss):.0f}) | "
              f"{np.median(free):.0f} / {np.percentile(free, 95):.0f} | "
              + ", ".join(f"{x:.0f} %" for x in late) + " |")
    later = [s for r in results[next(iter(SETTINGS))] for s in r["samples"] if s["t"] >= settled]
    print("\n| the window shows (app's own heap setting) | mean PSS MiB while on | while off | seconds on |")
    print("|---|---|---|---|")
    for what in ("atlas", "clip", "rewound"):
        on = [s["pss"] for s in later if s[what]]
        off = [s["pss"] for s in later if not s[what]]
        if on and off:
            print(f"| {what} | {np.mean(on):.0f} | {np.mean(off):.0f} | {len(on)} of {len(later)} |")


if __name__ == "__main__":
    main()
