"""The live Pygame window: every neuron, the strongest connections for the digit on
screen, activations, per-digit accuracy and a stats panel, while the network trains in a
background process.

The loop is events -> update -> draw -> flip. `App` owns the loop, the state and the
list of regions (the `regions` package); the state and every number drawn come from
`view_model.py`, `window_state.py` and `telemetry.py`, which have no pygame. The keys are
the table `KEYS` below: the dispatch, the help overlay (H) and the README's Controls table
all come from it.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pygame

import explain
from data_loader import DataError
from drawn_digit import mnist_style
from explain import order_by_class
from messages import Command, EvalReport, Order, RunHistory, SnapshotWeights
from neural_network import MLP, to_float
from regions.base import Scene
from regions.caches import TextCache
from regions.header import Header, Legend
from regions.layout import MIN_SIZE, compute_layout, font_size_for
from regions.network import NetworkColumns
from regions.overlays import ConfusionOverlay, HelpOverlay, MapOverlay
from regions.palette import ACCENT, BG, DIM, LOSS_COLOR, RIGHT, WRONG
from regions.panel import Panel
from regions.portrait import FilmStrip, Tooltip
from telemetry import Telemetry
from training_process import TrainingProcess
from utils import (
    Heap,
    atomic_file,
    atomic_save_npz,
    gif_frame_image,
    per_class_accuracy,
    percentile,
    process_age,
    save_png_atomic,
    unique_path,
    write_gif,
)
from view_model import Predictions, RepresentationMap, Sweep, WeightsStamp, compute_view, describe_position
from window_state import SPEEDS, Overlay, WindowState, waiting_message

FPS = 60
EASE = 0.35                       # per-frame step towards new activations (about 6 frames)
SWEEP_CHUNK = 32                  # test digits re-predicted per slice of a frame's idle time
MAX_FRAME_TIMES = 20_000          # frame-time samples kept (about 5 minutes at 60 FPS)
PANEL_REFRESH_S = 0.3             # the panel follows the trainer's reports at most this often
SNAPSHOT_CACHE = 3                # snapshots kept while rewound (2.7 MB each; let go back at live)
ADOPT_S = 0.064                   # new weights at most this often (four frames: view, lines, two light ones)
DREAM_STEPS = 60                  # gradient-ascent steps of a dream, one per frame
RECORD_FPS = 5                    # frames a second in a recorded clip
RECORD_WIDTH = 640                # a clip's width in pixels (a slide's worth)
RECORD_SLOWER_EVERY = 1500        # a clip halves its frame rate after each this many frames
FASHION_SHORT = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


# ------------------------------------------------------------------------ key table
@dataclass(frozen=True)
class Key:
    """One row of the controls: how it reads in the help and README, and what it does.
    `codes` maps each pygame key to the argument its action receives."""
    label: str
    help: str
    action: str = ""                                  # App.act_<action>(arg, shift); "" = mouse row
    codes: dict = field(default_factory=dict)


DIGITS = {**{pygame.K_0 + d: d for d in range(10)}, **{getattr(pygame, f"K_KP{d}"): d for d in range(10)}}

KEYS = (
    Key("Left / Right", "previous / next test digit (within the active filter)", "step",
        {pygame.K_LEFT: -1, pygame.K_RIGHT: 1}),
    Key("PgUp / PgDn", "100 digits back / forward", "step", {pygame.K_PAGEUP: -100, pygame.K_PAGEDOWN: 100}),
    Key("Home / End", "first / last test digit", "home_end", {pygame.K_HOME: False, pygame.K_END: True}),
    Key("0 - 9", "next test digit of that true class", "digit", DIGITS),
    Key("Shift+0 - 9", "explain that class instead of the prediction (or click an output neuron)", "explain", {}),
    Key("Ctrl+0 - 9", "explain the class rather than that one: what tells them apart (or right-click an output "
        "neuron)", "contrast", {}),
    Key("M / Shift+M", "next / previous digit the current weights get wrong", "mistake", {pygame.K_m: None}),
    Key("F", "browse mistakes only (on / off); also leaves a confusion-cell filter", "mistakes_only",
        {pygame.K_f: None}),
    Key("R", "random test digit", "random", {pygame.K_r: None}),
    Key("Space", "pause / resume training", "pause", {pygame.K_SPACE: None}),
    Key("N", "train one batch (while paused)", "one_batch", {pygame.K_n: None}),
    Key("[ / ]", "slower / faster training (slow motion, up to 1 s per batch)", "speed",
        {pygame.K_LEFTBRACKET: True, pygame.K_RIGHTBRACKET: False}),
    Key("L / Shift+L", "double / halve the learning rate from now on (marked on the curves)", "lr", {pygame.K_l: None}),
    Key(", / .", "rewind: the whole window shows an earlier snapshot of the network / step forward to live",
        "rewind", {pygame.K_COMMA: -1, pygame.K_PERIOD: 1}),
    Key("T", "per-class accuracy over time instead of bars (click a class's line for its mistakes)", "class_chart",
        {pygame.K_t: None}),
    Key("C", "line mode: relevance (LRP) -> contribution |a*w| -> weight |w|", "rank", {pygame.K_c: None}),
    Key("O", "order the hidden grids by the class each neuron supports most", "sort", {pygame.K_o: None}),
    Key("P", "map of what the last hidden layer makes of 2,000 test digits; again: earlier layers, close", "map",
        {pygame.K_p: None}),
    Key("A", "atlas: every hidden neuron drawn as what it responds to (its prototype)", "atlas", {pygame.K_a: None}),
    Key("V", "dream: the input that excites the explained class (or hovered neuron) most", "dream",
        {pygame.K_v: None}),
    Key("+ / -", "more / fewer connections (0 to 5,000 per layer pair)", "k",
        {pygame.K_PLUS: True, pygame.K_EQUALS: True, pygame.K_KP_PLUS: True,
         pygame.K_MINUS: False, pygame.K_KP_MINUS: False}),
    Key("X", "confusion matrix of the test set; click a cell to browse those digits", "confusion",
        {pygame.K_x: None}),
    Key("G", "pixel map of the explained class: relevance, again: d score / d pixel (gradient), again: off",
        "saliency", {pygame.K_g: None}),
    Key("D", "draw your own digit: left button draws, right erases", "draw", {pygame.K_d: None}),
    Key("Backspace", "clear the drawing", "clear", {pygame.K_BACKSPACE: None}),
    Key("S / Shift+S", "save a screenshot PNG / start or stop recording an animated GIF clip", "screenshot",
        {pygame.K_s: None}),
    Key("W", "save the model (to --save, or mnist_model.npz)", "save", {pygame.K_w: None}),
    Key("U", "switch to the full data set once it has arrived (first launch: training starts on the bundled "
        "sample while it downloads); restarts training with the same settings", "full_data", {pygame.K_u: None}),
    Key("H / F1", "this help", "help", {pygame.K_h: None, pygame.K_F1: None}),
    Key("Esc", "back one step: closes an overlay, ends a dream, stops explaining another class, leaves drawing, "
        "then the filter; never quits", "back", {pygame.K_ESCAPE: None}),
    Key("Q", "quit (saves to --save if given)", "quit", {pygame.K_q: None}),
    Key("click a film-strip digit", "open that digit"),
    Key("hover a hidden neuron", "its activation, receptive field and strongest weights"),
)
KEY_ACTIONS = {code: (k.action, arg) for k in KEYS for code, arg in k.codes.items()}


def controls_markdown():
    """The README's Controls table, generated from KEYS."""
    rows = ["| key / mouse | action |", "|---|---|"]
    rows += [f"| {k.label} | {k.help.replace('|', chr(92) + '|')} |" for k in KEYS]
    return "\n".join(rows)


