"""Picture tests of the views of learning (issue 34): the backward view (J), what the steps
changed (Y), step mode (N while paused) and training health (F4). The real App is driven
with posted keys and the pixels read from the rectangles its layout placed; what they
should show is worked out here, from the weights on screen with a backward pass written
out in float64 below, or from records made up so each layer and each step looks different.
Each test's docstring lists the breakages it was seen to catch."""
import dataclasses

import numpy as np
import pygame

from float64_net import forward64
from mnist_live.explain.backward import backward
from mnist_live.training.history import HealthRecord, LayerHealth
from mnist_live.training.messages import DigitStep, StepRecord, UpdateSummary
from mnist_live.window.regions.health_view import HealthOverlay
from mnist_live.window.regions.network import NetworkColumns
from mnist_live.window.regions.palette import ACCENT, CHANGED, GRID_BG, NEGATIVE, POSITIVE
from mnist_live.window.view_model import WeightsStamp
from window_driver import key, open_app, pixel, text_drawn_at, texts_blitted


def deltas64(net, x, target):
    """The error signals of digit x for class `target`, in float64, written out: the error
    at the output is softmax - onehot, each hidden layer's delta its successor's through
    the weights, times the ReLU's slope."""
    W, _, acts, zs = forward64(net, x)
    acts[-1] = np.exp(zs[-1] - zs[-1].max()) / np.exp(zs[-1] - zs[-1].max()).sum()      # softmax
    delta = acts[-1].copy()
    delta[target] -= 1
    out = [delta]
    for i in range(len(W) - 1, 0, -1):
        delta = (delta @ W[i].T) * (zs[i - 1] > 0)
        out.insert(0, delta)
    return acts, out


def warm(rgb):
    return rgb[0] > rgb[2] + 10


def cool(rgb):
    return rgb[2] > rgb[0] + 10


# ------------------------------------------------------------------ the backward view
def test_the_backward_view_colours_each_neuron_by_its_error_signal_and_writes_the_output_error(sample):
    """Each hidden neuron's cell: warm where its delta is positive, cool where negative,
    dark where the ReLU is off (delta 0); each output row writes its error p - y with the
    sign's colour; the share between the columns is the share of sum |a*delta| the k
    largest carry, worked out here from the float64 pass.
    Catches: the sign of delta flipped; the hidden layers' marks swapped (each grid drawn
    with the other's); the error written for the next class; the shares of the pairs in
    reverse order; the forward activations drawn instead of delta."""
    app = open_app(sample, connections=40)
    app.state.go(3)
    key(pygame.K_j)
    app.frame()
    app.frame()
    net, v = app.display.net, app.display.view
    assert v.learn is not None and v.learn.mode == "backward"
    target = int(app.y_test[3])
    acts, deltas = deltas64(net, v.x, target)
    net_region = app.region(NetworkColumns)
    checked = 0
    for layer in range(len(app.layout.hidden)):
        d = deltas[layer]
        peak = np.abs(d).max()
        for j in range(len(d)):
            got = pixel(app, net_region.neuron_rect(layer, j).center)
            if acts[layer + 1][j] == 0:
                assert got == GRID_BG, (layer, j, got)
            elif abs(d[j]) > 0.3 * peak:
                assert (warm(got), cool(got)) == ((True, False) if d[j] > 0 else (False, True)), (layer, j, got)
                checked += 1
    assert checked >= 20
    fs = net_region.output.fs - 2
    for c, row in enumerate(app.layout.output_rows):
        e = float(acts[-1][c] - (c == target))
        colour = POSITIVE if e > 0.005 else NEGATIVE if e < -0.005 else (140, 148, 165)
        said = f"{e:+.2f}".replace("-", "−") if abs(e) >= 0.005 else "0.00"          # never −0.00 or +0.00
        assert text_drawn_at(app, said, fs, colour, False, "midright", (row.right, row.centery)), c
    for pair in range(len(deltas)):
        g = np.abs(np.outer(acts[pair], deltas[pair]))
        share = np.sort(g.ravel())[-40:].sum() / g.sum()
        assert text_drawn_at(app, f"{100 * share:.0f} %", net_region.fs - 2, POSITIVE, False, "midbottom",
                             net_region.coverage_anchor(pair)), pair


def test_a_drawn_digit_is_explained_against_the_networks_own_answer(sample):
    """A drawn digit has no label: its error is of the class the network reads it as, and the
    caption says so. Catches: the test digit's label used for a drawing."""
    app = open_app(sample)
    key(pygame.K_d)
    app.frame()
    app.state.paint(0.5, 0.2)
    app.state.paint(0.5, 0.8, stroke=True)
    key(pygame.K_j)
    app.frame()
    app.frame()
    learn = app.display.view.learn
    assert learn.target == app.display.view.pred and not learn.labelled
    assert learn.error[learn.target] < 0 and (np.delete(learn.error, learn.target) >= 0).all()
    assert "own answer" in app.scene().caption[0][0]


