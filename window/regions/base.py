"""What every region shares: the `Scene` a frame draws from (read-only) and the `Region`
protocol (a rectangle that lays itself out, draws, and answers hit tests)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pygame


# ---------------------------------------------------------------------------- scene
@dataclass
class Scene:
    """Everything one frame draws, gathered once by the app (regions only read it)."""
    state: object                # window_state.WindowState
    tele: object                 # telemetry.Telemetry
    view: object                 # view_model.View of the digit on screen
    shown: dict                  # eased display values: ("hidden", i) -> (n,), "probs" -> (10,)
    sweep: object                # view_model.Pass or None: the last complete test-set pass
    predict: object              # indices -> classes under the view's weights
    weights: list                # the view's weights (fan_in, fan_out) per layer
    config: object
    images: np.ndarray           # (N, 784) uint8 test images
    names: tuple                 # class names
    short_names: tuple           # class names that fit under a thumbnail
    noun: str                    # "digit" or "image"
    dataset: str                 # "MNIST" or "Fashion-MNIST"
    data_label: str              # where the data came from, and how much
    status: tuple                # (text, colour) of the training state
    fps_line: str
    keys: tuple                  # the key table, for the help overlay
    lines_stamp: tuple           # changes whenever the drawn connections must change
    confusion: tuple | None      # (10x10 matrix, what weights it is of) of the newest full test-set result
    orders: list | None = None   # per hidden layer: position -> neuron (grids sorted by preferred class)
    classes: tuple = (None, None, "")   # per-class accuracy (10,), the previous one of its kind, what it is of
    accuracy: str = ""           # the header's accuracy when it is not the latest evaluation (rewound)
    dream_step: int = 0          # gradient-ascent steps of the dream on screen (state.dream says of what)
    map: object = None           # view_model.RepresentationMap
    map_points: np.ndarray | None = None    # (n, 2) eased positions of its points
    data_offer: tuple = ("", None, None)    # the full data set arriving: (text, colour, download fraction or None)
    view_key: tuple | None = None           # changes whenever the view of the digit is recomputed
    hover_cell: object = None               # pygame.Rect of the hovered neuron's cell, or None
    panel_key: tuple | None = None          # everything the side panel shows depends on
    sweep_done: float = 0.0      # how much of the test-set pass under way is done (0..1)
    compare: object = None       # comparison.Comparison: the earlier runs overlaid on the charts
    watch: object = None         # comparison.SweepWatch of --watch, or None

    @property
    def true(self):
        """The true class of the input on screen (None for a drawing)."""
        st = self.state
        return None if st.drawing or st.dream is not None else int(st.y_test[st.index])


class Region:
    """A rectangle of the window: it takes its rectangle from the layout (`place`), derives
    what it needs from the state before a frame is drawn (`update`: hit rectangles, nothing
    that paints), paints (`draw`: reads the scene, changes nothing but its own caches) and
    answers hit tests (`hit`, from what `update` derived). A parent region places its parts
    with `place_at`. `redrew` says whether the last `paint` changed its pixels, so the frame
    pushes only what changed to the screen."""
    rect = pygame.Rect(0, 0, 0, 0)
    modal = False                # shown, it takes every click (overlays)

    def __init__(self, text):
        self.text = text
        self.lay, self.fs, self.redrew = None, 14, True

    def area(self, layout):
        """The rectangle of `layout` this region owns."""
        return layout.network

    def place(self, layout):
        self.lay = layout
        self.place_at(self.area(layout), layout.font_size)

    def place_at(self, rect, font_size):
        self.rect, self.fs = pygame.Rect(rect), font_size
        self._picture = None

    def update(self, scene):
        """Derive hit rectangles and the like from the state (before drawing and hit tests)."""

    def draw(self, surface, scene):
        raise NotImplementedError

    def key(self, scene):
        """Everything the picture depends on (None: redraw it every frame)."""
        return None

    def hit(self, pos):
        """What a click at pos means: a (what, argument) pair, or None."""
        return None

    def dirty_rects(self):
        """The rectangles the last `paint` changed."""
        return [self.rect] if self.redrew else []

    def paint(self, surface, scene):
        """Draw, or blit the picture of the last draw when `key` (everything the picture
        depends on) is unchanged: most frames change nothing in most regions."""
        key = self.key(scene)
        if key is None:
            self.draw(surface, scene)
            self.redrew = True
            return
        cached = getattr(self, "_picture", None)
        if cached is not None and cached[0] == key and cached[1].get_size() == self.rect.size:
            surface.blit(cached[1], self.rect)
            self.redrew = False
            return
        self.draw(surface, scene)
        picture = cached[1] if cached is not None and cached[1].get_size() == self.rect.size \
            else pygame.Surface(self.rect.size)
        picture.blit(surface, (0, 0), self.rect)
        self._picture = (key, picture)
        self.redrew = True
