"""Same seed, same run: a tiny training twice gives identical weights; another seed differs."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.data import load_dataset
from dmnn_keras.training import resolve_config


def _model(seed):
    keras.utils.set_random_seed(seed)
    return dk.DMNNResNet(groups=2, seed=seed)  # Gumbel noise in training


def _train(seed):
    """What `run_training` does, in small: seed, data, a gated model, a calibration read, fit."""
    model = _model(seed)
    train = load_dataset("cifar10", "train", batch_size=8, training=True, max_examples=64,
                         seed=seed)
    # `from_static` reads calibration batches and drops the iterator: whatever it prefetched
    # must not shift the augmentation of the epoch that follows.
    next(iter(train))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train, epochs=1, verbose=0)
    return model.get_weights()


def test_same_seed_same_weights_and_another_seed_differs():
    first, second = _train(0), _train(0)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    # Another seed starts elsewhere (a third training would cost as much as the two above).
    initial, other = _model(0).get_weights(), _model(1).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(initial, other))


def test_deterministic_is_a_checked_config_field():
    assert resolve_config("tiny", deterministic=True).deterministic is True
    with pytest.raises(ValueError, match="deterministic must be True or False"):
        resolve_config("tiny", deterministic="yes")
