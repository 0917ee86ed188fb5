"""background_fetch.BackgroundFetch: the real fetch_openml in a spawned process, against the
fake OpenML answers of tests/fixtures_openml.py (JSON answers cached, the ARFF file
downloaded through a slowed stand-in for urlopen or from a local HTTP server), and the
--headless run that waits for it. Never touches the network.

The child process is spawned: it takes over data_loader's module settings named in
_CHILD_SETTINGS (the tiny split, the host and port of the reachability check), which
these tests patch in this process.
"""

import http.server
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT / "tests",):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import fixtures_openml as fo  # noqa: E402
from mnist_live import data_loader as dl  # noqa: E402
from mnist_live.window import fetch as bf  # noqa: E402

SPLIT = (100, 20)
DOWNLOAD = "openml/openml.org/data/v1/download"


@pytest.fixture
def openml_here(monkeypatch):
    """The reachability check connects to a local listening socket; the tiny split; no proxy."""
    for var in [v for v in os.environ if v.lower().endswith("_proxy")]:
        monkeypatch.delenv(var)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    monkeypatch.setattr(dl, "_OPENML_HOST", "127.0.0.1")
    monkeypatch.setattr(dl, "_OPENML_PORT", server.getsockname()[1])
    monkeypatch.setattr(dl, "_OPENML_SPLIT", SPLIT)
    monkeypatch.setattr(dl, "_FETCH_DELAY", 0.01)
    yield server
    server.close()


@pytest.fixture
def fake(tmp_path, monkeypatch, openml_here):
    """A data_home with the JSON answers of a fake 120-row mnist_784 cached but not its ARFF
    file; returns (home, x, y, gzipped ARFF payload)."""
    x, y = fo.fake_digits(sum(SPLIT), seed=3)
    home = tmp_path / "home"
    fo.write_fake_openml_cache(home, x, y, arff=False)
    payload = fo.arff_gz(x, y)
    monkeypatch.setattr(dl, "_DOWNLOAD_BYTES", {"mnist": len(payload)})
    return home, x, y, payload


def wait(fetch, until=lambda s: s.finished, timeout=30):
    """Poll like a frame loop; returns the statuses seen."""
    seen, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        seen.append(fetch.poll())
        if until(seen[-1]):
            return seen
        time.sleep(0.03)
    raise AssertionError(f"no such status within {timeout} s; last {seen[-1]}")


def fetch_to_the_end(home, urlopen=None, timeout=30):
    """A BackgroundFetch of `home` run until it finishes, then closed: (fetch, final status)."""
    fetch = bf.BackgroundFetch("mnist", home, urlopen=urlopen)
    try:
        final = wait(fetch, timeout=timeout)[-1]
    finally:
        fetch.close()
    return fetch, final


def leftovers(home: Path):
    """Files a fetch may have left: data downloads, temp folders, our cache and its temps."""
    found = [p for p in (home / DOWNLOAD).rglob("*")] if (home / DOWNLOAD).exists() else []
    found += list((home / "mnist_viz").glob("*")) if (home / "mnist_viz").exists() else []
    return sorted(str(p.relative_to(home)) for p in found)


def collapse(stages):
    return [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]]


# ------------------------------------------------------------------------- tests

