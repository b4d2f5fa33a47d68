"""Shared helpers of the method tests (AIG, channel gating, LC-Net)."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_images(n, seed=0, size=32):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def toy_fit(model, epochs=8, n=64, batch_size=16, learning_rate=0.05, optimizer=None):
    """A few dozen SGD steps (or `optimizer`) on synthetic data (label: image brightness)."""
    x = make_images(n, seed=1)
    y = (x.mean(axis=(1, 2, 3)) > 127).astype("int32")
    optimizer = optimizer or keras.optimizers.SGD(learning_rate, momentum=0.9)
    model.compile(optimizer=optimizer, loss=LOSS)
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return history.history, dk.profile(model, x)


@pytest.fixture(name="make_images")
def make_images_fixture():
    return make_images


@pytest.fixture(name="toy_fit")
def toy_fit_fixture():
    return toy_fit