# ------------------------------------------------------------------------- recording
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


# -------------------------------------------------------------------------- actions
class Actions:
    """What each row of the key table does: `act_<name>(arg, shift)`, arg from the table."""

    def __init__(self, app):
        self.app = app

    def say(self, text, seconds=3.0):
        if text:
            self.app.state.say(text, seconds)

    def act_step(self, delta, shift):
        self.say(self.app.state.step(delta, self.app.predict))

    def act_home_end(self, last, shift):
        self.say(self.app.state.home_end(last, self.app.predict))

    def act_digit(self, digit, shift):
        if shift:
            self.act_explain(digit, shift)
        else:
            self.say(self.app.state.next_of_class(digit, self.app.predict))

    def act_explain(self, c, shift):
        self.say(self.app.state.explain(c, self.app.view.pred))

    def act_contrast(self, d, shift):
        self.say(self.app.state.contrast(d, self.app.view.explained))

    def act_sort(self, _, shift):
        self.say(self.app.state.toggle_sorted())

    def act_map(self, _, shift):
        self.say(self.app.state.cycle_map(len(self.app.config.hidden)))

    def act_atlas(self, _, shift):
        self.say(self.app.state.toggle_atlas())

    def act_dream(self, _, shift):
        self.say(self.app.state.start_dream(self.app.view.explained), 5)

    def act_mistake(self, _, shift):
        self.say(self.app.state.next_mistake(-1 if shift else 1, self.app.predict))

    def act_mistakes_only(self, _, shift):
        self.say(self.app.state.toggle_mistakes(self.app.predict))

    def act_random(self, _, shift):
        self.say(self.app.state.random(self.app.rng, self.app.predict))

    def training_off(self):
        """Why training keys do nothing now, or '' when they work."""
        if self.app.worker is None or self.app.config.no_train:
            return "training is off (--no-train)"
        if self.app.tele.failed:
            return "the training process has stopped"
        if self.app.tele.finished:
            return "training has finished"
        return ""

    def act_pause(self, _, shift):
        st, why = self.app.state, self.training_off()
        if why:
            self.say(why)
            return
        st.pause_requested = not st.pause_requested
        self.app.tele.paused = False
        self.app.worker.send(Order(Command.PAUSE if st.pause_requested else Command.RESUME))

    def act_one_batch(self, _, shift):
        why = self.training_off()
        if why or not self.app.state.pause_requested:
            self.say(why or "N trains one batch while paused (Space pauses)")
            return
        self.app.worker.send(Order(Command.STEP))

    def act_lr(self, _, shift):
        why = self.training_off()
        if why:
            self.say(why)
            return
        self.app.worker.send(Order(Command.SCALE_LR, value=0.5 if shift else 2.0))

    def act_rewind(self, direction, shift):
        tele = self.app.tele
        live = tele.epoch + tele.batch / max(tele.n_batches, 1)
        self.say(self.app.state.step_rewind(direction, tele.snapshots, live), 5)

    def act_class_chart(self, _, shift):
        st = self.app.state
        st.class_chart = not st.class_chart
        st.touch()

    def act_speed(self, slower, shift):
        self.say(self.app.state.change_speed(slower))
        self.app.tele.speed_changed()                    # the new pace only, not a blend with the old
        if self.app.worker is not None:
            self.app.worker.send(Order(Command.DELAY, seconds=SPEEDS[self.app.state.speed]))

    def act_rank(self, _, shift):
        self.say(self.app.state.cycle_rank_mode())

    def act_k(self, up, shift):
        self.say(self.app.state.change_k(up))

    def act_confusion(self, _, shift):
        self.app.state.toggle_overlay(Overlay.CONFUSION)

    def act_help(self, _, shift):
        self.app.state.toggle_overlay(Overlay.HELP)

    def act_saliency(self, _, shift):
        self.say(self.app.state.cycle_saliency(self.app.state.rank_mode == "relevance"), 4)

    def act_draw(self, _, shift):
        self.say(self.app.state.toggle_drawing())

    def act_clear(self, _, shift):
        self.app.state.clear_canvas()

    def act_screenshot(self, _, shift):
        if not shift:
            self.save_screenshot()
        elif self.app.recorder is None:
            self.app.recorder = Recorder(unique_path("clip-%Y%m%d-%H%M%S.gif"))
            self.say(f"recording a clip to {os.path.abspath(self.app.recorder.path)} (Shift+S stops)", 5)
        else:
            self.app.recorder.finish()
            self.app.finished_recorders.append(self.app.recorder)
            self.app.recorder = None
            self.say("writing the clip...", 5)

    def save_screenshot(self, path=None):
        """Write the screen to a PNG (atomically, checked before it replaces anything);
        returns the path, or None on failure (said in the window, kept in app.errors)."""
        path = path or unique_path("screenshot-%Y%m%d-%H%M%S.png")     # never the same name twice
        try:
            save_png_atomic(path, lambda f: pygame.image.save(self.app.screen, f, "shot.png"))
            self.app.state.say(f"screenshot saved to {os.path.abspath(path)}", 5)
            return path
        except (pygame.error, OSError) as e:
            message = f"could not save screenshot {path}: {e}".splitlines()[0]
            self.app.state.say(message, 8)
            self.app.errors.append(message)
            return None

    def act_save(self, _, shift):
        path = os.path.abspath(self.app.config.save or "mnist_model.npz")   # the worker's cwd may differ
        if self.app.worker is None or not self.app.worker.process.is_alive():
            saved = self.app.link.save_window_weights(path)
            if saved:
                self.say(saved, 8)
            return
        self.app.worker.send(Order(Command.SAVE, path=path))
        self.say(f"saving model to {path} ...")

    def act_full_data(self, _, shift):
        app = self.app
        full = app.full
        if full is None:
            self.say("--offline: nothing to switch to (the bundled sample is in use)" if app.config.offline
                     else "this run already uses the full data set")
            return
        status = full.status
        if status.stage == "failed":
            self.say(f"the full data set is unavailable: {status.message}", 8)
        elif status.stage != "ready":
            self.say(f"the full data set is not here yet: {status.describe()}")
        else:
            try:
                app.switch_to = full.take()
            except DataError as exc:             # the cache vanished or broke since: stay on the sample
                self.say(f"could not switch to the full data set: {exc}", 8)
                return
            app.state.running = False

    def act_back(self, _, shift):
        self.say(self.app.state.back())

    def act_quit(self, _, shift):
        self.app.state.running = False


