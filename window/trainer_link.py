"""The window's side of the training process: its reports folded into the telemetry, the
newest weights taken into a network, rewinding to its snapshots (fetched on demand, let go
back at live), a digit's history, saving, stopping. It holds the process and what it asked
of it; the frame loop hands it the state, the telemetry and the network it fills, and gets
answers back (`follow` each frame, `stop_training` at the end). Imports the training
process's messages; never pygame."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from mnist_live.training.files import atomic_save_npz
from mnist_live.training.history import EvalRecord
from mnist_live.training.messages import Command, Order, RunHistory, SnapshotList, SnapshotWeights
from mnist_live.window.view_model import WeightsStamp

SNAPSHOT_CACHE = 3                # snapshots kept while rewound (2.7 MB each; let go back at live)


@dataclass
class Polled:
    """What one poll brought: messages for the user ((text, seconds)), whether newer weights
    are published, and the full evaluations that carry their per-image predictions."""
    said: list = field(default_factory=list)
    fresh: bool = False
    evaluations: list = field(default_factory=list)
    changed: bool = False            # anything at all arrived (the picture may change)


class TrainerLink:
    """The window's side of the training process (`process`: a TrainingProcess)."""

    def __init__(self, process):
        self.process = process
        self.snapshot_cache = {}            # snapshot index -> SnapshotWeights
        self.asked = set()                  # snapshot indices requested and not yet here
        self.digit_asked = None             # (test index, snapshot count) of the last history request
        self.watched = None                 # what the last WATCH order said is on screen
        self.token = 0                      # its token: the steps' records of that digit echo it
        self.inspected, self.inspect_token = None, 0   # (parameter, weights) last asked about (INSPECT), its token

    @property
    def alive(self):
        return self.process is not None and self.process.process.is_alive()

    def send(self, order):
        if self.process is not None:
            self.process.send(order)

    def poll(self, tele, state):
        """Fold the process's reports into `tele`; fetch what the state asks for (a snapshot
        while rewound, the digit's history)."""
        out = Polled()
        reports, out.fresh = self.process.poll()
        for msg in reports:
            out.changed = True
            if isinstance(msg, SnapshotWeights):
                self.keep_snapshot(msg, state.rewind)
                continue
            text = tele.apply(msg, full_speed=state.speed == 0)
            if isinstance(msg, EvalRecord) and msg.predictions is not None:
                out.evaluations.append(msg)
            if isinstance(msg, (RunHistory, SnapshotList)):
                self.snapshot_cache.clear()                      # thinning may renumber the snapshots
            if text:
                out.said.append((text, 10 if tele.failed or tele.diverged else 5))
        if not self.process.process.is_alive() and not tele.failed and state.running:
            tele.failed = f"the training process stopped unexpectedly (exit code {self.process.process.exitcode})"
            out.said.append((tele.failed, 10))
            out.changed = True
        self.ask_snapshot(state.rewind)
        self.ask_digit_history(state, tele)
        return out

    def keep_snapshot(self, msg, rewind):
        if msg.index not in self.asked or rewind is None:
            return                               # live again since it was asked for: 2.7 MB for nothing
        self.snapshot_cache[msg.index] = msg
        self.asked.discard(msg.index)
        while len(self.snapshot_cache) > SNAPSHOT_CACHE:      # oldest fetched first (2.7 MB each)
            self.snapshot_cache.pop(next(iter(self.snapshot_cache)))

    def take_weights(self, net):
        """Copy the newest published weights into `net`; their WeightsStamp, or None when
        nothing was published yet."""
        stamp = self.process.take_weights(net.weights, net.biases)
        return None if stamp is None else WeightsStamp(*stamp)

    def ask_snapshot(self, rewind):
        """Fetch the snapshot the state rewinds to; let the fetched ones go at live."""
        if rewind is None:
            self.asked.clear()                   # answers still on their way are let go when they land
            return
        if rewind not in self.snapshot_cache and rewind not in self.asked and self.alive:
            self.asked.add(rewind)
            self.send(Order(Command.SNAPSHOT, index=rewind))

    def rewound(self, rewind, net, stamp):
        """Load snapshot `rewind` into `net` once it is here; the stamp of the weights in
        `net` afterwards (`stamp` when nothing changed). Snapshot stamps have negative versions."""
        snap = self.snapshot_cache.get(rewind)
        if snap is None:
            return stamp
        new = WeightsStamp(-(rewind + 1), snap.info[0], snap.info[1])
        if new != stamp:
            net.set_params(snap.weights, snap.biases)                  # float16 -> float32
        return new

    def let_go_of_snapshots(self):
        self.snapshot_cache.clear()              # 2.7 MB each, fetched again in ms on the next rewind

    def ask_digit_history(self, state, tele):
        """The digit on screen under every snapshot, asked again when snapshots are added."""
        want = (state.index, len(tele.snapshots))
        if state.drawing or not tele.snapshots or want == self.digit_asked or not self.alive:
            return
        have = tele.digit_histories.get(state.index)
        if have is None or have[0] != len(tele.snapshots):
            self.send(Order(Command.DIGIT_HISTORY, index=state.index))
        self.digit_asked = want

    def watch(self, state, display):
        """Tell the training process the digit on screen (Command.WATCH) whenever it changes,
        with a new token, so the steps it records say which digit their scores are of; the
        display keeps the token to tell its records from another digit's."""
        digit = ("drawn", state.version) if state.drawing else ("test", state.index)
        if digit == self.watched or display.view is None or not self.alive:
            return
        self.watched, self.token = digit, self.token + 1
        if state.drawing:
            pixels, label = np.round(display.view.x * 255).astype(np.uint8), -1
        else:
            pixels, label = np.asarray(display.x_test[state.index], np.uint8), int(display.y_test[state.index])
        self.send(Order(Command.WATCH, pixels=pixels, index=label, token=self.token))
        display.watch_token = self.token

    def inspect(self, at, stamp):
        """Ask the training process for the hovered parameter `at` (Command.INSPECT), again
        whenever it or the weights on screen change; returns the token its answer will echo."""
        if at is not None and (at, stamp) != self.inspected and self.alive:
            self.inspected, self.inspect_token = (at, stamp), self.inspect_token + 1
            self.send(Order(Command.INSPECT, at=tuple(at), token=self.inspect_token))
        return self.inspect_token

    def stop(self, tele, save_path):
        """Stop the process (saving to `save_path` first, when given); returns (lines to
        print, errors) from its last reports."""
        lines, errors = [], []
        for msg in self.process.stop(save_path=save_path):
            text = tele.apply(msg)
            if text and text.startswith("model saved"):
                lines.append(f"Saved model to {tele.saved_path}")
            elif text and text.startswith("could not save"):
                errors.append(text)
        self.process = None
        return lines, errors


