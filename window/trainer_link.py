"""The window's side of the training process: its reports folded into the telemetry, the
newest weights taken at a bounded rate, rewinding to its snapshots (fetched on demand,
let go back at live), a digit's history, saving, stopping. Imports the training process
and its messages; never pygame."""
from __future__ import annotations

import os
import sys

from mnist_live.training.files import atomic_save_npz
from mnist_live.training.history import EvalRecord
from mnist_live.training.messages import Command, Order, RunHistory, SnapshotList, SnapshotWeights
from mnist_live.window.view_model import WeightsStamp

SNAPSHOT_CACHE = 3                # snapshots kept while rewound (2.7 MB each; let go back at live)

class TrainerLink:
    """The window's side of the training process: its reports, the newest weights (taken
    at a bounded rate), rewinding to its snapshots, a digit's history, saving."""

    def __init__(self, app):
        self.app = app
        self.snapshot_cache = {}            # snapshot index -> SnapshotWeights
        self.asked = set()                  # snapshot indices requested and not yet here
        self.digit_asked = None             # (test index, snapshot count) of the last history request

    def poll(self):
        app = self.app
        reports, fresh = app.worker.poll()
        for msg in reports:
            if isinstance(msg, SnapshotWeights):
                if msg.index not in self.asked or app.state.rewind is None:
                    continue                     # live again since it was asked for: 2.7 MB for nothing
                self.snapshot_cache[msg.index] = msg
                self.asked.discard(msg.index)
                while len(self.snapshot_cache) > SNAPSHOT_CACHE:      # oldest fetched first (2.7 MB each)
                    self.snapshot_cache.pop(next(iter(self.snapshot_cache)))
                continue
            text = app.tele.apply(msg, full_speed=app.state.speed == 0)
            if isinstance(msg, EvalRecord) and msg.predictions is not None and app.stamp is not None \
                    and (app.stamp.epoch, app.stamp.batch) == (msg.epoch, msg.batch) and not app.tele.trained_here:
                app.predict.known[:] = msg.predictions           # the worker's exact pass of these weights
            if isinstance(msg, (RunHistory, SnapshotList)):
                self.snapshot_cache.clear()                      # thinning may renumber the snapshots
            app.actions.say(text, 10 if app.tele.failed or app.tele.diverged else 5)
            app.needs_draw = True
        if fresh:
            app.weights_waiting = True
        if not app.worker.process.is_alive() and not app.tele.failed and app.state.running:
            app.tele.failed = f"the training process stopped unexpectedly (exit code {app.worker.process.exitcode})"
            app.actions.say(app.tele.failed, 10)
        self.follow_rewind()
        self.ask_digit_history()

    def adopt_weights(self):
        """Take the newest published weights into the window's network (not while rewound)."""
        app = self.app
        if app.state.rewind is not None:
            return
        stamp = app.worker.take_weights(app.net.weights, app.net.biases)
        app.weights_waiting = False
        if stamp is not None:
            app.stamp = WeightsStamp(*stamp)
            app.predict.reset(app.stamp)

    def follow_rewind(self):
        """Show the snapshot the state asks for (fetching it first), or the live weights."""
        app, i = self.app, self.app.state.rewind
        if i is None:
            self.asked.clear()                       # answers still on their way are let go when they land
            if app.stamp is not None and app.stamp.version < 0:         # leaving a snapshot
                self.adopt_weights()
                self.snapshot_cache.clear()          # 2.7 MB each, fetched again in ms on the next rewind
            return
        snap = self.snapshot_cache.get(i)
        if snap is None:
            if i not in self.asked and app.worker.process.is_alive():
                self.asked.add(i)
                app.worker.send(Order(Command.SNAPSHOT, index=i))
            return
        stamp = WeightsStamp(-(i + 1), snap.info[0], snap.info[1])
        if app.stamp != stamp:
            app.net.set_params(snap.weights, snap.biases)                  # float16 -> float32
            app.stamp = stamp
            app.predict.reset(stamp)

    def ask_digit_history(self):
        """The digit on screen under every snapshot, asked again when snapshots are added."""
        app = self.app
        st, tele = app.state, app.tele
        want = (st.index, len(tele.snapshots))
        if st.drawing or not tele.snapshots or want == self.digit_asked or not app.worker.process.is_alive():
            return
        have = tele.digit_histories.get(st.index)
        if have is None or have[0] != len(tele.snapshots):
            app.worker.send(Order(Command.DIGIT_HISTORY, index=st.index))
        self.digit_asked = want

    def save_window_weights(self, path):
        """Save the weights the window holds (when the training process is gone): W1, b1, ...
        only, which --load explores or trains further with a fresh optimizer. Returns what
        to tell the user ('' when there are no weights)."""
        app = self.app
        if app.weights_waiting:
            self.adopt_weights()             # the last weights it published, not one publication before
        if app.stamp is None:
            return ""
        arrays = {}
        for i, (W, b) in enumerate(zip(app.net.weights, app.net.biases), start=1):
            arrays[f"W{i}"], arrays[f"b{i}"] = W, b
        try:
            atomic_save_npz(path, arrays)
        except OSError as e:
            message = f"could not save {path}: {e.strerror or e}"
            app.errors.append(message)
            return message
        return (f"saved the window's last weights ({app.stamp.describe()}) to {path}, without the "
                f"optimizer state: the training process had stopped")

    def close(self, save=True):
        app = self.app
        if app.worker is None:
            return
        if not app.worker.process.is_alive() and app.tele.failed and app.config.save and not app.config.no_train \
                and save:
            print(self.save_window_weights(os.path.abspath(app.config.save)))
        keep = app.config.no_train or app.tele.diverged or not save      # never overwrite with a blown-up model
        for msg in app.worker.stop(save_path=None if keep else app.config.save):
            text = app.tele.apply(msg)
            if text and text.startswith("model saved"):
                print(f"Saved model to {app.tele.saved_path}")
            elif text and text.startswith("could not save"):
                print(f"error: {text}", file=sys.stderr)
                app.errors.append(text)
        app.worker = None
