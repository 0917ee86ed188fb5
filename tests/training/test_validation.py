"""The validation split (--val): which images it holds out, what a run with one evaluates and
when (the split at each epoch's end, the test set once at the end; a pruned trial never on
the test set), and --val through main.py."""
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run
from mnist_live.training.config import Config
from mnist_live.training.loop import Observer, Run, StopTraining, train
from mnist_live.training.split import SplitError, cut
from mnist_live.training.trainer import Trainer

SMALL = dict(hidden=(16,), epochs=2, batch_size=125, seed=3, lr_schedule="constant")


def test_the_split_is_the_last_training_images_and_train_size_cuts_the_rest(sample):
    data = cut(sample, val=1000, train_size=300, test_size=200)
    n = len(sample.y_train)
    assert (data.x_val == sample.x_train[n - 1000:]).all() and (data.y_val == sample.y_train[n - 1000:]).all()
    assert (data.x_train == sample.x_train[:300]).all() and len(data.y_test) == 200
    assert data.summary() == {**sample.summary(), "train": 300, "test": 200, "val": 1000}
    whole = cut(sample)
    assert whole.val is None and len(whole.y_train) == n and "val" not in whole.summary()
    big = cut(sample, val=n - 10)                                   # --train-size larger than what is left
    assert len(big.y_train) == 10 and not set(map(bytes, big.x_train)) & set(map(bytes, big.x_val[:50]))
    with pytest.raises(SplitError, match="leave none of the 5,000 training images"):
        cut(sample, val=n)


class Kinds(Observer):
    def __init__(self):
        self.kinds = []

    def on_evaluation(self, run, record):
        self.kinds.append((record.kind, record.position, record.n))


def test_a_run_with_a_split_validates_each_epoch_and_tests_once_at_the_end(sample):
    data = cut(sample, val=500, train_size=500, test_size=200)
    spy = Kinds()
    outcome = train(Run(Trainer(Config(**SMALL), data.x_train, data.y_train), data.x_test, data.y_test, [spy],
                        val=data.val))
    assert spy.kinds == [("val", (1, 0), 500), ("val", (2, 0), 500), ("full", (2, 0), 200)]
    assert outcome.val.kind == "val" and outcome.final.kind == "full" and outcome.final.n == 200
    plain = Kinds()
    train(Run(Trainer(Config(**SMALL), data.x_train, data.y_train), data.x_test, data.y_test, [plain]))
    assert [k for k, _, _ in plain.kinds] == ["full", "full"]         # without a split: as before


class PruneAt(Observer):
    def on_batch(self, run, stats):
        if stats.batch == 2:
            run.evaluate(run.subset_kind)
            raise StopTraining("pruned", evaluate="val")


def test_a_pruned_run_is_validated_and_never_tested(sample):
    data = cut(sample, val=500, train_size=500, test_size=200)
    spy = Kinds()
    run = Run(Trainer(Config(**SMALL), data.x_train, data.y_train), data.x_test, data.y_test, [PruneAt(), spy],
              val=data.val, subset_size=100)
    outcome = train(run)
    assert spy.kinds == [("val_subset", (0, 2), 100), ("val", (0, 2), 500)]
    assert outcome.status == "pruned" and outcome.final is None and outcome.val.n == 500
    with pytest.raises(ValueError, match="no 'val' evaluation"):
        Run(run.trainer, data.x_test, data.y_test).evaluate("val")


def test_headless_with_val_prints_and_writes_both(tmp_path):
    metrics = tmp_path / "m.json"
    proc = run("--headless", "--offline", "--no-runs", "--hidden", "16", "--epochs", "2", "--train-size", "500",
               "--val", "1000", "--metrics", str(metrics))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("val acc") == 2 and "test acc" not in proc.stdout.split("Validation accuracy")[0]
    assert "Validation accuracy" in proc.stdout and "on 1,000 held-out training images" in proc.stdout
    m = json.loads(metrics.read_text())
    assert m["val_size"] == 1000 and 0 < m["val_accuracy"] <= 1 and "val_accuracy" in m["epochs"][0]
    assert [e["kind"] for e in m["history"]["evals"]] == ["val", "val", "full"]
    assert m["dataset"]["val"] == 1000 and m["dataset"]["train"] == 500
    assert np.isclose(m["test_accuracy"], np.trace(np.array(m["confusion_matrix"])) / 1000)


@pytest.mark.parametrize("args, fragment", [
    (["--headless", "--val", "5000"], "leave none of the 5,000 training images"),
    (["--val", "1000"], "--val holds out a validation split for --headless runs and sweeps"),
    (["--headless", "--val", "-1"], "argument --val: must be >= 0"),
])
def test_bad_val_is_one_line(args, fragment):
    proc = run("--offline", "--no-runs", "--hidden", "16", "--epochs", "1", *args)
    assert_one_line_error(proc, 2, fragment)
    assert "usage:" not in proc.stderr                                # one line, no usage block