# ------------------------------------------------------------------ what the steps changed
def summary(after, layer0_neuron, n=(1024, 512, 10), steps=1):
    """An UpdateSummary whose only moved neuron of Hidden 1 is `layer0_neuron` (and neuron 0
    of Hidden 2), with one edge per pair."""
    neuron_in = [np.zeros(k, np.float32) for k in n]
    neuron_in[0][layer0_neuron] = 1.0
    neuron_in[1][0] = 1.0
    edges = [(np.array([1]), np.array([layer0_neuron]), np.array([0.01], np.float32)),
             (np.array([layer0_neuron]), np.array([0]), np.array([-0.02], np.float32)),
             (np.array([0]), np.array([3]), np.array([0.03], np.float32))]
    return UpdateSummary((0, 0), after, steps, edges, [0.1, 0.2, 0.3], neuron_in,
                         [np.zeros(k, np.float32) for k in n], [1e-3] * 3)


def record(app, after, neuron, seq=1, detailed=False, token=0):
    x = app.display.view.x
    probs_after = np.full(10, 0.02, np.float32)
    probs_after[7] = 0.82
    bw = backward(app.display.net, x, int(app.y_test[app.state.index]))
    return StepRecord(seq, detailed, 1e-3, 2.3, summary(after, neuron), DigitStep(token, bw.probs, probs_after, bw),
                      np.arange(8), np.arange(8) % 10, np.linspace(0.1, 3.0, 8).astype(np.float32))


def training_window(sample):
    """A window whose weights on screen are at epoch 0, batch 5 of a training run (made up:
    no training process, so the records below are the only ones)."""
    app = open_app(sample)
    app.display.trains = True
    app.display.take(WeightsStamp(1, 0, 5))
    app.frame()
    return app


def moved(app, layer, j):
    return pixel(app, app.region(NetworkColumns).neuron_rect(layer, j).center) == CHANGED


def test_the_change_view_says_whose_step_it_shows(sample):
    """Y shows the last recorded step's change, the change over the last batches on Y again;
    when the step ends at the weights on screen the digit's scores before and after sit on
    the output rows; when it ends elsewhere (a step is recorded every few batches) it is
    still shown, the second caption line says where it ends and where the weights on screen
    are, and no scores are written. With no step recorded yet it says what it waits for.
    Catches: a step of other weights shown as theirs (no note) or with the digit's scores;
    the span's change shown for the last step (or the reverse); the scores before and after
    swapped; Y showing nothing at full speed (only an exactly matching step was shown)."""
    app = training_window(sample)
    key(pygame.K_y)
    app.frame()
    app.frame()
    assert "waiting for a recorded step" in app.scene().caption[1][0]
    app.tele.step = record(app, (0, 5), neuron=11)                    # the step to the weights on screen
    app.tele.span = summary((0, 5), 22, steps=50)                     # the change over the last 50
    app.tele.version += 1
    app.frame()
    app.frame()
    assert moved(app, 0, 11) and not moved(app, 0, 22) and len(app.scene().caption) == 1
    out = app.region(NetworkColumns).output
    before, after = app.tele.step.digit.probs_before, app.tele.step.digit.probs_after
    row = app.layout.output_rows[7]
    scores = f"{100 * before[7]:.0f}->{100 * after[7]:.0f}%"
    assert text_drawn_at(app, scores, out.fs - 2, (140, 148, 165), False, "midright", (row.right, row.centery))
    key(pygame.K_y)                                                   # over the last batches
    app.frame()
    app.frame()
    assert moved(app, 0, 22) and not moved(app, 0, 11)
    app.tele.span = summary((0, 4), 22, steps=50)                     # ends before the weights on screen
    app.tele.version += 1
    app.frame()
    app.frame()
    note = app.scene().caption[1][0]
    assert moved(app, 0, 22) and "ends at epoch 1, batch 4" in note and "epoch 1, batch 5" in note
    key(pygame.K_y)                                                   # off, then the last step of other weights
    key(pygame.K_y)
    app.tele.step = record(app, (0, 6), neuron=11, seq=2)
    app.tele.version += 1
    app.frame()
    app.frame()
    note = app.scene().caption[1][0]
    assert moved(app, 0, 11) and "ends at epoch 1, batch 6" in note
    assert "scores" not in app.scene().caption[0][0]
    assert not text_drawn_at(app, scores, out.fs - 2, (140, 148, 165), False, "midright", (row.right, row.centery))


