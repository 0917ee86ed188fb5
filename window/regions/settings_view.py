"""The settings form over the network view (F2, or "New run" on the toolbar): a row per
hyperparameter the command line has, what differs from the run on screen, the command
line's verdict on the values, the equivalent command, and Start / Cancel. It draws
`scene.state.form` (window.experiment.Form) and hit-tests its rows and buttons; the keys
and clicks are answered by window.experiment."""
from __future__ import annotations

import pygame

from mnist_live.window.experiment import FIELDS, command_line
from mnist_live.window.regions.base import OVERLAY, Region
from mnist_live.window.regions.palette import ACCENT, BG, DIM, GRID_BG, PANEL_BG, POSITIVE, TEXT, WRONG

HINTS = {"lr": "a number > 0", "optimizer": "Left / Right: sgd, momentum, adam",
         "lr_schedule": "Left / Right: constant, cosine, step", "batch_size": "an integer >= 1",
         "dropout": "0 <= p < 1 (hidden layers, while training)", "weight_decay": ">= 0 (L2 on the weights)",
         "hidden": "sizes, space between: 256 128", "activation": "Left / Right: relu, sigmoid, tanh",
         "epochs": "an integer >= 1", "seed": "an integer >= 0", "augment": "Left / Right: shifts of up to 2 px"}


class SettingsOverlay(Region):
    """The form of a new run: edit, see what changes and the command, start."""
    modal, z, overlay = True, OVERLAY, "settings"

    def __init__(self, text):
        super().__init__(text)
        self.rows, self.buttons = [], []          # (rect, hit) for the clicks
        self.tight = False                        # the smallest windows: no subtitle, smaller rows

    def legend(self, noun):
        return ("Up / Down or a click: choose a field; type a value, Left / Right cycle a choice; Enter (or Start) "
                "starts a new run, the one on screen overlaid on the charts; Esc closes",
                "Up / Down: field; type or Left / Right; Enter starts; Esc closes", "Enter starts; Esc closes")

    def caption(self, state, noun):
        return (("a new run from the window: the values are checked by the command line's own rules, and the run "
                 "on screen stays in the run library, overlaid on the charts, labelled by what differs",
                 "a new run: checked like the command line; the old one stays overlaid on the charts",
                 "a new run, the old one overlaid"),)

    def update(self, scene):
        """Where the rows and the buttons are (hit tests): the rows as tall as the room allows."""
        r, fs = self.rect, self.fs
        top, below = r.y + 2 * fs + 30, 5 * fs + 62        # the titles; the verdict, command and buttons
        self.tight = r.height < (top - r.y) + below + len(FIELDS) * (fs + 3)    # the smallest windows: no
        if self.tight:                                                            # subtitle, smaller rows
            top = r.y + fs + 24
        h = max(fs + 1 if self.tight else fs + 3, min(fs + 12, (r.height - (top - r.y) - below) // len(FIELDS)))
        self.rows = [(pygame.Rect(r.x + 20, top + i * h, r.width - 40, h - 2), ("form", ("field", i)))
                     for i in range(len(FIELDS))]
        y = top + len(FIELDS) * h + 4 * fs + 36
        start = pygame.Rect(r.x + 20, y, self.text.width("Start new run (Enter)", self.fs, True) + 24, self.fs + 14)
        cancel = pygame.Rect(start.right + 14, y, self.text.width("Cancel (Esc)", self.fs) + 24, self.fs + 14)
        self.buttons = [(start, ("form", ("start", None))), (cancel, ("form", ("cancel", None)))]

    def hit(self, pos):
        return next((what for rect, what in self.rows + self.buttons if rect.collidepoint(pos)), None)

    def key(self, scene):
        return scene.state.form, self.rect.size

    def draw(self, surface, scene):
        r, fs, form = self.rect, self.fs, scene.state.form
        pygame.draw.rect(surface, BG, r)
        if form is None:
            return
        w = r.width - 40
        titles = ((("A new run: change what the command line can, then start it", "A new run: change, then start it",
                    "A new run"), fs + 1, r.y + 12, TEXT, True),
                  (("the run on screen stops, stays in the run library and is overlaid on the charts, labelled by "
                    "what differs", "the run on screen stays in the library, overlaid", ""), fs - 2, r.y + 18 + fs,
                   DIM, False))
        for said, size, y, colour, bold in titles[:1 if self.tight else 2]:
            line = next((t for t in said if self.text.width(t, size, bold) <= w), said[-1])
            if line:
                self.text.blit(surface, line, (r.x + 20, y), size, colour, bold)
        start = form.base
        rf = fs - 3 if self.tight else fs                  # the rows' text size
        label_w = self.text.widest([f[1] for f in FIELDS], rf) + 16
        value_w = min(260, (w - label_w) // 2)
        for i, ((name, label, kind), value) in enumerate(zip(FIELDS, form.values)):
            row = self.rows[i][0]
            changed = value != form.of(start).values[i]
            if i == form.selected:
                pygame.draw.rect(surface, PANEL_BG, row)
            self.text.blit(surface, label, (row.x + 6, row.centery), rf, TEXT, False, "midleft")
            box = pygame.Rect(row.x + label_w, row.y + 2, value_w, row.height - 4)
            pygame.draw.rect(surface, GRID_BG, box)
            pygame.draw.rect(surface, ACCENT if i == form.selected else DIM, box, 1)
            shown = ("on" if value else "off") if kind == "flag" else value
            shown = f"< {shown} >" if kind != "text" else shown + ("_" if i == form.selected else "")
            self.text.blit(surface, self.text.fit(shown, rf, box.width - 12), (box.x + 6, box.centery), rf,
                           POSITIVE if changed else TEXT, False, "midleft")
            if self.text.width(HINTS[name], fs - 2) <= row.right - box.right - 14:     # where there is room
                self.text.blit(surface, HINTS[name], (box.right + 10, row.centery), fs - 2, DIM, False, "midleft")
        y = self.rows[-1][0].bottom + 12
        changes = form.changes()
        verdict = form.error or ("changes: " + ", ".join(changes) if changes else "nothing changed yet")
        self.text.blit(surface, self.text.fit(verdict, fs - 1, w), (r.x + 20, y), fs - 1,
                       WRONG if form.error else POSITIVE if changes else DIM)
        config = None if form.error else form.check()[0]
        command = command_line(config) if config is not None else "(the command appears once the values are valid)"
        said = ("the same run from a terminal (printed there and copied when it starts):", "from a terminal:")
        self.text.blit(surface, next((t for t in said if self.text.width(t, fs - 2) <= w), said[-1]),
                       (r.x + 20, y + fs + 6), fs - 2, DIM)
        for line_no, line in enumerate(self.text.wrap(command, fs - 1, w)[:2]):
            self.text.blit(surface, line, (r.x + 20, y + 2 * (fs + 6) + line_no * (fs + 2)), fs - 1, TEXT)
        for (rect, (_, (what, _))), label in zip(self.buttons, ("Start new run (Enter)", "Cancel (Esc)")):
            ready = what != "start" or (not form.error and changes)
            pygame.draw.rect(surface, ACCENT if what == "start" and ready else GRID_BG, rect, border_radius=4)
            self.text.blit(surface, label, rect.center, fs, BG if what == "start" and ready else TEXT,
                           what == "start", "center")
