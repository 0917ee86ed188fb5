"""The guided first minute: a short tour on the first launch, a step per part of the window
(the input, the hidden layers, the lines, the output, the panel, three keys to try), each
one sentence with its part highlighted. Esc skips it; once closed it is remembered with the
view settings (`toured`) and F3 (or the help's button) shows it again. Pure Python: the
steps and what the keys and clicks do to the state; the region that draws it is
regions/tour_view.py."""
from __future__ import annotations

# (the part of the window a step highlights, its sentence)
STEPS = (
    ("input", "This is the test digit the network reads: 784 pixels, and the outlined ones are where the "
              "strongest lines start."),
    ("hidden", "Every hidden neuron, 1,024 and 512: brightness is how strongly it fires for this digit, and once "
               "the network has learned a little they sit in bands by the class they support most."),
    ("lines", "The lines carry most of the evidence from the ink to the answer: orange supports the class, blue "
              "opposes it, and the % says how much of it they carry."),
    ("output", "The ten outputs: the ring marks the answer, green when it is right and red when it is wrong."),
    ("panel", "Training as it happens: the loss and test accuracy, each class's accuracy, and this digit's "
              "history over the run."),
    ("toolbar", "Three keys to try: Space pauses, M shows a digit it gets wrong, F2 starts a new run with other "
                "settings. Every view is on this bar, and H lists every key."),
)


def start(state):
    """Open the tour at its first step (F3, or the help's button)."""
    state.tour_step = 0
    if state.overlay != "tour":
        state.toggle_overlay("tour")


def close(state):
    """Close the tour (skipped or finished): remembered, so it shows on a first launch only."""
    state.toured = True
    if state.overlay == "tour":
        state.toggle_overlay("tour")
    state.say("tour closed: F3 shows it again, H lists every key", 5)


def step(state, by):
    """The next (by=1) or previous (-1) step; past the last one the tour closes."""
    if state.tour_step + by >= len(STEPS):
        close(state)
        return
    state.tour_step = max(0, state.tour_step + by)
    state.touch()


def tour_key(state, key):
    """A key while the tour is open (`key`: pygame's key name): Right, Enter or Space go
    on, Left goes back, Esc skips; others do nothing while it is open (but Q, which
    events.handle_event never hands over, quits)."""
    if key in ("right", "return", "enter", "space"):
        step(state, 1)
    elif key == "left":
        step(state, -1)
    elif key == "escape":
        close(state)


def tour_click(state, what):
    """A click on one of the tour's buttons: "next", "back" or "skip"."""
    {"next": lambda: step(state, 1), "back": lambda: step(state, -1), "skip": lambda: close(state)}[what]()
