"""Model files as a hostile user (or another library) writes them: every field of the
training state validated, only the format's members read, headers checked before data,
weights-only files from other code explorable, and the data set a file was trained on."""
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, run  # noqa: F401
from mnist_live.training.config import Config
from mnist_live.training.model_file import ModelFileError, read_model
from mnist_live.training.trainer import Trainer, evaluate


@pytest.fixture(scope="module")
def data():
    from mnist_live import data_loader
    return data_loader.load_dataset(offline=True, log=lambda *a: None)


@pytest.fixture(scope="module")
def mid_epoch(data, tmp_path_factory):
    """A model saved mid-epoch (perm, batch and progress all in use), as {name: array}."""
    t = Trainer(Config(hidden=(16,), batch_size=50, epochs=2), data.x_train[:500], data.y_train[:500])
    for _ in range(3):
        t.train_batch()
    path = tmp_path_factory.mktemp("m") / "mid.npz"
    t.save(path)
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def edited(tmp_path, arrays, **changes):
    """Save `arrays` with `changes`; meta changes are given as meta_<key>=value (config keys as cfg_<key>)."""
    arrays = dict(arrays)
    meta = json.loads(str(arrays["meta"]))
    for k, v in changes.items():
        if k.startswith("cfg_"):
            meta["config"][k[4:]] = v
        elif k.startswith("meta_"):
            meta[k[5:]] = v
        else:
            arrays[k] = v
    arrays["meta"] = np.array(json.dumps(meta))
    path = tmp_path / "edited.npz"
    np.savez(path, **arrays)
    return path


# ------------------------------------------------------------- training state (4)
@pytest.mark.parametrize("change, field", [
    (dict(perm=lambda p: np.where(p == 0, 10 ** 6, p)), "perm"),          # out of range
    (dict(perm=lambda p: p.reshape(-1, 2)), "perm"),                     # 2-D
    (dict(perm=lambda p: np.zeros_like(p)), "perm"),                     # not a permutation
    (dict(progress=lambda p: np.array([1, 2, 3])), "progress"),          # wrong length
    (dict(progress=lambda p: np.array([10, 20])), "progress"),           # more correct than seen
    (dict(epoch=lambda e: np.array(-10 ** 12)), "epoch"),
    (dict(epoch=lambda e: np.array(1.5)), "epoch"),
    (dict(batch=lambda b: np.array(10 ** 6)), "batch"),
    (dict(opt_t=lambda t: np.array(-3)), "opt_t"),
    (dict(opt_M0=lambda m: m[:10]), "opt_M0"),
    (dict(opt_V1=lambda v: -np.ones_like(v)), "opt_V1"),
    (dict(W1=lambda w: np.full_like(w, np.nan)), "W1"),
    (dict(cfg_lr="abc"), "meta.config.lr"),
    (dict(cfg_lr=-1.0), "meta.config.lr"),
    (dict(cfg_batch_size=0), "meta.config.batch_size"),
    (dict(cfg_batch_size="128"), "meta.config.batch_size"),
    (dict(cfg_epochs=0), "meta.config.epochs"),
    (dict(cfg_optimizer="rmsprop"), "meta.config.optimizer"),
    (dict(cfg_activation=3), "meta.config.activation"),
    (dict(cfg_hidden=[16, -1]), "meta.config.hidden"),
    (dict(cfg_dropout=1.0), "meta.config.dropout"),
    (dict(cfg_momentum=1e9), "meta.config.momentum"),
    (dict(meta_sizes=[784, 17, 10]), "meta.sizes"),
    (dict(meta_rng_state={"bit_generator": "PCG64", "state": "x"}), "meta.rng_state"),
])
def test_every_field_of_the_training_state_is_validated(tmp_path, mid_epoch, change, field):
    changes = {k: (v(mid_epoch[k]) if callable(v) else v) for k, v in change.items()}
    path = edited(tmp_path, mid_epoch, **changes)
    with pytest.raises(ModelFileError) as e:
        read_model(path)
    assert field in str(e.value) and "\n" not in str(e.value)


