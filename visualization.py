"""The live Pygame view: every neuron, the strongest connections for the digit on
screen, activations, per-digit accuracy and a stats panel, while the network trains in a
background process.

Controls
    Left / Right        previous / next test digit
    PgUp / PgDn         100 digits back / forward
    Home / End          first / last test digit
    0 - 9               next test digit of that true class
    M / Shift+M         next / previous misclassified digit
    F                   browse mistakes only (on / off); leaves a confusion-cell filter
    R                   random test digit
    Space               pause / resume training
    N                   one training batch (while paused)
    [ / ]               slower / faster training (slow motion)
    C                   rank connections by contribution |a*w| or by weight |w|
    + / -               more / fewer connections drawn
    X                   confusion matrix (click a cell to browse that pair)
    G                   saliency overlay on the input digit
    D                   draw your own digit (left button draws, right erases, Backspace clears)
    S                   save a screenshot PNG
    W                   save the model (to --save, or mnist_model.npz)
    H / F1              help
    Esc / Q             quit
Mouse: hover a hidden neuron to see its receptive field and strongest connections;
click a digit in the film strip under the network to open it.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pygame

from data_loader import mnist_style, to_float
from neural_network import MLP
from trainer import TrainingProcess
from utils import accuracy, confusion_matrix, grid_shape, percentile, process_age

FPS = 60
BG = (16, 18, 26)                 # window background
PANEL_BG = (24, 27, 38)           # side panel and overlays
GRID_BG = (30, 34, 46)            # an inactive neuron
TEXT = (225, 230, 240)
DIM = (140, 148, 165)             # secondary text
ACCENT = (90, 180, 235)           # neutral data (bars, curves)
POSITIVE = (255, 150, 40)         # warm: excitatory weight / contribution / saliency
NEGATIVE = (70, 150, 255)         # cool: inhibitory
RIGHT = (80, 205, 120)            # correct prediction
WRONG = (240, 80, 80)             # wrong prediction
DEAD = (105, 40, 85)              # a neuron never active on the test-set sweep
LOSS_COLOR = (240, 190, 80)       # training-loss curve
SUBSET_COLOR = (60, 120, 160)     # test accuracy on the fixed 1,000-digit subset
MIN_SIZE = (640, 400)             # smaller windows show a notice instead of the network
HEADER_H = 34                     # title bar height
LEGEND_H = 40                     # legend strip under the network
SPEEDS = (0.0, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)   # seconds slept per batch ([ and ])
K_STEPS = (0, 5, 10, 20, 30, 60, 100, 200, 500, 1000, 2000, 5000)
SWEEP_CHUNK = 32                  # test digits re-predicted per slice of a frame's idle time
CANVAS = 280                      # drawing canvas resolution (10x MNIST)
HOVER_PX = 6                      # receptive-field pixels per input pixel in the tooltip
EASE = 0.35                       # per-frame step towards new activations (about 6 frames)

# activation colour ramp: inactive -> teal -> near white (brightness = activation)
_RAMP = np.array([GRID_BG, (20, 110, 150), (60, 200, 220), (235, 250, 255)], np.float32)


def _ramp_table(n=256):
    v = np.linspace(0, 1, n) * (len(_RAMP) - 1)
    i = np.minimum(v.astype(np.int32), len(_RAMP) - 2)
    t = (v - i)[:, None]
    return (_RAMP[i] * (1 - t) + _RAMP[i + 1] * t).astype(np.uint8)


_RAMP_LUT = _ramp_table()          # (256, 3): a table lookup per frame instead of maths


DIGIT_KEYS = {**{pygame.K_0 + d: d for d in range(10)},       # keypad codes are not in order
              **{getattr(pygame, f"K_KP{d}"): d for d in range(10)}}


def ramp(values):
    """values (...,) in [0, 1] -> uint8 RGB (..., 3) along the activation ramp."""
    return _RAMP_LUT[(np.clip(values, 0, 1) * 255).astype(np.uint8)]


def diverging(values):
    """values (...,) in [-1, 1] -> RGB: cool for negative, warm for positive, dark at 0."""
    v = np.clip(values, -1, 1)[..., None]
    base = np.array(GRID_BG, np.float32)
    pos, neg = np.array(POSITIVE, np.float32), np.array(NEGATIVE, np.float32)
    out = np.where(v >= 0, base + (pos - base) * v, base + (neg - base) * -v)
    return out.astype(np.uint8)


# ---------------------------------------------------------------------------- layout
@dataclass
class Grid:
    """Where a layer's neurons sit on screen: a rows x cols block of square cells."""
    rect: pygame.Rect
    rows: int
    cols: int
    cell: int
    n: int

    def centers(self):
        """(n, 2) float32 pixel centres of the cells, in neuron order (row-major)."""
        k = np.arange(self.n)
        r, c = k // self.cols, k % self.cols
        return np.stack([self.rect.x + (c + 0.5) * self.cell, self.rect.y + (r + 0.5) * self.cell], 1).astype(np.float32)

    def index_at(self, pos):
        if not self.rect.collidepoint(pos):
            return None
        c = (pos[0] - self.rect.x) // self.cell
        r = (pos[1] - self.rect.y) // self.cell
        k = r * self.cols + c
        return int(k) if k < self.n else None


@dataclass
class Layout:
    size: tuple
    header: pygame.Rect
    network: pygame.Rect
    legend: pygame.Rect
    panel: pygame.Rect
    input: Grid
    hidden: list
    output: pygame.Rect
    output_rows: list          # one Rect per class
    output_centers: np.ndarray # (10, 2)
    font_size: int
    strip: pygame.Rect = None  # film strip of neighbouring test digits (None if no room)


def hidden_grid_shape(n):
    """Tall grid for a hidden layer of n neurons: 1024 -> 32x32, 512 -> 32 rows x 16 cols."""
    rows, cols = grid_shape(n)
    return max(rows, cols), min(rows, cols)


