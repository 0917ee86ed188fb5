"""The first launch's background fetch: the full data set downloaded and parsed by
OpenML in a spawned process while the window trains on the bundled sample, with its
progress (`FetchStatus`) for the header and the console; `FullData` is the window's side
of it (its progress line, the offer to switch, the data set to switch to).

The child runs data_loader's own download steps (reachability check, fetch_openml, the
split, the atomic cache write); this module owns only the process, the watching of the
download folder and the clean-up after a stop. Imports data_loader; never pygame.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from mnist_live import data_loader as dl

_STATUS_INTERVAL = 0.2         # seconds between looks at the download folder (<= 5 messages/s)


_STOP_GRACE = 3.0              # seconds a stopped fetch gets to clean up before it is killed


# Module settings a fetch process takes over from the process that starts it (tests patch them).
_CHILD_SETTINGS = ("_OPENML_SPLIT", "_OPENML_HOST", "_OPENML_PORT", "_CONNECT_TIMEOUT",
                   "_FETCH_RETRIES", "_FETCH_DELAY")   # data_loader's
_OWN_SETTINGS = ("_STATUS_INTERVAL",)


@dataclass(frozen=True)
class FetchStatus:
    """Where a BackgroundFetch is. Stages in order: "checking" (can OpenML be reached?),
    "downloading", "parsing", then "ready" or "failed"."""
    stage: str
    elapsed: float             # seconds since the fetch started
    done_bytes: int = 0        # bytes of the data file on disk so far
    expected_bytes: int = 0    # approximate size of the download (0 = unknown)
    message: str = ""          # "failed": the one-line reason; "ready": e.g. "cached at ~/scikit_learn_data/..."
    name: str = "mnist"        # the data set
    images: int = 0            # "ready": number of images (train + test)

    def describe(self) -> str:
        """One short line, e.g. "downloading MNIST: 7.3 of ~15 MB, 12 s"."""
        pretty, seconds = dl._INFO[self.name][0], f"{self.elapsed:.0f} s"
        if self.stage == "checking":
            return f"connecting to OpenML for {pretty}, {seconds}"
        if self.stage == "downloading":
            of = f" of {dl._approx_mb(self.expected_bytes)}" if self.expected_bytes else " MB"
            decimals = dl._mb_decimals(self.expected_bytes or self.done_bytes, whole=float("inf"))
            return f"downloading {pretty}: {self.done_bytes / 1e6:.{decimals}f}{of}, {seconds}"
        if self.stage == "parsing":
            return f"parsing {pretty}, {seconds}"
        if self.stage == "ready":
            return f"{pretty} ready ({self.images:,} images, {seconds})"
        return f"{pretty} unavailable: {self.message}"

    @property
    def finished(self) -> bool:
        return self.stage in ("ready", "failed")


@dataclass(frozen=True)
class FetchUpdate:
    """What the fetch process reports: a new stage, the bytes on disk (None: unchanged), the
    one-line reason or result, and the number of images once ready."""
    stage: str
    done_bytes: int | None = None
    message: str = ""
    images: int = 0


class BackgroundFetch:
    """Fetches data set `name` from OpenML in a spawned daemon process that runs the same
    code as dl.load_openml (reachability check, fetch_openml, dl._split_openml, atomic cache
    write); the caller polls, nothing blocks. Poll regularly (e.g. once a frame): messages
    left unread for minutes fill the pipe and hold the child up until they are read.

    `urlopen` (a picklable callable, None = the real one) replaces the urlopen of
    scikit-learn's _openml module in the child: a test seam. The child also takes over
    this module's settings named in _CHILD_SETTINGS, so patching them in the caller
    reaches it."""

    def __init__(self, name, data_home=None, urlopen=None):
        import multiprocessing
        if name not in dl._INFO:
            raise dl.DataError(f"unknown data set {name!r} (choose from {', '.join(dl._INFO)})")
        self.name = name
        self.path = dl.cache_path(name, data_home)
        self._expected = int(dl._DOWNLOAD_BYTES.get(name, 0))
        self._start = time.monotonic()
        self._wall_start = time.time()
        self._status = FetchStatus("checking", 0.0, expected_bytes=self._expected, name=name)
        self.history = collections.deque([self._status], maxlen=1000)   # every status received, in order
        self._closed = False
        settings = ({key: getattr(dl, key) for key in _CHILD_SETTINGS},
                    {key: globals()[key] for key in _OWN_SETTINGS})
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_end = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_fetch_child, name=f"fetch {name}", daemon=True,
                                    args=(name, str(self.path), settings, urlopen, child_end))
        self._process.start()
        child_end.close()

    def poll(self) -> FetchStatus:
        """The newest status, at once (drains the child's messages; a child that ended
        without a last word becomes "failed")."""
        if self._status.finished or self._closed:
            return self._status
        self._drain()
        if not self._status.finished and not self._process.is_alive():
            self._drain()                      # what it sent just before it ended
            if not self._status.finished:
                code = self._process.exitcode
                why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                self._set("failed", message=f"the download process ended unexpectedly ({why})")
        if not self._status.finished:
            self._status = replace(self._status, elapsed=time.monotonic() - self._start)
        return self._status

    def dataset(self) -> dl.Dataset:
        """After "ready": the dl.Dataset read from the compact cache (np.load, no scikit-learn)."""
        status = self.poll()
        if status.stage != "ready":
            raise dl.DataError(f"{dl._INFO[self.name][0]} is not ready yet ({status.describe()})")
        try:
            arrays = dl._load_npz(self.path, expected=dl._split_shapes())
        except Exception as exc:  # noqa: BLE001 - e.g. removed or damaged since
            raise dl.DataError(f"cache {dl._pretty(self.path)} cannot be read ({dl._reason(exc)})") from None
        return dl._make_dataset(self.name, f"OpenML ({dl._pretty(self.path)})", arrays)

    def close(self):
        """Stop the child if it is still running (idempotent). A stopped child removes its
        partial download itself (SIGTERM -> SystemExit unwinds scikit-learn's
        TemporaryDirectory); one that had to be killed is cleaned up after here."""
        if self._closed:
            return
        self.poll()
        self._closed = True
        process = self._process
        if self._status.finished:                # it said its last word and is ending
            process.join(_STOP_GRACE)
        if process.is_alive():
            process.terminate()
            process.join(_STOP_GRACE)
            if process.is_alive():
                process.kill()
            if not self._status.finished:
                self._set("failed", message="stopped")
        process.join(_STOP_GRACE)
        if process.exitcode is None or process.exitcode < 0:   # killed: what it could not remove
            _remove_leftovers(self.path, self._wall_start)
        self._conn.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _drain(self):
        try:
            while self._conn.poll():
                update = self._conn.recv()                  # a FetchUpdate
                self._set(update.stage, update.done_bytes, update.message, update.images)
        except (EOFError, OSError):             # the child is gone; poll() handles it
            pass

    def _set(self, stage, done=None, message="", images=0):
        self._status = FetchStatus(stage, time.monotonic() - self._start,
                                   self._status.done_bytes if done is None else done,
                                   self._expected, message, self.name, images)
        self.history.append(self._status)


def _fetch_child(name, cache, settings, urlopen, conn):
    """The fetch process: its FetchUpdate records go to `conn`."""
    import signal
    import sys
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # unwind: temp folders are removed
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl+C in a terminal reaches us too: the caller decides
    vars(dl).update(settings[0])
    globals().update(settings[1])
    lock = threading.Lock()

    def send(stage, done=None, message="", images=0):
        with lock:
            conn.send(FetchUpdate(stage, done, message, images))

    status = 0
    try:
        send("checking", 0)
        try:
            stage, done, message, images = _child_fetch(name, Path(cache), urlopen, send)
        except Exception as exc:  # noqa: BLE001 - whatever happens, the caller gets one line
            stage, done, message, images = "failed", None, dl._reason(exc), 0
        send(stage, done, message, images)
        conn.close()
    except SystemExit:              # stopped: the unwinding removed the partial download
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)   # skip the ~0.5 s teardown of scikit-learn, pandas and SciPy: all is written


def _child_fetch(name, path: Path, urlopen, send):
    """dl.load_openml's steps, reporting progress; returns the last status tuple."""
    pretty = dl._INFO[name][0]
    cached = dl._read_cache(name, path, log=lambda msg: None)
    if cached is not None:                       # e.g. another launch finished it meanwhile
        return "ready", None, f"cached at {dl._pretty(path)}", len(cached.y_train) + len(cached.y_test)
    try:
        dl._check_writable(path.parent)
    except dl.DataError as exc:
        return "failed", None, str(exc), 0
    reachable, why = dl._openml_reachable()
    if not reachable and not dl._has_openml_cache(path):
        return "failed", None, f"OpenML unreachable ({why})", 0
    import sklearn.datasets._openml as sk_openml  # ~1 s; only here, never in the caller
    if urlopen is not None:
        sk_openml.urlopen = urlopen
    watcher = _DownloadWatcher(path.parent.parent, dl._INFO[name][2], send)
    watcher.start()
    try:
        arrays, _, cache_error = dl._fetch_and_cache(name, path, log=lambda msg: None, quick=not reachable)
    except Exception as exc:  # noqa: BLE001 - no network, bad download, parser failure
        watcher.stop()
        if _is_network_error(exc):
            return "failed", None, f"OpenML unreachable ({dl._reason(exc)})", 0
        watcher.remove_new_download()             # a later fetch must not take it for good
        return "failed", None, str(exc) if isinstance(exc, dl.DataError) else f"bad download ({_fetch_reason(exc)})", 0
    finally:
        watcher.stop()
    if cache_error is not None:
        return "failed", None, f"{pretty} could not be cached at {dl._pretty(path)} ({cache_error})", 0
    return "ready", None, f"cached at {dl._pretty(path)}", sum(len(arrays[k]) for k in ("y_train", "y_test"))


