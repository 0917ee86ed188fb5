"""What one frame draws: the `Scene`, typed and read-only, gathered once a frame by the
window and handed to every region. Nothing in it changes afterwards: the state and the
telemetry come as frozen copies (`StateView`, `TrainingView`), arrays are read-only, and
what regions used to ask live objects for (the strip's digits and how they are read, the
hovered neuron's receptive field, the map's points, the overlaid runs) is computed before
the frame and handed over as values. No pygame."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from mnist_live.training.config import Config
from mnist_live.window.headline import Headline
from mnist_live.window.state import StateView
from mnist_live.window.telemetry import TrainingView
from mnist_live.window.view_model import Pass, View, hover_connections, receptive_field


def read_only(array):
    """A read-only copy of an array (the scene's arrays never change under a region)."""
    out = np.array(array, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class Hovered:
    """The hidden neuron under the pointer, with what its portrait and lines need."""
    layer: int
    neuron: int
    cell: tuple                  # (x, y, w, h) of its cell on screen
    receptive_field: np.ndarray  # (28, 28): its input weights (projected back for deeper layers)
    connections: tuple           # per layer pair (src, dst, value): its strongest incoming and outgoing weights

    @classmethod
    def of(cls, weights, layer, neuron, cell):
        return cls(layer, neuron, tuple(cell), read_only(receptive_field(weights, layer, neuron)),
                   tuple(tuple(read_only(a) for a in c) for c in hover_connections(weights, layer, neuron)))


@dataclass(frozen=True)
class StripDigits:
    """The film strip: the test indices shown, how the weights on screen read them, and how
    many digits the active filter keeps."""
    indices: np.ndarray          # (k,) int64
    predictions: np.ndarray      # (k,) int64
    total: int


@dataclass(frozen=True)
class MapPicture:
    """The representation map of one hidden layer: its test digits' points (eased), how the
    map's weights read them, where the digit on screen lies."""
    layer: int
    subset: np.ndarray           # (n,) test indices
    points: np.ndarray           # (n, 2) eased positions
    predictions: np.ndarray      # (n,) predicted classes under the map's weights
    here: np.ndarray | None      # (2,) the digit on screen, or None


@dataclass(frozen=True)
class RunsPicture:
    """The run library as the window shows it: the earlier runs overlaid on the charts
    (each with its label), the time axis, the leaderboard's table."""
    axis: str                    # "epochs" or "seconds"
    runs: tuple                  # RunCurves overlaid, in colour order
    labels: tuple                # what each does differently from the run on screen
    board: tuple                 # (header, body rows, marks) of the leaderboard (`comparison.board_table`)
    board_ids: tuple             # run id of each board row
    data: str                    # what the run on screen trains on (the board holds runs on the same)
    version: int                 # changes whenever any of it changes


@dataclass(frozen=True)
class WatchPicture:
    """A sweep watched live (--watch): its trials as last read."""
    sweep: str
    trials: tuple                # RunCurves per trial
    error: str
    axes: tuple                  # the parallel coordinates' axes (analysis.Axis): the hyperparameters that differ, then
    lines: tuple                 # the accuracy; per trial (trial, height 0..1 or None per axis)
    labels: tuple                # per line, what its trial is (hyperparameters, accuracy, status)
    version: int


@dataclass(frozen=True)
class Scene:
    """Everything one frame draws (regions only read it)."""
    state: StateView             # what the person at the window has chosen
    tele: TrainingView           # the training process as last reported
    panel_tele: TrainingView     # as the side panel shows it (it follows the reports at most every 0.3 s)
    view: View                   # the digit on screen under the weights on screen
    shown: MappingProxyType      # eased display values: ("hidden", i) -> (n,), "probs" -> (10,)
    test_pass: Pass | None       # the last complete pass of the test set
    pass_done: float             # how much of the pass under way is done (0..1)
    map_done: float              # how much of the map under way is built (0..1)
    config: Config
    images: np.ndarray           # (N, 784) uint8 test images, read-only
    names: tuple                 # class names
    short_names: tuple           # class names that fit under a thumbnail
    noun: str                    # "digit" or "image"
    dataset: str                 # "MNIST" or "Fashion-MNIST"
    data_label: str              # where the data came from, and how much
    data_offer: tuple            # the full data set arriving: (text, colour, download fraction or None)
    status: tuple                # (text, colour) of the training state
    fps_line: str
    keys: tuple                  # the key table, for the help overlay
    lines_stamp: tuple           # changes whenever the drawn connections must change
    view_key: tuple              # changes whenever the view of the digit is recomputed
    confusion: tuple | None      # (10x10 matrix, what weights it is of) of the newest full test-set result
    orders: tuple | None         # per hidden layer: position -> neuron (grids sorted by preferred class)
    classes: tuple               # (per-class accuracy (10,) or None, the previous one or None, caption phrasings)
    accuracy: str                # the header's accuracy when it is not the latest evaluation (rewound)
    headline: Headline           # the header's accuracy live: which evaluation, what beside it
    dream_step: int              # gradient-ascent steps of the dream on screen (state.dream says of what)
    hovered: Hovered | None      # the neuron under the pointer
    portrait: tuple | None       # its first portrait while the pass gathers all (side_views.quick_portrait)
    strip: StripDigits | None    # the film strip's digits (None: no strip in this layout)
    map: MapPicture | None       # the representation map (None: not open, or not built yet)
    runs: RunsPicture            # the run library's overlays
    watch: WatchPicture | None   # the sweep watched with --watch
    legend: tuple                # the open overlay's legend phrasings (() : the network's own legend)
    caption: tuple               # caption lines, each phrasings from the fullest to the shortest
    panel_key: tuple | None      # everything the side panel shows depends on
    maths: tuple = ()            # the hovered line's or neuron's numbers and update rule (learning.maths_lines)

    @property
    def true(self):
        """The true class of the input on screen (None for a drawing or a dream)."""
        st = self.state
        return None if st.drawing or st.dream is not None else int(st.y_test[st.index])


def runs_picture(compare, board_table):
    """The RunsPicture of a `comparison.Comparison` (its runs shown, labels, board)."""
    shown = tuple(compare.shown())
    board = tuple(compare.board)
    return RunsPicture(compare.axis, shown, tuple(compare.label(r) for r in shown),
                       board_table(board, compare.live_id, [r.id for r in shown]), tuple(r["id"] for r in board),
                       compare.data_label(), compare.version)


def watch_picture(watch):
    """The WatchPicture of a `comparison.SweepWatch` (its newest read), or None."""
    if watch is None:
        return None
    read = watch.read
    return WatchPicture(watch.sweep, read.trials, read.error, read.axes, read.lines, read.labels, watch.version)



class Memo:
    """One value kept until its key changes (what a frame hands over, made again only when
    what it is made from changed)."""

    def __init__(self):
        self.key, self.value = object(), None

    def __call__(self, key, make):
        if key != self.key:
            self.key, self.value = key, make()
        return self.value


def strip_digits(display, state, count):
    """The film strip's StripDigits for `count` thumbnails (None: no strip)."""
    if not count:
        return None
    indices, predictions, total = display.strip_digits(state, count)
    return StripDigits(read_only(indices), read_only(predictions), total)


def map_picture(display, state):
    """The open representation map's MapPicture (None: not open, or not built yet)."""
    m = display.map
    if state.overlay != "map" or display.map_points is None or m.points is None:
        return None
    here = display.map_here(state)
    return MapPicture(m.layer, read_only(m.subset), read_only(display.map_points), read_only(m.predictions),
                      None if here is None else read_only(here))


class PanelView:
    """The telemetry as the side panel shows it: the trainer's reports at most every
    `every` seconds, and not in a frame that recomputed the view (so frames that redraw it
    stay rare and light); a change of the run's state (paused, finished, failed, a new
    evaluation or snapshot, the digit's history) at once."""

    def __init__(self, every):
        self.every, self.seen, self.when, self.view = every, (-1, None), 0.0, None

    def follow(self, tele, index, view_frame_passed, now):
        """The TrainingView the panel shows now, and what it is of (a key)."""
        news = (tele.paused, tele.finished, tele.diverged, tele.failed, tele.trained_here, len(tele.evals),
                len(tele.snapshots), id(tele.digit_histories.get(index)))
        due = tele.version != self.seen[0] and now - self.when >= self.every and view_frame_passed
        if self.view is None or news != self.seen[1] or due:
            self.seen, self.when, self.view = (tele.version, news), now, tele.frozen(now)
        return self.view, self.seen
