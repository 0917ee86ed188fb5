"""The trials of a sweep where they run: the trial worker and the pools that hold the workers.

This module owns one trial in a worker process (`run_trial`: one BLAS thread, the first
images of the validation split (of the test set without one) evaluated at every quarter
epoch's worth of images, the prune-or-continue question asked at each of those
checkpoints, the test set scored once at the end of a finished trial), the worker's end of
the channel to the parent (`Channel`: a multiprocessing Manager's queues for local
workers, `distributed.Queue`s on a Dask cluster), and where the trials run (`LocalPool`:
joblib/loky processes with the data set memory-mapped from .npy files, which end by
themselves when the parent dies; `DaskPool`: an existing Dask cluster with the data set
scattered to every worker, scattered again when lost with a worker). The parent's loop
that hands the trials out is sweeps.py. A trial is the one training loop
(training/loop.py) with `TrialCheckpoints` as its observer.

Imports: the standard library, config, the loop's Observer and study's SweepFailed at
import time; NumPy, threadpoolctl, joblib and the trainer inside the functions that need
them; `distributed` only with --scheduler (an optional extra).
"""
from __future__ import annotations

import math
import os
import queue
import signal
import socket
import threading
import time
from dataclasses import dataclass

from mnist_live.runs.study import SweepFailed
from mnist_live.training.config import Config
from mnist_live.training.loop import Observer, StopTraining

REPORTS_PER_EPOCH = 4         # pruning checkpoints: every quarter epoch's worth of images (and so at each epoch end)
SUBSET = 1000                 # the fixed subset evaluated at the checkpoints (the split's first images)
TICK_S = 0.25                 # a worker's progress messages and stop checks, seconds apart
ANSWER_TIMEOUT_S = 3600.0     # a worker gives up on a parent that does not answer
PARENT_CHECK_S = 1.0          # a local worker or the Manager checks this often that the parent lives
CONNECT_TIMEOUT_S = 5.0       # a Dask scheduler must answer within this
WORKERS_TIMEOUT_S = 10.0      # ... and have a worker within this
DATA_KEYS = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")


def checkpoint_step(k, n_train):
    """The step (images trained) of checkpoint k: the same in every trial of a sweep, whatever its batch size."""
    return int(round(k * n_train / REPORTS_PER_EPOCH))


# ------------------------------------------------------------------ the trial worker
class Channel:
    """A trial's end of the channel: reports to the parent, answers from it. `reports` and
    `answers` are queue-like (put, get(timeout), qsize): multiprocessing Manager queues
    locally, distributed.Queue on a Dask cluster."""

    def __init__(self, reports, answers):
        self.reports, self.answers = reports, answers

    def send(self, message):
        self.reports.put(message)

    def answer(self, timeout=ANSWER_TIMEOUT_S):
        try:
            return self.answers.get(timeout=timeout)
        except (queue.Empty, TimeoutError):
            return "stop"                                # the parent is gone: stop

    def stop_requested(self):
        try:
            return self.answers.qsize() > 0 and self.answers.get(timeout=5) == "stop"
        except (queue.Empty, TimeoutError, OSError, EOFError):
            return True


@dataclass
class TrialJob:
    number: int                        # the job's key in the messages (one per run of a trial)
    config: Config
    params: dict
    model_path: str | None = None      # where a finished trial saves its model (local workers)
    return_model: bool = False         # cluster workers send the model back as bytes instead
    observers: tuple = ()              # factories of more observers of the trial's loop (picklable, no arguments)
    resume_path: str | None = None     # where an interrupted run saves its state (local; a cluster sends bytes)
    load_path: str | None = None       # a state to continue from (an earlier session's interrupted run) ...
    load_bytes: bytes | None = None    # ... or that file's bytes, for a cluster's worker


def _load_arrays(data):
    """The data set in a worker: {name: array} as scattered by Dask, or {name: path of .npy}
    memory-mapped read-only (the page cache shares one copy between the local workers)."""
    import numpy as np
    return {k: np.load(v, mmap_mode="r") if isinstance(v, str) else v for k, v in data.items()}