@pytest.mark.slow
def test_progress_then_ready_through_the_real_fetch_openml(fake):
    home, x, y, payload = fake
    opener = fo.SlowArffOpener(payload, chunk=2048, delay=0.05)          # ~24 reads, ~1.2 s
    fetch = bf.BackgroundFetch("mnist", home, urlopen=opener)
    try:
        polled = wait(fetch)
        final = polled[-1]
        assert final.stage == "ready", final
        history = list(fetch.history)
        assert collapse([s.stage for s in history]) == ["checking", "downloading", "parsing", "ready"]
        done = [s.done_bytes for s in history]
        assert done == sorted(done), done                                # never goes back
        partial = {b for s in history if s.stage == "downloading" for b in [s.done_bytes] if 0 < b < len(payload)}
        assert len(partial) >= 2, history                                # seen growing on disk
        assert final.done_bytes == len(payload) and final.expected_bytes == len(payload)
        elapsed = [s.elapsed for s in polled]
        assert elapsed == sorted(elapsed) and elapsed[-1] > elapsed[0] + 0.5
        ticking = [b for a, b in zip(polled, polled[1:])       # no news from the child, yet time goes on
                   if (a.stage, a.done_bytes) == (b.stage, b.done_bytes) and b.elapsed > a.elapsed]
        assert len(ticking) >= 3
        downloading = next(s for s in history if s.stage == "downloading" and s.done_bytes)
        assert downloading.describe().startswith("downloading MNIST: 0.0") and "of ~0.05 MB," in downloading.describe()
        assert final.describe().startswith("MNIST ready (120 images, ") and final.images == 120
        cache = dl.cache_path("mnist", home)
        assert final.message == f"cached at {cache}" and cache.is_file()

        ds = fetch.dataset()
        assert ds.source == f"OpenML ({cache})"
        np.testing.assert_array_equal(ds.x_train, x[:100])
        np.testing.assert_array_equal(ds.y_train, y[:100])
        np.testing.assert_array_equal(ds.x_test, x[100:])
        np.testing.assert_array_equal(ds.y_test, y[100:])
        assert not dl.needs_fetch("mnist", data_home=home)               # the next launch loads the cache
        assert dl.load_dataset("mnist", data_home=home, log=lambda m: None).source.startswith("OpenML cache (")
    finally:
        fetch.close()
    assert fetch._process.exitcode == 0
    assert not [p for p in leftovers(home) if "/tmp" in p or ".tmp-" in p]


@pytest.mark.slow
def test_a_download_between_two_looks_is_still_reported(fake, monkeypatch):
    """The watcher looks at the download folder every _STATUS_INTERVAL seconds; a download
    and parse that fit between two looks still show as "parsing" with their bytes."""
    home, _, _, payload = fake
    monkeypatch.setattr(bf, "_STATUS_INTERVAL", 60.0)
    fetch, final = fetch_to_the_end(home, urlopen=fo.SlowArffOpener(payload, chunk=1 << 20, delay=0))
    assert final.stage == "ready", final
    assert [(s.stage, s.done_bytes) for s in fetch.history][-3:] == [
        ("downloading", 0), ("parsing", len(payload)), ("ready", len(payload))]


@pytest.mark.slow
def test_a_network_error_during_the_download_is_unreachable_not_bad(fake):
    home, _, _, _ = fake
    fetch, final = fetch_to_the_end(home, urlopen=fo.SlowArffOpener(None))
    assert final.stage == "failed", final
    assert final.message == "OpenML unreachable ([Errno 104] Connection reset by peer)"
    assert leftovers(home) == [f"{DOWNLOAD}/52667"]


def test_unreachable_fails_at_once_and_writes_nothing(tmp_path, openml_here, monkeypatch):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    monkeypatch.setattr(dl, "_OPENML_PORT", closed.getsockname()[1])   # nobody listens: refused
    closed.close()
    home = tmp_path / "home"
    fetch, final = fetch_to_the_end(home, timeout=15)
    assert final.stage == "failed" and final.elapsed < 5, final
    assert final.message.startswith("OpenML unreachable (") and "refused" in final.message.lower()
    line = final.describe()
    assert line.startswith("MNIST unavailable: OpenML unreachable") and "\n" not in line
    assert not (home / "openml").exists() and leftovers(home) == []
    with pytest.raises(dl.DataError, match="not ready"):
        fetch.dataset()


def _truncated(payload):
    return payload[: len(payload) // 2], None


def _wrong_checksum(payload):
    return payload, "0" * 32


@pytest.mark.slow
@pytest.mark.parametrize("damage, reason", [(_truncated, "end-of-stream"), (_wrong_checksum, "MD5 checksum")])
def test_a_bad_download_fails_with_one_line_and_leaves_nothing(tmp_path, openml_here, damage, reason):
    x, y = fo.fake_digits(sum(SPLIT), seed=4)
    home = tmp_path / "home"
    served, md5 = damage(fo.arff_gz(x, y))
    fo.write_fake_openml_cache(home, x, y, arff=False, md5=md5)
    fetch, final = fetch_to_the_end(home, urlopen=fo.SlowArffOpener(served, chunk=1 << 20, delay=0))
    assert final.stage == "failed", final
    assert final.message.startswith("bad download (") and reason in final.message, final.message
    assert "\n" not in final.describe() and len(final.describe()) < 200
    assert leftovers(home) == [f"{DOWNLOAD}/52667"]                    # an empty folder: no data file
    assert dl.needs_fetch("mnist", data_home=home)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["close", "killed"])