def compute_layout(width, height, hidden_sizes, label_w=20):
    """All rectangles for a window of this size; pure, so tests can check for overlap.
    label_w is the pixel width of the longest output class name."""
    font_size = 15 if height < 800 or width < 1400 else 17
    panel_w = int(np.clip(width * 0.25, 300, 420))
    header = pygame.Rect(0, 0, width, HEADER_H)
    panel = pygame.Rect(width - panel_w, HEADER_H, panel_w, height - HEADER_H)
    net = pygame.Rect(0, HEADER_H, width - panel_w, height - HEADER_H - LEGEND_H)
    legend = pygame.Rect(0, height - LEGEND_H, width - panel_w, LEGEND_H)
    shapes = [hidden_grid_shape(n) for n in hidden_sizes]
    label_h = 2 * font_size + 14            # two label lines above the columns
    usable_h = net.height - label_h - 12
    out_w = (150 if width >= 1400 else 130) + max(0, int(1.4 * (label_w - 20)))
    n_gaps = len(shapes) + 2                # between the columns, and half a gap at each end

    def fit(max_h):
        """Biggest cell size whose columns fit in max_h and the width, else the smallest."""
        for cell in range(24, 1, -1):
            in_cell = max(2, min(10, int(cell * 0.75)))
            widths = [28 * in_cell] + [c * cell for _, c in shapes] + [out_w]
            heights = [28 * in_cell] + [r * cell for r, _ in shapes]
            gap = (net.width - 40 - sum(widths)) / n_gaps
            if max(heights) <= max_h and gap >= 36:
                return cell, in_cell, widths, heights, gap, True
        return cell, in_cell, widths, heights, gap, False

    strip_need = 2 * font_size + 60                      # the film strip's height, with margins
    cell, in_cell, widths, heights, gap, ok = fit(usable_h - strip_need)   # keep room for the strip
    if not ok:
        cell, in_cell, widths, heights, gap, ok = fit(usable_h)
    gap = max(gap, 0.0)
    column_h = max(heights)
    slack = usable_h - column_h
    strip = None
    if slack >= strip_need:                 # room under the columns for the film strip
        strip_h = min(2 * font_size + 76, slack - 16)
        top = net.y + label_h + (slack - strip_h - 16) // 2
        strip = pygame.Rect(net.x + 20, top + column_h + 16 + 6, net.width - 40, strip_h - 6)
    else:
        top = net.y + label_h + max(0, slack // 2)
    x = net.x + 20 + gap / 2
    rects = []
    for w, h in zip(widths, heights + [column_h]):
        rects.append(pygame.Rect(int(x), int(top + (column_h - h) / 2), int(w), int(h)))
        x += w + gap
    input_grid = Grid(rects[0], 28, 28, in_cell, 784)
    hidden = [Grid(r, rows, cols, cell, n) for r, (rows, cols), n in zip(rects[1:-1], shapes, hidden_sizes)]
    out = rects[-1]
    row_h = min(out.height // 10, 44)
    out = pygame.Rect(out.x, out.y + (out.height - 10 * row_h) // 2, out.width, 10 * row_h)
    rows = [pygame.Rect(out.x, out.y + i * row_h, out.width, row_h) for i in range(10)]
    centers = np.array([[r.x + 10, r.centery] for r in rows], np.float32)
    return Layout((width, height), header, net, legend, panel, input_grid, hidden, out, rows, centers, font_size,
                  strip)


# ------------------------------------------------------------------------- analysis
def strongest_connections(weights, acts, k, mode="contribution"):
    """For each layer pair, the k strongest connections as (src, dst, signed value),
    weakest first (so the strongest are drawn on top).

    contribution: |a_src * w| for the sample on screen (what drives *this* prediction);
    weight: |w| alone. weights[i] is (fan_in, fan_out), acts[i] is (fan_in,)."""
    out = []
    for W, a in zip(weights, acts):
        if k <= 0:
            out.append((np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)))
            continue
        if mode == "contribution":
            src_pool = np.flatnonzero(a)                       # inactive sources contribute 0
            values = a[src_pool, None] * W[src_pool]          # (n_active, fan_out)
        else:
            src_pool = np.arange(W.shape[0])
            values = W
        flat = np.abs(values).ravel()
        kk = min(k, flat.size)
        if kk == 0:
            out.append((np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32)))
            continue
        top = np.argpartition(flat, flat.size - kk)[flat.size - kk:]
        top = top[np.argsort(flat[top], kind="stable")]
        rows, cols = np.divmod(top, values.shape[1])
        out.append((src_pool[rows], cols, values.ravel()[top].astype(np.float32)))
    return out


def receptive_field(weights, layer, j):
    """Input-space picture (28, 28) of hidden neuron j of hidden layer `layer` (0-based):
    its input weights for the first layer, weights projected back (W1 @ W2[:, j]) deeper."""
    v = weights[layer][:, j]
    for W in reversed(weights[:layer]):
        v = W @ v                                              # (fan_in, fan_out) @ (fan_out,)
    return v.reshape(28, 28)


@dataclass
class Sweep:
    """Re-predicts the whole test set a chunk per frame, so 'misclassified' and the
    confusion matrix follow the current weights without freezing the window. Also
    records which hidden neurons were ever active (the rest are drawn as dead)."""
    n: int
    hidden: tuple
    pos: int = 0
    work: np.ndarray = None
    predictions: np.ndarray = None       # last complete pass (N,), None until one exists
    ever_active: list = None
    dead: list = None                    # last complete pass: bool (n_hidden,) per layer
    dirty: bool = True                   # weights changed since this pass began

    def __post_init__(self):
        self.work = np.zeros(self.n, np.int16)
        self.ever_active = [np.zeros(h, bool) for h in self.hidden]

    def step(self, net, x_test, chunk):
        if not self.dirty and self.predictions is not None:
            return
        end = min(self.pos + chunk, self.n)
        xb = to_float(x_test[self.pos:end])
        acts = net.forward(xb, return_all=True)
        self.work[self.pos:end] = acts[-1].argmax(axis=1)
        for seen, a in zip(self.ever_active, acts[1:-1]):
            seen |= (a > 0).any(axis=0)
        self.pos = end
        if self.pos >= self.n:
            self.predictions = self.work.copy()
            self.dead = [~seen for seen in self.ever_active]
            self.ever_active = [np.zeros(h, bool) for h in self.hidden]
            self.pos = 0
            self.dirty = False

    def restart(self):
        """Begin a fresh pass (the weights changed and will stay as they are)."""
        self.pos = 0
        self.ever_active = [np.zeros(h, bool) for h in self.hidden]
        self.dirty = True

    def finish(self, net, x_test):
        """Complete the current pass now (used once if a key needs it before the first pass)."""
        while self.predictions is None:
            self.step(net, x_test, 2000)


# ---------------------------------------------------------------------------- state
@dataclass
class AppState:
    """Everything that changes while the app runs (the Config never does)."""
    index: int = 0                   # test digit on screen
    running: bool = True
    paused: bool = False
    finished: bool = False
    diverged: str = ""
    speed: int = 0                   # index into SPEEDS
    k: int = 60
    rank_mode: str = "contribution"
    mistakes_only: bool = False
    pair_filter: tuple = None        # (true, predicted) chosen in the confusion matrix
    show_help: bool = False
    show_confusion: bool = False
    show_saliency: bool = False
    drawing: bool = False
    canvas: np.ndarray = field(default_factory=lambda: np.zeros((CANVAS, CANVAS), np.float32))
    hover: tuple = None              # (hidden layer, neuron) under the mouse
    toast: str = ""
    toast_until: float = 0.0
    # training progress, from the worker
    epoch: int = 0                   # epoch being trained (0-based)
    epochs_done: int = 0             # completed epochs at the last full evaluation
    batch: int = 0
    n_batches: int = 1
    samples_per_s: float = 0.0
    speeds: list = field(default_factory=list)
    lr: float = 0.0
    train_acc: float = 0.0
    loss_curve: list = field(default_factory=list)       # (epochs as float, loss)
    acc_curve: list = field(default_factory=list)        # (epochs as float, test accuracy) full set
    subset_curve: list = field(default_factory=list)     # same on the fixed subset
    per_class: np.ndarray = None
    prev_per_class: np.ndarray = None
    last_per_class: dict = field(default_factory=dict)   # latest per-class accuracy per evaluation kind
    per_class_source: str = ""
    test_accuracy: float = float("nan")
    confusion: np.ndarray = None
    dirty: bool = True               # the digit or weights changed: recompute the view


def say(state, text, seconds=3.0):
    state.toast, state.toast_until = text, time.monotonic() + seconds


class TextCache:
    """Rendered text surfaces, re-rendered only when the string changes."""

    def __init__(self):
        self.fonts, self.surfs = {}, {}

    def font(self, size, bold=False):
        key = (size, bold)
        if key not in self.fonts:
            f = pygame.font.Font(None, int(size * 1.3))
            f.set_bold(bold)
            self.fonts[key] = f
        return self.fonts[key]

    def render(self, text, size, color=TEXT, bold=False):
        key = (text, size, color, bold)
        surf = self.surfs.get(key)
        if surf is None:
            if len(self.surfs) > 3000:
                self.surfs.clear()
            surf = self.surfs[key] = self.font(size, bold).render(text, True, color)
        return surf

    def fit(self, text, size, width, bold=False):
        """text, shortened with '...' so it renders within width pixels."""
        key = ("fit", text, size, width, bold)
        out = self.surfs.get(key)
        if out is None:
            font, out = self.font(size, bold), text
            if font.size(text)[0] > width:
                lo, hi = 0, len(text)
                while lo < hi:                       # longest prefix that fits with '...'
                    mid = (lo + hi + 1) // 2
                    if font.size(text[:mid] + "...")[0] <= width:
                        lo = mid
                    else:
                        hi = mid - 1
                out = text[:lo] + "..."
            self.surfs[key] = out
        return out

    def widest(self, texts, size, bold=False):
        """Pixel width of the widest of texts."""
        return max(self.render(t, size, TEXT, bold).get_width() for t in texts)

    def blit(self, target, text, pos, size, color=TEXT, bold=False, anchor="topleft"):
        surf = self.render(text, size, color, bold)
        rect = surf.get_rect(**{anchor: pos})
        target.blit(surf, rect)
        return rect


# ------------------------------------------------------------------------------ app
class App:
    """The window: events -> update -> draw, 60 times a second."""

    def __init__(self, config, data, screen=None, worker=True):
        self.config = config
        self.data = data
        self.names = data.class_names
        self.fashion = data.name == "fashion"
        self.state = AppState(k=config.connections, paused=config.no_train)
        self.net = MLP(config.sizes, config.activation, seed=config.seed)
        self.worker = None
        if worker:
            self.worker = TrainingProcess(config, data, model_file=config.load)
            # the window's network shares the arrays the worker's snapshots are copied into
            self.net.weights, self.net.biases = self.worker.weights, self.worker.biases
        self.x_test = data.x_test
        self.y_test = data.y_test.astype(np.int64)
        self.sweep = Sweep(len(self.y_test), tuple(config.hidden))
        self.screen = screen
        self.text = TextCache()
        self.layout = None
        self.frame_ms = []
        self.frame_interval_ms = []
        self.weights_seen = False
        self.view = None
        self.rng = np.random.default_rng()
        self._surf_cache = {}
        self.worker_paused = False       # the worker acknowledged the last pause
        self.sweep_cost = 0.0            # seconds one sweep slice takes (decaying maximum)
        self.view_version = 0            # bumped whenever the view is recomputed
        self.view_cost = 0.0             # seconds to recompute the view and redraw its lines
        self.weights_pending = False     # new weights not yet shown
        self.defer_lines = False         # show the previous lines for one more frame
        self.snap = True                 # next frame shows the view as is (no easing)
        self.errors = []                 # failed saves and screenshots, for the exit status
        self.toast_span = (0, 0)         # free x range in the header (set by draw_header)
        self.shown = {}                  # eased brightness / bar values on screen, per key
        self.last_weight_view = 0.0
        self.panel_bars = []             # (10) bar rectangles of the per-class panel, for tests
        self.strip_hits = []             # (rect, test index) of the film strip's thumbnails
        self.last_frame = self.frame_start = time.perf_counter()

    # -------------------------------------------------------------- current digit
    def sample(self):
        """The input on screen as float32 (784,) in [0, 1]."""
        if self.state.drawing:
            return mnist_style(self.state.canvas).reshape(784)
        return to_float(self.x_test[self.state.index])

    def compute_view(self):
        """Activations, prediction and connections for the digit on screen."""
        x = self.sample()
        with np.errstate(all="ignore"):            # a diverged model may overflow: draw it anyway
            acts = [np.nan_to_num(a, nan=0.0, posinf=1e30, neginf=-1e30)
                    for a in self.net.forward(x, return_all=True)]
        probs = acts[-1]
        conns = strongest_connections(self.net.weights, acts[:-1], self.state.k, self.state.rank_mode)
        saliency = None
        if self.state.show_saliency:
            saliency = self.net.input_gradient(x, int(probs.argmax()))
        self.view = dict(x=x, acts=acts, probs=probs, pred=int(probs.argmax()), conns=conns, saliency=saliency)
        self.view_version += 1
        self.state.dirty = False

    # ------------------------------------------------------------------ navigation
    def candidates(self):
        """Indices that browsing may land on under the current filter (None = all)."""
        st = self.state
        if st.pair_filter is None and not st.mistakes_only:
            return None
        preds = self.predictions()
        if st.pair_filter is not None:
            t, p = st.pair_filter
            return np.flatnonzero((self.y_test == t) & (preds == p))
        return np.flatnonzero(preds != self.y_test)

    def predictions(self):
        if self.sweep.predictions is None and (self.weights_seen or self.worker is None):
            self.sweep.finish(self.net, self.x_test)
        return self.sweep.predictions

    def go(self, index):
        st = self.state
        st.index = int(np.clip(index, 0, len(self.y_test) - 1))
        st.drawing = False
        st.dirty = True

    def step(self, delta):
        """Move by delta digits, within the active filter if there is one."""
        cand = self.candidates()
        if cand is None:
            self.go(self.state.index + delta)
            return
        if len(cand) == 0:
            say(self.state, "no test digits match the filter")
            return
        pos = np.searchsorted(cand, self.state.index)
        if delta > 0:
            pos = pos + (delta - 1) + (1 if pos < len(cand) and cand[pos] == self.state.index else 0)
        else:
            pos = pos + delta
        self.go(cand[int(np.clip(pos, 0, len(cand) - 1))])

    def next_where(self, mask, direction=1):
        """Next (or previous) index after the current one where mask is True, wrapping."""
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return False
        cur = self.state.index
        if direction > 0:
            after = idx[idx > cur]
            self.go(after[0] if len(after) else idx[0])
        else:
            before = idx[idx < cur]
            self.go(before[-1] if len(before) else idx[-1])
        return True

    # ---------------------------------------------------------------------- events
    def handle_event(self, event):
        st = self.state
        if event.type == pygame.QUIT:
            st.running = False
        elif event.type == pygame.KEYDOWN:
            self.handle_key(event)
        elif event.type in (pygame.MOUSEMOTION, pygame.MOUSEBUTTONDOWN):
            self.handle_mouse(event)
        elif event.type in (pygame.WINDOWRESIZED, pygame.WINDOWSIZECHANGED, pygame.VIDEORESIZE):
            self.layout = None

    def handle_key(self, event):
        st, key, shift = self.state, event.key, bool(event.mod & pygame.KMOD_SHIFT)
        n = len(self.y_test)
        if key in (pygame.K_ESCAPE, pygame.K_q):
            if st.show_help or st.show_confusion:
                st.show_help = st.show_confusion = False
                if key == pygame.K_ESCAPE:
                    return
            st.running = False
        elif key in (pygame.K_h, pygame.K_F1):
            st.show_help = not st.show_help
        elif key == pygame.K_RIGHT:
            self.step(1)
        elif key == pygame.K_LEFT:
            self.step(-1)
        elif key == pygame.K_PAGEDOWN:
            self.step(100)
        elif key == pygame.K_PAGEUP:
            self.step(-100)
        elif key == pygame.K_HOME:
            cand = self.candidates()
            self.go(0 if cand is None or not len(cand) else cand[0])
        elif key == pygame.K_END:
            cand = self.candidates()
            self.go(n - 1 if cand is None or not len(cand) else cand[-1])
        elif key in DIGIT_KEYS:
            digit = DIGIT_KEYS[key]
            where = self.y_test == digit
            if st.mistakes_only:                 # the filter on screen still applies
                where &= self.predictions() != self.y_test
            if not self.next_where(where):
                say(st, f"no {'misclassified ' if st.mistakes_only else ''}test digit of class {self.names[digit]}")
        elif key == pygame.K_m:
            if not self.next_where(self.predictions() != self.y_test, -1 if shift else 1):
                say(st, "no misclassified test digits")
        elif key == pygame.K_f:
            st.mistakes_only = not st.mistakes_only and st.pair_filter is None   # F also leaves a pair filter
            st.pair_filter = None
            say(st, "browsing mistakes only" if st.mistakes_only else "browsing all test digits")
            if st.mistakes_only:
                self.next_where(self.predictions() != self.y_test)
        elif key == pygame.K_r:
            cand = self.candidates()
            self.go(self.rng.integers(n) if cand is None or not len(cand) else self.rng.choice(cand))
        elif key == pygame.K_SPACE:
            if st.finished or self.config.no_train:
                say(st, "training has finished" if st.finished else "training is off (--no-train)")
            else:
                st.paused = not st.paused
                self.worker_paused = False
                self.send("pause" if st.paused else "resume")
        elif key == pygame.K_n:
            if st.finished or self.config.no_train:
                say(st, "training has finished" if st.finished else "training is off (--no-train)")
            elif not st.paused:
                say(st, "N trains one batch while paused (Space pauses)")
            else:
                self.send("step")
        elif key in (pygame.K_LEFTBRACKET, pygame.K_RIGHTBRACKET):
            st.speed = int(np.clip(st.speed + (1 if key == pygame.K_LEFTBRACKET else -1), 0, len(SPEEDS) - 1))
            self.send("delay", seconds=SPEEDS[st.speed])
            say(st, "full speed" if st.speed == 0 else f"slow motion: {SPEEDS[st.speed] * 1000:g} ms pause per batch")
        elif key == pygame.K_c:
            st.rank_mode = "weight" if st.rank_mode == "contribution" else "contribution"
            st.dirty = True
            say(st, f"connections ranked by {'|activation x weight|' if st.rank_mode == 'contribution' else '|weight|'}")
        elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS, pygame.K_MINUS, pygame.K_KP_MINUS):
            up = key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS)
            i = int(np.searchsorted(K_STEPS, st.k))
            if up:
                larger = [k for k in K_STEPS if k > st.k]
                st.k = larger[0] if larger else st.k
            else:
                st.k = K_STEPS[max(i - 1, 0)]
            st.dirty = True
            say(st, f"{st.k} connections per layer pair")
        elif key == pygame.K_x:
            st.show_confusion = not st.show_confusion
        elif key == pygame.K_g:
            st.show_saliency = not st.show_saliency
            st.dirty = True
        elif key == pygame.K_d:
            st.drawing = not st.drawing
            st.dirty = True
            say(st, "draw a digit: left button draws, right erases, Backspace clears" if st.drawing else "back to test digits")
        elif key == pygame.K_BACKSPACE and st.drawing:
            st.canvas[...] = 0
            st.dirty = True
        elif key == pygame.K_s:
            self.save_screenshot()
        elif key == pygame.K_w:
            path = os.path.abspath(self.config.save or "mnist_model.npz")   # the worker's cwd may differ
            if self.worker is None:
                say(st, "no model to save")
            else:
                self.send("save", path=path)
                say(st, f"saving model to {path} ...")

    def handle_mouse(self, event):
        st, lay = self.state, self.layout
        if lay is None:
            return
        pos = event.pos
        if st.show_confusion and event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            cell = self.confusion_cell_at(pos)
            if cell is not None:
                st.pair_filter = cell
                st.mistakes_only = False
                st.show_confusion = False
                t, p = cell
                cand = self.candidates()
                if len(cand):
                    self.go(cand[0])
                say(st, f"browsing {len(cand)} digits: true {self.names[t]}, predicted {self.names[p]} "
                        f"(Left/Right; F leaves the filter)")
            return
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and not st.show_help:
            for box, idx in self.strip_hits:
                if box.collidepoint(pos):
                    self.go(idx)
                    return
        if st.drawing and lay.input.rect.collidepoint(pos):
            buttons = event.buttons if event.type == pygame.MOUSEMOTION else \
                (event.button == 1, event.button == 2, event.button == 3)
            if buttons[0] or buttons[2]:
                self.paint(pos, erase=bool(buttons[2]) and not buttons[0])
        st.hover = None
        for layer, grid in enumerate(lay.hidden):
            j = grid.index_at(pos)
            if j is not None:
                st.hover = (layer, j)

    def paint(self, pos, erase=False):
        """Anti-aliased round brush on the high-resolution canvas."""
        r = self.layout.input.rect
        cx = (pos[0] - r.x) / r.width * CANVAS
        cy = (pos[1] - r.y) / r.height * CANVAS
        radius = CANVAS / 28 * 1.3
        ys, xs = np.ogrid[0:CANVAS, 0:CANVAS]
        d = np.sqrt((xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2)
        ink = np.clip(radius - d + 0.5, 0, 1).astype(np.float32)     # 1 inside, soft 1-px edge
        if erase:
            np.minimum(self.state.canvas, 1 - ink, out=self.state.canvas)
        else:
            np.maximum(self.state.canvas, ink, out=self.state.canvas)
        self.state.dirty = True

    def confusion_rect(self):
        net = self.layout.network
        side = min(net.width - 160, net.height - 100)
        return pygame.Rect(net.x + 110, net.y + 60, side, side)

    def confusion_cell_at(self, pos):
        r = self.confusion_rect()
        if not r.collidepoint(pos):
            return None
        cell = r.width / 10
        return int((pos[1] - r.y) // cell), int((pos[0] - r.x) // cell)

    def send(self, command, **kw):
        if self.worker is not None:
            self.worker.send(command, **kw)

    # ---------------------------------------------------------------------- update
    def update(self):
        """Read the worker's messages and weight snapshots; advance the test-set sweep."""
        st = self.state
        if self.worker is not None:
            messages, changed = self.worker.poll()
            for msg in messages:
                self.on_message(msg)
            if changed:
                self.weights_seen = True
                self.weights_pending = True
                if st.paused or st.finished or self.config.no_train:
                    self.sweep.restart()          # exact predictions for weights that stay
                else:
                    self.sweep.dirty = True       # while training: a rolling, seconds-old pass
            if not self.worker.process.is_alive() and not st.diverged and st.running:
                st.diverged = "the training process stopped unexpectedly"
                say(st, st.diverged, 10)
        # New weights refresh the picture at most every few view-costs, so thousands of
        # connections (K = 5000) cannot eat every frame; user actions refresh at once.
        now = time.perf_counter()
        user_changed = st.dirty
        if self.weights_pending and now - self.last_weight_view >= max(0.05, 6 * self.view_cost):
            st.dirty = True
            # new weights alone: redraw their lines next frame, so no frame does both jobs
            self.defer_lines = not user_changed
        if st.dirty or self.view is None:
            if self.weights_pending:
                self.weights_pending, self.last_weight_view = False, now
            self.snap = self.snap or user_changed    # a new digit jumps; new weights glide
            self.compute_view()
            self.view_cost = time.perf_counter() - now      # + the connection redraw, added there

    def on_message(self, msg):
        st, kind = self.state, msg["type"]
        if kind == "batch":
            st.epoch, st.batch, st.n_batches = msg["epoch"], msg["batch"], msg["n_batches"]
            st.samples_per_s, st.lr, st.train_acc = msg["samples_per_s"], msg["lr"], msg["accuracy"]
            if msg["samples_per_s"] > 0 and st.speed == 0:
                st.speeds.append(msg["samples_per_s"])
            st.loss_curve.append((msg["epoch"] + msg["batch"] / msg["n_batches"], msg["loss"]))
        elif kind in ("eval", "subset"):
            per_class = np.array(msg["per_class"], np.float64)
            st.prev_per_class = st.last_per_class.get(kind)        # compare like with like
            st.last_per_class[kind] = per_class
            st.per_class = per_class
            st.per_class_source = "full test set" if kind == "eval" else f"{int(np.sum(msg['confusion']))}-digit subset"
            (st.acc_curve if kind == "eval" else st.subset_curve).append((msg["progress"], msg["accuracy"]))
            if kind == "eval":
                if self.sweep.predictions is None and msg.get("predictions") is not None:
                    # the worker's exact pass, until the window's own first pass completes:
                    # M, F and X need no 0.4 s synchronous pass in the first seconds
                    self.sweep.predictions = np.asarray(msg["predictions"], np.int16)
                st.epochs_done = msg["epoch"]
                st.test_accuracy = msg["accuracy"]
                st.confusion = np.array(msg["confusion"])
        elif kind in ("paused", "state"):         # exact position where training stands
            st.epoch, st.batch = msg["epoch"], msg["batch"]
            self.worker_paused = kind == "paused"
            if self.worker_paused:
                self.sweep.restart()
        elif kind == "finished":
            st.finished = True
            self.sweep.restart()                   # the weights are final: one exact pass
            say(st, f"training finished after {msg['epoch']} epochs", 5)
        elif kind == "saved":
            say(st, f"model saved to {msg['path']}", 5)
        elif kind in ("error", "diverged"):
            if kind == "diverged":                 # the worker paused itself
                st.paused, st.diverged = True, msg["text"]
                self.sweep.restart()
            say(st, msg["text"], 10)

    # ------------------------------------------------------------------------ draw
    def draw(self, surface):
        w, h = surface.get_size()
        if w < MIN_SIZE[0] or h < MIN_SIZE[1]:
            self.layout = None
            surface.fill(BG)
            self.text.blit(surface, f"window too small: at least {MIN_SIZE[0]}x{MIN_SIZE[1]}", (w // 2, h // 2),
                           13, TEXT, False, "center")
            return
        if self.layout is None or self.layout.size != surface.get_size():
            fs = 15 if surface.get_height() < 800 or surface.get_width() < 1400 else 17
            label_w = self.text.widest(self.names, fs)
            self.layout = compute_layout(*surface.get_size(), self.config.hidden, label_w)
        lay, st = self.layout, self.state
        surface.fill(BG)
        self.draw_header(surface)
        if st.show_confusion:
            self.draw_confusion(surface)
        else:
            self.draw_input(surface)
            for layer, grid in enumerate(lay.hidden):
                self.draw_hidden(surface, layer, grid)
            self.draw_output(surface)
            if st.hover is None:                  # a hovered neuron shows only its own lines
                self.draw_connections(surface)
            self.draw_strip(surface)
            if st.hover is not None:
                self.draw_hover(surface)          # last: the tooltip covers the rest
        self.draw_legend(surface)
        self.draw_panel(surface)
        self.snap = False
        if st.show_help:
            self.draw_help(surface)
        if st.toast and time.monotonic() < st.toast_until:
            self.draw_toast(surface)

    def draw_header(self, surface):
        lay, st = self.layout, self.state
        pygame.draw.rect(surface, PANEL_BG, lay.header)
        title = "Fashion-MNIST" if self.fashion else "MNIST"
        left = self.text.blit(surface, f"Neural network learning {title} - live", (12, lay.header.centery), 18, TEXT, True, "midleft").right
        mode = []
        if st.drawing:
            mode.append("DRAWING")
        if st.mistakes_only:
            mode.append("MISTAKES ONLY")
        if st.pair_filter is not None:
            mode.append(f"TRUE {self.names[st.pair_filter[0]]} / PRED {self.names[st.pair_filter[1]]}")
        hint = "   ".join(mode + ["H: help"])
        right = self.text.blit(surface, hint, (lay.size[0] - 12, lay.header.centery), 15, DIM, False, "midright").x
        self.toast_span = (left + 24, right - 24)   # free header space: messages go there

    def column_label(self, surface, rect, text, second=""):
        """Label above a column (all columns share one row), with an optional second,
        smaller line under it."""
        lay = self.layout
        y = min([lay.input.rect.y] + [g.rect.y for g in lay.hidden] + [lay.output.y]) - 8
        if second:
            self.text.blit(surface, second, (rect.centerx, y), lay.font_size - 2, DIM, False, "midbottom")
            y -= lay.font_size + 2
        self.text.blit(surface, text, (rect.centerx, y), lay.font_size, TEXT, False, "midbottom")

    def grid_surface(self, key, rgb, rows, cols, cell, gaps=True):
        """Blit-ready surface of a rows x cols grid of colours rgb (rows*cols, 3), one
        colour per cell, scaled up crisply (nearest neighbour) with 1-px gaps."""
        if len(rgb) < rows * cols:                               # last grid row not full
            rgb = np.concatenate([rgb, np.tile(np.array(BG, np.uint8), (rows * cols - len(rgb), 1))])
        small = self._surf_cache.get((key, "small"))
        if small is None or small.get_size() != (cols, rows):
            small = self._surf_cache[(key, "small")] = pygame.Surface((cols, rows))
        pygame.surfarray.blit_array(small, rgb.reshape(rows, cols, 3).transpose(1, 0, 2))
        size = (cols * cell, rows * cell)
        big = self._surf_cache.get(key)
        if big is None or big.get_size() != size:
            big = self._surf_cache[key] = pygame.Surface(size)
        pygame.transform.scale(small, size, big)
        if gaps and cell >= 5:
            big.blit(self.gap_mask(size, cell), (0, 0))
        return big

    def gap_mask(self, size, cell):
        """Transparent surface with background-coloured lines between cells."""
        key = ("gaps", size, cell)
        mask = self._surf_cache.get(key)
        if mask is None:
            mask = pygame.Surface(size)
            mask.fill((255, 0, 255))
            mask.set_colorkey((255, 0, 255))
            for x in range(cell - 1, size[0], cell):
                pygame.draw.line(mask, BG, (x, 0), (x, size[1]))
            for y in range(cell - 1, size[1], cell):
                pygame.draw.line(mask, BG, (0, y), (size[0], y))
            self._surf_cache[key] = mask
        return mask

    def draw_input(self, surface):
        lay, st, v = self.layout, self.state, self.view
        g = lay.input
        grey = (v["x"] * 255).astype(np.uint8)
        rgb = np.repeat(grey[:, None], 3, 1)                      # true greyscale (784, 3)
        if v["saliency"] is not None:
            s = v["saliency"] / (np.abs(v["saliency"]).max() + 1e-12)
            overlay = diverging(s).astype(np.float32)
            alpha = np.abs(s)[:, None] ** 0.7
            rgb = (rgb * (1 - alpha) + overlay * alpha).astype(np.uint8)
        surface.blit(self.grid_surface("input", rgb, 28, 28, g.cell, gaps=False), g.rect)
        pygame.draw.rect(surface, ACCENT if st.drawing else DIM, g.rect.inflate(4, 4), 1)
        if st.drawing:
            self.column_label(surface, g.rect, "Your drawing", "shown as the network sees it")
        else:
            self.column_label(surface, g.rect, "Input (784)", f"test digit #{st.index}")
        if st.show_saliency:
            self.text.blit(surface, "saliency: d score / d pixel", (g.rect.centerx, g.rect.bottom + 6),
                           self.layout.font_size - 2, DIM, False, "midtop")

    def eased(self, key, target):
        """What to show for `target` this frame: it glides there in a few frames while the
        weights change under training (20 snapshots a second would flicker), and jumps
        when the user changes the digit."""
        shown = self.shown.get(key)
        if self.snap or shown is None or shown.shape != target.shape:
            shown = self.shown[key] = target.astype(np.float32)
        else:
            shown += (target - shown) * EASE
        return shown

    def draw_hidden(self, surface, layer, grid):
        a = self.view["acts"][layer + 1]
        peak = a.max()
        # brightness = positive activation (tanh can go negative); sqrt keeps faint activity visible
        norm = np.sqrt(np.clip(a, 0, None) / peak) if peak > 0 else np.zeros_like(a)
        rgb = ramp(self.eased(("hidden", layer), norm))
        dead = self.sweep.dead[layer] if self.sweep.dead is not None else None
        if dead is not None:
            rgb[dead] = DEAD
        surf = self.grid_surface(f"hidden{layer}", rgb, grid.rows, grid.cols, grid.cell)
        surface.blit(surf, grid.rect)
        active = int((a > 0).sum())
        self.column_label(surface, grid.rect, f"Hidden {layer + 1} ({grid.n})", f"{active} active")

    def draw_output(self, surface):
        lay, v, st = self.layout, self.view, self.state
        probs, pred = self.eased("probs", v["probs"]), v["pred"]
        true = None if st.drawing else int(self.y_test[st.index])
        fs = lay.font_size
        # a drawing has no true label: its prediction is ringed in the neutral colour
        pred_color = ACCENT if true is None else RIGHT if pred == true else WRONG
        if st.drawing and not st.canvas.any():
            pred = -1                                # an empty canvas: nothing is predicted
        name_w = self.text.widest(self.names, fs, bold=True)
        self.column_label(surface, lay.output, "Output (10)", "softmax probability")
        for c, row in enumerate(lay.output_rows):
            cx, cy = int(lay.output_centers[c][0]), int(lay.output_centers[c][1])
            radius = max(5, min(10, row.height // 2 - 3))
            fill = tuple(int(x) for x in _RAMP_LUT[int(255 * np.sqrt(probs[c]))])
            pygame.draw.circle(surface, fill, (cx, cy), radius)
            if c == pred:
                pygame.draw.circle(surface, pred_color, (cx, cy), radius + 3, 2)
            self.text.blit(surface, self.names[c], (cx + radius + 6, cy), fs, TEXT if c in (pred, true) else DIM,
                           c == pred, "midleft")
            bar_x = cx + radius + 12 + name_w
            bar_w = max(10, row.right - bar_x - 44)
            pygame.draw.rect(surface, GRID_BG, (bar_x, cy - 5, bar_w, 10))
            color = pred_color if c == pred else ACCENT
            pygame.draw.rect(surface, color, (bar_x, cy - 5, max(1, int(bar_w * probs[c])), 10))
            self.text.blit(surface, f"{100 * probs[c]:.0f}%", (row.right, cy), fs - 2, DIM, False, "midright")
            if c == true:
                pygame.draw.rect(surface, RIGHT, (bar_x - 2, cy - 7, bar_w + 4, 14), 1)

    def draw_strip(self, surface):
        """Film strip of the test digits around the current one (under the active filter),
        each framed green/red by whether the network gets it right; click to open."""
        lay, st = self.layout, self.state
        self.strip_hits = []
        r = lay.strip
        if r is None:
            return
        fs = lay.font_size - 2
        cand = self.candidates()
        n_all = len(self.y_test) if cand is None else len(cand)
        what = ("all test digits" if st.pair_filter is None and not st.mistakes_only else
                "mistakes only" if st.pair_filter is None else
                f"true {self.names[st.pair_filter[0]]}, predicted {self.names[st.pair_filter[1]]}")
        self.text.blit(surface, f"Browsing {what} ({n_all:,}): click a digit to open it; frame = right / wrong now",
                       (r.x, r.y), fs, DIM)
        thumb = r.height - 2 * fs - 16
        if thumb < 16 or n_all == 0:
            return
        step = thumb + 10
        count = max(1, (r.width + 10) // step)
        order = np.arange(len(self.y_test)) if cand is None else cand
        pos = int(np.searchsorted(order, st.index))
        start = int(np.clip(pos - count // 3, 0, max(0, len(order) - count)))
        shown = order[start:start + count]
        preds = self.sweep.predictions
        if preds is None:
            preds_shown = self.net.predict(self.x_test[shown])
        else:
            preds_shown = preds[shown]
        y = r.y + fs + 8
        for i, (idx, pred) in enumerate(zip(shown.tolist(), preds_shown.tolist())):
            box = pygame.Rect(r.x + i * step, y, thumb, thumb)
            surf = self._surf_cache.get(("thumb", idx, thumb))
            if surf is None:
                if len(self._surf_cache) > 2000:
                    self._surf_cache = {k: v for k, v in self._surf_cache.items() if k[0] != "thumb"}
                grey = self.x_test[idx].reshape(28, 28)
                small = pygame.surfarray.make_surface(np.repeat(grey.T[:, :, None], 3, 2))
                surf = self._surf_cache[("thumb", idx, thumb)] = pygame.transform.smoothscale(small, box.size)
            surface.blit(surf, box)
            true = int(self.y_test[idx])
            color = RIGHT if pred == true else WRONG
            pygame.draw.rect(surface, color, box.inflate(4, 4), 2)
            if idx == st.index and not st.drawing:
                pygame.draw.rect(surface, TEXT, box.inflate(10, 10), 2)
            if pred == true:
                label = self.names[true]
            else:                                  # what the network says instead
                label = f"as {self.names[pred]}" if self.fashion else f"{self.names[true]}>{self.names[pred]}"
            self.text.blit(surface, self.text.fit(label, fs, thumb + 8), (box.centerx, box.bottom + 4), fs,
                           color if pred != true else DIM, False, "midtop")
            self.strip_hits.append((box, idx))

    def neuron_centers(self):
        lay = self.layout
        key = ("centers", lay.size)
        c = self._surf_cache.get(key)
        if c is None:
            c = self._surf_cache[key] = [lay.input.centers()] + [g.centers() for g in lay.hidden] + [lay.output_centers]
        return c

    def draw_connections(self, surface, conns=None, width_scale=1.0, name="view", stamp=None):
        """Lines between the exact cells of each pair, on a translucent layer so the
        digit and the grids stay readable underneath; strongest drawn last. Each layer
        (the view's, the hovered neuron's) is redrawn only when its stamp changes."""
        net = self.layout.network
        layer = self._surf_cache.get(("conn_layer", name, net.size))
        if layer is None:
            layer = self._surf_cache[("conn_layer", name, net.size)] = pygame.Surface(net.size, pygame.SRCALPHA)
        view = name == "view"
        if view:
            stamp, conns = (self.view_version, self.layout.size), self.view["conns"]
        old = self._surf_cache.get(("conn_stamp", name))
        if old == stamp or (view and self.defer_lines and old is not None and old[1] == stamp[1]):
            if view:
                self.defer_lines = False
            surface.blit(layer, net.topleft)
            return self._surf_cache[("conn_count", name)]
        self._surf_cache[("conn_stamp", name)] = stamp
        t0 = time.perf_counter()
        centers = self.neuron_centers()
        layer.fill((0, 0, 0, 0))
        offset = np.array(net.topleft, np.float32)
        drawn = 0
        for pair, (src, dst, val) in enumerate(conns):
            if len(val) == 0:
                continue
            mag = np.abs(val) / max(float(np.abs(val).max()), 1e-12)
            a, b = centers[pair][src] - offset, centers[pair + 1][dst] - offset
            rgb = np.where(val[:, None] >= 0, np.array(POSITIVE), np.array(NEGATIVE))
            alpha = (70 + 185 * mag).astype(int)
            widths = ((1 + (mag > 0.5) + (mag > 0.85)) * width_scale).astype(int)
            for (x0, y0), (x1, y1), (r, g, b_), al, w in zip(a.tolist(), b.tolist(), rgb.tolist(), alpha.tolist(), widths.tolist()):
                col = (r, g, b_, al)
                pygame.draw.line(layer, col, (x0, y0), (x1, y1), w)
                drawn += 1
        surface.blit(layer, net.topleft)
        self._surf_cache[("conn_count", name)] = drawn
        if view:
            self.view_cost += time.perf_counter() - t0
        return drawn

    def hover_details(self):
        """(stamp, connections, receptive-field surface) of the hovered neuron, computed
        once per neuron and weights."""
        st, lay = self.state, self.layout
        layer, j = st.hover
        stamp = (st.hover, self.view_version, lay.size)
        cached = self._surf_cache.get("hover")
        if cached is not None and cached[0] == stamp:
            return cached
        W, k = self.net.weights, 12
        w_in, w_out = W[layer][:, j], W[layer + 1][j]
        src = np.argsort(np.abs(w_in))[-k:]                     # strongest incoming weights
        dst = np.argsort(np.abs(w_out))[-k:]                    # strongest outgoing weights
        conns = [(np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32))] * (len(lay.hidden) + 1)
        conns[layer] = (src, np.full(len(src), j), w_in[src])
        conns[layer + 1] = (np.full(len(dst), j), dst, w_out[dst])
        rf = receptive_field(W, layer, j)
        img = diverging(rf / (np.abs(rf).max() + 1e-12))         # (28, 28, 3)
        big = np.repeat(np.repeat(img, HOVER_PX, 0), HOVER_PX, 1)
        cached = self._surf_cache["hover"] = (stamp, conns, pygame.surfarray.make_surface(big.transpose(1, 0, 2)))
        return cached

    def draw_hover(self, surface):
        st, lay = self.state, self.layout
        layer, j = st.hover
        grid = lay.hidden[layer]
        stamp, conns, rf_surf = self.hover_details()
        self.draw_connections(surface, conns, width_scale=1.5, name="hover", stamp=stamp)
        c = [int(v) for v in grid.centers()[j]]
        pygame.draw.rect(surface, TEXT, (c[0] - grid.cell // 2 - 2, c[1] - grid.cell // 2 - 2, grid.cell + 4, grid.cell + 4), 2)
        # tooltip with the receptive field, sized to its text, beside the neuron (never on it)
        fs = lay.font_size - 1
        dead = self.sweep.dead is not None and self.sweep.dead[layer][j]
        title = f"Hidden {layer + 1}, neuron {j}" + (" (dead)" if dead else "")
        what = "receptive field: " + ("its input weights" if layer == 0 else "weights projected to the input")
        width = 20 + max(rf_surf.get_width(), self.text.widest([title], fs, True),
                         self.text.widest(["activation -0.000"], fs), self.text.widest([what], fs - 3))
        box = pygame.Rect(0, 0, width, rf_surf.get_height() + 2 * fs + 20 + fs + 12)
        cell = pygame.Rect(c[0] - grid.cell // 2 - 2, c[1] - grid.cell // 2 - 2, grid.cell + 4, grid.cell + 4)
        for corner, at in (("topleft", cell.bottomright), ("topright", cell.bottomleft),
                           ("bottomleft", cell.topright), ("bottomright", cell.topleft)):
            setattr(box, corner, (at[0] + (12 if "left" in corner else -12), at[1] + (12 if "top" in corner else -12)))
            box.clamp_ip(lay.network)
            if not box.colliderect(cell):
                break
        pygame.draw.rect(surface, PANEL_BG, box)
        pygame.draw.rect(surface, DIM, box, 1)
        self.text.blit(surface, title, (box.x + 10, box.y + 8), fs, TEXT, True)
        self.text.blit(surface, f"activation {self.view['acts'][layer + 1][j]:.3f}", (box.x + 10, box.y + 8 + fs + 4), fs, DIM)
        surface.blit(rf_surf, (box.x + 10, box.y + 2 * fs + 20))
        self.text.blit(surface, what, (box.x + 10, box.bottom - fs - 4), fs - 3, DIM)

    def draw_legend(self, surface):
        lay = self.layout
        r = lay.legend
        x, y = r.x + 14, r.centery
        fs = lay.font_size - 1

        def swatch(color, label, line=False):
            nonlocal x
            if line:
                pygame.draw.line(surface, color, (x, y), (x + 22, y), 3)
                x += 28
            else:
                pygame.draw.rect(surface, color, (x, y - 6, 12, 12))
                x += 17
            x = self.text.blit(surface, label, (x, y), fs, DIM, False, "midleft").right + 16

        swatch(POSITIVE, "positive (excites)", True)
        swatch(NEGATIVE, "negative (inhibits)", True)
        for i, t in enumerate((0.0, 0.5, 1.0)):
            pygame.draw.rect(surface, tuple(int(c) for c in ramp(np.array([t]))[0]), (x + i * 12, y - 6, 12, 12))
        x += 40
        x = self.text.blit(surface, "activation", (x, y), fs, DIM, False, "midleft").right + 16
        swatch(DEAD, "dead neuron")
        swatch(RIGHT, "correct")
        swatch(WRONG, "wrong")
        mode = "|activation x weight|" if self.state.rank_mode == "contribution" else "|weight|"
        for label in (f"{self.state.k} strongest by {mode} (C)", f"top {self.state.k}: {mode}"):
            if x + self.text.render(label, fs, DIM).get_width() < r.right - 10:
                self.text.blit(surface, label, (r.right - 10, y), fs, DIM, False, "midright")
                break

    def draw_panel(self, surface):
        lay, st, cfg = self.layout, self.state, self.config
        p = lay.panel
        pygame.draw.rect(surface, PANEL_BG, p)
        fs = lay.font_size
        lh = fs + 5
        x, y, w = p.x + 16, p.y + 12, p.width - 32

        def line(text, color=TEXT, bold=False, size=fs):
            nonlocal y
            self.text.blit(surface, self.text.fit(text, size, w, bold), (x, y), size, color, bold)
            y += lh

        def heading(text):
            nonlocal y
            y += 6
            line(text, ACCENT, True)

        if st.diverged:
            status, color = "DIVERGED", WRONG
        elif st.finished:
            status, color = "FINISHED", RIGHT
        elif cfg.no_train:
            status, color = "EXPLORING (no training)", ACCENT
        elif st.paused:
            status, color = "PAUSED", LOSS_COLOR
        else:
            status, color = "TRAINING" + ("" if st.speed == 0 else f" (slow motion {SPEEDS[st.speed] * 1000:g} ms/batch)"), RIGHT
        line(status, color, True, fs + 2)
        acc = "-" if np.isnan(st.test_accuracy) else f"{100 * st.test_accuracy:.2f} %"
        if cfg.no_train:
            line(f"model: {os.path.basename(cfg.load) if cfg.load else 'untrained'}, {st.epoch} epoch(s) trained")
            line(f"test accuracy {acc} on {len(self.y_test):,} test images", DIM)
        else:
            if st.loss_curve:                        # a batch was trained in this session
                line(f"epoch {min(st.epoch + 1, cfg.epochs)}/{cfg.epochs}   batch {st.batch}/{st.n_batches}   "
                     f"{st.samples_per_s / 1000:.1f}k samples/s")
                line(f"test accuracy {acc}   train {100 * st.train_acc:.1f} %   lr {st.lr:.2g}", DIM)
            else:                                    # nothing measured yet (e.g. a loaded model)
                line(f"epoch {min(st.epoch + (0 if st.finished else 1), cfg.epochs)}/{cfg.epochs}"
                     + ("   loaded, already trained" if st.finished else "   starting..."))
                line(f"test accuracy {acc}", DIM)
        heading("Hyperparameters")
        line(f"784-{'-'.join(map(str, cfg.hidden))}-10 {cfg.activation}, {cfg.optimizer} lr {cfg.learning_rate:g} ({cfg.lr_schedule})", DIM)
        extras = f"batch {cfg.batch_size}, wd {cfg.weight_decay:g}, dropout {cfg.dropout:g}" + (", augment" if cfg.augment else "")
        line(extras + f", seed {cfg.seed}", DIM)
        heading("Loss and test accuracy")
        plot_h = int(np.clip(p.bottom - y - 17 * lh - 20, 70, 130))
        self.draw_curves(surface, pygame.Rect(x, y, w, plot_h))
        y += plot_h + 6
        heading(f"Per-class accuracy ({st.per_class_source or 'waiting'})")
        bar_h = max(8, lh - 5)
        self.panel_bars = []
        name_w = min(w // 3, self.text.widest(self.names, fs - 1) + 8)
        for c in range(10):
            self.text.blit(surface, self.text.fit(self.names[c], fs - 1, name_w - 6), (x, y), fs - 1, TEXT)
            bx, bw = x + name_w, w - name_w - 100
            pygame.draw.rect(surface, GRID_BG, (bx, y + 2, bw, bar_h))
            self.panel_bars.append(pygame.Rect(bx, y + 2, bw, bar_h))
            if st.per_class is not None and not np.isnan(st.per_class[c]):
                a = st.per_class[c]
                pygame.draw.rect(surface, ACCENT, (bx, y + 2, int(bw * a), bar_h))
                self.text.blit(surface, f"{100 * a:5.1f}%", (bx + bw + 6, y), fs - 1, TEXT)
                if st.prev_per_class is not None and not np.isnan(st.prev_per_class[c]):
                    d = 100 * (a - st.prev_per_class[c])
                    col = RIGHT if d > 0.05 else WRONG if d < -0.05 else DIM
                    self.text.blit(surface, f"{d:+.1f}", (p.right - 16, y), fs - 2, col, False, "topright")
            y += lh - 1
        heading("Digit on screen")
        v = self.view
        pred, conf = v["pred"], 100 * float(v["probs"][v["pred"]])
        if st.drawing and not st.canvas.any():
            line("your drawing: empty canvas", DIM)
        elif st.drawing:
            line(f"your drawing: predicted {self.names[pred]} ({conf:.0f}%)", TEXT)
        else:
            true = int(self.y_test[st.index])
            color = RIGHT if pred == true else WRONG
            text = f"test #{st.index}: true {self.names[true]}, predicted {self.names[pred]} ({conf:.0f}%)"
            if self.text.widest([text], fs) <= w:
                line(text, color)
            else:                                    # long class names: two lines, nothing cut
                line(f"test #{st.index}: true {self.names[true]}", color)
                line(f"predicted {self.names[pred]} ({conf:.0f}%)", color)
        heading("Active neurons")
        acts = v["acts"][1:-1]
        parts = []
        for i, a in enumerate(acts):
            dead = "" if self.sweep.dead is None else f" ({int(self.sweep.dead[i].sum())} dead)"
            parts.append(f"H{i + 1} {int((a > 0).sum())}/{len(a)}{dead}")
        line("   ".join(parts), DIM)
        fps = 1000 / np.mean(self.frame_interval_ms[-30:]) if self.frame_interval_ms else 0
        work = np.mean(self.frame_ms[-30:]) if self.frame_ms else 0
        line(f"{fps:.0f} FPS   frame {work:.1f} ms", DIM, size=fs - 2)

    def draw_curves(self, surface, r):
        """Loss (left scale) and test accuracy (right scale, zoomed) against epochs. The
        legend sits above the plot, the scales and the epoch axis outside it, so no label
        is ever drawn over a curve."""
        st = self.state
        pygame.draw.rect(surface, PANEL_BG, r)
        span = max(self.config.epochs, 1e-9)
        fs = self.layout.font_size - 3
        th = self.text.render("0", fs).get_height()
        x = self.text.blit(surface, "loss (smoothed)", (r.x, r.y), fs, LOSS_COLOR).right + 10
        x = self.text.blit(surface, "test acc", (x, r.y), fs, ACCENT).right + 8
        self.text.blit(surface, "subset", (x, r.y), fs, SUBSET_COLOR)
        gutter_l = self.text.widest(["0.00"], fs) + 4
        gutter_r = self.text.widest(["100%"], fs) + 4
        p = pygame.Rect(r.x + gutter_l, r.y + th + 4, r.width - gutter_l - gutter_r, r.height - 2 * th - 6)
        if p.height < 10 or p.width < 20:
            return
        pygame.draw.rect(surface, BG, p)

        def y_of(v, lo, hi):
            return p.bottom - 1 - np.clip((v - lo) / (hi - lo), 0, 1) * (p.height - 1)

        def poly(points, lo, hi, color):
            if len(points) < 2:
                return
            pts = np.asarray(points, np.float64)
            if len(pts) > 400:
                pts = pts[np.linspace(0, len(pts) - 1, 400).astype(int)]
            xs = p.x + np.clip(pts[:, 0] / span, 0, 1) * (p.width - 1)
            pygame.draw.lines(surface, color, False, np.stack([xs, y_of(pts[:, 1], lo, hi)], 1).tolist(), 2)

        # accuracy on a zoomed axis: the interesting part is the last few per cent
        accs = [a for q, a in st.acc_curve + st.subset_curve if q > 0]
        lo = max(0.0, np.floor(min(accs) * 20) / 20 - 0.05) if accs else 0.0
        lo = min(lo, 0.9)
        fracs = (lo, (1 + lo) / 2, 1.0) if p.height >= 2 * th + 4 else (lo, 1.0)   # labels must not touch
        for frac in fracs:
            yy = y_of(frac, lo, 1.0)
            pygame.draw.line(surface, GRID_BG, (p.x, yy), (p.right - 1, yy))
            self.text.blit(surface, f"{100 * frac:.0f}%", (r.right, yy), fs, ACCENT, False, "midright")
        if st.loss_curve:
            losses = np.array([l for _, l in st.loss_curve])
            smooth = np.empty_like(losses)                 # exponential moving average
            acc_ = losses[0]
            for i, l in enumerate(losses):
                acc_ = 0.9 * acc_ + 0.1 * l
                smooth[i] = acc_
            top = max(0.3, float(smooth.max()))
            poly([(q, l) for (q, _), l in zip(st.loss_curve, smooth)], 0.0, top, LOSS_COLOR)
            self.text.blit(surface, f"{top:.2g}", (p.x - 3, p.y), fs, LOSS_COLOR, False, "topright")
            self.text.blit(surface, "0", (p.x - 3, p.bottom), fs, LOSS_COLOR, False, "bottomright")
        poly(st.subset_curve, lo, 1.0, SUBSET_COLOR)
        poly([q for q in st.acc_curve if q[0] > 0], lo, 1.0, ACCENT)   # skip the untrained start
        self.text.blit(surface, "epoch 0", (p.x, p.bottom + 2), fs, DIM)
        self.text.blit(surface, f"{self.config.epochs}", (p.right, p.bottom + 2), fs, DIM, False, "topright")
        if not st.loss_curve and self.config.no_train:
            self.text.blit(surface, "no training in this session", p.center, fs + 2, DIM, False, "center")

    def draw_confusion(self, surface):
        lay = self.layout
        r = self.confusion_rect()
        preds = self.sweep.predictions
        self.text.blit(surface, "Confusion matrix on the test set, current weights (rows: true, columns: predicted)",
                       (lay.network.x + 20, lay.network.y + 14), lay.font_size, TEXT, True)
        self.text.blit(surface, "click a cell to browse its digits with Left/Right;  X closes",
                       (lay.network.x + 20, lay.network.y + 16 + lay.font_size + 4), lay.font_size - 1, DIM)
        if preds is None:
            self.text.blit(surface, "computing...", r.center, lay.font_size, DIM, False, "center")
            return
        conf = confusion_matrix(self.y_test, preds)
        cell = r.width / 10
        fs = max(10, min(lay.font_size, int(cell / 3)))
        row_max = conf.max(axis=1, keepdims=True).clip(1)
        named = self.names[0] != "0"         # Fashion: rows "3 Dress"; columns "3" if the name is too wide
        narrow = named and self.text.widest(self.names, fs) > cell - 4
        for t in range(10):
            row = self.text.fit(f"{t} {self.names[t]}" if named else self.names[t], fs, 100)
            self.text.blit(surface, row, (r.x - 8, r.y + (t + 0.5) * cell), fs, DIM, False, "midright")
            col = str(t) if narrow else self.names[t]
            self.text.blit(surface, col, (r.x + (t + 0.5) * cell, r.bottom + 6), fs, DIM, False, "midtop")
            for p in range(10):
                n = int(conf[t, p])
                cr = pygame.Rect(int(r.x + p * cell), int(r.y + t * cell), int(cell) - 2, int(cell) - 2)
                frac = n / row_max[t, 0]
                base = np.array(RIGHT if t == p else WRONG, np.float32)
                col = (np.array(GRID_BG) * (1 - frac ** 0.5) + base * frac ** 0.5).astype(int)
                pygame.draw.rect(surface, tuple(col), cr)
                if n:
                    self.text.blit(surface, str(n), cr.center, fs, TEXT, False, "center")
        self.text.blit(surface, f"accuracy {100 * accuracy(conf):.2f} %", (r.right, r.y - 6), lay.font_size - 1, TEXT, False, "bottomright")

    def draw_help(self, surface):
        lines = [l.strip() for l in __doc__.split("Controls")[1].strip().splitlines() if l.strip()]
        fs = self.layout.font_size
        lh = fs + 6
        widest = max(self.text.render(l, fs).get_width() for l in lines)
        box = pygame.Rect(0, 0, min(self.layout.size[0] - 20, max(760, widest + 60)), lh * len(lines) + 60)
        box.center = self.layout.network.center
        box.clamp_ip(pygame.Rect((0, 0), self.layout.size))
        pygame.draw.rect(surface, PANEL_BG, box)
        pygame.draw.rect(surface, ACCENT, box, 2)
        self.text.blit(surface, "Keys and mouse (H or F1 closes)", (box.x + 20, box.y + 14), fs + 2, ACCENT, True)
        y = box.y + 20 + lh + 6
        for l in lines:
            parts = l.split("  ", 1)
            if len(parts) == 2:
                self.text.blit(surface, parts[0], (box.x + 24, y), fs, TEXT, True)
                self.text.blit(surface, parts[1].strip(), (box.x + 200, y), fs, DIM)
            else:
                self.text.blit(surface, l, (box.x + 24, y), fs, DIM)
            y += lh

    def draw_toast(self, surface):
        """The latest message, in the header between the title and the key hints, so it
        never covers the network, a matrix or the panel."""
        st, lay = self.state, self.layout
        x0, x1 = self.toast_span
        text = self.text.fit(st.toast, lay.font_size - 1, max(40, x1 - x0 - 20))
        surf = self.text.render(text, lay.font_size - 1, TEXT)
        r = surf.get_rect(center=((x0 + x1) // 2, lay.header.centery))
        box = r.inflate(20, 0)
        box.height = lay.header.height - 6
        box.centery = lay.header.centery
        pygame.draw.rect(surface, BG, box)
        pygame.draw.rect(surface, ACCENT, box, 1)
        surface.blit(surf, r)

    def save_screenshot(self, path=None):
        """Write the screen to a PNG atomically; returns the path, or None on failure
        (said in the window and recorded in self.errors)."""
        path = path or time.strftime("screenshot-%Y%m%d-%H%M%S.png")
        try:
            tmp = path + ".tmp.png"
            pygame.image.save(self.screen, tmp)
            os.replace(tmp, path)
            say(self.state, f"screenshot saved to {os.path.abspath(path)}", 5)
            return path
        except (pygame.error, OSError) as e:
            say(self.state, f"could not save screenshot: {e}", 5)
            self.errors.append(f"could not save screenshot {path}: {e}")
            return None

    # ------------------------------------------------------------------------ loop
    def frame(self):
        """One iteration: events -> update -> draw -> flip, then background work in the
        time left before the next frame is due. Returns the frame's work time in ms."""
        t0 = self.frame_start = time.perf_counter()
        for event in pygame.event.get():
            self.handle_event(event)
        self.update()
        self.draw(self.screen)
        pygame.display.flip()
        t1 = time.perf_counter()
        self.frame_ms.append((t1 - t0) * 1000)
        self.frame_interval_ms.append((t1 - self.last_frame) * 1000)
        self.last_frame = t1
        self.idle_work(t0 + 1 / FPS - 0.002)
        return self.frame_ms[-1]

    def idle_work(self, deadline):
        """Advance the test-set sweep in slices while they fit before `deadline`
        (at least one slice per frame, so it always progresses)."""
        if not (self.weights_seen or self.worker is None):
            return
        while True:
            t = time.perf_counter()
            self.sweep.step(self.net, self.x_test, SWEEP_CHUNK)
            spent = time.perf_counter() - t
            self.sweep_cost = max(spent, 0.9 * self.sweep_cost)
            if not self.sweep.dirty or time.perf_counter() + self.sweep_cost > deadline:
                break

    def metrics(self, first_frame_s):
        st = self.state
        ms = self.frame_ms[1:] or self.frame_ms
        per_class = st.per_class if st.per_class is not None else np.full(10, np.nan)
        return {
            "status": "diverged" if st.diverged else "finished" if st.finished else "stopped",
            "test_accuracy": st.test_accuracy,
            "per_class_accuracy": [float(v) for v in per_class],
            "confusion_matrix": st.confusion.tolist() if st.confusion is not None else None,
            "epochs_completed": st.epochs_done,
            "train_samples_per_s": float(np.median(st.speeds)) if st.speeds else 0.0,
            "frame_ms_p50": percentile(ms, 50), "frame_ms_p95": percentile(ms, 95), "frame_ms_p99": percentile(ms, 99),
            "frames": len(self.frame_ms), "first_frame_s": first_frame_s,
            "fps": 1000 / float(np.mean(self.frame_interval_ms[1:])) if len(self.frame_interval_ms) > 1 else None,
            "window": list(self.screen.get_size()), "connections": st.k,
            "hyperparameters": self.config.hyperparameters(),
            "dataset": {"name": self.data.name, "source": self.data.source},
            "errors": list(self.errors),
        }

    def close(self):
        if self.worker is not None:
            keep = self.config.no_train or self.state.diverged      # never overwrite with a blown-up model
            for msg in self.worker.stop(save_path=None if keep else self.config.save):
                if msg.get("type") == "saved":
                    print(f"Saved model to {msg['path']}")
                elif msg.get("type") == "error":
                    print(f"error: {msg['text']}", file=sys.stderr)
                    self.errors.append(msg["text"])
            self.worker = None


def run_app(config, data, start_time=None):
    """Open the window and run until the user quits (or --frames / --screenshot are done).
    Returns the metrics dict; first_frame_s counts from the launch of the process."""
    age = process_age()
    start_time = time.perf_counter() - age if age is not None else (start_time or time.perf_counter())
    pygame.display.init()
    pygame.font.init()
    pygame.display.set_caption("MNIST network - live")
    screen = pygame.display.set_mode((config.width, config.height), pygame.RESIZABLE)
    pygame.key.set_repeat(300, 35)
    app = App(config, data, screen)
    first_frame_s = None

    def screenshot():
        app.update()                        # the newest weights, drawn exactly (no easing)
        app.compute_view()
        app.snap, app.defer_lines, app.state.toast = True, False, ""
        app.draw(app.screen)
        if app.save_screenshot(config.screenshot):
            print(f"Saved screenshot to {config.screenshot}")
        else:
            print(f"error: {app.errors[-1]}", file=sys.stderr)

    try:
        while app.state.running:
            app.frame()
            if first_frame_s is None:
                first_frame_s = time.perf_counter() - start_time
            if config.frames and len(app.frame_ms) >= config.frames:
                if config.screenshot:    # --frames decides when: the view as it is now
                    screenshot()
                break
            if config.screenshot and app.weights_seen and (app.state.finished or config.no_train or app.state.diverged) \
                    and app.sweep.predictions is not None and not app.sweep.dirty and app.state.per_class is not None:
                screenshot()
                break
            wait = app.frame_start + 1 / FPS - time.perf_counter()   # frames start 1/60 s apart
            if wait > 0:
                time.sleep(wait)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
        metrics = app.metrics(first_frame_s)
        pygame.quit()
    return metrics
