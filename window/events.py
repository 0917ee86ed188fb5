"""How the window answers events: keys through the key table (`keys`) — or, while open,
to the settings form (`experiment.form_key`), which takes every key, or the tour
(`tour.tour_key`), which takes every key but Q — the pointer to the regions in z-order
(top first; a modal overlay takes every click; a toolbar button presses its key), drawing
on the canvas, the hovered neuron.
Imports pygame, the key table, the actions, the form and the tour; it changes the state
(through the actions and the state's methods) and never draws. The window's frame loop
calls `handle_event` with what it needs; nothing here holds the window."""
from __future__ import annotations

import pygame

from mnist_live.window import actions as act
from mnist_live.window.experiment import form_key
from mnist_live.window.keys import key_action
from mnist_live.window.tour import tour_key

RESIZED = (pygame.WINDOWRESIZED, pygame.WINDOWSIZECHANGED, pygame.VIDEORESIZE)
EXPOSED = (pygame.WINDOWEXPOSED, pygame.VIDEOEXPOSE)


def handle_event(event, state, c, layers, network):
    """Answer one event. `c`: the actions' Controls (None before the first weights: only
    quitting works then); `layers`: the regions on screen, bottom first; `network`: the
    network view's region (its cells and canvas), or None before a layout."""
    if event.type == pygame.QUIT:
        state.running = False
    elif event.type == pygame.KEYDOWN and c is not None and state.overlay == "settings" and state.form is not None:
        form_key(state, pygame.key.name(event.key), event.unicode, c.effects)     # the form takes every key
    elif event.type == pygame.KEYDOWN and state.overlay == "tour" and not quits(event):
        tour_key(state, pygame.key.name(event.key))                   # so does the tour, but Q still quits
    elif event.type == pygame.KEYDOWN:
        action = key_action(event.key, event.mod)
        if action is not None and c is not None:
            method, arg = action
            method(c, arg, bool(event.mod & pygame.KMOD_SHIFT))
        elif action is not None and action[0] is act.quit:
            state.running = False
    elif event.type in (pygame.MOUSEMOTION, pygame.MOUSEBUTTONDOWN):
        state.pointer = event.pos
        if network is not None and c is not None:
            handle_pointer(event, c, layers, network)
    elif event.type == pygame.WINDOWLEAVE:
        state.pointer = None


def quits(event):
    """Whether a key event is the key table's quit key."""
    action = key_action(event.key, event.mod)
    return action is not None and action[0] is act.quit


def hit(layers, pos):
    """(what, argument) of the topmost region under pos that answers, or None."""
    for region in reversed(layers):
        if region.modal or region.rect.collidepoint(pos):
            answer = region.hit(pos)
            if answer is not None or region.modal:
                return answer
    return None


def handle_pointer(event, c, layers, network):
    st, pos = c.state, event.pos
    if event.type == pygame.MOUSEBUTTONDOWN and event.button in (1, 3):
        answer = hit(layers, pos)
        if answer is not None and answer[0] == "key" and event.button == 1:    # a button: its key's own action
            method, arg = key_action(answer[1], 0)
            method(c, arg, False)
            return
        if answer is not None and (event.button == 1 or answer[0] == "explain"):   # right: an output neuron only
            act.on_hit(c, answer, event.button)
            return
    if st.overlay is not None:
        return
    if st.drawing:
        uv = network.canvas_at(pos)
        buttons = event.buttons if event.type == pygame.MOUSEMOTION else \
            (event.button == 1, event.button == 2, event.button == 3)
        if uv is not None and (buttons[0] or buttons[2]):      # a held button drags the brush along
            st.paint(*uv, erase=bool(buttons[2]) and not buttons[0], stroke=event.type == pygame.MOUSEMOTION)
        else:
            st.stroke_from = None
    hover = network.neuron_at(pos)
    if hover != st.hover:
        st.hover = hover
    st.hover_edge = network.edge_at(pos) if hover is None else None      # a drawn line: its maths
