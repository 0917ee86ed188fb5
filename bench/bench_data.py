"""Benchmark data loading: OpenML parse+cache per ARFF parser, cached load, IDX load, sample load.

Usage (from the repository root):
    python bench/bench_data.py            # full size: 70,000-row fake mnist_784 (~1-2 min per parser)
    python bench/bench_data.py --quick    # 2,000 rows: runs in seconds
    python bench/bench_data.py --parts background   # only the BackgroundFetch figures

The fake mnist_784 is written in scikit-learn's OpenML cache format (see
tests/fixtures_openml.py) from the real IDX files in ../shared/data/mnist when they
exist (random digits otherwise), so the real fetch_openml parses it with the network
blocked. Each parser runs in a fresh subprocess: its time is the first-launch cost
minus the download, and its peak memory (max RSS) is reported too.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

import fixtures_openml  # noqa: E402
from mnist_live import data_loader  # noqa: E402
from mnist_live.window import fetch as background_fetch  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"

# Runs in a fresh interpreter: parse the fake cache with one parser, write our compact cache.
_CHILD = r"""
import json, resource, sys, time, urllib.error
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
import sklearn.datasets._openml as so
t_import = time.perf_counter() - t0
def _no_network(*a, **k):
    raise urllib.error.URLError("network blocked by bench")
