"""The window's colours, each with one meaning, and the colour ramps (activation,
diverging, confusion cells). NumPy only: no pygame, no state."""
from __future__ import annotations

import numpy as np

BG = (16, 18, 26)                 # window background
PANEL_BG = (24, 27, 38)           # side panel and overlays
GRID_BG = (30, 34, 46)            # an inactive neuron / empty bar
TEXT = (225, 230, 240)
DIM = (140, 148, 165)             # secondary text
ACCENT = (86, 180, 233)           # neutral data: bars, accuracy curve, selection (Okabe-Ito sky blue)
POSITIVE = (255, 150, 40)         # warm: excitatory weight / contribution / saliency
NEGATIVE = (70, 150, 255)         # cool: inhibitory
RIGHT = (80, 205, 120)            # correct prediction
WRONG = (240, 80, 80)             # wrong prediction
DEAD = (105, 40, 85)              # a neuron never active on the test-set pass
LOSS_COLOR = (230, 159, 0)        # training-loss curve (Okabe-Ito orange)
SUBSET_COLOR = (105, 130, 150)    # test accuracy on the fixed 1,000-digit subset
# Earlier runs overlaid on the charts (K, B, F2, --compare), one colour per run, never the live run's: the
# Okabe-Ito colours (told apart with every common colour-vision deficiency) but orange and sky blue, which the
# live run's loss and accuracy already mean, and a light grey for the sixth; the first ones (the default
# overlay, the first runs picked) those farthest from the live run's orange and blue: bluish green, reddish
# purple, blue, then vermillion (next to the loss's orange) and yellow
COMPARE_COLORS = ((0, 158, 115), (204, 121, 167), (0, 114, 178), (213, 94, 0), (240, 228, 66), (190, 190, 190))
TRIAL_COLORS = {"finished": (120, 200, 160), "pruned": (150, 90, 110),      # a watched sweep's trials (--watch),
                "running": (250, 220, 120)}                                # by status; others TRIAL_OTHER
TRIAL_OTHER = (110, 112, 125)     # a watched trial that failed, diverged or was interrupted
CHANGED = (200, 150, 255)         # how far a neuron's incoming weights moved in a step (Y, step mode)
HEALTH_BAND = (52, 70, 58)        # the health view's usual range of the update ratio, shaded
CLASS_COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))   # map only


# activation colour ramp: inactive -> teal -> near white (brightness = activation)
_RAMP = np.array([GRID_BG, (20, 110, 150), (60, 200, 220), (235, 250, 255)], np.float32)


def _ramp_table(n=256):
    v = np.linspace(0, 1, n) * (len(_RAMP) - 1)
    i = np.minimum(v.astype(np.int32), len(_RAMP) - 2)
    t = (v - i)[:, None]
    return (_RAMP[i] * (1 - t) + _RAMP[i + 1] * t).astype(np.uint8)


RAMP_LUT = _ramp_table()          # (256, 3): a table lookup per frame instead of maths


def ramp(values):
    """values (...,) in [0, 1] -> uint8 RGB (..., 3) along the activation ramp."""
    return RAMP_LUT[(np.clip(values, 0, 1) * 255).astype(np.uint8)]


def change_ramp(values):
    """values (...,) in [0, 1] -> uint8 RGB (..., 3): dark (unchanged) to CHANGED (moved most)."""
    v = np.clip(values, 0, 1)[..., None]
    base = np.array(GRID_BG, np.float32)
    return (base + (np.array(CHANGED, np.float32) - base) * v).astype(np.uint8)


def diverging(values):
    """values (...,) in [-1, 1] -> RGB: cool for negative, warm for positive, dark at 0."""
    v = np.clip(values, -1, 1)[..., None]
    base = np.array(GRID_BG, np.float32)
    pos, neg = np.array(POSITIVE, np.float32), np.array(NEGATIVE, np.float32)
    out = np.where(v >= 0, base + (pos - base) * v, base + (neg - base) * -v)
    return out.astype(np.uint8)


def confusion_color(n, row_max, diagonal):
    """Colour of a confusion-matrix cell holding n of a row whose largest cell is row_max."""
    frac = (n / max(row_max, 1)) ** 0.5
    base = np.array(RIGHT if diagonal else WRONG, np.float32)
    return tuple(int(v) for v in np.array(GRID_BG, np.float32) * (1 - frac) + base * frac)


def verdict_color(pred, true):
    """Ring / frame colour: right, wrong, or neutral when there is no true label."""
    return ACCENT if true is None else RIGHT if pred == true else WRONG
