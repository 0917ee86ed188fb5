"""Output files that never lose or clobber data: atomic writes that go through to what the
user named, checks of the target, clean-up after killed writers, verified PNGs and
collision-free names.

Standard library only: `main.py` checks output paths with it before NumPy is imported
(the BLAS thread limits must be set first); NumPy only inside `atomic_save_npz`.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
import time
import zlib

TEMP_TAG = ".tmp-"          # temp files are named .<target name>.<pid>.tmp-<random>


def output_target(path):
    """The real file a write to `path` goes to: a symlink is followed to its target.

    OSError (strerror: one line for the user) unless that is a new file name or an existing
    regular file we may overwrite: devices, FIFOs, sockets and folders are never replaced,
    and a read-only file is refused by its mode bits (root may write anything, we don't)."""
    path = os.fspath(path)
    if not path:
        raise OSError(errno.ENOENT, "empty file name")
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real
    if not stat.S_ISREG(st.st_mode):
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a character device" if stat.S_ISCHR(st.st_mode)
                else "a block device" if stat.S_ISBLK(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise OSError(errno.EEXIST, f"{path} is {kind}, not a regular file; refusing to replace it", path)
    if not st.st_mode & 0o222 or not os.access(real, os.W_OK):
        raise OSError(errno.EACCES, f"{path} is read-only (mode {stat.S_IMODE(st.st_mode):04o}); "
                                    f"refusing to overwrite it", path)
    return real


@contextlib.contextmanager
def atomic_file(path, verify=None):
    """Open a temp file beside the file `path` names for binary writing; on success it is
    synced, checked by `verify(temp_path)` when given (raise OSError to refuse), and renamed
    over the target, so readers see the old or the new file, never half of one. On any
    error the temp file is removed and the target is untouched.

    Writes go through to what the user named: a symlink is followed (the link stays), an
    existing file keeps its mode (and owner, when we may set it); anything that is not a
    regular file, or a read-only file, is refused (see `output_target`). Temp files left
    by killed writers to the same target are removed first."""
    real = output_target(path)
    folder, base = os.path.split(real)
    remove_stale_temps(folder, base)
    try:
        old = os.stat(real)
    except FileNotFoundError:
        old = None
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}{TEMP_TAG}", dir=folder)
    try:
        if old is not None:                       # keep what the user set on the file
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
            if hasattr(os, "chown") and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(OSError):
                    os.chown(tmp, old.st_uid, old.st_gid)
        else:                                     # mkstemp makes 0600; give a new file the usual mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_stale_temps(folder, base):
    """Delete temp files of ours for target `base` in `folder` whose writer is gone
    (a writer killed mid-save leaves its .<base>.<pid>.tmp-* behind)."""
    pattern = re.compile(re.escape(f".{base}.") + r"(\d+)" + re.escape(TEMP_TAG) + r"[\w-]+")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m and _writer_gone(int(m.group(1)), os.path.join(folder, name)):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


def _writer_gone(pid, temp_path):
    if pid == os.getpid():
        return False
    if os.name == "posix":
        try:
            os.kill(pid, 0)                       # signal 0: only asks whether pid exists
        except ProcessLookupError:
            return True
        except OSError:                           # exists, owned by someone else
            return False
        return False
    try:                                          # elsewhere (no signal 0): an hour without change
        return time.time() - os.stat(temp_path).st_mtime > 3600
    except OSError:
        return False


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path, name=None):
    """OSError unless the file at `path` is a whole PNG: the signature, then chunks with
    correct lengths and CRCs from IHDR to IEND, and nothing after (`name`: shown instead)."""
    name = name or path
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(PNG_SIGNATURE):
        raise OSError(errno.EIO, f"{name} is not a PNG (no PNG signature, {len(data)} bytes)")
    pos, first, last = len(PNG_SIGNATURE), None, None
    while pos < len(data):
        if pos + 12 > len(data):
            raise OSError(errno.EIO, f"{name} is a truncated PNG (a chunk header is cut at byte {pos})")
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise OSError(errno.EIO, f"{name} is a truncated PNG ({kind.decode('latin-1')!r} chunk cut)")
        if zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            raise OSError(errno.EIO, f"{name} is a damaged PNG (bad CRC in a {kind.decode('latin-1')!r} chunk)")
        first = first or kind
        last, pos = kind, end
        if kind == b"IEND":
            break
    if first != b"IHDR" or last != b"IEND" or pos != len(data):
        raise OSError(errno.EIO, f"{name} is not a complete PNG (it must run from IHDR to IEND)")


