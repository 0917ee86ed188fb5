"""The training process the window talks to: a `Trainer` in a child process that
publishes its weights through shared memory and reports through a queue, so training never
waits for a frame and a frame never waits for training.

`TrainingProcess` is the window's handle on it (start, orders, polling, stop); `_Worker`
is the child's loop, which also records the run in the run library (`run_recorder.RunRecorder`,
built in the child: every evaluation, the loss curve, and how the run ended). What they say
to each other is in `messages.py`. Imports the trainer, the model file reader, the run
library and its recorder, and multiprocessing; never pygame.
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
from mnist_live.runs import library as run_library
from mnist_live.runs import recorder as run_recorder
from mnist_live.training.config import Config
from mnist_live.training.messages import (
    BatchReport,
    Command,
    DigitHistory,
    EvalReport,
    Finished,
    Notice,
    Order,
    Position,
    RunHistory,
    Saved,
    SnapshotWeights,
    TrainerFailed,
)
from mnist_live.training.model_file import read_model
from mnist_live.training.trainer import SUBSET_SIZE, Trainer, TrainingDiverged, evaluate

SUBSET_EVERY = 100            # batches between subset evaluations in the window
PUBLISH_SECONDS = 0.05        # weight snapshots to the window at most 20 times a second
TERM_GRACE_S = 3.0            # after SIGTERM the trainer waits this long for the window's stop order


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

    The run goes into the run library (`config.runs`, or the default file) unless
    `config.no_runs` or `config.no_train` (a session that cannot train is no run);
    `command`: the command line it records (default: this process's, sys.argv[1:]).
    `nice`: how much lower its CPU priority is (a preview run on the bundled sample while
    the full set is parsed in the background gives the parse the cores it needs)."""

    def __init__(self, config: Config, data, model_file=None, command=None, nice=0):
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
        self.commands = ctx.Queue()
        self.messages = ctx.Queue()
        self.seen_version = 0
        env_before = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"   # inherited by the spawned child only
        try:
            self.process = ctx.Process(
                target=_worker_main, daemon=True, name="trainer",
                args=(config, specs, model_file, self.lock, self.commands, self.messages,
                      run_to_record(config, data, sys.argv[1:] if command is None else command), nice))
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
        with self.lock:
            stamp = tuple(int(v) for v in self.stamp_shared)
            if stamp[0] == 0:
                return None
            copy_params(weights + biases, shared_w + shared_b)              # straight from shared memory
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


def run_to_record(config, data, command):
    """What the child needs to record the run (plain data), or None when it is not recorded."""
    if config.no_runs or config.no_train:
        return None
    return {"dataset": {"name": data.name, "source": data.source, "train": int(len(data.y_train)),
                        "test": int(len(data.y_test))},
            "command": [str(a) for a in command]}