def test_stopping_a_download_leaves_no_process_and_no_partial_file(fake, how):
    home, _, _, payload = fake
    fetch = bf.BackgroundFetch("mnist", home, urlopen=fo.SlowArffOpener(payload, chunk=512, delay=0.05))
    try:
        wait(fetch, until=lambda s: s.stage == "downloading" and s.done_bytes > 0)
        tmp = [p for p in leftovers(home) if "/tmp" in p]
        assert tmp, leftovers(home)                                       # scikit-learn's temp folder
        if how == "killed":                                               # no chance to clean up
            os.kill(fetch._process.pid, signal.SIGKILL)
            status = wait(fetch, timeout=10)[-1]
            assert status.stage == "failed" and "killed by signal 9" in status.message, status
        t = time.perf_counter()
        fetch.close()
        assert time.perf_counter() - t < 2 and not fetch._process.is_alive()
        # stopped: SIGTERM unwound the child (SystemExit), so scikit-learn removed its own temp folder
        assert fetch._process.exitcode == (1 if how == "close" else -signal.SIGKILL)
        fetch.close()                                                     # idempotent
        status = fetch.poll()
        assert status.stage == "failed" and status.message in ("stopped", status.message) and status.finished
    finally:
        fetch.close()
    assert leftovers(home) == [f"{DOWNLOAD}/52667"], leftovers(home)
    assert dl.needs_fetch("mnist", data_home=home)