class TrialCheckpoints(Observer):
    """A trial's side of the training loop: every quarter epoch's worth of images it
    evaluates the fixed subset of the validation split (of the test set without one),
    reports it with the loss curve and evaluations since the last report, and asks the
    parent whether to go on (pruning); in between, a tick every TICK_S with a stop check; at
    the end, the final evaluations and the model (a file, or bytes for a cluster)."""

    def __init__(self, job, channel):
        self.job, self.channel = job, channel
        self.t0 = time.perf_counter()
        self.sent_evals, self.losses, self.batches = 0, [], 0
        self.next_check, self.last_tick = 1, time.perf_counter()

    @staticmethod
    def images(trainer):
        """Images trained so far (epochs done, and this epoch's batches)."""
        n = len(trainer.x_train)
        return trainer.epoch * n + min(trainer.position[1] * trainer.config.batch_size, n)

    def send(self, run, kind, **extra):
        history = run.trainer.history
        self.channel.send({"kind": kind, "trial": self.job.number, "progress": run.trainer.progress,
                           "batches": self.batches, "elapsed": time.perf_counter() - self.t0, "losses": self.losses,
                           "evals": history.evals[self.sent_evals:], **extra})
        self.sent_evals, self.losses = len(history.evals), []

    def on_start(self, run):
        n = len(run.trainer.x_train)                     # a run continued from a saved state: its next checkpoint
        self.next_check = math.floor(self.images(run.trainer) * REPORTS_PER_EPOCH / n + 1e-9) + 1
        self.losses = list(run.trainer.history.loss)    # a continued run's curve so far goes to its new row too
        self.channel.send({"kind": "start", "trial": self.job.number, "pid": os.getpid(), "host": socket.gethostname(),
                           "progress": run.trainer.progress})

    def on_batch(self, run, stats):
        if stats.diverged:
            return
        self.batches += 1
        self.losses.append((run.trainer.progress, float(stats.loss)))
        if stats.batch < stats.n_batches:                    # an epoch's end: after its full evaluation
            self.checkpoint(run, stats)

    def on_epoch_end(self, run, stats):
        self.checkpoint(run, stats)

    def checkpoint(self, run, stats):
        n = len(run.trainer.x_train)
        check = math.floor(self.images(run.trainer) * REPORTS_PER_EPOCH / n + 1e-9)
        if check >= self.next_check:
            sub = run.evaluate(run.subset_kind)
            self.next_check = check + 1
            self.send(run, "report", step=checkpoint_step(check, n), value=float(sub.accuracy), loss=float(stats.loss))
            answer = self.channel.answer()
            if answer != "go":                           # a pruned trial is validated, never tested
                raise StopTraining("pruned", evaluate="val" if run.val is not None else True) \
                    if answer == "prune" else StopTraining("interrupted", evaluate=False)
            self.last_tick = time.perf_counter()
        elif time.perf_counter() - self.last_tick >= TICK_S:
            self.last_tick = time.perf_counter()
            self.channel.send({"kind": "tick", "trial": self.job.number, "progress": run.trainer.progress,
                               "loss": float(stats.loss)})
            if self.channel.stop_requested():
                raise StopTraining("interrupted", evaluate=False)

    def on_end(self, run, outcome):
        import numpy as np
        ev, job = outcome.final, self.job
        model_file = model_bytes = None
        keep = outcome.status == "finished" and (job.model_path or job.return_model)
        resume = outcome.status == "interrupted" and (job.resume_path or job.return_model)
        if keep or resume:                               # the model, or the state to continue from
            path = job.model_path if keep else job.resume_path
            if path and not job.return_model:
                run.trainer.save(path)
                model_file = path
            else:
                import io
                buf = io.BytesIO()
                np.savez(buf, **run.trainer.state_arrays())
                model_bytes = buf.getvalue()
        self.send(run, "done", status=outcome.status, error=outcome.error, samples_per_s=run.trainer.samples_per_s,
                  wall_s=time.perf_counter() - self.t0, model_file=model_file, model_bytes=model_bytes, final=ev,
                  final_val=outcome.val)