# ------------------------------------------------------------------------ full data
class FullData:
    """The full data set arriving in the background on a first launch (the window trains
    on the bundled sample meanwhile): its progress for the header and the console, and
    the data set to switch to once it is ready."""

    POLL_S = 0.2                      # the fetch's status is read at most this often
    CONSOLE_S = 5.0                   # a console line at most this often while it moves

    def __init__(self, fetch, prepare=lambda data: data, log=print):
        self.fetch, self.prepare, self.log = fetch, prepare, log
        self.status = fetch.poll()
        self._polled = time.monotonic()
        self._said = (self.status.stage, time.monotonic())
        self.log(self.console_line())

    def console_line(self):
        s = self.status
        if s.stage == "ready":
            return f"{s.describe()}: press U in the window to switch to it"
        if s.stage == "failed":
            return f"{s.describe()}; the window goes on with the bundled sample"
        return f"{s.describe()} (in the background; the window trains on the bundled sample meanwhile)"

    def poll(self):
        """Read the newest status (at most every POLL_S); True when its line changed."""
        now = time.monotonic()
        if now - self._polled < self.POLL_S:
            return False
        self._polled = now
        old, self.status = self.status, self.fetch.poll()
        stage, said = self._said
        if self.status.stage != stage or (self.status.stage in ("downloading", "parsing")
                                          and now - said >= self.CONSOLE_S):
            self.log(self.console_line())
            self._said = (self.status.stage, now)
        return self.status.describe() != old.describe()

    def offer(self):
        """(text, colour, fraction) for the header: the progress, the offer, or why not."""
        s = self.status
        if s.stage == "ready":
            return f"{s.describe()}: U switches to it", ACCENT, None
        fraction = None
        if s.stage == "downloading" and s.expected_bytes:
            fraction = min(1.0, s.done_bytes / s.expected_bytes)
        return s.describe(), DIM, fraction

    def take(self):
        """The full data set, cut as the command line asks."""
        return self.prepare(self.fetch.dataset())

    def close(self):
        self.fetch.close()