def test_a_bad_field_is_a_one_line_error_on_the_command_line(tmp_path, mid_epoch):
    path = edited(tmp_path, mid_epoch, epoch=np.array(-10 ** 12))
    proc = run("--headless", "--offline", "--load", str(path), "--train-size", "500", timeout=30)
    assert_one_line_error(proc, 1, "epoch")


def test_the_unedited_file_resumes(tmp_path, mid_epoch, data):
    arrays, meta = read_model(edited(tmp_path, mid_epoch))
    t = Trainer(Config(hidden=(16,), batch_size=50, epochs=2), data.x_train[:500], data.y_train[:500])
    t.restore(arrays, meta)
    assert (t.epoch, t.batch) == (0, 3) and t.perm is not None


# ------------------------------------------------------------- members and headers (5)
def _add_member(path, name, descr, shape, data_bytes):
    """Append a .npy member whose header claims `shape` while holding `data_bytes` of data."""
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open(name, "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
            chunk = bytes(1 << 20)
            left = data_bytes
            while left > 0:
                f.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)


def test_unused_members_are_never_read(tmp_path, mid_epoch):
    path = edited(tmp_path, mid_epoch)
    _add_member(path, "junk.npy", "<f4", (2 ** 24,), 2 ** 26)      # 64 MiB of zeros, ~0.3 MB compressed
    _add_member(path, "notes.npy", "|O", (3,), 0)                   # an object member nobody asked for
    tracemalloc.start()
    try:
        arrays, _ = read_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "junk" not in arrays and "notes" not in arrays
    assert peak < 8 * 2 ** 20, peak                                 # measured ~0.2 MB; the junk is 64 MiB


def test_a_header_claiming_a_huge_array_is_named_not_read(tmp_path, mid_epoch):
    arrays = {k: v for k, v in mid_epoch.items() if k != "W1"}
    path = edited(tmp_path, arrays)
    _add_member(path, "W1.npy", "<f4", (10 ** 6, 10 ** 6), 64)      # claims 10^12 floats (4 TB)
    with pytest.raises(ModelFileError, match=r"W1 is shaped \(1000000, 1000000\).*\(784, 16\)"):
        read_model(path)


def test_a_perm_header_claiming_a_billion_entries_is_refused(tmp_path, mid_epoch):
    arrays = {k: v for k, v in mid_epoch.items() if k != "perm"}
    path = edited(tmp_path, arrays)
    _add_member(path, "perm.npy", "<i8", (10 ** 9,), 64)              # 8 GB claimed
    with pytest.raises(ModelFileError, match="perm has 1,000,000,000 entries"):
        read_model(path)


def test_a_foreign_header_claiming_a_huge_layer_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, b2=np.zeros(10))
    _add_member(path, "W1.npy", "<f4", (784, 10 ** 6), 64)            # headers of a 784-1000000-10 net
    _add_member(path, "b1.npy", "<f4", (10 ** 6,), 64)
    _add_member(path, "W2.npy", "<f4", (10 ** 6, 10), 64)
    with pytest.raises(ModelFileError, match="wider than 16384"):
        read_model(path)


def test_truncated_member_data_is_a_model_file_error(tmp_path, mid_epoch):
    arrays = {k: v for k, v in mid_epoch.items() if k != "W1"}
    path = edited(tmp_path, arrays)
    _add_member(path, "W1.npy", "<f4", (784, 16), 100)             # 100 of 50,176 bytes
    with pytest.raises(ModelFileError, match="not a readable model"):
        read_model(path)


# ------------------------------------------------------------- weights-only files (6)
def _weights(data, hidden=(32, 16), dtype=np.float64, epochs=1):
    """Weights trained here, as plain (fan_in, fan_out) arrays, and their test accuracy."""
    t = Trainer(Config(hidden=hidden, epochs=epochs, batch_size=64), data.x_train, data.y_train)
    while not t.finished:
        t.train_batch()
    ev = evaluate(t.net, data.x_test, data.y_test)
    arrays = {}
    for i, (W, b) in enumerate(zip(t.net.weights, t.net.biases), start=1):
        arrays[f"W{i}"], arrays[f"b{i}"] = W.astype(dtype), b.astype(dtype)
    return arrays, ev.accuracy


