"""The caption strip between the network and the legend: what the view on screen shows,
in a line or two of plain words (`scene.caption`: the texts of `captions.caption`, or the
open overlay's own; I hides the strip)."""
from __future__ import annotations

import pygame

from mnist_live.window.regions.base import CHROME, Region
from mnist_live.window.regions.palette import BG, DIM, TEXT


class Caption(Region):
    """One or two lines saying what the view on screen shows: the first in the text colour,
    the second dimmer; each line the fullest phrasing that fits the width."""
    z = CHROME

    def on_screen(self, state, open_overlay):
        return state.captions

    def area(self, layout):
        return layout.caption or pygame.Rect(0, 0, 0, 0)      # captions off: no room

    def key(self, scene):
        return scene.caption, self.rect.size

    def chosen(self, scene):
        """The lines drawn: for each caption line the longest phrasing that fits."""
        fs, width = self.fs - 2, self.rect.width - 28
        out = []
        for phrasings in scene.caption:
            text = next((t for t in phrasings if self.text.width(t, fs) <= width), None)
            out.append(text if text is not None else self.text.fit(phrasings[-1], fs, width))
        return out

    def draw(self, surface, scene):
        r, fs = self.rect, self.fs - 2
        pygame.draw.rect(surface, BG, r)
        y = r.y + 4
        for i, text in enumerate(self.chosen(scene)):
            self.text.blit(surface, text, (r.x + 14, y), fs, TEXT if i == 0 else DIM)
            y += fs + 1 + 2