def run_trial(job, data, channel):
    """One trial, in a worker process: job.config trained by the one training loop with one
    BLAS thread, `TrialCheckpoints` reporting to the parent and asking it at each checkpoint
    whether to go on. Everything the parent records comes over the channel; the return value
    only says how the trial ended."""
    from threadpoolctl import threadpool_limits

    from mnist_live.training.loop import Run, train
    from mnist_live.training.trainer import DivergenceCheck, Trainer
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl+C reaches the parent, which stops us
    except ValueError:                                     # not the main thread (a threaded Dask worker)
        pass
    with threadpool_limits(1):
        arr = _load_arrays(data)
        trainer = Trainer(job.config, arr["x_train"], arr["y_train"])
        if job.load_path or job.load_bytes:                # continue an interrupted run where it stopped
            _restore(trainer, job)
        x_test, y_test = arr["x_test"], arr["y_test"]
        val = (arr["x_val"], arr["y_val"]) if "x_val" in arr else None
        run = Run(trainer, x_test, y_test, [DivergenceCheck(), TrialCheckpoints(job, channel),
                                            *(make() for make in job.observers)], subset_size=SUBSET, val=val)
        try:
            return train(run).status
        except Exception:                                  # reported as a failed trial (on_end), not lost
            return "failed"


def _restore(trainer, job):
    """The state an interrupted run saved, read as any model file is (validated, never unpickled)."""
    import tempfile

    from mnist_live.training.model_file import read_model
    if job.load_path:
        trainer.restore(*read_model(job.load_path))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "state.npz")
        with open(path, "wb") as f:
            f.write(job.load_bytes)
        trainer.restore(*read_model(path))


# ------------------------------------------------------------------ where trials run
def _worker_start():
    """Workers and the Manager's server leave Ctrl+C to the parent, which stops them in
    order, and end by themselves when the parent is gone (killed with -9: nobody stops them)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent(os.getppid())


def watch_parent(pid, every=PARENT_CHECK_S):
    """A daemon thread that ends this process once its parent `pid` has ended (the process
    is then adopted by another: its parent pid changes)."""
    def watch():
        while os.getppid() == pid:
            time.sleep(every)
        os._exit(1)
    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def data_arrays(data):
    """{name: array} of a data set to hand the workers (the validation split's when it has one)."""
    return {k: getattr(data, k) for k in DATA_KEYS if getattr(data, k, None) is not None}


class LocalPool:
    """Trials in local worker processes (joblib's loky executor), one BLAS thread each. The
    data set is written once as .npy files into the sweep's temp folder and memory-mapped by
    the workers; the channel is a multiprocessing Manager's queues."""

    def __init__(self, jobs, data, folder):
        import multiprocessing.managers

        import numpy as np
        from joblib.externals.loky import get_reusable_executor
        self.data = {}
        for key, array in data_arrays(data).items():
            path = os.path.join(folder, f"{key}.npy")
            try:
                np.save(path, np.ascontiguousarray(array))
            except OSError as e:
                raise SweepFailed(f"cannot write the data set for the workers into {folder}: "
                                  f"{e.strerror or e} ({array.nbytes / 1e6:,.0f} MB for {key})") from None
            self.data[key] = path
        self.manager = multiprocessing.managers.SyncManager()
        self.manager.start(_worker_start)
        self.reports = self.manager.Queue()
        blas = {var: "1" for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                     "VECLIB_MAXIMUM_THREADS")}
        # loky_init_main: a worker runs the main script first, as multiprocessing's spawn does, so
        # `python main.py` from a clone has imported the clone as mnist_live (main._import_clone)
        # before the worker unpickles anything of ours; loky's default context skips that.
        self.executor = get_reusable_executor(max_workers=jobs, env=blas, initializer=_worker_start, reuse=False,
                                              context="loky_init_main")
        self.where = f"{jobs} local process{'es' if jobs > 1 else ''}"

    def submit(self, job):
        answers = self.manager.Queue()
        return self.executor.submit(run_trial, job, self.data, Channel(self.reports, answers)), answers

    def get(self, timeout):
        """The next report; queue.Empty after `timeout` seconds."""
        return self.reports.get(timeout=timeout)

    def lost(self, future):
        """Whether `future` failed because its worker was lost (never locally: a dead local worker failed it)."""
        return False

    def close(self):
        self.executor.shutdown(wait=True, kill_workers=True)
        self.manager.shutdown()


