"""Caches whose memory is bounded: byte-counted LRU dicts and the rendered-text cache
every region draws its words through."""
from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np
import pygame

from mnist_live.window.regions.palette import TEXT


def nbytes(value):
    """Memory held by a cached value: pixels of a surface, bytes of an array (recursing into
    tuples and lists); 64 for anything else (a number, a small object)."""
    if isinstance(value, pygame.Surface):
        return value.get_pitch() * value.get_height()
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value) + 64
    return 64


class BoundedCache:
    """A dict of at most `max_bytes` of values (measured by `nbytes`) and `max_entries`
    entries: the least recently used go first, one at a time, so the cache stays at its
    bound instead of filling up and being emptied at once."""

    def __init__(self, max_bytes=float("inf"), max_entries=100_000):
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self.items, self.sizes, self.bytes = OrderedDict(), {}, 0

    def get(self, key, default=None):
        value = self.items.get(key, default)
        if key in self.sizes:
            self.items.move_to_end(key)
        return value

    def __setitem__(self, key, value):
        self.pop(key)
        self.items[key], self.sizes[key] = value, nbytes(value)
        self.bytes += self.sizes[key]
        while len(self.items) > 1 and (self.bytes > self.max_bytes or len(self.items) > self.max_entries):
            old, _ = self.items.popitem(last=False)
            self.bytes -= self.sizes.pop(old)

    def __getitem__(self, key):
        value = self.items[key]
        self.items.move_to_end(key)
        return value

    def __contains__(self, key):
        return key in self.items

    def __len__(self):
        return len(self.items)

    def pop(self, key, default=None):
        if key not in self.items:
            return default
        self.bytes -= self.sizes.pop(key)
        return self.items.pop(key)

    def values(self):
        return self.items.values()

    def clear(self):
        self.items.clear()
        self.sizes.clear()
        self.bytes = 0

    def made(self, key, make):
        """cache[key], made by make() when missing."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = self[key] = make()
        return value


_MISSING = object()
TEXT_CACHE_BYTES = 3 << 20        # rendered text (one frame draws 0.5 MB of it, 1.5 MB with the help)
WIDTH_CACHE_ENTRIES = 20_000      # measured text widths (a frame measures about 130)
THUMB_CACHE_BYTES = 2 << 20       # film-strip thumbnails (25 kB each at 80 px; a strip shows 20-60)
PICTURE_CACHE_BYTES = 2 << 20     # the tooltip's receptive fields and prototypes (0.1 MB each)

# ------------------------------------------------------------------------------ text
class TextCache:
    """Rendered text surfaces, re-rendered only when the string changes (the least
    recently used are dropped past TEXT_CACHE_BYTES)."""

    def __init__(self):
        self.fonts = {}
        self.surfs = BoundedCache(TEXT_CACHE_BYTES)
        self.widths = BoundedCache(max_entries=WIDTH_CACHE_ENTRIES)

    def font(self, size, bold=False):
        key = (size, bold)
        if key not in self.fonts:
            f = pygame.font.Font(None, int(size * 1.3))
            f.set_bold(bold)
            self.fonts[key] = f
        return self.fonts[key]

    def render(self, text, size, color=TEXT, bold=False):
        key = (text, size, color, bold)
        return self.surfs.made(key, lambda: self.font(size, bold).render(text, True, color))

    def width(self, text, size, bold=False):
        return self.widths.made((text, size, bold), lambda: self.font(size, bold).size(text)[0])

    def fit(self, text, size, width, bold=False):
        """text, shortened with '...' so it renders within width pixels."""
        font = self.font(size, bold)
        if self.width(text, size, bold) <= width:
            return text
        lo, hi = 0, len(text)
        while lo < hi:                       # longest prefix that fits with '...'
            mid = (lo + hi + 1) // 2
            if font.size(text[:mid] + "...")[0] <= width:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo] + "..."

    def wrap(self, text, size, width, bold=False):
        """text broken at spaces into lines that each fit width pixels; a word wider than a
        line (a file's path) is broken after its slashes."""
        if self.width(text, size, bold) <= width:
            return [text]
        tokens, lines = [], []                       # (piece, what joins it to the one before)
        for w in text.split(" "):
            pieces = [w] if "/" not in w or self.width(w, size, bold) <= width else \
                [p for p in re.split(r"(?<=/)", w) if p]
            tokens += [(p, "" if i else " ") for i, p in enumerate(pieces)]
        line = ""
        for w, join in tokens:
            trial = w if not line else line + join + w
            if self.width(trial, size, bold) <= width or not line:
                line = trial
            else:
                lines.append(line)
                line = w
        lines.append(line)
        return [self.fit(t, size, width, bold) for t in lines]

    def widest(self, texts, size, bold=False):
        return max(self.width(t, size, bold) for t in texts)

    def blit(self, target, text, pos, size, color=TEXT, bold=False, anchor="topleft"):
        surf = self.render(text, size, color, bold)
        rect = surf.get_rect(**{anchor: pos})
        target.blit(surf, rect)
        return rect
