"""Augmentation (training/augment.py): the shifts Shifter makes, known and random."""
import numpy as np
import pytest

from mnist_live.training.augment import Shifter


class _FixedShifts:
    """Stands in for the rng: Shifter draws one table index per image."""

    def __init__(self, idx):
        self.idx = np.asarray(idx)

    def integers(self, low, high, size):
        assert (low, high, size) == (0, 25, len(self.idx))
        return self.idx


def _shift_zero_fill(img, dy, dx):
    out = np.roll(img, (dy, dx), axis=(0, 1))
    if dy > 0:
        out[:dy] = 0
    elif dy < 0:
        out[dy:] = 0
    if dx > 0:
        out[:, :dx] = 0
    elif dx < 0:
        out[:, dx:] = 0
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_shifter_known_shifts(dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(1, 256, (25, 784)).astype(dtype)        # no zero pixels: shifts are visible
    shifter = Shifter(2)
    out = shifter(x, _FixedShifts(np.arange(25)))             # table k = (dy, dx) in row-major order
    assert out.shape == x.shape and out.dtype == x.dtype
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    for k, (dy, dx) in enumerate(shifts):
        expected = _shift_zero_fill(x[k].reshape(28, 28), dy, dx)
        np.testing.assert_array_equal(out[k].reshape(28, 28), expected, err_msg=f"shift {(dy, dx)}")
    np.testing.assert_array_equal(out[12], x[12])            # (0, 0) is the identity
    assert not np.shares_memory(out, x)


def test_shifter_random_shifts_are_at_most_two_pixels():
    rng = np.random.default_rng(1)
    x = rng.integers(1, 256, (200, 784)).astype(np.uint8)
    out = Shifter(2)(x, np.random.default_rng(2))
    seen = set()
    for img, shifted in zip(x.reshape(-1, 28, 28), out.reshape(-1, 28, 28)):
        # the number of zeroed rows/columns gives |dy|, |dx|; the content gives the sign
        match = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                 if np.array_equal(shifted, _shift_zero_fill(img, dy, dx))]
        assert len(match) == 1 and max(map(abs, match[0])) <= 2
        seen.add(match[0])
    assert len(seen) == 25                                   # every allowed shift occurs
