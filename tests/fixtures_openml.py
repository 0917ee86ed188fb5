"""Fake OpenML responses, stored the way scikit-learn's fetch_openml caches them.

`write_fake_openml_cache(data_home, x, y)` fills ``<data_home>/openml/openml.org/...``
with the four JSON API answers and the gzipped ARFF file of a data set shaped like
OpenML's ``mnist_784`` (784 numeric ``pixelN`` columns + nominal ``class``). The real
``fetch_openml`` then runs entirely from this cache: it never opens a URL for a file
that is already cached. Used by tests/test_data_loader.py and bench/bench_data.py.
"""

import gzip
import hashlib
import json
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


def write_fake_openml_cache(data_home, x, y, name="mnist_784", compresslevel=6) -> Path:
    """Cache a fake `name` version 1 (x: (N, 784) uint8, y: (N,) ints) under data_home; returns the ARFF path."""
    data_id, file_id = OPENML_IDS[name]
    root = Path(data_home) / "openml" / "openml.org"
    api = root / "api" / "v1" / "json" / "data"
    x, y = np.asarray(x, np.uint8), np.asarray(y, np.uint8)
    arff = arff_bytes(x, y, name)
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
        "url": f"https://api.openml.org/data/v1/download/{file_id}/{name}.arff",
        "file_id": str(file_id), "default_target_attribute": "class", "version_label": "1",
        "visibility": "public", "status": "active", "processing_date": "2018-10-03 21:23:30",
        "md5_checksum": hashlib.md5(arff).hexdigest()}}
    features = [_feature(i, f"pixel{i + 1}", "numeric") for i in range(x.shape[1])]
    features.append(_feature(x.shape[1], "class", "nominal", nominal_values=list("0123456789")))

    def put_json(rel: str, obj):
        _write_gz(api / f"{rel}.gz", json.dumps(obj).encode())

    put_json(f"list/data_name/{name.lower()}/limit/2/data_version/1", listing)
    put_json(f"{data_id}", description)
    put_json(f"features/{data_id}", {"data_features": {"feature": features}})
    put_json(f"qualities/{data_id}", {"data_qualities": {"quality": qualities}})
    arff_path = root / "data" / "v1" / "download" / str(file_id) / f"{name}.arff.gz"
    _write_gz(arff_path, arff, compresslevel)
    return arff_path


def fake_digits(n: int, seed: int = 0):
    """n random uint8 images (n, 784) and balanced labels (n,) for quick fakes."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    x[rng.random(x.shape) < 0.8] = 0  # mostly background, like digits
    return x, (np.arange(n) % 10).astype(np.uint8)
