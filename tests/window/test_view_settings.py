"""The view settings remembered between launches (view_settings.py and its wiring in
main.window_view and visualization.run_app): they come back, bad files cost one line,
--reset-view forgets, the command line wins, the file is written atomically."""
import io
import json
import os

import pygame
import pytest

from mnist_live import data_loader, main, visualization
from mnist_live.training.config import Config
from mnist_live.window import settings as view_settings
from mnist_live.window.settings import ViewSettings
from mnist_live.window.state import K_STEPS
from mnist_live.window.view_model import RANK_MODES


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "cfg" / "mnist-live" / "view.json")


def xdg(path):
    """The environment whose config folder holds `path` (.../mnist-live/view.json)."""
    return {"XDG_CONFIG_HOME": os.path.dirname(os.path.dirname(path))}


def lines(err):
    return [line for line in err.getvalue().splitlines() if line.strip()]


def test_the_tests_never_touch_the_users_config_folder():
    assert not view_settings.default_path().startswith(os.path.expanduser("~/.config"))
    assert view_settings.default_path({"XDG_CONFIG_HOME": "/x/y"}) == "/x/y/mnist-live/view.json"
    assert view_settings.default_path({"XDG_CONFIG_HOME": "relative"}) == \
        os.path.expanduser("~/.config/mnist-live/view.json")


def test_the_limits_are_the_windows():
    assert view_settings.RANK_MODES == RANK_MODES
    assert view_settings.MAX_CONNECTIONS == K_STEPS[-1]


def test_a_window_closed_after_c_and_plus_comes_back_with_them(path, monkeypatch):
    """Catches: run_app not remembering at close, App not starting from the remembered
    settings, main.window_view not reading them."""
    posted = []

    class Pressing(visualization.App):
        def frame(self):
            if self.weights_seen and not posted:          # the user skips the tour, presses C, +, O, I, then Q
                for k in (pygame.K_ESCAPE, pygame.K_c, pygame.K_PLUS, pygame.K_o, pygame.K_i, pygame.K_q):
                    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode="", scancode=0))
                posted.append(True)
            return super().frame()

    monkeypatch.setattr(visualization, "App", Pressing)
    data = data_loader.load_dataset("mnist", offline=True, log=lambda *a: None)
    config, view, view_path = main.window_view(Config(no_train=True, offline=True, no_runs=True, width=1000,
                                                      height=600), {"width", "height"}, xdg(path))
    assert view_path == path and view == ViewSettings(width=1000, height=600) and not os.path.exists(path)
    visualization.run_app(config, data, view=view, view_path=view_path)
    assert posted
    config, view, _ = main.window_view(Config(), set(), xdg(path))
    assert view == ViewSettings(rank_mode="contribution", connections=100, sorted_grids=False, captions=False,
                                toured=True, width=1000, height=600)
    assert (config.connections, config.width, config.height) == (100, 1000, 600)
    app = visualization.App(config, data, pygame.display.set_mode((1000, 600)), worker=False, view=view)
    assert (app.state.rank_mode, app.state.k, app.state.sorted_grids, app.state.captions, app.state.overlay) == \
        ("contribution", 100, False, False, None)
    pygame.quit()


def test_settings_written_are_read_back(path):
    chosen = ViewSettings(rank_mode="weight", connections=5, sorted_grids=True, captions=False, width=1280,
                          height=720)
    assert view_settings.remember(path, chosen)
    err = io.StringIO()
    assert view_settings.read(path, err) == chosen and not lines(err)


