"""The guided tour over the window (window.tour): the part a step is about stays bright, the
rest is veiled, and a box beside it says the step's sentence with Back, Next and Skip."""
from __future__ import annotations

import pygame

from mnist_live.window.regions.base import MODAL, Region
from mnist_live.window.regions.palette import ACCENT, BG, DIM, GRID_BG, PANEL_BG, TEXT
from mnist_live.window.tour import STEPS


def part_rect(layout, part):
    """The rectangle of the window a step highlights."""
    lay = layout
    columns = lay.input.rect.unionall([g.rect for g in lay.hidden] + [lay.output])
    rects = {"input": lay.input.rect, "hidden": lay.hidden[0].rect.unionall([g.rect for g in lay.hidden]),
             "lines": columns, "output": lay.output, "panel": lay.panel, "toolbar": lay.toolbar or lay.header}
    return pygame.Rect(rects[part]).inflate(12, 12).clip(pygame.Rect((0, 0), lay.size))


class TourOverlay(Region):
    """One step of the tour: its part highlighted, its sentence, the buttons."""
    modal, z, overlay, covers_network = True, MODAL, "tour", False

    def __init__(self, text):
        super().__init__(text)
        self.box, self.buttons = None, []

    def area(self, layout):
        return pygame.Rect((0, 0), layout.size)

    def caption(self, state, noun):
        return ()

    def update(self, scene):
        """Where the box and its buttons go for this step: beside the part (below, above,
        left or right of it, whichever has room first), else over its middle."""
        step, fs = scene.state.tour_step, self.fs
        target = part_rect(self.lay, STEPS[step][0])
        lines = self.text.wrap(STEPS[step][1], fs, 420 - 32)
        box = pygame.Rect(0, 0, 420, 28 + len(lines) * (fs + 5) + fs + 2 * (fs + 14) + 16)
        window = self.rect.inflate(-16, -16)
        for anchor, at in (("midtop", target.midbottom), ("midbottom", target.midtop), ("midright", target.midleft),
                           ("midleft", target.midright)):      # below, above, left of, right of the part
            setattr(box, anchor, (at[0] + {"midright": -12, "midleft": 12}.get(anchor, 0),
                                  at[1] + {"midtop": 12, "midbottom": -12}.get(anchor, 0)))
            box = box.clamp(window)
            if not box.colliderect(target):
                break
        else:
            box.center = target.center                          # no room beside it: over its middle
        self.box, self.target, self.lines = box.clamp(window), target, lines
        y = self.box.bottom - fs - 22
        labels = (("Back", "back"), ("Done" if step == len(STEPS) - 1 else "Next", "next"), ("Skip tour (Esc)", "skip"))
        x, self.buttons = self.box.x + 16, []
        for label, what in labels:
            r = pygame.Rect(x, y, self.text.width(label, fs, True) + 20, fs + 12)
            self.buttons.append((r, label, what))
            x = r.right + 10

    def hit(self, pos):
        return next((("tour", what) for r, _, what in self.buttons if r.collidepoint(pos)), None)

    def draw(self, surface, scene):
        veil = pygame.Surface(self.rect.size, pygame.SRCALPHA)
        veil.fill((0, 0, 0, 150))
        veil.fill((0, 0, 0, 0), self.target)
        surface.blit(veil, (0, 0))
        pygame.draw.rect(surface, ACCENT, self.target, 2, border_radius=6)
        box, fs, step = self.box, self.fs, scene.state.tour_step
        pygame.draw.rect(surface, PANEL_BG, box, border_radius=6)
        pygame.draw.rect(surface, ACCENT, box, 2, border_radius=6)
        self.text.blit(surface, f"Your first minute: {step + 1} of {len(STEPS)}", (box.x + 16, box.y + 12), fs - 1,
                       DIM, True)
        y = box.y + 16 + fs + 6
        for line in self.lines:
            self.text.blit(surface, line, (box.x + 16, y), fs, TEXT)
            y += fs + 5
        for r, label, what in self.buttons:
            pygame.draw.rect(surface, ACCENT if what == "next" else GRID_BG, r, border_radius=4)
            self.text.blit(surface, label, r.center, fs, BG if what == "next" else TEXT, what == "next", "center")
