"""The live Pygame window: every neuron, the strongest connections for the digit on
screen, activations, per-digit accuracy and a stats panel, while the network trains in a
background process.

The loop is events -> effects -> update -> draw -> push. `App` owns the loop, the state
and one list of regions (`REGIONS`, each a `regions.base.Region` class): that one list
drives layout, the per-frame update, drawing (bottom first, by each region's `z`) and hit
tests (top first, a modal overlay taking every click), and the open overlay's region says
what the legend and the caption show. A view added from elsewhere is a region class and
its key rows, through `register`. The keys are the table `window.keys.KEYS` (dispatch,
help, README); an action changes the state through its methods and leaves effects
(orders to the trainer, files, run-library requests) that only the loop carries out. What
every frame draws is one read-only `window.scene.Scene`.

A frame pushes to the screen only what changed (`pygame.display.update(rects)`): each
region says whether its picture changed, the network view which of its grids moved; a
new layout, a different set of regions, or the window exposed again after something
covered it pushes the whole window (`flip`). On X11 it pushes through the X server's
shared memory (`use_native_framebuffer`).
"""
from __future__ import annotations

import functools
import os
import sys
import time
from types import MappingProxyType

import numpy as np
import pygame

from mnist_live.runs.comparison import Comparison, SweepWatch, leaderboard, library_path
from mnist_live.runs.recorder import Recording
from mnist_live.training.files import save_png_atomic, unique_path
from mnist_live.training.messages import Command, Order
from mnist_live.training.process import TrainingProcess
from mnist_live.window import actions as act
from mnist_live.window import keys
from mnist_live.window import settings as view_settings
from mnist_live.window.captions import caption
from mnist_live.window.clips import Recorder
from mnist_live.window.display import Display
from mnist_live.window.events import EXPOSED, RESIZED, handle_event
from mnist_live.window.fetch import FullData
from mnist_live.window.frame_times import FrameTimes
from mnist_live.window.memory import Heap
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
from mnist_live.window.scene import Hovered, MapPicture, Scene, StripDigits, read_only, runs_picture, watch_picture
from mnist_live.window.side_views import classes, grid_orders, newest_confusion, rewound_accuracy
from mnist_live.window.state import WindowState
from mnist_live.window.telemetry import Telemetry
from mnist_live.window.trainer_link import TrainerLink, model_path, print_lines, save_weights
from mnist_live.window.view_model import ease

FPS = 60
PANEL_REFRESH_S = 0.3             # the panel follows the trainer's reports at most this often
FETCH_NICE = 10                   # the sample's trainer's lower priority while the full set arrives
FASHION_SHORT = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")

# The window's regions, registered once: bottom first within each z (regions.base).
REGIONS = [NetworkColumns, FilmStrip, Tooltip, ConfusionOverlay, MapOverlay, LeaderboardOverlay, WatchOverlay,
           Legend, Caption, Panel, Header, HelpOverlay]


def register(region, *rows):
    """Add a view to every window opened from now on: its region class (an overlay names
    itself with `overlay`, and a key row opening it runs `actions.overlay` with that name)
    and its rows of the key table."""
    REGIONS.append(region)
    keys.add(*rows)


def unregister(region, *rows):
    REGIONS.remove(region)
    keys.remove(*rows)


