"""What sending a frame to a real X server costs (Xvfb): a full `display.flip()` against
`display.update(rects)` of a part of the window, through SDL's default framebuffer (a
renderer that copies the whole window as a texture on every push) and through X11's own
shared-memory framebuffer (SDL_FRAMEBUFFER_ACCELERATION=0, what the app asks for on X11),
on an idle machine and with both cores busy (two processes spinning, as the trainer and
the window's own work do).

    python bench/bench_push.py                 # 1280x720 and 1600x900, 300 pushes each
    python bench/bench_push.py --quick         # a few pushes (smoke run)

Each push is timed alone (nothing else drawn), the kinds alternating push by push so a
drifting machine hits them alike. Needs Xvfb (apt-get install xvfb).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import time


def spin(stop):
    """Keep one core busy until `stop` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(10000):
            x += 1


def measure(size, n, share):
    """{kind: [ms, ...]} of n pushes of each kind in a window of `size` (run in a child with DISPLAY set)."""
    import pygame
    pygame.display.init()
    screen = pygame.display.set_mode(size)
    w, h = size
    part = pygame.Rect(0, 0, int(w * share ** 0.5), int(h * share ** 0.5))
    small = pygame.Rect(0, 0, 64, 64)
    kinds = {"flip (whole window)": lambda: pygame.display.flip(),
             f"update: {100 * share:.0f} % of the window": lambda: pygame.display.update([part]),
             "update: a 64x64 rectangle": lambda: pygame.display.update([small])}
    out = {k: [] for k in kinds}
    for i in range(n):
        for k, push in kinds.items():
            screen.fill((i % 255, 40, 80))              # every push sends changed pixels
            t = time.perf_counter()
            push()
            out[k].append(1000 * (time.perf_counter() - t))
        pygame.event.pump()
    pygame.quit()
    return out


def child(size, n, share, accelerated, conn):
    if accelerated:
        os.environ.pop("SDL_FRAMEBUFFER_ACCELERATION", None)
    else:
        os.environ["SDL_FRAMEBUFFER_ACCELERATION"] = "0"
    conn.send(measure(size, n, share))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few pushes (smoke run)")
    ap.add_argument("--share", type=float, default=0.4, help="the part pushed by the partial update")
    args = ap.parse_args()
    if not shutil.which("Xvfb"):
        print("real X window: skipped (Xvfb not installed: apt-get install xvfb)")
        return
    n = 10 if args.quick else 300
    display = next(f":{d}" for d in range(157, 300) if not os.path.exists(f"/tmp/.X{d}-lock"))
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    os.environ["DISPLAY"] = display
    os.environ.pop("SDL_VIDEODRIVER", None)
    os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
    ctx = mp.get_context("spawn")
    print(f"{n} pushes of each kind, alternating; p50 / p95 ms\n")
    columns = ("flip (whole window)", f"update: {100 * args.share:.0f} % of it", "update: 64x64")
    print("| window | framebuffer | machine | " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|")
    try:
        for size, accelerated, load in [(size, acc, load) for size in ((1280, 720), (1600, 900))
                                        for load in (0, 2) for acc in (True, False)]:
            stop = ctx.Event()
            spinners = [ctx.Process(target=spin, args=(stop,), daemon=True) for _ in range(load)]
            for p in spinners:
                p.start()
            parent, conn = ctx.Pipe()
            p = ctx.Process(target=child, args=(size, n, args.share, accelerated, conn))
            p.start()
            got = parent.recv()
            p.join()
            stop.set()
            for s in spinners:
                s.join()
            cells = [f"{statistics.median(v):.1f} / {sorted(v)[int(0.95 * (len(v) - 1))]:.1f}"
                     for v in got.values()]
            kind = "SDL default (texture)" if accelerated else "X11 shared memory"
            print(f"| {size[0]}x{size[1]} | {kind} | {'idle' if not load else f'{load} cores busy'} | "
                  + " | ".join(cells) + " |", flush=True)
    finally:
        xvfb.terminate()
        xvfb.wait(5)


if __name__ == "__main__":
    sys.exit(main())