def _is_network_error(exc) -> bool:
    """No answer, refused, name lookup failed, HTTP error: not a damaged download
    (gzip.BadGzipFile is an OSError too, but a bad file)."""
    import urllib.error
    return isinstance(exc, (urllib.error.URLError, http.client.HTTPException, TimeoutError,
                            ConnectionError, socket.gaierror))


def _fetch_reason(exc) -> str:
    """One line on a failed download; scikit-learn's checksum message is long and names paths."""
    text = str(exc)
    if "md5 checksum" in text:
        return "the file's MD5 checksum does not match OpenML's description"
    return dl._reason(exc)


class _DownloadWatcher(threading.Thread):
    """Watches the folder fetch_openml downloads the ARFF file into,
    <home>/openml/openml.org/data/v1/download/<file id>/, and sends ("downloading", bytes)
    or ("parsing", bytes) when that changes, at most every _STATUS_INTERVAL seconds.

    scikit-learn writes the download into a TemporaryDirectory (tmp*) inside that folder,
    then moves the finished file to <openml name>.arff.gz beside it and parses it."""

    def __init__(self, home: Path, openml_name: str, send):
        super().__init__(name="download watcher", daemon=True)
        self.folder = dl._download_folder(home)
        self.arff = f"{openml_name}.arff.gz".lower()
        self.send = send
        self.started = time.time()
        self.old = set(self._finals())           # ARFF files there before the fetch
        self._stop_event = threading.Event()
        self._downloaded = 0                     # most bytes seen in a temporary download
        self._last = None                        # the last status sent

    def run(self):
        while True:
            self._report()
            if self._stop_event.wait(_STATUS_INTERVAL):
                return

    def stop(self):
        """Stop watching; a last look is reported (a quick download and parse may fall
        between two looks)."""
        if self._stop_event.is_set():
            return
        self._stop_event.set()
        if self.is_alive():
            self.join()
        if self._downloaded or self._finals():
            self._report()

    def _report(self):
        now = self.sample()
        if now != self._last:
            self.send(*now)
            self._last = now

    def sample(self):
        """("downloading" | "parsing", bytes on disk)."""
        finals = self._finals()
        if finals:                               # in place: being checked and parsed
            return "parsing", max(finals.values())
        partial, temp = 0, False
        for sub in _subdirs(self.folder):
            for tmp in _subdirs(sub):
                if tmp.name.startswith("tmp"):
                    temp = True
                    partial += sum(_size(f) for f in _files(tmp))
        if temp:
            self._downloaded = max(self._downloaded, partial)
            return "downloading", partial
        if self._downloaded:                     # moved under a name we do not know
            return "parsing", self._downloaded
        return "downloading", 0

    def remove_new_download(self):
        """Delete ARFF files this fetch put in place (after a failure)."""
        for path in set(self._finals()) - self.old:
            with contextlib.suppress(OSError):
                path.unlink()

    def _finals(self) -> dict:
        """{path: size} of the data set's finished ARFF downloads."""
        return {f: _size(f) for sub in _subdirs(self.folder) for f in _files(sub) if f.name.lower() == self.arff}


