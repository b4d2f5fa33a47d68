"""Warm start from a static twin: the partition split, weight copy, sub-block BN re-centring."""

import warnings

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.batch_norm import batch_norm_layers
from dmnn_keras.warm_start import start_exits_from, start_from

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)


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


def test_whole_block_gates_all_on_are_exactly_the_dense_static_network():
    """groups=1: each gate skips a whole residual branch, so nothing of the 3x3 is dropped."""
    static = dk.ResNet()
    _randomise_batch_norms(static, seed=3)
    model = dk.from_static(static, groups=1)
    x = _images()
    expected = static.predict(x, verbose=0)
    assert _close(expected, dk.force_gates(model, 1.0).predict(x, verbose=0))
    assert not _close(expected, dk.force_gates(model, 0.5).predict(x, verbose=0))


def test_cross_split_all_on_is_exactly_the_dense_static_network_and_one_sub_block_its_part():
    """split="cross": the 3x3 keeps its blocks between co-active sub-blocks (nothing dropped)."""
    static = dk.ResNet()
    _randomise_batch_norms(static, seed=4)
    model = dk.from_static(static, groups=2, split="cross")
    block = model.get_layer("conv3_block1")
    assert isinstance(block, dk.ChannelGatedBlock) and block.num_gates == 2
    x = _images()
    expected = static.predict(x, verbose=0)
    assert _close(expected, dk.force_gates(model, 1.0).predict(x, verbose=0))
    half = dk.force_gates(model, 0.5)  # the first sub-block of every block
    assert not _close(expected, half.predict(x, verbose=0))
    # Its MACs: each block's first 1x1 and last 1x1 halved, its 3x3 quartered.
    flops = block.compute_flops()
    k, hw = block.width // 2, block.output_hw[0] * block.output_hw[1]
    one = block.in_channels * k * block.input_hw[0] * block.input_hw[1] + hw * (
        9 * k * k + k * block.filters)
    assert flops["paths"] == [one, one] and flops["pairs"] == [[0, 1, hw * 9 * k * k],
                                                               [1, 0, hw * 9 * k * k]]
    static_flops = static.get_layer("conv3_block1").compute_flops()
    assert flops["always_on"] + 2 * one + 2 * hw * 9 * k * k == (
        static_flops["always_on"] + sum(static_flops["paths"]))
    # With switchable BatchNorms every set starts from the static BatchNorms: all on, the same.
    switched = dk.from_static(static, groups=2, split="cross", switchable_norms=True)
    assert isinstance(switched.get_layer("conv3_block1").bn3, dk.SwitchableBatchNorm)
    assert switched.get_config()["switchable_norms"] is True
    assert _close(expected, dk.force_gates(switched, 1.0).predict(x, verbose=0))


def test_start_from_a_static_model_takes_the_cross_split():
    static = dk.ResNet()
    _randomise_batch_norms(static, seed=5)
    model, replaced = start_from(static, 10, (32, 32, 3), groups=2, split="cross")
    assert replaced == {} and isinstance(model.get_layer("conv2_block1"), dk.ChannelGatedBlock)
    x = _images()
    assert _close(static.predict(x, verbose=0), dk.force_gates(model, 1.0).predict(x, verbose=0))


def test_from_static_names_the_splits_a_static_block_fits():
    with pytest.raises(ValueError, match="split must be 'partition' or 'cross'.*'preserve'"):
        dk.from_static(dk.ResNet(), groups=2, split="preserve")
    mobilenet = dk.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), num_classes=10)
    with pytest.raises(ValueError, match="split='cross' is for ResNets.*DynamicMobileNetV2"):
        dk.from_static(mobilenet, groups=2, split="cross")
    with pytest.raises(ValueError, match="split='cross'.*needs gating='dmnn'.*gating=None"):
        dk.DynamicResNet(gating=None, groups=2, split="cross", stack_sizes=(1, 1, 1, 1),
                         width_multiplier=0.25, input_shape=(32, 32, 3))


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
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the main job printed Keras' input-structure warning here
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


