"""A builder's `dtype` reaches every layer it builds; losses and metrics stay float32.

`DMNNResNet50(dtype="mixed_bfloat16")` is checked by the README's snippet (tests/test_readme.py).
"""

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras import keras_compat

POLICY = "mixed_bfloat16"
CIFAR_MOBILENET = dict(alpha=0.35, input_shape=(32, 32, 3), num_classes=10)
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

# (builder, its kwargs, a convolution inside a block)
FAMILIES = {
    "dmnn_resnet": (dk.DMNNResNet, {}, "path0_2_conv"),
    "resnet": (dk.ResNet, {}, "path0_2_conv"),
    "dmnn_mobilenet_v2": (dk.DMNNMobileNetV2, dict(CIFAR_MOBILENET, groups=2), "path0_depthwise"),
    "mobilenet_v2": (dk.MobileNetV2, CIFAR_MOBILENET, "path0_depthwise"),
    "aig_resnet": (dk.AIGResNet, {}, "path0_2_conv"),
    "aig_mobilenet_v2": (dk.AIGMobileNetV2, CIFAR_MOBILENET, "path0_depthwise"),
    "channel_gated_resnet": (dk.ChannelGatedResNet, {}, "2_conv"),
    "lcnet_resnet": (dk.LCNetResNet, {}, "2_conv"),
}


def images(n):
    return np.random.default_rng(0).uniform(0, 255, (n, 32, 32, 3)).astype("float32")


def nested_layers(model):
    return [layer for layer in keras_compat.nested_layers(model)
            if not isinstance(layer, keras.layers.InputLayer)]


def block_conv(model, block_name, conv_name):
    block = model.get_layer(block_name)
    return next(layer for layer in keras_compat.nested_layers(block) if layer.name == conv_name)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_builder_dtype_reaches_every_layer_and_one_fit_step_runs(family):
    builder, kwargs, conv_name = FAMILIES[family]
    model = builder(dtype=POLICY, **kwargs)
    assert model.dtype_policy.name == POLICY
    assert {layer.dtype_policy.name for layer in nested_layers(model)} == {POLICY}
    stem, first_block = ("stem_conv", "block_1") if "mobilenet" in family else (
        "conv1_conv", "conv2_block1")
    for conv in (model.get_layer(stem), block_conv(model, first_block, conv_name)):
        assert isinstance(conv, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
        assert (conv.compute_dtype, conv.variable_dtype) == ("bfloat16", "float32")
    # Eager, to keep the test short; test_compiled_fit_... runs a compiled step.
    model.compile(optimizer="sgd", loss=LOSS, run_eagerly=True)
    history = model.fit(images(4), np.arange(4), batch_size=4, verbose=0).history
    assert np.isfinite(history["loss"][0])
    if model.gated_blocks:
        assert 0 < history["flops_ratio"][0] <= 1
        assert [loss.dtype for loss in model.losses] == ["float32"]
        assert {m.dtype for m in model.resource_loss.metrics} == {"float32"}
    assert all(w.dtype == "float32" for w in model.weights)


def test_compiled_fit_and_keras_round_trip_keep_the_policy(tmp_path):
    model = dk.DMNNResNet(groups=2, dtype=keras.DTypePolicy(POLICY), seed=0)
    model.compile(optimizer="sgd", loss=LOSS, jit_compile=False)
    model.fit(images(4), np.arange(4), batch_size=4, verbose=0)
    x = images(2)
    assert keras.backend.standardize_dtype(model(x).dtype) == "bfloat16"
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is dk.DynamicResNet
    assert loaded.get_config() == model.get_config()
    assert loaded.get_layer("conv2_block1").paths[0][0].compute_dtype == "bfloat16"
    np.testing.assert_array_equal(loaded(x), model(x))
    # The README's float32 copy (what TFLite export is tested on).
    copy = dk.DynamicResNet.from_config({**loaded.get_config(), "dtype": "float32"})
    copy.set_weights(loaded.get_weights())
    assert copy.get_layer("conv2_block1").paths[0][0].compute_dtype == "float32"
    assert keras.backend.standardize_dtype(copy(x).dtype) == "float32"


def test_mixed_float16_compile_scales_the_loss():
    model = dk.ResNet(dtype="mixed_float16")
    model.compile(optimizer="sgd", loss=LOSS)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_default_is_the_global_policy():
    model = dk.ResNet()
    assert model.get_config()["dtype"] is None
    assert model.get_layer("conv1_conv").compute_dtype == "float32"
    try:
        keras.mixed_precision.set_global_policy(POLICY)
        assert dk.ResNet().get_layer("conv1_conv").compute_dtype == "bfloat16"
        assert dk.ResNet(dtype="float32").get_layer("conv1_conv").compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
