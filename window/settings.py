"""The view settings the user chose, remembered between launches: the line mode (C), the
connections per layer pair (+ / -), the grouped grids (O), the captions (I), whether the
guided tour was closed (so it shows on a first launch only) and the window size, in a
small JSON file in the user's config folder ($XDG_CONFIG_HOME/mnist-live/view.json, by
default ~/.config/mnist-live/view.json).

Owns reading and checking that file (anything invalid, foreign or out of range is ignored
with one line on stderr), writing it atomically when the window closes (never over
something that is not a regular file, nor over a newer version's file), forgetting it
(--reset-view), and which values win (the command line's over the file's). Imports the
standard library, config and files only (no NumPy, no pygame); the line modes and the
largest K are copies of the window's, which a test compares.
"""
from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys
from dataclasses import dataclass

from mnist_live.training.config import Config, value_problem
from mnist_live.training.files import atomic_file

FORMAT = "mnist-live view settings"
VERSION = 1
MAX_BYTES = 64 * 1024             # a bigger file is not ours
RANK_MODES = ("relevance", "contribution", "weight")   # view_model.RANK_MODES (checked by a test)
MAX_CONNECTIONS = 5000            # window_state.K_STEPS[-1]
MAX_SIDE = 16384                  # a window side beyond this is not a real choice


@dataclass(frozen=True)
class ViewSettings:
    """What the window starts with (the defaults are the first launch's)."""
    rank_mode: str = "relevance"
    connections: int = Config.connections
    sorted_grids: bool = True     # grouped by preferred class once the network has learned a little
    captions: bool = True
    toured: bool = False          # the guided tour was closed once: it is not shown again
    width: int = Config.width
    height: int = Config.height


def default_path(environ=os.environ):
    """$XDG_CONFIG_HOME/mnist-live/view.json (a relative XDG_CONFIG_HOME is ignored, as
    the XDG spec says), else ~/.config/mnist-live/view.json."""
    base = environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "mnist-live", "view.json")


def problem(name, value):
    """None when `value` (from JSON) is a valid value of setting `name`, else why not."""
    if name == "rank_mode":
        return None if value in RANK_MODES else f"must be one of {', '.join(RANK_MODES)}"
    if name in ("sorted_grids", "captions", "toured"):
        return None if isinstance(value, bool) else "must be true or false"
    why = value_problem(name, value) if value is not None else "must not be null"
    if why:
        return why
    top = MAX_CONNECTIONS if name == "connections" else MAX_SIDE
    return None if value <= top else f"must be <= {top}"


def parse(text):
    """(ViewSettings, None) from the file's text, or (the defaults, why it was ignored).
    A field out of range is dropped (the others are kept); a file that is not JSON, not
    ours or of a newer version is ignored as a whole."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return ViewSettings(), "not valid JSON"
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return ViewSettings(), "not a view settings file of mnist-live"
    if doc.get("version") != VERSION:
        return ViewSettings(), f"version {doc.get('version')!r}, this mnist-live reads version {VERSION}"
    names = [f.name for f in dataclasses.fields(ViewSettings)]
    kept, problems = {}, []
    for name in names:
        if name in doc:
            why = problem(name, doc[name])
            if why:
                problems.append(f"{name} {why}, got {json.dumps(doc[name])[:40]}")
            else:
                kept[name] = doc[name]
    unknown = sorted(set(doc) - set(names) - {"format", "version"})
    if unknown:
        problems.append(f"unknown setting{'s' * (len(unknown) > 1)} {', '.join(unknown)[:80]}")
    return ViewSettings(**kept), "; ".join(problems) or None


def read(path, err=None):
    """The settings in the file at `path` (the defaults when there is none); anything
    wrong with it costs one line on `err`, never an exception."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):                 # a folder or a FIFO: never opened (a FIFO blocks)
            raise OSError(f"{path} is not a regular file")
        if st.st_size > MAX_BYTES:
            raise OSError(f"{path} is {st.st_size:,} bytes, too big to be view settings")
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return ViewSettings()
    except (OSError, UnicodeDecodeError) as e:
        print(f"warning: view settings ignored: {getattr(e, 'strerror', None) or e}", file=err or sys.stderr)
        return ViewSettings()
    settings, why = parse(text)
    if why:
        print(f"warning: view settings in {path} partly or wholly ignored ({why}); "
              f"--reset-view starts from the defaults", file=err or sys.stderr)
    return settings


def to_json(settings):
    return json.dumps({"format": FORMAT, "version": VERSION, **dataclasses.asdict(settings)}, indent=2) + "\n"


def write(path, settings):
    """Write the settings atomically (temp file then rename; a symlink is followed, anything
    that is not a regular file is refused: OSError)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_file(path) as f:
        f.write(to_json(settings).encode("utf-8"))


def newer_file(path):
    """The version of a newer mnist-live's settings file at `path` (which this version reads
    as the defaults but must not write over), or None."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
            return None
        with open(path, encoding="utf-8") as f:
            doc = json.loads(f.read(MAX_BYTES + 1))
    except (OSError, ValueError, RecursionError):
        return None
    version = doc.get("version") if isinstance(doc, dict) and doc.get("format") == FORMAT else None
    newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
    return version if newer else None


def remember(path, settings, err=None):
    """write(), a failure costing one line on `err` (closing the window must not fail). A
    newer version's file is left as it is (one line)."""
    newer = newer_file(path)
    if newer is not None:
        print(f"warning: view settings not remembered: {path} is of a newer mnist-live (version {newer}; "
              f"this one writes version {VERSION}) and is left as it is", file=err or sys.stderr)
        return False
    try:
        write(path, settings)
        return True
    except OSError as e:
        print(f"warning: could not remember the view settings in {path}: {e.strerror or e}",
              file=err or sys.stderr)
        return False


def forget(path, err=None):
    """--reset-view: remove the file (a symlink itself, not what it points to; never a
    folder), one line on `err` when it cannot be."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            raise OSError(f"{path} is a folder; not removed")
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        why = getattr(e, "strerror", None) or e
        print(f"warning: could not forget the view settings: {why}", file=err or sys.stderr)


def at_launch(config, given, path, err=None):
    """(config, ViewSettings) a window starts with: the remembered settings (forgotten
    first with --reset-view), the options given on the command line (`given`: the names
    of the Config fields given) winning over them."""
    if config.reset_view:
        forget(path, err)
        settings = ViewSettings()
    else:
        settings = read(path, err)
    changes = {name: getattr(config, name) for name in ("connections", "width", "height") if name in given}
    settings = dataclasses.replace(settings, **changes)
    return config.replace(connections=settings.connections, width=settings.width,
                          height=settings.height), settings


def of_window(state, size):
    """The settings a window shows now: its state (window_state.WindowState) and size,
    within what the file accepts (a window dragged smaller than --width allows comes back
    at the smallest size; more connections than the keys reach, at the most they reach)."""
    low = {name: Config.__dataclass_fields__[name].metadata["min"] for name in ("width", "height")}
    return ViewSettings(rank_mode=state.rank_mode, connections=min(int(state.k), MAX_CONNECTIONS),
                        sorted_grids=bool(state.sorted_grids), captions=bool(state.captions),
                        toured=bool(state.toured),
                        width=int(min(max(size[0], low["width"]), MAX_SIDE)),
                        height=int(min(max(size[1], low["height"]), MAX_SIDE)))
