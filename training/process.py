"""The training process the window talks to: a `Trainer` in a child process that
publishes its weights through shared memory and reports through a queue, so training never
waits for a frame and a frame never waits for training.

`TrainingProcess` is the window's handle on it (start, orders, polling, stop). In the
child, the one training loop (`loop.train`) runs with `_Worker` as its observer: the
window's orders before each batch, reports and published weights after it, each
evaluation sent once. The caller may hand it more observers to build in the child
(`observers`: picklable factories taking `log`, e.g. the run library's `Recording`), so
this module never imports the run library. What the two sides say to each other is in
`messages.py`. Two more observers always run there: `steps.StepWatch` (what the steps
changed, every step in step mode and slow motion; it answers the window's WATCH and
INSPECT orders) and `health.HealthMonitor` (training health), both sending to the window.
Imports the trainer, the loop, those observers, the model file reader and multiprocessing;
never pygame.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import time
from multiprocessing import shared_memory

import numpy as np

from mnist_live.neural_network import MLP, copy_params, to_float
from mnist_live.training.config import Config
from mnist_live.training.health import HealthMonitor
from mnist_live.training.loop import Observer, Outcome, Run, StopTraining, train
from mnist_live.training.messages import (
    BatchReport,
    Command,
    DigitHistory,
    Finished,
    LrChange,
    Notice,
    Order,
    Position,
    RunHistory,
    Saved,
    SnapshotList,
    SnapshotWeights,
    TrainerFailed,
)
from mnist_live.training.model_file import read_model
from mnist_live.training.steps import StepWatch
from mnist_live.training.trainer import DivergenceCheck, Trainer

SUBSET_EVERY = 100            # batches between subset evaluations in the window
EARLY_SUBSETS = (1, 2, 5, 10, 20, 50)   # and at these batches of the first epoch: the screen's first
#                                         second tells how well the weights on it read the test digits
PUBLISH_SECONDS = 0.05        # weight snapshots to the window at most 20 times a second
HEALTH_GAP_S = 0.5            # health measured at most twice a second (a small network's batches fly by)
TERM_GRACE_S = 3.0            # after SIGTERM the trainer waits this long for the window's stop order
LOCK_WAIT_S = 0.5             # the weights' lock is held for a copy (milliseconds); longer means its holder died


def _shared_copy(arr):
    """(shared memory block, array view on it holding a copy of arr, spec for _attach)."""
    shm = shared_memory.SharedMemory(create=True, size=max(arr.nbytes, 1))
    view = np.ndarray(arr.shape, arr.dtype, buffer=shm.buf)
    view[...] = arr
    return shm, view, (shm.name, arr.shape, arr.dtype.str)


def _attach(spec):
    name, shape, dtype = spec
    shm = shared_memory.SharedMemory(name=name)
    return shm, np.ndarray(shape, np.dtype(dtype), buffer=shm.buf)


class TrainingProcess:
    """A Trainer in a child process with one BLAS thread (the window keeps the other core).

    The parent calls `poll()` once per frame: it returns new reports and, when the worker
    published new weights, `take_weights` copies them into the caller's arrays and returns
    their stamp (publication counter, epoch, batch).

    `observers`: factories of more observers of the child's training loop, each called
    there with `log` (a function that says a line to the window and stderr), e.g. the run
    library's recorder; picklable (a class or functools.partial of one). `nice`: how much
    lower its CPU priority is (a preview run on the bundled sample while the full set is
    parsed in the background gives the parse the cores it needs)."""

    def __init__(self, config: Config, data, model_file=None, observers=(), nice=0):
        ctx = mp.get_context("spawn")
        self._shms = []
        specs = {}
        for key in ("x_train", "y_train", "x_test", "y_test"):
            shm, _, specs[key] = _shared_copy(getattr(data, key))
            self._shms.append(shm)
        sizes = config.sizes
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        shm, self.params_flat, specs["params"] = _shared_copy(np.zeros(n_params, np.float32))
        self._shms.append(shm)
        shm, self.stamp_shared, specs["stamp"] = _shared_copy(np.zeros(3, np.int64))   # version, epoch, batch
        self._shms.append(shm)
        self.sizes = sizes
        self.lock = ctx.Lock()
        self.lock_lost = False          # the trainer died holding the lock
        self.commands = ctx.Queue()
        self.messages = ctx.Queue()
        self.seen_version = 0
        env_before = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"   # inherited by the spawned child only
        try:
            self.process = ctx.Process(
                target=_worker_main, daemon=True, name="trainer",
                args=(config, specs, model_file, self.lock, self.commands, self.messages, tuple(observers), nice))
            self.process.start()
        finally:
            if env_before is None:
                os.environ.pop("OPENBLAS_NUM_THREADS", None)
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = env_before

    def send(self, order: Order):
        if self.process.is_alive():
            self.commands.put(order)

    def poll(self, max_messages=200):
        """(reports, whether newer weights than the last taken ones are published)."""
        out = []
        for _ in range(max_messages):
            try:
                out.append(self.messages.get_nowait())
            except (queue.Empty, EOFError, OSError):
                break
        return out, int(self.stamp_shared[0]) != self.seen_version

    def take_weights(self, weights, biases):
        """Copy the newest published weights into `weights` / `biases` (lists of arrays
        shaped like the network's); returns their stamp (version, epoch, batch), or None
        when nothing was published yet."""
        shared_w, shared_b = _split_params(self.params_flat, self.sizes)
        if self.lock_lost or not self.lock.acquire(timeout=LOCK_WAIT_S):
            # held for longer than any copy takes: by a trainer killed while publishing, which
            # never lets go (its weights may be half written: the window keeps its own)
            self.lock_lost = self.lock_lost or not self.process.is_alive()
            return None
        try:
            stamp = tuple(int(v) for v in self.stamp_shared)
            if stamp[0] == 0:
                return None
            copy_params(weights + biases, shared_w + shared_b)              # straight from shared memory
        finally:
            self.lock.release()
        self.seen_version = stamp[0]
        return stamp

    def stop(self, save_path=None, timeout=10.0):
        """Stop the worker (saving first when asked) and free shared memory.
        Returns the last reports (e.g. the `Saved` one)."""
        out = []
        if self.process.is_alive():
            self.commands.put(Order(Command.STOP, path=save_path))
            deadline = time.monotonic() + timeout
            while self.process.is_alive() and time.monotonic() < deadline:
                try:
                    out.append(self.messages.get(timeout=0.05))
                except (queue.Empty, EOFError, OSError):
                    pass
            if self.process.is_alive():
                self.process.kill()                 # it ignores SIGTERM
            self.process.join(1.0)
        while True:
            try:
                out.append(self.messages.get_nowait())
            except (queue.Empty, EOFError, OSError, ValueError):
                break
        for q in (self.commands, self.messages):
            q.cancel_join_thread()
            q.close()
        for shm in self._shms:
            shm.close()
            try:
                shm.unlink()
            except FileNotFoundError:
                pass
        self._shms = []
        return out


def subset_due(epoch, batch):
    """Whether the window's trainer evaluates the test subset after this batch: early and
    often in the first epoch (batch 1 is a few milliseconds in), then every SUBSET_EVERY."""
    return batch % SUBSET_EVERY == 0 or (epoch == 0 and batch in EARLY_SUBSETS)


class ParentWatch:
    """In a child process: has the process that started it died?

    `os.getppid()` changing is no test everywhere: Windows never re-parents an orphan. So
    this asks multiprocessing's parent sentinel instead (POSIX: a pipe whose other end only
    the parent holds, readable once it dies; Windows: the parent's process handle). A
    process not started by multiprocessing falls back to the re-parenting test."""

    def __init__(self):
        self._parent = mp.parent_process()
        self._ppid = os.getppid()

    def gone(self):
        if self._parent is not None:
            return not self._parent.is_alive()
        return os.getppid() != self._ppid


def _split_params(flat, sizes):
    """Views W_i (fan_in, fan_out) and b_i (fan_out,) into one flat float32 array."""
    weights, biases, o = [], [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        weights.append(flat[o:o + fan_in * fan_out].reshape(fan_in, fan_out))
        o += fan_in * fan_out
        biases.append(flat[o:o + fan_out])
        o += fan_out
    return weights, biases


class _Worker(Observer):
    """The child's side: the trainer, the loop it runs in, and, as its observer, the window's
    orders before each batch (pause, slow motion, one step, stop), batch reports and
    published weights after it, every evaluation sent once, the snapshots the window can
    rewind to. Orders keep being answered after training ends (rewinding, saving)."""

    def __init__(self, config, arr, model_file, lock, commands, messages, observers=()):
        self.config, self.lock, self.commands, self.messages = config, lock, commands, messages
        self.trainer = Trainer(config, arr["x_train"], arr["y_train"])
        if model_file:
            arrays, meta = read_model(model_file)
            self.trainer.restore(arrays, meta)
        self.x_test, self.y_test = arr["x_test"], arr["y_test"]
        # What the steps changed (every step in step mode and slow motion) and training health,
        # both sent to the window; after `self`, so they see the step right after its orders.
        self.steps = StepWatch(self.messages.put, detailed=lambda: self.stepping or self.delay > 0)
        self.run = Run(self.trainer, self.x_test, self.y_test,
                       [DivergenceCheck(), self, self.steps,
                        HealthMonitor(config.health_every, send=self.messages.put, min_gap_s=HEALTH_GAP_S),
                        *(make(log=self.log) for make in observers)])
        self.weights, self.biases = _split_params(arr["params"], config.sizes)
        self.stamp = arr["stamp"]
        self.paused, self.delay, self.running, self.stepping = config.no_train, 0.0, True, False
        self.parent_alive = lambda: True
        self.sent_snapshots = None              # what the window was last told of the snapshots
        self.losses = []                        # (progress, loss) of the batches since the last report
        self.last_stats = None                  # the last batch's stats (for the report of the losses left)
        self.last_publish = self.last_report = time.perf_counter()

    def log(self, line):
        """A line for the user: on stderr and in the window."""
        print(line, file=sys.stderr, flush=True)
        self.messages.put(Notice(line))

    # ------------------------------------------------------------ the loop's observer
    def before_batch(self, run):
        self.wait_for_orders()
        if not self.running or not self.parent_alive():
            raise StopTraining("interrupted")    # the window closed (or died) before the end

    def on_batch(self, run, stats):
        if stats.diverged:
            return
        self.losses.append((self.trainer.progress, float(stats.loss)))
        self.last_stats = stats
        now, t = time.perf_counter(), self.trainer
        slow, end_of_epoch = self.delay > 0 or self.stepping, stats.batch == stats.n_batches
        if slow or end_of_epoch or now - self.last_report > 0.1:
            self.report_losses(run)
            self.last_report = now
        if slow or end_of_epoch or now - self.last_publish > PUBLISH_SECONDS:
            self.publish()
            self.last_publish = now
        if not end_of_epoch:                     # the loop evaluates the full test set at an epoch's end
            if self.stepping or subset_due(t.epoch, t.batch):
                run.evaluate("subset")
            if self.snapshot_mark() != self.sent_snapshots:
                self.send_snapshots()            # a new snapshot to rewind to
        self.stepping = False

    def on_evaluation(self, run, record):
        if self.running:                         # not the final one after the window closed
            self.messages.put(record if record.kind == "full" else record.slim())

    def on_epoch_end(self, run, stats):
        self.send_snapshots()                    # the epoch's snapshot, once

    def report_losses(self, run):
        """The losses of the batches since the last report, with the last batch's position."""
        stats = self.last_stats
        if self.losses and stats is not None:
            self.messages.put(BatchReport(stats.epoch, stats.batch, stats.n_batches, tuple(self.losses),
                                          stats.accuracy, stats.lr, run.samples, time.monotonic()))
        self.losses = []

    def on_end(self, run, outcome):
        self.report_losses(run)                  # a run stopped within 0.1 s of a report keeps its last losses
        if outcome.status == "finished":
            if self.config.save:
                self.save(self.config.save, "finished")
            self.messages.put(Finished(self.trainer.epoch))
        elif outcome.status == "diverged":
            self.messages.put(TrainerFailed(outcome.error, diverged=True))
            self.paused = True

    # ------------------------------------------------------------ the window's orders
    def publish(self):
        """Copy the weights to shared memory for the window (skipped while the lock is held
        for longer than a copy takes: by a window killed while reading, which never lets go)."""
        t = self.trainer
        if not self.lock.acquire(timeout=LOCK_WAIT_S):
            return
        try:
            copy_params(self.weights + self.biases, t.net.weights + t.net.biases)
            self.stamp[:] = (self.stamp[0] + 1, *t.position)
        finally:
            self.lock.release()

    def position(self):
        self.messages.put(Position(*self.trainer.position, self.paused))

    def save(self, path, reason):
        try:
            self.trainer.save(path)
            if reason in ("finished", "quit"):  # the weights the run ends with
                self.run.model_file = path
            self.messages.put(Saved(path, reason))
        except OSError as e:
            self.messages.put(Notice(f"could not save {path}: {e.strerror or e}"))

    def handle(self, order):
        c, t = order.command, self.trainer
        if c is Command.STOP:
            if order.path:
                self.save(order.path, "quit")
            self.running = False
        elif c is Command.PAUSE:
            self.paused = True
            self.publish()
            self.position()
            self.run.evaluate("full")
        elif c is Command.RESUME:
            self.paused = False
            self.position()
        elif c is Command.DELAY:
            self.delay = float(order.seconds)
        elif c is Command.SAVE:
            self.save(order.path, "key")
        elif c is Command.SCALE_LR:
            lr = t.scale_lr(order.value)
            self.messages.put(LrChange(*t.history.lr_changes[-1]))
            self.messages.put(Notice(f"learning rate now {lr:.3g} (x{t.lr_scale:g} of the schedule)"))
        elif c is Command.SNAPSHOT and 0 <= order.index < len(t.snapshots):
            W, b = t.snapshots.weights(order.index)
            self.messages.put(SnapshotWeights(order.index, t.snapshots.info(order.index),
                                              [w.astype(np.float16) for w in W], [v.astype(np.float16) for v in b]))
        elif c is Command.DIGIT_HISTORY:
            self.messages.put(DigitHistory(order.index, self.digit_history(order.index)))
        elif c is Command.STEP and not t.finished and self.run.outcome is None:
            self.stepping = True                 # the loop trains one batch, then waits again
        elif c in (Command.WATCH, Command.INSPECT):
            try:
                if c is Command.WATCH:
                    self.steps.watch(order.pixels, order.index, order.token)
                else:
                    self.messages.put(self.steps.inspect(t, order.at, order.token))
            except ValueError as e:                  # a bad order is said, training goes on
                self.messages.put(Notice(f"cannot {c.value}: {e}"))

    def wait_for_orders(self):
        """Orders first, so keys feel instant even mid-epoch. Idle or in slow motion, wait for
        them (instead of sleeping) so Space still answers at once; a step order ends the wait."""
        begin = time.perf_counter()
        while self.running and not self.stepping:
            idle = self.paused or self.trainer.finished or self.run.outcome is not None
            remaining = begin + (0.05 if idle else self.delay) - time.perf_counter()
            try:
                order = self.commands.get(timeout=remaining) if remaining > 0 else self.commands.get_nowait()
            except queue.Empty:
                if idle and self.parent_alive():
                    begin = time.perf_counter()
                    continue
                return
            except (EOFError, OSError):           # the window is gone
                order = Order(Command.STOP)
            self.handle(order)

    # ------------------------------------------------------------ what the window asks for
    def snapshot_mark(self):
        """(count, newest info) of the snapshots: changes whenever one is taken or thinned."""
        snaps = self.trainer.snapshots
        return len(snaps), snaps.info(len(snaps) - 1) if len(snaps) else None

    def send_snapshots(self):
        snaps = self.trainer.snapshots
        self.messages.put(SnapshotList([snaps.info(i) for i in range(len(snaps))]))
        self.sent_snapshots = self.snapshot_mark()

    def digit_history(self, index):
        """(progress, predicted class, probability of the true class) of test digit `index`
        under each snapshot, oldest first."""
        snaps, rows = self.trainer.snapshots, []
        if not 0 <= index < len(self.y_test):
            return rows
        net = MLP(self.config.sizes, self.config.activation, seed=0)
        x = to_float(self.x_test[index])
        for i in range(len(snaps)):
            snaps.load_into(net, i)
            with np.errstate(all="ignore"):
                p = net.forward(x)
            p = np.nan_to_num(p)
            rows.append((snaps.info(i)[2], int(p.argmax()), float(p[int(self.y_test[index])])))
        return rows

    # ------------------------------------------------------------ the process's life
    def serve(self, parent_alive):
        """The window's first picture (weights, an evaluation, the run's past), then the loop
        until training ends, then orders until the window stops this process."""
        t, self.parent_alive = self.trainer, parent_alive
        self.position()
        if t.finished:                            # a loaded run that is already complete
            self.messages.put(Finished(t.epoch))
        self.publish()
        self.run.evaluate("full")
        snaps = t.snapshots
        self.messages.put(RunHistory(t.history.copy(), [snaps.info(i) for i in range(len(snaps))]))
        self.sent_snapshots = self.snapshot_mark()
        if not t.finished and not self.config.no_train:
            train(self.run)
        while self.running and parent_alive():
            self.wait_for_orders()

    def failed(self, text):
        """The process failed outside the loop: the observers still hear how the run ended."""
        if self.run.outcome is None:
            self.run.outcome = Outcome("failed", text[:500])
            self.run.notify("on_end", self.run.outcome)


def _worker_main(config, specs, model_file, lock, commands, messages, observers=(), nice=0):
    """Body of the training process."""
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    # Ctrl+C and SIGTERM (also when sent to the whole process group) are the window's to
    # handle: it asks this process to save and stop. A SIGTERM that no order follows (a
    # window gone without closing, multiprocessing's exit) ends it after a grace period.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = []
    signal.signal(signal.SIGTERM, lambda *_: terminated.append(time.monotonic()))
    parent = ParentWatch()
    shms, arr = [], {}
    for key, spec in specs.items():
        shm, arr[key] = _attach(spec)
        shms.append(shm)
    worker = None
    try:
        worker = _Worker(config, arr, model_file, lock, commands, messages, observers)
        worker.serve(lambda: not parent.gone() and not (terminated and time.monotonic() - terminated[0] > TERM_GRACE_S))
    except Exception as e:                         # noqa: BLE001 - said to the window, which stays up
        text = f"the training process failed: {type(e).__name__}: {e}".splitlines()[0]
        messages.put(TrainerFailed(text, False))
        if worker is not None:
            worker.failed(text)
        raise
    finally:
        for shm in shms:
            shm.close()
        if terminated or parent.gone():
            # nobody may read what is still queued: exiting must not wait to flush it into a
            # full pipe (multiprocessing's exit in the parent would wait for us for ever)
            messages.cancel_join_thread()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
