"""How the window answers events: keys through the key table (`window_keys`), the pointer
to the regions in z-order (`App.layers`, top first; a modal overlay takes every click),
drawing on the canvas, the hovered neuron, the window's size. Imports pygame and the
window's key table and state; it changes the state, never draws."""
from __future__ import annotations

import pygame

from mnist_live.window.actions import Actions
from mnist_live.window.keys import key_action
from mnist_live.window.state import Overlay


class EventRouter:
    """Routes each event: keys through the key table, the pointer to the regions in
    z-order (`App.layers`, top first; a modal overlay takes every click)."""

    def __init__(self, app):
        self.app = app

    def handle_event(self, event):
        app, st = self.app, self.app.state
        app.needs_draw = True
        if event.type == pygame.QUIT:
            st.running = False
        elif event.type == pygame.KEYDOWN:
            action = key_action(event.key, event.mod)
            if action is not None and app.weights_seen:
                method, arg = action
                method(app.actions, arg, bool(event.mod & pygame.KMOD_SHIFT))
            elif action is not None and action[0] is Actions.quit:
                st.running = False
        elif event.type in (pygame.MOUSEMOTION, pygame.MOUSEBUTTONDOWN):
            st.pointer = event.pos
            if app.layout and app.weights_seen:
                self.handle_pointer(event)
        elif event.type == pygame.WINDOWLEAVE:
            st.pointer = None
        elif event.type in (pygame.WINDOWRESIZED, pygame.WINDOWSIZECHANGED, pygame.VIDEORESIZE):
            app.layout = None

    def hit(self, pos):
        """(what, argument) of the topmost region under pos that answers, or None."""
        for region in reversed(self.app.layers()):
            if region.modal or region.rect.collidepoint(pos):
                hit = region.hit(pos)
                if hit is not None or region.modal:
                    return hit
        return None

    def handle_pointer(self, event):
        app, st, pos = self.app, self.app.state, event.pos
        if event.type == pygame.MOUSEBUTTONDOWN and event.button in (1, 3):
            hit = self.hit(pos)
            if hit is not None and (event.button == 1 or hit[0] == "explain"):   # right: an output neuron only
                app.actions.on_hit(hit, event.button)
                return
        if st.overlay is not Overlay.NONE:
            return
        if st.drawing:
            uv = app.columns.canvas_at(pos)
            buttons = event.buttons if event.type == pygame.MOUSEMOTION else \
                (event.button == 1, event.button == 2, event.button == 3)
            if uv is not None and (buttons[0] or buttons[2]):      # a held button drags the brush along
                st.paint(*uv, erase=bool(buttons[2]) and not buttons[0], stroke=event.type == pygame.MOUSEMOTION)
            else:
                st.stroke_from = None
        hover = app.columns.neuron_at(pos)
        if hover != st.hover:
            st.hover = hover
