"""The views of learning with the real training process (issue 34): N while paused plays the
step just trained, of the weights and the digit on screen; hovering a line asks the training
process for that weight's optimizer state and shows the rule with its numbers only once the
answer about that very weight is here."""
import numpy as np
import pygame
import pytest

from mnist_live.explain.backward import backward
from mnist_live.training.update_rule import next_update
from mnist_live.window.regions.network import NetworkColumns
from window_driver import key, move, open_app, run_until


def paused_app(sample, **config):
    app = open_app(sample, size=(1280, 720), worker=True, hidden=(64, 32), epochs=50, batch_size=16, seed=3,
                   connections=20, no_train=False, **config)
    run_until(app, lambda: app.weights_seen)
    key(pygame.K_SPACE)
    run_until(app, lambda: app.tele.paused)
    run_until(app, lambda: not app.display.waiting and (app.display.stamp.epoch, app.display.stamp.batch)
              == (app.tele.epoch, app.tele.batch))                  # the window shows the paused weights
    return app


@pytest.mark.slow
def test_n_while_paused_plays_the_step_just_trained_of_the_digit_on_screen(sample):
    """Catches: the play started from a record of other weights or another digit (its
    position and token not checked); N not playing at all; the play's batch not the one
    trained (its losses not the record's)."""
    app = paused_app(sample)
    try:
        app.state.go(5)
        for _ in range(3):
            app.frame()
        key(pygame.K_n)
        run_until(app, lambda: app.display.play is not None)
        rec, stamp = app.display.play.record, app.display.stamp
        assert rec.detailed and tuple(rec.update.after) == (stamp.epoch, stamp.batch)
        assert rec.digit.token == app.link.token and app.link.watched == ("test", 5)
        assert rec.digit.backward.target == int(app.y_test[5])
        assert len(rec.losses) == 16 and np.isclose(rec.losses.mean(), rec.loss, rtol=1e-4)
        run_until(app, lambda: app.display.view.learn is not None and app.display.view.learn.phase == "update")
        assert np.allclose(app.display.view.learn.after, rec.digit.probs_after)
        run_until(app, lambda: app.display.play is None, timeout=10)        # the play ends by itself
        assert app.display.view.learn is None
    finally:
        app.close(save=False)


@pytest.mark.slow
def test_hovering_a_line_shows_its_weights_update_rule_only_with_the_answer_about_it(sample):
    """Catches: the answer about another weight shown (token or parameter not checked); the
    weight's value not the training process's; the rule's numbers not plugged in; the
    epoch counted from 0 where the panel counts from 1."""
    app = paused_app(sample, optimizer="momentum", lr=0.05, weight_decay=0.01)
    try:
        net = app.region(NetworkColumns)
        run_until(app, lambda: app.display.view is not None and len(app.display.view.conns[1][0]) > 1)
        src, dst, _ = app.display.view.conns[1]
        a, b = net.centers[1][src[-1]], net.centers[2][dst[-1]]
        move((a + b) / 2)
        app.frame()
        at = ("weight", 1, int(src[-1]), int(dst[-1]))
        assert app.state.hover_edge == at[1:]
        assert app.frame_scene.maths[-1].endswith("asking the training process...")
        run_until(app, lambda: any("the value now" in t for t in app.frame_scene.maths))
        ins = app.tele.inspection
        assert ins.at == at and ins.value == pytest.approx(float(app.display.net.weights[1][at[2], at[3]]), abs=1e-6)
        assert ins.rule.kind == "momentum"
        epoch, batch = ins.position                               # counted as the panel counts: epoch 1 is the first
        said = [t for t in app.frame_scene.maths if "the value now" in t][0]
        assert (f"epoch {epoch + 1}, batch {batch}" if batch else f"after epoch {epoch}") in said, said
        bw = backward(app.display.net, app.display.view.x, int(app.y_test[app.state.index]))
        g = float(bw.acts[1][at[2]]) * float(bw.deltas[1][at[3]])          # this digit's gradient of the weight
        want = next_update(ins.rule, g, ins.value, ins.lr, ins.weight_decay).lines[-1]
        assert app.frame_scene.maths[-1] == want
        other = net.neuron_rect(0, 3).center                                # a neuron: another parameter
        move(other)
        app.frame()
        assert app.frame_scene.maths[-1].endswith("asking the training process...")     # never the line's answer
        run_until(app, lambda: any("the value now" in t for t in app.frame_scene.maths))
        assert app.tele.inspection.at == ("bias", 0, 3)
    finally:
        app.close(save=False)


@pytest.mark.slow
def test_slow_motion_plays_each_step_within_its_pause(sample):
    """At 1 s a batch every step is played, all four phases, before the next step's weights
    come. Catches: slow motion not playing; a play longer than the pause (cut off before its
    update, or stale)."""
    app = open_app(sample, size=(1280, 720), worker=True, hidden=(64, 32), epochs=50, batch_size=16, seed=3,
                   no_train=False)
    try:
        run_until(app, lambda: app.weights_seen)
        for _ in range(7):
            key(pygame.K_LEFTBRACKET)                        # slowest: 1 s a batch
        phases = {}
        run_until(app, lambda: app.display.play is not None)
        first = app.display.play.record.seq
        def seen():
            learn = app.display.view.learn
            if learn is not None and learn.mode == "step":
                phases.setdefault(learn.seq, set()).add(learn.phase)
                assert not learn.paused and "slow motion" in app.scene().caption[0][0]       # never "while paused"
            return len(phases) >= 3
        run_until(app, seen, timeout=15)
        whole = [seq for seq, got in phases.items() if got == {"forward", "loss", "backward", "update"}]
        assert len(whole) >= 2 and all(seq >= first for seq in whole), phases
    finally:
        app.close(save=False)
