"""training/health.py and the health records of history.py: each number of a HealthRecord
against brute force on the weights a spy copied before and after the step and the batch as
trained; the layers in order; the schedule; the warnings at the figures measured on real
runs; kept in the history, the model file (older files still load) and --metrics."""
import json

import numpy as np
import pytest

from mnist_live.neural_network import MLP
from mnist_live.training.config import Config
from mnist_live.training.health import (
    BAND_SAMPLE,
    HealthMonitor,
    band,
    health_warnings,
    is_due,
    keyed_warnings,
    series,
)
from mnist_live.training.history import (
    MAX_HEALTH_POINTS,
    PERCENTILES,
    HealthRecord,
    History,
    LayerHealth,
)
from mnist_live.training.loop import Observer, Run, train
from mnist_live.training.model_file import ModelFileError, read_model
from mnist_live.training.trainer import Trainer

SMALL = dict(hidden=(24, 16), epochs=1, batch_size=50, seed=2, lr_schedule="constant")   # 300 images: 6 batches


class BatchSpy(Observer):
    """The parameters before and after each step and the batch as trained (copied)."""

    def __init__(self):
        self.steps = []

    def before_batch(self, run):
        self._before = [p.copy() for p in run.trainer.net.params]

    def on_batch(self, run, stats):
        _, xb, yb = run.trainer.last_batch
        self.steps.append((self._before, [p.copy() for p in run.trainer.net.params], xb.copy(), yb.copy()))


def _net(params, sizes):
    net = MLP(sizes)
    net.set_params(params[::2], params[1::2])
    return net


@pytest.mark.parametrize("config", [dict(optimizer="adam", weight_decay=1e-3),
                                    dict(optimizer="momentum", dropout=0.3, augment=True),
                                    dict(optimizer="sgd")])
def test_each_number_is_the_steps_own(sample, config):
    trainer = Trainer(Config(**SMALL, **config), sample.x_train[:300], sample.y_train[:300])
    spy, sent = BatchSpy(), []
    run = Run(trainer, sample.x_test[:100], sample.y_test[:100], [spy, HealthMonitor(every=1, send=sent.append)])
    train(run)
    assert sent == trainer.history.health and len(sent) == 6
    wd = config.get("weight_decay", 0.0)
    for rec, (before, after, xb, yb), batch in zip(sent, spy.steps, range(1, 7)):
        assert (rec.epoch, rec.batch) == ((0, batch) if batch < 6 else (1, 0))
        net0 = _net(before, trainer.net.sizes)
        _, g = net0.loss_and_grads(xb, yb, weight_decay=wd)          # the step's batch, no dropout
        acts = net0.forward(xb, return_all=True)
        logits = acts[-2] @ before[-2] + before[-1]
        assert len(rec.layers) == 3
        for i, layer in enumerate(rec.layers):                        # input -> h1 first
            assert layer.grad_norm == pytest.approx(np.linalg.norm(g[2 * i]), rel=1e-4)
            dW = after[2 * i] - before[2 * i]
            assert layer.update_ratio == pytest.approx(np.linalg.norm(dW) / np.linalg.norm(before[2 * i]), rel=1e-4)
            np.testing.assert_allclose(layer.weights, np.percentile(after[2 * i], PERCENTILES), rtol=1e-5)
            out = acts[i + 1] if i < 2 else logits
            np.testing.assert_allclose(layer.activations, np.percentile(out, PERCENTILES), rtol=1e-4, atol=1e-6)
            if i < 2:
                assert layer.inactive == pytest.approx(float((out == 0).mean()))
                assert layer.silent == pytest.approx(float((out == 0).all(axis=0).mean()))
            else:
                assert np.isnan(layer.inactive) and np.isnan(layer.silent)


def test_bands_of_a_large_layer_come_from_a_sample_with_exact_ends():
    rng = np.random.default_rng(0)
    w = rng.standard_t(3, size=(784, 1024)).astype(np.float32)
    got, exact = band(w), np.percentile(w, PERCENTILES)
    assert w.size > BAND_SAMPLE and got[0] == w.min() and got[-1] == w.max()
    spread = exact[-2] - exact[1]
    np.testing.assert_allclose(got[1:-1], exact[1:-1], atol=0.01 * spread)
    assert band(w) == got                                             # the same subset every time