@pytest.mark.parametrize("text, kept", [
    ("{", {}), ("", {}), ("[1, 2]", {}), ("null", {}), ('{"rank_mode": "weight"}', {}),
    (json.dumps({"format": "something else", "version": 1, "rank_mode": "weight"}), {}),
    (json.dumps({"format": view_settings.FORMAT, "version": 2, "rank_mode": "weight"}), {}),
    (json.dumps({"format": view_settings.FORMAT, "version": 1, "rank_mode": "bogus", "connections": 20}),
     {"connections": 20}),
    (json.dumps({"format": view_settings.FORMAT, "version": 1, "connections": -1, "width": 1280}), {"width": 1280}),
    (json.dumps({"format": view_settings.FORMAT, "version": 1, "connections": 10 ** 9}), {}),
    (json.dumps({"format": view_settings.FORMAT, "version": 1, "connections": True}), {}),
    (json.dumps({"format": view_settings.FORMAT, "version": 1, "width": 100, "height": 10 ** 6}), {}),
    (json.dumps({"format": view_settings.FORMAT, "version": 1, "width": "wide", "captions": "yes"}), {}),
    (json.dumps({"format": view_settings.FORMAT, "version": 1, "sorted_grids": True, "colour": "red"}),
     {"sorted_grids": True}),
    ("[" * 100_000, {}),
])
def test_a_bad_file_costs_one_line_and_keeps_only_what_is_valid(path, text, kept):
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write(text)
    err = io.StringIO()
    assert view_settings.read(path, err) == ViewSettings(**kept)
    assert len(lines(err)) == 1 and lines(err)[0].startswith("warning: view settings"), err.getvalue()


@pytest.mark.parametrize("kind", ["folder", "fifo", "binary", "huge"])
def test_what_is_not_a_settings_file_is_never_read_and_costs_one_line(path, kind):
    os.makedirs(os.path.dirname(path))
    if kind == "folder":
        os.mkdir(path)
    elif kind == "fifo":
        os.mkfifo(path)                       # opening it would block the launch
    else:
        with open(path, "wb") as f:
            f.write(b"\xff\xfe\x00" if kind == "binary" else b" " * (view_settings.MAX_BYTES + 1))
    err = io.StringIO()
    assert view_settings.read(path, err) == ViewSettings()
    assert len(lines(err)) == 1, err.getvalue()


def test_a_corrupt_file_at_launch_gives_one_line_and_the_defaults(path, capsys):
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write('{"format": "mnist-live view settings", "version": 1, "connections": ')
    config, view, _ = main.window_view(Config(), set(), xdg(path))
    assert view == ViewSettings() and config == Config()
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_reset_view_forgets(path, capsys):
    assert view_settings.remember(path, ViewSettings(connections=500, width=1000))
    config, given = main.parse_config(["--reset-view"])
    config, view, _ = main.window_view(config, given, xdg(path))
    assert view == ViewSettings() and config.connections == 60 and (config.width, config.height) == (1600, 900)
    assert not os.path.exists(path)
    assert view_settings.remember(path, ViewSettings(connections=500))   # a --frames run forgets too
    config, given = main.parse_config(["--reset-view", "--frames", "3"])
    assert main.window_view(config, given, xdg(path)) == (config, ViewSettings(toured=True), None)
    assert not os.path.exists(path) and not capsys.readouterr().err


def test_reset_view_never_removes_a_folder_or_what_a_link_points_to(path, tmp_path):
    os.makedirs(path)
    err = io.StringIO()
    view_settings.forget(path, err)
    assert os.path.isdir(path) and len(lines(err)) == 1
    os.rmdir(path)
    target = tmp_path / "mine.json"
    target.write_text("keep")
    os.symlink(target, path)
    view_settings.forget(path)
    assert not os.path.lexists(path) and target.read_text() == "keep"


def test_reset_view_from_the_command_line_removes_the_file(tmp_path):
    from conftest import run
    path = view_settings.default_path()
    view_settings.write(path, ViewSettings(connections=500))
    proc = run("--headless", "--reset-view", "--offline", "--epochs", "1", "--train-size", "200", "--no-runs",
               "--test-size", "100")
    assert proc.returncode == 0, proc.stderr
    assert not os.path.exists(path)


def test_the_command_line_wins_over_the_file(path):
    assert view_settings.remember(path, ViewSettings(rank_mode="weight", connections=500, width=1000, height=600))
    config, given = main.parse_config(["--connections", "20", "--width", "1280"])
    config, view, _ = main.window_view(config, given, xdg(path))
    assert (config.connections, config.width, config.height) == (20, 1280, 600)
    assert view.rank_mode == "weight" and view.connections == 20 and view.width == 1280
    config, given = main.parse_config(["--connections", "60"])     # a default given explicitly also wins
    assert main.window_view(config, given, xdg(path))[0].connections == 60


