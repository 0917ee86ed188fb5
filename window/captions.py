"""The words on screen that explain the ideas: the caption strip above the legend (one or
two lines about the view on screen, toggled with I) and the ideas the help (H) lists; for
the views of learning (the backward pass, the steps' changes, step mode, training health),
one function per view and LEARNING_IDEAS.
Pure text: it reads the window's state (state.WindowState or its frozen StateView) and
plain values, and imports nothing of the window, so tests call it without a display. An
overlay view's caption is its region's own (`Region.caption`).
"""
from __future__ import annotations

IDEAS = (
    ("relevance", "how much each pixel or neuron counts towards the explained class's score (LRP): the score "
                  "split back layer by layer; orange supports the class, blue opposes it"),
    ("% between columns", "the share of the relevance the drawn lines carry: a few dozen of the 500,000 "
                          "connections carry little between the hidden layers, most next to the output"),
    ("dead", "a hidden neuron that is never on for any test {noun} in the window's last pass over the test set "
             "(measured on the test set: it may still fire on some training {noun}s)"),
    ("subset / full", "during the first epoch the trainer measures a fixed 1,000-{noun} subset often (about 100 "
                      "a class: per-class figures are noisy); the full test set after every epoch"),
    ("dream (V)", "the input that raises a score most, by gradient ascent from faint noise: strokes where the "
                  "class's ink usually is, speckle where the pixels push the score up without any shape"),
    ("caption (I)", "the strip above the legend says in a line or two what the view on screen shows; I hides it"),
)


def lines_caption(state, noun, explained):
    """What the lines (and the % between the columns) mean in the line mode (C) on screen,
    as phrasings from the fullest to the shortest."""
    k = state.k
    if state.rank_mode == "relevance":
        return (f"relevance (LRP): how much each neuron counts towards class {explained}'s score, split back layer "
                f"by layer; the % between columns is the share of it the {k} drawn lines carry (little between "
                f"hidden layers: it is spread over many connections)",
                f"relevance: each neuron's part in class {explained}'s score; % between columns = the share the "
                f"{k} lines carry",
                f"relevance: each neuron's part in {explained}'s score; % = the lines' share",
                "relevance: each neuron's part in the score")
    if state.rank_mode == "contribution":
        return (f"contribution |a*w|: the lines are the {k} connections per layer pair that pass the most signal "
                f"for this {noun} (activation x weight), whatever class it helps; orange excites, blue inhibits",
                f"lines: the {k} connections passing the most signal (|activation x weight|) for this {noun}",
                f"lines: most signal |a*w| for this {noun}")
    return (f"weight |w|: the lines are the {k} largest weights per layer pair, the same for every {noun}: what the "
            f"network could pass on, not what this {noun} uses; orange positive, blue negative",
            f"lines: the {k} largest weights |w|, the same for every {noun}",
            f"lines: largest weights, same for every {noun}")


def notes_caption(noun, dead, subset):
    """The second line of the plain view: what "dead" means when some neurons are, and
    what the accuracy is of during the first epoch (a subset); None when neither."""
    parts = []
    if dead:
        parts.append((f"dead (purple) = never on for any test {noun} (it may still fire on a training {noun})",
                      f"dead = never on for any test {noun}", "dead = never on"))
    if subset:
        parts.append((f"the accuracy is of a 1,000-{noun} subset, measured often in the first epoch (noisy per class); "
                      f"the full test set comes after each epoch",
                      f"accuracy: a 1,000-{noun} subset until the epoch ends, then the full test set",
                      "accuracy: subset, full after the epoch"))
    if not parts:
        return None
    return tuple("; ".join(p[i] for p in parts) for i in range(3))