def test_start_from_a_static_model_with_a_new_head_and_image_size():
    static = dk.ResNet(num_classes=10)
    _randomise_batch_norms(static)
    model, replaced = start_from(static, 3, (40, 40, 3), groups=4, flops_target=0.6)
    assert replaced == {"predictions": "[(512, 10), (10,)] -> [(512, 3), (3,)]"}
    assert model.get_config()["gating"] == "dmnn" and model.resource_loss.flops_target == 0.6
    x = np.random.default_rng(0).uniform(0, 255, (2, 40, 40, 3)).astype("float32")
    assert tuple(model(x, training=False).shape) == (2, 3)
    for name in ("conv1_conv", "conv1_bn"):  # the stem copied
        for a, b in zip(static.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # The blocks went through from_static: sub-block 0 has the static block's first slice.
    np.testing.assert_array_equal(
        model.get_layer("conv2_block1").paths[0][0].get_weights()[0],
        static.get_layer("conv2_block1").paths[0][0].get_weights()[0][..., :4])


def test_start_from_a_dmnn_keeps_backbone_gates_and_controllers():
    dmnn = dk.DMNNResNet(num_classes=10, groups=2)
    _randomise_batch_norms(dmnn)
    dmnn.resource_loss.target.assign(0.9)
    dmnn.get_layer("conv2_block1_gate").gate.noise_scale.assign(0.0)
    model, replaced = start_from(dmnn, 10, (32, 32, 3), flops_target=0.4, dual_step=0.0)
    assert replaced == {}  # same classes: nothing new
    kept = [(v.path, v.numpy()) for v in dmnn.weights if not v.path.startswith("resource_loss")
            and not v.path.endswith(("temperature_value", "noise_scale"))]
    new = {v.path: v.numpy() for v in model.weights}
    assert all(np.array_equal(value, new[path]) for path, value in kept)
    # The run state starts over: the new target, the gates' full noise.
    assert float(model.resource_loss.target.numpy()) == pytest.approx(0.4)
    assert model.resource_loss.dual_step == 0.0
    assert float(model.get_layer("conv2_block1_gate").gate.noise_scale.numpy()) == 1.0
    x = _images(4)
    np.testing.assert_allclose(model(x, training=False), dmnn(x, training=False), atol=1e-5)


def test_start_from_a_dmnn_with_a_difficulty_head_for_another_class_count():
    """The difficulty head has one logit per class: like the classifier it starts fresh."""
    tiny = dict(stack_sizes=(1, 1, 1, 1), width_multiplier=0.125, groups=2, split="partition",
                difficulty_head="conv3_block1", uncertainty_spread=1.0)
    dmnn = dk.DynamicResNet(num_classes=10, **tiny)
    _randomise_batch_norms(dmnn)
    model, replaced = start_from(dmnn, 3, (32, 32, 3), flops_target=0.6)
    heads = [v.path for v in model.weights if v.path.startswith(("predictions/",
                                                                 "conv3_block1_difficulty/"))]
    assert sorted(replaced) == ["conv3_block1_difficulty", "predictions"]
    assert replaced["conv3_block1_difficulty"] == "[(256, 10), (10,)] -> [(256, 3), (3,)]"
    # Every other weight kept, the controllers' difficulty inputs too.
    new = {v.path: v.numpy() for v in model.weights}
    kept = [(v.path, v.numpy()) for v in dmnn.weights
            if v.path not in heads and not v.path.startswith("resource_loss")
            and not v.path.endswith(("temperature_value", "noise_scale"))]
    assert len(kept) > 50 and all(np.array_equal(value, new[path]) for path, value in kept)
    x, y = _images(4), np.arange(4) % 3
    outputs = model(x, training=True)
    assert outputs["difficulty"].shape == (4, 3) and outputs["logits"].shape == (4, 3)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0)  # the new heads train on 3 classes


