"""The window's frame times: how long each frame worked, how often frames were drawn, what
a draw and a push cost and how many pixels each push sent; the frame-rate line the panel
shows and the figures --metrics writes. Bounded lists; NumPy only."""
from __future__ import annotations

import time

import numpy as np

from mnist_live.utils import percentile

MAX_SAMPLES = 20_000              # samples kept per figure (about 5 minutes at 60 FPS)


def _bounded_append(values, v):
    values.append(v)
    if len(values) > MAX_SAMPLES:
        del values[:MAX_SAMPLES // 2]


class FrameTimes:
    """Frame-time samples of one window (ms), and the frame-rate line."""

    def __init__(self):
        self.frame_ms, self.interval_ms, self.draw_ms, self.push_ms, self.push_px = [], [], [], [], []
        self.drawn_frames = 0
        self.last_drawn = time.perf_counter()
        self._line, self._line_time = "", 0.0

    def frame(self, t0, t1, drew, deferred):
        """A frame from t0 to t1 (perf_counter seconds): whether it drew, or recomputed the
        view to draw next frame (frames that did work; idle ones do next to none)."""
        if drew or deferred:
            _bounded_append(self.frame_ms, (t1 - t0) * 1000)
        if drew:
            _bounded_append(self.interval_ms, (t1 - self.last_drawn) * 1000)
            self.last_drawn = t1

    def drawn(self, draw_s, push_s):
        _bounded_append(self.draw_ms, draw_s * 1000)
        _bounded_append(self.push_ms, push_s * 1000)
        self.drawn_frames += 1

    def pushed(self, pixels):
        _bounded_append(self.push_px, pixels)

    def fps_text(self, tele, config):
        """The frame-rate line, refreshed twice a second (not every frame)."""
        now = time.monotonic()
        if now - self._line_time >= 0.5:
            fps = 1000 / np.mean(self.interval_ms[-30:]) if self.interval_ms else 0
            work = np.mean(self.frame_ms[-30:]) if self.frame_ms else 0
            idle = tele.paused or tele.finished or config.no_train or tele.failed
            self._line = "idle: redrawn only when something changes" if idle else \
                f"{fps:.0f} FPS   frame {work:.1f} ms"
            self._line_time = now
        return self._line

    def metrics(self, size):
        """The frame figures of --metrics for a window of `size`."""
        ms = self.frame_ms[1:] or self.frame_ms
        return {"frame_ms_p50": percentile(ms, 50), "frame_ms_p95": percentile(ms, 95),
                "frame_ms_p99": percentile(ms, 99),
                "draw_ms_p50": percentile(self.draw_ms, 50), "draw_ms_p95": percentile(self.draw_ms, 95),
                "push_ms_p50": percentile(self.push_ms, 50), "push_ms_p95": percentile(self.push_ms, 95),
                "push_share": float(np.mean(self.push_px)) / float(np.prod(size)) if self.push_px else None,
                "frames": self.drawn_frames,
                "fps": 1000 / float(np.mean(self.interval_ms[1:])) if len(self.interval_ms) > 1 else None}