def mode_caption(state, noun, explained, grouped=False):
    """The first line when the view shows something other than the plain network (the most
    specific first): a dream, rewound weights, the pixel map, the atlas, the grids grouped
    (`grouped`: the grids are on screen in bands); None for the plain network."""
    if state.dream is not None:
        return ("dream (V): the input that raises the score most, by gradient ascent from faint noise: strokes where "
                "the class's ink usually is, speckle where pixels push the score up without any shape",
                "dream: gradient ascent from faint noise; strokes of the class, speckle",
                "dream: gradient ascent from faint noise")
    if state.rewind is not None:
        return ("rewound (,): the whole window shows the network as it was at an earlier snapshot, while training "
                "goes on; . steps forward, back to the live weights",
                "rewound: the window shows an earlier snapshot; . steps forward to live",
                "rewound: an earlier snapshot (. forward)")
    if state.saliency == "relevance":
        return (f"pixel map (G): each pixel's share of the evidence for class {explained} (relevance): orange pixels "
                f"support it, blue oppose it; G again: the gradient",
                f"pixel map: each pixel's share of the evidence for {explained} (orange for, blue against)",
                "pixel map: each pixel's relevance")
    if state.saliency == "gradient":
        return (f"pixel map (G): d score / d pixel, how class {explained}'s score would change if each pixel got "
                f"brighter, ink or not (not what the ink contributed: that is relevance); G again: off",
                f"pixel map: how {explained}'s score would change with each pixel (gradient)",
                "pixel map: the gradient d score / d pixel")
    if state.atlas:
        return (f"atlas (A): each hidden neuron drawn as what it responds to, its prototype: the average of the test "
                f"{noun}s weighted by how strongly they turn it on",
                f"atlas: each neuron drawn as the average test {noun} that turns it on",
                "atlas: each neuron's prototype")
    if grouped:
        return ("grouped (O): hidden neurons in bands by the class they support most, a line between the bands; a "
                "neuron keeps its connections, only its place on screen changes (O: index order)",
                "grouped: hidden neurons sorted by the class they support most (O: index order)",
                "grouped by the class they support")
    return None


def caption(state, noun="digit", explained="0", dead=0, subset=False, overlay=None, grouped=False, learn=None):
    """The caption of the view on screen: up to two lines, each a tuple of phrasings from
    the fullest to the shortest (the strip shows the longest that fits). `explained` is the
    name of the class the lines explain ("3" or "3 rather than 5"), `dead` how many hidden
    neurons are dead, `subset` whether the accuracy shown is of the test subset, `overlay`
    the open overlay's own caption (its region's: () when it covers the window), which
    replaces the network's; `grouped`, whether the hidden grids are drawn in bands; `learn`,
    a view of learning's lines (learn_caption), which replace the network's too."""
    if overlay is not None:
        return overlay
    if learn:
        return learn
    first = mode_caption(state, noun, explained, grouped)
    lines = lines_caption(state, noun, explained)
    if first is None:
        notes = notes_caption(noun, dead, subset)
        return (lines, notes) if notes else (lines,)
    return first, lines


# ------------------------------------------------------------ watching it learn (issue 34)
# The views of the backward pass, the steps' changes, step mode and training health: each
# function gives one caption line as phrasings from the fullest to the shortest, like the
# ones above; `LEARNING_IDEAS` are their entries for the help's list of ideas.
LEARNING_IDEAS = (
    ("error signal δ", "how much the loss would change if a neuron's input rose a little: the error at the "
                       "output (the probabilities minus the right answer) passed back through the weights; "
                       "0 where a ReLU is off, since an off neuron passes nothing back"),
    ("gradient a·δ", "how much the loss would change with one weight: the activation it carries times the "
                     "error signal of the neuron it feeds; the optimizer moves the weight against it"),
    ("Δw", "what a step really changed: the weights after it minus before; with momentum or Adam that is not "
           "just the learning rate times the gradient"),
    ("update ratio", "the size of a step's change over the size of the weights; about 1/1,000 is the usual rule "
                     "of thumb, far more means too high a learning rate, far less too low"),
)


