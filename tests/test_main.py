"""The command line as a user meets it: bad input, headless runs, model files, metrics."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import NO_SHARED, ROOT, SHARED_MNIST
from mnist_live.training.config import Config
from mnist_live.training.model_file import read_model
from mnist_live.training.trainer import Trainer

MAIN = str(ROOT / "main.py")


def run(*args, timeout=300, cwd=None):
    env = {"SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1", "PATH": "/usr/bin:/bin"}
    import os
    env = {**os.environ, **env}
    return subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


def assert_one_line_error(proc, status, *fragments):
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines and "error:" in lines[-1]
    for frag in fragments:
        assert frag in lines[-1], lines[-1]


def test_help_documents_every_option():
    proc = run("--help")
    assert proc.returncode == 0
    import dataclasses
    for f in dataclasses.fields(Config):
        assert "--" + f.name.replace("_", "-") in proc.stdout


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "-1"], "--epochs"),
    (["--epochs", "0"], "--epochs"),
    (["--lr", "abc"], "--lr"),
    (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--weight-decay", "inf"], "--weight-decay"),
    (["--hidden", "100000"], "--hidden"),
    (["--hidden", "0"], "--hidden"),
    (["--hidden", "64", "-3"], "--hidden"),
    (["--batch-size", "0"], "--batch-size"),
    (["--dropout", "1.5"], "--dropout"),
    (["--dropout", "1"], "--dropout"),
    (["--momentum", "1"], "--momentum"),
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--activation", "gelu"], "--activation"),
    (["--dataset", "cifar"], "--dataset"),
    (["--frobnicate"], "unrecognized arguments"),
])
def test_invalid_values_exit_2_with_one_line(args, fragment):
    proc = run(*args, "--headless")
    assert_one_line_error(proc, 2, fragment)


@pytest.mark.parametrize("flag", ["--save", "--metrics", "--screenshot"])
def test_output_in_missing_folder_is_refused_before_any_work(tmp_path, flag):
    proc = run("--headless", "--offline", flag, str(tmp_path / "no" / "such" / "file"))
    assert_one_line_error(proc, 2, flag, "does not exist")


def test_missing_data_dir_is_one_line_error(tmp_path):
    proc = run("--headless", "--data-dir", str(tmp_path / "nope"))
    assert_one_line_error(proc, 1, "nope")


@pytest.mark.parametrize("content, fragment", [
    (None, "does not exist"),
    (b"this is not a zip file", "not a NumPy .npz archive"),
    (b"import os\nprint('a Python file')\n", "not a NumPy .npz archive"),
    (b"PK\x03\x04truncated", "not a readable model"),
])
def test_bad_model_files_are_one_line_errors(tmp_path, content, fragment):
    path = tmp_path / "model.npz"
    if content is not None:
        path.write_bytes(content)
    proc = run("--headless", "--offline", "--load", str(path))
    assert_one_line_error(proc, 1, fragment)


def test_npz_with_python_objects_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, W1=np.array([{"a": 1}], dtype=object), meta=np.array("{}"))
    proc = run("--headless", "--offline", "--load", str(path))
    assert_one_line_error(proc, 1, "holds Python objects")


def test_malformed_meta_is_a_one_line_error(tmp_path):
    path = tmp_path / "odd.npz"
    np.savez(path, W1=np.zeros((784, 10), np.float32), b1=np.zeros(10, np.float32), meta=np.array(json.dumps([1, 2])))
    proc = run("--headless", "--offline", "--load", str(path))
    assert_one_line_error(proc, 1, "meta")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's read-only /proc")
def test_output_in_a_read_only_place_is_refused_before_any_work():
    proc = run("--headless", "--offline", "--save", "/proc/model.npz")   # even for root
    assert_one_line_error(proc, 2, "--save", "not writable")


def test_output_that_is_a_folder_is_refused(tmp_path):
    proc = run("--headless", "--offline", "--save", str(tmp_path))
    assert_one_line_error(proc, 2, "--save", "is a folder")


def test_corrupt_gzip_idx_is_a_one_line_error(tmp_path):
    import gzip
    header = {"train-images-idx3-ubyte": (2051, (20, 28, 28)), "train-labels-idx1-ubyte": (2049, (20,)),
              "t10k-images-idx3-ubyte": (2051, (10, 28, 28)), "t10k-labels-idx1-ubyte": (2049, (10,))}
    rng = np.random.default_rng(0)
    for name, (magic, shape) in header.items():
        body = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
        body += rng.integers(0, 10 if magic == 2049 else 256, int(np.prod(shape)), dtype=np.uint8).tobytes()
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(body))
    blob = bytearray((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    blob[30:60] = bytes(255 - b for b in blob[30:60])
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(blob))
    proc = run("--headless", "--data-dir", str(tmp_path), "--hidden", "8", "--epochs", "1")
    assert_one_line_error(proc, 1, "t10k-images-idx3-ubyte.gz")


def test_resume_with_another_batch_size_restarts_the_epoch(tmp_path):
    data = _small_data()
    x, y = data.x_train[:500], data.y_train[:500]
    t = Trainer(Config(hidden=(32,), batch_size=16, epochs=2), x, y)
    for _ in range(20):
        t.train_batch()
    t.save(tmp_path / "mid.npz")
    arrays, meta = read_model(tmp_path / "mid.npz")
    other = Trainer(Config(hidden=(32,), batch_size=128, epochs=2), x, y)
    other.restore(arrays, meta)
    assert other.perm is None and other.epoch == 0
    while not other.finished:
        assert np.isfinite(other.train_batch().loss)


@pytest.mark.slow
def test_window_on_a_finished_model_renders_and_exits(tmp_path):
    model, shot = tmp_path / "done.npz", tmp_path / "done.png"
    assert run("--headless", "--offline", "--hidden", "32", "--epochs", "1", "--train-size", "500",
               "--save", str(model)).returncode == 0
    proc = run("--offline", "--load", str(model), "--screenshot", str(shot), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert shot.exists()


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--screenshot", "shot.png"]])
def test_frames_ends_a_window_that_has_stopped_drawing(tmp_path, extra):
    """--no-train draws only when something changes, so a drawn-frame count alone never
    reaches N: the run ends after N frames' worth of time (N/60 s) of the network on screen."""
    import time
    model = tmp_path / "m.npz"
    assert run("--headless", "--offline", "--hidden", "16", "--train-size", "500", "--epochs", "1",
               "--save", str(model)).returncode == 0
    metrics = tmp_path / "w.json"
    t = time.monotonic()
    try:
        proc = run("--offline", "--load", str(model), "--no-train", "--frames", "30", "--metrics", str(metrics),
                   *extra, timeout=60, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("--frames 30 --no-train was still running after 60 s")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t < 40
    m = json.loads(metrics.read_text())
    assert 1 <= m["frames"] <= 30 and m["epochs_completed"] == 1
    if extra:                                        # the picture of the model, not the start-up screen
        import pygame
        shot = pygame.image.load(str(tmp_path / "shot.png"))
        assert shot.get_size() == (1600, 900)
        colours = {tuple(shot.get_at((x, y)))[:3] for x in range(0, 1600, 7) for y in range(0, 900, 7)}
        assert len(colours) > 50


@pytest.mark.slow
def test_ctrl_c_in_the_terminal_still_saves(tmp_path):
    """Ctrl+C (SIGINT to the whole process group) stops a window run early: it saves the
    weights it has, writes its metrics and exits at once. Catches: the signal ignored (the
    run would go on for its 500 epochs), a traceback, nothing saved."""
    import os
    import signal
    import time

    from conftest import CTRL_C_CHILD
    from mnist_live.training.model_file import read_model
    model, metrics, library = tmp_path / "ctrlc.npz", tmp_path / "ctrlc.json", tmp_path / "runs.sqlite3"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    proc = subprocess.Popen([sys.executable, MAIN, "--offline", "--hidden", "64", "--epochs", "500",
                             "--save", str(model), "--metrics", str(metrics), "--runs", str(library)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **CTRL_C_CHILD)
    try:
        deadline = time.monotonic() + 120                 # until the window trains (a loaded machine is slow)
        while time.monotonic() < deadline and proc.poll() is None and not training(library):
            time.sleep(0.2)
        assert proc.poll() is None and training(library), "the window never started training"
        os.killpg(proc.pid, signal.SIGINT)      # like Ctrl+C: the whole process group
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:                 # a failed test leaves nothing running
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert "Traceback" not in err, err
    assert time.monotonic() - sent < 30, "the run did not stop when asked"
    assert model.exists(), err
    _, meta = read_model(model)
    done = json.loads(metrics.read_text())
    assert done["status"] == "stopped" and done["epochs_completed"] < 500, done["status"]
    assert meta["config"]["epochs"] == 500
    assert done["history"]["loss"] and "evals" in done["history"]     # a window run's metrics hold its history too


def training(library):
    """Whether the run library has a running run that has trained past its first batches."""
    import sqlite3
    if not library.exists():
        return False
    try:
        with sqlite3.connect(f"file:{library}?mode=ro", uri=True, timeout=1) as con:
            return bool(con.execute("SELECT COUNT(*) FROM losses").fetchone()[0])
    except sqlite3.Error:
        return False


def test_npz_without_model_entries_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    proc = run("--headless", "--offline", "--load", str(path))
    assert_one_line_error(proc, 1, "not a model file")


@pytest.mark.slow
def test_headless_run_saves_loads_and_writes_metrics(tmp_path):
    model, metrics = tmp_path / "m.npz", tmp_path / "m.json"
    proc = run("--headless", "--offline", "--hidden", "64", "--epochs", "2", "--train-size", "2000",
               "--batch-size", "32", "--save", str(model), "--metrics", str(metrics))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "epoch 2/2" in out and "test acc" in out and "true\\pred" in out
    m = json.loads(metrics.read_text())
    assert 0.75 < m["test_accuracy"] <= 1              # chance is 0.1; measured 0.78
    assert len(m["per_class_accuracy"]) == 10 and np.array(m["confusion_matrix"]).shape == (10, 10)
    assert m["epochs_completed"] == 2 and m["train_samples_per_s"] > 0
    assert m["hyperparameters"]["hidden"] == [64] and m["hyperparameters"]["epochs"] == 2
    # the plain W/b arrays alone reproduce the accuracy (any NumPy code can use them)
    from mnist_live import data_loader
    data = data_loader.load_dataset(offline=True, log=lambda *a: None)
    with np.load(model, allow_pickle=False) as f:
        a = data.x_test.astype(np.float32) / 255
        a = np.maximum(a @ f["W1"] + f["b1"], 0)
        pred = (a @ f["W2"] + f["b2"]).argmax(1)
    assert abs((pred == data.y_test).mean() - m["test_accuracy"]) < 1e-9
    # --load adopts the file's architecture; a conflicting --hidden is a clear error
    proc = run("--headless", "--offline", "--load", str(model), "--no-train", "--metrics", str(metrics))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(metrics.read_text())["test_accuracy"] == m["test_accuracy"]
    proc = run("--headless", "--offline", "--load", str(model), "--hidden", "128")
    assert_one_line_error(proc, 1, "784-64-10", "--hidden 64")


def test_diverging_run_stops_with_a_clear_message(tmp_path):
    proc = run("--headless", "--offline", "--hidden", "64", "--optimizer", "sgd", "--lr", "50",
               "--lr-schedule", "constant", "--train-size", "2000", "--epochs", "1")
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert "diverged" in proc.stderr and "learning rate 50" in proc.stderr


def _small_data():
    from mnist_live import data_loader
    return data_loader.load_dataset(offline=True, log=lambda *a: None)


def test_same_seed_same_run_and_resume_is_exact(tmp_path):
    data = _small_data()
    cfg = Config(hidden=(32,), epochs=2, batch_size=100, seed=5, dropout=0.2, augment=True)
    x, y = data.x_train[:1000], data.y_train[:1000]
    straight = Trainer(cfg, x, y)
    losses = [straight.train_batch().loss for _ in range(15)]
    again = Trainer(cfg, x, y)
    assert losses == [again.train_batch().loss for _ in range(15)]
    # stop mid-epoch after 7 batches, save, load into a fresh trainer, continue 8 more
    first = Trainer(cfg, x, y)
    for _ in range(7):
        first.train_batch()
    first.save(tmp_path / "half.npz")
    arrays, meta = read_model(tmp_path / "half.npz")
    resumed = Trainer(cfg, x, y)
    resumed.restore(arrays, meta)
    assert [resumed.train_batch().loss for _ in range(8)] == losses[7:]
    for a, b in zip(resumed.net.params, straight.net.params):
        np.testing.assert_array_equal(a, b)


def test_save_is_atomic_and_loading_never_unpickles(tmp_path, monkeypatch):
    data = _small_data()
    cfg = Config(hidden=(16,), epochs=1, seed=1)
    t = Trainer(cfg, data.x_train[:200], data.y_train[:200])
    path = tmp_path / "m.npz"
    t.save(path)
    before = path.read_bytes()
    from mnist_live.training import files

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files.os, "fsync", boom)
    with pytest.raises(OSError):
        t.save(path)
    assert path.read_bytes() == before                         # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]   # no temp file left behind
    loads = []
    real = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: loads.append(k) or real(*a, **k))
    read_model(path)
    assert loads and all(k.get("allow_pickle") is False for k in loads)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.exists(), reason=NO_SHARED)