def _split_params(flat, sizes):
    """Views W_i (fan_in, fan_out) and b_i (fan_out,) into one flat float32 array."""
    weights, biases, o = [], [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        weights.append(flat[o:o + fan_in * fan_out].reshape(fan_in, fan_out))
        o += fan_in * fan_out
        biases.append(flat[o:o + fan_out])
        o += fan_out
    return weights, biases


def _eval_report(kind, ev, trainer, elapsed):
    return EvalReport(kind, ev.accuracy, ev.per_class, ev.confusion, ev.predictions if kind == "full" else None,
                      *trainer.position, trainer.progress, elapsed)


class _Worker:
    """The training process's loop: train, publish, obey orders, never block the UI."""

    def __init__(self, config, arr, model_file, lock, commands, messages, to_record=None):
        self.config, self.lock, self.commands, self.messages = config, lock, commands, messages
        self.to_record = to_record              # run_to_record(...): the run library's recording, or None
        self.trainer = Trainer(config, arr["x_train"], arr["y_train"])
        self.x_test, self.y_test = arr["x_test"], arr["y_test"]
        self.subset = np.arange(min(SUBSET_SIZE, len(self.y_test)))
        if model_file:
            arrays, meta = read_model(model_file)
            self.trainer.restore(arrays, meta)
        self.weights, self.biases = _split_params(arr["params"], config.sizes)
        self.stamp = arr["stamp"]
        self.paused, self.delay, self.running = config.no_train, 0.0, True
        self.samples = 0
        self.sent_snapshots = None              # what the window was last told of the snapshots
        self.recorder = None                    # run_recorder.RunRecorder while the run is recorded
        self.t_start = time.perf_counter()      # when the run started (elapsed_s of its evaluations)
        self.train_s = 0.0                      # seconds spent training batches (samples/s)
        self.last_full = None                   # ((epoch, batch), Evaluation) of the newest full evaluation
        self.saved_to = None                    # the model file holding the final weights, once saved

    def publish(self):
        t = self.trainer
        with self.lock:
            copy_params(self.weights + self.biases, t.net.weights + t.net.biases)
            self.stamp[:] = (self.stamp[0] + 1, *t.position)

    def evaluate(self, kind):
        t0 = time.perf_counter()
        if kind == "full":
            ev = evaluate(self.trainer.net, self.x_test, self.y_test)
        else:
            ev = evaluate(self.trainer.net, self.x_test[self.subset], self.y_test[self.subset])
        self.trainer.record_eval(kind, ev)
        self.messages.put(_eval_report(kind, ev, self.trainer, time.perf_counter() - t0))
        if kind == "full":
            self.last_full = (self.trainer.position, ev)
        if self.recorder is not None:
            self.recorder.sync(self.trainer.history, time.perf_counter() - self.t_start)

    def position(self):
        t = self.trainer
        self.messages.put(Position(*t.position, self.paused))

    def save(self, path, reason):
        try:
            self.trainer.save(path)
            if reason in ("finished", "quit"):  # the weights the run ends with
                self.saved_to = path
            self.messages.put(Saved(path, reason))
        except OSError as e:
            self.messages.put(Notice(f"could not save {path}: {e.strerror or e}"))

    def train_one(self):
        """One batch; None (and paused) when the run diverged."""
        t0 = time.perf_counter()
        try:
            stats = self.trainer.train_batch()
        except TrainingDiverged as e:
            self.messages.put(TrainerFailed(str(e), diverged=True))
            self.paused = True
            self.end_run("diverged", error=str(e))
            return None
        finally:
            self.train_s += time.perf_counter() - t0
        self.samples += self.config.batch_size if stats.batch < stats.n_batches else \
            len(self.trainer.x_train) - (stats.n_batches - 1) * self.config.batch_size
        return stats

    def report(self, stats, loss):
        self.messages.put(BatchReport(stats.epoch, stats.batch, stats.n_batches, float(loss), stats.accuracy,
                                      stats.lr, self.samples, time.monotonic()))

    def handle(self, order):
        c = order.command
        if c is Command.STOP:
            if order.path:
                self.save(order.path, "quit")
            self.running = False
        elif c is Command.PAUSE:
            self.paused = True
            self.publish()
            self.position()
            self.evaluate("full")
        elif c is Command.RESUME:
            self.paused = False
            self.position()
        elif c is Command.DELAY:
            self.delay = float(order.seconds)
        elif c is Command.SAVE:
            self.save(order.path, "key")
        elif c is Command.SCALE_LR:
            lr = self.trainer.scale_lr(order.value)
            self.messages.put(Notice(f"learning rate now {lr:.3g} (x{self.trainer.lr_scale:g} of the schedule)"))
            self.send_history()
        elif c is Command.SNAPSHOT and 0 <= order.index < len(self.trainer.snapshots):
            snaps = self.trainer.snapshots
            W, b = snaps.weights(order.index)
            self.messages.put(SnapshotWeights(order.index, snaps.info(order.index),
                                              [w.astype(np.float16) for w in W], [v.astype(np.float16) for v in b]))
        elif c is Command.DIGIT_HISTORY:
            self.messages.put(DigitHistory(order.index, self.digit_history(order.index)))
        elif c is Command.STEP and not self.trainer.finished:
            epoch = self.trainer.epoch
            stats = self.train_one()
            if stats is not None:
                self.report(stats, stats.loss)
                self.publish()
                self.evaluate("full" if self.trainer.epoch != epoch else "subset")
                self.after_epoch(epoch)

    def snapshot_mark(self):
        """(count, newest info) of the snapshots: changes whenever one is taken or thinned."""
        snaps = self.trainer.snapshots
        return len(snaps), snaps.info(len(snaps) - 1) if len(snaps) else None

    def send_history(self):
        snaps = self.trainer.snapshots
        self.messages.put(RunHistory(self.trainer.history.copy(), [snaps.info(i) for i in range(len(snaps))]))
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

    def after_epoch(self, epoch_before):
        t = self.trainer
        if t.epoch == epoch_before:
            return
        if t.finished:
            if self.config.save:
                self.save(self.config.save, "finished")
            self.messages.put(Finished(t.epoch))
            self.end_run("finished")

    # ------------------------------------------------------------ the run library
    def start_recording(self):
        """Open the run's record (a library it cannot use: one line, to the window and stderr)."""
        def log(line):
            print(line, file=sys.stderr, flush=True)
            self.messages.put(Notice(line))
        cfg = self.config
        self.recorder = run_recorder.RunRecorder(cfg.runs or run_library.default_path(cfg.data_home), cfg,
                                                 self.to_record["dataset"], command=self.to_record["command"],
                                                 log=log)
        self.recorder.sync(self.trainer.history, time.perf_counter() - self.t_start)   # the first evaluation

    def final_evaluation(self):
        """A full test-set evaluation of the weights the run ends with (the newest one when
        it was of these weights); not sent to the window nor added to the history."""
        if self.last_full is not None and self.last_full[0] == self.trainer.position:
            return self.last_full[1]
        return evaluate(self.trainer.net, self.x_test, self.y_test)

    def end_run(self, status, error=None):
        """Close the run's record: finished, interrupted, diverged or failed (once; nothing
        is recorded after it)."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        ev = None
        if status != "failed":
            ev = self.final_evaluation()
        recorder.finish(status, ev, wall_s=time.perf_counter() - self.t_start,
                        samples_per_s=self.samples / self.train_s if self.train_s > 0 else None,
                        model_file=self.saved_to, error=error, history=self.trainer.history,
                        elapsed_s=time.perf_counter() - self.t_start)

    def wait_for_orders(self):
        """Commands first, so keys feel instant even mid-epoch. Idle or in slow motion,
        wait for them (instead of sleeping) so Space still answers at once."""
        begin = time.perf_counter()
        while self.running:
            idle = self.paused or self.trainer.finished
            remaining = begin + (0.05 if idle else self.delay) - time.perf_counter()  # re-read per order
            try:
                order = self.commands.get(timeout=remaining) if remaining > 0 else self.commands.get_nowait()
            except queue.Empty:
                return
            except (EOFError, OSError):           # the window is gone
                order = Order(Command.STOP)
            self.handle(order)

    def run(self, parent_alive):
        t = self.trainer
        self.position()
        if t.finished:                            # a loaded run that is already complete
            self.messages.put(Finished(t.epoch))
        self.publish()
        self.evaluate("full")
        self.send_history()
        if not t.finished and self.to_record is not None:
            self.start_recording()                # after the window has its first picture
        last_publish = last_report = time.perf_counter()
        losses = []
        while self.running and parent_alive():
            self.wait_for_orders()
            if not self.running or self.paused or t.finished:
                continue
            epoch_before = t.epoch
            stats = self.train_one()
            if stats is None:
                continue
            losses.append(stats.loss)
            now = time.perf_counter()
            slow = self.delay > 0
            if slow or now - last_report > 0.1 or t.epoch != epoch_before:
                self.report(stats, np.mean(losses))
                losses = []
                last_report = now
            if t.epoch != epoch_before:
                self.publish()
                self.evaluate("full")
                self.after_epoch(epoch_before)
                self.send_history()                       # the epoch's evaluation and snapshot, once
            else:
                if slow or now - last_publish > PUBLISH_SECONDS:
                    self.publish()
                    last_publish = now
                if t.batch % SUBSET_EVERY == 0:
                    self.evaluate("subset")
                if self.snapshot_mark() != self.sent_snapshots:
                    self.send_history()                   # a new snapshot to rewind to
        self.end_run("interrupted")               # the window closed (or died) before the end


def _worker_main(config, specs, model_file, lock, commands, messages, to_record=None, nice=0):
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
        worker = _Worker(config, arr, model_file, lock, commands, messages, to_record)
        worker.run(lambda: not parent.gone() and not (terminated and time.monotonic() - terminated[0] > TERM_GRACE_S))
    except Exception as e:                         # noqa: BLE001 - said to the window, which stays up
        text = f"the training process failed: {type(e).__name__}: {e}".splitlines()[0]
        messages.put(TrainerFailed(text, False))
        if worker is not None:
            worker.end_run("failed", error=text[:500])
        raise
    finally:
        for shm in shms:
            shm.close()
