"""The window's memory stays bounded: every cache holds at most its budget however many
distinct things pass through it, and big NumPy temporaries are given back when freed."""
import ctypes
import subprocess
import sys
import time

import numpy as np
import pygame
import pytest

import mnist_live.window.regions.caches
from conftest import ROOT
from mnist_live.explain.neurons import NeuronStats
from mnist_live.training.messages import DigitHistory
from mnist_live.window.regions.caches import BoundedCache, TextCache
from mnist_live.window.regions.network import NetworkColumns
from mnist_live.window.regions.portrait import FilmStrip, Tooltip
from mnist_live.window.telemetry import MAX_DIGIT_HISTORIES, Telemetry
from window_driver import key, open_app, run_until, settle


def surface_bytes(values):
    return sum(v.get_pitch() * v.get_height() for v in values if isinstance(v, pygame.Surface))


def test_bounded_cache_drops_the_least_recently_used_one_at_a_time():
    cache = BoundedCache(max_bytes=10 * 1000)
    made = []
    for i in range(50):
        cache.made(i, lambda i=i: made.append(i) or np.zeros(1000, np.uint8))
        cache.get(0)                                     # 0 stays in use
    assert cache.bytes <= 10 * 1000 and len(cache) == 10
    assert 0 in cache and 49 in cache and 1 not in cache
    assert made == list(range(50))                        # 0 was made once, never again
    cache.pop(49)
    assert cache.bytes == sum(v.nbytes for v in cache.values())


def test_text_cache_stays_within_its_budget_after_thousands_of_distinct_strings():
    pygame.font.init()
    text = TextCache()
    for i in range(3000):                                # 3,000 numbers, as the panel renders over hours
        text.render(f"epoch {i}   batch {i * 7}/938   {i * 13:,} samples/s", 17)
    for i in range(mnist_live.window.regions.caches.WIDTH_CACHE_ENTRIES + 1000):
        text.width(f"{i} samples/s", 15)
    assert surface_bytes(text.surfs.values()) <= mnist_live.window.regions.caches.TEXT_CACHE_BYTES
    assert len(text.widths) <= mnist_live.window.regions.caches.WIDTH_CACHE_ENTRIES
    surf = text.render("epoch 2999   batch 20993/938   38,987 samples/s", 17)
    assert any(s is surf for s in text.surfs.values())   # the newest are kept


@pytest.mark.slow
def test_thumbnails_and_tooltip_pictures_stay_within_their_budgets(sample):
    app = open_app(sample)
    try:
        settle(app)
        for _ in range(12):                              # PgDn: a new strip of thumbnails each time
            key(pygame.K_PAGEDOWN)
            app.frame()
        assert len(app.region(FilmStrip).boxes) > 10
        strip = app.region(FilmStrip)
        assert surface_bytes(strip.thumbs.values()) <= mnist_live.window.regions.caches.THUMB_CACHE_BYTES
        shown = {(k, box.width) for box, k in app.region(FilmStrip).boxes}
        assert shown <= set(app.region(FilmStrip).thumbs.items)      # what is on screen is cached
        grid = app.layout.hidden[0]
        for j in range(80):                              # hover 80 neurons: a picture or two each
            pos = grid.cell_rect(j).center
            pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=pos, rel=(0, 0), buttons=(0, 0, 0)))
            app.frame()
        assert app.state.hover == (0, 79)
        tooltip_cache = app.region(Tooltip).cache.values()
        assert surface_bytes(tooltip_cache) <= mnist_live.window.regions.caches.PICTURE_CACHE_BYTES
    finally:
        app.close()


@pytest.mark.slow
def test_network_cache_keeps_one_picture_per_slot_across_weights_hovers_and_passes(sample):
    app = open_app(sample)
    try:
        settle(app)
        grid = app.layout.hidden[1]
        sizes = []
        for j in range(40):                              # a new hovered neuron and new lines each frame
            app.state.hover = (1, j)
            app.state.touch()
            app.frame()
            sizes.append(len(app.region(NetworkColumns).cache))
        assert app.region(NetworkColumns).lines_drawn("hover") > 0
        assert sizes[-1] == sizes[1]
        app.state.hover = None
        key(pygame.K_a)                                   # the atlas of each new pass's portraits
        app.frame()
        n = tuple(g.n for g in app.layout.hidden)
        before = len(app.region(NetworkColumns).cache)
        surfaces = []
        for _ in range(20):
            stats = NeuronStats(n)
            stats.update(np.random.rand(4, 784), [np.random.rand(4, size) for size in n], np.arange(4))
            surfaces.append(app.region(NetworkColumns).atlas_surface(stats, 1, grid))
        assert len(app.region(NetworkColumns).cache) <= before + 1
        assert surfaces[-1] is app.region(NetworkColumns).atlas_surface(stats, 1, grid)     # the newest portraits, not
        assert surfaces[-2] is not surfaces[-1]                               # an older pass's picture
    finally:
        app.close()


def test_digit_histories_keep_only_the_latest_digits():
    tele = Telemetry()
    for i in range(5 * MAX_DIGIT_HISTORIES):
        tele.apply(DigitHistory(index=i, rows=[(0.0, 1, 0.5)] * 30))
    tele.apply(DigitHistory(index=5, rows=[]))             # answered again: now the newest
    assert len(tele.digit_histories) == MAX_DIGIT_HISTORIES
    assert 5 in tele.digit_histories and 5 * MAX_DIGIT_HISTORIES - 1 in tele.digit_histories
    assert 6 not in tele.digit_histories