# ---------------------------------------------------------------------- trainer link
class TrainerLink:
    """The window's side of the training process: its reports, the newest weights (taken
    at a bounded rate), rewinding to its snapshots, a digit's history, saving."""

    def __init__(self, app):
        self.app = app
        self.snapshot_cache = {}            # snapshot index -> SnapshotWeights
        self.asked = set()                  # snapshot indices requested and not yet here
        self.digit_asked = None             # (test index, snapshot count) of the last history request

    def poll(self):
        app = self.app
        reports, fresh = app.worker.poll()
        for msg in reports:
            if isinstance(msg, SnapshotWeights):
                self.snapshot_cache[msg.index] = msg
                self.asked.discard(msg.index)
                while len(self.snapshot_cache) > SNAPSHOT_CACHE:      # oldest fetched first (2.7 MB each)
                    self.snapshot_cache.pop(next(iter(self.snapshot_cache)))
                continue
            text = app.tele.apply(msg, full_speed=app.state.speed == 0)
            if isinstance(msg, EvalReport) and msg.predictions is not None and app.stamp is not None \
                    and (app.stamp.epoch, app.stamp.batch) == (msg.epoch, msg.batch) and not app.tele.trained_here:
                app.predict.known[:] = msg.predictions           # the worker's exact pass of these weights
            if isinstance(msg, RunHistory):
                self.snapshot_cache.clear()                      # thinning may renumber the snapshots
            app.actions.say(text, 10 if app.tele.failed or app.tele.diverged else 5)
            app.needs_draw = True
        if fresh:
            app.weights_waiting = True
        if not app.worker.process.is_alive() and not app.tele.failed and app.state.running:
            app.tele.failed = f"the training process stopped unexpectedly (exit code {app.worker.process.exitcode})"
            app.actions.say(app.tele.failed, 10)
        self.follow_rewind()
        self.ask_digit_history()

    def adopt_weights(self):
        """Take the newest published weights into the window's network (not while rewound)."""
        app = self.app
        if app.state.rewind is not None:
            return
        stamp = app.worker.take_weights(app.net.weights, app.net.biases)
        app.weights_waiting = False
        if stamp is not None:
            app.stamp = WeightsStamp(*stamp)
            app.predict.reset(app.stamp)

    def follow_rewind(self):
        """Show the snapshot the state asks for (fetching it first), or the live weights."""
        app, i = self.app, self.app.state.rewind
        if i is None:
            if app.stamp is not None and app.stamp.version < 0:         # leaving a snapshot
                self.adopt_weights()
                self.snapshot_cache.clear()          # 2.7 MB each, fetched again in ms on the next rewind
            return
        snap = self.snapshot_cache.get(i)
        if snap is None:
            if i not in self.asked and app.worker.process.is_alive():
                self.asked.add(i)
                app.worker.send(Order(Command.SNAPSHOT, index=i))
            return
        stamp = WeightsStamp(-(i + 1), snap.info[0], snap.info[1])
        if app.stamp != stamp:
            app.net.set_params(snap.weights, snap.biases)                  # float16 -> float32
            app.stamp = stamp
            app.predict.reset(stamp)

    def ask_digit_history(self):
        """The digit on screen under every snapshot, asked again when snapshots are added."""
        app = self.app
        st, tele = app.state, app.tele
        want = (st.index, len(tele.snapshots))
        if st.drawing or not tele.snapshots or want == self.digit_asked or not app.worker.process.is_alive():
            return
        have = tele.digit_histories.get(st.index)
        if have is None or have[0] != len(tele.snapshots):
            app.worker.send(Order(Command.DIGIT_HISTORY, index=st.index))
        self.digit_asked = want

    def save_window_weights(self, path):
        """Save the weights the window holds (when the training process is gone): W1, b1, ...
        only, which --load explores or trains further with a fresh optimizer. Returns what
        to tell the user ('' when there are no weights)."""
        app = self.app
        if app.stamp is None:
            return ""
        arrays = {}
        for i, (W, b) in enumerate(zip(app.net.weights, app.net.biases), start=1):
            arrays[f"W{i}"], arrays[f"b{i}"] = W, b
        try:
            atomic_save_npz(path, arrays)
        except OSError as e:
            message = f"could not save {path}: {e.strerror or e}"
            app.errors.append(message)
            return message
        return (f"saved the window's last weights ({app.stamp.describe()}) to {path}, without the "
                f"optimizer state: the training process had stopped")

    def close(self, save=True):
        app = self.app
        if app.worker is None:
            return
        if not app.worker.process.is_alive() and app.tele.failed and app.config.save and not app.config.no_train \
                and save:
            print(self.save_window_weights(os.path.abspath(app.config.save)))
        keep = app.config.no_train or app.tele.diverged or not save      # never overwrite with a blown-up model
        for msg in app.worker.stop(save_path=None if keep else app.config.save):
            text = app.tele.apply(msg)
            if text and text.startswith("model saved"):
                print(f"Saved model to {app.tele.saved_path}")
            elif text and text.startswith("could not save"):
                print(f"error: {text}", file=sys.stderr)
                app.errors.append(text)
        app.worker = None


# --------------------------------------------------------------------- side analyses
class SideViews:
    """What the window computes beside the view of the digit: dreams, the representation
    map, grid orders, and which evaluation the per-class bars and the confusion matrix show."""

    def __init__(self, app):
        self.app = app
        self.dream_of, self.dreamer, self.dream_image, self.dream_step = None, None, None, 0

    def update_map(self):
        """Keep the open map building for the newest weights; its points glide there."""
        st = self.app.state
        if st.overlay is not Overlay.MAP:
            return
        layer = st.map_layer % len(self.app.config.hidden)
        if not self.app.map.busy and (self.app.map.stamp != self.app.stamp or self.app.map.layer != layer):
            self.app.map.start(self.app.net.weights, self.app.net.biases, self.app.stamp, layer)
        if self.app.map.points is None or self.app.map.layer != layer:
            self.app.shown.pop("map", None)
            return
        shown = self.app.shown.get("map")
        if shown is None or shown.shape != self.app.map.points.shape:
            self.app.shown["map"] = self.app.map.points.copy()
            self.app.needs_draw = True
        elif np.abs(self.app.map.points - shown).max() > 1e-4 * (np.abs(shown).max() + 1e-9):
            shown += (self.app.map.points - shown) * EASE
            self.app.needs_draw = True

    def step_dream(self):
        """One gradient-ascent step of the dream under way per frame (60 steps: a second)."""
        st = self.app.state
        if st.dream != self.dream_of:
            self.dream_of, self.dream_step, self.dream_image = st.dream, 0, None
            self.dreamer = None
            if st.dream is not None:
                kind, *what = st.dream
                target = what[0] if kind == "class" else what[1]
                layer = None if kind == "class" else what[0]
                self.dreamer = explain.dream(self.app.net, target, steps=DREAM_STEPS, layer=layer)
        if self.dreamer is not None:
            with np.errstate(all="ignore"):
                img = next(self.dreamer, None)
            if img is None:
                self.dreamer = None
            else:
                self.dream_image, self.dream_step = img, self.dream_step + 1

    # -------------------------------------------------------------------- draw
    def classes(self):
        """(per-class accuracy, the previous of the same kind, what it is of) for the panel:
        the latest evaluation live; the window's own pass of the weights when rewound."""
        if self.app.state.rewind is None:
            ev, (prev, caption) = self.app.tele.latest, self.app.tele.class_change(self.app.state.noun)
            return (None if ev is None else ev.per_class), prev, caption
        ps = self.app.sweep.result
        if ps is None or ps.stamp != self.app.stamp:
            return None, None, "rewound: passing the test set with those weights..."
        return per_class_accuracy(ps.confusion), None, f"rewound: full test set, {ps.stamp.describe()}"

    def rewound_accuracy(self):
        """The header's accuracy while rewound: the window's pass of the snapshot."""
        if self.app.state.rewind is None:
            return ""
        ps = self.app.sweep.result
        if ps is None or ps.stamp != self.app.stamp:
            return "REWOUND: test accuracy being measured..."
        return f"REWOUND: test accuracy {100 * ps.accuracy:.2f} % (full test set, {ps.stamp.describe()})"

    def orders(self):
        """Hidden grids ordered by preferred class (O), from the last pass that found them:
        they change only when a pass completes, never from frame to frame."""
        ps = self.app.sweep.result
        if not self.app.state.sorted_grids or ps is None or ps.preferred is None:
            return None
        if getattr(self, "_orders_of", None) is not ps:
            self._orders_of, self._orders = ps, [order_by_class(p) for p in ps.preferred]
        return self._orders

    def newest_confusion(self):
        """(matrix, label) of the newest whole-test-set result: the window's own pass or
        the trainer's evaluation, whichever is of later weights; None before either."""
        ps, ev = self.app.sweep.result, self.app.tele.last_full
        options = []
        if ps is not None:
            options.append(((ps.stamp.epoch, ps.stamp.batch, 1), ps.confusion, ps.stamp.describe()))
        if ev is not None:
            options.append(((ev.epoch, ev.batch, 0), ev.confusion, describe_position(ev.epoch, ev.batch)))
        if not options:
            return None
        _, conf, when = max(options, key=lambda o: o[0])
        newer = "" if not self.app.sweep.busy else \
            f" (a pass of newer weights is {100 * self.app.sweep.pos / len(self.app.y_test):.0f} % done)"
        return conf, f"weights: {when}{newer}"