def save_png_atomic(path, write):
    """Write a PNG through `atomic_file`: `write(f)` writes the PNG bytes to binary file f
    (or returns them), e.g. ``lambda f: pygame.image.save(surface, f, "shot.png")``. The
    result is checked (`check_png`) before it replaces `path`, so a full disk or a failed
    encoder leaves the old file (or none) and raises OSError with a one-line message,
    never a truncated PNG under the name. Returns the real path written."""
    def verify(tmp):
        check_png(tmp, name=os.fspath(path))

    try:
        with atomic_file(path, verify=verify) as f:
            data = write(f)
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
    except OSError:
        raise
    except Exception as e:                        # an encoder's own error type (e.g. pygame.error)
        raise OSError(errno.EIO, f"could not encode {os.fspath(path)} as PNG: "
                                 f"{' '.join(str(e).split()) or type(e).__name__}") from e
    return output_target(path)


def unique_path(pattern, now=None):
    """A file name from strftime `pattern` (e.g. "screenshot-%Y%m%d-%H%M%S.png") that names
    no existing file: "-2", "-3", ... go before the extension when the name is taken (two
    screenshots in one second). `now`: a time.struct_time (default: the local time now)."""
    name = time.strftime(pattern, now or time.localtime())
    stem, ext = os.path.splitext(name)
    candidate, n = name, 1
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{stem}-{n}{ext}"
    return candidate


# ------------------------------------------------------------------ animated GIF, a frame at a time
# A GIF89a file is a header, a logical screen descriptor, then per frame an optional graphic
# control extension (the delay) and an image: descriptor, colour table, LZW data. Each frame
# with its own (local) colour table is self-contained, so a clip can keep every frame as the
# few kB of its encoded image and write the file by concatenation: no decoded frame is held
# (an encoder that takes all frames at once keeps them all decoded while it writes).

def _gif_sub_blocks_end(data, pos):
    """Index just past the data sub-blocks starting at `pos` (size byte, bytes, ..., 0)."""
    while True:
        if pos >= len(data):
            raise ValueError("truncated GIF data sub-blocks")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def gif_frame_image(gif):
    """The image of a one-frame GIF file (bytes) as a self-contained frame: the image
    descriptor with a local colour table (the file's global one moved in), then the LZW data.
    Returns (width, height, image bytes) for `write_gif`. ValueError on a malformed file."""
    data = bytes(gif)
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise ValueError("not a GIF file")
    flags = data[10]
    pos, table = 13, None
    if flags & 0x80:                                             # global colour table
        table_bits = flags & 0x07
        table = data[pos:pos + 3 * (2 << table_bits)]
        pos += len(table)
    while pos < len(data) and data[pos] == 0x21:                  # extensions: skipped (we write our own)
        pos = _gif_sub_blocks_end(data, pos + 2)
    if pos + 10 > len(data) or data[pos] != 0x2C:
        raise ValueError("no image in the GIF file")
    descriptor = bytearray(data[pos:pos + 10])
    width, height = int.from_bytes(descriptor[5:7], "little"), int.from_bytes(descriptor[7:9], "little")
    pos += 10
    if descriptor[9] & 0x80:                                     # already a local table: keep it
        local_bits = descriptor[9] & 0x07
        table = data[pos:pos + 3 * (2 << local_bits)]
        pos += len(table)
    elif table is not None:
        descriptor[9] = (descriptor[9] & ~0x07 & 0xFF) | 0x80 | table_bits
    else:
        raise ValueError("the GIF frame has no colour table")
    end = _gif_sub_blocks_end(data, pos + 1)                      # LZW minimum code size, then the data
    return width, height, bytes(descriptor) + table + data[pos:end]


def write_gif(f, size, images, loop=0, transparent=None):
    """Write an animated GIF89a to binary file `f`: `images` are (image, delay) pairs, image
    from `gif_frame_image`, delay in hundredths of a second. Each frame stays on screen under
    the next (disposal 1), so with `transparent` (a palette index) a frame can give only
    what changed. `loop`: how often the clip repeats (0: for ever)."""
    width, height = size
    f.write(b"GIF89a" + width.to_bytes(2, "little") + height.to_bytes(2, "little") + b"\x00\x00\x00")
    f.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + loop.to_bytes(2, "little") + b"\x00")
    flags = 0x04 | (transparent is not None)                          # disposal 1: leave the frame in place
    for image, delay in images:
        delay = max(2, delay).to_bytes(2, "little")                   # under 2 most viewers slow it down
        f.write(b"\x21\xf9\x04" + bytes([flags]) + delay + bytes([transparent or 0]) + b"\x00")
        f.write(image)
    f.write(b"\x3b")


def atomic_write_json(path, obj):
    with atomic_file(path) as f:
        f.write((json.dumps(obj, indent=2) + "\n").encode())


def atomic_save_npz(path, arrays):
    """Uncompressed .npz (fast to load), written atomically."""
    import numpy as np
    with atomic_file(path) as f:
        np.savez(f, **arrays)
