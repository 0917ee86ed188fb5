"""Experiments from the window: the settings form (F2) that changes what the command line
can — learning rate, optimizer, schedule, batch size, dropout, weight decay, hidden sizes,
activation, epochs, seed, augment — and starts a new run with it.

`Form` is the form as values (frozen: every edit makes a new one, so a frame draws a
form that nothing changes under it). Its values are checked by the command line's own
parser (`main.parse_config`), so a bad value gets the very one-line message the terminal
would print ("error: argument --lr: must be > 0.0, got 0"). `command_line` is the
equivalent command to copy into a terminal. `form_key` answers a key press while the form
is open and leaves a `StartRun` effect for the frame loop. Pure Python: imports config
and, when checking, main's parser; no pygame, no NumPy.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import shlex
from dataclasses import dataclass

from mnist_live.training.config import ACTIVATIONS, DEFAULT_LR, OPTIMIZERS, SCHEDULES, Config

# (Config field, label in the form, kind): "text" typed, "choice" cycled, "flag" on / off
FIELDS = (("lr", "learning rate", "text"), ("optimizer", "optimizer", "choice"),
          ("lr_schedule", "schedule", "choice"), ("batch_size", "batch size", "text"),
          ("dropout", "dropout", "text"), ("weight_decay", "weight decay", "text"),
          ("hidden", "hidden sizes", "text"), ("activation", "activation", "choice"),
          ("epochs", "epochs", "text"), ("seed", "seed", "text"), ("augment", "augment", "flag"))
CHOICES = {"optimizer": OPTIMIZERS, "lr_schedule": SCHEDULES, "activation": ACTIVATIONS}
TYPED = set("0123456789.e-+ ")     # what a text field takes from the keyboard
# what makes a run besides its hyperparameters: kept from the window's run in the command shown
KEPT = ("dataset", "data_dir", "data_home", "offline", "train_size", "test_size", "runs", "no_runs", "compare")


@dataclass(frozen=True)
class StartRun:
    """Effect: stop the run on screen and start `config` in the same window."""
    config: Config


def value_text(config, name):
    """A field's value as the form shows it."""
    if name == "lr":
        return f"{config.learning_rate:g}"
    value = getattr(config, name)
    if name == "hidden":
        return " ".join(str(v) for v in value)
    return value if isinstance(value, (str, bool)) else f"{value:g}"


def flag(name):
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Form:
    """The settings form: a value per field (text, a choice or a flag), the field selected,
    and the command line's verdict on the values ('' when they are valid)."""
    base: Config                 # the run on screen: what the form starts from
    values: tuple                # per FIELDS: str, or bool for a flag
    selected: int = 0
    error: str = ""

    @classmethod
    def of(cls, config):
        return cls(config, tuple(value_text(config, name) for name, _, _ in FIELDS))

    def value(self, name):
        return self.values[[f[0] for f in FIELDS].index(name)]

    def with_value(self, i, value):
        values = self.values[:i] + (value,) + self.values[i + 1:]
        form = dataclasses.replace(self, values=values, selected=i)
        return dataclasses.replace(form, error=form.check()[1])

    def argv(self):
        """The form as command-line arguments."""
        out = []
        for (name, _, kind), value in zip(FIELDS, self.values):
            if kind == "flag":
                out += [flag(name)] if value else []
            else:
                out += [flag(name), *(value.split() or [""])]
        return out

    def check(self):
        """(the Config of the new run, '') or (None, the command line's one-line error)."""
        from mnist_live import main as cli  # the command line's own parser and messages
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                parsed, _ = cli.parse_config(self.argv())
        except SystemExit:
            lines = [t for t in err.getvalue().splitlines() if "error:" in t]
            return None, "error: " + lines[-1].split("error:", 1)[1].strip() if lines else "error: invalid value"
        return self.base.replace(**{name: getattr(parsed, name) for name, _, _ in FIELDS}), ""

    def changes(self):
        """The fields whose values differ from the run on screen: ["lr 0.003", "batch 64"]."""
        start = Form.of(self.base)
        return [f"{label} {'on' if v is True else 'off' if v is False else v}"
                for (name, label, _), v, was in zip(FIELDS, self.values, start.values) if v != was]


def command_line(config):
    """The command that starts `config` from a terminal: what differs from the defaults."""
    words = ["mnist-live"]
    for name in [f[0] for f in FIELDS] + list(KEPT):
        value, default = getattr(config, name), Config.__dataclass_fields__[name].default
        if name == "lr":
            value, default = config.learning_rate, DEFAULT_LR[config.optimizer]
        if value == default or value is None:
            continue
        if isinstance(value, bool):
            words.append(flag(name))
        else:
            words += [flag(name), *(f"{v:g}" if isinstance(v, float) else str(v)
                                    for v in (value if isinstance(value, tuple) else (value,)))]
    return shlex.join(words)


# ------------------------------------------------------------------ keys while the form is open
def form_key(state, key, text, effects):
    """A key press on the open form (`key`: a pygame key name such as "up", "return",
    "backspace"; `text`: the character typed). Up / Down / Tab choose a field, Left / Right
    cycle a choice or flip a flag, typing edits a text field, Enter starts the run (when
    the values are valid), Esc closes the form."""
    form = state.form
    i, (name, _, kind) = form.selected, FIELDS[form.selected]
    if key in ("up", "down", "tab"):
        state.form = dataclasses.replace(form, selected=(i + (-1 if key == "up" else 1)) % len(FIELDS))
    elif key in ("left", "right") and kind != "text":
        state.form = form.with_value(i, cycle(name, form.values[i], 1 if key == "right" else -1))
    elif key == "backspace" and kind == "text":
        state.form = form.with_value(i, form.values[i][:-1])
    elif key in ("return", "enter"):
        start(state, effects)
    elif key == "escape":
        state.toggle_overlay("settings")
    elif kind == "text" and text and text in TYPED:
        state.form = form.with_value(i, form.values[i] + text)
    state.touch()


def cycle(name, value, step):
    if name not in CHOICES:
        return not value
    options = CHOICES[name]
    return options[(options.index(value) + step) % len(options)]


def form_click(state, hit, effects):
    """A click on the form: ("field", i) selects (a choice cycles, a flag flips), ("start",
    None) starts the run, ("cancel", None) closes the form."""
    what, i = hit
    form = state.form
    if what == "field":
        name, _, kind = FIELDS[i]
        state.form = dataclasses.replace(form, selected=i) if kind == "text" \
            else form.with_value(i, cycle(name, form.values[i], 1))
    elif what == "start":
        start(state, effects)
    elif what == "cancel":
        state.toggle_overlay("settings")
    state.touch()


def start(state, effects):
    """Start the run of the form's values, or say why not (the command line's message)."""
    config, error = state.form.check()
    if config is None:
        state.say(error, 8)
        return
    if not state.form.changes():
        state.say("nothing changed: edit a value first (Esc closes)", 5)
        return
    effects.append(StartRun(config))
