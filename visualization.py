"""The live Pygame window: every neuron, the strongest connections for the digit on
screen, activations, per-digit accuracy and a stats panel, while the network trains in a
background process.

The loop is events -> update -> draw -> push. `App` owns the loop, the state and one list
of regions in z-order (`layers`), used both to draw (bottom first) and to hit-test a click
(top first, a modal overlay taking every click); the regions come from the `regions`
package. The state and every number drawn come from `view_model.py`, `window_state.py`
and `telemetry.py`, which have no pygame. The keys are the table `window_keys.KEYS`: the
dispatch, the help overlay (H) and the README's Controls table all come from it; what each
key and click does is `window_actions.Actions`, and `window_events.EventRouter` routes each
event to them.

A frame pushes to the screen only what changed (`pygame.display.update(rects)`): each
region says whether its picture changed, the network view which of its grids moved; a
new layout or a different set of regions (an overlay opened or closed) pushes the whole
window (`flip`). On X11 it pushes through the X server's shared memory
(`use_native_framebuffer`): SDL's default there renders the whole window on every push.
"""
from __future__ import annotations

import functools
import os
import sys
import time

import numpy as np
import pygame

from mnist_live.neural_network import MLP, to_float
from mnist_live.runs.comparison import Comparison, SweepWatch, library_path
from mnist_live.runs.recorder import Recording
from mnist_live.training.process import TrainingProcess
from mnist_live.utils import percentile
from mnist_live.window import settings as view_settings
from mnist_live.window.actions import Actions
from mnist_live.window.clips import Recorder
from mnist_live.window.drawn_digit import mnist_style
from mnist_live.window.events import EventRouter
from mnist_live.window.fetch import FullData
from mnist_live.window.keys import KEYS
from mnist_live.window.memory import Heap
from mnist_live.window.regions.base import Scene
from mnist_live.window.regions.caches import TextCache
from mnist_live.window.regions.caption import Caption
from mnist_live.window.regions.header import Header, Legend, data_label
from mnist_live.window.regions.layout import MIN_SIZE, compute_layout, font_size_for
from mnist_live.window.regions.network import NetworkColumns
from mnist_live.window.regions.overlays import ConfusionOverlay, HelpOverlay, MapOverlay
from mnist_live.window.regions.palette import ACCENT, BG, DIM
from mnist_live.window.regions.panel import Panel, status_line
from mnist_live.window.regions.portrait import FilmStrip, Tooltip
from mnist_live.window.regions.runs_views import LeaderboardOverlay, WatchOverlay
from mnist_live.window.side_views import SideViews
from mnist_live.window.state import Overlay, WindowState, waiting_message
from mnist_live.window.telemetry import Telemetry
from mnist_live.window.trainer_link import TrainerLink
from mnist_live.window.view_model import Predictions, RepresentationMap, Sweep, WeightsStamp, compute_view, ease

FPS = 60
SWEEP_CHUNK = 32                  # test digits re-predicted per slice of a frame's idle time
MAX_FRAME_TIMES = 20_000          # frame-time samples kept (about 5 minutes at 60 FPS)
PANEL_REFRESH_S = 0.3             # the panel follows the trainer's reports at most this often
ADOPT_S = 0.064                   # new weights at most this often (four frames: view, lines, two light ones)
FETCH_NICE = 10                   # the sample's trainer's lower priority while the full set arrives
FASHION_SHORT = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