# ---------------------------------------------------------------------------- events
class EventRouter:
    """Routes each event: modal overlays first, then keys (through the key table), then
    the region under the pointer."""

    def __init__(self, app):
        self.app = app

    def handle_event(self, event):
        """Route one event: modal overlays first, then keys, then the regions."""
        self.app.needs_draw = True
        st = self.app.state
        if event.type == pygame.QUIT:
            st.running = False
        elif event.type == pygame.KEYDOWN:
            action = KEY_ACTIONS.get(event.key)
            if event.mod & pygame.KMOD_CTRL and event.key in DIGITS:
                action = ("contrast", DIGITS[event.key])
            if action is not None and self.app.weights_seen:
                name, arg = action
                getattr(self.app.actions, "act_" + name)(arg, bool(event.mod & pygame.KMOD_SHIFT))
            elif action is not None and action[0] == "quit":
                st.running = False
        elif event.type in (pygame.MOUSEMOTION, pygame.MOUSEBUTTONDOWN) and self.app.layout and self.app.weights_seen:
            self.handle_pointer(event)
        elif event.type in (pygame.WINDOWRESIZED, pygame.WINDOWSIZECHANGED, pygame.VIDEORESIZE):
            self.app.layout = None

    def handle_pointer(self, event):
        st, pos = self.app.state, event.pos
        click = event.type == pygame.MOUSEBUTTONDOWN and event.button == 1
        right_click = event.type == pygame.MOUSEBUTTONDOWN and event.button == 3
        if st.overlay is Overlay.HELP:
            return
        if st.overlay is Overlay.CONFUSION:
            hit = self.app.confusion.hit(pos, self.app.scene()) if click else None
            if hit is not None:
                self.app.actions.say(st.choose_pair(*hit[1], self.app.predict))
            return
        if st.overlay is Overlay.MAP:
            hit = self.app.map_view.hit(pos, None) if click else None
            if hit is not None:
                st.go(hit[1])
                st.toggle_overlay(Overlay.MAP)
            return
        if click:
            hit = self.app.strip.hit(pos, None) or self.app.columns.output.hit(pos, None)
            if hit is not None and hit[0] == "open":
                st.go(hit[1])
                return
            if hit is not None and hit[0] == "explain":
                self.app.actions.act_explain(hit[1], False)
                return
            hit = self.app.panel.hit(pos, self.app.scene())
            if hit is not None:                          # a class's line in the per-class chart
                st.mistakes_only, st.pair_filter = True, None
                self.app.actions.say(st.next_of_class(hit[1], self.app.predict) or
                                 f"browsing the mistakes of class {self.app.names[hit[1]]}")
                return
        if right_click:
            hit = self.app.columns.output.hit(pos, None)
            if hit is not None and hit[0] == "explain":          # an output neuron: rather than that class
                self.app.actions.act_contrast(hit[1], False)
                return
        if st.drawing:
            uv = self.app.columns.canvas_at(pos)
            buttons = event.buttons if event.type == pygame.MOUSEMOTION else \
                (event.button == 1, event.button == 2, event.button == 3)
            if uv is not None and (buttons[0] or buttons[2]):
                st.paint(*uv, erase=bool(buttons[2]) and not buttons[0])
        hover = self.app.columns.neuron_at(pos)
        if hover != st.hover:
            st.hover = hover

    # ------------------------------------------------------------------ update


