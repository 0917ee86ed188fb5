"""The live Pygame window: its frame loop and its one list of regions (`App`, `run_app`).

Every neuron, the strongest connections for the digit on screen, activations, per-digit
accuracy and a stats panel, while the network trains in a background process.

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
import shlex
import sys
import time
from types import MappingProxyType

import numpy as np
import pygame

from mnist_live.runs.comparison import MAX_OVERLAID, Comparison, SweepWatch, board_table, library_path
from mnist_live.runs.recorder import Recording
from mnist_live.training.config import DATASET_NAMES
from mnist_live.training.loop import StopOnSignals
from mnist_live.training.process import TrainingProcess
from mnist_live.window import actions as act
from mnist_live.window import keys
from mnist_live.window import settings as view_settings
from mnist_live.window.captions import caption, learn_caption
from mnist_live.window.clips import Outputs
from mnist_live.window.display import Display
from mnist_live.window.effects import announce, carry_out
from mnist_live.window.events import EXPOSED, RESIZED, handle_event
from mnist_live.window.experiment import command_line
from mnist_live.window.fetch import FullData
from mnist_live.window.frame_times import FrameTimes
from mnist_live.window.headline import headline
from mnist_live.window.learning import maths_lines, parameter_at
from mnist_live.window.memory import Heap
from mnist_live.window.regions.caches import TextCache
from mnist_live.window.regions.caption import Caption
from mnist_live.window.regions.chart_view import ChartOverlay
from mnist_live.window.regions.header import Header, Legend, data_label
from mnist_live.window.regions.health_view import HealthOverlay
from mnist_live.window.regions.layout import MIN_SIZE, compute_layout, font_size_for
from mnist_live.window.regions.maths_view import MathsTip
from mnist_live.window.regions.network import NetworkColumns
from mnist_live.window.regions.overlays import ConfusionOverlay, HelpOverlay, MapOverlay
from mnist_live.window.regions.palette import ACCENT, BG, DIM
from mnist_live.window.regions.panel import Panel, status_line
from mnist_live.window.regions.portrait import FilmStrip, Tooltip
from mnist_live.window.regions.runs_views import LeaderboardOverlay, WatchOverlay
from mnist_live.window.regions.settings_view import SettingsOverlay
from mnist_live.window.regions.toolbar import Toolbar
from mnist_live.window.regions.tour_view import TourOverlay
from mnist_live.window.scene import (
    Hovered,
    Memo,
    PanelView,
    Scene,
    map_picture,
    read_only,
    runs_picture,
    strip_digits,
    watch_picture,
)
from mnist_live.window.session import FPS, Ending, open_window, process_age, window_metrics
from mnist_live.window.side_views import classes, grid_orders, newest_confusion, portrait_of, rewound_accuracy
from mnist_live.window.state import WindowState
from mnist_live.window.telemetry import Telemetry
from mnist_live.window.trainer_link import TrainerLink, follow, stop_training

PANEL_REFRESH_S = 0.3             # the panel follows the trainer's reports at most this often
FETCH_NICE = 10                   # the sample's trainer's lower priority while the full set arrives
FASHION_SHORT = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")

# The window's regions, registered once: bottom first within each z (regions.base).
REGIONS = [NetworkColumns, FilmStrip, Tooltip, MathsTip, ConfusionOverlay, MapOverlay, LeaderboardOverlay, WatchOverlay,
           SettingsOverlay, ChartOverlay, HealthOverlay, Legend, Caption, Toolbar, Panel, Header, HelpOverlay,
           TourOverlay]


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
        self.switch_to = self.next_config = None    # the data set (and config) U or F2 switch to (ends the loop)
        self.names, self.fashion = tuple(data.class_names), data.name == "fashion"
        self.x_test, self.y_test = read_only(data.x_test), data.y_test.astype(np.int64)
        self.state = WindowState(self.y_test, self.names, k=config.connections,
                                 noun="image" if self.fashion else "digit")
        if view is not None:              # settings.ViewSettings remembered from the last launch
            self.state.rank_mode, self.state.sorted_grids, self.state.captions, self.state.toured = \
                view.rank_mode, view.sorted_grids, view.captions, view.toured
            self.state.overlay = None if view.toured else "tour"       # the first launch: the guided tour
        if config.start_view == "health":                 # --start-view: a view of learning from the start
            self.state.overlay = "health"
        elif config.start_view is not None:
            self.state.learn = config.start_view
        self.tele = Telemetry(paused=config.no_train, no_train=config.no_train)
        self.display = Display(config, self.x_test, self.y_test, live=worker, x_train=data.x_train)
        self.link = TrainerLink(TrainingProcess(config, data, model_file=config.load, nice=FETCH_NICE if full else 0,
                                                observers=run_recording(config, data, command))) if worker else None
        if worker:                        # one BLAS thread here, one in the trainer: a second would spin
            from threadpoolctl import threadpool_limits  # against the other process
            self._blas_limit = threadpool_limits(1)
        self.text = TextCache()
        self.regions = [make(self.text) for make in REGIONS]
        self.outputs, self.times, self.heap, self.rng = Outputs(screen, config.record), FrameTimes(), Heap(), \
            np.random.default_rng()
        self.compare, self.watch = open_library(config, self.state, self.link, data.summary())
        self.panel, self.memos = PanelView(PANEL_REFRESH_S), {k: Memo() for k in ("hovered", "runs", "portrait",
                                                                                    "maths")}
        self.layout = self.frame_scene = self.pushed = self.last_push = None
        self.needs_draw, self.toast_shown, self.frame_no, self.view_frame = True, False, 0, 0
        self.frame_start = time.perf_counter()

    @property
    def weights_seen(self):
        return self.display.stamp is not None

    errors = property(lambda self: self.outputs.errors)      # failed saves and screenshots: the exit status

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
                            self.rng, training_off=act.training_off(self.link is not None, self.config, self.tele),
                            full_data=act.full_data_missing(self.full, self.config), watching=self.watch is not None)

    def handle_events(self):
        for event in pygame.event.get():
            self.needs_draw = True
            if event.type in RESIZED:
                self.layout = None
            elif event.type in EXPOSED:        # uncovered: the screen lost our pixels, push them all again
                self.pushed = None
            c = self.controls()
            handle_event(event, self.state, c, self.layers(), self.region(NetworkColumns) if self.layout else None)
            for effect in c.effects if c is not None else ():
                self.apply(effect)

    def apply(self, effect):
        """Carry out an action's effect (window.effects)."""
        carry_out(self, effect)

    # ------------------------------------------------------------------ update
    def update(self):
        """Mirror the trainer, bring the display up to date, lay out the window and let each
        region derive what it draws and hit-tests."""
        st, d = self.state, self.display
        if self.link is not None:
            self.needs_draw |= follow(self.link, self.tele, st, d, self.region(NetworkColumns).lines_seconds)
        self.needs_draw |= self.full is not None and self.full.poll()
        self.needs_draw |= self.watch is not None and self.watch.poll()          # the watched sweep's newest read
        if d.stamp is None:
            return
        changed, waiting = d.update(st, self.tele)
        if self.link is not None:
            self.link.watch(st, d)                           # the digit on screen, for the steps' records
            self.link.inspect(parameter_at(st.hover, st.hover_edge), d.stamp)    # the hovered one's optimizer state
        if d.view_key != getattr(self, "_view_seen", None):
            self._view_seen, self.view_frame = d.view_key, self.frame_no
        if waiting and waiting != st.toast:                  # O and A wait for the pass: say how far it is
            st.say(waiting, 0.5)
            changed = True
        toast = bool(st.toast) and time.monotonic() < st.toast_until
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
        lay = self.layout
        if lay is None or lay.size != (w, h) or (lay.caption is not None) != self.state.captions:
            self.layout = compute_layout(w, h, self.config.hidden,
                                         self.text.widest(self.names, font_size_for(w, h), True),
                                         caption=self.state.captions)        # I: the caption strip takes its room
            for region in self.regions:
                region.place(self.layout)
            self.pushed = None                                  # a new layout: the whole window is pushed
        self.region(NetworkColumns).set_orders(grid_orders(self.state, self.display.test_pass.result))
        self.frame_scene = scene = self.scene()
        for region in self.layers():
            region.update(scene)

    def scene(self):
        """Everything this frame draws, read-only (window.scene.Scene)."""
        st, tele, d, cfg, memos = self.state, self.tele, self.display, self.config, self.memos
        panel_tele, panel_seen = self.panel.follow(tele, st.index, self.frame_no > self.view_frame + 1,
                                                   time.monotonic())
        result, state, frozen_tele, overlay = d.test_pass.result, st.frozen(), tele.frozen(), self.open_overlay()
        fps = self.times.fps_text(tele, cfg)
        hover = st.hover
        lead = headline(frozen_tele, d.stamp and (d.stamp.epoch, d.stamp.batch), st.noun)   # header and bars
        cell = tuple(self.region(NetworkColumns).neuron_rect(*hover)) if hover and self.layout else None
        offer = self.full.offer() if self.full is not None else ("", None, None)
        return Scene(
            state=state, tele=frozen_tele, panel_tele=panel_tele, view=d.view, test_pass=result,
            shown=MappingProxyType({k: read_only(v) for k, v in d.shown.items()}), pass_done=d.pass_done,
            map_done=d.map.done, config=cfg, images=self.x_test, names=self.names, noun=st.noun,
            short_names=FASHION_SHORT if self.fashion else self.names, dataset=DATASET_NAMES[self.data.name],
            data_label=data_label(self.data, cfg, self.full), data_offer=(offer[0], ACCENT if offer[1] else DIM,
                                                                          offer[2]),
            status=status_line(panel_tele, state, cfg, self.link), fps_line=fps, keys=tuple(keys.KEYS),
            lines_stamp=d.lines_key, view_key=d.view_key, orders=grid_orders(st, result),
            confusion=newest_confusion(result, tele.last_full, d.pass_done if d.test_pass.busy else None),
            classes=classes(st, tele, result, d.stamp, d.pass_done, lead.evaluation), dream_step=d.dreamer.step_no,
            accuracy=rewound_accuracy(st, tele, result, d.stamp, d.pass_done),
            headline=lead,
            hovered=memos["hovered"]((hover, d.lines_key, cell),
                                     lambda: cell and Hovered.of(d.net.weights, *hover, cell)),
            portrait=memos["portrait"]((hover, d.test_pass.stamp), lambda: portrait_of(d, hover)),
            strip=strip_digits(d, st, self.region(FilmStrip).capacity() if self.layout else 0),
            map=map_picture(d, st),
            runs=memos["runs"](self.compare.version, lambda: runs_picture(self.compare, board_table)),
            watch=watch_picture(self.watch), legend=overlay.legend(st.noun) if overlay is not None else (),
            caption=caption(st, st.noun, d.view.explains(self.names) if d.view is not None else "",
                            0 if result is None else int(sum(x.sum() for x in result.dead)),
                            lead.evaluation is not None and lead.evaluation.kind != "full",
                            overlay.caption(st, st.noun) if overlay is not None else None,
                            grid_orders(st, result) is not None,
                            d.view is not None and d.view.learn and learn_caption(d.view.learn, st.noun, st.k,
                                                                                  self.names)),
            maths=memos["maths"]((parameter_at(hover, st.hover_edge), d.view_key, id(tele.inspection)),
                                 lambda: self.maths(parameter_at(hover, st.hover_edge))),
            panel_key=(panel_seen, st.version, d.view_key, id(result), fps, self.layout.size if self.layout else None,
                       st.pointer if st.class_chart else None, self.compare.version))

    def maths(self, at):
        """The hovered parameter's numbers and update rule (learning.maths_lines), with the
        training process's answer only when it is about this parameter (its token)."""
        st, d, ins = self.state, self.display, self.tele.inspection
        fresh = self.link is not None and ins is not None and ins.token == self.link.inspect_token and ins.at == at
        target = None if st.drawing or st.dream is not None else int(self.y_test[st.index])
        return maths_lines(d.net, d.view, target, at, ins if fresh else None, d.trains)

    # -------------------------------------------------------------------- draw
    def draw(self, surface):
        """Paint the frame; returns the rectangles whose pixels may have changed (None:
        the whole window)."""
        if self.layout is None or self.display.view is None or self.frame_scene is None:
            draw_notice(surface, self.text, self.display.view is not None)
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
        self.outputs.tick(self.state)
        t1 = time.perf_counter()
        self.times.frame(t0, t1, drew, deferred)
        self.heap.tick()                                   # after the flip: in the frame's idle time
        waited_for = self.state.overlay == "confusion"      # its matrix is what the user waits for
        if self.display.idle_work(t0 + (1.5 if waited_for else 1) / FPS - 0.002):
            self.needs_draw = True
        return (t1 - t0) * 1000

    def close(self, save=True):
        """Stop the training process (saving to --save when `save`) and finish clips."""
        if self.link is not None:
            self.errors.extend(stop_training(self.link, self.tele, self.state, self.display, self.config, save))
            self.link = None
        if self.watch is not None:
            self.watch.stop()
        self.outputs.close()


