"""Output files as a hostile user meets them: devices, FIFOs, symlinks, modes, read-only
files, two outputs on one path, killed writers, and PNG verification."""
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, run  # noqa: F401
from mnist_live.training import files
from mnist_live.training.files import atomic_write_json


def char_device(tmp_path):
    """A character device to write to: a private twin of /dev/null when we may make one
    (so a broken writer can never replace the real /dev/null), else /dev/null itself
    (an unprivileged writer cannot replace that anyway)."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        return node
    except (OSError, AttributeError):
        if not os.path.exists("/dev/null"):
            pytest.skip("no character device to test with")
        return "/dev/null"


# ------------------------------------------------------------------ atomic writer
def test_a_device_is_refused_and_stays_a_device(tmp_path):
    dev = char_device(tmp_path)
    with pytest.raises(OSError, match="character device"):
        atomic_write_json(dev, {"a": 1})
    assert stat.S_ISCHR(os.stat(dev).st_mode)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="FIFO"):
        atomic_write_json(fifo, {"a": 1})
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(OSError, match="folder"):
        atomic_write_json(tmp_path, {"a": 1})
    assert tmp_path.is_dir()


def test_a_symlink_is_written_through_to_its_target(tmp_path):
    target, link = tmp_path / "real.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    atomic_write_json(link, {"a": 1})
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().strip().startswith("{")


def test_a_dangling_symlink_creates_its_target(tmp_path):
    target, link = tmp_path / "new.json", tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write_json(link, {"a": 1})
    assert link.is_symlink() and target.is_file()


def test_an_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "secret.json"
    path.write_text("old")
    for mode in (0o600, 0o640, 0o664):          # neither the temp file's 0600 nor the umask's 0644 alone
        os.chmod(path, mode)
        atomic_write_json(path, {"a": 1})
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert "old" not in path.read_text()


def test_a_read_only_file_is_refused_even_for_root(tmp_path):
    path = tmp_path / "keep.json"
    path.write_text("precious")
    os.chmod(path, 0o444)
    with pytest.raises(OSError, match="read-only"):
        atomic_write_json(path, {"a": 1})
    assert path.read_text() == "precious"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444


def test_an_empty_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OSError, match="empty file name"):
        atomic_write_json("", {"a": 1})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ command line
def test_cli_refuses_a_device_as_output(tmp_path):
    dev = char_device(tmp_path)
    for flag in ("--save", "--metrics"):
        proc = run("--headless", "--offline", "--hidden", "8", "--epochs", "1", "--train-size", "100", flag, str(dev))
        assert_one_line_error(proc, 2, flag, "character device")
        assert stat.S_ISCHR(os.stat(dev).st_mode)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_cli_refuses_a_fifo_as_output(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = run("--headless", "--offline", "--hidden", "8", "--epochs", "1", "--train-size", "100", "--save", str(fifo))
    assert_one_line_error(proc, 2, "--save", "FIFO")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_cli_refuses_a_read_only_model_file(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"keep me")
    os.chmod(path, 0o444)
    proc = run("--headless", "--offline", "--hidden", "8", "--epochs", "1", "--train-size", "100", "--save", str(path))
    assert_one_line_error(proc, 2, "--save", "read-only")
    assert path.read_bytes() == b"keep me"


def test_cli_refuses_one_path_for_two_outputs(tmp_path):
    path = tmp_path / "same"
    proc = run("--headless", "--offline", "--hidden", "8", "--epochs", "1", "--train-size", "100",
               "--save", str(path), "--metrics", str(path))
    assert_one_line_error(proc, 2, "--metrics", "--save")
    assert not path.exists()
    link = tmp_path / "link"
    link.symlink_to(path)                     # the same file under another name
    proc = run("--headless", "--offline", "--save", str(path), "--metrics", str(link))
    assert_one_line_error(proc, 2, "--metrics", "--save")


def test_cli_refuses_to_write_metrics_over_the_loaded_model(tmp_path):
    model = tmp_path / "m.npz"
    assert run("--headless", "--offline", "--hidden", "8", "--epochs", "1", "--train-size", "100",
               "--save", str(model)).returncode == 0
    before = model.read_bytes()
    proc = run("--headless", "--offline", "--load", str(model), "--no-train", "--metrics", str(model))
    assert_one_line_error(proc, 2, "--metrics", "--load")
    assert model.read_bytes() == before


@pytest.mark.parametrize("flag", ["--save", "--metrics", "--screenshot"])
def test_cli_refuses_an_empty_file_name(flag):
    proc = run("--headless", "--offline", flag, "")
    assert_one_line_error(proc, 2, flag, "empty file name")


def test_cli_saves_through_a_symlink_keeping_mode(tmp_path):
    target, link = tmp_path / "model.npz", tmp_path / "link.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link.symlink_to(target)
    proc = run("--headless", "--offline", "--hidden", "8", "--epochs", "1", "--train-size", "100", "--save", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    with np.load(target, allow_pickle=False) as f:
        assert f["W1"].shape == (784, 8)


# ------------------------------------------------------------------ killed writers (3)
def test_temp_files_of_killed_writers_are_removed_on_the_next_save(tmp_path):
    target = tmp_path / "model.npz"
    code = ("import os, signal, sys; from mnist_live.training.files import atomic_file\n"
            "with atomic_file(sys.argv[1]) as f:\n"
            "    f.write(b'half a model'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")
    for _ in range(3):                  # three writers killed mid-save: each removes the one before
        subprocess.run([sys.executable, "-c", code, str(target), str(ROOT)], timeout=60)
        left = [p.name for p in tmp_path.iterdir()]
        assert len(left) == 1 and left[0].startswith(".model.npz.") and ".tmp-" in left[0], left
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:                                                    # a writer still running keeps its file
        busy = tmp_path / f".model.npz.{sleeper.pid}.tmp-abc123"
        busy.write_bytes(b"in progress")
        others = [tmp_path / ".tmp-abcdefgh", tmp_path / ".other.npz.999999999.tmp-x", tmp_path / "notes.txt"]
        for p in others:
            p.write_bytes(b"not ours to delete")
        atomic_write_json(target, {"a": 1})
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([busy.name, "model.npz"] + [p.name for p in others])
    finally:
        sleeper.kill()
        sleeper.wait()


# ------------------------------------------------------------------ screenshots (2)
def _png_bytes(tmp_path):
    import pygame
    surface = pygame.Surface((64, 48))
    surface.fill((200, 30, 30))
    pygame.draw.line(surface, (0, 255, 0), (0, 0), (63, 47))
    out = tmp_path / "ref.png"
    pygame.image.save(surface, str(out))
    data = out.read_bytes()
    out.unlink()
    return surface, data


def test_save_png_atomic_writes_a_verified_png_pygame_can_read(tmp_path):
    import pygame
    surface, _ = _png_bytes(tmp_path)
    path = tmp_path / "shot.png"
    assert files.save_png_atomic(path, lambda f: pygame.image.save(surface, f, "shot.png")) == str(path)
    files.check_png(path)
    assert pygame.image.load(str(path)).get_size() == (64, 48)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.png"]


@pytest.mark.parametrize("damage, fragment", [
    (lambda d: d[:len(d) // 2], "truncated PNG"),                    # a full disk mid-write
    (lambda d: d[:-12], "not a complete PNG"),                      # no IEND
    (lambda d: d[:40] + bytes([d[40] ^ 1]) + d[41:], "bad CRC"),     # a flipped bit
    (lambda d: b"GIF89a" + d[6:], "not a PNG"),
    (lambda d: d + b"junk", "not a complete PNG"),
    (lambda d: b"", "not a PNG"),
])
def test_a_bad_png_never_replaces_the_old_one(tmp_path, damage, fragment):
    _, good = _png_bytes(tmp_path)
    path = tmp_path / "shot.png"
    path.write_bytes(b"old screenshot")
    with pytest.raises(OSError) as e:
        files.save_png_atomic(path, lambda f: f.write(damage(good)))
    assert fragment in e.value.strerror and "\n" not in e.value.strerror
    assert path.read_bytes() == b"old screenshot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.png"]       # no temp file left


def test_a_full_disk_or_failing_encoder_is_an_oserror_and_leaves_no_file(tmp_path):
    path = tmp_path / "shot.png"

    def disk_full(f):
        f.write(b"\x89PNG\r\n\x1a\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    def encoder_fails(f):
        raise RuntimeError("Couldn't open\nshot.png")           # e.g. pygame.error

    import errno
    with pytest.raises(OSError, match="No space left"):
        files.save_png_atomic(path, disk_full)
    with pytest.raises(OSError) as e:
        files.save_png_atomic(path, encoder_fails)
    assert "could not encode" in e.value.strerror and "\n" not in e.value.strerror
    assert list(tmp_path.iterdir()) == []


def test_save_png_atomic_accepts_returned_bytes_and_refuses_devices(tmp_path):
    _, good = _png_bytes(tmp_path)
    files.save_png_atomic(tmp_path / "b.png", lambda f: good)
    assert (tmp_path / "b.png").read_bytes() == good
    with pytest.raises(OSError, match="character device"):
        files.save_png_atomic(char_device(tmp_path), lambda f: good)


def test_unique_path_never_collides_within_one_second(tmp_path, monkeypatch):
    import time
    monkeypatch.chdir(tmp_path)
    now = time.localtime()
    names = []
    for _ in range(3):                                   # S pressed three times in one second
        name = files.unique_path("screenshot-%Y%m%d-%H%M%S.png", now)
        open(name, "wb").close()
        names.append(name)
    base = time.strftime("screenshot-%Y%m%d-%H%M%S", now)
    assert names == [f"{base}.png", f"{base}-2.png", f"{base}-3.png"]
    os.symlink("nowhere", f"{base}-4.png")               # a dangling link takes the name too
    assert files.unique_path("screenshot-%Y%m%d-%H%M%S.png", now) == f"{base}-5.png"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_loading_a_fifo_or_folder_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        proc = run("--headless", "--offline", "--load", str(path), "--no-train", timeout=30)
        assert_one_line_error(proc, 1, "not a regular file")


# ------------------------------------------------------------------ animated GIF, a frame at a time
def gif_of(frame):
    """One-frame GIF file bytes of a palette (P) image, as Pillow writes it."""
    import io
    out = io.BytesIO()
    frame.save(out, format="GIF")
    return out.getvalue()


def test_frames_written_one_by_one_read_back_pixel_for_pixel_with_delay_and_loop(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    sources, images = [], []
    for i in range(6):                                    # each frame its own palette of 200 colours
        rgb = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
        rgb[:, : 5 + 7 * i] = (255, 32 * i, 0)             # a bar that grows: the frames differ
        frame = Image.fromarray(rgb).quantize(colors=200)
        sources.append(np.asarray(frame.convert("RGB")))
        w, h, image = files.gif_frame_image(gif_of(frame))
        assert (w, h) == (50, 30)
        images.append(image)
    path = tmp_path / "clip.gif"
    with open(path, "wb") as f:
        files.write_gif(f, (50, 30), ((image, 40) for image in images))
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.size == (50, 30) and gif.n_frames == 6
        assert gif.info["loop"] == 0
        for i, source in enumerate(sources):
            gif.seek(i)
            assert gif.info["duration"] == 400
            assert np.array_equal(np.asarray(gif.convert("RGB")), source), f"frame {i} differs"


def test_a_frame_keeps_a_local_colour_table_and_malformed_gifs_are_errors():
    from PIL import Image
    frame = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4, "L").convert("P")
    w, h, image = files.gif_frame_image(gif_of(frame))
    assert image[0] == 0x2C and image[9] & 0x80          # an image descriptor with a local table
    assert files.gif_frame_image(b"GIF89a" + (8).to_bytes(2, "little") * 2 + b"\x00\x00\x00" + image)[2] == image
    for bad in (b"PNG", b"GIF89a" + bytes(7) + b"\x3b", gif_of(frame)[:-20]):
        with pytest.raises(ValueError):
            files.gif_frame_image(bad)