def backward_caption(noun, target, labelled, k):
    """The backward view: the error of this {noun} for class `target` flowing back; `labelled`:
    whether `target` is its true class (else the network's own answer, for a drawn one)."""
    against = (f"its true class {target}" if labelled
               else f"the network's own answer {target} (a drawn {noun} has no label)")
    return (f"backward: the error at the output (probabilities minus the right answer, {against}) flows back; "
            f"a neuron's colour is its error signal δ, 0 where the ReLU is off; the lines are the {k} weights "
            f"with the largest gradient a·δ for this {noun}, the % their share",
            f"backward: each neuron's error signal δ for class {target}; lines: the {k} largest gradients "
            f"a·δ",
            f"backward: error signals δ for class {target}",
            "backward: error signals")


def updates_caption(noun, steps, k, scores=True):
    """The view of what the steps changed, over the last batch (steps == 1), the last `steps`
    batches, or the last batches (steps == 0: none recorded yet); `scores`: whether this
    {noun}'s scores before and after the step are shown."""
    span = "the last batch" if steps == 1 else f"the last {steps} batches" if steps else "the last batches"
    with_scores = (f"; this {noun}'s scores before and after", "; scores before and after") if scores else ("", "")
    return (f"what the steps changed: the lines are the {k} weights the optimizer moved most over {span} (Δw as "
            f"applied, not just learning rate x gradient); a neuron's mark is how far its incoming weights moved"
            f"{with_scores[0]}",
            f"Δw over {span}: the {k} weights that moved most{with_scores[1]}",
            f"Δw: what {span} changed" if steps == 1 else f"Δw over {span}",
            "Δw: what the steps changed")


def elsewhere_note(end, now):
    """Y's second line when the change shown ends at other weights than those on screen (a
    step is recorded every few batches): where each is ('epoch 3, batch 40')."""
    return (f"the change shown ends at {end}; the weights on screen are at {now} (pause with Space and press N "
            f"for a step of the weights on screen)",
            f"the change ends at {end}; the weights on screen: {now}",
            f"ends at {end}")


def step_caption(noun, batch_size, loss, phase, paused=True):
    """Step mode, at `phase` (forward, loss, backward or update) of a step of `batch_size`
    {noun}s whose mean loss was `loss`, trained while paused (N) or in slow motion."""
    says = {"forward": f"the {noun} goes forward through the weights before the step",
            "loss": f"the batch's loss: {loss:.3g} on average over its {batch_size} {noun}s",
            "backward": "the error flows back: each neuron's error signal, the largest gradients",
            "update": "the optimizer changes the weights: the lines are the largest changes, the scores move"}[phase]
    how = (f"step mode (N): one batch of {batch_size} {noun}s trained while paused" if paused else
           f"slow motion: each batch of {batch_size} {noun}s played within its pause")
    return (f"{how}, played with that step's real numbers; now {says}" if paused else
            f"{how}, with that step's real numbers; now {says}",
            f"one step, its real numbers: {says}",
            f"step: {phase}")


def health_caption():
    """The training-health view."""
    return ("training health, per layer over time: the gradient's size; the update ratio, how big each step is "
            "against the weights (about 1/1,000 is usual, shaded); the share of ReLUs off on a batch; the weights' "
            "and activations' spread (bands: the middle 38 %, 68 %, 86 % and all)",
            "health: gradient size, update ratio (~1/1,000 usual), ReLUs off, spread of weights and activations",
            "health: gradients, update ratio, dead ReLUs, spreads",
            "training health")


def learn_caption(learn, noun, k, names):
    """The caption lines of a view of learning (learning.LearnView): what it shows, and what
    it waits for when it has no step of the weights on screen yet."""
    if learn.mode == "backward":
        return (backward_caption(noun, names[learn.target], learn.labelled, k),)
    if learn.mode == "step":
        size = len(learn.batch[0]) if learn.batch else 0
        return (step_caption(noun, size, learn.loss, learn.phase, learn.paused),)
    first = updates_caption(noun, learn.steps if learn.steps or learn.over_span else 1, min(k, 60),
                            learn.before is not None)
    if learn.awaited:
        return first, (learn.awaited,)
    return (first, elsewhere_note(*learn.elsewhere)) if learn.elsewhere else (first,)