def test_window_mode_frames_and_metrics(tmp_path):
    metrics = tmp_path / "w.json"
    shot = tmp_path / "shot.png"
    early = tmp_path / "early.png"
    proc = run("--data-dir", str(SHARED_MNIST), "--train-size", "3000", "--test-size", "1000",
               "--frames", "40", "--metrics", str(metrics), "--width", "1280", "--height", "720",
               "--screenshot", str(early))
    assert proc.returncode == 0, proc.stderr
    m = json.loads(metrics.read_text())
    for k in ("frame_ms_p50", "frame_ms_p95", "frame_ms_p99", "first_frame_s", "train_samples_per_s"):
        assert k in m
    assert m["frames"] == 40 and m["window"] == [1280, 720]
    assert m["status"] != "finished"                 # --frames ended the run: its last frame is the shot
    import pygame
    assert pygame.image.load(str(early)).get_size() == (1280, 720)
    proc = run("--offline", "--hidden", "64", "--epochs", "1", "--train-size", "1000", "--screenshot", str(shot),
               "--metrics", str(metrics))
    assert proc.returncode == 0, proc.stderr
    m = json.loads(metrics.read_text())
    assert m["status"] == "finished" and m["epochs_completed"] == 1 and len(m["per_class_accuracy"]) == 10
    assert pygame.image.load(str(shot)).get_size() == (1600, 900)


