"""The toolbar: a slim bar under the header with the views and the most used actions, each
button showing its key, so a mouse user finds what the keyboard does (a click runs the
key's own action). Buttons that do not fit are left out, the key list (H) always shown."""
from __future__ import annotations

import pygame

from mnist_live.window.regions.base import CHROME, Region
from mnist_live.window.regions.palette import ACCENT, BG, DIM, GRID_BG, PANEL_BG, TEXT

# (label, key as shown, pygame key, when it shows as on: a function of the frozen state)
BUTTONS = (
    ("New run", "F2", pygame.K_F2, lambda st: st.overlay == "settings"),
    ("Pause", "Space", pygame.K_SPACE, lambda st: st.pause_requested),
    ("Chart", "Z", pygame.K_z, lambda st: st.overlay == "chart"),
    ("Mistake", "M", pygame.K_m, lambda st: False),
    ("Draw", "D", pygame.K_d, lambda st: st.drawing),
    ("Lines", "C", pygame.K_c, lambda st: False),
    ("Group", "O", pygame.K_o, lambda st: st.sorted_grids),
    ("Atlas", "A", pygame.K_a, lambda st: st.atlas),
    ("Map", "P", pygame.K_p, lambda st: st.overlay == "map"),
    ("Confusion", "X", pygame.K_x, lambda st: st.overlay == "confusion"),
    ("Tour", "F3", pygame.K_F3, lambda st: st.overlay == "tour"),
    ("Rewind", ",", pygame.K_COMMA, lambda st: st.rewind is not None),
    ("Best runs", "B", pygame.K_b, lambda st: st.overlay == "leaderboard"),
    ("Screenshot", "S", pygame.K_s, lambda st: False),
)
KEYS_BUTTON = ("All keys", "H", pygame.K_h, lambda st: st.overlay == "help")


class Toolbar(Region):
    """The views and actions as buttons, each with its key; a click presses the key."""
    z = CHROME

    def __init__(self, text):
        super().__init__(text)
        self.buttons = []            # (rect, (label, key, code, on)) of the buttons shown

    def area(self, layout):
        return layout.toolbar or pygame.Rect(0, 0, 0, 0)

    def place_at(self, rect, font_size):
        super().place_at(rect, font_size)
        self.buttons = []
        fs, x, gap = font_size - 2, rect.x + 8, 6
        last = self.size(KEYS_BUTTON, fs)
        for button in BUTTONS:
            w = self.size(button, fs)
            if x + w > rect.right - 8 - last - gap:
                break
            self.buttons.append((pygame.Rect(x, rect.y + 3, w, rect.height - 6), button))
            x += w + gap
        self.buttons.append((pygame.Rect(rect.right - 8 - last, rect.y + 3, last, rect.height - 6), KEYS_BUTTON))

    def size(self, button, fs):
        label, key = button[0], button[1]
        return self.text.width(label, fs) + self.text.width(key, fs - 1, True) + 22

    def key(self, scene):
        st = scene.state
        return self.rect.size, tuple(on(st) for _, (_, _, _, on) in self.buttons), self.hover(st.pointer)

    def hover(self, pointer):
        return next((i for i, (r, _) in enumerate(self.buttons) if pointer and r.collidepoint(pointer)), None)

    def hit(self, pos):
        return next((("key", code) for r, (_, _, code, _) in self.buttons if r.collidepoint(pos)), None)

    def draw(self, surface, scene):
        fs, st = self.fs - 2, scene.state
        pygame.draw.rect(surface, BG, self.rect)
        hovered = self.hover(st.pointer)
        for i, (r, (label, key, _, on)) in enumerate(self.buttons):
            active = on(st)
            pygame.draw.rect(surface, ACCENT if active else PANEL_BG if i == hovered else GRID_BG, r, border_radius=4)
            x = self.text.blit(surface, label, (r.x + 8, r.centery), fs, BG if active else TEXT, False,
                               "midleft").right + 6
            self.text.blit(surface, key, (x, r.centery), fs - 1, BG if active else DIM, True, "midleft")