# ------------------------------------------------------------------------------ app
class App:
    """The window: the frame loop, the state, the regions; mirrors the trainer."""

    def __init__(self, config, data, screen=None, worker=True, full=None, command=None, view=None):
        self.config, self.data, self.screen, self.full, self.command = config, data, screen, full, command
        self.switch_to = None             # the data set U switches to (ends this app's loop)
        self.names = tuple(data.class_names)
        self.fashion = data.name == "fashion"
        self.x_test, self.y_test = read_only(data.x_test), data.y_test.astype(np.int64)
        self.state = WindowState(self.y_test, self.names, k=config.connections,
                                 noun="image" if self.fashion else "digit")
        if view is not None:              # settings.ViewSettings remembered from the last launch
            self.state.rank_mode, self.state.sorted_grids, self.state.captions = \
                view.rank_mode, view.sorted_grids, view.captions
        self.tele = Telemetry(paused=config.no_train, no_train=config.no_train)
        self.display = Display(config, self.x_test, self.y_test, live=worker)
        process = TrainingProcess(config, data, model_file=config.load, observers=run_recording(config, data, command),
                                  nice=FETCH_NICE if full is not None else 0) if worker else None
        self.link = TrainerLink(process) if process is not None else None
        if process is not None:           # one BLAS thread here, one in the trainer: a second would spin
            from threadpoolctl import threadpool_limits  # against the other process
            self._blas_limit = threadpool_limits(1)
        self.text = TextCache()
        self.regions = [make(self.text) for make in REGIONS]
        self.recorder = Recorder(config.record) if config.record else None     # --record: from launch
        self.finished_recorders, self.errors = [], []      # clips being written; failed saves and screenshots
        self.times, self.heap, self.rng = FrameTimes(), Heap(), np.random.default_rng()
        self.compare, self.watch = self.open_library()
        self.layout = self.frame_scene = self.pushed = self.last_push = None
        self.needs_draw, self.weights_waiting, self.toast_shown = True, False, False
        self.frame_no, self.view_frame, self._panel, self._panel_view = 0, 0, ((-1, None), 0.0), None
        self.frame_start = time.perf_counter()

    @property
    def weights_seen(self):
        return self.display.stamp is not None

    def region(self, kind):
        """The window's region of this class."""
        return next(r for r in self.regions if isinstance(r, kind))

    def open_overlay(self):
        """The region of the overlay view open (state.overlay), or None."""
        return next((r for r in self.regions if r.overlay is not None and r.overlay == self.state.overlay), None)

    def layers(self):
        """The regions on screen, bottom first: drawn in this order, hit-tested in reverse."""
        open_overlay = self.open_overlay()
        return sorted((r for r in self.regions if r.on_screen(self.state, open_overlay)), key=lambda r: r.z)

    # ------------------------------------------------------------------ events and effects
    def controls(self):
        """What the actions work with this frame (None before the first weights)."""
        if not self.weights_seen:
            return None
        return act.Controls(self.state, self.display.predict, self.display.view, self.tele.frozen(), self.config,
                            self.rng, training_off=self.training_off(), full_data=self.full_data_missing(),
                            watching=self.watch is not None)

    def training_off(self):
        """Why training keys do nothing now, or '' when they work."""
        if self.link is None or self.config.no_train:
            return "training is off (--no-train)"
        return "the training process has stopped" if self.tele.failed else \
            "training has finished" if self.tele.finished else ""

    def full_data_missing(self):
        """Why U cannot switch to the full data set now ('' when it can)."""
        if self.full is None:
            return ("--offline: nothing to switch to (the bundled sample is in use)" if self.config.offline
                    else "this run already uses the full data set")
        s = self.full.status
        return "" if s.stage == "ready" else f"the full data set is unavailable: {s.message}" \
            if s.stage == "failed" else f"the full data set is not here yet: {s.describe()}"

    def handle_events(self):
        for event in pygame.event.get():
            self.needs_draw = True
            if event.type in RESIZED:
                self.layout = None
            elif event.type in EXPOSED:        # uncovered: the screen lost our pixels, push them all again
                self.pushed = None
            c = self.controls()
            network = self.region(NetworkColumns) if self.layout is not None else None
            handle_event(event, self.state, c, self.layers(), network)
            if c is not None:
                for effect in c.effects:
                    self.apply(effect)

    def apply(self, effect):
        """Carry out an action's effect."""
        st = self.state
        if isinstance(effect, Order):
            if self.link is not None:
                self.link.send(effect)
        elif isinstance(effect, act.RestartRate):
            self.tele.speed_changed()
        elif isinstance(effect, act.Library):
            self.library_request(effect)
        elif isinstance(effect, act.Screenshot):
            self.save_screenshot()
        elif isinstance(effect, act.Clip):
            self.clip()
        elif isinstance(effect, act.SaveModel):
            self.save_model()
        elif isinstance(effect, act.SwitchData):
            try:
                self.switch_to, st.running = self.full.take(), False
            except Exception as exc:          # noqa: BLE001 - the cache vanished or broke since: stay on the sample
                st.say(f"could not switch to the full data set: {exc}", 8)

    def library_request(self, request):
        c, st = self.compare, self.state
        said = {"toggle": c.toggle, "axis": c.toggle_axis, "board": c.read_board}.get(request.request)
        st.say(said() if said is not None else c.choose(request.arg), 5)
        st.touch()

    def clip(self):
        if self.recorder is None:
            self.recorder = Recorder(unique_path("clip-%Y%m%d-%H%M%S.gif"))
            self.state.say(f"recording a clip to {os.path.abspath(self.recorder.path)} (Shift+S stops)", 5)
        else:
            self.recorder.finish()
            self.finished_recorders.append(self.recorder)
            self.recorder = None
            self.state.say("writing the clip...", 5)

    def save_screenshot(self, path=None):
        """The screen as a PNG (atomically, checked before it replaces anything); returns the
        path, or None on failure (said in the window, kept in errors)."""
        path = path or unique_path("screenshot-%Y%m%d-%H%M%S.png")     # never the same name twice
        try:
            save_png_atomic(path, lambda f: pygame.image.save(self.screen, f, "shot.png"))
            self.state.say(f"screenshot saved to {os.path.abspath(path)}", 5)
            return path
        except (pygame.error, OSError) as e:
            message = f"could not save screenshot {path}: {e}".splitlines()[0]
            self.state.say(message, 8)
            self.errors.append(message)
            return None

    def save_model(self):
        path = model_path(self.config)
        if self.link is not None and self.link.alive:
            self.link.send(Order(Command.SAVE, path=path))
            self.state.say(f"saving model to {path} ...")
            return
        self.adopt_weights()                  # the last weights it published, not one publication before
        if self.display.stamp is not None:
            said, error = save_weights(self.display.net, self.display.stamp, path)
            self.state.say(said, 8)
            if error:
                self.errors.append(error)

    # ------------------------------------------------------------------ update
    def mirror_trainer(self):
        """Fold the trainer's reports in; take its newest weights (at a bounded rate), or the
        snapshot the state rewinds to."""
        st, d = self.state, self.display
        if self.link is None:
            return
        polled = self.link.poll(self.tele, st)
        for text, seconds in polled.said:
            st.say(text, seconds)
        self.needs_draw |= polled.changed
        self.weights_waiting |= polled.fresh
        for record in polled.evaluations:
            if not self.tele.trained_here:
                d.known_predictions(record)                # the worker's exact pass of these weights
        user_changed = d.view_key is None or st.version != d.view_key[0]
        if st.rewind is not None:
            d.take(self.link.rewound(st.rewind, d.net, d.stamp))
        elif d.stamp is not None and d.stamp.version < 0:  # leaving a snapshot
            self.adopt_weights()
            self.link.let_go_of_snapshots()
        elif self.weights_waiting and d.adopt_due(user_changed, self.region(NetworkColumns).lines_seconds,
                                                  time.perf_counter()):
            self.adopt_weights()

    def adopt_weights(self):
        """Take the newest published weights (not while rewound)."""
        if self.link is not None and self.state.rewind is None:
            self.display.take(self.link.take_weights(self.display.net))
            self.weights_waiting = False

    def update(self):
        """Mirror the trainer, bring the display up to date, lay out the window and let each
        region derive what it draws and hit-tests."""
        self.mirror_trainer()
        if self.full is not None and self.full.poll():
            self.needs_draw = True
        if self.watch is not None and self.watch.poll():      # the watched sweep's newest read
            self.needs_draw = True
        if self.display.stamp is None:
            return
        changed, waiting = self.display.update(self.state)
        if self.display.view_key[0:3] != getattr(self, "_view_seen", None):
            self._view_seen, self.view_frame = self.display.view_key[0:3], self.frame_no
        if waiting and waiting != self.state.toast:          # O and A wait for the pass: say how far it is
            self.state.say(waiting, 0.5)
            changed = True
        toast = bool(self.state.toast) and time.monotonic() < self.state.toast_until
        self.needs_draw |= changed or toast != self.toast_shown
        self.toast_shown = toast
        self.update_regions()

    def update_regions(self):
        """Lay the window out for its size, then build the frame's scene and let each region
        derive its hit rectangles and the like from it."""
        w, h = self.screen.get_size()
        if w < MIN_SIZE[0] or h < MIN_SIZE[1]:
            self.layout = None
            return
        captions = self.state.captions                     # I: the caption strip takes its room or gives it back
        if self.layout is None or self.layout.size != (w, h) or (self.layout.caption is not None) != captions:
            self.place((w, h))
        self.region(NetworkColumns).set_orders(grid_orders(self.state.sorted_grids, self.display.test_pass.result))
        self.frame_scene = scene = self.scene()
        for region in self.layers():
            region.update(scene)

    def place(self, size):
        fs = font_size_for(*size)
        self.layout = compute_layout(*size, self.config.hidden, self.text.widest(self.names, fs, True),
                                     caption=self.state.captions)
        for region in self.regions:
            region.place(self.layout)
        self.pushed = None                                   # a new layout: the whole window is pushed

    # ------------------------------------------------------------------ the scene
    def scene(self):
        """Everything this frame draws, read-only (window.scene.Scene)."""
        st, tele, d, cfg = self.state, self.tele, self.display, self.config
        panel_key = self.panel_key()                # first: it refreshes the panel's view of the telemetry
        result, state = d.test_pass.result, st.frozen()
        open_overlay = self.open_overlay()
        view, frozen_tele = d.view, tele.frozen()
        dead = 0 if result is None else int(sum(x.sum() for x in result.dead))
        latest = frozen_tele.latest
        return Scene(
            state=state, tele=frozen_tele, panel_tele=self._panel_view, view=view,
            shown=MappingProxyType({k: read_only(v) for k, v in d.shown.items()}), test_pass=result,
            pass_done=d.pass_done, map_done=d.map.done, config=cfg, images=self.x_test, names=self.names,
            short_names=FASHION_SHORT if self.fashion else self.names, noun=st.noun,
            dataset="Fashion-MNIST" if self.fashion else "MNIST",
            data_label=data_label(self.data, cfg, self.full), data_offer=self.data_offer(),
            status=status_line(self._panel_view, state, cfg, self.link), fps_line=self.times.fps_text(tele, cfg),
            keys=tuple(keys.KEYS), lines_stamp=d.lines_key, view_key=d.view_key,
            confusion=newest_confusion(result, tele.last_full, d.pass_done if d.test_pass.busy else None),
            orders=grid_orders(st.sorted_grids, result),
            classes=classes(st, tele, result, d.stamp, d.pass_done),
            accuracy=rewound_accuracy(st, tele, result, d.stamp, d.pass_done), dream_step=d.dreamer.step_no,
            hovered=self.hovered(), strip=self.strip_digits(), map=self.map_picture(),
            runs=self.runs_picture(), watch=watch_picture(self.watch),
            legend=open_overlay.legend(st.noun) if open_overlay is not None else (),
            caption=caption(st, st.noun, view.explains(self.names) if view is not None else "", dead,
                            latest is not None and latest.kind != "full",
                            open_overlay.caption(st, st.noun) if open_overlay is not None else None),
            panel_key=panel_key)

    def data_offer(self):
        if self.full is None:
            return "", None, None
        text, ready, fraction = self.full.offer()
        return text, ACCENT if ready else DIM, fraction

    def hovered(self):
        """The hovered neuron's Hovered, made once per neuron and weights."""
        hover, d = self.state.hover, self.display
        if hover is None or self.layout is None:
            return None
        key = (hover, d.lines_key, tuple(self.region(NetworkColumns).neuron_rect(*hover)))
        held = getattr(self, "_hovered", None)
        if held is None or held[0] != key:
            self._hovered = held = (key, Hovered.of(d.net.weights, *hover, key[2]))
        return held[1]

    def strip_digits(self):
        count = self.region(FilmStrip).capacity() if self.layout is not None else 0
        if not count:
            return None
        indices, predictions, total = self.display.strip_digits(self.state, count)
        return StripDigits(read_only(indices), read_only(predictions), total)

    def runs_picture(self):
        """The run library's overlays as a RunsPicture, made again when they change."""
        held = getattr(self, "_runs", None)
        if held is None or held[0] != self.compare.version:
            self._runs = held = (self.compare.version, runs_picture(self.compare, leaderboard))
        return held[1]

    def map_picture(self):
        d, st = self.display, self.state
        m = d.map
        if st.overlay != "map" or d.map_points is None or m.points is None:
            return None
        here = d.map_here(st)
        return MapPicture(m.layer, read_only(m.subset), read_only(d.map_points), read_only(m.predictions),
                          None if here is None else read_only(here))

    def panel_key(self):
        """What the panel shows depends on: user changes at once; the trainer's reports at
        most every PANEL_REFRESH_S, and not in a frame that recomputed the view, so frames
        that redraw it stay rare and light; a change of the run's state (paused, finished,
        failed, a new evaluation or snapshot, the digit's history) at once."""
        now, (seen, when), tele, st, d = time.monotonic(), self._panel, self.tele, self.state, self.display
        news = (tele.paused, tele.finished, tele.diverged, tele.failed, tele.trained_here, len(tele.evals),
                len(tele.snapshots), id(tele.digit_histories.get(st.index)))
        if self._panel_view is None or news != seen[1] or (tele.version != seen[0] and now - when >= PANEL_REFRESH_S
                                                            and self.frame_no > self.view_frame + 1):
            self._panel = seen, when = (tele.version, news), now
            self._panel_view = tele.frozen(now)
        return (seen, st.version, d.view_key, id(d.test_pass.result), self.times.fps_text(tele, self.config),
                self.layout.size if self.layout else None, st.pointer if st.class_chart else None, self.compare.version)

    # -------------------------------------------------------------------- draw
    def draw(self, surface):
        """Paint the frame; returns the rectangles whose pixels may have changed (None:
        the whole window)."""
        w, h = surface.get_size()
        if self.layout is None or self.display.view is None or self.frame_scene is None:
            surface.fill(BG)
            text = f"window too small: at least {MIN_SIZE[0]}x{MIN_SIZE[1]}" if w < MIN_SIZE[0] or h < MIN_SIZE[1] \
                else "starting the training process..."
            self.text.blit(surface, text, (w // 2, h // 2), 13 if self.display.view is not None else 16, DIM, False,
                           "center")
            self.pushed = None
            return None
        scene, layers = self.frame_scene, self.layers()
        surface.fill(BG)
        for region in layers:
            region.paint(surface, scene)
        shown = (self.layout.size, tuple(id(r) for r in layers))
        if self.pushed != shown:                             # a new layout, overlay or exposure: all changed
            self.pushed = shown
            return None
        return distinct_rects([r for region in layers for r in region.dirty_rects()])

    def push(self, rects):
        """Send the frame to the screen: the changed rectangles only, or all of it (None)."""
        self.last_push = rects
        w, h = self.screen.get_size()
        if rects is None:
            pygame.display.flip()
            self.times.pushed(w * h)
        elif rects:
            pygame.display.update(rects)
            self.times.pushed(sum(r.width * r.height for r in rects))

    # -------------------------------------------------------------------- loop
    def frame(self):
        """One iteration: events -> effects -> update -> draw -> push (only when something
        changed), then the map and the test-set pass in the time left before the next frame
        is due. Returns the frame's work time in ms."""
        t0 = self.frame_start = time.perf_counter()
        self.frame_no += 1
        self.handle_events()
        self.update()
        deferred, self.display.draw_later = self.display.draw_later, False
        drew = self.needs_draw and not deferred
        if drew:
            t_draw = time.perf_counter()
            rects = self.draw(self.screen)
            t_push = time.perf_counter()
            self.push(rects)
            self.times.drawn(t_push - t_draw, time.perf_counter() - t_push)
            self.needs_draw = False
        if self.recorder is not None:
            self.recorder.capture(self.screen)
        for rec in [r for r in self.finished_recorders if r.done.is_set()]:
            self.finished_recorders.remove(rec)
            self.state.say(rec.wait(), 8)
        t1 = time.perf_counter()
        self.times.frame(t0, t1, drew, deferred)
        self.heap.tick()                                   # after the flip: in the frame's idle time
        waited_for = self.state.overlay == "confusion"      # its matrix is what the user waits for
        if self.display.idle_work(t0 + (1.5 if waited_for else 1) / FPS - 0.002):
            self.needs_draw = True
        return (t1 - t0) * 1000

    def open_library(self):
        """The earlier runs to overlay, read once now (a library it cannot read: a message,
        no overlay), and the --watch sweep's reader thread."""
        path = library_path(self.config)
        live = self.link.process.process.pid if self.link is not None else None
        compare = Comparison(path, self.config, live_pid=live)
        message = compare.load()
        if message:
            self.state.say(message, 6)
        watch = None
        if self.config.watch:
            watch = SweepWatch(path, self.config.watch)
            self.state.overlay = "watch"
        return compare, watch

    def close(self, save=True):
        """Stop the training process (saving to --save when `save`) and finish clips."""
        self.close_trainer(save)
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

    def close_trainer(self, save):
        """Stop the training process: saving to --save (the window's own weights when the
        process has failed), never over a model file with a blown-up model."""
        link, cfg = self.link, self.config
        if link is None:
            return
        if not link.alive and self.tele.failed and cfg.save and not cfg.no_train and save:
            self.adopt_weights()
            said, error = save_weights(self.display.net, self.display.stamp, os.path.abspath(cfg.save)) \
                if self.display.stamp is not None else ("", None)
            print(said)
            self.errors += [error] if error else []
        keep = cfg.no_train or self.tele.diverged or not save
        lines, errors = link.stop(self.tele, None if keep else cfg.save)
        print_lines(lines, errors)
        self.errors += errors
        self.link = None


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
    """The run's metrics (written by --metrics): accuracy, rates, frame times, errors, the history."""
    tele, times = app.tele, app.times
    ev = tele.last_full
    rates = list(tele.full_speed_rates)
    return {
        "status": "failed" if tele.failed else "diverged" if tele.diverged else
                  "finished" if tele.finished else "stopped",
        "error": tele.failed or tele.diverged or None,
        "test_accuracy": ev.accuracy if ev else float("nan"),
        "per_class_accuracy": list(ev.per_class) if ev else [float("nan")] * 10,
        "confusion_matrix": ev.confusion.tolist() if ev is not None and ev.confusion is not None else None,
        "epochs_completed": ev.epoch if ev else 0,
        "train_samples_per_s": float(np.median(rates)) if rates else 0.0,
        **times.metrics(app.screen.get_size()), "first_frame_s": first_frame_s,
        "window": list(app.screen.get_size()), "connections": app.state.k,
        "hyperparameters": app.config.hyperparameters(), "dataset": app.data.summary(),
        "history": tele.history_json(), "errors": list(app.errors),
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


def open_window(config):
    """The display and the window, or SystemExit with one line when SDL could only open it on
    a driver nobody sees that the user did not ask for (offscreen, dummy, KMS)."""
    use_native_framebuffer()
    pygame.display.init()
    pygame.font.init()
    invisible = invisible_driver(pygame.display.get_driver())
    if invisible:
        pygame.quit()
        raise SystemExit(f"error: the window opened on SDL's {invisible} driver, which shows nothing on screen: "
                         f"check DISPLAY (or set SDL_VIDEODRIVER to choose a driver), or use --headless")
    pygame.display.set_caption("MNIST network - live")
    screen = pygame.display.set_mode((config.width, config.height), pygame.RESIZABLE)
    pygame.key.set_repeat(300, 35)
    return screen


def invisible_driver(driver, environ=os.environ):
    """The name of an SDL video driver that shows nothing to the user, when SDL picked it
    by itself (the user's own SDL_VIDEODRIVER is respected), else ''."""
    if environ.get("SDL_VIDEODRIVER"):
        return ""
    return driver if driver in ("offscreen", "dummy", "KMSDRM", "kmsdrm", "evdev") else ""


def run_app(config, data, start_time=None, fetch=None, prepare=lambda data: data, command=None, view=None,
            view_path=None):
    """Open the window and run until the user quits (or --frames / --screenshot are done).
    `fetch`: the full data set arriving in the background (data is the bundled sample
    meanwhile); U switches to it once ready, cut by `prepare`. `command`: the command
    line, recorded with the run in the run library. `view`: the view settings to start
    with (settings.ViewSettings); `view_path`: the file they are remembered in when the
    window closes (None: not remembered). Returns the metrics dict; first_frame_s counts
    from the launch of the process."""
    age = process_age()
    start_time = time.perf_counter() - age if age is not None else (start_time or time.perf_counter())
    screen = open_window(config)
    app = App(config, data, screen, full=FullData(fetch, prepare) if fetch is not None else None, command=command,
              view=view)
    ending, first_frame_s = Ending(config), None
    try:
        while True:
            app.frame()
            if first_frame_s is None and app.times.drawn_frames:
                first_frame_s = time.perf_counter() - start_time
            if ending.done(app):
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


class Ending:
    """When a scripted window run (--frames N, --screenshot FILE) is done, taking the screenshot."""

    def __init__(self, config):
        self.config, self.shown_since = config, None

    def done(self, app):
        cfg, tele = self.config, app.tele
        if cfg.frames and self.frames_done(app):
            if cfg.screenshot:    # --frames decides when: the view as it is now
                self.screenshot(app)
            return True
        result = app.display.test_pass.result
        if cfg.screenshot and app.weights_seen and (tele.finished or cfg.no_train or tele.diverged) \
                and not app.weights_waiting and result is not None and result.stamp == app.display.stamp \
                and tele.latest is not None:
            self.screenshot(app)
            return True
        return False

    def frames_done(self, app):
        """--frames N: N frames drawn; or, when the window is not training (it then draws only
        when something changes), N frames' worth of time (N/FPS s) of the network on screen."""
        if app.times.drawn_frames >= self.config.frames:
            return True
        if app.display.view is None or not app.times.drawn_frames:
            return False
        self.shown_since = self.shown_since or time.perf_counter()
        tele = app.tele
        training = app.link is not None and not (self.config.no_train or tele.paused or tele.finished or tele.failed
                                                 or tele.diverged)
        return not training and time.perf_counter() - self.shown_since >= self.config.frames / FPS

    def screenshot(self, app):
        """The newest weights, drawn exactly (no easing, no message over the header)."""
        app.adopt_weights()
        app.update()
        app.state.toast = ""
        ease(app.display.shown, app.display.view, snap=True)
        app.update_regions()                   # the scene again: the eased values and the header as they are now
        app.draw(app.screen)
        if app.save_screenshot(self.config.screenshot):
            print(f"Saved screenshot to {self.config.screenshot}")
        else:
            print(f"error: {app.errors[-1]}", file=sys.stderr)