def test_atomic_files_get_a_normal_mode(tmp_path):
    import os

    from mnist_live.training.files import atomic_write_json
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "m.json").st_mode & 0o777) == 0o644


def _start_and_wait(args, ready, timeout=60):
    """Popen main.py and wait until a stdout line contains `ready` (or `timeout` s)."""
    import time
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    proc = subprocess.Popen([sys.executable, MAIN, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if ready in line or not line:
            break
    return proc


def test_sigterm_in_the_terminal_saves_like_ctrl_c(tmp_path):
    import signal
    model = tmp_path / "term.npz"
    proc = _start_and_wait(["--headless", "--offline", "--hidden", "64", "--epochs", "500", "--save", str(model)],
                           ready="epoch 1/500")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err                     # stopped, not finished: as a sweep stopped so
    assert "Traceback" not in err and "interrupted" in out
    assert model.exists() and int(read_model(model)[0]["epoch"]) >= 1


@pytest.mark.slow
def test_sigterm_to_the_window_saves_like_ctrl_c(tmp_path):
    import signal
    import time
    model = tmp_path / "term.npz"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    proc = subprocess.Popen([sys.executable, MAIN, "--offline", "--hidden", "64", "--epochs", "500",
                             "--save", str(model)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)                               # the window is up and its trainer running
    proc.send_signal(signal.SIGTERM)            # to the main process only, as `kill PID` does
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert model.exists(), err


@pytest.mark.parametrize("args, fragments", [
    (["--headless", "--frames", "10"], ["--frames", "--headless"]),
    (["--headless", "--screenshot", "x.png"], ["--screenshot", "--headless"]),
    (["--headless", "--width", "800", "--connections", "5"], ["--width", "--connections", "--headless"]),
    (["--headless", "--offline", "--data-dir", "."], ["--offline", "--data-dir"]),
    (["--headless", "--offline", "--data-home", "."], ["--offline", "--data-home"]),
    (["--headless", "--data-dir", ".", "--data-home", "."], ["--data-dir", "--data-home"]),
])
def test_contradictory_options_are_usage_errors(tmp_path, args, fragments):
    proc = run(*args, "--epochs", "1", cwd=tmp_path)
    assert_one_line_error(proc, 2, *fragments)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_tilde_is_expanded_in_every_path_option(tmp_path):
    env_home = {"HOME": str(tmp_path)}
    common = ["--headless", "--hidden", "8", "--epochs", "1", "--train-size", "200"]
    proc = subprocess.run([sys.executable, MAIN, *common, "--offline", "--save", "~/m.npz", "--metrics", "~/m.json"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env_home})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.npz").is_file() and (tmp_path / "m.json").is_file()
    proc = subprocess.run([sys.executable, MAIN, "--headless", "--offline", "--load", "~/m.npz", "--no-train"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env_home})
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, MAIN, *common, "--data-dir", "~/idx"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env_home})
    assert_one_line_error(proc, 1, str(tmp_path / "idx"))
    import dataclasses

    from mnist_live import main as main_module
    from mnist_live.training import config as config_module
    paths = [f.name for f in dataclasses.fields(config_module.Config) if f.metadata.get("metavar") in ("FILE", "DIR")]
    assert sorted(paths) == sorted(main_module.PATH_OPTIONS)     # a new path option is expanded too


@pytest.mark.parametrize("args, blamed", [
    (["--weight-decay", "1e300"], "weight decay 1e+300"),                       # adam: overflow to NaN
    (["--optimizer", "sgd", "--weight-decay", "100"], "weight decay 100"),      # lr x decay = 10
    (["--optimizer", "sgd", "--lr", "50", "--lr-schedule", "constant"], "learning rate 50"),
])
def test_divergence_is_one_line_without_numpy_warnings_and_blames_the_right_option(args, blamed):
    proc = run("--headless", "--offline", "--hidden", "64", "--train-size", "2000", "--epochs", "1", *args)
    assert_one_line_error(proc, 3, "diverged", blamed)
    assert "Warning" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY/WAYLAND_DISPLAY matter on Linux")
def test_no_display_is_a_one_line_error_suggesting_headless(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    proc = subprocess.run([sys.executable, MAIN, "--offline", "--hidden", "8", "--epochs", "1", "--train-size", "100"],
                          capture_output=True, text=True, timeout=30, env=env)
    assert_one_line_error(proc, 1, "no display", "--headless")
    from mnist_live import main as main_module
    assert not main_module.no_display({"SDL_VIDEODRIVER": "dummy"}, "linux")     # what the tests use
    assert not main_module.no_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not main_module.no_display({}, "darwin") and not main_module.no_display({}, "win32")


def test_headless_history_is_bounded(monkeypatch, capsys):
    from mnist_live import main as main_module
    from mnist_live.training import headless
    monkeypatch.setattr(headless, "HISTORY_EPOCHS", 5)
    data = _small_data()
    import dataclasses
    data = dataclasses.replace(data, x_train=data.x_train[:20], y_train=data.y_train[:20],
                               x_test=data.x_test[:20], y_test=data.y_test[:20])
    m = main_module.run_headless(Config(hidden=(4,), epochs=12, batch_size=20, headless=True), data)
    assert [h["epoch"] for h in m["epochs"]] == [8, 9, 10, 11, 12]
    assert m["epochs_completed"] == 12 and m["train_samples_per_s"] > 0
    json.dumps(m)


@pytest.mark.slow
def test_the_readme_views_are_made_by_the_app(tmp_path):
    """assets/make_screenshots.py (the README's pictures) runs the real window on a model and
    writes each view as a PNG of the window's size."""
    model = tmp_path / "model.npz"
    proc = run("--headless", "--offline", "--epochs", "1", "--hidden", "64", "--train-size", "1000",
               "--save", str(model))
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    out = tmp_path / "views"
    proc = subprocess.run([sys.executable, str(ROOT / "assets" / "make_screenshots.py"), "--load", str(model),
                           "--offline", "--out", str(out)], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    import pygame
    names = sorted(p.stem for p in out.glob("*.png"))
    assert names == sorted(["relevance", "explain-class", "contrast", "portrait", "index-order", "atlas", "map",
                            "dream", "confusion", "class-chart", "backward", "health", "step-loss", "step-backward",
                            "step-update", "updates", "maths"])
    first = pygame.image.load(str(out / "relevance.png"))
    assert first.get_size() == (1280, 720)
    # different views are different pictures
    assert pygame.image.tobytes(first, "RGB") != pygame.image.tobytes(pygame.image.load(str(out / "map.png")), "RGB")
