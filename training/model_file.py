"""The model-file format: reading and validating a saved `.npz` (ours, or plain weights
from other code such as PyTorch) and checking that it fits a configuration.

Only the members of the format are read, each header (shape, dtype) checked before its
data, never with pickles. Writing is `Trainer.save` (the state arrays) through
`utils.atomic_save_npz`. Imports NumPy and `config` only.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
import zlib

import numpy as np

from mnist_live.training.config import HYPERPARAMETERS, value_problem

FORMAT_VERSION = 1


class ModelFileError(Exception):
    """A model file could not be read or does not fit the configuration (one line)."""


# The members a model file may hold; nothing else in the archive is ever read.
_MEMBER = re.compile(r"(meta|epoch|batch|perm|progress|opt_t|[Wb][1-9]\d{0,2}|opt_[mMV]\d{1,4}"
                     r"|history|lr_scale|snap_info|snap_[Wb][1-9]\d{0,2})")
MAX_SNAPSHOTS = 10_000        # rows of snap_info a file may claim
MAX_META_CHARS = 1 << 16      # the meta JSON is ~2 KB
MAX_WIDTH = 16384             # widest layer (the --hidden bound)
MAX_PERM = 10 ** 7            # longest data order (MNIST: 60,000)
MAX_EPOCH = 2 ** 31 - 1


def read_model(path):
    """(arrays, meta) from a model file, with a one-line ModelFileError on any problem.

    Our files hold W1, b1, ..., the optimizer state, the data position and a JSON `meta`.
    An .npz of only W1, b1, W2, b2, ... (from other code, e.g. PyTorch) is accepted too:
    the layer sizes come from the shapes, in our (fan_in, fan_out) layout or PyTorch's
    (fan_out, fan_in), which is transposed; `meta["foreign"]` then says which.

    Only the members named above are read, and each .npy header (shape, dtype) is checked
    before its data, so a huge or hostile member costs no memory. Every field of the
    training state is validated (ModelFileError naming the field)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"model file {path} does not exist")
    if not os.path.isfile(path):                         # a folder, FIFO (would block) or device
        raise ModelFileError(f"{path} is not a model file: not a regular file")
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":              # every .npz is a zip archive
                raise ModelFileError(f"{path} is not a model file: not a NumPy .npz archive")
        with zipfile.ZipFile(path) as zf:
            reader = _MemberReader(path, zf)
            if "meta" in reader.headers:
                return _read_own_model(reader)
            return _read_foreign_model(reader)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, zlib.error) as e:
        message = f"{path} is not a readable model .npz file ({type(e).__name__}: {e})"
        raise ModelFileError(message.splitlines()[0]) from None


class _MemberReader:
    """The .npy members of an .npz that belong to the model format: their headers first
    (shape, dtype: no data read), then their data on request."""

    def __init__(self, path, zf):
        self.path, self.zf = path, zf
        self.names = {}
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else None
            if key and _MEMBER.fullmatch(key):
                self.names[key] = info.filename
        self.headers = {key: self._header(key) for key in self.names}

    def _header(self, key):
        with self.zf.open(self.names[key]) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"{key}: unsupported .npy version {version}")
        if dtype.hasobject:                          # object arrays: never unpickled here
            raise ModelFileError(f"{self.path} is not a model file: it holds Python objects, "
                                 f"not only numeric arrays ({key})")
        return shape, dtype

    def expect(self, key, shape, kinds, what):
        """Raise unless member `key` exists with exactly `shape` (None: any 1-D) and a dtype kind in `kinds`."""
        if key not in self.headers:
            raise ModelFileError(f"{self.path}: {key} is missing ({what})")
        got_shape, dtype = self.headers[key]
        if (shape is None and len(got_shape) != 1) or (shape is not None and got_shape != tuple(shape)):
            want = "1-D" if shape is None else f"shaped {tuple(shape)}"
            raise ModelFileError(f"{self.path}: {key} is shaped {got_shape}, but {what} must be {want}")
        if dtype.kind not in kinds:
            raise ModelFileError(f"{self.path}: {key} holds {dtype}, but {what} must be "
                                 f"{'floating-point' if kinds == 'f' else 'integer'} numbers")

    def read(self, key):
        with self.zf.open(self.names[key]) as f:
            return np.lib.format.read_array(f, allow_pickle=False)


