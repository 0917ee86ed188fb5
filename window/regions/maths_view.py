"""The maths on hover: a box at the foot of the network view with the hovered neuron's or
line's numbers for the digit on screen and the optimizer's next update of it with the
numbers plugged in (`scene.maths`, from `learning.maths_lines`), on the side away from the
pointer so it never covers what is hovered."""
from __future__ import annotations

import pygame

from mnist_live.window.regions.base import Region
from mnist_live.window.regions.palette import DIM, PANEL_BG, TEXT
from mnist_live.window.regions.portrait import portrait_box


class MathsTip(Region):
    """The hovered parameter's maths, a line of text each."""

    def __init__(self, text):
        super().__init__(text)
        self.box = None                  # where the last draw put it (tests read it)
        self.shown = self.was = (None, ())   # (box, lines) of the last draw and of the one before

    def dirty_rects(self):
        """The box and where it was, when either changed (it is drawn each frame: a few lines)."""
        if self.shown == self.was:
            return []
        return [r for r in (self.shown[0], self.was[0]) if r is not None]

    def draw(self, surface, scene):
        self.was, self.box = self.shown, None
        self.shown = (None, ())
        if not scene.maths:
            return
        fs, r = self.fs - 2, self.rect
        lines = [part for line in scene.maths for part in wrap(self.text, readable(line), fs, r.width - 36)]
        height = len(lines) * (self.text.font(fs).get_height() + 2) + 12
        width = min(r.width - 16, max(self.text.width(t, fs) for t in lines) + 20)
        box = place_box(pygame.Rect(0, 0, width, height), r, scene.state.pointer or r.center,
                        portrait_box(self.lay, self.fs, scene.hovered.cell) if scene.hovered is not None else None)
        pygame.draw.rect(surface, PANEL_BG, box)
        pygame.draw.rect(surface, DIM, box, 1)
        y = box.y + 6
        for i, line in enumerate(lines):
            self.text.blit(surface, self.text.fit(line, fs, width - 20), (box.x + 10, y), fs, TEXT if i else DIM)
            y += self.text.font(fs).get_height() + 2
        self.box, self.shown = box, (box, scene.maths)


def place_box(box, area, pointer, portrait=None):
    """`box` moved to a corner of `area` (8 px in): a bottom corner on the side away from the
    pointer, else the other bottom corner, else a top corner, the first that covers neither
    the hovered neuron's portrait (`portrait`, None when no neuron is hovered) nor the pointer."""
    left, right = (area.x + 8, area.right - 8)
    bottom, top = area.bottom - 8, area.y + 8
    away = [("bottomright", (right, bottom)), ("bottomleft", (left, bottom))]
    if pointer[0] >= area.centerx:
        away.reverse()
    for corner, at in away + [("topright", (right, top)), ("topleft", (left, top))]:
        setattr(box, corner, at)
        if (portrait is None or not box.colliderect(portrait)) and not box.collidepoint(pointer):
            return box
    setattr(box, *away[0])
    return box


GLYPHS = {"←": ":=", "\u0302": "^"}   # what the window's font has no glyph for: "m ← ..." as "m := ...", m̂ as m^


def readable(line):
    """A line of the maths in characters the window's font draws."""
    for glyph, text in GLYPHS.items():
        line = line.replace(glyph, text)
    return line


def wrap(text, line, size, width):
    """`line` in pieces that fit `width` pixels, broken between words (the rest indented)."""
    words, pieces, now = line.split(" "), [], ""
    for word in words:
        trial = f"{now} {word}" if now else word
        if now and text.width(trial, size) > width:
            pieces.append(now)
            now = "    " + word
        else:
            now = trial
    return pieces + [now]