def test_a_clip_keeps_its_frames_on_disk_not_in_memory(sample, tmp_path, monkeypatch):
    """Each frame is encoded as it comes and waits in an unnamed temporary file; the window
    keeps (offset, length) pairs only, and writing the clip reads the frames one at a time."""
    import tempfile

    from PIL import Image

    from mnist_live.window import clips as clip_recorder
    spools, written = [], []
    real_temporary_file, real_write_gif = tempfile.TemporaryFile, clip_recorder.write_gif

    def spy_spool(*args, **kwargs):
        spools.append(real_temporary_file(*args, **kwargs))
        return spools[-1]

    def spy_write(f, size, images, **kwargs):
        assert not isinstance(images, (list, tuple))          # a stream, not every frame at once
        def one_by_one():
            for image, delay in images:
                assert isinstance(image, bytes) and image[0] == 0x2C   # an encoded GIF image
                written.append(len(image))
                yield image, delay
        real_write_gif(f, size, one_by_one(), **kwargs)
    monkeypatch.setattr(tempfile, "TemporaryFile", spy_spool)
    monkeypatch.setattr(clip_recorder, "write_gif", spy_write)
    monkeypatch.chdir(tmp_path)
    app = open_app(sample)
    try:
        settle(app)
        key(pygame.K_s, pygame.KMOD_LSHIFT)
        app.frame()
        rec = app.outputs.recorder
        run_until(app, lambda: len(rec.frames) >= 5)
        assert len(spools) == 1
        assert all(isinstance(start, int) and isinstance(length, int) for start, length, _ in rec.frames)
        key(pygame.K_s, pygame.KMOD_LSHIFT)
        app.frame()
        assert "clip saved" in rec.wait() and spools[0].closed
        assert written == [length for _, length, _ in rec.frames]
        with Image.open(rec.path) as gif:
            assert gif.n_frames == len(written) >= 5
    finally:
        app.close()


HEAP_CHECKS = """
import ctypes, sys
import numpy as np
from mnist_live.window.memory import Heap

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
heap = Heap(every=5.0)
assert heap.libc is not None
big = np.ones(30 << 20, np.uint8)             # freed: glibc's default would now put blocks
del big                                       # up to this size in the heap
mapped = libc.mallinfo2().hblkhd
again = np.ones(20 << 20, np.uint8)           # more than the heap may keep free (16 MB)
assert libc.mallinfo2().hblkhd >= mapped + (20 << 20), "a 20 MB temporary went into the heap"
del again                                     # its own mapping: unmapped when freed
assert libc.mallinfo2().hblkhd < mapped + (20 << 20)

assert not heap.tick(heap.last + 1.0)         # not yet
blocks = [np.ones(200_000, np.uint8) for _ in range(200)]   # 40 MB of small blocks in the heap ...
pin = np.ones(200_000, np.uint8)              # ... below one that stays
before = rss_mb()
del blocks
assert rss_mb() > before - 10                 # freed, but still the process's
assert heap.tick(heap.last + 5.0)
assert rss_mb() < before - 20, "the heap's free pages were not given back"
print("ok")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings (Linux only)")
def test_big_temporaries_and_free_heap_pages_are_given_back():
    """In a fresh process (a test session's heap has holes of any size)."""
    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("glibc without mallinfo2")
    proc = subprocess.run([sys.executable, "-c", HEAP_CHECKS], capture_output=True, text=True, timeout=60,
                          cwd=str(ROOT))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_a_long_clip_halves_its_frame_rate_and_keeps_every_frame(tmp_path, monkeypatch):
    """After each RECORD_SLOWER_EVERY frames the capture interval doubles; the frames
    already taken stay, each with the delay it was taken at."""
    from PIL import Image

    from mnist_live.window import clips as clip_recorder
    monkeypatch.setattr(clip_recorder, "RECORD_FPS", 100)            # a frame every 10 ms
    monkeypatch.setattr(clip_recorder, "RECORD_SLOWER_EVERY", 3)
    rec = clip_recorder.Recorder(str(tmp_path / "long.gif"))
    screen = pygame.Surface((320, 180))
    for i in range(300):
        screen.fill((i % 256, 40, 90))                                   # every frame differs
        rec.capture(screen)
        time.sleep(0.004)
        if len(rec.frames) >= 8:
            break
    rec.finish()
    assert "clip saved" in rec.wait()
    delays = [d for _, _, d in rec.frames]
    assert delays[:8] == [1, 1, 1, 2, 2, 2, 4, 4]
    with Image.open(rec.path) as gif:
        assert gif.n_frames == len(rec.frames)


def test_a_clip_whose_temporary_file_fails_says_so_and_writes_nothing(tmp_path, monkeypatch):
    import errno
    import tempfile

    from mnist_live.window import clips as clip_recorder

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(tempfile, "TemporaryFile", full)
    monkeypatch.setattr(clip_recorder, "RECORD_FPS", 100)
    rec = clip_recorder.Recorder(str(tmp_path / "clip.gif"))
    screen = pygame.Surface((320, 180))
    for _ in range(5):
        rec.capture(screen)
        time.sleep(0.012)
    rec.finish()
    assert rec.wait() == "could not record the clip: No space left on device"
    assert not (tmp_path / "clip.gif").exists() and rec.frames == []