# ------------------------------------------------------------------------------ app
class App:
    """The window: routes events to regions and actions, mirrors the trainer, draws."""

    def __init__(self, config, data, screen=None, worker=True, full=None):
        self.config, self.data, self.screen = config, data, screen
        self.full = full                  # FullData arriving in the background, or None
        self.switch_to = None             # the data set U switches to (ends this app's loop)
        self.names = data.class_names
        self.fashion = data.name == "fashion"
        self.x_test, self.y_test = data.x_test, data.y_test.astype(np.int64)
        self.state = WindowState(self.y_test, tuple(self.names), k=config.connections,
                                 noun="image" if self.fashion else "digit")
        self.tele = Telemetry(paused=config.no_train, no_train=config.no_train)
        self.net = MLP(config.sizes, config.activation, seed=config.seed)
        self.worker = TrainingProcess(config, data, model_file=config.load) if worker else None
        if self.worker is not None:
            # one BLAS thread here, one in the trainer: a second thread on either side would
            # spin against the other process (a 20-digit prediction took 50 ms instead of 1)
            from threadpoolctl import threadpool_limits
            self._blas_limit = threadpool_limits(1)
        self.stamp = None if self.worker else WeightsStamp()    # None: no weights from the worker yet
        self.weights_waiting = False
        self.predict = Predictions(self.net, self.x_test)
        self.sweep = Sweep(lambda: MLP(config.sizes, config.activation, seed=config.seed), self.x_test, self.y_test)
        self.text = TextCache()
        self.actions, self.link, self.side = Actions(self), TrainerLink(self), SideViews(self)
        self.router = EventRouter(self)
        self.recorder = Recorder(config.record) if config.record else None     # --record: from launch
        self._panel_tele, self._panel_time, self._fps_time, self._fps_line = -1, 0.0, 0.0, ""
        self.frame_no = self.view_frame = 0        # frames so far; the last that recomputed the view
        self.finished_recorders = []                                            # clips being written
        self.heap = Heap()                        # malloc: no growth or swings from its own holes
        self.header, self.columns = Header(self.text), NetworkColumns(self.text)
        self.tooltip, self.strip = Tooltip(self.text, self.columns), FilmStrip(self.text)
        self.legend = Legend(self.text)
        self.panel, self.confusion, self.help = Panel(self.text), ConfusionOverlay(self.text), HelpOverlay(self.text)
        self.map_view = MapOverlay(self.text)
        self.map = RepresentationMap(lambda: MLP(config.sizes, config.activation, seed=config.seed),
                                     self.x_test, self.y_test)
        self.layout = None
        self.view, self.view_key, self.lines_key, self.shown = None, None, None, {}
        self.view_cost, self.last_adopt = 0.0, 0.0
        self.draw_later = False           # this frame recomputed the view for new weights: draw it next frame
        self.needs_draw, self.snap = True, True
        self.frame_ms, self.frame_interval_ms = [], []
        self.drawn_frames = 0
        self.errors = []                  # failed saves and screenshots, for the exit status
        self.rng = np.random.default_rng()
        self.toast_shown = False
        self.last_frame = self.frame_start = time.perf_counter()

    @property
    def weights_seen(self):
        return self.stamp is not None

    # ------------------------------------------------------------------ events
    def update(self):
        """Mirror the trainer, adopt new weights at a bounded rate, recompute the view
        when what it depends on changed, and ease the display towards it. The one place
        that decides when the lines, grids, sweep and view are refreshed."""
        st, now = self.state, time.perf_counter()
        if self.worker is not None:
            self.link.poll()
        if self.full is not None and self.full.poll():
            self.needs_draw = True
        user_changed = self.view_key is None or st.version != self.view_key[0]
        # new weights refresh the picture at most every few refresh costs (view + lines), so
        # thousands of lines (K = 5000) cannot eat every frame; user actions refresh at once
        refresh_cost = self.view_cost + self.columns.lines_seconds
        if self.weights_waiting and (user_changed or now - self.last_adopt >= max(ADOPT_S, 6 * refresh_cost)):
            self.link.adopt_weights()
            self.last_adopt = now
        if self.stamp is None:
            return
        self.sweep.want_stats = st.hover is not None or st.atlas
        self.sweep.want_preferred = st.hover is not None or st.sorted_grids
        if self.sweep.needs_pass(self.stamp):
            self.sweep.start(self.net.weights, self.net.biases, self.stamp)
        waiting = waiting_message(st, self.sweep.result, self.sweep.pos / len(self.y_test) if self.sweep.busy else 0)
        if waiting and waiting != st.toast:                 # O and A wait for the pass: say how far it is
            st.say(waiting, 0.5)
            self.needs_draw = True
        self.side.step_dream()
        self.side.update_map()
        key = (st.version, self.stamp, self.side.dream_step)
        if self.lines_key != self.view_key:              # after new weights the lines follow one frame later,
            self.lines_key = self.view_key               # so no frame both recomputes the view and redraws them
            self.needs_draw = True
        if key != self.view_key:
            t0 = time.perf_counter()
            if st.dream is not None and self.side.dream_image is not None:
                x = self.side.dream_image
            else:
                x = mnist_style(st.canvas).reshape(784) if st.drawing else to_float(self.x_test[st.index])
            self.view = compute_view(self.net, x, self.stamp, st.k, st.rank_mode, st.saliency,
                                     empty=st.drawing and not st.canvas.any(), explain=st.explain_class,
                                     contrast=st.contrast_class)
            if self.layout is not None:                          # the strip's frames, for the same weights
                self.predict(self.strip.shown(st, self.sweep.result, self.predict)[0])
            self.view_cost = time.perf_counter() - t0
            self.view_frame = self.frame_no
            # new weights (not the user): the picture follows a frame later, so no frame both
            # recomputes the view and redraws the window (a key's answer is drawn at once)
            self.draw_later = not user_changed
            self.snap = self.snap or (user_changed and key[2] == 0)   # a new digit jumps; weights, dreams glide
            self.view_key = key
            if user_changed or self.lines_key is None:
                self.lines_key = key
            self.needs_draw = True
        if ease(self.shown, self.view, self.snap):
            self.needs_draw = True
        self.snap = False
        toast = bool(st.toast) and time.monotonic() < st.toast_until
        if toast != self.toast_shown:
            self.toast_shown, self.needs_draw = toast, True

    def scene(self):
        st, tele, cfg = self.state, self.tele, self.config
        return Scene(
            state=st, tele=tele, view=self.view, shown=self.shown, sweep=self.sweep.result, predict=self.predict,
            weights=self.net.weights, config=cfg, images=self.x_test, names=tuple(self.names),
            short_names=FASHION_SHORT if self.fashion else tuple(self.names),
            noun="image" if self.fashion else "digit", dataset="Fashion-MNIST" if self.fashion else "MNIST",
            confusion=self.side.newest_confusion(), data_label=data_label(self.data, self.config, self.full),
            data_offer=self.full.offer() if self.full is not None else ("", None, None),
            orders=self.side.orders(), dream_step=self.side.dream_step, map=self.map, map_points=self.shown.get("map"),
            classes=self.side.classes(), accuracy=self.side.rewound_accuracy(),
            status=status_line(self.tele, self.state, self.config, self.worker), keys=KEYS, lines_stamp=self.lines_key,
            fps_line=self.fps_text(), sweep_done=self.sweep.pos / len(self.y_test) if self.sweep.busy else 0.0)

    def panel_key(self):
        """What the panel shows depends on: user changes at once; the trainer's reports at
        most every PANEL_REFRESH_S, and not in a frame that recomputed the view, so frames
        that redraw it stay rare and light."""
        now = time.monotonic()
        if self.tele.version != self._panel_tele and now - self._panel_time >= PANEL_REFRESH_S \
                and self.frame_no > self.view_frame + 1:
            self._panel_tele, self._panel_time = self.tele.version, now
        st = self.state
        return (self._panel_tele, st.version, self.view_key, id(self.sweep.result), self.fps_text(),
                id(self.tele.digit_histories.get(st.index)), self.layout.size,
                pygame.mouse.get_pos() if st.class_chart else None)

    def fps_text(self):
        """The frame-rate line, refreshed twice a second (not every frame)."""
        now = time.monotonic()
        if now - self._fps_time >= 0.5:
            fps = 1000 / np.mean(self.frame_interval_ms[-30:]) if self.frame_interval_ms else 0
            work = np.mean(self.frame_ms[-30:]) if self.frame_ms else 0
            tele, cfg = self.tele, self.config
            idle = tele.paused or tele.finished or cfg.no_train or tele.failed
            self._fps_line = "idle: redrawn only when something changes" if idle else \
                f"{fps:.0f} FPS   frame {work:.1f} ms"
            self._fps_time = now
        return self._fps_line

    def place(self, size):
        fs = font_size_for(*size)
        lay = self.layout = compute_layout(*size, self.config.hidden, self.text.widest(self.names, fs, True))
        self.header.layout(lay.header, lay.font_size)
        self.columns.place(lay)
        self.tooltip.layout(lay.network, lay.font_size)
        self.strip.layout(lay.strip or pygame.Rect(0, 0, 0, 0), lay.font_size)
        self.legend.layout(lay.legend, lay.font_size)
        self.panel.layout(lay.panel, lay.font_size)
        self.confusion.layout(lay.network, lay.font_size)
        self.map_view.layout(lay.network, lay.font_size)
        self.help.layout(pygame.Rect((0, 0), size), lay.font_size)

    def draw(self, surface):
        w, h = surface.get_size()
        if w < MIN_SIZE[0] or h < MIN_SIZE[1]:
            self.layout = None
            surface.fill(BG)
            self.text.blit(surface, f"window too small: at least {MIN_SIZE[0]}x{MIN_SIZE[1]}", (w // 2, h // 2),
                           13, DIM, False, "center")
            return
        if self.view is None:
            surface.fill(BG)
            self.text.blit(surface, "starting the training process...", (w // 2, h // 2), 16, DIM, False, "center")
            return
        if self.layout is None or self.layout.size != (w, h):
            self.place((w, h))
        scene, st = self.scene(), self.state
        surface.fill(BG)
        if st.overlay is Overlay.CONFUSION:
            self.confusion.draw(surface, scene)
        elif st.overlay is Overlay.MAP:
            pts = self.shown.get("map")
            key = (None if pts is None else pts.tobytes(), st.version, self.view_key, st.map_layer,
                   pygame.mouse.get_pos())                       # the points, the ring, the hovered point
            self.map_view.draw_cached(surface, scene, key)
        else:
            self.columns.draw(surface, scene)
            shown, _ = self.strip.shown(st, self.sweep.result, self.predict)
            verdicts = (self.predict(shown) == self.y_test[shown]).tobytes()     # frames change only when these do
            self.strip.draw_cached(surface, scene, (st.version, id(self.sweep.result), shown.tobytes(), verdicts,
                                                    self.layout.size))
            self.tooltip.draw(surface, scene)             # last: the tooltip covers the rest
        v = self.view
        legend_key = (st.k, st.rank_mode, v.explained, v.contrast, v.relevance is None, self.layout.size, st.overlay)
        self.legend.draw_cached(surface, scene, legend_key)
        self.panel.draw_cached(surface, scene, self.panel_key())
        self.header.draw(surface, scene)
        if st.overlay is Overlay.HELP:
            self.help.draw(surface, scene)

    # -------------------------------------------------------------------- loop
    def frame(self):
        """One iteration: events -> update -> draw -> flip (only when something changed),
        then the test-set sweep in the time left before the next frame is due. Returns
        the frame's work time in ms."""
        t0 = self.frame_start = time.perf_counter()
        self.frame_no += 1
        for event in pygame.event.get():
            self.router.handle_event(event)
        self.update()
        deferred, self.draw_later = self.draw_later, False
        drew = self.needs_draw and not deferred
        if drew:
            self.draw(self.screen)
            pygame.display.flip()
            self.needs_draw = False
            self.drawn_frames += 1
        if self.recorder is not None:
            self.recorder.capture(self.screen)
        for rec in [r for r in self.finished_recorders if r.done.is_set()]:
            self.finished_recorders.remove(rec)
            self.state.say(rec.wait(), 8)
        t1 = time.perf_counter()
        if drew or deferred:                      # frames that did work (idle ones do next to none)
            _bounded_append(self.frame_ms, (t1 - t0) * 1000)
        if drew:
            _bounded_append(self.frame_interval_ms, (t1 - self.last_frame) * 1000)
            self.last_frame = t1
        self.heap.tick()                                   # after the flip: in the frame's idle time
        if self.map.busy and self.map.step():              # the open map first: it is on screen
            self.needs_draw = True
        if self.sweep.busy:
            overlay = self.state.overlay is Overlay.CONFUSION      # its matrix is what the user waits for
            self.idle_work(t0 + (1.5 if overlay else 1) / FPS - 0.002)
        return (t1 - t0) * 1000

    def idle_work(self, deadline):
        """Advance the test-set sweep in slices while they fit before `deadline`
        (at least one slice per frame, so it always progresses)."""
        cost = getattr(self, "_sweep_cost", 0.0)
        while self.sweep.busy:
            t = time.perf_counter()
            if self.sweep.step(SWEEP_CHUNK):
                self.needs_draw = True                       # dead neurons, confusion matrix
            cost = max(time.perf_counter() - t, 0.9 * cost)
            if time.perf_counter() + cost > deadline:
                break
        self._sweep_cost = cost

    def close(self, save=True):
        """Stop the training process (saving to --save when `save`) and finish clips."""
        self.link.close(save)
        if self.recorder is not None:
            self.recorder.finish()
            self.finished_recorders.append(self.recorder)
            self.recorder = None
        for rec in self.finished_recorders:
            print(f"writing the clip {rec.path} ...")
            message = rec.wait(timeout=300)
            print(("error: " if rec.error else "") + message.replace("clip saved", "Saved clip"),
                  file=sys.stderr if rec.error else sys.stdout)
            if rec.error:
                self.errors.append(rec.error)
        self.finished_recorders = []


def ease(shown, view, snap):
    """Move the displayed activations and probabilities in `shown` a step towards the
    view's (all the way when snap); returns True while they still move."""
    targets = {"probs": view.probs}
    for i, a in enumerate(view.acts[1:-1]):
        peak = a.max()
        # brightness = positive activation (tanh can go negative); sqrt keeps faint activity visible
        targets[("hidden", i)] = np.sqrt(np.clip(a, 0, None) / peak) if peak > 0 else np.zeros_like(a)
    moving = False
    for key, target in targets.items():
        current = shown.get(key)
        if snap or current is None or current.shape != target.shape:
            shown[key] = target.astype(np.float32)
            continue
        diff = target - current
        if np.abs(diff).max() > 2e-3:
            current += diff * EASE
            moving = True
        else:
            current[...] = target
    return moving


def data_label(data, config, full=None):
    """Where the data came from and how much of it there is (shown in the header)."""
    source = data.source
    if full is not None:                  # the full set is on its way: FullData.offer says how far
        return f"data: bundled sample, {len(data.y_train):,} / {len(data.y_test):,} images  |"
    if source.startswith("bundled sample") and not config.offline and config.data_dir is None:
        source = "bundled sample (OpenML was unreachable)"
    return f"data: {source}; {len(data.y_train):,} training / {len(data.y_test):,} test images"


def status_line(tele, state, config, worker):
    """(text, colour) of the training state, for the panel's first line."""
    if state.rewind is not None and state.rewind < len(tele.snapshots):
        e, b, _ = tele.snapshots[state.rewind]
        return f"REWOUND: {describe_position(e, b)}", LOSS_COLOR
    if tele.failed:
        return "TRAINER STOPPED: " + tele.failed, WRONG
    if tele.diverged:
        return "DIVERGED", WRONG
    if tele.finished:
        return "FINISHED", RIGHT
    if config.no_train or worker is None:
        return "EXPLORING (no training)", ACCENT
    if state.pause_requested:
        return "PAUSED", LOSS_COLOR
    s = SPEEDS[state.speed]
    return ("TRAINING" if s == 0 else f"SLOW MOTION: {s * 1000:g} ms/batch"), RIGHT


def window_metrics(app, first_frame_s):
    """The run's metrics (written by --metrics): accuracy, rates, frame times, errors."""
    tele = app.tele
    ms = app.frame_ms[1:] or app.frame_ms
    ev = tele.last_full
    rates = list(tele.full_speed_rates)
    return {
        "status": "failed" if tele.failed else "diverged" if tele.diverged else
                  "finished" if tele.finished else "stopped",
        "error": tele.failed or tele.diverged or None,
        "test_accuracy": ev.accuracy if ev else float("nan"),
        "per_class_accuracy": [float(v) for v in ev.per_class] if ev else [float("nan")] * 10,
        "confusion_matrix": ev.confusion.tolist() if ev else None,
        "epochs_completed": ev.epoch if ev else 0,
        "train_samples_per_s": float(np.median(rates)) if rates else 0.0,
        "frame_ms_p50": percentile(ms, 50), "frame_ms_p95": percentile(ms, 95), "frame_ms_p99": percentile(ms, 99),
        "frames": app.drawn_frames, "first_frame_s": first_frame_s,
        "fps": 1000 / float(np.mean(app.frame_interval_ms[1:])) if len(app.frame_interval_ms) > 1 else None,
        "window": list(app.screen.get_size()), "connections": app.state.k,
        "hyperparameters": app.config.hyperparameters(),
        "dataset": {"name": app.data.name, "source": app.data.source,
                    "train": int(len(app.data.y_train)), "test": int(len(app.data.y_test))},
        "errors": list(app.errors),
    }


def _bounded_append(values, v):
    values.append(v)
    if len(values) > MAX_FRAME_TIMES:
        del values[:MAX_FRAME_TIMES // 2]


def switch_data(app):
    """The app for the data set `app` switches to (U): the old run stops without saving,
    a new one starts on the same window with the same settings."""
    data = app.switch_to
    app.close(save=False)
    if app.full is not None:
        app.full.close()
    print(f"Switched to {data.source}: {len(data.y_train):,} training / {len(data.y_test):,} test images; "
          f"training restarts")
    return App(app.config, data, app.screen)


def run_app(config, data, start_time=None, fetch=None, prepare=lambda data: data):
    """Open the window and run until the user quits (or --frames / --screenshot are done).
    `fetch`: the full data set arriving in the background (data is the bundled sample
    meanwhile); U switches to it once ready, cut by `prepare`.
    Returns the metrics dict; first_frame_s counts from the launch of the process."""
    age = process_age()
    start_time = time.perf_counter() - age if age is not None else (start_time or time.perf_counter())
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_caption("MNIST network - live")
    screen = pygame.display.set_mode((config.width, config.height), pygame.RESIZABLE)
    pygame.key.set_repeat(300, 35)
    app = App(config, data, screen, full=FullData(fetch, prepare) if fetch is not None else None)
    first_frame_s = None

    def screenshot():
        """The newest weights, drawn exactly (no easing, no message over the header)."""
        if app.weights_waiting:
            app.link.adopt_weights()
        app.update()
        app.state.toast = ""
        ease(app.shown, app.view, snap=True)
        app.draw(app.screen)
        if app.actions.save_screenshot(config.screenshot):
            print(f"Saved screenshot to {config.screenshot}")
        else:
            print(f"error: {app.errors[-1]}", file=sys.stderr)

    def done():
        """Whether --frames / --screenshot have what they wait for (taking the screenshot)."""
        if config.frames and app.drawn_frames >= config.frames:
            if config.screenshot:    # --frames decides when: the view as it is now
                screenshot()
            return True
        tele = app.tele
        if config.screenshot and app.weights_seen and (tele.finished or config.no_train or tele.diverged) \
                and not app.weights_waiting and app.sweep.result is not None \
                and app.sweep.result.stamp == app.stamp and tele.latest is not None:
            screenshot()
            return True
        return False

    try:
        while True:
            app.frame()
            if first_frame_s is None and app.drawn_frames:
                first_frame_s = time.perf_counter() - start_time
            if done():
                break
            if not app.state.running:
                if app.switch_to is None:
                    break
                app = switch_data(app)
            wait = app.frame_start + 1 / FPS - time.perf_counter()   # frames start 1/60 s apart
            if wait > 0:
                time.sleep(wait)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
        if app.full is not None:
            app.full.close()
        metrics = window_metrics(app, first_frame_s)
        pygame.quit()
    return metrics
