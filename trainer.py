"""Training runs: the epoch loop, test evaluation, model files, and the background
training process the window talks to.

`Trainer` owns a network, its optimizer and one random generator; `train_batch()` does one
step and `evaluate()` measures the test set. The headless command line drives it directly;
the window drives it through `TrainingProcess`, a child process that publishes weight
snapshots through shared memory and small messages through a queue, so training never
waits for a frame and a frame never waits for training.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import signal
import time
import zipfile
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from config import Config
from neural_network import MLP, Optimizer, Shifter, lr_at
from utils import accuracy, atomic_save_npz, confusion_matrix, per_class_accuracy

FORMAT_VERSION = 1
DIVERGED_LOSS = 50.0          # chance level is ln(10) = 2.3; far above it the run has blown up
SUBSET_SIZE = 1000            # fixed test subset evaluated often, so per-class bars move early
SUBSET_EVERY = 100            # batches between subset evaluations in the window
PUBLISH_SECONDS = 0.05        # weight snapshots to the window at most 20 times a second


class TrainingDiverged(Exception):
    """Loss became NaN/inf or exploded; the message names the likely cause."""


class ModelFileError(Exception):
    """A model file could not be read or does not fit the configuration (one line)."""


@dataclass
class BatchStats:
    epoch: int            # 0-based epoch being trained
    batch: int            # batches done in this epoch
    n_batches: int
    loss: float           # this batch's mean cross-entropy
    accuracy: float       # running training accuracy in this epoch
    samples_per_s: float  # training throughput over this epoch
    lr: float


@dataclass
class Evaluation:
    accuracy: float
    per_class: np.ndarray     # (10,) recall per class
    confusion: np.ndarray     # (10, 10) int64, rows true
    predictions: np.ndarray   # (N,) int predicted class per test sample
    n: int


def evaluate(net, x, y):
    """Accuracy, per-class accuracy and confusion matrix of `net` on x (N, 784) uint8, y (N,)."""
    pred = net.predict(x)
    conf = confusion_matrix(y, pred)
    return Evaluation(accuracy(conf), per_class_accuracy(conf), conf, pred.astype(np.int16), len(y))


class Trainer:
    """One training run: network, optimizer, data order and position, all reproducible
    from the seed and resumable from a model file."""

    def __init__(self, config: Config, x_train, y_train):
        self.config = config
        self.x_train = x_train                       # (N, 784) uint8
        self.y_train = y_train.astype(np.int64)      # (N,)
        self.rng = np.random.default_rng(config.seed)
        self.net = MLP(config.sizes, config.activation, seed=config.seed)
        self.grads = [np.empty_like(p) for p in self.net.params]
        self.opt = Optimizer(self.net.params, config.optimizer, config.momentum, config.nesterov)
        self.shifter = Shifter(2) if config.augment else None
        self.epoch = 0           # completed epochs
        self.batch = 0           # batches done in the current epoch
        self.perm = None         # data order of the current epoch
        self._epoch_seen = self._epoch_correct = 0
        self._epoch_time = 0.0
        self._xb = {}            # batch size -> float32 input buffer

    @property
    def n_batches(self):
        return -(-len(self.x_train) // self.config.batch_size)

    @property
    def finished(self):
        return self.epoch >= self.config.epochs

    @property
    def samples_per_s(self):
        return self._epoch_seen / self._epoch_time if self._epoch_time > 0 else 0.0

    @property
    def progress(self):
        """Epochs done, as a float (2.5 = half-way through the third epoch)."""
        in_epoch = self.batch / self.n_batches if self.perm is not None else 0.0  # between epochs: 0
        return self.epoch + in_epoch

    def current_lr(self):
        return lr_at(self.config.learning_rate, self.config.lr_schedule, self.progress / self.config.epochs)

    def train_batch(self) -> BatchStats:
        """One optimisation step on the next mini-batch; starts a new epoch when needed."""
        cfg = self.config
        t0 = time.perf_counter()
        if self.perm is None:
            self.perm = self.rng.permutation(len(self.x_train))
            self.batch = 0
            self._epoch_seen = self._epoch_correct = 0
            self._epoch_time = 0.0
        idx = self.perm[self.batch * cfg.batch_size:(self.batch + 1) * cfg.batch_size]
        xb_u8 = self.x_train[idx]                              # (B, 784) uint8
        if self.shifter is not None:
            xb_u8 = self.shifter(xb_u8, self.rng)
        xb = self._xb.get(len(idx))
        if xb is None:
            xb = self._xb[len(idx)] = np.empty((len(idx), 784), np.float32)
        np.multiply(xb_u8, np.float32(1 / 255), out=xb)
        yb = self.y_train[idx]
        lr = self.current_lr()
        loss, correct = self.net.train_step(xb, yb, self.grads, self.config.weight_decay,
                                            self.config.dropout, self.rng, self.opt, lr,
                                            max_loss=DIVERGED_LOSS)  # no update past it
        if not np.isfinite(loss) or loss > DIVERGED_LOSS:
            raise TrainingDiverged(self._divergence_message(loss))
        self.batch += 1
        self._epoch_seen += len(idx)
        self._epoch_correct += correct
        self._epoch_time += time.perf_counter() - t0
        stats = BatchStats(self.epoch, self.batch, self.n_batches, loss,
                           self._epoch_correct / self._epoch_seen, self.samples_per_s, lr)
        if self.batch >= self.n_batches:
            self.epoch += 1
            self.perm = None
        return stats

    def _divergence_message(self, loss):
        cfg = self.config
        what = "became NaN/inf" if not np.isfinite(loss) else f"exploded to {loss:.3g}"
        return (f"training diverged at epoch {self.epoch + 1}, batch {self.batch + 1}: the loss {what}; "
                f"the learning rate {cfg.learning_rate:g} is probably too high for {cfg.optimizer} "
                f"(try --lr {cfg.learning_rate / 10:g})")

    # ----------------------------------------------------------------- model files
    def state_arrays(self):
        """Everything needed to reproduce and resume the run, as named arrays."""
        out = {}
        for i, (W, b) in enumerate(zip(self.net.weights, self.net.biases), start=1):
            out[f"W{i}"], out[f"b{i}"] = W, b
        out.update(self.opt.state_arrays())
        out["epoch"] = np.array(self.epoch, dtype=np.int64)
        out["batch"] = np.array(self.batch if self.perm is not None else 0, dtype=np.int64)
        out["perm"] = self.perm if self.perm is not None else np.zeros(0, dtype=np.int64)
        out["progress"] = np.array([self._epoch_seen, self._epoch_correct], dtype=np.int64)
        meta = {"format_version": FORMAT_VERSION, "config": json.loads(self.config.to_json()),
                "sizes": list(self.net.sizes), "rng_state": self.rng.bit_generator.state}
        out["meta"] = np.array(json.dumps(meta))
        return out

    def save(self, path):
        """Write the model atomically as .npz (W1, b1, ... usable from any NumPy code)."""
        atomic_save_npz(path, self.state_arrays())

    def restore(self, arrays, meta):
        """Load weights, optimizer state and data position read by `read_model`.

        The run resumes exactly when the data and batch size are the same; otherwise the
        interrupted epoch starts again (its position means nothing for other batches),
        and another optimizer starts with fresh state."""
        for i in range(self.net.n_layers):
            self.net.weights[i][...] = arrays[f"W{i + 1}"]
            self.net.biases[i][...] = arrays[f"b{i + 1}"]
        saved = meta["config"]
        if saved.get("optimizer") == self.config.optimizer and "opt_t" in arrays:
            self.opt.load_state(arrays)
        self.epoch = int(arrays.get("epoch", 0))
        perm = arrays.get("perm", np.zeros(0))
        same_batches = saved.get("batch_size") == self.config.batch_size
        if len(perm) == len(self.x_train) and same_batches and 0 < int(arrays["batch"]) < self.n_batches:
            self.perm = perm.astype(np.int64)
            self.batch = int(arrays["batch"])
            self._epoch_seen, self._epoch_correct = (int(v) for v in arrays["progress"])
        if "rng_state" in meta:
            self.rng.bit_generator.state = meta["rng_state"]


def read_model(path):
    """(arrays, meta) from a model file, with one-line ModelFileError on any problem."""
    if not os.path.exists(path):
        raise ModelFileError(f"model file {path} does not exist")
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":              # every .npz is a zip archive
                raise ModelFileError(f"{path} is not a model file: not a NumPy .npz archive")
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        if isinstance(e, ValueError) and "pickle" in str(e):   # object arrays: never unpickled here
            raise ModelFileError(f"{path} is not a model file: it holds Python objects, "
                                 f"not only numeric arrays") from None
        message = f"{path} is not a readable model .npz file ({type(e).__name__}: {e})"
        raise ModelFileError(message.splitlines()[0]) from None
    if "meta" not in arrays or "W1" not in arrays:
        raise ModelFileError(f"{path} is not a model file of this app (no W1/meta entries)")
    try:
        meta = json.loads(str(arrays["meta"]))
    except ValueError:
        raise ModelFileError(f"{path} has an unreadable meta entry") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) \
            or not isinstance(meta.get("sizes"), list):
        raise ModelFileError(f"{path} has a meta entry without the expected config and sizes")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path} has model format {meta.get('format_version')}, expected {FORMAT_VERSION}")
    hidden = meta["config"].get("hidden")
    if not (isinstance(hidden, list) and all(isinstance(h, int) and h > 0 for h in hidden)):
        raise ModelFileError(f"{path} has an invalid hidden-layer list in its meta entry")
    return arrays, meta


def check_model_fits(path, arrays, meta, config):
    """ModelFileError unless the file's layer shapes match `config`."""
    sizes = tuple(meta.get("sizes", ()))
    if sizes != config.sizes:
        raise ModelFileError(
            f"{path} holds a {'-'.join(map(str, sizes))} network but the configuration asks for "
            f"{'-'.join(map(str, config.sizes))} (use --hidden {' '.join(map(str, sizes[1:-1]))})")
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        W, b = arrays.get(f"W{i}"), arrays.get(f"b{i}")
        if W is None or b is None or W.shape != (fan_in, fan_out) or b.shape != (fan_out,):
            raise ModelFileError(f"{path}: W{i}/b{i} missing or not shaped ({fan_in}, {fan_out})")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ModelFileError(f"{path}: W{i}/b{i} contain NaN or inf")


