"""What the keys and clicks do in the window: one method per row of the key table
(`window_keys.KEYS` names each method, so a reader finds its caller there) and `on_hit`
for what a click on a region means.

Each action says what it changes, in three kinds: the window's state (`WindowState`: the
digit, filters, modes, overlays; most actions are one call of a WindowState method), the
training process (an `Order` sent to it), or files (screenshots, clips, the model). The
message an action leaves for the user goes through `say`. Imports pygame (screenshots)
and the window's pure modules; never the trainer itself.
"""
from __future__ import annotations

import os

import pygame

from mnist_live.data_loader import DataError
from mnist_live.training.files import save_png_atomic, unique_path
from mnist_live.training.messages import Command, Order
from mnist_live.window.clips import Recorder
from mnist_live.window.state import SPEEDS, Overlay


class Actions:
    """The window's actions; `app` gives them the state, the predictions of the weights on
    screen, the telemetry, and the link to the training process."""

    def __init__(self, app):
        self.app = app

    def say(self, text, seconds=3.0):
        if text:
            self.app.state.say(text, seconds)

    # ------------------------------------------------------- browsing (state: the digit)
    def step(self, delta, shift):
        """state.index: `delta` digits on, within the active filter."""
        self.say(self.app.state.step(delta, self.app.predict))

    def home_end(self, last, shift):
        """state.index: the first or last digit (of the filter)."""
        self.say(self.app.state.home_end(last, self.app.predict))

    def digit(self, digit, shift):
        """state.index: the next digit of that true class (Shift: explain that class instead)."""
        if shift:
            self.explain(digit, shift)
        else:
            self.say(self.app.state.next_of_class(digit, self.app.predict))

    def mistake(self, _, shift):
        """state.index: the next (Shift: previous) digit the weights on screen get wrong."""
        self.say(self.app.state.next_mistake(-1 if shift else 1, self.app.predict))

    def mistakes_only(self, _, shift):
        """state.mistakes_only, state.pair_filter: browse mistakes only, or leave a filter."""
        self.say(self.app.state.toggle_mistakes(self.app.predict))

    def random(self, _, shift):
        """state.index: a random digit (of the filter)."""
        self.say(self.app.state.random(self.app.rng, self.app.predict))

    # ------------------------------------------------------ what is shown (state: modes)
    def explain(self, c, shift):
        """state.explain_class: explain class c instead of the prediction (again: back)."""
        self.say(self.app.state.explain(c, self.app.view.pred))

    def contrast(self, d, shift):
        """state.contrast_class: explain the explained class rather than d (again: back)."""
        self.say(self.app.state.contrast(d, self.app.view.explained))

    def sort(self, _, shift):
        """state.sorted_grids: hidden grids grouped by preferred class, or in index order."""
        self.say(self.app.state.toggle_sorted())

    def map(self, _, shift):
        """state.overlay, state.map_layer: the map of the last hidden layer, then earlier ones, then closed."""
        self.say(self.app.state.cycle_map(len(self.app.config.hidden)))

    def atlas(self, _, shift):
        """state.atlas: hidden neurons drawn as their prototypes."""
        self.say(self.app.state.toggle_atlas())

    def dream(self, _, shift):
        """state.dream: dream the hovered neuron or the explained class (again: back)."""
        self.say(self.app.state.start_dream(self.app.view.explained), 5)

    def captions(self, _, shift):
        """state.captions: the caption strip (what the view on screen shows) on / off."""
        self.say(self.app.state.toggle_captions())

    def class_chart(self, _, shift):
        """state.class_chart: per-class accuracy over time instead of bars."""
        st = self.app.state
        st.class_chart = not st.class_chart
        st.touch()

    def rank(self, _, shift):
        """state.rank_mode: relevance -> contribution -> weight."""
        self.say(self.app.state.cycle_rank_mode())

    def k(self, up, shift):
        """state.k: more or fewer connections per layer pair."""
        self.say(self.app.state.change_k(up))

    def confusion(self, _, shift):
        """state.overlay: the confusion matrix on / off."""
        self.app.state.toggle_overlay(Overlay.CONFUSION)

    def help(self, _, shift):
        """state.overlay: the help on / off."""
        self.app.state.toggle_overlay(Overlay.HELP)

    def saliency(self, _, shift):
        """state.saliency: the pixel map of the explained class: relevance -> gradient -> off."""
        self.say(self.app.state.cycle_saliency(self.app.state.rank_mode == "relevance"), 4)

    def draw(self, _, shift):
        """state.drawing: draw a digit, or back to the test images."""
        self.say(self.app.state.toggle_drawing())

    def clear(self, _, shift):
        """state.canvas: cleared."""
        self.app.state.clear_canvas()

    def rewind(self, direction, shift):
        """state.rewind: show an earlier snapshot of the weights, or step forward to live."""
        tele = self.app.tele
        live = tele.epoch + tele.batch / max(tele.n_batches, 1)
        self.say(self.app.state.step_rewind(direction, tele.snapshots, live), 5)

    def back(self, _, shift):
        """One step back in the state: overlay, dream, explained class, drawing, filter; never quits."""
        self.say(self.app.state.back())

    def quit(self, _, shift):
        """state.running: the window closes (saving to --save)."""
        self.app.state.running = False

    # ------------------------------------------------- earlier runs (app.compare: the run library)
    def compare_runs(self, _, shift):
        """app.compare.on: the earlier runs overlaid on the charts on (read again) / off."""
        self.say(self.app.compare.toggle(), 5)
        self.app.state.touch()

    def time_axis(self, _, shift):
        """app.compare.axis: the charts against epochs or seconds."""
        self.say(self.app.compare.toggle_axis())
        self.app.state.touch()

    def leaderboard(self, _, shift):
        """state.overlay: the leaderboard of the best runs (read when it opens); Shift: the watched sweep."""
        st = self.app.state
        if shift:
            if self.app.watch is None:
                self.say("no sweep watched (start with --watch SWEEP)")
            else:
                st.toggle_overlay(Overlay.WATCH)
            return
        st.toggle_overlay(Overlay.LEADERBOARD)
        if st.overlay is Overlay.LEADERBOARD:
            self.say(self.app.compare.read_board(), 5)

    # ------------------------------------------------------ training (orders to the trainer)
    def training_off(self):
        """Why training keys do nothing now, or '' when they work."""
        if self.app.worker is None or self.app.config.no_train:
            return "training is off (--no-train)"
        if self.app.tele.failed:
            return "the training process has stopped"
        if self.app.tele.finished:
            return "training has finished"
        return ""

    def pause(self, _, shift):
        """Order PAUSE / RESUME; state.pause_requested."""
        st, why = self.app.state, self.training_off()
        if why:
            self.say(why)
            return
        st.pause_requested = not st.pause_requested
        self.app.tele.paused = False
        self.app.worker.send(Order(Command.PAUSE if st.pause_requested else Command.RESUME))

    def one_batch(self, _, shift):
        """Order STEP: one batch while paused."""
        why = self.training_off()
        if why or not self.app.state.pause_requested:
            self.say(why or "N trains one batch while paused (Space pauses)")
            return
        self.app.worker.send(Order(Command.STEP))

    def lr(self, _, shift):
        """Order SCALE_LR: double (Shift: halve) the learning rate from now on."""
        why = self.training_off()
        if why:
            self.say(why)
            return
        self.app.worker.send(Order(Command.SCALE_LR, value=0.5 if shift else 2.0))

    def speed(self, slower, shift):
        """state.speed and order DELAY: slow motion (the rate shown restarts at the new pace)."""
        self.say(self.app.state.change_speed(slower))
        self.app.tele.speed_changed()                    # the new pace only, not a blend with the old
        if self.app.worker is not None:
            self.app.worker.send(Order(Command.DELAY, seconds=SPEEDS[self.app.state.speed]))

    def full_data(self, _, shift):
        """app.switch_to, state.running: restart on the full data set once it is here."""
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

    # --------------------------------------------------------------------------- files
    def screenshot(self, _, shift):
        """A screenshot PNG; Shift: start or stop recording a clip (app.recorder)."""
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

    def save(self, _, shift):
        """The model file: order SAVE (or the window's own weights when the trainer is gone)."""
        path = os.path.abspath(self.app.config.save or "mnist_model.npz")   # the worker's cwd may differ
        if self.app.worker is None or not self.app.worker.process.is_alive():
            saved = self.app.link.save_window_weights(path)
            if saved:
                self.say(saved, 8)
            return
        self.app.worker.send(Order(Command.SAVE, path=path))
        self.say(f"saving model to {path} ...")

    # -------------------------------------------------------------------------- clicks
    def on_hit(self, hit, button):
        """What a click on a region means (`hit` from Region.hit: (what, argument)): open a
        digit, explain a class (right button: rather than it), browse a confusion cell or a
        class's mistakes. Changes the state like the keys above."""
        what, arg = hit
        st = self.app.state
        if what == "open":
            if st.overlay is Overlay.MAP:
                st.toggle_overlay(Overlay.MAP)
            st.go(arg)
        elif what == "explain":
            (self.contrast if button == 3 else self.explain)(arg, False)
        elif what == "pair":
            self.say(st.choose_pair(*arg, self.app.predict))
        elif what == "compare_run":                      # a leaderboard row: on (or off) the charts
            self.say(self.app.compare.choose(arg), 5)
            st.touch()
        elif what == "mistakes_of":                       # a class's line in the per-class chart
            st.mistakes_only, st.pair_filter = True, None
            self.say(st.next_of_class(arg, self.app.predict) or f"browsing the mistakes of class {self.app.names[arg]}")