# ------------------------------------------------------------------ step mode
def test_step_mode_plays_the_step_of_the_weights_on_screen_and_never_a_stale_one(sample):
    """While paused, a detailed step of the weights and digit on screen is played: its
    backward phase colours the grids by the step's own error signals, its update phase marks
    the neurons it moved and writes the scores before -> after; a step of other weights is
    never played, and a play stops the moment newer weights come.
    Catches: a stale record played (position or token ignored); a play going on after new
    weights; the update phase showing another step's change; the phases out of order."""
    app = training_window(sample)
    app.state.pause_requested = True
    app.tele.step = record(app, (0, 4), neuron=11, detailed=True)     # of the weights before these: stale
    app.frame()
    assert app.display.play is None
    app.tele.step = record(app, (0, 5), neuron=11, seq=2, detailed=True, token=99)   # of another digit: stale
    app.frame()
    assert app.display.play is None
    rec = record(app, (0, 5), neuron=11, seq=3, detailed=True)
    app.tele.step = rec
    app.frame()
    play = app.display.play
    assert play is not None and play.record is rec
    assert app.display.view.learn.phase == "forward"
    play.started -= 0.8 + 0.9 + 0.5                                   # half way through the backward phase
    app.frame()
    app.frame()
    assert app.display.view.learn.phase == "backward"
    d = rec.digit.backward.deltas[1]
    j = int(np.argmax(np.abs(d)))
    got = pixel(app, app.region(NetworkColumns).neuron_rect(1, j).center)
    assert (warm(got), cool(got)) == ((True, False) if d[j] > 0 else (False, True))
    play.started -= 0.6                                               # into the update
    for _ in range(3):
        app.frame()
    assert app.display.view.learn.phase == "update" and moved(app, 0, 11)
    app.display.take(WeightsStamp(2, 0, 6))                           # newer weights: the step is stale now
    app.frame()
    app.frame()
    assert app.display.play is None and app.display.view.learn is None and not moved(app, 0, 11)


# ------------------------------------------------------------------ training health
def health(progress, inactive, ratio):
    """A HealthRecord whose layers differ: inactive share and update ratio per layer."""
    layers = tuple(LayerHealth(0.5, r, a, 0.0, tuple(np.linspace(-0.1, 0.1, 9)), tuple(np.linspace(0, 2, 9)))
                   for a, r in zip(inactive, ratio))
    return HealthRecord(progress, int(progress), 0, 1e-3, layers)


def test_the_health_view_plots_each_layers_own_figures_and_a_rewound_snapshots_own_records(sample):
    """Hidden 1 is 20 % off, Hidden 2 70 %: each row's "ReLUs off" line is at its own layer's
    height; the update ratios (1e-3 and 1e-2) sit where the log axis puts them; rewound, the
    plots end at the snapshot's records (Hidden 1 later goes to 90 % off, not shown then).
    Catches: the rows plotting each other's layer; the ReLU share plotted upside down; a
    rewound snapshot shown the later records."""
    app = open_app(sample)
    for i in range(21):
        p = i / 10
        app.tele.apply(health(p, (0.2 if p <= 1 else 0.9, 0.7, float("nan")), (1e-3, 1e-2, 3e-3)))
    key(pygame.K_F4)
    app.frame()
    region = app.region(HealthOverlay)

    def line_at(layer, value, x_at=0.5):
        r = region.plot_rect(layer, "inactive", 3)
        x, y = int(r.x + x_at * r.width), int(round(region.to_y(value, 0.0, 1.0, r, False)))
        return any(pixel(app, (x, y + dy)) == ACCENT for dy in (-1, 0, 1))

    assert line_at(0, 0.2, 0.25) and not line_at(0, 0.7, 0.25) and line_at(0, 0.9, 0.97)
    assert line_at(1, 0.7) and not line_at(1, 0.2)
    assert not any(line_at(2, v) for v in (0.2, 0.7))                  # the output layer has no ReLU
    ys = []
    for layer in (0, 1):
        r = region.plot_rect(layer, "update_ratio", 3)
        col = [pixel(app, (r.centerx, y)) for y in range(r.y, r.bottom)]
        ys.append(next(i for i, c in enumerate(col) if c == ACCENT) / r.height)
    assert ys[1] < ys[0]                                               # 1e-2 higher up than 1e-3
    app.tele.snapshots = [(0, 0, 0.5), (1, 0, 1.0)]
    app.state.rewind = 1
    app.state.touch()
    app.needs_draw = True
    app.frame()
    assert line_at(0, 0.2, 0.97) and not line_at(0, 0.9, 0.97)


