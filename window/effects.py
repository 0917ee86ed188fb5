"""What the frame loop does with the effects the actions leave (`actions.Order`,
`Screenshot`, `Clip`, `SaveModel`, `Library`, `SwitchData`, `RestartRate` and
`experiment.StartRun`): orders go to the training process, files are written, the run
library's views are read, a new run is prepared for the loop to switch to. The window's
App calls `carry_out` from its loop; nothing else does. Imports pygame (the clipboard) and
the window's modules."""
from __future__ import annotations

import pygame

from mnist_live.training.messages import Command, Order
from mnist_live.window import actions as act
from mnist_live.window.experiment import StartRun, command_line
from mnist_live.window.trainer_link import model_path, save_weights, take_newest


def carry_out(app, effect):
    """Carry out an action's effect on the window `app`."""
    st = app.state
    if isinstance(effect, Order):
        if app.link is not None:
            app.link.send(effect)
    elif isinstance(effect, act.RestartRate):
        app.tele.speed_changed()
    elif isinstance(effect, act.Library):
        c = app.compare
        said = {"toggle": c.toggle, "axis": c.toggle_axis, "board": c.read_board}.get(effect.request)
        st.say(said() if said is not None else c.choose(effect.arg), 5)
        st.touch()
    elif isinstance(effect, act.Screenshot):
        app.outputs.screenshot(st)
    elif isinstance(effect, act.Clip):
        app.outputs.toggle_clip(st)
    elif isinstance(effect, act.SaveModel):
        save_model(app)
    elif isinstance(effect, act.SwitchData):
        try:
            app.switch_to, st.running = app.full.take(), False
        except Exception as exc:          # noqa: BLE001 - the cache vanished or broke since: stay on the sample
            st.say(f"could not switch to the full data set: {exc}", 8)
    elif isinstance(effect, StartRun):
        app.switch_to, app.next_config, st.running = app.data, effect.config, False


def save_model(app):
    """W: an order to the training process, or the window's own weights when it is gone."""
    path, d = model_path(app.config), app.display
    if app.link is not None and app.link.alive:
        app.link.send(Order(Command.SAVE, path=path))
        app.state.say(f"saving model to {path} ...")
        return
    take_newest(app.link, app.state, d)   # the last weights it published, not one publication before
    if d.stamp is not None:
        said, error = save_weights(d.net, d.stamp, path)
        app.state.say(said, 8)
        app.errors.extend([error] if error else [])


def announce(config):
    """A new run from the window: its command printed to the terminal and put on the
    clipboard where there is one; returns what the window says about it."""
    command = command_line(config)
    print(f"new run from the window; the same from a terminal:\n  {command}", flush=True)
    try:
        pygame.scrap.put_text(command)
        return f"{command}  (printed to the terminal, copied to the clipboard)"
    except (pygame.error, AttributeError, NotImplementedError):
        return f"{command}  (printed to the terminal)"