def follow(link, tele, state, display, lines_seconds):
    """Fold the trainer's reports into `tele`; take its newest weights into the display (at a
    bounded rate), or the snapshot the state rewinds to. Returns whether anything arrived."""
    polled = link.poll(tele, state)
    for text, seconds in polled.said:
        state.say(text, seconds)
    display.waiting |= polled.fresh
    for record in polled.evaluations:
        if not tele.trained_here:
            display.known_predictions(record)                # the worker's exact pass of these weights
    user_changed = display.view_key is None or state.version != display.view_key[0]
    if state.rewind is not None:
        display.take(link.rewound(state.rewind, display.net, display.stamp))
    elif display.stamp is not None and display.stamp.version < 0:  # leaving a snapshot
        take_newest(link, state, display)
        link.let_go_of_snapshots()
    elif display.waiting and display.adopt_due(user_changed, lines_seconds, time.perf_counter()):
        take_newest(link, state, display)
    return polled.changed


def take_newest(link, state, display):
    """The newest published weights into the display (not while rewound)."""
    if link is not None and state.rewind is None:
        display.take(link.take_weights(display.net))
        display.waiting = False


def stop_training(link, tele, state, display, config, save=True):
    """Stop the training process: saving to --save (the window's own weights when the
    process has failed), never over a model file with a blown-up model. Returns the errors."""
    errors = []
    if not link.alive and tele.failed and config.save and not config.no_train and save:
        take_newest(link, state, display)
        if display.stamp is not None:
            said, error = save_weights(display.net, display.stamp, os.path.abspath(config.save))
            print(said)
            errors += [error] if error else []
    keep = config.no_train or tele.diverged or not save
    lines, stopped = link.stop(tele, None if keep else config.save)
    print_lines(lines, stopped)
    return errors + stopped


def save_weights(net, stamp, path):
    """Save the weights a window holds (its training process gone): W1, b1, ... only, which
    --load explores or trains further with a fresh optimizer. Returns (message, error or None)."""
    arrays = {}
    for i, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        arrays[f"W{i}"], arrays[f"b{i}"] = W, b
    try:
        atomic_save_npz(path, arrays)
    except OSError as e:
        message = f"could not save {path}: {e.strerror or e}"
        return message, message
    return (f"saved the window's last weights ({stamp.describe()}) to {path}, without the optimizer state: the "
            f"training process had stopped"), None


def print_lines(lines, errors):
    for line in lines:
        print(line)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)


def model_path(config):
    """Where W saves: --save, or mnist_model.npz here (absolute: the trainer's cwd may differ)."""
    return os.path.abspath(config.save or "mnist_model.npz")