def test_the_schedule():
    assert [s for s in range(1, 450) if is_due(s, 100)] == [1, 3, 10, 30, 100, 200, 300, 400]
    assert [s for s in range(1, 30) if is_due(s, 5)] == [1, 3, 5, 10, 15, 20, 25]
    assert not any(is_due(s, 0) for s in range(1, 1000))


def _rec(ratios, silent=(0.0, 0.0), lr=1e-3, progress=0.5):
    layers = [LayerHealth(1.0, r, 0.5, s, (0.0,) * 9, (0.0,) * 9) for r, s in zip(ratios, (*silent, float("nan")))]
    return HealthRecord(progress, 0, 1, lr, tuple(layers))


HEALTHY = [0.0026, 0.0045, 0.021]      # SGD 0.1's first batches (bench/README.md, training health)


def test_warnings_are_said_at_the_figures_measured_on_real_runs():
    assert health_warnings([]) == [] and health_warnings([_rec(HEALTHY), _rec(HEALTHY)]) == []
    assert health_warnings([_rec([0.015, 0.022, 0.016])]) == []        # Adam 1e-3's first step: by design
    extreme = health_warnings([_rec([0.15, 0.22, 0.16])])              # Adam 1e-2's first step
    assert extreme == ["updates into Hidden 1 are 1/7 of the weights (about 1/1,000 is usual): learning rate too high?",
                       "updates into Hidden 2 are 1/5 of the weights (about 1/1,000 is usual): learning rate too high?"]
    sgd_1 = [_rec([0.026, 0.045, 0.21]), _rec([0.082, 0.15, 0.7]), _rec([0.046, 0.06, 0.16])]   # SGD 1.0: 1, 3, 10
    assert health_warnings(sgd_1[:1]) == []
    assert [w.split(" are")[0] for w in health_warnings(sgd_1[:2])] == ["updates into Hidden 2", "updates into Output"]
    assert [w.split(" are")[0] for w in health_warnings(sgd_1)] == [          # two in a row over 0.03 (0.09)
        "updates into Hidden 1", "updates into Hidden 2", "updates into Output"]
    dead = health_warnings([_rec(HEALTHY, silent=(0.78, 0.28))], names=["H1", "H2", "Out"])
    assert dead == ["78 % of H1 never fires on a whole batch: those neurons no longer learn (learning rate too high?)",
                    "28 % of H2 never fires on a whole batch: those neurons no longer learn (learning rate too high?)"]
    assert health_warnings([_rec(HEALTHY, silent=(0.13, 0.13))]) == []   # healthy runs: up to 13 %
    slow = [_rec([2.6e-6, 4.5e-6, 2.1e-5], lr=1e-4)]                       # SGD 1e-4
    assert len(health_warnings(slow)) == 3 and "too low?" in health_warnings(slow)[0]
    tail = [_rec(HEALTHY, lr=1e-3), _rec([1.4e-5, 1.5e-5, 1.1e-5], lr=4e-6)]   # a cosine schedule's end
    assert health_warnings(tail) == []


def test_the_monitor_says_each_warning_once(sample):
    """Catches: a warning said again with new numbers, or one layer's warning taken for
    another's (Hidden 1's and Hidden 2's are both said)."""
    trainer = Trainer(Config(**{**SMALL, "epochs": 2}, optimizer="adam", lr=0.05), sample.x_train[:300],
                      sample.y_train[:300])
    said = []
    train(Run(trainer, sample.x_test[:100], sample.y_test[:100], [HealthMonitor(every=1, log=said.append)]))
    seen, want = set(), []
    recs = trainer.history.health
    for n in range(1, len(recs) + 1):
        for key, text in keyed_warnings(recs[:n]):
            if key not in seen:
                seen.add(key)
                want.append(f"training health: {text}")
    assert said == want and len(said) == len(seen)
    assert {layer for kind, layer in seen if kind == "high"} >= {0, 1}


def test_history_keeps_them_bounded_and_a_rewound_snapshot_has_its_own():
    h = History()
    for i in range(MAX_HEALTH_POINTS + 1):
        h.add_health(_rec(HEALTHY, progress=i / 100))
    assert len(h.health) == MAX_HEALTH_POINTS // 2 + MAX_HEALTH_POINTS // 2 + 1 - (MAX_HEALTH_POINTS // 2) // 2
    assert h.health[-1].progress == MAX_HEALTH_POINTS / 100 and h.health[0].progress == 0.0
    assert [r.progress for r in h.health_until(3.0)] == [r.progress for r in h.health if r.progress <= 3.0]
    assert h.copy().health == h.health and h.copy().health is not h.health


