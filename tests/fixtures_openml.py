"""Fake OpenML responses, stored the way scikit-learn's fetch_openml caches them.

`write_fake_openml_cache(data_home, x, y)` fills ``<data_home>/openml/openml.org/...``
with the four JSON API answers and the gzipped ARFF file of a data set shaped like
OpenML's ``mnist_784`` (784 numeric ``pixelN`` columns + nominal ``class``). The real
``fetch_openml`` then runs entirely from this cache: it never opens a URL for a file
that is already cached. Used by tests/test_data_loader.py and bench/bench_data.py.

With ``arff=False`` only the JSON answers are cached: fetch_openml then downloads the
ARFF file, which `SlowArffOpener` (a stand-in for the urlopen of scikit-learn's _openml
module, picklable so a spawned process can use it) serves slowly enough to watch.
"""

import gzip
import hashlib
import json
import time
import urllib.error
from pathlib import Path

import numpy as np

# Real OpenML identifiers: name -> (data_id, file_id)
OPENML_IDS = {"mnist_784": (554, 52667), "Fashion-MNIST": (40996, 18238735)}

_NUMBERS = [str(i).encode() for i in range(256)]


def arff_bytes(x: np.ndarray, y: np.ndarray, relation: str) -> bytes:
    """ARFF text of uint8 images x (N, 784) and labels y (N,), like OpenML's mnist_784.arff."""
    n_pixels = x.shape[1]
    head = [f"@RELATION {relation}", ""]
    head += [f"@ATTRIBUTE pixel{i + 1} NUMERIC" for i in range(n_pixels)]
    head += ["@ATTRIBUTE class {0,1,2,3,4,5,6,7,8,9}", "", "@DATA", ""]
    table = np.array(_NUMBERS, dtype=object)
    rows = (b",".join(table[np.append(img, label)]) for img, label in zip(x, y))
    return "\n".join(head).encode() + b"\n".join(rows) + b"\n"


def _write_gz(path: Path, payload: bytes, compresslevel: int = 6):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=compresslevel) as f:
        f.write(payload)


def _feature(index: int, name: str, data_type: str, **extra) -> dict:
    return {"index": str(index), "name": name, "data_type": data_type, **extra,
            "is_target": "true" if name == "class" else "false", "is_ignore": "false",
            "is_row_identifier": "false", "number_of_missing_values": "0"}


def write_fake_openml_cache(data_home, x, y, name="mnist_784", compresslevel=6, arff=True,
                            url=None, md5=None) -> Path:
    """Cache a fake `name` version 1 (x: (N, 784) uint8, y: (N,) ints) under data_home; returns
    the ARFF path (where fetch_openml keeps it). `arff=False`: the JSON answers only (the ARFF
    is left to download). `url`: the ARFF's download address in the description (default:
    OpenML's); `md5`: the checksum the description gives (default: the right one)."""
    data_id, file_id = OPENML_IDS[name]
    root = Path(data_home) / "openml" / "openml.org"
    api = root / "api" / "v1" / "json" / "data"
    x, y = np.asarray(x, np.uint8), np.asarray(y, np.uint8)
    text = arff_bytes(x, y, name)
    n = len(x)
    qualities = [{"name": "NumberOfInstances", "value": f"{n:.1f}"},
                 {"name": "NumberOfFeatures", "value": f"{x.shape[1] + 1:.1f}"},
                 {"name": "NumberOfClasses", "value": "10.0"},
                 {"name": "NumberOfMissingValues", "value": "0.0"}]
    listing = {"data": {"dataset": [{"did": data_id, "name": name, "version": 1, "status": "active",
                                     "format": "ARFF", "file_id": file_id, "quality": qualities}]}}
    description = {"data_set_description": {
        "id": str(data_id), "name": name, "version": "1", "description": f"Fake {name} for tests.",
        "format": "ARFF", "upload_date": "2014-09-29T03:28:38", "licence": "Public",
        "url": url or f"https://api.openml.org/data/v1/download/{file_id}/{name}.arff",
        "file_id": str(file_id), "default_target_attribute": "class", "version_label": "1",
        "visibility": "public", "status": "active", "processing_date": "2018-10-03 21:23:30",
        "md5_checksum": md5 or hashlib.md5(text).hexdigest()}}
    features = [_feature(i, f"pixel{i + 1}", "numeric") for i in range(x.shape[1])]
    features.append(_feature(x.shape[1], "class", "nominal", nominal_values=list("0123456789")))

    def put_json(rel: str, obj):
        _write_gz(api / f"{rel}.gz", json.dumps(obj).encode())

    put_json(f"list/data_name/{name.lower()}/limit/2/data_version/1", listing)
    put_json(f"{data_id}", description)
    put_json(f"features/{data_id}", {"data_features": {"feature": features}})
    put_json(f"qualities/{data_id}", {"data_qualities": {"quality": qualities}})
    arff_path = root / "data" / "v1" / "download" / str(file_id) / f"{name}.arff.gz"
    if arff:
        _write_gz(arff_path, text, compresslevel)
    return arff_path


def arff_gz(x, y, name="mnist_784", compresslevel=6) -> bytes:
    """The gzipped ARFF file of the fake `name` (what OpenML sends with Content-Encoding: gzip)."""
    return gzip.compress(arff_bytes(np.asarray(x, np.uint8), np.asarray(y, np.uint8), name), compresslevel)


class SlowArffOpener:
    """urlopen for scikit-learn's _openml module: a data file download (…/data/v1/download/…)
    gets `payload` (gzip bytes, sent with Content-Encoding: gzip) in reads of at most `chunk`
    bytes, `delay` seconds each (payload None: the download fails as a network error would);
    any other address fails as if offline (the JSON answers are expected in the cache)."""

    def __init__(self, payload: bytes, chunk=8192, delay=0.05):
        self.payload, self.chunk, self.delay = payload, chunk, delay

    def __call__(self, request, *args, **kwargs):
        url = getattr(request, "full_url", request)
        if "/data/v1/download/" not in url:
            raise urllib.error.URLError(f"no fake answer for {url}")
        if self.payload is None:
            raise urllib.error.URLError(ConnectionResetError(104, "Connection reset by peer"))
        return _SlowResponse(self.payload, self.chunk, self.delay)


class _SlowResponse:
    def __init__(self, payload, chunk, delay):
        self.payload, self.chunk, self.delay, self.pos = payload, chunk, delay, 0

    def info(self):
        return {"Content-Encoding": "gzip"}

    def read(self, n=-1):
        if self.pos >= len(self.payload):
            return b""
        time.sleep(self.delay)
        size = self.chunk if n is None or n < 0 else min(n, self.chunk)
        data = self.payload[self.pos:self.pos + size]
        self.pos += len(data)
        return data

    def close(self):
        pass


def fake_digits(n: int, seed: int = 0):
    """n random uint8 images (n, 784) and balanced labels (n,) for quick fakes."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    x[rng.random(x.shape) < 0.8] = 0  # mostly background, like digits
    return x, (np.arange(n) % 10).astype(np.uint8)
