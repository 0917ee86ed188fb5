"""What a newcomer trips over: Esc that quits, noisy per-class changes, stale rates and
messages, cut or overlapping text, rewinding past the live weights, settings that do
not come back. Each test drives the real window (dummy video driver) or the pure
functions behind it."""
import re

import numpy as np
import pygame
import pytest

from mnist_live.training.history import EvalRecord
from mnist_live.window.regions.header import Header, Legend
from mnist_live.window.regions.network import NetworkColumns
from mnist_live.window.regions.overlays import HelpOverlay, MapOverlay
from mnist_live.window.regions.panel import Panel
from mnist_live.window.regions.portrait import FilmStrip
from window_driver import draw_region, key, open_app, run_until, settle


def press(app, k, mod=0):
    key(k, mod)
    app.frame()


def drawn_texts(app, monkeypatch, draw, colors=None):
    """[(text, rect)] of every string `draw()` blits through the app's text cache (and
    each one's colour in the dict `colors`)."""
    drawn = []
    real = app.text.blit

    def recording(target, text, pos, size, color=None, *args, **kwargs):
        rect = real(target, text, pos, size, *(() if color is None else (color,)), *args, **kwargs)
        drawn.append((text, rect))
        if colors is not None:
            colors[text] = color
        return rect
    monkeypatch.setattr(app.text, "blit", recording)
    draw()
    monkeypatch.setattr(app.text, "blit", real)
    return [(t, r) for t, r in drawn if t.strip()]


