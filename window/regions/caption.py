"""The caption strip between the network and the legend: what the view on screen shows,
in a line or two of plain words (the texts are `captions.caption`; I hides the strip)."""
from __future__ import annotations

import pygame

from mnist_live.window.captions import caption
from mnist_live.window.regions.base import Region
from mnist_live.window.regions.palette import BG, DIM, TEXT


def scene_caption(scene):
    """The caption (lines of phrasings) of the scene: `captions.caption` of its state."""
    view, sweep, latest = scene.view, scene.sweep, scene.tele.latest
    dead = 0 if sweep is None else int(sum(d.sum() for d in sweep.dead))
    return caption(scene.state, scene.noun, view.explains(scene.names) if view is not None else "",
                   dead, latest is not None and latest.kind != "full")


class Caption(Region):
    """One or two lines saying what the view on screen shows: the first in the text colour,
    the second dimmer; each line the fullest phrasing that fits the width."""

    def area(self, layout):
        return layout.caption

    def key(self, scene):
        return scene_caption(scene), self.rect.size

    def chosen(self, scene):
        """The lines drawn: for each caption line the longest phrasing that fits."""
        fs, width = self.fs - 2, self.rect.width - 28
        out = []
        for phrasings in scene_caption(scene):
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