# ------------------------------------------------------------------ background process
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

    The parent calls `poll()` once per frame: it returns new messages (dicts) and copies
    the newest weight snapshot into `self.weights` / `self.biases` when there is one."""

    def __init__(self, config: Config, data, model_file=None):
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
        self._flat_local = np.zeros(n_params, np.float32)
        self.weights, self.biases = _split_params(self._flat_local, sizes)
        self.version = ctx.Value("q", 0, lock=False)
        self.lock = ctx.Lock()
        self.commands = ctx.Queue()
        self.messages = ctx.Queue()
        self.seen_version = 0
        env_before = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"   # inherited by the spawned child only
        try:
            self.process = ctx.Process(
                target=_worker_main, daemon=True, name="trainer",
                args=(config, specs, model_file, self.version, self.lock,
                      self.commands, self.messages))
            self.process.start()
        finally:
            if env_before is None:
                os.environ.pop("OPENBLAS_NUM_THREADS", None)
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = env_before

    def send(self, command, **kw):
        if self.process.is_alive():
            self.commands.put((command, kw))

    def poll(self, max_messages=200):
        """(messages, weights_changed)."""
        out = []
        for _ in range(max_messages):
            try:
                out.append(self.messages.get_nowait())
            except (queue.Empty, EOFError, OSError):
                break
        changed = False
        v = self.version.value
        if v != self.seen_version:
            with self.lock:
                np.copyto(self._flat_local, self.params_flat)
                self.seen_version = self.version.value
            changed = True
        return out, changed

    def stop(self, save_path=None, timeout=10.0):
        """Stop the worker (saving first when asked) and free shared memory.
        Returns the last messages (e.g. the 'saved' notice)."""
        out = []
        if self.process.is_alive():
            self.commands.put(("stop", {"save": save_path}))
            deadline = time.monotonic() + timeout
            while self.process.is_alive() and time.monotonic() < deadline:
                try:
                    out.append(self.messages.get(timeout=0.05))
                except (queue.Empty, EOFError, OSError):
                    pass
            if self.process.is_alive():
                self.process.terminate()
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


def _split_params(flat, sizes):
    """Views W_i (fan_in, fan_out) and b_i (fan_out,) into one flat float32 array."""
    weights, biases, o = [], [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        weights.append(flat[o:o + fan_in * fan_out].reshape(fan_in, fan_out))
        o += fan_in * fan_out
        biases.append(flat[o:o + fan_out])
        o += fan_out
    return weights, biases


def _eval_message(kind, ev, trainer, elapsed):
    return {"type": kind, "accuracy": ev.accuracy, "per_class": ev.per_class.tolist(),
            "confusion": ev.confusion.tolist(), "predictions": ev.predictions if kind == "eval" else None,
            "epoch": trainer.epoch, "batch": trainer.batch, "progress": trainer.progress,
            "seconds": elapsed}


def _worker_main(config, specs, model_file, version, lock, commands, messages):
    """Body of the training process: train, publish, obey commands, never block the UI."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl+C is the window's to handle (and save)
    parent = os.getppid()
    shms, arr = [], {}
    for key, spec in specs.items():
        shm, arr[key] = _attach(spec)
        shms.append(shm)
    trainer = Trainer(config, arr["x_train"], arr["y_train"])
    x_test, y_test = arr["x_test"], arr["y_test"]
    subset = np.arange(min(SUBSET_SIZE, len(y_test)))
    if model_file:
        arrays, meta = read_model(model_file)
        trainer.restore(arrays, meta)
    weights, biases = _split_params(arr["params"], config.sizes)

    def publish():
        with lock:
            for dst, src in zip(weights + biases, trainer.net.weights + trainer.net.biases):
                np.copyto(dst, src)
            version.value += 1

    def full_eval():
        t = time.perf_counter()
        ev = evaluate(trainer.net, x_test, y_test)
        messages.put(_eval_message("eval", ev, trainer, time.perf_counter() - t))

    def save(path, reason):
        try:
            trainer.save(path)
            messages.put({"type": "saved", "path": path, "reason": reason})
        except OSError as e:
            messages.put({"type": "error", "text": f"could not save {path}: {e.strerror or e}"})

    state = {"paused": config.no_train, "delay": 0.0, "running": True}

    def subset_eval():
        ev = evaluate(trainer.net, x_test[subset], y_test[subset])
        messages.put(_eval_message("subset", ev, trainer, 0.0))

    def train_one():
        """One batch; None (and paused) when the run diverged."""
        try:
            return trainer.train_batch()
        except TrainingDiverged as e:
            messages.put({"type": "diverged", "text": str(e)})
            state["paused"] = True
            return None

    def handle(cmd, kw):
        if cmd == "stop":
            if kw.get("save"):
                save(kw["save"], "quit")
            state["running"] = False
        elif cmd == "pause":
            state["paused"] = True
            messages.put({"type": "paused", "epoch": trainer.epoch, "batch": trainer.batch})
            publish()
            full_eval()
        elif cmd == "resume":
            state["paused"] = False
        elif cmd == "delay":
            state["delay"] = float(kw["seconds"])
        elif cmd == "save":
            save(kw["path"], "key")
        elif cmd == "step" and not trainer.finished:
            stats = train_one()
            if stats is not None:
                messages.put({"type": "batch", **stats.__dict__})
                publish()
                subset_eval()

    messages.put({"type": "paused" if state["paused"] else "state", "epoch": trainer.epoch, "batch": trainer.batch})
    if trainer.finished:                          # a loaded run that is already complete
        messages.put({"type": "finished", "epoch": trainer.epoch})
    publish()
    full_eval()
    last_publish = last_report = time.perf_counter()
    losses = []
    while state["running"]:
        if os.getppid() != parent:                # the window was killed: do not linger
            break
        # Commands first, so keys feel instant even mid-epoch. Idle or in slow motion,
        # wait for them (instead of sleeping) so Space still answers at once.
        begin = time.perf_counter()
        while state["running"]:
            # recomputed after each command: a shorter delay or a resume takes effect now
            idle = state["paused"] or trainer.finished
            remaining = begin + (0.05 if idle else state["delay"]) - time.perf_counter()
            try:
                cmd, kw = commands.get(timeout=remaining) if remaining > 0 else commands.get_nowait()
            except queue.Empty:
                break
            except (EOFError, OSError):           # the window is gone
                cmd, kw = "stop", {}
            handle(cmd, kw)
        if not state["running"] or state["paused"] or trainer.finished:
            continue
        epoch_before = trainer.epoch
        stats = train_one()
        if stats is None:
            continue
        losses.append(stats.loss)
        now = time.perf_counter()
        slow = state["delay"] > 0
        if slow or now - last_report > 0.1 or trainer.epoch != epoch_before:
            messages.put({"type": "batch", **stats.__dict__, "loss": float(np.mean(losses))})
            losses = []
            last_report = now
        if trainer.batch % SUBSET_EVERY == 0 and trainer.epoch == epoch_before:
            subset_eval()
        if trainer.epoch != epoch_before:
            publish()
            full_eval()
            if trainer.finished:
                if config.save:
                    save(config.save, "finished")
                messages.put({"type": "finished", "epoch": trainer.epoch})
        elif slow or now - last_publish > PUBLISH_SECONDS:
            publish()
            last_publish = now
    for shm in shms:
        shm.close()