def evaluation(kind, per_class, epoch, batch, n):
    per = np.asarray(per_class, np.float64)
    conf = np.diag(np.full(10, n // 10))
    return EvalRecord(epoch + batch / 40, kind, float(per.mean()), tuple(per), epoch, batch, int(conf.sum()),
                      confusion=conf)


# ------------------------------------------------------------------ 1. Esc steps back
def test_esc_steps_back_one_level_at_a_time_and_never_quits(sample):
    app = open_app(sample)
    press(app, pygame.K_f)                                   # a filter
    press(app, pygame.K_d)                                   # drawing
    assert app.state.drawing and app.state.mistakes_only
    press(app, pygame.K_3, pygame.KMOD_SHIFT)               # explain class 3
    press(app, pygame.K_5, pygame.KMOD_CTRL)                # rather than 5
    press(app, pygame.K_v)                                   # a dream
    press(app, pygame.K_x)                                   # an overlay
    st = app.state
    assert st.overlay == "confusion" and st.dream is not None and st.contrast_class == 5
    steps = []
    for _ in range(8):
        press(app, pygame.K_ESCAPE)
        assert st.running, "Esc never quits"
        steps.append((st.overlay, st.dream is None, st.contrast_class, st.explain_class, st.drawing,
                      st.mistakes_only))
    assert steps[0] == (None, False, 5, 3, True, True)          # the overlay closes first
    assert steps[1] == (None, True, 5, 3, True, True)           # then the dream ends
    assert steps[2][2] is None and steps[2][3] == 3                     # then "rather than"
    assert steps[3][3] is None and steps[3][4]                          # then the explained class
    assert not steps[4][4] and steps[4][5]                              # then drawing
    assert not steps[5][5]                                              # then the filter
    assert steps[6] == steps[5] and "Q quits" in st.toast              # nothing left: says how to quit
    press(app, pygame.K_q)
    assert not st.running


def test_the_help_says_esc_goes_back_and_q_quits():
    from mnist_live.window.keys import KEYS
    rows = {k.label: k for k in KEYS}
    assert "back" in rows["Esc"].help and "never quits" in rows["Esc"].help
    assert "quit" in rows["Q"].help


# --------------------------------------------------- 2. per-class changes, like with like
def test_per_class_changes_compare_full_test_set_evaluations_only(sample, monkeypatch):
    from mnist_live.window.view_model import WeightsStamp
    app = open_app(sample)
    tele = app.tele
    tele.n_batches, app.display.stamp = 40, WeightsStamp(1, 0, 30)      # the weights on screen: batch 30
    rng = np.random.default_rng(0)
    tele.apply(evaluation("full", np.full(10, 0.1), 0, 0, 1000))
    tele.apply(evaluation("subset", 0.8 + 0.15 * rng.random(10), 0, 20, 1000))
    tele.apply(evaluation("subset", 0.8 + 0.15 * rng.random(10), 0, 30, 1000))     # swings from noise
    change = re.compile(r"^[+-]\d+\.\d$")

    def panel():
        return drawn_texts(app, monkeypatch, lambda: draw_region(app, app.region(Panel)))
    texts = [t for t, _ in panel()]
    assert not [t for t in texts if change.match(t)], "a subset's per-class figures are not compared"
    assert any("subset" in t and "too noisy" in t for t in texts), texts
    tele.apply(evaluation("full", np.full(10, 0.95), 1, 0, 1000))
    texts = [t for t, _ in panel()]
    assert sorted(t for t in texts if change.match(t)) == ["+85.0"] * 10       # full with full: since untrained
    assert any("since untrained" in t for t in texts), texts


# ------------------------------------------------------------------- 9. samples/s
def batch_report(b, samples, t):
    from mnist_live.training.messages import BatchReport
    return BatchReport(0, b, 1000, ((b / 1000, 1.0),), 0.5, 0.01, samples, t)


def test_rate_is_of_the_last_seconds_of_training_only():
    from mnist_live.training.messages import Position
    from mnist_live.window.telemetry import Telemetry
    tele = Telemetry()
    for i in range(30):                                  # full speed: 6,400 a second
        tele.apply(batch_report(i + 1, 640 * (i + 1), 5.0 + 0.1 * i), now=5.0 + 0.1 * i)
    assert tele.samples_per_s(now=7.95) == pytest.approx(6400, rel=0.01)
    tele.apply(Position(0, 30, True), now=8.0)           # paused
    assert tele.samples_per_s(now=8.5) is None           # no rate while paused, not a decaying one
    tele.apply(Position(0, 30, False), now=20.0)
    tele.speed_changed()                                 # [ : 1 s a batch from here
    s = 640 * 30
    for i in range(3):
        s += 128
        tele.apply(batch_report(31 + i, s, 21.0 + i), now=21.0 + i, full_speed=False)
        assert tele.samples_per_s(now=21.0 + i) in (None, pytest.approx(128, rel=0.01))   # never the old rate
    assert tele.samples_per_s(now=23.2) == pytest.approx(128, rel=0.01)
    assert all(r == pytest.approx(6400, rel=0.01) for r in tele.full_speed_rates)      # the pause is no rate


def test_the_panel_says_paused_while_paused(sample, monkeypatch):
    app = open_app(sample)
    app.tele.trained_here, app.tele.paused = True, True
    texts = [t for t, _ in drawn_texts(app, monkeypatch, lambda: draw_region(app, app.region(Panel)))]
    line = next(t for t in texts if t.startswith("epoch "))
    assert line.endswith("paused") and "samples/s" not in line, line


# ------------------------------------------------------------------------ 10. wording
def test_a_no_train_session_does_not_say_training_finished():
    from mnist_live.training.messages import Finished
    from mnist_live.window.telemetry import Telemetry
    said = Telemetry(paused=True, no_train=True).apply(Finished(2))
    assert said == "model trained for 2 epochs; not training (--no-train)"
    assert Telemetry().apply(Finished(1)) == "training finished after 1 epoch"


def test_fashion_says_images_everywhere(fashion, monkeypatch):
    app = open_app(fashion)
    press(app, pygame.K_f)
    press(app, pygame.K_f)
    assert app.state.toast == "browsing all test images"
    settle(app)
    app.needs_draw = True
    app.frame()
    texts = [t for t, _ in drawn_texts(app, monkeypatch, lambda: app.draw(app.screen))]
    assert not [t for t in texts if "digit" in t.lower()], [t for t in texts if "digit" in t.lower()]
    press(app, pygame.K_h)
    texts = [t for t, _ in drawn_texts(app, monkeypatch, lambda: app.draw(app.screen))]
    assert not [t for t in texts if "digit" in t.lower()], [t for t in texts if "digit" in t.lower()]


def test_strip_names_the_true_class_of_a_mistake_and_the_weights_it_was_judged_by(fashion, monkeypatch):
    app = open_app(fashion)
    settle(app)
    press(app, pygame.K_f)
    app.needs_draw = True
    app.frame()
    texts = [t for t, _ in drawn_texts(app, monkeypatch, lambda: app.region(FilmStrip).draw(app.screen, app.scene()))]
    short = app.scene().short_names
    wrong = [t for t in texts if ">" in t]
    assert wrong and all(t.split(">")[0] and any(n.startswith(t.split(">")[0]) for n in short) for t in wrong), texts
    assert not [t for t in texts if t.startswith("as ")]
    assert "with the untrained weights" in texts[0] and "pass of" not in texts[0], texts[0]


def test_history_caption_wording():
    from mnist_live.window.regions.panel import history_caption
    rows = [(q, 3, 0.1) for q in range(4)]
    assert history_caption(rows, 7, [str(d) for d in range(10)], str)[0] == "wrong at every snapshot, read as 3 now"


def test_g_cycles_relevance_gradient_off_in_relevance_mode_and_says_so(sample):
    app = open_app(sample)
    maps = []
    for _ in range(4):
        press(app, pygame.K_g)
        maps.append((None if app.display.view.saliency is None else app.display.view.saliency.copy(), app.state.toast))
    rel = app.display.view.relevance
    assert maps[0][0] is not None and "relevance" in maps[0][1]
    gradient = app.display.net.input_gradient(app.display.view.x, app.display.view.explained)
    assert maps[1][0] is not None and np.allclose(maps[1][0], gradient) and "d pixel" in maps[1][1]
    assert not np.allclose(maps[0][0], maps[1][0]) and rel is not None
    assert maps[2][0] is None and "off" in maps[2][1]
    assert maps[3][0] is not None and "relevance" in maps[3][1]
    press(app, pygame.K_g)
    press(app, pygame.K_g)
    press(app, pygame.K_c)                                  # contribution mode: no relevance, so G is
    press(app, pygame.K_g)                                  # off -> gradient -> off
    assert app.display.view.saliency is not None and "d pixel" in app.state.toast
    press(app, pygame.K_g)
    assert app.display.view.saliency is None


# -------------------------------------------------------------------- 4. stale text
def test_messages_and_legend_belong_to_the_view_on_screen(sample, monkeypatch):
    app = open_app(sample)
    settle(app)
    press(app, pygame.K_PLUS)                               # "... connections per layer pair"
    assert app.state.toast
    press(app, pygame.K_x)
    assert app.state.toast == "", "the network's message is not left over the confusion matrix"

    def legend():
        app.region(Legend)._picture = None                          # draw it afresh (not its cached picture)
        texts = drawn_texts(app, monkeypatch, lambda: app.draw(app.screen))
        return [t for t, r in texts if app.layout.legend.contains(r)]
    assert not [t for t in legend() if "lines" in t or "activation" in t]
    assert any("cell" in t for t in legend())
    press(app, pygame.K_x)
    press(app, pygame.K_p)
    run_until(app, lambda: app.display.map_points is not None)
    texts = legend()
    assert not [t for t in texts if "lines" in t or "activation" in t], texts
    assert any("hollow" in t for t in texts), texts
    press(app, pygame.K_ESCAPE)
    assert any("lines" in t for t in legend())
    press(app, pygame.K_b)                                  # the run library's leaderboard
    texts = legend()
    assert not [t for t in texts if "lines" in t or "activation" in t], texts
    assert any("click a row" in t for t in texts), texts


# --------------------------------------------------------------- 5. overlaps and cuts
def assert_no_overlap_or_cut(texts, where):
    """No two text rectangles overlap and none was cut with '...' (TextCache.fit's sign)."""
    cut = [t for t, _ in texts if t.endswith("...") and not t.endswith("s...")]   # "passing..." is a word
    assert not cut, (where, cut)
    for i, (a, ra) in enumerate(texts):
        for b, rb in texts[i + 1:]:
            assert not ra.colliderect(rb), (where, a, b)


def trained_history(app, n_classes_evals=12):
    """Evaluations, a loss curve and two learning-rate changes close together, as a run has them."""
    rng = np.random.default_rng(1)
    tele = app.tele
    tele.trained_here, tele.n_batches, tele.epoch, tele.batch = True, 40, 2, 10
    for i in range(120):
        from mnist_live.training.messages import BatchReport
        tele.apply(BatchReport(i // 40, i % 40 + 1, 40, (((i + 1) / 40, 2.0 / (1 + i)),), 0.9, 0.001, 128 * (i + 1),
                               1.0 + i))
    for e in range(n_classes_evals):
        kind = "full" if e % 4 == 0 else "subset"
        per = np.clip(0.9 + 0.01 * e + 0.005 * rng.standard_normal(10), 0, 1)
        tele.apply(evaluation(kind, per, e // 4, (e % 4) * 10, 1000))
    tele.lr_changes = [(1.50, 0.002), (1.53, 0.004)]


@pytest.mark.parametrize("size", [(1280, 720), (1600, 900)])
@pytest.mark.parametrize("dataset", ["mnist", "fashion"])
def test_panel_charts_and_overlays_have_no_overlapping_or_cut_text(sample, fashion, size, dataset, monkeypatch):
    app = open_app(sample if dataset == "mnist" else fashion, size)
    settle(app)
    trained_history(app)
    app.state.speed = 7                                   # slowest motion: the longest status line
    app.config = app.config.replace(no_train=False)
    app.link = type("Link", (), {"send": lambda self, order: None})()     # status reads the mode only
    views = {"bars": lambda: None, "class chart": lambda: setattr(app.state, "class_chart", True)}
    for name, setup in views.items():
        setup()
        texts = drawn_texts(app, monkeypatch, lambda: draw_region(app, app.region(Panel)))
        assert_no_overlap_or_cut([(t, r) for t, r in texts if app.region(Panel).rect.contains(r)], name)
    app.link = None
    for name, k in (("confusion", pygame.K_x), ("help", pygame.K_h), ("map", pygame.K_p)):
        press(app, k)
        if name == "map":
            run_until(app, lambda: app.display.map_points is not None)
        app.region(Legend)._picture = app.region(MapOverlay)._picture = None
        texts = drawn_texts(app, monkeypatch, lambda: app.draw(app.screen))
        if name == "help":                                # what the help box covers is not on screen
            texts = drawn_texts(app, monkeypatch, lambda: app.region(HelpOverlay).draw(app.screen, app.scene()))
        on_top = [(t, r) for t, r in texts if not app.layout.panel.contains(r) and not app.layout.header.contains(r)]
        assert_no_overlap_or_cut(on_top, name)
        press(app, pygame.K_ESCAPE)


# ------------------------------------------------------- 8. per-class accuracy told apart
def test_bars_zoom_to_the_data_and_mark_the_hardest_class(sample, monkeypatch):
    from mnist_live.window.regions.charts import bar_floor
    from mnist_live.window.regions.palette import WRONG
    assert bar_floor([0.97, 0.993]) == pytest.approx(0.95)
    assert bar_floor([0.08, 0.2]) == 0.0                         # an untrained network: the whole scale
    app = open_app(sample)
    per = np.array([0.99, 0.993, 0.98, 0.97, 0.985, 0.99, 0.99, 0.975, 0.96, 0.98])
    app.tele.apply(evaluation("full", per, 2, 0, 1000))
    bars = app.region(Panel).bars.bar_rects(app.names)
    colors = {}
    texts = drawn_texts(app, monkeypatch, lambda: draw_region(app, app.region(Panel)), colors)

    def filled(c):
        row = pygame.surfarray.array3d(app.screen)[bars[c].x:bars[c].right, bars[c].centery]
        return int((np.abs(row.astype(int) - np.array(app.region(Panel).bars.fill_color)).sum(1) < 30).sum())
    assert filled(1) - filled(3) > 0.3 * bars[0].width, "99.3 % and 97 % look different"
    assert any(t == "bars from 94 %" for t, _ in texts), [t for t, _ in texts]      # 2 below the lowest, 96 %
    assert colors[app.names[8]] == WRONG and colors[app.names[3]] != WRONG      # the hardest class marked


def test_class_chart_lines_start_at_the_first_evaluation(sample):
    app = open_app(sample)
    trained_history(app)
    pts, _ = app.region(Panel).class_chart.points(app.tele, app.config.epochs)
    assert pts[0, :, 0].min() == app.region(Panel).class_chart.plot().x


# ----------------------------------------------------------------- 6. rewind, no-train
def test_stepping_forward_returns_to_live_after_the_last_older_snapshot():
    from mnist_live.window.state import WindowState
    st = WindowState(np.zeros(10, np.int64))
    snaps = [(e, 0, float(e)) for e in range(3)]          # the last one is the live weights (--no-train)
    assert st.step_rewind(-1, snaps, 2.0).endswith("of 2: after epoch 1")
    assert st.rewind == 1
    assert st.step_rewind(1, snaps, 2.0) == "back to the live weights" and st.rewind is None


def test_the_loss_chart_marks_the_rewound_snapshot(sample):
    from mnist_live.window.regions.palette import LOSS_COLOR
    app = open_app(sample)
    app.tele.snapshots = [(0, 0, 0.0), (1, 0, 1.0), (5, 0, 5.0)]
    app.state.rewind = 1
    app.state.touch()
    app.needs_draw = True
    app.frame()
    chart = app.region(Panel).chart
    p = chart.plot_rect()
    x = p.x + int(round(1.0 / app.config.epochs * (p.width - 1)))
    column = [tuple(app.screen.get_at((x, y)))[:3] for y in range(p.y + 2, p.bottom - 2)]
    assert sum(c == LOSS_COLOR for c in column) > 0.8 * len(column)


# -------------------------------------------------------------------- 3. silent waits
@pytest.mark.parametrize("k, what", [(pygame.K_o, "grouping neurons"), (pygame.K_a, "drawing the atlas")])
def test_o_and_a_show_the_progress_of_the_pass_they_wait_for(sample, k, what):
    app = open_app(sample)
    settle(app)
    press(app, k)
    seen = set()
    while True:                                 # the frame of the key starts the pass (it may finish it too)
        app.frame()
        if app.state.toast.startswith(what):
            seen.add(app.state.toast)
        if not app.display.test_pass.busy:
            break
    assert seen and all(re.fullmatch(rf"{what}\.\.\. \d+ %", t) for t in seen), seen


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (1600, 900)])
def test_the_header_and_the_column_labels_never_run_into_each_other(sample, size, monkeypatch):
    """The header's accuracy never lies over the title, its data line never under the hint,
    and the labels above the columns stay in their room, down to the smallest window
    (where they are cut rather than overlap). Catches: the accuracy drawn at full length
    over the title at 640 px, labels wider than the gap to their neighbours."""
    app = open_app(sample, size)
    settle(app)
    app.tele.apply(evaluation("subset", np.full(10, 0.8765), 0, 300, 1000))      # the longest accuracy line
    texts = drawn_texts(app, monkeypatch, lambda: draw_region(app, app.region(Header)))
    assert any(t.startswith("test accuracy 87.65 %") for t, _ in texts), texts
    for i, (a, ra) in enumerate(texts):
        for b, rb in texts[i + 1:]:
            assert not ra.colliderect(rb), (size, a, b)
    assert all(app.region(Header).rect.contains(r) for _, r in texts), size
    labels_top = app.layout.labels_y - 3 * app.region(NetworkColumns).fs - 8
    texts = drawn_texts(app, monkeypatch, lambda: draw_region(app, app.region(NetworkColumns)))
    labels = [(t, r) for t, r in texts if r.bottom <= app.layout.labels_y + 2 and r.top >= labels_top]
    assert len([t for t, _ in labels if not t.endswith(" %")]) >= 2 * (2 + len(app.layout.hidden)) - 1, labels
    assert any(t.endswith(" %") for t, _ in labels), labels                # the relevance shares between them
    for i, (a, ra) in enumerate(labels):
        for b, rb in labels[i + 1:]:
            assert not ra.colliderect(rb), (size, a, b)