class DaskPool:
    """Trials on an existing Dask cluster: the data set is scattered to every worker, and
    again when a worker holding it is lost; the channel is distributed.Queues (the workers
    never open the run library). A scheduler that does not answer, is not a Dask
    scheduler, has no workers, or cannot import this project is one line (SweepFailed)."""

    def __init__(self, address, data, name):
        try:
            import distributed
        except ImportError:
            raise SweepFailed("--scheduler needs Dask's distributed: pip install -e .[cluster]") from None
        import uuid
        self.distributed, self.address = distributed, address
        self.client = _connect(distributed, address)
        try:
            self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        except (TimeoutError, OSError):
            self.client.close()
            raise SweepFailed(f"the Dask scheduler at {address} has no workers (none joined within "
                              f"{WORKERS_TIMEOUT_S:.0f} s; start them with `dask worker {address}`)") from None
        try:
            _check_importable(self.client, address)
            self.arrays = data_arrays(data)
            self._scatter()
        except BaseException:
            self.client.close()
            raise
        self.prefix = f"{name}-{uuid.uuid4().hex[:8]}"
        self.reports = distributed.Queue(f"{self.prefix}-reports", client=self.client)
        self.futures = []
        workers = self.client.scheduler_info().get("workers", {})
        threads = sum(w.get("nthreads", 1) for w in workers.values())
        self.where = f"the Dask cluster at {address} ({len(workers)} workers, {threads} threads)"
        self.slots = max(threads, 1)

    def _scatter(self):
        self.data = self.client.scatter(self.arrays, broadcast=True)

    def submit(self, job):
        if any(f.status != "finished" for f in self.data.values()):     # lost with a worker: send it again
            self._scatter()
        answers = self.distributed.Queue(f"{self.prefix}-answers-{job.number}", client=self.client)
        future = self.client.submit(run_trial, job, self.data, Channel(self.reports, answers), pure=False,
                                    key=f"{self.prefix}-trial-{job.number}")
        self.futures.append(future)
        return future, answers

    def lost(self, future):
        """Whether `future` failed because the worker running it was lost (the trial is then run again)."""
        if future.status == "lost" or future.cancelled():
            return True
        try:
            e = future.exception(timeout=0)
        except Exception:
            return True
        return e is None or type(e).__name__ in ("KilledWorker", "CommClosedError", "FutureCancelledError")

    def get(self, timeout):
        if self.reports.qsize() == 0:              # a get that times out is logged as an error by the scheduler
            time.sleep(timeout)
            if self.reports.qsize() == 0:
                raise queue.Empty
        return self.reports.get()

    def close(self):
        self.client.cancel(self.futures)
        self.client.close()


def _connect(distributed, address):
    """A distributed.Client of the scheduler at `address`, or SweepFailed within about
    CONNECT_TIMEOUT_S: refused, silent, or something else than a Dask scheduler there."""
    import threading
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise SweepFailed(f"no Dask scheduler at {address}: {e.strerror or e}") from None
    box = {}

    def connect():
        try:
            box["client"] = distributed.Client(address, timeout=CONNECT_TIMEOUT_S)
        except BaseException as e:                 # MemoryError: a reply that was not Dask's protocol
            box["error"] = e
    thread = threading.Thread(target=connect, name="dask-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S + 2)
    if "client" in box:
        return box["client"]
    if "error" in box and not isinstance(box["error"], MemoryError):
        raise SweepFailed(f"no Dask scheduler at {address}: {' '.join(str(box['error']).split())[:200]}")
    raise SweepFailed(f"{address} did not answer as a Dask scheduler does (is it a Dask scheduler's port? "
                      f"dask scheduler listens on 8786 by default)")


def _host_port(address):
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":") if rest.count(":") == 1 or rest.startswith("[") else (rest, "", "")
    return (host or rest).strip("[]"), int(port) if port else 8786


def _check_importable(client, address):
    """The scheduler and every worker must import this project (the scheduler unpickles the tasks)."""
    def importable():
        import importlib.util
        return importlib.util.find_spec("mnist_live") is not None
    where = []
    try:
        if not client.run_on_scheduler(importable):
            where.append("the scheduler")
        missing = [w for w, ok in client.run(importable).items() if not ok]
    except Exception as e:                         # noqa: BLE001 - a cluster that cannot run a function
        raise SweepFailed(f"the Dask cluster at {address} cannot run this project's code: "
                          f"{type(e).__name__}: {str(e)[:200]}") from None
    if missing:
        where.append(f"{len(missing)} worker(s) ({', '.join(missing[:3])})")
    if where:
        raise SweepFailed(f"mnist_live cannot be imported on {' and '.join(where)} of the Dask cluster at {address}: "
                          f"install the project there too (pip install -e .[cluster] in a clone of this version)")