so.urlopen = _no_network
from mnist_live import data_loader as dl
dl._OPENML_SPLIT = tuple(args["split"])
dl.openml_parser = lambda: args["parser"]
t1 = time.perf_counter()
ds = dl.load_openml("mnist", data_home=args["home"], log=lambda m: print("  " + m, file=sys.stderr))
t_parse = time.perf_counter() - t1
assert ds.source.startswith("OpenML ("), ds.source
print(json.dumps({"import": t_import, "parse": t_parse,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_CACHED_CHILD = r"""
import json, sys, time
args = json.loads(sys.argv[1])
from mnist_live import data_loader as dl
dl._OPENML_SPLIT = tuple(args["split"])
t = time.perf_counter()
ds = dl.load_dataset("mnist", data_home=args["home"])
print(json.dumps({"load": time.perf_counter() - t, "sklearn": "sklearn" in sys.modules, "source": ds.source}))
"""


def _run_child(code: str, args: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True)
    sys.stderr.write(out.stderr)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best_of(fn, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _fake_rows(n_rows: int):
    """(x (n, 784) uint8, y (n,) uint8, description): real MNIST train+test rows when available."""
    if (SHARED / "mnist").is_dir():
        ds = data_loader.load_idx_dir("mnist", SHARED / "mnist")
        x = np.concatenate([ds.x_train, ds.x_test])
        y = np.concatenate([ds.y_train, ds.y_test])
        if n_rows < len(x):
            x, y = x[:n_rows], y[:n_rows]
        return x, y, "real MNIST rows from ../shared/data/mnist"
    x, y = fixtures_openml.fake_digits(n_rows)
    return x, y, "random digits (../shared/data/mnist not found)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small fake data set (2,000 rows), runs in seconds")
    ap.add_argument("--parsers", default="liac-arff,pandas", help="comma-separated parsers to time")
    ap.add_argument("--parts", default="parse,background",
                    help="comma-separated: parse (the parsers above), background (BackgroundFetch)")
    args = ap.parse_args(argv)

    n_rows = 2_000 if args.quick else 70_000
    split = (n_rows * 6 // 7, n_rows - n_rows * 6 // 7)           # 60,000 / 10,000 at full size
    rows = []  # (what, seconds, note)
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        x, y, origin = _fake_rows(n_rows)
        t = time.perf_counter()
        template = Path(tmp) / "template"
        arff = fixtures_openml.write_fake_openml_cache(template, x, y, compresslevel=6)
        print(f"fake mnist_784: {n_rows:,} rows of {origin}; ARFF.gz {arff.stat().st_size / 1e6:.1f} MB "
              f"(written in {time.perf_counter() - t:.1f} s)")
        have_pandas = _has_module("pandas")
        home = None
        for parser in args.parsers.split(",") if "parse" in args.parts.split(",") else ():
            if parser == "pandas" and not have_pandas:
                rows.append(("OpenML parse+cache, parser=pandas", None, "pandas not installed"))
                continue
            home = Path(tmp) / f"home-{parser}"
            subprocess.run(["cp", "-r", str(template), str(home)], check=True)
            print(f"parsing with {parser} ...", flush=True)
            res = _run_child(_CHILD, {"root": str(ROOT), "home": str(home), "parser": parser, "split": split})
            if "error" in res:
                rows.append((f"OpenML parse+cache, parser={parser}", None, res["error"][:70]))
            else:
                rows.append((f"OpenML parse+cache, parser={parser}", res["parse"],
                             f"peak RSS {res['rss_mb']:,.0f} MB; +{res['import']:.2f} s sklearn import"))
        if home is not None and data_loader.cache_path("mnist", home).exists():
            res = _run_child(_CACHED_CHILD, {"root": str(ROOT), "home": str(home), "split": split})
            rows.append(("cached load (fresh process)", res.get("load"),
                         f"sklearn imported: {res.get('sklearn')}; "
                         f"{data_loader.cache_path('mnist', home).stat().st_size / 1e6:.0f} MB .npz"))
            old_split, data_loader._OPENML_SPLIT = data_loader._OPENML_SPLIT, split
            try:
                rows.append(("cached load (warm, best of 3)",
                             _best_of(lambda: data_loader.load_dataset("mnist", data_home=home)), ""))
            finally:
                data_loader._OPENML_SPLIT = old_split

        if "background" in args.parts.split(","):
            rows += _background_rows(template, arff, split, tmp)

    if (SHARED / "mnist").is_dir():
        rows.append(("IDX load (4 .gz files, best of 3)",
                     _best_of(lambda: data_loader.load_dataset("mnist", data_dir=SHARED / "mnist")), "full MNIST"))
    else:
        rows.append(("IDX load", None, "../shared/data/mnist not found"))
    for name in ("mnist", "fashion"):
        rows.append((f"sample load ({name}, best of 3)",
                     _best_of(lambda name=name: data_loader.load_dataset(name, offline=True)),
                     f"{data_loader.sample_path(name).stat().st_size:,} bytes"))

    width = max(len(r[0]) for r in rows)
    print(f"\n{'what':<{width}}  {'seconds':>8}  note")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 40}")
    for what, secs, note in rows:
        print(f"{what:<{width}}  {'n/a' if secs is None else f'{secs:8.3f}':>8}  {note}")
    return 0


def _background_rows(template: Path, arff: Path, split, tmp) -> list:
    """BackgroundFetch: the real reachability check here; start to "failed" when the check is
    refused; start to "ready" for the fake data set downloaded through an unthrottled opener
    (so: spawn + scikit-learn import + copy + checksum + parse + cache), with its stages."""
    rows = []
    ok, why = data_loader._openml_reachable()
    rows.append(("OpenML reachability check (this machine, best of 3)", _best_of(data_loader._openml_reachable),
                 "reachable" if ok else f"unreachable: {why}"[:60]))
    saved = {k: getattr(data_loader, k) for k in ("_OPENML_SPLIT", "_OPENML_HOST", "_OPENML_PORT", "_DOWNLOAD_BYTES")}
    import socket
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        data_loader._OPENML_SPLIT, data_loader._OPENML_HOST = split, "127.0.0.1"
        data_loader._OPENML_PORT = closed.getsockname()[1]            # refused
        closed.close()
        seconds, final, _ = _time_fetch(Path(tmp) / "home-refused", None)
        rows.append(("background fetch: start to failed (refused)", seconds, final.message[:60]))
        home = Path(tmp) / "home-background"
        subprocess.run(["cp", "-r", str(template), str(home)], check=True)
        (home / arff.relative_to(template)).unlink()                    # the JSON answers only
        payload = arff.read_bytes()
        data_loader._OPENML_PORT = listening.getsockname()[1]
        data_loader._DOWNLOAD_BYTES = {"mnist": len(payload)}
        opener = fixtures_openml.SlowArffOpener(payload, chunk=1 << 20, delay=0)
        seconds, final, stages = _time_fetch(home, opener)
        rows.append(("background fetch: start to ready (unthrottled)", seconds,
                     f"{final.describe()}; stages began at " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())))
    finally:
        listening.close()
        for key, value in saved.items():
            setattr(data_loader, key, value)
    return rows


def _time_fetch(home, opener):
    """(seconds from BackgroundFetch() to a final status, that status, {stage: first elapsed})."""
    t = time.perf_counter()
    fetch = background_fetch.BackgroundFetch("mnist", home, urlopen=opener)
    started = time.perf_counter() - t
    slowest_poll = 0.0
    try:
        while True:
            t_poll = time.perf_counter()
            status = fetch.poll()
            slowest_poll = max(slowest_poll, time.perf_counter() - t_poll)
            if status.finished:
                break
            time.sleep(0.01)
        seconds = time.perf_counter() - t
        print(f"  BackgroundFetch(): {1000 * started:.1f} ms in the caller; slowest poll(): "
              f"{1000 * slowest_poll:.2f} ms", file=sys.stderr)
        stages = {}
        for s in fetch.history:
            stages.setdefault(s.stage, s.elapsed)
    finally:
        fetch.close()
    return seconds, status, stages


def _has_module(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
