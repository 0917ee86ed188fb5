"""The window's key table: one row per control, with the label and help the help overlay
(H) and the README's Controls table show, the action it runs (a function of `actions`),
and the pygame keys that run it with the argument each passes. A view registered from
elsewhere adds its rows (`add`). Imports pygame and the window's actions."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pygame

from mnist_live.window import actions as act


@dataclass(frozen=True)
class Key:
    """One row of the controls: how it reads in the help and README, and what it does.
    `codes` maps each pygame key to the argument its action receives."""
    label: str
    help: str
    action: Callable | None = None                    # act.<function>(controls, arg, shift); None: a mouse row
    codes: dict = field(default_factory=dict)


DIGITS = {**{pygame.K_0 + d: d for d in range(10)}, **{getattr(pygame, f"K_KP{d}"): d for d in range(10)}}

KEYS = [
    Key("Left / Right", "previous / next test digit (within the active filter)", act.step,
        {pygame.K_LEFT: -1, pygame.K_RIGHT: 1}),
    Key("PgUp / PgDn", "100 digits back / forward", act.step, {pygame.K_PAGEUP: -100, pygame.K_PAGEDOWN: 100}),
    Key("Home / End", "first / last test digit", act.home_end, {pygame.K_HOME: False, pygame.K_END: True}),
    Key("0 - 9", "next test digit of that true class", act.digit, DIGITS),
    Key("Shift+0 - 9", "explain that class instead of the prediction (or click an output neuron)", act.explain, {}),
    Key("Ctrl+0 - 9", "explain the class rather than that one: what tells them apart (or right-click an output "
        "neuron)", act.contrast, {}),
    Key("M / Shift+M", "next / previous digit the current weights get wrong", act.mistake, {pygame.K_m: None}),
    Key("F", "browse mistakes only (on / off); also leaves a confusion-cell filter", act.mistakes_only,
        {pygame.K_f: None}),
    Key("R", "random test digit", act.random, {pygame.K_r: None}),
    Key("Space", "pause / resume training", act.pause, {pygame.K_SPACE: None}),
    Key("N", "train one batch (while paused) and play it: the forward wave, the batch's loss, the backward wave, "
        "the update, with that step's real numbers", act.one_batch, {pygame.K_n: None}),
    Key("[ / ]", "slower / faster training (slow motion, up to 1 s per batch; from 0.5 s each step is played as N "
        "plays it)", act.speed,
        {pygame.K_LEFTBRACKET: True, pygame.K_RIGHTBRACKET: False}),
    Key("L / Shift+L", "double / halve the learning rate from now on (marked on the curves)", act.lr,
        {pygame.K_l: None}),
    Key(", / .", "rewind: the whole window shows an earlier snapshot of the network / step forward to live",
        act.rewind, {pygame.K_COMMA: -1, pygame.K_PERIOD: 1}),
    Key("T", "per-class accuracy over time instead of bars (click a class's line for its mistakes)",
        act.class_chart,
        {pygame.K_t: None}),
    Key("C", "line mode: relevance (LRP) -> contribution |a*w| -> weight |w|", act.rank, {pygame.K_c: None}),
    Key("J", "backward view: the error at the output flowing back; each hidden neuron coloured by its error signal "
        "δ (0 where the ReLU is off), lines = the largest gradients a·δ for this digit, % = their share",
        act.backward_view, {pygame.K_j: None}),
    Key("Y", "what the steps changed: lines = the weights the last recorded step moved most (Δw as applied), each "
        "neuron's mark = how far its incoming weights moved, the digit's scores before -> after (a step of the "
        "weights on screen); again: over the last batches; again: off", act.updates, {pygame.K_y: None}),
    Key("F4", "training health per layer over time: gradient size, update ratio (log scale, the usual range "
        "shaded), ReLUs off, weight and activation spreads, with warnings in plain words", act.overlay,
        {pygame.K_F4: "health"}),
    Key("O", "order the hidden grids by the class each neuron supports most", act.sort, {pygame.K_o: None}),
    Key("P", "map of what the last hidden layer makes of 2,000 test digits; again: earlier layers, close",
        act.map_layers, {pygame.K_p: None}),
    Key("A", "atlas: every hidden neuron drawn as what it responds to (its prototype)", act.atlas,
        {pygame.K_a: None}),
    Key("V", "dream: the input that excites the explained class (or hovered neuron) most", act.dream,
        {pygame.K_v: None}),
    Key("+ / -", "more / fewer connections (0 to 5,000 per layer pair)", act.connections,
        {pygame.K_PLUS: True, pygame.K_EQUALS: True, pygame.K_KP_PLUS: True,
         pygame.K_MINUS: False, pygame.K_KP_MINUS: False}),
    Key("K", "earlier runs on the loss and accuracy chart on / off (the previous finished run of the data set, "
        "or --compare IDs), each labelled with what it does differently", act.compare_runs, {pygame.K_k: None}),
    Key("E", "the chart's time axis: epochs / seconds", act.time_axis, {pygame.K_e: None}),
    Key("Z", "the loss and accuracy chart, large, with each earlier run's final accuracy against the run on screen "
        "and how much sooner it got there (or click the chart)", act.overlay, {pygame.K_z: "chart"}),
    Key("B / Shift+B", "leaderboard of the best runs of the data set (click a row: overlay that run) / the sweep "
        "watched with --watch", act.leaderboard, {pygame.K_b: None}),
    Key("X", "confusion matrix of the test set; click a cell to browse those digits", act.overlay,
        {pygame.K_x: "confusion"}),
    Key("G", "pixel map of the explained class: relevance, again: d score / d pixel (gradient), again: off",
        act.saliency, {pygame.K_g: None}),
    Key("D", "draw your own digit: left button draws, right erases", act.draw, {pygame.K_d: None}),
    Key("Backspace", "clear the drawing", act.clear, {pygame.K_BACKSPACE: None}),
    Key("S / Shift+S", "save a screenshot PNG / start or stop recording an animated GIF clip", act.screenshot,
        {pygame.K_s: None}),
    Key("W", "save the model (to --save, or mnist_model.npz)", act.save, {pygame.K_w: None}),
    Key("U", "switch to the full data set once it has arrived (first launch: training starts on the bundled "
        "sample while it downloads); restarts training with the same settings", act.full_data, {pygame.K_u: None}),
    Key("F2", "a new run: the settings form (learning rate, optimizer, schedule, batch size, dropout, weight decay, "
        "hidden sizes, activation, epochs, seed, augment); Enter starts it, the run on screen overlaid on the charts",
        act.new_run, {pygame.K_F2: None}),
    Key("I", "captions on / off: a line or two above the legend on what the view on screen shows (remembered)",
        act.captions, {pygame.K_i: None}),
    Key("H / F1", "this help", act.overlay, {pygame.K_h: "help", pygame.K_F1: "help"}),
    Key("F3", "the guided tour again (it shows by itself on the first launch; Esc skips it)", act.tour_again,
        {pygame.K_F3: None}),
    Key("Esc", "back one step: closes an overlay, ends a dream, stops explaining another class, leaves drawing, "
        "then the filter; never quits", act.back, {pygame.K_ESCAPE: None}),
    Key("Q", "quit (saves to --save if given)", act.quit, {pygame.K_q: None}),
    Key("click a film-strip digit", "open that digit"),
    Key("hover a hidden neuron", "its activation, receptive field and strongest weights"),
]


def add(*rows):
    """More rows for the table (a view registered from elsewhere: its keys), before the
    mouse rows at its end."""
    at = next(i for i, k in enumerate(KEYS) if k.action is None)
    KEYS[at:at] = rows


def remove(*rows):
    for row in rows:
        KEYS.remove(row)


def key_action(key, mod):
    """(action, argument) for a key press, or None: Ctrl+digit contrasts; the first row
    that binds the key wins."""
    if mod & pygame.KMOD_CTRL and key in DIGITS:
        return act.contrast, DIGITS[key]
    return next(((k.action, k.codes[key]) for k in KEYS if key in k.codes), None)


def controls_markdown():
    """The README's Controls table, generated from KEYS."""
    rows = ["| key / mouse | action |", "|---|---|"]
    rows += [f"| {k.label} | {k.help.replace('|', chr(92) + '|')} |" for k in KEYS]
    return "\n".join(rows)
