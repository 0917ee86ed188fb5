"""What the keys and clicks do in the window: one function per row of the key table
(`keys.KEYS` names each, so a reader finds its caller there) and `on_hit` for what a click
on a region means.

Every action takes the `Controls` of the moment, the row's argument and whether Shift is
held. It changes the window's state through the state's own methods (`WindowState`: the
digit, filters, modes, overlays) and leaves what it cannot do itself as an effect for the
frame loop: an `Order` to the training process, a file to write, a request to the run
library's views. The message it leaves for the user goes through `state.say`. Nothing
here holds the window or draws; pure Python, tested without a display.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mnist_live.training.config import Config
from mnist_live.training.messages import Command, Order
from mnist_live.window import learning, tour
from mnist_live.window.experiment import Form, form_click
from mnist_live.window.state import SPEEDS, WindowState
from mnist_live.window.telemetry import TrainingView
from mnist_live.window.view_model import View


# ------------------------------------------------------------------ effects for the frame loop
@dataclass(frozen=True)
class Screenshot:
    """Save the window to a PNG (a new name)."""


@dataclass(frozen=True)
class Clip:
    """Start recording an animated GIF clip, or stop and write the one being recorded."""


@dataclass(frozen=True)
class SaveModel:
    """Save the model: an order to the training process, or the window's own weights when it is gone."""


@dataclass(frozen=True)
class Library:
    """A request to the run library's views: "toggle" the overlaid runs, the time "axis",
    read the "board", "choose" run `arg` to overlay."""
    request: str
    arg: int | None = None


@dataclass(frozen=True)
class SwitchData:
    """Restart training on the full data set, which has arrived."""


@dataclass(frozen=True)
class RestartRate:
    """The pace of training changed: the rate shown starts afresh."""


@dataclass
class Controls:
    """What an action works with: the state it changes, what it may read of the frame, and
    the effects it asks the frame loop for."""
    state: WindowState
    predict: Callable            # test indices (k,) -> classes (k,) under the weights on screen
    view: View | None            # the digit on screen
    training: TrainingView
    config: Config
    rng: np.random.Generator
    training_off: str = ""       # why the training keys do nothing now ('' when they work)
    full_data: str = ""          # why U cannot switch now ('' when the full data set is here)
    watching: bool = False       # a sweep is watched (--watch)
    effects: list = field(default_factory=list)


def training_off(training, config, tele):
    """Why the training keys do nothing now ('' when they work): `training`, whether there
    is a training process."""
    if not training or config.no_train:
        return "training is off (--no-train)"
    return "the training process has stopped" if tele.failed else "training has finished" if tele.finished else ""


def full_data_missing(full, config):
    """Why U cannot switch to the full data set now ('' when it can); `full`: fetch.FullData or None."""
    if full is None:
        return ("--offline: nothing to switch to (the bundled sample is in use)" if config.offline
                else "this run already uses the full data set")
    s = full.status
    return "" if s.stage == "ready" else f"the full data set is unavailable: {s.message}" \
        if s.stage == "failed" else f"the full data set is not here yet: {s.describe()}"


# ------------------------------------------------------- browsing (state: the digit)
def step(c, delta, shift):
    """state.index: `delta` digits on, within the active filter."""
    c.state.say(c.state.step(delta, c.predict))


def home_end(c, last, shift):
    """state.index: the first or last digit (of the filter)."""
    c.state.say(c.state.home_end(last, c.predict))


def digit(c, d, shift):
    """state.index: the next digit of that true class (Shift: explain that class instead)."""
    if shift:
        explain(c, d, shift)
    else:
        c.state.say(c.state.next_of_class(d, c.predict))


def mistake(c, _, shift):
    """state.index: the next (Shift: previous) digit the weights on screen get wrong."""
    c.state.say(c.state.next_mistake(-1 if shift else 1, c.predict))


def mistakes_only(c, _, shift):
    """state.mistakes_only, state.pair_filter: browse mistakes only, or leave a filter."""
    c.state.say(c.state.toggle_mistakes(c.predict))


def random(c, _, shift):
    """state.index: a random digit (of the filter)."""
    c.state.say(c.state.random(c.rng, c.predict))


# ------------------------------------------------------ what is shown (state: modes)
def explain(c, cls, shift):
    """state.explain_class: explain class cls instead of the prediction (again: back)."""
    c.state.say(c.state.explain(cls, c.view.pred))


def contrast(c, d, shift):
    """state.contrast_class: explain the explained class rather than d (again: back)."""
    c.state.say(c.state.contrast(d, c.view.explained))


def sort(c, _, shift):
    """state.sorted_grids: hidden grids grouped by preferred class, or in index order."""
    c.state.say(c.state.toggle_sorted())


def overlay(c, name, shift):
    """state.overlay: the overlay view `name` (a registered region's) open / closed."""
    c.state.toggle_overlay(name)


def map_layers(c, _, shift):
    """state.overlay, state.map_layer: the map of the last hidden layer, then earlier ones, then closed."""
    c.state.say(c.state.cycle_map(len(c.config.hidden)))


def atlas(c, _, shift):
    """state.atlas: hidden neurons drawn as their prototypes."""
    c.state.say(c.state.toggle_atlas())


def dream(c, _, shift):
    """state.dream: dream the hovered neuron or the explained class (again: back)."""
    c.state.say(c.state.start_dream(c.view.explained), 5)


def captions(c, _, shift):
    """state.captions: the caption strip (what the view on screen shows) on / off."""
    c.state.say(c.state.toggle_captions())


def class_chart(c, _, shift):
    """state.class_chart: per-class accuracy over time instead of bars."""
    c.state.toggle_class_chart()


def rank(c, _, shift):
    """state.rank_mode: relevance -> contribution -> weight."""
    c.state.say(c.state.cycle_rank_mode())


