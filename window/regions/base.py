"""The `Region` protocol every screen area follows: a rectangle that lays itself out,
derives what it hit-tests before a frame, draws from the read-only `scene.Scene`, says
whether its pixels changed, and answers hit tests. A region also says where it sits in the
window's one list of regions (`z`), when it is on screen, and — for an overlay view — its
name (the key that opens it toggles `state.overlay` to it), its legend and its caption."""
from __future__ import annotations

import pygame

NETWORK, OVERLAY, CHROME, MODAL = 0, 1, 2, 3      # z: the network view, overlays over it, bars and panel, the help


class Region:
    """A rectangle of the window: it takes its rectangle from the layout (`place`), derives
    what it needs from the scene before a frame is drawn (`update`: hit rectangles, nothing
    that paints), paints (`draw`: reads the scene, changes nothing but its own caches) and
    answers hit tests (`hit`, from what `update` derived). A parent region places its parts
    with `place_at`. `redrew` says whether the last `paint` changed its pixels, so the frame
    pushes only what changed to the screen.

    Where it sits: `z` orders the window's regions (drawn bottom first, hit-tested top
    first). An overlay view names itself (`overlay`): it is on screen while
    `state.overlay` is that name, and with `covers_network` the network view's regions
    give way to it; `legend` and `caption` are what the legend bar and the caption strip
    say while it is open."""
    rect = pygame.Rect(0, 0, 0, 0)
    modal = False                # shown, it takes every click (overlays)
    z = NETWORK
    overlay: str | None = None   # an overlay view's name (None: part of the window)
    covers_network = True        # an overlay: the network view's regions give way to it

    def __init__(self, text):
        self.text = text
        self.lay, self.fs, self.redrew = None, 14, True

    # -------------------------------------------------------------- where it sits
    def on_screen(self, state, open_overlay):
        """Whether it is drawn this frame; `open_overlay`: the region of the overlay view
        open, or None. The network view's regions give way to an overlay that covers it."""
        if self.overlay is not None:
            return open_overlay is self
        if self.z == NETWORK:
            return open_overlay is None or not open_overlay.covers_network
        return True

    def legend(self, noun):
        """An overlay's legend for the bar under it: phrasings from the fullest to the
        shortest (() : the network's own legend)."""
        return ()

    def caption(self, state, noun):
        """An overlay's caption: lines of phrasings (() : none; None: the network's caption)."""
        return None

    # -------------------------------------------------------------- the protocol
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
        """Derive hit rectangles and the like from the scene (before drawing and hit tests)."""

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