def _read_own_model(r):
    path = r.path
    shape, dtype = r.headers["meta"]
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_META_CHARS:
        raise ModelFileError(f"{path} has an unreadable meta entry ({dtype} {shape}, expected a JSON string)")
    try:
        meta = json.loads(str(r.read("meta")))
    except ValueError:
        raise ModelFileError(f"{path} has an unreadable meta entry") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) \
            or not isinstance(meta.get("sizes"), list):
        raise ModelFileError(f"{path} has a meta entry without the expected config and sizes")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path} has model format {meta.get('format_version')}, expected {FORMAT_VERSION}")
    saved = meta["config"]
    for key in HYPERPARAMETERS:
        problem = value_problem(key, saved[key]) if key in saved else None
        if problem:
            raise ModelFileError(f"{path}: meta.config.{key} {problem} (got {saved[key]!r})")
    if "hidden" not in saved:
        raise ModelFileError(f"{path}: meta.config.hidden is missing")
    sizes = meta["sizes"]
    if sizes != [784, *saved["hidden"], 10]:
        raise ModelFileError(f"{path}: meta.sizes {sizes} does not match meta.config.hidden {saved['hidden']}")
    if "rng_state" in meta:
        try:
            np.random.default_rng().bit_generator.state = meta["rng_state"]
        except (TypeError, ValueError, KeyError, OverflowError):
            raise ModelFileError(f"{path}: meta.rng_state is not a PCG64 generator state") from None
    # headers before data: shapes follow from meta.sizes
    params = [(f"{wb}{i}", shp) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1)
              for wb, shp in (("W", (a, b)), ("b", (b,)))]
    for key, shp in params:
        r.expect(key, shp, "f", f"layer {key[1:]} of a {'-'.join(map(str, sizes))} network")
    scalars = [k for k in ("epoch", "batch", "opt_t") if k in r.headers]
    for key in scalars:
        r.expect(key, (), "iu", key)
    if "perm" in r.headers:
        r.expect("perm", None, "iu", "perm (the data order)")
        if r.headers["perm"][0][0] > MAX_PERM:
            raise ModelFileError(f"{path}: perm has {r.headers['perm'][0][0]:,} entries, more than any training set")
    if "progress" in r.headers:
        r.expect("progress", (2,), "iu", "progress (samples seen, correct)")
    opt_keys = []
    if "opt_t" in r.headers:                       # the saved optimizer's state, complete
        kinds = {"adam": ("M", "V"), "momentum": ("m",)}.get(saved.get("optimizer"), ())
        for kind in kinds:
            for j, (key, shp) in enumerate(params):
                r.expect(f"opt_{kind}{j}", shp, "f", f"{saved.get('optimizer')} state of {key}")
                opt_keys.append(f"opt_{kind}{j}")
    history_keys = _expect_history(r, params)
    arrays = {}
    for key, _ in params:
        arrays[key] = r.read(key).astype(np.float32, copy=False)
    for key in scalars + [k for k in ("perm", "progress") if k in r.headers] + opt_keys + history_keys:
        arrays[key] = r.read(key)
    _check_state(path, arrays, saved)
    return arrays, meta


def _expect_history(r, params):
    """Check the headers of the history members (JSON history, lr_scale, snapshots) before
    any is read; returns the keys present."""
    keys = []
    if "history" in r.headers:
        shape, dtype = r.headers["history"]
        if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * 64 * 2**20:
            raise ModelFileError(f"{r.path}: history is {dtype} {shape}, expected a JSON string")
        keys.append("history")
    if "lr_scale" in r.headers:
        r.expect("lr_scale", (), "f", "lr_scale (the steering factor)")
        keys.append("lr_scale")
    if "snap_info" in r.headers:
        shape, _ = r.headers["snap_info"]
        if len(shape) != 2 or shape[1] != 3 or shape[0] > MAX_SNAPSHOTS:
            raise ModelFileError(f"{r.path}: snap_info is shaped {shape}, expected (snapshots, 3)")
        r.expect("snap_info", shape, "f", "snap_info (epoch, batch, progress of each snapshot)")
        keys.append("snap_info")
        for key, shp in params:
            r.expect(f"snap_{key}", (shape[0], *shp), "f", f"the snapshots of {key}")
            keys.append(f"snap_{key}")
    return keys


