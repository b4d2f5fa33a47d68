"""calibrate_flops: one threshold shift of every gate meets the FLOPs target."""

import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.batch_norm import batch_norm_layers


def _images(n=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, 32, 32, 3)).astype("float32")


def test_calibration_meets_the_target_with_one_shift_of_every_gate_bias():
    model = dk.DMNNResNet(groups=2, split="partition", flops_target=0.6)
    x = _images()
    before = [c.logits_dense.bias.numpy().copy() for c in model.controllers]
    assert dk.profile(model, x)["flops_ratio"] > 0.9  # gates start mostly on
    result = dk.calibrate_flops(model, x, batch_size=32, recalibrate_bn=False)
    assert abs(result["flops_ratio"] - 0.6) <= 0.03
    assert dk.profile(model, x)["flops_ratio"] == pytest.approx(result["flops_ratio"])
    for controller, bias in zip(model.controllers, before):
        np.testing.assert_allclose(controller.logits_dense.bias.numpy() - bias, result["delta"],
                                   atol=1e-5)
    assert result["images"] == 64


def test_calibration_to_another_target_and_with_batch_norm():
    model = dk.DMNNResNet(groups=2, split="partition", flops_target=0.6)
    result = dk.calibrate_flops(model, _images(), target=0.8, batch_size=32)
    assert abs(result["flops_ratio"] - 0.8) < 0.03


def test_calibration_refuses_bad_arguments():
    with pytest.raises(ValueError, match="GateControllers"):
        dk.calibrate_flops(dk.ResNet(), _images(8))
    with pytest.raises(ValueError, match="target"):
        dk.calibrate_flops(dk.DMNNResNet(), _images(8), target=1.5)
    with pytest.raises(ValueError, match="batches"):
        dk.calibrate_flops(dk.DMNNResNet(), _images(8), batches=0)
    with pytest.raises(ValueError, match="bn_images"):
        dk.calibrate_flops(dk.DMNNResNet(), _images(8), recalibrate_bn=False, bn_images=_images(8))


def test_batch_norm_statistics_come_from_bn_images():
    """The threshold from `images`, the BatchNorm statistics from `bn_images` (the stem's BN sits
    before every gate, so its statistics depend on the images alone)."""
    threshold_images, bn_images = _images(64), _images(64) * 0.5
    calibrated = dk.DMNNResNet(groups=2, split="partition", flops_target=0.6)
    reference = dk.DMNNResNet(groups=2, split="partition", flops_target=0.6)
    reference.set_weights(calibrated.get_weights())
    dk.calibrate_flops(calibrated, threshold_images, batch_size=32, bn_images=bn_images)
    dk.recalibrate_batch_norm(reference, bn_images, batch_size=32)
    stem, stem_reference = (batch_norm_layers(m)[0] for m in (calibrated, reference))
    np.testing.assert_allclose(stem.moving_mean.numpy(), stem_reference.moving_mean.numpy(),
                               rtol=1e-4, atol=1e-4)
    dk.recalibrate_batch_norm(reference, threshold_images, batch_size=32)
    assert not np.allclose(stem.moving_mean.numpy(), stem_reference.moving_mean.numpy(),
                           rtol=1e-3, atol=1e-3)


def test_the_compiled_probe_equals_eager_calls_and_reads_the_shifted_gates():
    from dmnn_keras.gates import gate_probe, image_batches, probe_outputs

    model = dk.DMNNResNet(stack_sizes=(1, 1, 1, 1), groups=2, split="partition", seed=0)
    probe, names = gate_probe(model)
    x = _images(40)  # batches of 16, 16 and 8: the last one traces again
    eager = probe_outputs(probe, image_batches(x, 16), compiled=False)
    compiled = probe_outputs(probe, image_batches(x, 16), compiled=True)
    assert [a.shape for a in compiled] == [(40, 10)] + [(40, 2)] * len(names)
    np.testing.assert_allclose(compiled[0], eager[0], rtol=1e-4, atol=1e-3)
    for a, b in zip(compiled[1:], eager[1:]):
        np.testing.assert_array_equal(a, b)
    for controller in model.controllers:  # every gate off: the traced graph must see it
        controller.logits_dense.bias.assign(controller.logits_dense.bias.numpy() - 1e3)
    after = probe_outputs(probe, image_batches(x, 16), compiled=True)
    assert all((gates == 0).all() for gates in after[1:]) and any(g.any() for g in compiled[1:])
    with pytest.raises(ValueError, match="at least one image"):
        probe_outputs(probe, iter(()), compiled=True)


def test_predict_gates_is_the_same_over_many_batches_compiled_and_one_batch_eager():
    import tensorflow as tf

    from dmnn_keras.gates import EAGER_PASS_BATCHES, batch_count

    x = _images(18)
    assert batch_count(x, 2) == 9 > EAGER_PASS_BATCHES and batch_count(x, 18) == 1
    data = tf.data.Dataset.from_tensor_slices(x).batch(2)
    assert batch_count(data, 64) == 9  # a dataset keeps its own batches
    assert batch_count(data.filter(lambda image: True), 64) == -1  # unknown: eager
    model = dk.DMNNResNet(stack_sizes=(1, 1, 1, 1), groups=2, split="partition", seed=0)
    many, many_logits = dk.predict_gates(model, x, batch_size=2, return_logits=True)
    one, one_logits = dk.predict_gates(model, x, batch_size=18, return_logits=True)
    np.testing.assert_allclose(many_logits, one_logits, rtol=1e-4, atol=1e-3)
    for name in one:
        np.testing.assert_array_equal(many[name], one[name])
