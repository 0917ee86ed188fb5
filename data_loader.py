"""Load MNIST / Fashion-MNIST as compact uint8 arrays.

Sources, in the order `load_dataset` tries them:

1. ``offline=True``: the bundled sample in ``assets/`` (5,000 train / 1,000 test
   images, balanced over the 10 classes), shipped with the repository.
2. ``data_dir``: the four original IDX files (``.gz`` or uncompressed).
3. OpenML: a compact uint8 cache ``<data_home>/mnist_viz/<openml name>.npz`` if
   present (plain ``np.load``, no scikit-learn import: ~0.1 s); otherwise
   ``sklearn.datasets.fetch_openml`` (imported lazily), then the compact cache is
   written atomically. If OpenML cannot be reached, the bundled sample is used.
   `window.fetch.BackgroundFetch` runs the same download in a separate process (the
   window starts on the bundled sample meanwhile); `needs_fetch` tells whether a launch
   would download.

Every array handed out is validated: images ``(N, 784) uint8`` (row-major 28x28,
0 = background, 255 = ink, same orientation as the IDX files), labels ``(N,) uint8``
in 0..9. Problems the user can fix raise `DataError` with a one-line message.
"""

from __future__ import annotations

import gzip
import http.client
import os
import socket
import tempfile
import threading
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_live.training.files import atomic_save_npz

MNIST_CLASSES = tuple("0123456789")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

SIDE = 28                      # image side in pixels
N_PIXELS = SIDE * SIDE         # 784
N_CLASSES = 10
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
CACHE_SUBDIR = "mnist_viz"     # our folder inside scikit-learn's data_home

