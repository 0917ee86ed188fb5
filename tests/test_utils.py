"""utils.py: the shared metrics agree with scikit-learn and NumPy, and the text tables line up."""
import numpy as np
import pytest
from sklearn import metrics

from mnist_live import utils


@pytest.fixture
def labels():
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 10, 2000)
    y_pred = np.where(rng.random(2000) < 0.8, y_true, rng.integers(0, 10, 2000))
    return y_true, y_pred


def test_confusion_matrix_is_scikit_learns(labels):
    y_true, y_pred = labels
    ours = utils.confusion_matrix(y_true, y_pred)
    assert ours.shape == (10, 10) and ours.dtype == np.int64
    assert np.array_equal(ours, metrics.confusion_matrix(y_true, y_pred, labels=range(10)))


def test_accuracy_and_per_class_accuracy_are_scikit_learns(labels):
    y_true, y_pred = labels
    confusion = utils.confusion_matrix(y_true, y_pred)
    assert utils.accuracy(confusion) == pytest.approx(metrics.accuracy_score(y_true, y_pred), abs=1e-12)
    recall = metrics.recall_score(y_true, y_pred, labels=range(10), average=None)
    assert np.allclose(utils.per_class_accuracy(confusion), recall)


def test_an_absent_class_has_no_accuracy_rather_than_zero():
    y = np.array([0, 1, 1, 2])
    per_class = utils.per_class_accuracy(utils.confusion_matrix(y, y))
    assert per_class[:3].tolist() == [1.0, 1.0, 1.0] and np.isnan(per_class[3:]).all()
    assert np.isnan(utils.accuracy(np.zeros((10, 10), np.int64)))


def test_percentile_is_numpys_and_empty_is_nan():
    values = [3.0, 1.0, 40.0, 2.5, 7.0]
    assert utils.percentile(values, 95) == pytest.approx(np.percentile(values, 95))
    assert np.isnan(utils.percentile([], 50))


def test_the_text_tables_line_up():
    names = [str(i) for i in range(3)]
    confusion = np.array([[5, 0, 1], [0, 1234, 0], [2, 0, 9]])
    rows = utils.format_confusion(confusion, names).splitlines()
    assert len(rows) == 4 and len({len(r) for r in rows}) == 1, rows
    assert rows[2].split() == ["1", "0", "1234", "0"]
    lines = utils.format_per_class(np.array([0.5, 1.0, 0.25]), names, previous=np.array([0.4, 1.0, 0.5])).splitlines()
    assert lines[0].strip() == "0   50.00 %  (+10.00)" and lines[2].endswith("(-25.00)")
