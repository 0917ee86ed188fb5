"""The header's accuracy: which evaluation it shows as the accuracy of the weights on
screen, and what it says beside it. Pure: it reads the frozen telemetry (`TrainingView`)
and the position of the weights on screen; no pygame.

The rules, so that the header never contradicts the per-class bars and the film strip:
- a full test-set evaluation stays the headline while the weights on screen are not much
  newer than the weights it measured; a newer subset figure is written beside it, never
  in its place (one N step after a pause must not read as "it got worse");
- an evaluation is of much older weights when the weights on screen have trained more
  than twice as many batches as it, plus one (`much_newer`): then a subset of newer
  weights takes the headline and the old full figure is named beside it with its place
  in training ("full test set 8.45 % untrained");
- when every evaluation is of much older weights, the header says the weights on screen
  are being measured and gives the last figure as the last one, not as the current one.
"""
from __future__ import annotations

from dataclasses import dataclass

from mnist_live.window.telemetry import evaluation_label
from mnist_live.window.view_model import describe_position


@dataclass(frozen=True)
class Headline:
    """The header's accuracy: phrasings from the fullest to the shortest, whether it is of
    weights close to those on screen (False: the header says they are newer), and the
    evaluation it leads with (the per-class bars show the same one)."""
    phrasings: tuple
    current: bool = True
    evaluation: object = None    # history.EvalRecord, or None before any


def batches(epoch, batch, n_batches):
    """Batches trained since the start at (epoch, batch)."""
    return epoch * max(n_batches, 1) + batch


def much_newer(weights_at, evaluated_at):
    """Whether weights after `weights_at` batches are much newer than weights evaluated
    after `evaluated_at` (they trained more than twice as long, plus one batch)."""
    return weights_at - evaluated_at > evaluated_at + 1


def figure(ev):
    return f"{100 * ev.accuracy:.2f} %"


def headline(tele, at, noun="digit"):
    """The Headline of the telemetry `tele` (TrainingView) for the weights on screen
    `at` ((epoch, batch), None before any)."""
    full = tele.last_full
    latest = tele.latest
    subset = latest if latest is not None and latest.kind != "full" and \
        (full is None or latest.progress > full.progress) else None
    if latest is None:
        return Headline(("test accuracy -",))
    n = tele.n_batches
    w = batches(*at, n) if at is not None else None

    def fresh(ev):
        return ev is not None and (w is None or not much_newer(w, batches(ev.epoch, ev.batch, n)))

    if fresh(full):
        main = f"test accuracy {figure(full)} ({evaluation_label(full, noun)})"
        if subset is None:
            return Headline((main, main.split(" (")[0], figure(full)), evaluation=full)
        when = describe_position(subset.epoch, subset.batch)
        return Headline((f"{main} | {subset.n:,}-{noun} subset {figure(subset)} ({when})",
                         f"{main} | subset {figure(subset)}", main, main.split(" (")[0], figure(full)),
                        evaluation=full)
    if fresh(subset):
        main = f"test accuracy {figure(subset)} ({evaluation_label(subset, noun)})"
        if full is None:
            return Headline((main, main.split(" (")[0], f"{figure(subset)} (subset)"), evaluation=subset)
        when = describe_position(full.epoch, full.batch)
        return Headline((f"{main} | full test set {figure(full)} {when}", f"{main} | full {figure(full)} {when}",
                         main, main.split(" (")[0], f"{figure(subset)} (subset)"), evaluation=subset)
    newest = subset or full
    what = describe_position(*at)
    return Headline((f"test accuracy of the weights on screen ({what}): being measured | last "
                     f"{figure(newest)} ({evaluation_label(newest, noun)})",
                     f"weights {what}: being measured | last {figure(newest)} ({describe_position(*newest.position)})",
                     f"being measured | last {figure(newest)}", "being measured"), current=False, evaluation=newest)