def draw_notice(surface, text, started):
    """The whole window's notice before there is a network to show: too small, or starting."""
    w, h = surface.get_size()
    surface.fill(BG)
    notice = f"window too small: at least {MIN_SIZE[0]}x{MIN_SIZE[1]}" if w < MIN_SIZE[0] or h < MIN_SIZE[1] \
        else "starting the training process..."
    text.blit(surface, notice, (w // 2, h // 2), 13 if started else 16, DIM, False, "center")


def open_library(config, state, link, data=None):
    """The earlier runs to overlay (comparison.Comparison, read once now: a library it cannot
    read is a message, no overlay) and the --watch sweep's reader thread (or None). `data`:
    the data set's summary(), so only runs on the same images are overlaid and ranked."""
    path = library_path(config)
    compare = Comparison(path, config, live_pid=link.process.process.pid if link is not None else None, data=data)
    message = compare.load()
    if message and (config.compare or os.path.exists(path)):      # a first launch's missing library is no news
        state.say(message, 6)
    watch = None
    if config.watch:
        watch = SweepWatch(path, config.watch)
        state.overlay = "watch"
    return compare, watch


def run_recording(config, data, command=None):
    """The run library's observer of the training process's loop, as a factory it calls with its
    log (a session that cannot train is no run), or none."""
    if config.no_runs or config.no_train:
        return ()
    command = [str(a) for a in (sys.argv[1:] if command is None else command)]
    return (functools.partial(Recording, library_path(config), config, data.summary(), command),)


def distinct_rects(rects):
    """`rects` without those inside another (each pushed rectangle costs its pixels)."""
    kept = []
    for r in sorted(rects, key=lambda r: r.width * r.height, reverse=True):
        if r.width > 0 and r.height > 0 and not any(k.contains(r) for k in kept):
            kept.append(r)
    return kept


def switch_data(app):
    """The app for the data set (U) or the run (F2) `app` switches to: the old run stops
    without saving (it stays in the run library), a new one starts on the same window.
    U keeps the settings; a run from the settings form overlays the one it replaces (and
    those it overlaid) on the charts and prints its command line."""
    data, config = app.switch_to, app.next_config
    app.close(save=False)
    view = view_settings.of_window(app.state, app.screen.get_size())
    if config is None:
        if app.full is not None:
            app.full.close()
        print(f"Switched to {data.source}: {len(data.y_train):,} training / {len(data.y_test):,} test images; "
              f"training restarts")
        return App(app.config.replace(connections=app.state.k), data, app.screen, command=app.command, view=view)
    app.compare.read_board()                  # the stopped run's id in the run library (None: not recorded)
    earlier = [i for i in (*app.compare.chosen, app.compare.live_id) if i is not None]
    config = config.replace(connections=app.state.k, compare=tuple(dict.fromkeys(earlier))[-MAX_OVERLAID:] or None)
    said = announce(config)
    new = App(config, data, app.screen, full=app.full, command=shlex.split(command_line(config))[1:], view=view)
    new.state.say(said, 10)
    return new


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
    # Ctrl+C and SIGTERM end the frame loop between two frames: a KeyboardInterrupt raised at any
    # point of a frame could land inside a queue's put to the training process and lose the wake-up
    # of its feeder thread (the order to save and stop never left, and the model was not saved)
    signals = StopOnSignals()
    signals.install()
    try:
        while not signals.asked:
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
    except KeyboardInterrupt:                      # a second Ctrl+C while the window was busy
        pass
    finally:
        signals.restore()
        if view_path is not None:
            view_settings.remember(view_path, view_settings.of_window(app.state, app.screen.get_size()))
        app.close()
        if app.full is not None:
            app.full.close()
        metrics = window_metrics(app, first_frame_s)
        pygame.quit()
    return metrics