def test_runs_that_end_by_themselves_neither_read_nor_write(path):
    assert view_settings.remember(path, ViewSettings(connections=500))
    for argv in (["--frames", "5"], ["--screenshot", os.path.join(os.path.dirname(path), "x.png")]):
        config, given = main.parse_config(argv)
        assert main.window_view(config, given, xdg(path)) == (config, ViewSettings(toured=True), None)


def test_the_file_is_written_atomically_through_a_symlink(path, tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("old")
    os.makedirs(os.path.dirname(path))
    os.symlink(target, path)
    assert view_settings.remember(path, ViewSettings(connections=200))
    assert os.path.islink(path) and json.loads(target.read_text())["connections"] == 200
    assert sorted(os.listdir(os.path.dirname(path))) == ["view.json"]          # no temp file left


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_the_file_is_never_written_over_what_is_not_a_regular_file(path, kind):
    os.makedirs(os.path.dirname(path))
    os.mkdir(path) if kind == "folder" else os.mkfifo(path)
    err = io.StringIO()
    assert not view_settings.remember(path, ViewSettings(), err)
    assert len(lines(err)) == 1 and (os.path.isdir(path) if kind == "folder" else not os.path.isfile(path))


def test_a_failed_write_leaves_the_old_file_whole(path, monkeypatch):
    assert view_settings.remember(path, ViewSettings(connections=500))

    def broken(settings):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(view_settings, "to_json", broken)
    err = io.StringIO()
    assert not view_settings.remember(path, ViewSettings(connections=5), err)
    assert view_settings.read(path) == ViewSettings(connections=500) and len(lines(err)) == 1
    assert sorted(os.listdir(os.path.dirname(path))) == ["view.json"]


def test_what_is_remembered_is_what_the_next_launch_accepts():
    import numpy as np

    from mnist_live.window.state import WindowState
    st = WindowState(np.zeros(3, np.int64), k=10_000)
    got = view_settings.of_window(st, (300, 200))
    assert (got.connections, got.width, got.height) == (5000, 640, 480)
    assert view_settings.parse(view_settings.to_json(got)) == (got, None)


def test_a_newer_versions_file_is_read_as_the_defaults_and_never_written_over(path, monkeypatch):
    """A view.json of a newer mnist-live (a version this one does not know) is ignored at
    launch and left as it was when the window closes. Catches: remember writing the
    defaults over it."""
    newer = json.dumps({"format": view_settings.FORMAT, "version": view_settings.VERSION + 1,
                        "rank_mode": "weight", "connections": 10, "theme": "dark"}) + "\n"
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write(newer)
    err = io.StringIO()
    config, view, view_path = main.window_view(Config(no_train=True, offline=True, no_runs=True), set(), xdg(path))
    assert view == ViewSettings() and view_path == path
    data = data_loader.load_dataset("mnist", offline=True, log=lambda *a: None)

    class Closing(visualization.App):
        def frame(self):
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q, mod=0, unicode="", scancode=0))
            return super().frame()

    monkeypatch.setattr(visualization, "App", Closing)
    monkeypatch.setattr("sys.stderr", err)
    visualization.run_app(config, data, view=view, view_path=view_path)            # the window closes
    pygame.quit()
    assert open(path).read() == newer
    assert lines(err)[-1] == (f"warning: view settings not remembered: {path} is of a newer mnist-live (version "
                              f"{view_settings.VERSION + 1}; this one writes version {view_settings.VERSION}) and is "
                              f"left as it is")
    for same_or_older in (view_settings.VERSION, 0, "2", True):
        with open(path, "w") as f:
            json.dump({"format": view_settings.FORMAT, "version": same_or_older}, f)
        assert view_settings.remember(path, ViewSettings(connections=100), err)          # replaced
        assert view_settings.read(path) == ViewSettings(connections=100)
