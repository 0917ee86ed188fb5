"""Drawn digits are preprocessed like MNIST, so a trained network reads them: real MNIST
test digits, scaled and shifted onto the drawing canvas, must keep their predictions."""
import numpy as np
import pytest

from mnist_live import data_loader
from mnist_live.training.config import Config
from mnist_live.training.trainer import Trainer, evaluate
from mnist_live.window import drawn_digit

CANVAS = 280


def place(image28, scale, dx, dy):
    """Put a 28x28 digit on a 280x280 canvas, scaled by `scale` (nearest) and shifted."""
    big = np.kron(image28, np.ones((scale, scale), np.float32))
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    side = big.shape[0]
    y0 = int(np.clip((CANVAS - side) // 2 + dy, 0, CANVAS - side))
    x0 = int(np.clip((CANVAS - side) // 2 + dx, 0, CANVAS - side))
    canvas[y0:y0 + side, x0:x0 + side] = big
    return canvas


@pytest.mark.slow
def test_scaled_and_shifted_mnist_digits_keep_their_label():
    data = data_loader.load_dataset(offline=True, log=lambda *a: None)
    trainer = Trainer(Config(hidden=(256,), epochs=4, batch_size=64, seed=0), data.x_train, data.y_train)
    while not trainer.finished:
        trainer.train_batch()
    net = trainer.net
    x = data.x_test[:300].astype(np.float32) / 255
    y = data.y_test[:300]
    assert evaluate(net, data.x_test, data.y_test).accuracy > 0.9
    rng = np.random.default_rng(0)
    agree = total = 0
    for img, label in zip(x, y):
        if net.predict(img[None])[0] != label:
            continue                                   # judge the pipeline, not the model
        scale = int(rng.integers(4, 10))
        side = 28 * scale
        room = (CANVAS - side) // 2
        canvas = place(img.reshape(28, 28), scale, rng.integers(-room, room + 1), rng.integers(-room, room + 1))
        pre = drawn_digit.mnist_style(canvas)
        assert pre.shape == (28, 28) and pre.dtype == np.float32
        agree += int(net.predict(pre.reshape(1, 784))[0] == label)
        total += 1
    assert total > 200
    assert agree / total >= 0.9, f"only {agree}/{total} drawn copies kept their label"