def test_needs_fetch(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_OPENML_SPLIT", SPLIT)
    assert dl.needs_fetch("mnist", data_home=tmp_path)
    assert not dl.needs_fetch("mnist", data_home=tmp_path, offline=True)
    assert not dl.needs_fetch("mnist", data_dir=tmp_path, data_home=tmp_path)
    path = dl.cache_path("mnist", tmp_path)
    path.parent.mkdir(parents=True)
    x, y = fo.fake_digits(sum(SPLIT))
    arrays = {"x_train": x[:100], "y_train": y[:100], "x_test": x[100:], "y_test": y[100:]}
    dl.atomic_save_npz(path, arrays)
    assert not dl.needs_fetch("mnist", data_home=tmp_path)
    assert dl.needs_fetch("fashion", data_home=tmp_path)
    dl.atomic_save_npz(path, {**arrays, "y_test": arrays["y_test"].astype(np.int64)})   # wrong type
    assert dl.needs_fetch("mnist", data_home=tmp_path)
    dl.atomic_save_npz(path, {**arrays, "x_test": x[:10]})                              # wrong shape
    assert dl.needs_fetch("mnist", data_home=tmp_path)
    path.write_bytes(b"not a zip")
    assert dl.needs_fetch("mnist", data_home=tmp_path)


def test_describe():
    s = bf.FetchStatus("downloading", 12.3, 7_300_000, 15_000_000)
    assert s.describe() == "downloading MNIST: 7.3 of ~15 MB, 12 s"
    assert bf.FetchStatus("downloading", 3, 2_000_000).describe() == "downloading MNIST: 2.0 MB, 3 s"
    assert bf.FetchStatus("parsing", 21.4, name="fashion").describe() == "parsing Fashion-MNIST, 21 s"
    assert bf.FetchStatus("ready", 25, images=70_000).describe() == "MNIST ready (70,000 images, 25 s)"
    assert bf.FetchStatus("failed", 1, message="why").describe() == "MNIST unavailable: why"


# ----------------------------------------------------------------- the headless run

class _SlowArffServer(http.server.BaseHTTPRequestHandler):
    """Serves the gzipped ARFF file in pieces, 0.05 s apart (as OpenML does, gzip-encoded)."""
    payload = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        for i in range(0, len(self.payload), 2048):
            self.wfile.write(self.payload[i:i + 2048])
            self.wfile.flush()
            time.sleep(0.05)

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_headless_cli_on_a_cache_miss_shows_progress_and_trains_on_the_full_set(tmp_path, openml_here, monkeypatch,
                                                                                  capsys):
    import json

    from mnist_live import main
    x, y = fo.fake_digits(sum(SPLIT), seed=5)
    payload = fo.arff_gz(x, y)
    handler = type("Handler", (_SlowArffServer,), {"payload": payload})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    home = tmp_path / "home"
    fo.write_fake_openml_cache(home, x, y, arff=False, url=f"http://127.0.0.1:{port}/data/v1/download/52667/mnist_784.arff")
    monkeypatch.setattr(dl, "_OPENML_PORT", port)                       # the quick check finds the server
    monkeypatch.setattr(dl, "_DOWNLOAD_BYTES", {"mnist": len(payload)})
    metrics = tmp_path / "m.json"
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        status = main.main(["--headless", "--data-home", str(home), "--hidden", "8", "--epochs", "1",
                            "--batch-size", "20", "--metrics", str(metrics)])
    finally:
        signal.signal(signal.SIGTERM, sigterm)
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("connecting to OpenML for MNIST, ")
    assert any(line.startswith("downloading MNIST: ") and "of ~0.05 MB" in line for line in lines), out
    assert any(line.startswith("MNIST ready (120 images, ") for line in lines), out
    assert "\r" not in out                                               # not a terminal: whole lines
    m = json.loads(metrics.read_text())
    assert m["dataset"]["train"] == 100 and m["dataset"]["test"] == 20
    assert m["dataset"]["source"] == f"OpenML ({dl.cache_path('mnist', home)})"
    assert (home / DOWNLOAD / "52667" / "mnist_784.arff.gz").is_file()  # fetched through urllib for real


def test_headless_cli_falls_back_to_the_sample_with_one_line(tmp_path, openml_here, monkeypatch, capsys):
    from mnist_live import main
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    monkeypatch.setattr(dl, "_OPENML_PORT", closed.getsockname()[1])
    closed.close()
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        status = main.main(["--headless", "--data-home", str(tmp_path), "--hidden", "8", "--epochs", "1",
                            "--train-size", "200"])
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    out = capsys.readouterr().out
    assert status == 0
    reason = [line for line in out.splitlines() if "unavailable" in line]
    assert len(reason) == 1 and reason[0].startswith("MNIST unavailable (OpenML unreachable (")
    assert "using the bundled sample of 5,000/1,000 digits instead" in reason[0]
    assert "bundled sample (assets/mnist_sample.npz)" in out


class _Terminal:
    """A stdout that says it is a terminal and keeps what was written."""

    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return True


@pytest.mark.slow
def test_headless_progress_on_a_terminal_is_one_line_rewritten_in_place(fake):
    from mnist_live import main
    from mnist_live.training.config import Config
    home, x, _, payload = fake
    fetch = bf.BackgroundFetch("mnist", home, urlopen=fo.SlowArffOpener(payload, chunk=2048, delay=0.05))
    term = _Terminal()
    data = main.wait_for_fetch(fetch, Config(headless=True, train_size=50), out=term, interval=0.05)
    assert not fetch._process.is_alive()                                 # closed
    assert data.x_train.shape == (50, 784) and data.x_test.shape == (20, 784)
    np.testing.assert_array_equal(data.x_train, x[:50])
    updates = term.text.split("\r")
    assert term.text.count("\n") == 1 and term.text.endswith("\n")      # one line, finished once ready
    assert len(updates) > 10 and updates[-1].startswith("MNIST ready (120 images, ")
    assert any(u.startswith("downloading MNIST: 0.0") and " of ~0.05 MB, " in u for u in updates)
    assert all(len(u) >= len(v.rstrip()) for u, v in zip(updates[2:], updates[1:]))   # padded over the last