def _remove_leftovers(path: Path, since: float):
    """After a killed fetch of cache `path`: scikit-learn's temporary download folders made
    since `since` (time.time()) and our own cache temp files whose writer is gone. (A second
    launch downloading into the same data folder at that moment would lose its download.)"""
    import shutil

    from mnist_live.training.files import remove_stale_temps
    for sub in _subdirs(dl._download_folder(path.parent.parent)):
        for tmp in _subdirs(sub):
            with contextlib.suppress(OSError):
                if tmp.name.startswith("tmp") and tmp.stat().st_mtime >= since - 1:
                    shutil.rmtree(tmp)
    remove_stale_temps(str(path.parent), path.name)


def _subdirs(folder: Path) -> list:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _files(folder: Path) -> list:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
    except OSError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# ------------------------------------------------------------- the window's side
class FullData:
    """The full data set arriving in the background on a first launch (the window trains
    on the bundled sample meanwhile): its progress for the header and the console, and
    the data set to switch to once it is ready."""

    POLL_S = 0.2                      # the fetch's status is read at most this often
    CONSOLE_S = 5.0                   # a console line at most this often while it moves

    def __init__(self, fetch, prepare=lambda data: data, log=print):
        self.fetch, self.prepare, self.log = fetch, prepare, log
        self.status = fetch.poll()
        self._polled = time.monotonic()
        self._said = (self.status.stage, time.monotonic())
        self.log(self.console_line())

    def console_line(self):
        s = self.status
        if s.stage == "ready":
            return f"{s.describe()}: press U in the window to switch to it"
        if s.stage == "failed":
            return f"{s.describe()}; the window goes on with the bundled sample"
        return f"{s.describe()} (in the background; the window trains on the bundled sample meanwhile)"

    def poll(self):
        """Read the newest status (at most every POLL_S); True when its line changed."""
        now = time.monotonic()
        if now - self._polled < self.POLL_S:
            return False
        self._polled = now
        old, self.status = self.status, self.fetch.poll()
        stage, said = self._said
        if self.status.stage != stage or (self.status.stage in ("downloading", "parsing")
                                          and now - said >= self.CONSOLE_S):
            self.log(self.console_line())
            self._said = (self.status.stage, now)
        return self.status.describe() != old.describe()

    def offer(self):
        """(text, whether it is ready, download fraction or None) for the header: the
        progress, the offer, or why not."""
        s = self.status
        if s.stage == "ready":
            return f"{s.describe()}: U switches to it", True, None
        fraction = None
        if s.stage == "downloading" and s.expected_bytes:
            fraction = min(1.0, s.done_bytes / s.expected_bytes)
        return s.describe(), False, fraction

    def take(self):
        """The full data set, cut as the command line asks."""
        return self.prepare(self.fetch.dataset())

    def close(self):
        self.fetch.close()


FETCH_LINE_EVERY = 5.0        # seconds between progress lines when the output is not a terminal


def wait_on_console(fetch, out, interval=0.2):
    """Wait for `fetch` (a BackgroundFetch), its progress on one console line of `out`
    (rewritten in place on a terminal; otherwise a line per stage and every FETCH_LINE_EVERY
    seconds). Returns (the full data set, None), or (None, why it is not there); the fetch
    is closed either way."""
    tty = out.isatty()
    last_stage, last_print, width = None, 0.0, 0
    try:
        while True:
            status = fetch.poll()
            now = time.monotonic()
            line = "" if status.stage == "failed" else status.describe()   # failed: the caller says why
            if tty:
                out.write("\r" + line.ljust(width) + ("\r" if not line else ""))
                width = max(width, len(line))
            elif line and (status.stage != last_stage or now - last_print >= FETCH_LINE_EVERY):
                out.write(line + "\n")
                last_print = now
            last_stage = status.stage
            out.flush()
            if status.finished:
                break
            time.sleep(interval)
        if tty and status.stage == "ready":
            out.write("\n")
        if status.stage != "ready":
            return None, status.message
        try:
            return fetch.dataset(), None
        except dl.DataError as e:
            return None, str(e)
    finally:
        fetch.close()