def test_health_records_round_trip_through_json_and_the_model_file(sample, tmp_path):
    trainer = Trainer(Config(**SMALL, health_every=2), sample.x_train[:300], sample.y_train[:300])
    train(Run(trainer, sample.x_test[:100], sample.y_test[:100], [HealthMonitor(every=2)]))
    h = trainer.history
    assert [(r.epoch, r.batch) for r in h.health] == [(0, 1), (0, 2), (0, 4), (1, 0)]
    again = History.from_json(json.loads(json.dumps(h.to_json(), allow_nan=False)))
    assert again.to_json() == h.to_json() and np.isnan(again.health[0].layers[2].silent)
    assert again.health[0].layers[0].weights == h.health[0].layers[0].weights
    trainer.save(tmp_path / "m.npz")
    arrays, meta = read_model(tmp_path / "m.npz")
    loaded = Trainer(Config(**SMALL), sample.x_train[:300], sample.y_train[:300])
    loaded.restore(arrays, meta)
    assert loaded.history.to_json() == h.to_json()
    old = h.to_json()
    del old["health"]                                       # a file from before health records
    assert History.from_json(old).health == []


@pytest.mark.parametrize("change,field", [
    (lambda d: d.update(health="x"), "health"),
    (lambda d: d["health"][0].update(layers=[]), "health[0].layers"),
    (lambda d: d["health"][0]["layers"][1].update(silent=2), "health[0].layers[1].silent"),
    (lambda d: d["health"][0]["layers"][0]["weights"].pop(), "health[0].layers[0].weights"),
    (lambda d: d["health"][0].update(epoch=-1), "health[0].epoch"),
])
def test_a_bad_health_record_names_its_field(change, field):
    h = History()
    h.add_health(_rec(HEALTHY))
    d = json.loads(json.dumps(h.to_json(), allow_nan=False))
    change(d)
    with pytest.raises(ModelFileError, match=field.replace("[", r"\[").replace("]", r"\]")):
        History.from_json(d)


def test_the_headless_run_measures_and_its_metrics_keep_it(sample, capsys):
    from mnist_live.training.headless import run_headless
    data = sample.__class__(sample.name, sample.source, sample.class_names, sample.x_train[:300],
                            sample.y_train[:300], sample.x_test[:100], sample.y_test[:100])
    metrics, _ = run_headless(Config(**SMALL, headless=True, health_every=2), data)
    assert len(metrics["history"]["health"]) == 4 and metrics["health"]["records"] == 4
    assert metrics["health"]["every"] == 2 and metrics["health"]["warnings"] == []
    json.dumps(metrics, allow_nan=False)
    metrics, _ = run_headless(Config(**SMALL, headless=True, health_every=0), data)
    assert "health" not in metrics["history"] and metrics["health"]["records"] == 0


# ------------------------------------------------------------------ in the run library
def test_a_recorded_run_keeps_its_health_records_in_the_run_library(sample, tmp_path):
    from mnist_live.runs.library import RunLibrary
    from mnist_live.runs.recorder import Recording
    from mnist_live.training.headless import run_headless
    db = str(tmp_path / "runs.sqlite3")
    data = sample.__class__(sample.name, sample.source, sample.class_names, sample.x_train[:300],
                            sample.y_train[:300], sample.x_test[:100], sample.y_test[:100])
    config = Config(**{**SMALL, "epochs": 2}, headless=True, health_every=2)
    metrics, run = run_headless(config, data, observers=[Recording(db, config, data.summary())])
    with RunLibrary(db) as lib:
        (row,) = lib.runs()
        stored = lib.run(row["id"])["health"]
    assert stored == metrics["history"]["health"] == [r.to_json() for r in run.trainer.history.health]
    assert [(r["epoch"], r["batch"]) for r in stored] == [(0, 1), (0, 2), (0, 4), (1, 0), (1, 2), (1, 4), (2, 0)]


