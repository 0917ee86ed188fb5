"""Experiments from the window (issue 31, item 5): the settings form checks its values
with the command line's own rules and messages, shows the equivalent command, and starts
a new run whose library row carries the new values while the run it replaced is overlaid
on the charts, labelled by what differs."""
import contextlib
import io
import shlex

import pygame
import pytest

from mnist_live import main as cli
from mnist_live.runs.library import RunLibrary
from mnist_live.training.config import Config
from mnist_live.visualization import switch_data
from mnist_live.window.experiment import FIELDS, Form, command_line
from mnist_live.window.regions.panel import Panel
from mnist_live.window.regions.settings_view import SettingsOverlay
from window_driver import draw_region, open_app, run_until


def cli_error(argv):
    """The one line the command line prints for a bad argv ("error: ...")."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit):
        cli.parse_config(argv)
    return "error: " + err.getvalue().strip().splitlines()[-1].split("error:", 1)[1].strip()


FIELD = {name: i for i, (name, _, _) in enumerate(FIELDS)}


@pytest.mark.parametrize("name, text", [("lr", "0"), ("batch_size", "12x"), ("dropout", "1"), ("hidden", "0 5"),
                                        ("epochs", "-1"), ("weight_decay", "nan"), ("lr", "0.001 0.003")])
def test_a_bad_value_gets_the_command_lines_own_message(name, text):
    form = Form.of(Config()).with_value(FIELD[name], text)
    argv = ["--" + name.replace("_", "-"), *text.split()]
    assert form.error == cli_error(argv)
    assert form.error.startswith("error: ") and "\n" not in form.error
    assert form.check()[0] is None


def test_the_command_shown_starts_the_same_run_from_a_terminal():
    base = Config(offline=True, epochs=3)
    form = Form.of(base)
    for name, text in (("lr", "0.003"), ("hidden", "256 128"), ("batch_size", "64"), ("dropout", "0.2")):
        form = form.with_value(FIELD[name], text)
    form = form.with_value(FIELD["optimizer"], "momentum").with_value(FIELD["augment"], True)
    config, error = form.check()
    assert error == "" and config.hidden == (256, 128) and config.optimizer == "momentum" and config.augment
    words = shlex.split(command_line(config))
    assert words[0] == "mnist-live"
    again, _ = cli.parse_config(words[1:])
    assert again.hyperparameters() == config.hyperparameters() and again.offline
    assert form.changes() == ["learning rate 0.003", "optimizer momentum", "batch size 64", "dropout 0.2",
                              "hidden sizes 256 128", "augment on"]


def type_text(text):
    for ch in text:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=ord(ch) if ch != "." else pygame.K_PERIOD, mod=0,
                                             unicode=ch, scancode=0))


def press(k):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode="", scancode=0))


def row_of(library_path, pid):
    with RunLibrary(library_path) as lib:
        return next(r for r in lib.runs() if r["pid"] == pid)


@pytest.mark.slow
def test_a_settings_change_starts_a_new_run_recorded_and_overlaid(sample, tmp_path, monkeypatch, capsys):
    library = str(tmp_path / "runs.sqlite3")
    app = open_app(sample, (1280, 720), worker=True, epochs=2, runs=library)
    new = None
    try:
        run_until(app, lambda: app.tele.trained_here, 60)
        old_pid = app.link.process.process.pid
        press(pygame.K_F2)
        app.frame()
        assert app.state.overlay == "settings" and app.state.form.values[FIELD["lr"]] == "0.001"
        for _ in range(5):
            press(pygame.K_BACKSPACE)
        type_text("0")
        press(pygame.K_RETURN)                                  # an invalid value: the command line's message
        app.frame()
        assert app.state.running and \
            app.state.toast == "error: argument --lr: must be > 0.0, got 0 (see mnist-live --help)"
        type_text(".003")
        press(pygame.K_DOWN)
        press(pygame.K_DOWN)
        press(pygame.K_DOWN)                                     # batch size
        press(pygame.K_BACKSPACE)
        press(pygame.K_BACKSPACE)
        type_text("4")                                           # 128 -> 14
        app.frame()
        start = app.region(SettingsOverlay).buttons[0][0]
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=start.center, button=1))
        app.frame()
        assert not app.state.running and app.next_config.learning_rate == 0.003 and app.next_config.batch_size == 14
        new = switch_data(app)
        assert "mnist-live --lr 0.003 --batch-size 14" in capsys.readouterr().out      # printed to the terminal
        run_until(new, lambda: new.tele.trained_here and new.compare.runs, 60)
        old_row, new_row = row_of(library, old_pid), row_of(library, new.link.process.process.pid)
        assert old_row["hyperparameters"]["lr"] == 0.001 and old_row["hyperparameters"]["batch_size"] == 128
        assert new_row["hyperparameters"]["lr"] == 0.003 and new_row["hyperparameters"]["batch_size"] == 14
        assert [r.id for r in new.compare.runs] == [old_row["id"]]
        assert new.compare.label(new.compare.runs[0]) == "lr 0.001, batch 128"
        from test_newcomer import drawn_texts
        new.frame()
        texts = [t for t, _ in drawn_texts(new, monkeypatch, lambda: draw_region(new, new.region(Panel)))]
        assert f"run {old_row['id']}: lr 0.001, batch 128" in texts, texts
    finally:
        (new or app).close(save=False)
        pygame.display.quit()
