"""The window in a real X server (Xvfb): what the server shows equals what the app drew,
frame after frame of partial pushes while training. Xvfb's -fbdir keeps the server's
framebuffer in a file (XWD format), so the test reads the pixels a person would see.
Skips when Xvfb is not installed (apt-get install xvfb)."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1280, 720)
SCREEN = (1920, 1080)


def read_xwd(path):
    """The screen (h, w, 3) uint8 RGB of an XWD file of 32-bit pixels (Xvfb's -fbdir)."""
    raw = Path(path).read_bytes()
    h = np.frombuffer(raw[:100], ">u4")
    header_size, width, height, bytes_per_line, n_colours = (int(v) for v in (h[0], h[4], h[5], h[12], h[19]))
    start = header_size + 12 * n_colours
    pixels = np.frombuffer(raw[start:start + bytes_per_line * height], np.uint8).reshape(height, bytes_per_line)
    return pixels[:, :4 * width].reshape(height, width, 4)[:, :, 2::-1]          # BGRX -> RGB


def compare_frames(fb_file, frames=150, every=15):
    """In a process whose DISPLAY is the Xvfb: train in the window, and every `every`
    frames compare the server's pixels under the window with the app's surface. Prints one
    line per comparison: the push kind and the number of differing pixels."""
    sys.path[:0] = [str(ROOT / "tests")]
    import pygame

    from mnist_live import data_loader
    from mnist_live.window.session import use_native_framebuffer
    from window_driver import move, open_app, run_until
    use_native_framebuffer()
    sample = data_loader.load_dataset(offline=True, log=lambda *a: None)
    app = open_app(sample, size=SIZE, worker=True, epochs=20, no_train=False, hidden=(256, 128), no_runs=True)
    x0, y0 = (SCREEN[0] - SIZE[0]) // 2, (SCREEN[1] - SIZE[1]) // 2            # no window manager: centred
    try:
        run_until(app, lambda: app.weights_seen and app.tele.trained_here)
        grid = app.layout.hidden[0]
        move(grid.cell_rect(grid.n // 2).center)         # a neuron's portrait too, hanging below the columns
        for i in range(frames):
            app.frame()
            time.sleep(0.01)
            if i % every == every - 1:
                shown = read_xwd(fb_file)[y0:y0 + SIZE[1], x0:x0 + SIZE[0]]
                drawn = pygame.surfarray.array3d(app.screen).transpose(1, 0, 2)
                kind = "flip" if app.last_push is None else f"{len(app.last_push)} rects"
                print(f"{kind} {int((shown != drawn).any(axis=2).sum())}", flush=True)
    finally:
        app.close(save=False)


COVER = """
import sys, time, pygame
pygame.display.init()
screen = pygame.display.set_mode(({w}, {h}))
screen.fill((255, 0, 255))
pygame.display.flip()
print("shown", flush=True)
sys.stdin.readline()
pygame.quit()
"""
MAGENTA = (255, 0, 255)


def cover_and_uncover(fb_file):
    """In a process whose DISPLAY is the Xvfb: an idle window (nothing changes, so nothing
    is pushed unless the window is told it was exposed) is covered by another window of
    its size, which then goes away. Prints the share of our window the cover hid, then
    the pixels that differ from what the app drew, after the uncovering."""
    sys.path[:0] = [str(ROOT / "tests")]
    import pygame

    from mnist_live import data_loader
    from mnist_live.window.session import use_native_framebuffer
    from window_driver import open_app
    use_native_framebuffer()
    sample = data_loader.load_dataset(offline=True, log=lambda *a: None)
    app = open_app(sample, size=SIZE, no_runs=True)
    x0, y0 = (SCREEN[0] - SIZE[0]) // 2, (SCREEN[1] - SIZE[1]) // 2            # no window manager: centred
    try:
        for _ in range(60):
            app.frame()
            time.sleep(0.01)
        cover = subprocess.Popen([sys.executable, "-c", COVER.format(w=SIZE[0], h=SIZE[1])], text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 env={**os.environ, "PYGAME_HIDE_SUPPORT_PROMPT": "1"})
        assert cover.stdout.readline().strip() == "shown"
        for _ in range(20):                                       # the app goes on answering while covered
            app.frame()
            time.sleep(0.01)
        shown = read_xwd(fb_file)[y0:y0 + SIZE[1], x0:x0 + SIZE[0]]
        print(f"covered {float((shown == MAGENTA).all(axis=2).mean()):.3f}", flush=True)
        cover.communicate("\n", timeout=30)
        for _ in range(30):
            app.frame()
            time.sleep(0.01)
        shown = read_xwd(fb_file)[y0:y0 + SIZE[1], x0:x0 + SIZE[0]]
        drawn = pygame.surfarray.array3d(app.screen).transpose(1, 0, 2)
        print(f"differing {int((shown != drawn).any(axis=2).sum())}", flush=True)
    finally:
        app.close(save=False)


def in_xvfb(tmp_path, call, timeout=180):
    """Run `call` (code calling a function of this module with the framebuffer file) in a
    process on a fresh Xvfb; its stdout lines."""
    display = next(f":{n}" for n in range(211, 400) if not os.path.exists(f"/tmp/.X{n}-lock"))
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-fbdir", str(tmp_path),
                             "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "Xvfb_screen0").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
        env["DISPLAY"] = display
        code = f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import test_real_window as t; " \
               f"t.{call}({str(tmp_path / 'Xvfb_screen0')!r})"
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return [line for line in proc.stdout.splitlines() if line.strip()]
    finally:
        xvfb.terminate()
        xvfb.wait(10)


XVFB = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (apt-get install xvfb)")


@pytest.mark.slow
@XVFB
def test_a_window_covered_by_another_shows_itself_whole_again(tmp_path):
    """Another window covers ours and goes away: the X server (no compositor, no backing
    store) asks ours to repaint, and the idle app pushes the whole window. Catches: the
    exposure not answered (the cover's pixels stay where nothing changed since)."""
    lines = in_xvfb(tmp_path, "cover_and_uncover")
    covered = float(lines[0].split()[1])
    assert covered > 0.95, lines                             # the cover really hid our window
    assert lines[1] == "differing 0", f"the uncovered window shows other pixels than the app drew: {lines}"


@pytest.mark.slow
@XVFB
def test_the_x_server_shows_exactly_what_the_window_drew(tmp_path):
    """Catches: a changed rectangle not pushed (the server keeps the old pixels there), and
    pushes that do not reach the screen at all."""
    rows = [line.rsplit(" ", 1) for line in in_xvfb(tmp_path, "compare_frames")]
    assert len(rows) == 10, rows
    assert any(kind != "flip" for kind, _ in rows), "no partial pushes to check"
    assert all(int(n) == 0 for _, n in rows), f"the server shows other pixels than the window drew: {rows}"