def backward_view(c, _, shift):
    """state.learn: the backward view (error signals, the largest gradients) on / off."""
    c.state.say(learning.toggle_backward(c.state), 5)


def updates(c, _, shift):
    """state.learn, state.update_span: what the last step changed, over the last batches, off."""
    c.state.say(learning.cycle_updates(c.state), 5)


def connections(c, up, shift):
    """state.k: more or fewer connections per layer pair."""
    c.state.say(c.state.change_k(up))


def saliency(c, _, shift):
    """state.saliency: the pixel map of the explained class: relevance -> gradient -> off."""
    c.state.say(c.state.cycle_saliency(c.state.rank_mode == "relevance"), 4)


def draw(c, _, shift):
    """state.drawing: draw a digit, or back to the test images."""
    c.state.say(c.state.toggle_drawing())


def clear(c, _, shift):
    """state.canvas: cleared."""
    c.state.clear_canvas()


def rewind(c, direction, shift):
    """state.rewind: show an earlier snapshot of the weights, or step forward to live."""
    t = c.training
    live = t.epoch + t.batch / max(t.n_batches, 1)
    c.state.say(c.state.step_rewind(direction, t.snapshots, live), 5)


def back(c, _, shift):
    """One step back in the state: overlay, dream, explained class, drawing, filter; never quits."""
    c.state.say(c.state.back())


def quit(c, _, shift):
    """state.running: the window closes (saving to --save)."""
    c.state.running = False


# ------------------------------------------------- earlier runs (the run library's views)
def compare_runs(c, _, shift):
    """Effect: the earlier runs overlaid on the charts on (read again) / off."""
    c.effects.append(Library("toggle"))


def time_axis(c, _, shift):
    """Effect: the charts against epochs or seconds."""
    c.effects.append(Library("axis"))


def leaderboard(c, _, shift):
    """state.overlay: the leaderboard of the best runs (read when it opens); Shift: the watched sweep."""
    st = c.state
    if shift:
        if not c.watching:
            st.say("no sweep watched (start with --watch SWEEP)")
        else:
            st.toggle_overlay("watch")
        return
    st.toggle_overlay("leaderboard")
    if st.overlay == "leaderboard":
        c.effects.append(Library("board"))


# ------------------------------------------------------ training (orders to the trainer)
def pause(c, _, shift):
    """Order PAUSE / RESUME; state.pause_requested."""
    if c.training_off:
        c.state.say(c.training_off)
        return
    c.state.pause_requested = not c.state.pause_requested
    c.effects += [RestartRate(), Order(Command.PAUSE if c.state.pause_requested else Command.RESUME)]


def one_batch(c, _, shift):
    """Order STEP: one batch while paused."""
    if c.training_off or not c.state.pause_requested:
        c.state.say(c.training_off or "N trains one batch while paused (Space pauses)")
        return
    c.effects.append(Order(Command.STEP))


def lr(c, _, shift):
    """Order SCALE_LR: double (Shift: halve) the learning rate from now on."""
    if c.training_off:
        c.state.say(c.training_off)
        return
    c.effects.append(Order(Command.SCALE_LR, value=0.5 if shift else 2.0))


def speed(c, slower, shift):
    """state.speed and order DELAY: slow motion (the rate shown restarts at the new pace)."""
    if c.training_off:
        c.state.say(c.training_off)
        return
    c.state.say(c.state.change_speed(slower))
    c.effects += [RestartRate(), Order(Command.DELAY, seconds=SPEEDS[c.state.speed])]


def new_run(c, _, shift):
    """state.form, state.overlay: the settings form of a new run, filled with the run on screen."""
    if c.config.no_train:
        c.state.say("training is off (--no-train): start a new run from the terminal")
        return
    if c.state.overlay != "settings":
        c.state.form = Form.of(c.config)
    c.state.toggle_overlay("settings")


def tour_again(c, _, shift):
    """state.overlay, state.tour_step: the guided tour from its first step."""
    tour.start(c.state)


def full_data(c, _, shift):
    """Effect: restart on the full data set once it is here (state.running ends this window's run)."""
    if c.full_data:
        c.state.say(c.full_data, 8)
    else:
        c.effects.append(SwitchData())


# --------------------------------------------------------------------------- files
def screenshot(c, _, shift):
    """Effect: a screenshot PNG; Shift: start or stop recording a clip."""
    c.effects.append(Clip() if shift else Screenshot())


def save(c, _, shift):
    """Effect: the model file (an order to the trainer, or the window's own weights)."""
    c.effects.append(SaveModel())


# -------------------------------------------------------------------------- clicks
def on_hit(c, hit, button):
    """What a click on a region means (`hit` from Region.hit: (what, argument)): open a
    digit, explain a class (right button: rather than it), browse a confusion cell or a
    class's mistakes, overlay a leaderboard row. Changes the state like the keys above."""
    what, arg = hit
    st = c.state
    if what == "open":
        if st.overlay == "map":
            st.toggle_overlay("map")
        st.go(arg)
    elif what == "explain":
        (contrast if button == 3 else explain)(c, arg, False)
    elif what == "pair":
        st.say(st.choose_pair(*arg, c.predict))
    elif what == "compare_run":                      # a leaderboard row: on (or off) the charts
        c.effects.append(Library("choose", arg))
    elif what == "mistakes_of":                      # a class's line in the per-class chart
        st.say(st.browse_mistakes_of(arg, c.predict))
    elif what == "overlay":                          # a click that opens a view (the chart: the large chart)
        st.toggle_overlay(arg)
    elif what == "tour":                             # the tour's Back, Next, Skip
        tour.tour_click(st, arg)
    elif what == "form":                             # the settings form: a field, Start or Cancel
        form_click(st, arg, c.effects)
