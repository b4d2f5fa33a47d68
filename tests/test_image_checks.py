"""User image arrays are checked before they reach a model: finite, RGB, [batch, H, W, 3]."""

import numpy as np
import pytest
import tensorflow as tf

import dmnn_keras as dk
from dmnn_keras.export.latency import compare_latency


@pytest.fixture(scope="module")
def model():
    return dk.DMNNResNet(seed=0)


def _images(channels=3, count=2):
    return np.random.default_rng(0).uniform(0, 255, (count, 32, 32, channels)).astype("float32")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_rejected(model, value):
    images = _images()
    images[1, 3, 4, 2] = value
    message = r"images must hold finite pixel values in \[0, 255\]\. Received: 1 NaN or inf values, " \
              rf"the first {value} at index \(1, 3, 4, 2\)"
    with pytest.raises(ValueError, match=message):
        dk.predict_gates(model, images)
    with pytest.raises(ValueError, match=message):
        dk.profile(model, images)
    before = model(images[:1], training=False)
    with pytest.raises(ValueError, match=message):
        dk.recalibrate_batch_norm(model, images, batch_size=1)
    np.testing.assert_array_equal(model(images[:1], training=False), before)
    with pytest.raises(ValueError, match=message):
        compare_latency([model], images)


def test_rgba_and_grayscale_are_rejected_with_the_fix(model):
    with pytest.raises(ValueError, match=r"RGB images \[batch, height, width, 3\]\. Received: shape "
                                         r"\(2, 32, 32, 4\), 4 channel\(s\) \(RGBA\? drop the alpha"):
        dk.predict_gates(model, _images(4))
    with pytest.raises(ValueError, match=r"\(2, 32, 32, 1\), 1 channel\(s\) \(grayscale\? repeat it"):
        dk.profile(model, _images(1))
    with pytest.raises(ValueError, match=r"channels-first\? transpose"):
        dk.predict_gates(model, _images().transpose(0, 3, 1, 2))


def test_dataset_batches_are_checked(model):
    images = _images(count=4)
    images[3, 0, 0, 0] = np.nan
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(4, "int32"))).batch(2)
    with pytest.raises(ValueError, match=r"1 NaN or inf values, the first nan at index \(1, 0, 0, 0\)"):
        dk.profile(model, dataset)


def test_non_numeric_images_are_rejected(model):
    with pytest.raises(ValueError, match="real-valued .* Received: dtype=bool"):
        dk.predict_gates(model, np.ones((2, 32, 32, 3), bool))


def test_valid_images_pass(model):
    gates = dk.predict_gates(model, _images().astype("uint8"))
    assert gates["conv2_block1"].shape == (2, 4)


@pytest.mark.parametrize("make", [
    lambda batches: dk.gates.first_batches(_images(), batches, 1),
    lambda batches: dk.warm_start.rebalance_sub_blocks(None, _images(), batches=batches),
    lambda batches: dk.training.gate_schedules.FlopsCalibration(_images(), batches=batches),
    lambda batches: dk.training.gate_schedules.ConstantGateFixing(_images(), batches=batches),
    lambda batches: dk.training.gate_schedules.BatchNormRecalibration(_images(), batches=batches),
])
@pytest.mark.parametrize("batches", [0, True, 2.0])
def test_a_batch_count_that_is_not_an_int_of_at_least_1_is_rejected(make, batches):
    with pytest.raises(ValueError, match=rf"batches must be an int >= 1\. Received: "
                                         rf"batches={batches!r}$"):
        make(batches)


def test_first_batches_stops_at_the_count_and_needs_an_image():
    images = _images(count=5).astype("float64")
    first = dk.gates.first_batches(images, 2, batch_size=2)
    assert [b.shape[0] for b in first] == [2, 2] and all(b.dtype == np.float32 for b in first)
    np.testing.assert_array_equal(np.concatenate(first), images[:4].astype("float32"))
    labelled = tf.data.Dataset.from_tensor_slices((images, np.arange(5))).batch(3)
    assert [b.shape[0] for b in dk.gates.first_batches(labelled, 9, batch_size=1)] == [3, 2]
    with pytest.raises(ValueError, match="images must hold at least one image. Received: an empty"):
        dk.gates.first_batches(labelled.take(0), 1, batch_size=1)