def test_the_health_views_rows_are_not_each_others(sample):
    """The same check with the layers' figures in the other order (Hidden 1 busier): the
    rows follow the data, not a fixed picture. Catches: a row drawn from a fixed layer."""
    app = open_app(sample)
    for i in range(5):
        app.tele.apply(health(i / 4, (0.8, 0.1, float("nan")), (1e-3, 1e-3, 1e-3)))
    key(pygame.K_F4)
    app.frame()
    region = app.region(HealthOverlay)
    r0, r1 = region.plot_rect(0, "inactive", 3), region.plot_rect(1, "inactive", 3)
    y0 = int(round(region.to_y(0.8, 0, 1, r0, False)))
    y1 = int(round(region.to_y(0.1, 0, 1, r1, False)))
    assert ACCENT in [pixel(app, (r0.centerx, y0 + d)) for d in (-1, 0, 1)]
    assert ACCENT in [pixel(app, (r1.centerx, y1 + d)) for d in (-1, 0, 1)]
    assert dataclasses.is_dataclass(app.tele.health[0])


def test_step_modes_legend_names_the_phase_its_caption_names(sample):
    """The legend under a played step says what is on screen in the same phase as the
    caption: the forward wave, then the batch's loss (both show the activations before the
    step and no lines). Catches: the legend still saying "goes forward" while the caption
    says "now the batch's loss" (seen in the 1600x900 picture of the loss phase: the
    legend's phrasing, and the legend not drawn again when only the phase changed)."""
    from mnist_live.window.captions import step_caption
    from mnist_live.window.regions.header import Legend, learning_legend
    app = training_window(sample)
    app.state.pause_requested = True
    app.tele.step = record(app, (0, 5), neuron=11, seq=3, detailed=True)
    legend = app.region(Legend)
    with texts_blitted(legend.text) as said:
        for phase, word, back in (("forward", "goes forward", 0.0), ("loss", "loss", 0.8 + 0.45)):
            said.clear()
            if back:
                app.display.play.started -= back
            for _ in range(3):
                app.frame()
            learn = app.display.view.learn
            assert learn.phase == phase
            phrasings = learning_legend(learn, app.state.k)[1]
            assert word in phrasings[0] and word in step_caption("digit", 8, 2.3, phase)[0], (phase, phrasings)
            assert any(t in phrasings for t in said), (phase, said)                 # drawn again, in its words


def test_a_step_played_in_slow_motion_is_not_said_to_be_trained_while_paused():
    """Slow motion plays each batch in its pause without pausing: its caption and legend say
    slow motion; N while paused says step mode. Catches: "one batch trained while paused"
    written over every batch of slow motion (seen at 1 s a batch)."""
    from mnist_live.window.captions import step_caption
    from mnist_live.window.learning import LearnView
    from mnist_live.window.regions.header import learning_legend
    for paused, says, never in ((True, "trained while paused", "slow motion"),
                                (False, "slow motion", "while paused")):
        for phase in ("forward", "loss", "backward", "update"):
            caption = step_caption("digit", 128, 0.5, phase, paused)[0]
            assert says in caption and never not in caption, (paused, phase, caption)
        learn = LearnView(mode="step", marks=(np.zeros(4, np.float32),), marks_kind="activation", phase="loss",
                          paused=paused)
        assert learning_legend(learn, 60)[1][0].startswith("step mode (N)" if paused else "slow motion")


def test_a_wave_not_yet_at_a_layer_does_not_count_its_neurons(sample):
    """Step mode's waves light the layers one by one: a layer the wave has not reached says
    so instead of "0 active". Catches: "Hidden 2: 0 active" under a dark grid while the
    output already showed 100 % (seen at 1280x720)."""
    from mnist_live.window.learning import step_view
    app = training_window(sample)
    rec = record(app, (0, 5), neuron=11, detailed=True)
    assert step_view(rec, "forward", 0.0, 60, 3)[2].reached == (False, False)
    assert step_view(rec, "forward", 0.6, 60, 3)[2].reached == (True, False)
    assert step_view(rec, "loss", 0.0, 60, 3)[2].reached == (True, True)
    assert step_view(rec, "backward", 0.4, 60, 3)[2].reached == (False, True)        # from the output back
    app.state.pause_requested = True
    app.tele.step = rec
    with texts_blitted(app.region(NetworkColumns).text) as said:
        app.frame()
        app.frame()
    assert app.display.view.learn.phase == "forward"
    assert any("not reached" in t for t in said) and not any(t == "0 active" for t in said), said