def test_a_schema_1_library_gains_the_health_table_and_keeps_its_runs(tmp_path):
    import sqlite3

    from fixtures_runs import DATASET
    from mnist_live.runs import library as run_library
    from mnist_live.runs import schema
    from mnist_live.runs.library import RunLibrary
    db = str(tmp_path / "old.sqlite3")
    con = sqlite3.connect(db)                                  # the library as schema 1 made it
    con.executescript(schema.SCHEMA.replace(schema.HEALTH_SCHEMA, "") + "PRAGMA user_version=1;")
    con.close()
    with RunLibrary(db) as lib:
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == run_library.SCHEMA_VERSION == 2
        rid = lib.start_run(Config(), DATASET)
        lib.transaction(lambda cur: cur.execute("INSERT INTO health VALUES (?, ?, ?, ?, ?, ?)",
                                                (rid, 0, 0.5, 0, 3, json.dumps(_rec(HEALTHY).to_json()))))
        assert lib.run(rid)["health"] == [json.loads(json.dumps(_rec(HEALTHY).to_json()))]
    with RunLibrary(db) as lib:                                # opened again: nothing to migrate
        assert lib.count() == 1 and len(lib.run(rid)["health"]) == 1
        lib.remove([rid])
        assert lib.conn.execute("SELECT COUNT(*) FROM health").fetchone()[0] == 0


def test_the_windows_monitor_measures_at_most_every_min_gap(sample):
    trainer = Trainer(Config(**SMALL), sample.x_train[:300], sample.y_train[:300])
    train(Run(trainer, sample.x_test[:100], sample.y_test[:100], [HealthMonitor(every=1, min_gap_s=1000.0)]))
    assert [(r.epoch, r.batch) for r in trainer.history.health] == [(0, 1)]


def test_series_are_one_layers_figure_over_time():
    """Catches: a plot fed another layer's figures, or another field's."""
    recs = [HealthRecord(p, 0, 1, 1e-3, tuple(LayerHealth(10 * i + p, 0.1 * i, 0.5, 0.0, tuple(range(9)),
                                                          tuple(float(i) for _ in range(9))) for i in range(3)))
            for p in (0.25, 0.5)]
    progress, g = series(recs, 1, "grad_norm")
    assert progress.tolist() == [0.25, 0.5] and g.tolist() == [10.25, 10.5]
    assert series(recs, 2, "update_ratio")[1].tolist() == pytest.approx([0.2, 0.2])
    _, bands = series(recs, 2, "activations")
    assert bands.shape == (2, 9) and (bands == 2.0).all()
    assert series([], 0, "weights")[1].shape == (0, 9)


def test_the_writer_applies_health_records_and_hand_off_files_from_before_them(tmp_path):
    from fixtures_runs import DATASET
    from mnist_live.runs import writer
    from mnist_live.runs.library import RunLibrary
    from mnist_live.runs.schema import run_row
    db = str(tmp_path / "runs.sqlite3")
    row = run_row(Config(), DATASET, "host", started=1.0)
    doc = {"row": row, "run_id": None, "evals": [0, []], "losses": [0, [(0.1, 2.0)]], "lrs": [0, []], "end": None}
    with RunLibrary(db) as lib:
        rid = writer.apply(lib, doc)                                   # an older hand-off file: no "health"
        assert lib.run(rid)["health"] == [] and lib.run(rid)["losses"] == [[0.1, 2.0]]
        rec = _rec(HEALTHY).to_json()
        later = {**doc, "run_id": rid, "losses": [1, []]}
        writer.apply(lib, {**later, "health": [0, [(0.5, 0, 1, rec), (0.6, 0, 2, rec)]]})
        writer.apply(lib, {**later, "health": [1, [(0.6, 0, 2, rec)]]})         # the same again: no duplicate
        assert lib.run(rid)["health"] == [json.loads(json.dumps(rec))] * 2


def test_no_warning_is_said_in_words_true_of_the_newest_record():
    """Catches: "the figures are within their usual ranges" written while the plot shows the
    update ratio under the shaded band at a schedule's tail (seen in F4 after a full run)."""
    from mnist_live.training.health import USUAL_RATIO, all_is_well

    def record(ratio, lr):
        layers = tuple(LayerHealth(0.5, ratio, 0.2, 0.0, (0.0,) * 9, (0.0,) * 9) for _ in range(3))
        return HealthRecord(1.0, 1, 0, lr, layers)
    inside = record(1e-3, 1e-3)
    assert all_is_well([inside]) == "no warnings: the figures are within their usual ranges"
    tail = record(USUAL_RATIO[0] / 10, 1e-5)
    said = all_is_well([inside, tail])
    assert "under the shaded band" in said and "1 % of its peak" in said
    assert "within their usual ranges" not in all_is_well([inside, record(USUAL_RATIO[1] * 2, 1e-3)])
