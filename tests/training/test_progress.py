"""Headless progress as a user sees it: tqdm bars with rate, ETA and loss on a terminal,
exactly one plain line per epoch in a log or a pipe."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

MAIN = str(ROOT / "main.py")
SMALL = ["--headless", "--offline", "--hidden", "32", "--train-size", "1200", "--test-size", "200",
         "--batch-size", "100"]
ENV = {**os.environ, "PYGAME_HIDE_SUPPORT_PROMPT": "1"}


def test_without_a_terminal_each_epoch_is_one_plain_line():
    proc = subprocess.run([sys.executable, MAIN, *SMALL, "--epochs", "3"], capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "\r" not in out and "\x1b" not in out            # no bar redraws, no cursor movements
    assert proc.stderr == ""                                 # bars are off, not merely elsewhere
    epoch_lines = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/3", "2/3", "3/3"]
    for line in epoch_lines:
        for field in ("loss ", "train acc", "test acc", "samples/s", "elapsed ", "ETA "):
            assert field in line, line
    assert proc.stdout.splitlines()[:3] == epoch_lines       # nothing else before the summary


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a Linux pseudo-terminal")
def test_on_a_terminal_tqdm_draws_run_and_epoch_bars(tmp_path):
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))   # a 160-column terminal
    env = {**ENV, "TQDM_MININTERVAL": "0"}                   # draw every update: a fast run still shows it
    proc = subprocess.Popen([sys.executable, MAIN, *SMALL, "--epochs", "2"], stdout=slave, stderr=slave,
                            env=env, cwd=tmp_path)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:                                      # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=120) == 0
    os.close(master)
    screen = b"".join(chunks).decode()
    bar_lines = screen.replace("\r\n", "\n").split("\r")
    run_bars = [s for s in bar_lines if s.lstrip("\n").startswith("run:")]
    epoch_bars = [s for s in bar_lines if s.lstrip("\n").startswith("epoch 2/2:")]
    assert run_bars and epoch_bars, screen
    final = run_bars[-1]
    assert re.search(r"100%\|.*\| 2\.40k/2\.40k \[\d\d:\d\d<\d\d:\d\d, [\d.]+k? samples/s\]", final), final
    assert any("loss " in s and "acc " in s for s in epoch_bars), epoch_bars          # the loss in the bar
    assert screen.count("epoch 1/2  loss") == 1 and screen.count("epoch 2/2  loss") == 1