@pytest.fixture(scope="module")
def plain_weights(data):
    return _weights(data)


@pytest.mark.parametrize("layout, dtype", [("numpy", np.float64), ("numpy", np.float32),
                                           ("pytorch", np.float32), ("pytorch", np.float64)])
def test_weights_only_npz_is_read_in_either_layout(tmp_path, plain_weights, layout, dtype):
    arrays, _ = plain_weights
    path = tmp_path / "w.npz"
    out = {k: (v.T if layout == "pytorch" and k[0] == "W" else v).astype(dtype) for k, v in arrays.items()}
    np.savez(path, **out)
    got, meta = read_model(path)
    assert meta["sizes"] == [784, 32, 16, 10]
    assert ("PyTorch" in meta["foreign"]) == (layout == "pytorch")
    for k, v in arrays.items():
        assert got[k].dtype == np.float32 and got[k].flags.c_contiguous
        np.testing.assert_allclose(got[k], v, rtol=1e-6)


@pytest.mark.slow
def test_weights_only_npz_is_explored_and_trained_further(tmp_path, plain_weights, data):
    arrays, acc = plain_weights
    path = tmp_path / "torch.npz"
    np.savez(path, **{k: (v.T if k[0] == "W" else v).astype(np.float32) for k, v in arrays.items()})
    metrics = tmp_path / "m.json"
    proc = run("--headless", "--offline", "--load", str(path), "--no-train", "--metrics", str(metrics))
    assert proc.returncode == 0, proc.stderr
    assert "784-32-16-10" in proc.stdout and "PyTorch" in proc.stdout
    assert abs(json.loads(metrics.read_text())["test_accuracy"] - acc) < 1e-3     # same network
    out = tmp_path / "more.npz"
    proc = run("--headless", "--offline", "--load", str(path), "--epochs", "1", "--train-size", "1000",
               "--save", str(out))
    assert proc.returncode == 0, proc.stderr
    arrays2, meta2 = read_model(out)                                  # now a file of ours
    assert "foreign" not in meta2 and meta2["config"]["hidden"] == [32, 16] and int(arrays2["epoch"]) == 1


@pytest.mark.parametrize("shapes, fragment", [
    ({"W1": (784, 32), "b1": (32,), "W2": (16, 10), "b2": (10,)}, "do not chain"),
    ({"W1": (784, 32), "b1": (16,), "W2": (32, 10), "b2": (10,)}, "do not chain"),
    ({"W1": (784, 32), "b1": (32,), "W2": (32, 9), "b2": (9,)}, "do not chain"),
    ({"W1": (784, 10)}, "no W1 and b1"),
])
def test_weights_that_do_not_form_a_network_are_refused(tmp_path, shapes, fragment):
    path = tmp_path / "w.npz"
    np.savez(path, **{k: np.zeros(s, np.float32) for k, s in shapes.items()})
    proc = run("--headless", "--offline", "--load", str(path), "--no-train", timeout=30)
    assert_one_line_error(proc, 1, fragment)


def test_integer_weights_are_refused(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, W1=np.zeros((784, 10), np.int32), b1=np.zeros(10, np.int32))
    with pytest.raises(ModelFileError, match="W1 holds int32"):
        read_model(path)


# ------------------------------------------------------------- data set of a file (7)
@pytest.mark.slow
def test_loading_with_another_data_set_says_what_the_file_was_trained_on(tmp_path):
    model = tmp_path / "fashion.npz"
    assert run("--headless", "--offline", "--dataset", "fashion", "--hidden", "8", "--epochs", "1",
               "--train-size", "200", "--save", str(model)).returncode == 0
    proc = run("--headless", "--offline", "--dataset", "mnist", "--load", str(model), "--no-train")
    assert proc.returncode == 0, proc.stderr
    assert "trained on Fashion-MNIST" in proc.stderr and "warning" in proc.stderr
    proc = run("--headless", "--offline", "--load", str(model), "--no-train")
    assert proc.returncode == 0, proc.stderr
    assert "Fashion-MNIST, the data set" in proc.stdout and "warning" not in proc.stderr