# ------------------------------------------------------------------------------ app
class App:
    """The window: the loop, the state, the regions in z-order; mirrors the trainer."""

    def __init__(self, config, data, screen=None, worker=True, full=None, command=None, view=None):
        self.config, self.data, self.screen = config, data, screen
        self.full = full                  # FullData arriving in the background, or None
        self.switch_to = None             # the data set U switches to (ends this app's loop)
        self.names = data.class_names
        self.fashion = data.name == "fashion"
        self.x_test, self.y_test = data.x_test, data.y_test.astype(np.int64)
        self.state = WindowState(self.y_test, tuple(self.names), k=config.connections,
                                 noun="image" if self.fashion else "digit")
        if view is not None:              # view_settings.ViewSettings remembered from the last launch
            self.state.rank_mode, self.state.sorted_grids, self.state.captions = \
                view.rank_mode, view.sorted_grids, view.captions
        self.tele = Telemetry(paused=config.no_train, no_train=config.no_train)
        self.net = MLP(config.sizes, config.activation, seed=config.seed)
        self.command = command            # the command line that started the run (recorded with it)
        # on the bundled sample while the full set is parsed: the parse has the cores first (FETCH_NICE)
        self.worker = TrainingProcess(config, data, model_file=config.load,
                                      observers=run_recording(config, data, command),
                                      nice=FETCH_NICE if full is not None else 0) if worker else None
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
        self.tooltip, self.strip = Tooltip(self.text), FilmStrip(self.text)
        self.legend, self.caption = Legend(self.text), Caption(self.text)
        self.panel, self.confusion, self.help = Panel(self.text), ConfusionOverlay(self.text), HelpOverlay(self.text)
        self.map_view = MapOverlay(self.text)
        self.map = RepresentationMap(lambda: MLP(config.sizes, config.activation, seed=config.seed),
                                     self.x_test, self.y_test)
        self.board, self.watch_view = LeaderboardOverlay(self.text), WatchOverlay(self.text)
        self.compare, self.watch = self.open_library()
        self.layout = None
        self.frame_scene = None           # the scene of the frame being drawn (built in update)
        self.pushed = None                # (layout size, the regions shown) of the last full push
        self.last_push = None             # the rectangles the last drawn frame pushed (None: all)
        self.view, self.view_key, self.lines_key, self.shown = None, None, None, {}
        self.view_cost, self.last_adopt = 0.0, 0.0
        self.draw_later = False           # this frame recomputed the view for new weights: draw it next frame
        self.needs_draw, self.snap = True, True
        self.frame_ms, self.frame_interval_ms, self.push_px = [], [], []
        self.draw_ms, self.push_ms = [], []      # of drawn frames: painting, and sending it to the screen
        self.drawn_frames = 0
        self.errors = []                  # failed saves and screenshots, for the exit status
        self.rng = np.random.default_rng()
        self.toast_shown = False
        self.last_frame = self.frame_start = time.perf_counter()

    @property
    def weights_seen(self):
        return self.stamp is not None

    def layers(self):
        """The regions on screen, bottom first: drawn in this order, hit-tested in reverse."""
        st = self.state
        if st.overlay is Overlay.CONFUSION:
            network = [self.confusion]
        elif st.overlay is Overlay.MAP:
            network = [self.map_view]
        elif st.overlay in (Overlay.LEADERBOARD, Overlay.WATCH):
            network = [self.board if st.overlay is Overlay.LEADERBOARD else self.watch_view]
        else:
            network = [self.columns, self.strip, self.tooltip]
        caption = [self.caption] if st.captions else []
        return network + [self.legend, *caption, self.panel, self.header] + \
            ([self.help] if st.overlay is Overlay.HELP else [])

    # ------------------------------------------------------------------ update
    def update(self):
        """Mirror the trainer, adopt new weights at a bounded rate, recompute the view
        when what it depends on changed, ease the display towards it, lay out the window
        and let each region derive what it draws and hit-tests. The one place that decides
        when the lines, grids, sweep and view are refreshed."""
        st, now = self.state, time.perf_counter()
        if self.worker is not None:
            self.link.poll()
        if self.full is not None and self.full.poll():
            self.needs_draw = True
        if self.watch is not None and self.watch.poll():      # the watched sweep's newest read
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
        self.update_regions()

    def update_regions(self):
        """Lay the window out for its size, then let each region derive its hit rectangles
        and the like from the state (the strip asks for the predictions it frames)."""
        w, h = self.screen.get_size()
        if w < MIN_SIZE[0] or h < MIN_SIZE[1]:
            self.layout = None
            return
        captions = self.state.captions                     # I: the caption strip takes its room or gives it back
        if self.layout is None or self.layout.size != (w, h) or (self.layout.caption is not None) != captions:
            self.place((w, h))
        self.columns.set_orders(self.side.orders())                  # first: the hovered cell follows the order
        self.frame_scene = scene = self.scene()
        for region in self.layers():
            region.update(scene)

    def scene(self):
        st, tele, cfg = self.state, self.tele, self.config
        hover_cell = None
        if st.hover is not None and self.layout is not None:
            hover_cell = self.columns.neuron_rect(*st.hover)
        offer = ("", None, None)
        if self.full is not None:
            text, ready, fraction = self.full.offer()
            offer = (text, ACCENT if ready else DIM, fraction)
        return Scene(
            state=st, tele=tele, view=self.view, shown=self.shown, sweep=self.sweep.result, predict=self.predict,
            weights=self.net.weights, config=cfg, images=self.x_test, names=tuple(self.names),
            short_names=FASHION_SHORT if self.fashion else tuple(self.names),
            noun="image" if self.fashion else "digit", dataset="Fashion-MNIST" if self.fashion else "MNIST",
            confusion=self.side.newest_confusion(), data_label=data_label(self.data, self.config, self.full),
            data_offer=offer, orders=self.side.orders(), dream_step=self.side.dream_step, map=self.map,
            map_points=self.shown.get("map"), classes=self.side.classes(), accuracy=self.side.rewound_accuracy(),
            status=status_line(self.tele, self.state, self.config, self.worker), keys=KEYS, lines_stamp=self.lines_key,
            fps_line=self.fps_text(), view_key=self.view_key, hover_cell=hover_cell,
            sweep_done=self.sweep.pos / len(self.y_test) if self.sweep.busy else 0.0,
            panel_key=self.panel_key() if self.layout is not None else None, compare=self.compare, watch=self.watch)

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
                st.pointer if st.class_chart else None, self.compare.version)

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
        self.layout = compute_layout(*size, self.config.hidden, self.text.widest(self.names, fs, True),
                                     caption=self.state.captions)
        for region in (self.header, self.columns, self.tooltip, self.strip, self.legend, self.panel, self.confusion,
                       self.map_view, self.help, self.board, self.watch_view):
            region.place(self.layout)
        if self.layout.caption is not None:
            self.caption.place(self.layout)
        self.pushed = None                                   # a new layout: the whole window is pushed

    # -------------------------------------------------------------------- draw
    def draw(self, surface):
        """Paint the frame; returns the rectangles whose pixels may have changed (None:
        the whole window)."""
        w, h = surface.get_size()
        if self.layout is None or self.view is None or self.frame_scene is None:
            surface.fill(BG)
            text = f"window too small: at least {MIN_SIZE[0]}x{MIN_SIZE[1]}" if w < MIN_SIZE[0] or h < MIN_SIZE[1] \
                else "starting the training process..."
            self.text.blit(surface, text, (w // 2, h // 2), 13 if self.view is not None else 16, DIM, False,
                           "center")
            self.pushed = None
            return None
        scene, layers = self.frame_scene, self.layers()
        surface.fill(BG)
        for region in layers:
            region.paint(surface, scene)
        shown = (self.layout.size, tuple(id(r) for r in layers))
        if self.pushed != shown:                             # a new layout or overlay: everything changed
            self.pushed = shown
            return None
        return distinct_rects([r for region in layers for r in region.dirty_rects()])

    def push(self, rects):
        """Send the frame to the screen: the changed rectangles only, or all of it (None)."""
        self.last_push = rects
        w, h = self.screen.get_size()
        if rects is None:
            pygame.display.flip()
            _bounded_append(self.push_px, w * h)
        elif rects:
            pygame.display.update(rects)
            _bounded_append(self.push_px, sum(r.width * r.height for r in rects))

    # -------------------------------------------------------------------- loop
    def frame(self):
        """One iteration: events -> update -> draw -> push (only when something changed),
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
            t_draw = time.perf_counter()
            rects = self.draw(self.screen)
            t_push = time.perf_counter()
            self.push(rects)
            _bounded_append(self.draw_ms, (t_push - t_draw) * 1000)
            _bounded_append(self.push_ms, (time.perf_counter() - t_push) * 1000)
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

    def open_library(self):
        """The earlier runs to overlay, read once now (a library it cannot read: a message,
        no overlay), and the --watch sweep's reader thread."""
        path = library_path(self.config)
        compare = Comparison(path, self.config, live_pid=self.worker.process.pid if self.worker else None)
        message = compare.load()
        if message:
            self.state.say(message, 6)
        watch = None
        if self.config.watch:
            watch = SweepWatch(path, self.config.watch)
            self.state.overlay = Overlay.WATCH
        return compare, watch

    def close(self, save=True):
        """Stop the training process (saving to --save when `save`) and finish clips."""
        self.link.close(save)
        if self.watch is not None:
            self.watch.stop()
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



def run_recording(config, data, command=None):
    """The run library's observer of the training process's loop, as a factory it calls with its
    log (a session that cannot train is no run), or none."""
    if config.no_runs or config.no_train:
        return ()
    command = [str(a) for a in (sys.argv[1:] if command is None else command)]
    return (functools.partial(Recording, library_path(config), config, data.summary(), command),)


def process_age():
    """Seconds since this process started (Linux: from /proc; elsewhere None)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


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
        "draw_ms_p50": percentile(app.draw_ms, 50), "draw_ms_p95": percentile(app.draw_ms, 95),
        "push_ms_p50": percentile(app.push_ms, 50), "push_ms_p95": percentile(app.push_ms, 95),
        "push_share": float(np.mean(app.push_px)) / float(np.prod(app.screen.get_size())) if app.push_px else None,
        "frames": app.drawn_frames, "first_frame_s": first_frame_s,
        "fps": 1000 / float(np.mean(app.frame_interval_ms[1:])) if len(app.frame_interval_ms) > 1 else None,
        "window": list(app.screen.get_size()), "connections": app.state.k,
        "hyperparameters": app.config.hyperparameters(),
        "dataset": app.data.summary(),
        "errors": list(app.errors),
    }


def use_native_framebuffer(environ=os.environ, platform=sys.platform):
    """On X11 systems, have SDL push frames through the X server's shared memory rather than
    through a renderer: SDL's default there copies and renders the whole window as a texture
    on every push, whatever part changed; without a GPU (software OpenGL) that took 7-22 ms
    a push at 1600x900 against 0.3 ms (`python bench/bench_push.py`). The user's own setting
    of SDL_FRAMEBUFFER_ACCELERATION is kept."""
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")


def distinct_rects(rects):
    """`rects` without those inside another (each pushed rectangle costs its pixels)."""
    kept = []
    for r in sorted(rects, key=lambda r: r.width * r.height, reverse=True):
        if r.width > 0 and r.height > 0 and not any(k.contains(r) for k in kept):
            kept.append(r)
    return kept


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
    return App(app.config.replace(connections=app.state.k), data, app.screen, command=app.command,
               view=view_settings.of_window(app.state, app.screen.get_size()))


def run_app(config, data, start_time=None, fetch=None, prepare=lambda data: data, command=None, view=None,
            view_path=None):
    """Open the window and run until the user quits (or --frames / --screenshot are done).
    `fetch`: the full data set arriving in the background (data is the bundled sample
    meanwhile); U switches to it once ready, cut by `prepare`. `command`: the command
    line, recorded with the run in the run library. `view`: the view settings to start
    with (view_settings.ViewSettings); `view_path`: the file they are remembered in when
    the window closes (None: not remembered).
    Returns the metrics dict; first_frame_s counts from the launch of the process."""
    age = process_age()
    start_time = time.perf_counter() - age if age is not None else (start_time or time.perf_counter())
    use_native_framebuffer()
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_caption("MNIST network - live")
    screen = pygame.display.set_mode((config.width, config.height), pygame.RESIZABLE)
    pygame.key.set_repeat(300, 35)
    app = App(config, data, screen, full=FullData(fetch, prepare) if fetch is not None else None, command=command,
              view=view)
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

    shown_since = None                # when the network was first on screen (the --frames clock)

    def frames_done():
        """--frames N: N frames drawn; or, when the window is not training (it then draws only
        when something changes), N frames' worth of time (N/FPS s) of the network on screen."""
        nonlocal shown_since
        if app.drawn_frames >= config.frames:
            return True
        if app.view is None or not app.drawn_frames:
            return False
        shown_since = shown_since or time.perf_counter()
        tele = app.tele
        training = app.worker is not None and not (config.no_train or tele.paused or tele.finished or tele.failed
                                                   or tele.diverged)
        return not training and time.perf_counter() - shown_since >= config.frames / FPS

    def done():
        """Whether --frames / --screenshot have what they wait for (taking the screenshot)."""
        if config.frames and frames_done():
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
        if view_path is not None:
            view_settings.remember(view_path, view_settings.of_window(app.state, app.screen.get_size()))
        app.close()
        if app.full is not None:
            app.full.close()
        metrics = window_metrics(app, first_frame_s)
        pygame.quit()
    return metrics
