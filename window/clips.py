"""Animated GIF clips of the window (Shift+S, --record): the frame loop only scales and
copies the screen; a thread reduces each frame to a palette of what changed and spools it,
and stopping writes the file atomically; `Outputs`, what the window writes besides the model
(screenshots and clips). Imports pygame, NumPy, Pillow (lazily) and files."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pygame

from mnist_live.training.files import atomic_file, gif_frame_image, save_png_atomic, unique_path, write_gif

RECORD_FPS = 5                    # frames a second in a recorded clip
RECORD_WIDTH = 640                # a clip's width in pixels (a slide's worth)
RECORD_SLOWER_EVERY = 1500        # a clip halves its frame rate after each this many frames

CLIP_SAME = 255                   # a clip frame's palette index for "as in the frame before"


def clip_frame(rgb, previous=None):
    """One frame of a clip as a GIF image for files.write_gif. `rgb` (h, w, 3) uint8 is
    reduced to at most 255 colours (Pillow's fast octree: a tenth of the time of its default
    median cut, for an error of 1 grey level; `python bench/bench_clip.py`); pixels that
    are as in `previous` (the frame before, as captured) become CLIP_SAME, transparent over
    the frame before, so a frame costs only what changed on screen (LZW packs the long runs
    of CLIP_SAME into a few bytes)."""
    import io

    from PIL import Image
    reduced = Image.fromarray(rgb, "RGB").quantize(colors=255, method=Image.Quantize.FASTOCTREE)  # 0..254
    index = np.asarray(reduced)                                          # (h, w) uint8
    if previous is not None:
        index = np.where((rgb == previous).all(axis=2), np.uint8(CLIP_SAME), index)
    palette = reduced.getpalette()[:3 * 255]
    frame = Image.fromarray(index, "P")
    frame.putpalette(palette + [0] * (768 - len(palette)))
    out = io.BytesIO()
    frame.save(out, format="GIF", optimize=False)                        # keep our indices as they are
    return gif_frame_image(out.getbuffer())[2]


class Recorder:
    """An animated GIF of the window: a frame every 1/RECORD_FPS s, 640 px wide. The frame
    loop only scales and copies the screen; a thread encodes each frame at once as a GIF
    image of what changed since the frame before (`clip_frame`) and appends it to an
    unnamed temporary file (the system removes it even if we are killed). `frames` keeps
    only (offset, length, delay in 1/100 s) of each, so a clip costs no memory however long
    it runs, and stopping copies the frames one by one into the file (`files.write_gif`,
    atomically, in the background). A long recording halves its frame rate after every
    RECORD_SLOWER_EVERY frames (5 a second for 5 minutes, then 2.5 for 10, ...)."""

    def __init__(self, path):
        import queue
        import threading
        self.path, self.interval, self.last = path, 1 / RECORD_FPS, -1e9
        self.frames, self.size, self.error = [], None, None      # frames: (offset, length, delay) in the spool
        self.captured = 0
        self.queue = queue.Queue(maxsize=50)
        self.thread = threading.Thread(target=self._reduce, daemon=True)
        self.thread.start()
        self.done = threading.Event()

    def capture(self, screen):
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        if self.size is None:                     # a clip keeps its first size (a resize is scaled in)
            w, h = screen.get_size()
            self.size = (RECORD_WIDTH, max(1, round(h * RECORD_WIDTH / w)))
        small = pygame.transform.smoothscale(screen, self.size)
        try:
            self.queue.put_nowait((pygame.image.tobytes(small, "RGB"), round(100 * self.interval)))
        except Exception:                        # noqa: BLE001 - a full queue drops a frame, never blocks
            return
        self.captured += 1
        if self.captured % RECORD_SLOWER_EVERY == 0:
            self.interval *= 2                    # a long clip: half the frame rate from here on

    def _reduce(self):
        import tempfile
        spool, previous = None, None
        while True:
            item = self.queue.get()
            if item is None:
                break
            if self.error:
                continue                                 # keep draining: capture never blocks
            data, delay = item                           # delay: 1/100 s until the next frame
            rgb = np.frombuffer(data, np.uint8).reshape(self.size[1], self.size[0], 3)
            image, previous = clip_frame(rgb, previous), rgb     # only what changed since the frame before
            try:
                spool = spool or tempfile.TemporaryFile(prefix="mnist-clip-")
                start = spool.seek(0, os.SEEK_END)
                spool.write(image)
                self.frames.append((start, len(image), delay))
            except OSError as e:
                self.error = f"could not record the clip: {e.strerror or e}"
        if self.frames and not self.error:
            def images():
                for start, length, delay in self.frames:
                    spool.seek(start)
                    yield spool.read(length), delay
            try:
                with atomic_file(self.path) as f:
                    write_gif(f, self.size, images(), transparent=CLIP_SAME)
            except OSError as e:
                self.error = f"could not write the clip {self.path}: {e.strerror or e}"
        if spool is not None:
            spool.close()
        self.done.set()

    def finish(self):
        """Stop recording; the file is written in the background (done is set when it is)."""
        self.queue.put(None)

    def wait(self, timeout=60):
        self.thread.join(timeout)
        return self.error or (f"clip saved to {os.path.abspath(self.path)} ({len(self.frames)} frames, "
                              f"{os.path.getsize(self.path) / 1e6:.1f} MB)" if self.frames else "the clip is empty")


class Outputs:
    """What the window writes besides the model: screenshots (S) and clips (Shift+S,
    --record), with the failures kept for the exit status (`errors`) and said in the window."""

    def __init__(self, screen, record=None):
        self.screen = screen
        self.recorder = Recorder(record) if record else None     # --record: from launch
        self.finishing = []                                       # clips stopped, being written
        self.errors = []

    def screenshot(self, state, path=None):
        """The screen as a PNG (atomically, checked before it replaces anything); the path,
        or None on failure (said in the window, kept in errors)."""
        path = path or unique_path("screenshot-%Y%m%d-%H%M%S.png")     # never the same name twice
        try:
            save_png_atomic(path, lambda f: pygame.image.save(self.screen, f, "shot.png"))
            state.say(f"screenshot saved to {os.path.abspath(path)}", 5)
            return path
        except (pygame.error, OSError) as e:
            message = f"could not save screenshot {path}: {e}".splitlines()[0]
            state.say(message, 8)
            self.errors.append(message)
            return None

    def toggle_clip(self, state):
        """Start recording a clip, or stop the one being recorded (written by its thread)."""
        if self.recorder is None:
            self.recorder = Recorder(unique_path("clip-%Y%m%d-%H%M%S.gif"))
            state.say(f"recording a clip to {os.path.abspath(self.recorder.path)} (Shift+S stops)", 5)
        else:
            self.stop_clip()
            state.say("writing the clip...", 5)

    def stop_clip(self):
        if self.recorder is not None:
            self.recorder.finish()
            self.finishing.append(self.recorder)
            self.recorder = None

    def tick(self, state):
        """After each frame: capture it into the clip being recorded; say the clips written."""
        if self.recorder is not None:
            self.recorder.capture(self.screen)
        for rec in [r for r in self.finishing if r.done.is_set()]:
            self.finishing.remove(rec)
            state.say(rec.wait(), 8)

    def close(self):
        """Stop recording and wait for every clip to be written (saying so on the console)."""
        self.stop_clip()
        for rec in self.finishing:
            print(f"writing the clip {rec.path} ...")
            message = rec.wait(timeout=300)
            print(("error: " if rec.error else "") + message.replace("clip saved", "Saved clip"),
                  file=sys.stderr if rec.error else sys.stdout)
            if rec.error:
                self.errors.append(rec.error)
        self.finishing = []
