"""Warm start from a static twin: the partition split, weight copy, sub-block BN re-centring."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.batch_norm import batch_norm_layers


def _randomise_batch_norms(model, seed=0):
    rng = np.random.default_rng(seed)
    for bn in batch_norm_layers(model):
        gamma, beta, mean, var = bn.get_weights()
        bn.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                        rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2.0, var.shape)])


def _zero_off_diagonal(static, groups):
    for block in static.layers:
        if isinstance(block, dk.MultiPathBlock) and block.kind == "bottleneck":
            conv = block.paths[0][3]  # path0_2_conv, the 3x3
            kernel = conv.get_weights()[0]
            p = kernel.shape[-1] // groups
            mask = np.zeros_like(kernel)
            for j in range(groups):
                mask[:, :, j * p:(j + 1) * p, j * p:(j + 1) * p] = 1.0
            conv.set_weights([kernel * mask])


def _images(n=8, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, (n, 32, 32, 3)).astype("float32")


def _close(a, b):
    scale = np.abs(a).max()
    return np.abs(a - b).max() <= 1e-5 * max(scale, 1.0)


def test_partition_split_of_zeroed_off_diagonals_is_the_static_network():
    static = dk.ResNet()
    _randomise_batch_norms(static)
    _zero_off_diagonal(static, 4)
    model = dk.from_static(static, groups=4)
    assert model.get_layer("conv2_block1").path_width == 4
    x = _images()
    expected = static.predict(x, verbose=0)
    np.testing.assert_array_less(0.1, np.abs(expected).max())  # not a degenerate output
    assert _close(expected, dk.force_gates(model, 1.0).predict(x, verbose=0))
    # With half of the sub-blocks off it is another function.
    assert not _close(expected, dk.force_gates(model, 0.5).predict(x, verbose=0))


def test_dense_3x3_loses_its_off_diagonal_blocks():
    static = dk.ResNet()
    _randomise_batch_norms(static)
    x = _images()
    model = dk.from_static(static, groups=4)
    assert not _close(static.predict(x, verbose=0), dk.force_gates(model, 1.0).predict(x, verbose=0))


def test_mobilenet_v2_all_on_is_exactly_the_static_network():
    static = dk.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), num_classes=10)
    _randomise_batch_norms(static, seed=2)
    model = dk.from_static(static, groups=(1, 1, 2, 2, 2, 2, 2))
    x = _images()
    assert _close(static.predict(x, verbose=0), dk.force_gates(model, 1.0).predict(x, verbose=0))


def test_rebalancing_keeps_inference_and_centres_the_sub_blocks():
    static = dk.ResNet()
    _randomise_batch_norms(static)
    x = _images(32)
    plain = dk.from_static(static, groups=4)
    balanced = dk.from_static(static, groups=4, calibration_images=x, calibration_batches=2)
    assert _close(dk.force_gates(plain, 1.0).predict(x, verbose=0),
                  dk.force_gates(balanced, 1.0).predict(x, verbose=0))
    # The last BN of a sub-block now holds the statistics it sees (not the static ones / 4).
    bn = balanced.get_layer("conv2_block1").paths[0][-1]
    static_bn = static.get_layer("conv2_block1").paths[0][-1]
    assert not np.allclose(bn.moving_variance.numpy(), static_bn.moving_variance.numpy())


def test_controllers_start_mostly_on_and_the_copy_names_layers():
    static = dk.ResNet()
    model = dk.DMNNResNet(groups=4, split="partition")
    copied = dk.copy_static_weights(static, model)
    assert "predictions" in copied and "conv5_block1" in copied
    assert not any(name.endswith("_gate") for name in copied)


def test_bad_arguments_name_themselves():
    static = dk.ResNet()
    with pytest.raises(ValueError, match="split"):
        dk.DMNNResNet(groups=4, split="halves")
    with pytest.raises(ValueError, match="partition"):  # the paper's split has no place for them
        dk.copy_static_weights(static, dk.DMNNResNet(groups=4))
    with pytest.raises(ValueError, match="classes"):
        dk.copy_static_weights(dk.ResNet(num_classes=100), dk.DMNNResNet(split="partition"))
    with pytest.raises(ValueError, match="static"):
        dk.from_static(dk.DMNNResNet())


def test_ungated_blocks_run_whole_and_take_the_static_block_whole():
    static = dk.ResNet(stack_sizes=(2, 1, 1, 1))
    _randomise_batch_norms(static, seed=3)
    model = dk.from_static(static, groups=2, ungated_blocks="first_of_stage")
    assert [block.name for _, block in model.gated_blocks] == ["conv2_block2"]
    assert model.get_layer("conv3_block1").groups == 1 and not model.get_layer("conv3_block1").gated
    x = _images()
    # The ungated blocks keep their whole 3x3: only conv2_block2 differs from the static network.
    features = lambda m: keras.Model(m.input, m.get_layer("conv2_block1").output)(x).numpy()
    assert _close(features(static), features(model))
    names = dk.DMNNResNet(ungated_blocks=("conv2_block1", "conv5_block1")).gated_blocks
    assert [block.name for _, block in names] == ["conv3_block1", "conv4_block1"]
    with pytest.raises(ValueError, match="ungated_blocks names blocks the model does not have"):
        dk.DMNNResNet(ungated_blocks=("conv9_block1",))
    with pytest.raises(ValueError, match="ungated_blocks must be"):
        dk.DMNNMobileNetV2(alpha=0.35, input_shape=(32, 32, 3), ungated_blocks="first")