def test_start_exits_from_a_static_or_an_early_exit_model():
    static = dk.ResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.125, num_classes=10)
    _randomise_batch_norms(static)
    exits = dk.EarlyExitModel(static, exits=("conv3_block1", "conv4_block1"), grid=1,
                              exit_loss_weight=0.5)
    for name in exits.exit_names:  # trained heads, not their initialisation
        head = exits.get_layer(name)
        head.set_weights([np.random.default_rng(3).normal(0, 0.1, w.shape) for w in head.weights])
    x = _images(4)
    # Same classes and exits: the early-exit model itself, a new object.
    model, replaced = start_exits_from(exits, ("conv3_block1", "conv4_block1"), 10, (32, 32, 3),
                                       exit_loss_weight=0.5)
    assert replaced == {} and model is not exits and model.get_config()["grid"] == 1
    for a, b in zip(exits(x, training=True).values(), model(x, training=True).values()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    # Another class count: the classifier and the kept exit's head start fresh; a new exit too.
    model, replaced = start_exits_from(exits, ("conv3_block1", "conv2_block1"), 3, (40, 40, 3))
    assert replaced == {"predictions": "[(256, 10), (10,)] -> [(256, 3), (3,)]",
                        "conv3_block1_exit": "[(64, 10), (10,)] -> [(64, 3), (3,)]"}
    assert model.exit_names == ("conv2_block1_exit", "conv3_block1_exit")
    for name in ("conv1_conv", "conv4_block1"):  # the backbone copied
        for a, b in zip(static.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert model(np.zeros((2, 40, 40, 3), "float32")).shape == (2, 3)
    # A static model: its backbone, the exits start fresh (grid 2, the default).
    model, replaced = start_exits_from(static, ("conv3_block1",), 10, (32, 32, 3))
    assert replaced == {} and model.get_config()["grid"] == 2
    np.testing.assert_allclose(model(x, training=True)["logits"], static(x, training=True),
                               rtol=1e-5, atol=1e-4)  # the final classifier: the static model


def test_a_dmnn_pre_trained_all_on_starts_gating_where_it_ended():
    """forced_gate_rate=1.0 trains the all-on partition net; start_from(forced_gate_rate=None) gates it."""
    all_on = dk.DMNNResNet(num_classes=10, groups=2, split="partition", flops_target=1.0,
                           forced_gate_rate=1.0)
    _randomise_batch_norms(all_on, seed=5)
    controller = all_on.get_layer("conv3_block1_gate")
    learned = [v for v in controller.weights if "kernel" in v.path]
    for v in learned:
        v.assign(v * 0.01)  # as weight decay leaves them
    model, _ = start_from(all_on, 10, (32, 32, 3), flops_target=0.7, forced_gate_rate=None)
    assert model.get_config()["forced_gate_rate"] is None
    x = _images()
    expected = all_on.predict(x, verbose=0)
    assert _close(expected, dk.force_gates(model, 1.0).predict(x, verbose=0))
    # Its gates now decide: half of them off is another function.
    assert not _close(expected, dk.force_gates(model, 0.5).predict(x, verbose=0))
    # The controllers, which only decayed while forced, start fresh (as from a static model);
    # a run that keeps the gates forced keeps them.
    def kernels(m):
        return {v.path: v.numpy() for v in m.get_layer("conv3_block1_gate").weights
                if "kernel" in v.path}
    assert learned and not any(np.array_equal(v.numpy(), kernels(model)[v.path]) for v in learned)
    forced, _ = start_from(all_on, 10, (32, 32, 3), flops_target=0.7)
    assert forced.get_config()["forced_gate_rate"] == 1.0
    assert all(np.array_equal(v.numpy(), kernels(forced)[v.path]) for v in learned)


def test_start_from_needs_a_classification_head():
    with pytest.raises(ValueError, match="init_from must be a model of this library with its "
                                         "classification head .* without one"):
        start_from(dk.DMNNResNet(include_top=False), 3, (32, 32, 3))
