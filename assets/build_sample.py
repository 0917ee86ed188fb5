"""Build the bundled samples assets/mnist_sample.npz and assets/fashion_sample.npz.

Usage (from the repository root):  python assets/build_sample.py [--shared-dir ../shared/data]

Takes, from the original IDX files, the first TRAIN_PER_CLASS training images and the
first TEST_PER_CLASS test images of every class, in file order (so the sample is a
deterministic, balanced subset that keeps the original order), and writes them as
uint8 arrays x_train (N, 784), y_train (N,), x_test (M, 784), y_test (M,) with
np.savez_compressed. Each file must stay <= MAX_BYTES.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from mnist_live import data_loader  # noqa: E402

TRAIN_PER_CLASS = 500
TEST_PER_CLASS = 100
MAX_BYTES = 3 * 1024 * 1024
SOURCES = {"mnist": "mnist", "fashion": "fashion-mnist"}  # data set -> folder in shared/data


def first_per_class(y: np.ndarray, per_class: int) -> np.ndarray:
    """Indices (sorted, i.e. file order) of the first `per_class` items of each class 0..9."""
    picks = [np.flatnonzero(y == c)[:per_class] for c in range(data_loader.N_CLASSES)]
    if any(len(p) < per_class for p in picks):
        raise SystemExit(f"not enough images: need {per_class} per class")
    return np.sort(np.concatenate(picks))


def build(name: str, idx_dir: Path, train_per_class: int, test_per_class: int) -> Path:
    ds = data_loader.load_idx_dir(name, idx_dir)
    tr = first_per_class(ds.y_train, train_per_class)
    te = first_per_class(ds.y_test, test_per_class)
    out = data_loader.sample_path(name)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, x_train=ds.x_train[tr], y_train=ds.y_train[tr],
                        x_test=ds.x_test[te], y_test=ds.y_test[te])
    tmp.replace(out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared-dir", type=Path, default=ROOT.parent / "shared" / "data",
                    help="folder holding mnist/ and fashion-mnist/ IDX files (default: ../shared/data)")
    ap.add_argument("--only", choices=sorted(SOURCES), help="build just one sample")
    args = ap.parse_args(argv)
    for name in ([args.only] if args.only else SOURCES):
        per_train, per_test = TRAIN_PER_CLASS, TEST_PER_CLASS
        while True:  # shrink only if the file would exceed the size limit
            try:
                out = build(name, args.shared_dir / SOURCES[name], per_train, per_test)
            except data_loader.DataError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            size = out.stat().st_size
            if size <= MAX_BYTES:
                break
            per_train, per_test = int(per_train * 0.9), int(per_test * 0.9)
            print(f"{out.name}: {size:,} bytes > {MAX_BYTES:,}; retrying with {per_train}/{per_test} per class")
        print(f"{out.relative_to(ROOT)}: {per_train * 10:,} train + {per_test * 10:,} test images, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
