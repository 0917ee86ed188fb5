"""Tests for data_loader.py. Never touch the network: OpenML is faked through
scikit-learn's own on-disk cache format (tests/fixtures_openml.py) with urlopen blocked.

Tests that need the original IDX files in ../shared/data are skipped when it is absent.
"""

import gzip
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT / "tests",):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import fixtures_openml as fo  # noqa: E402
from mnist_live import data_loader as dl  # noqa: E402
from mnist_live.data_loader import DataError  # noqa: E402
from mnist_live.window import drawn_digit  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SPLIT = (100, 20)   # tiny stand-in for OpenML's 60,000 / 10,000 rows

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def need_shared(name="mnist") -> Path:
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(f"../shared/data/{name} not found (only present on the dev machines)")
    return folder


class Log(list):
    """Collects log lines: pass as load_dataset(log=...)."""

    def __call__(self, msg):
        assert "\n" not in str(msg), f"log message is not one line: {msg!r}"
        self.append(str(msg))

    def matching(self, text):
        return [m for m in self if text in m]


# ----------------------------------------------------------------------- fixtures

@pytest.fixture
def offline_openml(monkeypatch):
    """Block the network inside scikit-learn's OpenML code and use the tiny split."""
    import sklearn.datasets._openml as openml

    calls = []

    def no_network(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(openml, "urlopen", no_network)
    monkeypatch.setattr(dl, "_openml_reachable", lambda: (False, "network disabled in tests"))
    monkeypatch.setattr(dl, "_OPENML_SPLIT", SPLIT)
    monkeypatch.setattr(dl, "_FETCH_DELAY", 0.001)
    return calls


@pytest.fixture
def fake_home(tmp_path, offline_openml):
    """A data_home whose OpenML cache holds a fake 120-row mnist_784; returns (home, x, y)."""
    x, y = fo.fake_digits(sum(SPLIT), seed=1)
    fo.write_fake_openml_cache(tmp_path / "home", x, y, "mnist_784")
    return tmp_path / "home", x, y


def forbid_fetch(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("fetch_openml must not be called")
    monkeypatch.setattr(dl, "_fetch_openml", boom)


# ------------------------------------------------------------------------- OpenML

@pytest.mark.slow
@pytest.mark.parametrize("parser", ["liac-arff", "pandas"])
def test_openml_fetch_then_cache(fake_home, monkeypatch, parser):
    if parser == "pandas":
        pytest.importorskip("pandas", reason="pandas not installed")
    monkeypatch.setattr(dl, "openml_parser", lambda: parser)
    home, x, y = fake_home
    log = Log()
    ds = dl.load_dataset("mnist", data_home=home, log=log)

    assert ds.name == "mnist" and ds.class_names == dl.MNIST_CLASSES
    assert ds.source.startswith("OpenML (")
    assert ds.x_train.shape == (100, 784) and ds.x_test.shape == (20, 784)
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        assert a.dtype == np.uint8
    np.testing.assert_array_equal(ds.x_train, x[:100])      # first rows = train
    np.testing.assert_array_equal(ds.x_test, x[100:])       # last rows = test
    np.testing.assert_array_equal(ds.y_train, y[:100])
    np.testing.assert_array_equal(ds.y_test, y[100:])
    assert ds.y_train.max() <= 9
    assert len(log.matching("Downloading MNIST from OpenML")) == 1
    assert len(log.matching("ready in")) == 1

    cache = dl.cache_path("mnist", home)
    assert cache == home / "mnist_viz" / "mnist_784.npz" and cache.is_file()
    assert [p.name for p in cache.parent.iterdir()] == ["mnist_784.npz"]   # no temp files left

    forbid_fetch(monkeypatch)
    log2 = Log()
    again = dl.load_dataset("mnist", data_home=home, log=log2)
    assert again.source.startswith("OpenML cache (") and log2 == []
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    np.testing.assert_array_equal(again.y_test, ds.y_test)


def test_pandas_parser_failure_falls_back_to_liac_arff(fake_home, monkeypatch):
    home, x, _ = fake_home
    real = dl._call_fetch_openml
    parsers = []

    def flaky(name, data_home, parser, *rest):
        parsers.append(parser)
        if parser == "pandas":
            raise TypeError("expected string or bytes-like object, got 'int'")
        return real(name, data_home, parser, *rest)

    monkeypatch.setattr(dl, "openml_parser", lambda: "pandas")
    monkeypatch.setattr(dl, "_call_fetch_openml", flaky)
    log = Log()
    ds = dl.load_dataset("mnist", data_home=home, log=log)
    assert parsers == ["pandas", "liac-arff"]
    assert len(log.matching("retrying with the slower liac-arff parser")) == 1
    np.testing.assert_array_equal(ds.x_train, x[:100])


def test_openml_fashion(tmp_path, offline_openml, monkeypatch):
    monkeypatch.setattr(dl, "openml_parser", lambda: "liac-arff")
    x, y = fo.fake_digits(sum(SPLIT), seed=2)
    fo.write_fake_openml_cache(tmp_path, x, y, "Fashion-MNIST")
    log = Log()
    ds = dl.load_dataset("fashion", data_home=tmp_path, log=log)
    assert ds.name == "fashion" and ds.class_names == dl.FASHION_CLASSES
    assert log.matching("Downloading Fashion-MNIST")
    assert (tmp_path / "mnist_viz" / "Fashion-MNIST.npz").is_file()
    np.testing.assert_array_equal(ds.x_test, x[100:])


def test_cached_load_does_not_import_sklearn(fake_home):
    home, _, _ = fake_home
    dl.load_dataset("mnist", data_home=home, log=Log())          # builds the cache
    code = textwrap.dedent(f"""
        import sys
        from mnist_live import data_loader as dl
        dl._OPENML_SPLIT = {SPLIT!r}
        ds = dl.load_dataset("mnist", data_home={str(home)!r}, log=lambda m: print("LOG", m))
        print(ds.source.split(" (")[0], ds.x_train.shape, "sklearn" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OpenML cache (100, 784) False"


def test_cached_full_size_load_is_fast(tmp_path, monkeypatch):
    forbid_fetch(monkeypatch)
    n_train, n_test = dl._OPENML_SPLIT
    assert (n_train, n_test) == (60_000, 10_000)
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 784), dtype=np.uint8),
              "y_train": (np.arange(n_train) % 10).astype(np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 784), dtype=np.uint8),
              "y_test": (np.arange(n_test) % 10).astype(np.uint8)}
    path = dl.cache_path("mnist", tmp_path)
    path.parent.mkdir(parents=True)
    dl.atomic_save_npz(path, arrays)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        ds = dl.load_dataset("mnist", data_home=tmp_path)
        best = min(best, time.perf_counter() - t)
    assert ds.x_train.shape == (60_000, 784) and ds.y_test.shape == (10_000,)
    assert best < 0.3, f"cached load took {best:.3f} s"


def test_default_data_home_follows_sklearn(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "skl"))
    assert dl.cache_path("mnist") == tmp_path / "skl" / "mnist_viz" / "mnist_784.npz"
    monkeypatch.delenv("SCIKIT_LEARN_DATA")
    assert dl.default_data_home() == Path.home() / "scikit_learn_data"


def test_openml_unreachable_falls_back_to_sample_at_once(tmp_path, offline_openml, monkeypatch):
    forbid_fetch(monkeypatch)          # the quick check failed and scikit-learn has no cache: no attempt
    log = Log()
    ds = dl.load_dataset("mnist", data_home=tmp_path / "empty", log=log)
    assert ds.source == "bundled sample (assets/mnist_sample.npz)"
    notices = log.matching("OpenML unreachable")
    assert len(notices) == 1 and len(log) == 1
    assert "network disabled in tests" in notices[0] and "5,000/1,000" in notices[0] and "--offline" in notices[0]
    assert not dl.cache_path("mnist", tmp_path / "empty").exists()


def test_openml_failing_after_the_quick_check_falls_back_to_sample(tmp_path, offline_openml, monkeypatch):
    monkeypatch.setattr(dl, "_openml_reachable", lambda: (True, ""))    # reachable, then the download fails
    log = Log()
    ds = dl.load_dataset("mnist", data_home=tmp_path / "empty", log=log)
    assert offline_openml, "fetch_openml should have tried the network"
    assert ds.source == "bundled sample (assets/mnist_sample.npz)"
    assert len(log.matching("OpenML unreachable (network disabled in tests)")) == 1


def test_quick_check_gives_up_on_a_hanging_connection(monkeypatch):
    import socket
    import threading
    import urllib.request
    release = threading.Event()

    def hang(*a, **k):                      # a name lookup that never answers (until released)
        release.wait(30)
        raise OSError("released")
    monkeypatch.setattr(socket, "create_connection", hang)
    monkeypatch.setattr(urllib.request, "getproxies", lambda: {})
    t = time.perf_counter()
    try:
        ok, why = dl._openml_reachable(timeout=0.3)
    finally:
        release.set()
    assert not ok and "no answer" in why and time.perf_counter() - t < 2
    monkeypatch.setattr(urllib.request, "getproxies", lambda: {"https": "http://proxy:3128"})
    assert dl._openml_reachable(timeout=0.3) == (True, "")     # through a proxy: fetch_openml decides


def test_offline_launch_without_offline_flag_is_fast(tmp_path):
    """A real launch on a machine that cannot reach OpenML (as this test machine, or with the
    connection refused) falls back in about a second, not the ~5 s of fetch_openml's retries."""
    code = textwrap.dedent(f"""
        import sys, time, socket
        def refuse(*a, **k):
            raise ConnectionRefusedError(111, "Connection refused")
        socket.create_connection = refuse
        from mnist_live import data_loader as dl
        t = time.perf_counter()
        ds = dl.load_dataset("mnist", data_home={str(tmp_path)!r}, log=lambda m: None)
        print(time.perf_counter() - t, ds.source, "sklearn" in sys.modules)
    """)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    seconds, rest = out.stdout.split(" ", 1)
    assert float(seconds) < 1.0 and rest.startswith("bundled sample") and rest.strip().endswith("False"), out.stdout


def test_corrupt_cache_is_moved_aside_when_it_cannot_be_rebuilt(tmp_path, offline_openml):
    home = tmp_path / "home"
    cache = dl.cache_path("mnist", home)
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a zip file at all")
    log = Log()
    ds = dl.load_dataset("mnist", data_home=home, log=log)
    assert ds.source.startswith("bundled sample")
    assert len(log.matching("is corrupt")) == 1 and "moved aside" in log.matching("is corrupt")[0]
    assert not cache.exists() and cache.with_name(cache.name + ".corrupt").read_bytes() == b"not a zip file at all"
    log = Log()
    dl.load_dataset("mnist", data_home=home, log=log)        # the next launch: no complaint again
    assert not log.matching("corrupt") and len(log.matching("OpenML unreachable")) == 1


def _corrupt_truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_shapes(path):
    np.savez(path, x_train=np.zeros((7, 784), np.uint8), y_train=np.zeros(7, np.uint8),
             x_test=np.zeros((3, 784), np.uint8), y_test=np.zeros(3, np.uint8))


def _corrupt_labels(path):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["y_train"][5] = 10
    np.savez(path, **arrays)


def _corrupt_garbage(path):
    path.write_bytes(b"not a zip file at all")


@pytest.mark.parametrize("corrupt", [_corrupt_truncated, _corrupt_shapes, _corrupt_labels, _corrupt_garbage])
def test_corrupt_cache_is_rebuilt(fake_home, monkeypatch, corrupt):
    monkeypatch.setattr(dl, "openml_parser", lambda: "liac-arff")
    home, x, _ = fake_home
    dl.load_dataset("mnist", data_home=home, log=Log())
    cache = dl.cache_path("mnist", home)
    corrupt(cache)
    log = Log()
    ds = dl.load_dataset("mnist", data_home=home, log=log)
    assert len(log.matching("is corrupt")) == 1 and "rebuilding" in log[0] and str(cache) in log[0]
    assert ds.source.startswith("OpenML (")
    np.testing.assert_array_equal(ds.x_train, x[:100])
    again = dl.load_dataset("mnist", data_home=home, log=Log())
    assert again.source.startswith("OpenML cache (")


def test_unwritable_data_home(tmp_path, monkeypatch):
    forbid_fetch(monkeypatch)
    (tmp_path / "file.txt").write_text("a regular file, not a folder")
    home = tmp_path / "file.txt" / "sub"
    with pytest.raises(DataError) as err:
        dl.load_dataset("mnist", data_home=home, log=Log())
    msg = str(err.value)
    assert "\n" not in msg and str(home / "mnist_viz") in msg


def test_other_fetch_failures_are_data_errors(tmp_path, offline_openml, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("The md5 checksum of the file does not match")
    monkeypatch.setattr(dl, "_call_fetch_openml", broken)
    monkeypatch.setattr(dl, "_openml_reachable", lambda: (True, ""))
    with pytest.raises(DataError, match="could not load MNIST from OpenML: The md5"):
        dl.load_dataset("mnist", data_home=tmp_path, log=Log())


def test_unknown_name():
    with pytest.raises(DataError, match="unknown data set"):
        dl.load_dataset("cifar", offline=True)


# ---------------------------------------------------------------------- IDX files

def test_idx_real_mnist():
    folder = need_shared("mnist")
    ds = dl.load_dataset("mnist", data_dir=folder)
    assert ds.source == f"IDX files in {folder}" or ds.source.startswith("IDX files in ")
    assert ds.x_train.shape == (60_000, 784) and ds.x_test.shape == (10_000, 784)
    assert ds.y_train.shape == (60_000,) and ds.y_test.shape == (10_000,)
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        assert a.dtype == np.uint8
    assert np.bincount(ds.y_train, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(ds.y_test, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert ds.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0
    assert abs(ds.x_train.mean() - 33.318) < 0.01 and abs(ds.x_test.mean() - 33.791) < 0.01


def test_idx_real_fashion():
    folder = need_shared("fashion-mnist")
    ds = dl.load_dataset("fashion", data_dir=folder)
    assert ds.class_names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert np.bincount(ds.y_train, minlength=10).tolist() == [6000] * 10
    assert np.bincount(ds.y_test, minlength=10).tolist() == [1000] * 10
    assert ds.x_train.shape == (60_000, 784) and ds.x_train.dtype == np.uint8


def write_idx(path: Path, array: np.ndarray, magic=None, count=None, cut=0):
    """Write `array` (uint8) as an IDX file (.gz if the name says so), optionally damaged."""
    array = np.asarray(array, np.uint8)
    magic = magic if magic is not None else 0x0800 + array.ndim
    dims = list(array.shape)
    if count is not None:
        dims[0] = count
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + array.tobytes()
    raw = raw[: len(raw) - cut]
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def make_idx_dir(folder: Path, n_train=30, n_test=10, gz=True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    rng = np.random.default_rng(3)
    write_idx(folder / f"train-images-idx3-ubyte{ext}", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", np.arange(n_train) % 10)
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", np.arange(n_test) % 10)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_idx_small_files(tmp_path, gz):
    ds = dl.load_dataset("mnist", data_dir=make_idx_dir(tmp_path / "d", gz=gz))
    assert ds.x_train.shape == (30, 784) and ds.y_test.tolist() == list(range(10))
    img = dl.read_idx(tmp_path / "d" / ("train-images-idx3-ubyte" + (".gz" if gz else "")))
    assert img.shape == (30, 28, 28) and img.dtype == np.uint8
    np.testing.assert_array_equal(ds.x_train, img.reshape(30, 784))


def test_idx_missing_dir(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        dl.load_dataset("mnist", data_dir=tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)


def test_idx_missing_file(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        dl.load_dataset("mnist", data_dir=folder)


@pytest.mark.parametrize("damage, match", [
    (dict(magic=2052), "bad magic number 2052"),
    (dict(magic=0x12345678), "bad magic number"),
    (dict(cut=100), "truncated"),
    (dict(cut=10_000), "truncated"),
])
def test_idx_damaged_images(tmp_path, damage, match):
    folder = make_idx_dir(tmp_path / "d")
    bad = write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((30, 28, 28)), **damage)
    with pytest.raises(DataError, match=match) as err:
        dl.load_dataset("mnist", data_dir=folder)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_idx_header_says_more_than_data(tmp_path):
    bad = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((5, 28, 28)), count=6)
    with pytest.raises(DataError, match=r"x-idx3-ubyte has 3920 data bytes, header says 4704"):
        dl.read_idx(bad)


def test_idx_truncated_gzip_stream(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        dl.load_dataset("mnist", data_dir=folder)


def test_idx_images_labels_count_mismatch(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(29) % 10)
    with pytest.raises(DataError, match="29 labels but train-images-idx3-ubyte.gz has 30 images") as err:
        dl.load_dataset("mnist", data_dir=folder)
    assert str(folder / "train-labels-idx1-ubyte.gz") in str(err.value)


def test_idx_bad_label_value(tmp_path):
    folder = make_idx_dir(tmp_path / "d")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(10, 11))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz has label 11"):
        dl.load_dataset("mnist", data_dir=folder)


# ------------------------------------------------------------------ bundled sample

@pytest.mark.parametrize("name, classes", [("mnist", dl.MNIST_CLASSES), ("fashion", dl.FASHION_CLASSES)])
def test_bundled_sample(name, classes):
    path = dl.sample_path(name)
    assert path.stat().st_size <= 3 * 1024 * 1024
    ds = dl.load_dataset(name, offline=True)
    assert ds.source == f"bundled sample (assets/{name}_sample.npz)" and ds.class_names == classes
    assert ds.x_train.shape == (5000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.uint8
    assert np.bincount(ds.y_train, minlength=10).tolist() == [500] * 10
    assert np.bincount(ds.y_test, minlength=10).tolist() == [100] * 10
    assert ds.x_train.max() == 255


@pytest.mark.parametrize("name, folder", [("mnist", "mnist"), ("fashion", "fashion-mnist")])
def test_sample_is_first_of_each_class_of_the_originals(name, folder):
    full = dl.load_dataset(name, data_dir=need_shared(folder))
    sample = dl.load_dataset(name, offline=True)
    if name == "mnist":  # first test digit of the sample = first original test digit (a 7)
        np.testing.assert_array_equal(sample.x_test[0], full.x_test[0])
        assert sample.y_test[0] == 7
    for split, per_class in (("train", 500), ("test", 100)):
        y = getattr(full, f"y_{split}")
        idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)]))
        np.testing.assert_array_equal(getattr(sample, f"x_{split}"), getattr(full, f"x_{split}")[idx])
        np.testing.assert_array_equal(getattr(sample, f"y_{split}"), y[idx])


def test_damaged_sample_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "ASSETS_DIR", tmp_path)
    with pytest.raises(DataError, match="assets/mnist_sample.npz is missing"):
        dl.load_dataset("mnist", offline=True)
    (tmp_path / "mnist_sample.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="assets/mnist_sample.npz is damaged"):
        dl.load_dataset("mnist", offline=True)


# ------------------------------------------------------------------- drawn digits

@pytest.fixture(scope="module")
def digits():
    """200 real MNIST test digits (from the bundled sample): (200, 28, 28) float in [0, 1]."""
    return dl.load_sample("mnist").x_test[::5].reshape(-1, 28, 28) / 255.0


def corr(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_mnist_style_empty_canvas():
    out = drawn_digit.mnist_style(np.zeros((280, 280)))
    assert out.shape == (28, 28) and out.dtype == np.float32 and not out.any()


@pytest.mark.slow
def test_mnist_style_upscaled_digits_round_trip(digits):
    scores = []
    for d in digits:
        out = drawn_digit.mnist_style(np.kron(d, np.ones((10, 10))))          # (280, 280) canvas
        assert out.shape == (28, 28) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
        scores.append(corr(out, d))
    scores = np.array(scores)
    assert np.median(scores) > 0.95 and (scores > 0.8).mean() > 0.95, np.sort(scores)[:10]


def test_mnist_style_shifted_and_scaled_digits(digits):
    rng = np.random.default_rng(0)
    scores = []
    for d in digits:
        rows, cols = np.flatnonzero(d.any(1)), np.flatnonzero(d.any(0))
        crop = d[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        k = int(rng.integers(3, 12))                                   # digit 60..240 px tall
        big = np.kron(crop, np.ones((k, k)))
        canvas = np.zeros((280, 280))
        top = int(rng.integers(0, 280 - big.shape[0] + 1))
        left = int(rng.integers(0, 280 - big.shape[1] + 1))
        canvas[top:top + big.shape[0], left:left + big.shape[1]] = big
        scores.append(corr(drawn_digit.mnist_style(canvas), d))
    scores = np.array(scores)
    assert np.median(scores) > 0.9 and (scores > 0.8).mean() > 0.9, np.sort(scores)[:10]


def test_mnist_style_centres_mass_and_fits_box():
    canvas = np.zeros((300, 200))
    canvas[10:250, 20:60] = 1.0                                        # tall bar in a corner
    out = drawn_digit.mnist_style(canvas)
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 <= 5  # 240x40 -> 20x3.33
    mass = out.sum()
    cy = (out.sum(1) @ np.arange(28)) / mass
    cx = (out.sum(0) @ np.arange(28)) / mass
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_mnist_style_tiny_dot_is_enlarged():
    canvas = np.zeros((280, 280))
    canvas[100:104, 200:202] = 1.0                                      # 4x2 px scribble
    out = drawn_digit.mnist_style(canvas)
    assert out.dtype == np.float32 and out.max() <= 1.0
    assert (out > 0.5).sum() >= 100                                    # 20x10 box, bilinear edges


def test_a_cache_that_cannot_be_written_still_gives_the_data(fake_home, monkeypatch):
    monkeypatch.setattr(dl, "openml_parser", lambda: "liac-arff")
    home, x, _ = fake_home

    def disk_full(path, arrays):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(dl, "atomic_save_npz", disk_full)
    log = Log()
    ds = dl.load_dataset("mnist", data_home=home, log=log)
    np.testing.assert_array_equal(ds.x_train, x[:100])
    assert len(log.matching("not cached (No space left on device)")) == 1