# Per data set: pretty name, class names, OpenML name.
_INFO = {
    "mnist": ("MNIST", MNIST_CLASSES, "mnist_784"),
    "fashion": ("Fashion-MNIST", FASHION_CLASSES, "Fashion-MNIST"),
}
# Approximate size of the gzipped ARFF file fetch_openml stores (what a download writes to
# disk): the ARFF text of the IDX files in ../shared/data, gzipped at level 6 / 9, is 15.5 /
# 14.8 MB (MNIST) and 39.6 / 38.6 MB (Fashion-MNIST). Tests override it for their fakes.
_DOWNLOAD_BYTES = {"mnist": 15_000_000, "fashion": 39_000_000}
_IDX_FILES = {  # role -> file name of the original distribution
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_KEYS = ("x_train", "y_train", "x_test", "y_test")
_IDX_MAGIC = {"x": 2051, "y": 2049}  # uint8 images (N, 28, 28) / uint8 labels (N,)

# OpenML rows: the first 60,000 are the training set, the last 10,000 the test set.
# Tests override this to work with a tiny fake data set.
_OPENML_SPLIT = (60_000, 10_000)
_FETCH_RETRIES = 2             # fetch_openml n_retries on network errors
_FETCH_DELAY = 1.0             # seconds between retries
_OPENML_HOST = "api.openml.org"
_OPENML_PORT = 443             # the quick check connects here (tests point it at a local server)
_CONNECT_TIMEOUT = 2.0         # seconds for the quick reachability check before a download
_CSV_PIXEL_DTYPE = "uint8"         # pandas parser: read pixels straight to uint8 (peak RAM ~0.4 GB, not ~1.1 GB)

# IDX type code -> big-endian NumPy dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(Exception):
    """A one-line, user-facing message (main.py prints 'error: <msg>' and exits 1)."""


@dataclass(frozen=True)
class Dataset:
    name: str                 # "mnist" or "fashion"
    source: str               # human-readable origin of the arrays
    class_names: tuple        # 10 strings
    x_train: np.ndarray       # (N, 784) uint8
    y_train: np.ndarray       # (N,) uint8 in 0..9
    x_test: np.ndarray        # (M, 784) uint8
    y_test: np.ndarray        # (M,) uint8 in 0..9

    def summary(self) -> dict:
        """What a run records of its data: name, source and the sizes."""
        return {"name": self.name, "source": self.source, "train": int(len(self.y_train)),
                "test": int(len(self.y_test))}


# --------------------------------------------------------------------------- public

def load_dataset(name="mnist", data_dir=None, data_home=None, offline=False, log=print) -> Dataset:
    """Load data set `name` ("mnist" or "fashion"); see the module docstring for the order."""
    if name not in _INFO:
        raise DataError(f"unknown data set {name!r} (choose from {', '.join(_INFO)})")
    if offline:
        return load_sample(name)
    if data_dir is not None:
        return load_idx_dir(name, data_dir)
    return load_openml(name, data_home=data_home, log=log)


def read_idx(path, magic=None) -> np.ndarray:
    """Read one IDX file (gzipped if its name ends in .gz); DataError naming the file on problems.

    `magic` (e.g. 2051 for images, 2049 for labels) is checked when given.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"IDX file {path} not found") from None
    except (OSError, EOFError, zlib.error) as exc:  # truncated, not gzip, corrupt deflate data
        raise DataError(f"cannot read IDX file {path}: {_reason(exc)}") from None
    return _parse_idx(raw, path, magic)


# ------------------------------------------------------------------- bundled sample

def sample_path(name) -> Path:
    """assets/<name>_sample.npz"""
    return ASSETS_DIR / f"{name}_sample.npz"


def load_sample(name) -> Dataset:
    """The bundled, balanced sample of `name` (DataError if missing or damaged)."""
    path = sample_path(name)
    rel = f"assets/{path.name}"
    try:
        arrays = _load_npz(path)
    except FileNotFoundError:
        raise DataError(f"bundled sample {rel} is missing (restore it with: python assets/build_sample.py)") from None
    except Exception as exc:  # noqa: BLE001 - any damage is reported the same way
        raise DataError(f"bundled sample {rel} is damaged ({_reason(exc)})") from None
    return _make_dataset(name, f"bundled sample ({rel})", arrays)


# ------------------------------------------------------------------------ IDX files

def idx_file(data_dir, stem) -> Path:
    """Path of IDX file `stem` in data_dir: `stem`, `stem.gz` or the original dotted spelling."""
    data_dir = Path(data_dir)
    dotted = stem.replace("-idx", ".idx")           # train-images.idx3-ubyte
    for candidate in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (data_dir / candidate).is_file():
            return data_dir / candidate
    raise DataError(f"IDX file {data_dir / (stem + '.gz')} not found (nor {stem})")


def load_idx_dir(name, data_dir) -> Dataset:
    """The four IDX files in data_dir -> Dataset."""
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} not found")
    paths = {key: idx_file(data_dir, stem) for key, stem in _IDX_FILES.items()}
    arrays = {key: read_idx(path, _IDX_MAGIC[key[0]]) for key, path in paths.items()}
    for split in ("train", "test"):
        x_path, y_path = paths[f"x_{split}"], paths[f"y_{split}"]
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (SIDE, SIDE) or x.dtype != np.uint8:
            raise DataError(f"IDX file {x_path} holds {x.dtype} {x.shape}, expected uint8 (N, 28, 28) images")
        if y.ndim != 1 or y.dtype != np.uint8:
            raise DataError(f"IDX file {y_path} holds {y.dtype} {y.shape}, expected uint8 (N,) labels")
        if len(x) != len(y):
            raise DataError(f"IDX file {y_path} has {len(y)} labels but {x_path.name} has {len(x)} images")
        if len(y) and y.max() >= N_CLASSES:
            raise DataError(f"IDX file {y_path} has label {int(y.max())}, expected 0..9")
        arrays[f"x_{split}"] = x.reshape(len(x), N_PIXELS)                       # (N, 784)
    return _make_dataset(name, f"IDX files in {_pretty(data_dir)}", arrays)


def _parse_idx(raw: bytes, path: Path, expected_magic=None) -> np.ndarray:
    """IDX bytes -> array; checks magic number and size."""
    if len(raw) < 4:
        raise DataError(f"IDX file {path} is truncated ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    zero, code, ndim = magic >> 16, raw[2], raw[3]
    if expected_magic is not None and magic != expected_magic:
        raise DataError(f"IDX file {path} has a bad magic number {magic} (expected {expected_magic})")
    if zero != 0 or code not in _IDX_DTYPES or not 1 <= ndim <= 4:
        raise DataError(f"IDX file {path} has a bad magic number {magic} (expected 2049 or 2051)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated (incomplete header)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"IDX file {path} has {len(raw) - header} data bytes, header says {expected} "
                        f"({'x'.join(map(str, dims))}){' (truncated)' if len(raw) - header < expected else ''}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=False)


# --------------------------------------------------------------------------- OpenML

def default_data_home() -> Path:
    """scikit-learn's default data_home, computed without importing scikit-learn."""
    return Path(os.environ.get("SCIKIT_LEARN_DATA", os.path.join("~", "scikit_learn_data"))).expanduser()


def cache_path(name, data_home=None) -> Path:
    """<data_home>/mnist_viz/<openml name>.npz"""
    home = Path(data_home).expanduser() if data_home is not None else default_data_home()
    return home / CACHE_SUBDIR / f"{_INFO[name][2]}.npz"


def needs_fetch(name, data_dir=None, data_home=None, offline=False) -> bool:
    """True when load_dataset would go to OpenML: not offline, no data_dir, and no valid
    compact cache (checked from the .npy headers in the .npz, without reading the arrays)."""
    if offline or data_dir is not None or name not in _INFO:
        return False
    return not _cache_looks_valid(cache_path(name, data_home))


def load_openml(name, data_home=None, log=print) -> Dataset:
    """Compact cache if valid, else fetch_openml + write the cache; bundled sample if OpenML is unreachable."""
    pretty, _, _ = _INFO[name]
    path = cache_path(name, data_home)
    cached = _read_cache(name, path, log)
    if cached is not None:
        return cached
    _check_writable(path.parent)
    reachable, why = _openml_reachable()
    # Unreachable: the bundled sample at once, unless scikit-learn's own download cache may
    # hold the data (then fetch_openml reads it without the network; no retries).
    if not reachable and not _has_openml_cache(path):
        return _sample_instead(name, why, log)
    log(f"Downloading {pretty} from OpenML (first launch only, {_approx_mb(_DOWNLOAD_BYTES.get(name, 0))})...")
    start = time.perf_counter()
    try:
        arrays, fetched, cache_error = _fetch_and_cache(name, path, log, quick=not reachable)
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, socket errors
        return _sample_instead(name, _reason(exc), log)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - bad download, parser failure, missing optional dependency
        raise DataError(f"could not load {pretty} from OpenML: {_reason(exc)} "
                        f"(try --offline, or --data-dir with the IDX files)") from None
    cached = (f"cached at {_pretty(path)}" if cache_error is None else
              f"not cached ({cache_error}), so the next launch downloads it again")
    log(f"{pretty} ready in {time.perf_counter() - start:.1f} s (download+parse {fetched - start:.1f} s, "
        f"cache {time.perf_counter() - fetched:.1f} s); {cached}")
    return _make_dataset(name, f"OpenML ({_pretty(path)})", arrays)


def _read_cache(name, path: Path, log) -> Dataset | None:
    """The Dataset in the compact cache `path`, or None when there is none; a damaged one is
    moved aside to <name>.npz.corrupt (and logged) so that it gets rebuilt."""
    if not os.path.lexists(path):
        return None
    try:
        return _make_dataset(name, f"OpenML cache ({_pretty(path)})", _load_npz(path, expected=_split_shapes()))
    except Exception as exc:  # noqa: BLE001 - any damage means: move it aside and rebuild
        aside = path.with_name(path.name + ".corrupt")
        try:
            os.replace(path, aside)
            where = f"moved aside to {_pretty(aside)}"
        except OSError as move_exc:
            where = f"could not move it aside: {_reason(move_exc)}"
        log(f"cache {_pretty(path)} is corrupt ({_reason(exc)}); {where}; rebuilding")
        return None


def _fetch_and_cache(name, path: Path, log, quick=False):
    """fetch_openml + split + atomic write of the compact cache `path`.

    Returns (arrays, time.perf_counter() when the fetch ended, None or the reason the cache
    could not be written). Raises what fetch_openml raises (network errors are OSError or
    HTTPException) and DataError for data of the wrong shape or range."""
    pretty, _, openml_name = _INFO[name]
    x, y = _fetch_openml(openml_name, path.parent.parent, log, quick=quick)
    fetched = time.perf_counter()
    arrays = _split_openml(x, y, pretty)
    del x, y
    try:
        atomic_save_npz(path, arrays)
        cache_error = None
    except OSError as exc:                       # a full disk: the data is here, only the cache is lost
        cache_error = exc.strerror or _reason(exc)
    return arrays, fetched, cache_error


def _download_folder(home) -> Path:
    """Where fetch_openml downloads data files under data_home `home` (one folder per file id)."""
    return Path(home) / "openml" / "openml.org" / "data" / "v1" / "download"


def _has_openml_cache(path: Path) -> bool:
    """Whether scikit-learn's own OpenML cache folder exists beside our compact cache `path`."""
    return (path.parent.parent / "openml").is_dir()


def _cache_looks_valid(path: Path) -> bool:
    """The .npz at `path` holds the four arrays as uint8 with the expected shapes (headers only)."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as zf:
            for key, shape in _split_shapes().items():
                with zf.open(f"{key}.npy") as f:
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}[np.lib.format.read_magic(f)]
                    got, _, dtype = read_header(f)
                    if got != shape or dtype != np.uint8:
                        return False
        return True
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def _sample_instead(name, why, log):
    sample = load_sample(name)
    log(f"OpenML unreachable ({why}); using the bundled sample of {len(sample.y_train):,}/"
        f"{len(sample.y_test):,} {'digits' if name == 'mnist' else 'images'} instead (--offline skips this check)")
    return sample


def _approx_mb(n_bytes) -> str:
    """~15 MB, ~2.5 MB, ~0.05 MB"""
    return f"~{n_bytes / 1e6:.{_mb_decimals(n_bytes, 10e6)}f} MB"


def _mb_decimals(n_bytes, whole=1e6) -> int:
    """Decimals that show megabytes usefully: none from `whole` up, two below 1 MB."""
    return 0 if n_bytes >= whole else 1 if n_bytes >= 1e6 else 2


def _openml_reachable(timeout=_CONNECT_TIMEOUT):
    """(True, "") when a TCP connection to OpenML opens within `timeout` seconds (or a proxy
    is configured), else (False, reason). Run in a thread so a hanging name lookup cannot
    hold us longer."""
    import urllib.request
    if urllib.request.getproxies():               # downloads go through a proxy: no direct check
        return True, ""
    result = [False, f"no answer from {_OPENML_HOST} within {timeout:g} s"]

    def connect():
        try:
            socket.create_connection((_OPENML_HOST, _OPENML_PORT), timeout=timeout).close()
            result[:] = [True, ""]
        except OSError as exc:
            result[:] = [False, _reason(exc)]

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return tuple(result)


def openml_parser() -> str:
    """'pandas' (~5x faster, see bench/bench_data.py) when pandas is importable, else the pure-Python 'liac-arff'."""
    import importlib.util
    return "pandas" if importlib.util.find_spec("pandas") is not None else "liac-arff"


def _fetch_openml(openml_name, data_home, log=print, quick=False):
    """fetch_openml(...) -> (X (N, 784), y (N,)) as returned by scikit-learn (network errors
    propagate); `quick`: one retry without delay (the network is known to be down)."""
    parser = openml_parser()
    try:
        return _call_fetch_openml(openml_name, data_home, parser, quick)
    except (OSError, http.client.HTTPException):
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a pandas/scikit-learn version mismatch
        if parser != "pandas":
            raise
        log(f"pandas ARFF parser failed ({_reason(exc)}); retrying with the slower liac-arff parser")
        return _call_fetch_openml(openml_name, data_home, "liac-arff", quick)


def _call_fetch_openml(openml_name, data_home, parser, quick=False):
    from sklearn.datasets import fetch_openml  # lazy: ~1 s import, only needed on a cache miss

    # The class column holds the digits 0..9: read it as text. With dtype "category"
    # (scikit-learn's default) pandas >= 3 infers integer categories, which
    # scikit-learn's quote stripping cannot handle (TypeError).
    dtypes = {N_PIXELS: str}
    if _CSV_PIXEL_DTYPE is not None:
        dtypes.update(dict.fromkeys(range(N_PIXELS), _CSV_PIXEL_DTYPE))
    kwargs = {"read_csv_kwargs": {"dtype": dtypes}} if parser == "pandas" else {}
    with warnings.catch_warnings():  # retries / cache notices: we print our own one-liners
        warnings.simplefilter("ignore")
        return fetch_openml(openml_name, version=1, as_frame=False, return_X_y=True,
                            data_home=str(data_home), parser=parser,
                            n_retries=1 if quick else _FETCH_RETRIES, delay=0.01 if quick else _FETCH_DELAY,
                            **kwargs)


def _split_openml(x, y, pretty) -> dict:
    """OpenML X (70000, 784) float/int, y (70000,) str/int -> uint8 train/test arrays."""
    n_train, n_test = _OPENML_SPLIT
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != (n_train + n_test, N_PIXELS) or y.shape != (n_train + n_test,):
        raise DataError(f"OpenML returned {pretty} with shape {x.shape}, expected ({n_train + n_test}, {N_PIXELS})")
    if y.dtype.kind in "OUS":  # nominal class '0'..'9'
        y = y.astype(str).astype(np.int64)
    if x.dtype.kind == "f":
        if np.isnan(x).any():
            raise DataError(f"OpenML returned {pretty} with missing pixel values")
        x = np.rint(x, out=x) if x.flags.writeable else np.rint(x)   # in place: X is ~440 MB
    elif x.dtype.kind not in "iu":
        raise DataError(f"OpenML returned {pretty} pixels of type {x.dtype}, expected numbers")
    if x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() >= N_CLASSES:
        raise DataError(f"OpenML returned {pretty} values out of range (pixels 0..255, labels 0..9)")
    x8, y8 = x.astype(np.uint8), y.astype(np.uint8)                # (N, 784), (N,)
    return {"x_train": x8[:n_train], "y_train": y8[:n_train],
            "x_test": x8[n_train:], "y_test": y8[n_train:]}


def _split_shapes() -> dict:
    n_train, n_test = _OPENML_SPLIT
    return {"x_train": (n_train, N_PIXELS), "y_train": (n_train,),
            "x_test": (n_test, N_PIXELS), "y_test": (n_test,)}


def _check_writable(directory: Path):
    """Create `directory` if needed and prove we can write there (before a long download)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise DataError(f"cannot write to data folder {_pretty(directory)} ({_reason(exc)}); "
                        f"choose another with --data-home") from None


def check_cache_folder(name, data_home=None):
    """DataError (one line) unless the compact cache of `name` can be written (before a download)."""
    _check_writable(cache_path(name, data_home).parent)


# ------------------------------------------------------------------------- helpers

def _load_npz(path: Path, expected: dict | None = None) -> dict:
    """Read the four arrays of an .npz (no pickles); optional exact shapes."""
    with np.load(path, allow_pickle=False) as npz:
        missing = [k for k in _KEYS if k not in npz.files]
        if missing:
            raise ValueError(f"missing arrays {', '.join(missing)}")
        arrays = {k: npz[k] for k in _KEYS}
    for key, shape in (expected or {}).items():
        if arrays[key].shape != shape:
            raise ValueError(f"{key} has shape {arrays[key].shape}, expected {shape}")
    _check_arrays(arrays)
    return arrays


def _check_arrays(arrays: dict):
    """ValueError unless images are (N, 784) uint8 and labels (N,) uint8 in 0..9."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise ValueError(f"{split} arrays are {x.dtype}/{y.dtype}, expected uint8")
        if x.ndim != 2 or x.shape[1] != N_PIXELS or y.shape != (len(x),) or len(x) == 0:
            raise ValueError(f"{split} shapes {x.shape} / {y.shape}, expected (N, 784) / (N,)")
        if y.max() >= N_CLASSES:
            raise ValueError(f"{split} label {int(y.max())} out of range 0..9")


def _make_dataset(name, source, arrays) -> Dataset:
    try:
        _check_arrays(arrays)
    except ValueError as exc:
        raise DataError(f"{source}: {exc}") from None
    return Dataset(name=name, source=source, class_names=_INFO[name][1],
                   **{k: np.ascontiguousarray(arrays[k]) for k in _KEYS})


def _pretty(path) -> str:
    """Path as text, with the home directory shown as ~."""
    text, home = str(path), str(Path.home())
    return "~" + text[len(home):] if home not in ("", "/") and text.startswith(home + os.sep) else text


def _reason(exc) -> str:
    """Short one-line reason of an exception."""
    reason = getattr(exc, "reason", None) or exc
    text = " ".join(str(reason).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
