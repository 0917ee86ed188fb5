"""A run's memory, without a window: evaluation history, loss curve, learning-rate steering
and float16 weight snapshots, in memory, in model files and in --metrics."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from mnist_live.neural_network import MLP
from mnist_live.training.config import Config
from mnist_live.training.history import MAX_LOSS_POINTS, EvalRecord, History, Snapshots, history_member, read_history
from mnist_live.training.loop import Run
from mnist_live.training.loop import train as train_loop
from mnist_live.training.model_file import ModelFileError, read_model
from mnist_live.training.trainer import DivergenceCheck, Trainer


@pytest.fixture(scope="module")
def data():
    from mnist_live import data_loader
    return data_loader.load_dataset(offline=True, log=lambda *a: None)


def small_trainer(data, n=1000, **kw):
    cfg = Config(**{"hidden": (32,), "epochs": 3, "batch_size": 25, "seed": 3, **kw})   # 40 batches an epoch
    return Trainer(cfg, data.x_train[:n], data.y_train[:n])


def train(t, batches):
    for _ in range(batches):
        t.train_batch()


def save_and_reload(t, path, **config_changes):
    t.save(path)
    arrays, meta = read_model(path)
    fresh = Trainer(t.config.replace(**config_changes), t.x_train, t.y_train)
    fresh.restore(arrays, meta)
    return fresh


def snapshot_positions(snaps):
    return [snaps.info(i)[:2] for i in range(len(snaps))]


# ------------------------------------------------------------------ schedule and budget
def test_schedule_is_log_spaced_in_the_first_epoch_and_every_epoch_end():
    due = [b for b in range(1, 470) if Snapshots.due(0, b, 469)]
    assert due == [1, 3, 10, 30, 100, 300, 469]
    assert [b for b in range(1, 470) if Snapshots.due(4, b, 469)] == [469]
    assert Snapshots.due(0, 1000, 5000) and Snapshots.due(0, 3000, 5000) and not Snapshots.due(0, 2000, 5000)


def test_trainer_snapshots_the_untrained_weights_then_follows_the_schedule(data):
    t = small_trainer(data)
    untrained = [W.copy() for W in t.net.weights]
    train(t, 80)                                              # two epochs of 40 batches
    assert snapshot_positions(t.snapshots) == [(0, 0), (0, 1), (0, 3), (0, 10), (0, 30), (1, 0), (2, 0)]
    assert [t.snapshots.info(i)[2] for i in range(len(t.snapshots))] == [0, 1 / 40, 3 / 40, 10 / 40, 30 / 40, 1, 2]
    W0, _ = t.snapshots.weights(0)
    np.testing.assert_array_equal(W0[0], untrained[0].astype(np.float16).astype(np.float32))
    W_last, b_last = t.snapshots.weights(len(t.snapshots) - 1)   # the epoch end is the current weights
    for got, now in zip(W_last + b_last, t.net.weights + t.net.biases):
        np.testing.assert_array_equal(got, now.astype(np.float16).astype(np.float32))
    assert [t.snapshots.nearest(p) for p in (0.0, 0.06, 0.26, 0.9, 1.6, 9.0)] == [0, 2, 3, 5, 6, 6]
    assert Snapshots((784, 10)).nearest(1.0) == -1
    assert t.snapshots.nbytes() == 7 * t.snapshots.snap_bytes == 7 * 2 * (784 * 32 + 32 + 32 * 10 + 10)


def test_over_budget_the_closest_in_epoch_snapshots_go_first_and_the_ends_stay():
    net = MLP((784, 16, 10))
    snaps = Snapshots(net.sizes, budget_bytes=0)
    per = snaps.snap_bytes
    snaps = Snapshots(net.sizes, budget_bytes=6 * per + per // 2)       # room for 6
    n = 40
    positions = [(0, 0)] + [(0, b) for b in range(1, n) if Snapshots.due(0, b, n)] + [(e, 0) for e in range(1, 4)]
    for epoch, batch in positions:                         # 8 snapshots: (0,0) (0,1) (0,3) (0,10) (0,30) (1..3,0)
        snaps.take(net, epoch, batch, epoch + batch / n)
        assert snaps.nbytes() <= snaps.budget
    # in-epoch ones go first, each time the one whose neighbours are closest in log(progress)
    assert snapshot_positions(snaps) == [(0, 0), (0, 1), (0, 10), (1, 0), (2, 0), (3, 0)]
    for e in range(4, 12):                                 # many epochs: the ends are thinned too
        snaps.take(net, e, 0, e)
    assert snapshot_positions(snaps) == [(0, 0), (1, 0), (2, 0), (4, 0), (7, 0), (11, 0)]   # log-spaced
    assert Snapshots(net.sizes, budget_bytes=per).capacity == 1
    tiny = Snapshots(net.sizes, budget_bytes=per)          # two do not fit: none are kept
    tiny.take(net, 0, 0, 0.0)
    assert len(tiny) == 0 and tiny.nbytes() == 0


def test_a_snapshot_predicts_exactly_like_its_stored_float16_weights(data, tmp_path):
    t = small_trainer(data)
    train(t, 12)
    t.save(tmp_path / "m.npz")
    x = data.x_test[:500]
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        stored = {k: f[k] for k in f.files if k.startswith("snap_")}
    for i in range(len(t.snapshots)):
        net = MLP(t.config.sizes, seed=99)
        t.snapshots.load_into(net, i)
        # a plain NumPy forward pass of the file's float16 weights, cast to float32
        W1, b1 = stored["snap_W1"][i].astype(np.float32), stored["snap_b1"][i].astype(np.float32)
        W2, b2 = stored["snap_W2"][i].astype(np.float32), stored["snap_b2"][i].astype(np.float32)
        a = x.astype(np.float32) * np.float32(1 / 255)
        plain = (np.maximum(a @ W1 + b1, 0) @ W2 + b2).argmax(1)
        np.testing.assert_array_equal(net.predict(x), plain)
        W, b = t.snapshots.weights(i)
        np.testing.assert_array_equal(W[0], W1)
        np.testing.assert_array_equal(b[1], b2)
        assert W[0].dtype == np.float32


# ------------------------------------------------------------------ history
def test_evaluations_and_loss_are_recorded_with_their_positions(data):
    t = small_trainer(data)
    train(t, 50)
    t.evaluate(data.x_test[:300], data.y_test[:300], "subset")
    t.evaluate(data.x_test[:300], data.y_test[:300], "subset")   # the same weights again: replaced, not added
    train(t, 30)
    ev2 = t.evaluate(data.x_test, data.y_test, "full")
    h = t.history
    assert [(r.kind, r.epoch, r.batch) for r in h.evals] == [("subset", 1, 10), ("full", 2, 0)]
    assert h.evals[0].progress == pytest.approx(1.25) and h.evals[1].progress == 2.0
    assert h.evals[1].accuracy == ev2.accuracy and h.evals[1].per_class == ev2.per_class
    assert len(h.loss) == 80 and h.loss[0][0] == 1 / 40 and h.loss[-1][0] == 2.0
    progress, per_class = h.per_class_series("full")
    assert progress.tolist() == [2.0] and per_class.shape == (1, 10)


def test_the_loss_curve_stays_bounded_and_keeps_recent_points():
    h = History()
    for i in range(3 * MAX_LOSS_POINTS):
        h.add_loss(i / 100, float(i % 7))
    assert len(h.loss) <= MAX_LOSS_POINTS
    assert h.loss[-1] == ((3 * MAX_LOSS_POINTS - 1) / 100, float((3 * MAX_LOSS_POINTS - 1) % 7))
    p = [q for q, _ in h.loss]
    assert p == sorted(p) and p[0] < 0.01 * p[-1]           # the start of the run is still there, merged
    assert np.mean([v for _, v in h.loss]) == pytest.approx(3.0, abs=0.05)


def test_learning_rate_steering_scales_the_schedule_and_is_recorded(data):
    t = small_trainer(data, lr_schedule="constant", lr=0.001)
    train(t, 4)
    assert t.current_lr() == pytest.approx(0.001)
    assert t.scale_lr(2) == pytest.approx(0.002)
    assert t.train_batch().lr == pytest.approx(0.002)
    t.scale_lr(0.5)
    t.scale_lr(0.5)
    assert t.current_lr() == pytest.approx(0.0005) and t.lr_scale == 0.5
    assert t.history.lr_changes == [(0.1, pytest.approx(0.002)), (0.125, pytest.approx(0.001)),
                                    (0.125, pytest.approx(0.0005))]
    with pytest.raises(ValueError):
        t.scale_lr(0)
    wild = small_trainer(data, optimizer="sgd", lr=0.5, lr_schedule="constant", hidden=(64,))
    wild.scale_lr(200)
    outcome = train_loop(Run(wild, data.x_test[:100], data.y_test[:100], [DivergenceCheck()]))
    assert outcome.status == "diverged" and "learning rate 0.5 (x200 by steering)" in outcome.error


# ------------------------------------------------------------------ model files
@pytest.mark.slow
def test_save_load_gives_identical_history_snapshots_and_lr_scale(data, tmp_path):
    t = small_trainer(data)
    train(t, 45)
    t.scale_lr(2)
    t.evaluate(data.x_test[:200], data.y_test[:200], "subset")
    first = t.history.evals[0]                              # a class absent from the evaluated set:
    per_class = (*first.per_class[:3], float("nan"), *first.per_class[4:])
    t.history.evals[0] = dataclasses.replace(first, per_class=per_class)
    train(t, 10)
    loaded = save_and_reload(t, tmp_path / "m.npz")
    assert loaded.history == t.history and loaded.history.evals[0].kind == "subset"
    assert np.isnan(loaded.history.evals[0].per_class[3])
    assert loaded.lr_scale == 2 and loaded.current_lr() == t.current_lr()
    assert snapshot_positions(loaded.snapshots) == snapshot_positions(t.snapshots)
    assert [loaded.snapshots.info(i) for i in range(len(t.snapshots))] == \
        [t.snapshots.info(i) for i in range(len(t.snapshots))]
    for i in range(len(t.snapshots)):
        for a, b in zip(sum(loaded.snapshots.weights(i), []), sum(t.snapshots.weights(i), [])):
            np.testing.assert_array_equal(a, b)
    # the resumed run goes on exactly, steered learning rate included
    assert [loaded.train_batch().loss for _ in range(20)] == [t.train_batch().loss for _ in range(20)]
    assert loaded.history == t.history
    assert snapshot_positions(loaded.snapshots) == snapshot_positions(t.snapshots)


def test_no_snapshots_leaves_them_out_of_the_file_but_keeps_the_history(data, tmp_path):
    t = small_trainer(data, no_snapshots=True)
    train(t, 45)
    t.save(tmp_path / "small.npz")
    t.config = t.config.replace(no_snapshots=False)
    t.save(tmp_path / "full.npz")
    with np.load(tmp_path / "small.npz") as f:
        assert "history" in f.files and not any(k.startswith("snap_") for k in f.files)
    extra = (tmp_path / "full.npz").stat().st_size - (tmp_path / "small.npz").stat().st_size
    assert extra >= t.snapshots.nbytes() == 6 * t.snapshots.snap_bytes
    arrays, meta = read_model(tmp_path / "small.npz")
    loaded = Trainer(t.config, t.x_train, t.y_train)
    loaded.restore(arrays, meta)
    assert loaded.history == t.history and len(loaded.snapshots) == 0


@pytest.mark.slow
def test_an_old_file_without_history_loads_empty(data, tmp_path):
    t = small_trainer(data)
    train(t, 50)
    t.scale_lr(4)
    t.save(tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz") as f:
        old = {k: f[k] for k in f.files if k not in ("history", "lr_scale") and not k.startswith("snap_")}
    np.savez(tmp_path / "old.npz", **old)
    arrays, meta = read_model(tmp_path / "old.npz")
    loaded = Trainer(t.config, t.x_train, t.y_train)
    loaded.restore(arrays, meta)
    assert loaded.history == History() and len(loaded.snapshots) == 0 and loaded.lr_scale == 1
    train(loaded, 5)                                       # trained weights are never taken as "untrained"
    assert len(loaded.snapshots) == 0 and len(loaded.history.loss) == 5


def good_history():
    return {"evals": [{"progress": 0.5, "kind": "full", "accuracy": 0.9, "per_class": [0.9] * 9 + [None],
                       "epoch": 0, "batch": 20}],
            "loss": [[0.025, 2.3], [0.05, 2.1]], "lr_changes": [[0.5, 0.002]]}


@pytest.mark.parametrize("change, field", [
    (lambda d: d["evals"][0].update(kind="test"), "evals[0].kind"),
    (lambda d: d["evals"][0].update(per_class=[0.5] * 9), "evals[0].per_class"),
    (lambda d: d["evals"][0]["per_class"].__setitem__(2, "x"), "evals[0].per_class[2]"),
    (lambda d: d["evals"][0].update(accuracy=float("inf")), "evals[0].accuracy"),
    (lambda d: d["evals"][0].update(accuracy=1.5), "evals[0].accuracy"),
    (lambda d: d["evals"][0]["per_class"].__setitem__(0, -0.1), "evals[0].per_class[0]"),
    (lambda d: d["evals"][0].update(progress=-1), "evals[0].progress"),
    (lambda d: d["evals"][0].update(epoch=1.5), "evals[0].epoch"),
    (lambda d: d["evals"][0].pop("batch"), "evals[0].batch"),
    (lambda d: d["evals"].append(3), "evals[1]"),
    (lambda d: d.update(evals={}), "evals"),
    (lambda d: d["loss"].append([1.0]), "loss[2]"),
    (lambda d: d["loss"].__setitem__(0, [0.1, True]), "loss[0][1]"),
    (lambda d: d.update(loss=[[0.1, 1.0]] * (MAX_LOSS_POINTS + 1)), "loss"),
    (lambda d: d.update(lr_changes="x"), "lr_changes"),
])
def test_history_from_json_names_the_bad_field(change, field):
    assert History.from_json(good_history()).to_json() == good_history()
    d = good_history()
    change(d)
    with pytest.raises(ModelFileError) as e:
        History.from_json(d)
    msg = str(e.value)
    assert f" {field} " in msg and "\n" not in msg


@pytest.mark.parametrize("member, value, fragment", [
    ("history", np.array("{not json"), "not valid JSON"),
    ("history", np.zeros(3), "history must be a JSON string"),
    ("lr_scale", np.array(-2.0), "lr_scale"),
    ("snap_info", np.zeros((2, 2)), "snap_info"),
    ("snap_W1", np.zeros((2, 784, 32), np.float32), "snap_W1 must be float16"),
    ("snap_b2", np.zeros((1, 10), np.float16), "snap_b2 must be float16"),
])
def test_bad_history_members_are_one_line_errors(data, tmp_path, member, value, fragment):
    t = small_trainer(data)
    train(t, 4)                                            # two snapshots
    arrays = t.state_arrays()
    read_history(arrays, t.config.sizes)                   # the good file reads
    arrays[member] = value
    with pytest.raises(ModelFileError, match=fragment) as e:
        read_history(arrays, t.config.sizes)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------ command line
def run(*args):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.slow
def test_metrics_and_model_file_carry_the_history(tmp_path):
    model, metrics, again = tmp_path / "m.npz", tmp_path / "m.json", tmp_path / "again.json"
    common = ["--headless", "--offline", "--hidden", "32", "--train-size", "1000", "--test-size", "300"]
    proc = run(*common, "--epochs", "2", "--save", str(model), "--metrics", str(metrics))
    assert proc.returncode == 0, proc.stderr
    text = metrics.read_text()
    assert "NaN" not in text
    m = json.loads(text)
    h = m["history"]
    assert [(e["kind"], e["progress"], e["epoch"], e["batch"]) for e in h["evals"]] == \
        [("full", 1.0, 1, 0), ("full", 2.0, 2, 0)]
    assert h["evals"][-1]["accuracy"] == m["test_accuracy"] and h["evals"][-1]["per_class"] == m["per_class_accuracy"]
    assert len(h["loss"]) == 2 * 8 and h["lr_changes"] == []          # 1000 / 128: 8 batches an epoch
    assert [e["epoch"] for e in m["epochs"]] == [1, 2]
    assert m["snapshots"]["count"] == 1 + 2 + 2                          # untrained, 1, 3, ends of 1 and 2
    # a loaded model brings its history; evaluating it again does not add to it
    proc = run(*common, "--load", str(model), "--no-train", "--metrics", str(again))
    assert proc.returncode == 0, proc.stderr
    m2 = json.loads(again.read_text())
    assert m2["history"] == h and m2["snapshots"] == m["snapshots"]
    # a broken history is a one-line error
    with np.load(model) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["history"] = np.array(json.dumps({"evals": [{"kind": "full"}]}))
    np.savez(tmp_path / "bad.npz", **arrays)
    proc = run(*common, "--load", str(tmp_path / "bad.npz"), "--no-train")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "evals[0].per_class" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_evaluations_in_the_training_process_reach_the_history(data):
    """The window's worker records what it evaluates (through its run's evaluate)."""
    import queue

    from mnist_live.training.process import _Worker
    cfg = Config(hidden=(16,), epochs=1, batch_size=100, seed=1, no_train=True)
    arr = {"x_train": data.x_train[:500], "y_train": data.y_train[:500], "x_test": data.x_test[:200],
           "y_test": data.y_test[:200], "params": np.zeros(784 * 16 + 16 + 16 * 10 + 10, np.float32),
           "stamp": np.zeros(3, np.int64)}

    class Lock:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False
    w = _Worker(cfg, arr, None, Lock(), queue.Queue(), queue.Queue())
    w.trainer.train_batch()
    w.run.evaluate("subset")
    w.run.evaluate("full")
    assert [(r.kind, r.epoch, r.batch) for r in w.trainer.history.evals] == [("subset", 0, 1), ("full", 0, 1)]
    assert isinstance(w.trainer.history.evals[0], EvalRecord)


def test_history_members_are_told_apart_from_the_model_members(data):
    """For readers that accept only known members: history_member names exactly the new ones."""
    t = small_trainer(data)
    train(t, 2)
    names = set(t.state_arrays())
    ours = {n for n in names if history_member(n)}
    assert ours == {"history", "lr_scale", "snap_info", "snap_W1", "snap_b1", "snap_W2", "snap_b2"}
