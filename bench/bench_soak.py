"""Soak test: a real window (Xvfb) training while random keys, clicks and drags arrive for
ten minutes; records the memory of both processes, errors, and what is left behind.

    python bench/bench_soak.py                   # 600 s (needs Xvfb and xdotool: apt-get install xvfb xdotool)
    python bench/bench_soak.py --seconds 60      # shorter

Prints a table of the proportional set size (PSS) of the window and of the training
process every minute, the window's change after the first minute (the lowest and highest
later sample, how many samples lie more than 10 % above the one-minute figure, the median
of each minute, and whether every later minute's median lies within 10 % of the second
minute's: the target, flat after the first minute), every minute the window's PSS by kind
of mapping (heap, anonymous, shared memory, libraries), the exit status, tracebacks or
errors printed, and leftovers: processes still alive, shared-memory segments and temp
files. Uses ../shared/data/mnist written into a temporary OpenML cache when present (the
bundled sample otherwise).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_window import SHARED, Xvfb, descendants, prepare_cache  # noqa: E402

KEYS = ["Right", "Left", "Prior", "Next", "Home", "End", "m", "shift+m", "f", "r", "space", "n", "bracketleft",
        "bracketright", "c", "plus", "minus", "x", "g", "d", "BackSpace", "h", "o", "a", "p", "t", "v", "comma",
        "period", "l", "shift+l", "s", "shift+s", *"0123456789", "shift+3", "ctrl+5", "u"]  # not Esc or Q


def random_input(rng, width, height):
    """One input of the soak's mix at a random place in a width x height window: a key
    (60 %: ("key", pos, xdotool key name)), a left or right click (20 %: ("click", pos,
    button)) or a left-button drag of up to 60 px (20 %: ("drag", pos, (dx, dy)))."""
    kind = rng.random()
    pos = (rng.randrange(width), rng.randrange(height))
    if kind < 0.6:
        return "key", pos, rng.choice(KEYS)
    if kind < 0.8:
        return "click", pos, rng.choice([1, 3])
    return "drag", pos, (rng.randint(-60, 60), rng.randint(-60, 60))


def input_gap(rng):
    """Seconds to wait after an input (xdotool itself adds about 15 ms to each)."""
    return rng.uniform(0.02, 0.25)


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except OSError:
        return 0


def pss_by_kind(pid):
    """The process's PSS in KiB by kind of mapping: its main heap, anonymous mappings (big
    blocks, thread arenas), shared memory (with the trainer; X's shared images), libraries
    and other files."""
    kinds, kind = {}, None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split()
                if "-" in head[0] and ":" not in head[0]:            # a mapping's first line
                    path = head[5] if len(head) > 5 else ""
                    kind = ("heap" if path == "[heap]" else "anonymous" if not path
                            else "shared memory" if path.startswith("/dev/shm") or "SYSV" in path
                            else "libraries" if ".so" in path else "other")
                elif head[0] == "Pss:":
                    kinds[kind] = kinds.get(kind, 0) + int(head[1])
    except OSError:
        pass
    return kinds


def window_geometry(display):
    out = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True,
                         env={**os.environ, "DISPLAY": display}).stdout
    for line in out.splitlines():
        if "MNIST network" in line:
            size, _, pos = line.split()[-2].partition("+")
            w, h = (int(v) for v in size.split("x"))
            x, y = (int(v) for v in pos.split("+"))
            return x, y, w, h
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not (shutil.which("Xvfb") and shutil.which("xdotool") and shutil.which("xwininfo")):
        raise SystemExit("needs Xvfb, xdotool and xwininfo (apt-get install xvfb xdotool x11-utils)")
    rng = random.Random(args.seed)
    shm_before = set(os.listdir("/dev/shm"))
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as cwd, Xvfb() as x:
        if SHARED.exists():
            prepare_cache(home)
            data = ["--data-home", home]
        else:
            data = ["--offline"]
        env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
        env.update(DISPLAY=x.display, PYGAME_HIDE_SUPPORT_PROMPT="1")
        log = open(Path(cwd) / "app.log", "w")
        proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *data, "--epochs", "50",
                                 "--save", str(Path(cwd) / "m.npz")], cwd=cwd, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        geo = None
        for _ in range(100):
            time.sleep(0.2)
            geo = window_geometry(x.display)
            if geo:
                break
        if geo is None:
            proc.kill()
            raise SystemExit("the window never appeared")
        gx, gy, gw, gh = geo
        xdo = ["xdotool"]
        t0 = time.monotonic()
        samples, actions, next_sample, pressed, kinds = [], 0, 0.0, [], []
        while time.monotonic() - t0 < args.seconds and proc.poll() is None:
            now = time.monotonic() - t0
            if now >= next_sample:
                pids = descendants(proc.pid)
                trainer = [p for p in pids[1:] if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
                samples.append((now, pss_kb(proc.pid), sum(pss_kb(p) for p in trainer)))
                if len(samples) % 6 == 1:                           # every minute: what the window's PSS is
                    kinds.append((now, pss_by_kind(proc.pid)))
                next_sample += 10
            kind, (x, y), detail = random_input(rng, gw, gh)
            move = xdo + ["mousemove", str(gx + x), str(gy + y)]
            if kind == "key":
                pressed.append((now, detail))
                subprocess.run(move + ["key", detail], env=env)
            elif kind == "click":
                subprocess.run(move + ["click", str(detail)], env=env)
            else:
                subprocess.run(move + ["mousedown", "1", "mousemove_relative", "--", str(detail[0]), str(detail[1]),
                                       "mouseup", "1"], env=env)
            actions += 1
            time.sleep(input_gap(rng))
        crashed = proc.poll() is not None
        if not crashed:
            subprocess.run(xdo + ["mousemove", str(gx + 5), str(gy + 5), "key", "Escape", "Escape", "Escape", "q"],
                           env=env)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        time.sleep(1)
        text = (Path(cwd) / "app.log").read_text()
        alive = [p for p in descendants(proc.pid)[1:]] if proc.poll() is None else []
        temps = [p.name for p in Path(cwd).iterdir() if ".tmp-" in p.name]
        shots = len(list(Path(cwd).glob("screenshot-*.png"))) + len(list(Path(cwd).glob("clip-*.gif")))
    shm_left = sorted(set(os.listdir("/dev/shm")) - shm_before)
    print(f"{args.seconds} s of random input: {actions} keys, clicks and drags; window at 1600x900 under Xvfb\n")
    print("| time s | window PSS MiB | trainer PSS MiB |")
    print("|---|---|---|")
    for t, w, tr in samples[::6] + ([samples[-1]] if len(samples) % 6 != 1 else []):
        print(f"| {t:.0f} | {w / 1024:.0f} | {tr / 1024:.0f} |")
    after_min = [s for s in samples if s[0] >= 60]
    if len(after_min) >= 2:
        w0, lo, w1 = after_min[0][1], min(s[1] for s in after_min[1:]), max(s[1] for s in after_min[1:])
        print(f"\nwindow PSS after the first minute: {w0 / 1024:.0f} MiB; later (every 10 s) lowest "
              f"{lo / 1024:.0f} MiB ({100 * (lo - w0) / w0:+.0f} %), highest {w1 / 1024:.0f} MiB "
              f"({100 * (w1 - w0) / w0:+.0f} %)")
        over = [s for s in after_min[1:] if s[1] > 1.1 * w0]
        print(f"samples after the first minute more than 10 % above it: {len(over)} of {len(after_min) - 1}")
        minutes = [sorted(s[1] for s in samples if m <= s[0] < m + 60) for m in range(0, args.seconds, 60)]
        medians = [m[len(m) // 2] for m in minutes if m]
        print("window PSS MiB, median of each minute: " + " ".join(f"{m / 1024:.0f}" for m in medians))
        if len(medians) >= 3:                   # the target: flat within 10 % after the first minute
            rest = [100 * (m - medians[1]) / medians[1] for m in medians[2:]]
            print(f"each later minute's median against the second minute's: {min(rest):+.0f} % to "
                  f"{max(rest):+.0f} %: {'flat' if max(map(abs, rest)) <= 10 else 'NOT flat'} within 10 %")
        print("window PSS MiB every 10 s: " + " ".join(f"{s[1] / 1024:.0f}" for s in samples))
        t_peak = max(after_min[1:], key=lambda s: s[1])[0]
        print(f"keys in the 10 s before the highest sample ({t_peak:.0f} s): "
              + " ".join(k for t, k in pressed if t_peak - 10 <= t < t_peak))
    names = ["heap", "anonymous", "shared memory", "libraries", "other"]
    print("\n| time s | window PSS MiB: " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for t, k in kinds:
        print(f"| {t:.0f} | " + " | ".join(f"{k.get(n, 0) / 1024:.0f}" for n in names) + " |")
    print(f"\nexit: {'crashed' if crashed else 'quit'} with status {proc.returncode}; "
          f"tracebacks: {text.count('Traceback')}; 'error:' lines: {text.count('error:')}")
    print(f"left behind: processes {alive or 'none'}, shared memory {shm_left or 'none'}, "
          f"temp files {temps or 'none'}; screenshots and clips written: {shots}")


if __name__ == "__main__":
    main()
