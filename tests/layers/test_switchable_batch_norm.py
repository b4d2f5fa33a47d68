"""SwitchableBatchNorm: each image normalised by its own set's statistics and weights."""

import keras
import numpy as np
import pytest

from dmnn_keras import SwitchableBatchNorm


def _norm(num_sets=3, channels=4):
    norm = SwitchableBatchNorm(num_sets)
    norm.build([(None, 5, 5, channels), (None, num_sets)])
    rng = np.random.default_rng(0)
    for bn in norm.norms:  # every set its own weights and statistics
        bn.set_weights([rng.uniform(0.5, 2, channels), rng.normal(size=channels),
                        rng.normal(size=channels), rng.uniform(0.5, 2, channels)])
    return norm


def _images(batch=6, channels=4, seed=1):
    return np.random.default_rng(seed).normal(2.0, 3.0, (batch, 5, 5, channels)).astype("float32")


def test_inference_uses_each_images_set():
    norm, x = _norm(), _images()
    picks = np.array([0, 2, 1, 2, 0, 1])
    y = np.asarray(norm([x, np.eye(3, dtype="float32")[picks]], training=False))
    for s in range(3):
        expected = np.asarray(norm.norms[s](x[picks == s], training=False))
        np.testing.assert_allclose(y[picks == s], expected, rtol=1e-5, atol=1e-5)


def test_training_normalises_each_set_with_its_own_images_and_updates_only_present_sets():
    norm, x = _norm(), _images()
    picks = np.array([0, 2, 0, 2, 0, 2])  # set 1 absent
    before = [[np.array(v) for v in (bn.moving_mean, bn.moving_variance)] for bn in norm.norms]
    y = np.asarray(norm([x, np.eye(3, dtype="float32")[picks]], training=True))
    for s in (0, 2):
        group = x[picks == s]
        mean, variance = group.mean(axis=(0, 1, 2)), group.var(axis=(0, 1, 2))
        gamma, beta = (np.array(w) for w in (norm.norms[s].gamma, norm.norms[s].beta))
        expected = gamma * (group - mean) / np.sqrt(variance + norm.norms[s].epsilon) + beta
        np.testing.assert_allclose(y[picks == s], expected, rtol=1e-4, atol=1e-4)
        momentum = norm.norms[s].momentum
        np.testing.assert_allclose(norm.norms[s].moving_mean,
                                   before[s][0] * momentum + mean * (1 - momentum), rtol=1e-5)
        np.testing.assert_allclose(norm.norms[s].moving_variance,
                                   before[s][1] * momentum + variance * (1 - momentum), rtol=1e-4)
    np.testing.assert_array_equal(norm.norms[1].moving_mean, before[1][0])
    np.testing.assert_array_equal(norm.norms[1].moving_variance, before[1][1])


def test_round_trip_and_bad_arguments(tmp_path):
    norm, x = _norm(), _images()
    sets = np.eye(3, dtype="float32")[[2, 1, 0, 0, 1, 2]]
    inputs = [keras.Input((5, 5, 4)), keras.Input((3,))]
    model = keras.Model(inputs, norm(inputs))
    model.save(tmp_path / "norm.keras")
    loaded = keras.saving.load_model(tmp_path / "norm.keras")
    np.testing.assert_allclose(loaded.predict([x, sets], verbose=0),
                               model.predict([x, sets], verbose=0), rtol=1e-6)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match=f"num_sets must be an int >= 1. Received: num_sets={bad}"):
            SwitchableBatchNorm(bad)
    with pytest.raises(ValueError, match=r"sets \[batch, 3\]"):
        SwitchableBatchNorm(3)([x, np.ones((6, 2), "float32")])


def test_counting_gives_exact_means_over_the_batches_each_set_is_in():
    norm = _norm()
    first, second = _images(seed=2), _images(seed=3)
    norm.count_batches(True)
    norm([first, np.eye(3, dtype="float32")[[0] * 6]], training=True)
    norm([second, np.eye(3, dtype="float32")[[0, 0, 0, 2, 2, 2]]], training=True)
    np.testing.assert_array_equal(norm.count_batches(False), [2, 0, 1])
    expected = (first.mean(axis=(0, 1, 2)) + second[:3].mean(axis=(0, 1, 2))) / 2
    np.testing.assert_allclose(norm.norms[0].moving_mean, expected, rtol=1e-5)
    np.testing.assert_allclose(norm.norms[2].moving_mean, second[3:].mean(axis=(0, 1, 2)),
                               rtol=1e-5)
    assert norm.batches_seen is None


def test_recalibration_keeps_the_statistics_of_sets_no_image_ran():
    import dmnn_keras as dk

    model = dk.DMNNResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25, input_shape=(32, 32, 3),
                          num_classes=10, groups=2, split="cross", switchable_norms=True, seed=0)
    norm = model.get_layer("conv3_block1").bn3
    old = [np.array(bn.moving_mean) + 1.0 for bn in norm.norms]
    for bn, mean in zip(norm.norms, old):
        bn.moving_mean.assign(mean)
    dk.force_gates(model, 1.0)  # every image runs both sub-blocks: set 3
    dk.recalibrate_batch_norm(model, np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)),
                              batch_size=4)
    for s in range(3):
        np.testing.assert_array_equal(norm.norms[s].moving_mean, old[s])
    assert np.abs(np.array(norm.norms[3].moving_mean) - old[3]).max() > 1e-3
    with pytest.raises(ValueError, match="switchable_norms=True is for split='cross'.*'partition'"):
        dk.DMNNResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25, input_shape=(32, 32, 3),
                      groups=2, split="partition", switchable_norms=True)