def _check_state(path, arrays, saved):
    """ModelFileError naming the first field of the training state that is out of range."""
    def bad(field, why):
        raise ModelFileError(f"{path}: {field} {why}")

    epoch, batch = int(arrays.get("epoch", 0)), int(arrays.get("batch", 0))
    if not 0 <= epoch <= MAX_EPOCH:
        bad("epoch", f"must be between 0 and {MAX_EPOCH} (got {epoch})")
    perm = arrays.get("perm", np.zeros(0, np.int64))
    n = len(perm)
    if n and not np.array_equal(np.sort(perm), np.arange(n)):
        bad("perm", f"is not an order of the {n} training samples (each of 0..{n - 1} once)")
    n_batches = -(-n // saved.get("batch_size", 1))
    if not 0 <= batch <= n_batches:
        bad("batch", f"must be between 0 and {n_batches} (the batches in an epoch; got {batch})")
    if "progress" in arrays:
        seen, correct = (int(v) for v in arrays["progress"])
        limit = n or 2 ** 62                        # between epochs it holds the last epoch's counts
        if not 0 <= correct <= seen <= limit:
            bad("progress", f"must be 0 <= correct <= seen{f' <= {n}' if n else ''} "
                            f"(got seen {seen}, correct {correct})")
    if "opt_t" in arrays and not 0 <= int(arrays["opt_t"]) <= 2 ** 53:
        bad("opt_t", f"must be a step count >= 0 (got {int(arrays['opt_t'])})")
    for key, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad(key, "contains NaN or inf")
        if key.startswith("opt_V") and (a < 0).any():
            bad(key, "must not be negative (sums of squares)")


def _read_foreign_model(r):
    """W1, b1, W2, b2, ... only: layer sizes from the shapes, either layout."""
    path = r.path
    n = 0
    while f"W{n + 1}" in r.headers and f"b{n + 1}" in r.headers:
        n += 1
    if n == 0:
        raise ModelFileError(f"{path} is not a model file: it has no W1 and b1 arrays")
    shapes = [r.headers[f"W{i}"][0] for i in range(1, n + 1)]
    biases = [r.headers[f"b{i}"][0] for i in range(1, n + 1)]
    layout = _weight_layout(shapes, biases)
    if layout is None:
        desc = ", ".join(f"W{i} {s}" for i, s in enumerate(shapes, start=1))
        raise ModelFileError(f"{path}: W1..W{n} ({desc}) do not chain from 784 inputs to 10 outputs "
                             f"in (fan_in, fan_out) or PyTorch's (fan_out, fan_in) layout")
    torch = layout == "pytorch"
    sizes = [784] + [s[0] if torch else s[1] for s in shapes]
    if any(not 1 <= h <= MAX_WIDTH for h in sizes[1:-1]):
        raise ModelFileError(f"{path}: a hidden layer of {max(sizes[1:-1]):,} units is wider than {MAX_WIDTH}")
    for i in range(1, n + 1):
        for key in (f"W{i}", f"b{i}"):
            if r.headers[key][1].kind != "f":
                raise ModelFileError(f"{path}: {key} holds {r.headers[key][1]}, expected floating-point numbers")
    arrays = {}
    for i in range(1, n + 1):
        W = r.read(f"W{i}")
        arrays[f"W{i}"] = np.ascontiguousarray(W.T if torch else W, dtype=np.float32)   # (fan_in, fan_out)
        arrays[f"b{i}"] = r.read(f"b{i}").astype(np.float32, copy=False)
        for key in (f"W{i}", f"b{i}"):
            if not np.isfinite(arrays[key]).all():
                raise ModelFileError(f"{path}: {key} contains NaN or inf")
    layout_text = ("PyTorch's (fan_out, fan_in) layout, transposed" if torch else "(fan_in, fan_out) layout")
    meta = {"format_version": FORMAT_VERSION, "config": {"hidden": sizes[1:-1]}, "sizes": sizes,
            "foreign": f"weights only, {'-'.join(map(str, sizes))} network in {layout_text}; "
                       f"fresh optimizer state"}
    return arrays, meta


def _weight_layout(shapes, biases):
    """'numpy' when W_i are (fan_in, fan_out) chaining 784 -> ... -> 10, 'pytorch' when they
    are (fan_out, fan_in), else None (b_i must be (fan_out,) either way)."""
    for layout, (i_in, i_out) in (("numpy", (0, 1)), ("pytorch", (1, 0))):
        fan_in = 784
        ok = True
        for s, b in zip(shapes, biases):
            if len(s) != 2 or s[i_in] != fan_in or b != (s[i_out],):
                ok = False
                break
            fan_in = s[i_out]
        if ok and fan_in == 10:
            return layout
    return None


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
