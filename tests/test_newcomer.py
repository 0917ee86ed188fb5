"""What a newcomer trips over: Esc that quits, noisy per-class changes, stale rates and
messages, cut or overlapping text, rewinding past the live weights, settings that do
not come back. Each test drives the real window (dummy video driver) or the pure
functions behind it."""
import pygame
import pytest

import data_loader
from window_driver import key, open_app
from window_state import Overlay


@pytest.fixture(scope="module")
def sample():
    return data_loader.load_dataset("mnist", offline=True, log=lambda *a: None)


@pytest.fixture(scope="module")
def fashion():
    return data_loader.load_dataset("fashion", offline=True, log=lambda *a: None)


def press(app, k, mod=0):
    key(k, mod)
    app.frame()


# ------------------------------------------------------------------ 1. Esc steps back
def test_esc_steps_back_one_level_at_a_time_and_never_quits(sample):
    app = open_app(sample)
    press(app, pygame.K_f)                                   # a filter
    press(app, pygame.K_d)                                   # drawing
    assert app.state.drawing and app.state.mistakes_only
    press(app, pygame.K_3, pygame.KMOD_SHIFT)               # explain class 3
    press(app, pygame.K_5, pygame.KMOD_CTRL)                # rather than 5
    press(app, pygame.K_v)                                   # a dream
    press(app, pygame.K_x)                                   # an overlay
    st = app.state
    assert st.overlay is Overlay.CONFUSION and st.dream is not None and st.contrast_class == 5
    steps = []
    for _ in range(8):
        press(app, pygame.K_ESCAPE)
        assert st.running, "Esc never quits"
        steps.append((st.overlay, st.dream is None, st.contrast_class, st.explain_class, st.drawing,
                      st.mistakes_only))
    assert steps[0] == (Overlay.NONE, False, 5, 3, True, True)          # the overlay closes first
    assert steps[1] == (Overlay.NONE, True, 5, 3, True, True)           # then the dream ends
    assert steps[2][2] is None and steps[2][3] == 3                     # then "rather than"
    assert steps[3][3] is None and steps[3][4]                          # then the explained class
    assert not steps[4][4] and steps[4][5]                              # then drawing
    assert not steps[5][5]                                              # then the filter
    assert steps[6] == steps[5] and "Q quits" in st.toast              # nothing left: says how to quit
    press(app, pygame.K_q)
    assert not st.running


def test_the_help_says_esc_goes_back_and_q_quits():
    from visualization import KEYS
    rows = {k.label: k for k in KEYS}
    assert "back" in rows["Esc"].help and "never quits" in rows["Esc"].help
    assert "quit" in rows["Q"].help
