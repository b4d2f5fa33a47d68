"""keras.applications arguments of the builders, and a DMNN backbone nested in a user's model."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, 32, 32, 3)).astype("float32")


@pytest.mark.parametrize("pooling, shape, last_layer", [
    (None, (None, 2, 2, 512), "conv5_block1"),
    ("max", (None, 512), "max_pool"),
])
def test_include_top_false_and_pooling(pooling, shape, last_layer):
    model = dk.DMNNResNet(include_top=False, pooling=pooling, seed=0)
    assert model.output_shape == shape
    names = [layer.name for layer in model.layers]
    assert "predictions" not in names and "avg_pool" not in names
    assert names[-2:] == [last_layer, "resource_loss"]  # the loss layer stays on the main path
    # The FLOPs of the default model (8,236,288, pinned in test_param_counts) less the classifier.
    assert dk.profile(model)["flops"] == 8_236_288 - 512 * 10


def test_mobilenet_pooling():
    model = dk.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), include_top=False, pooling="avg")
    assert model.output_shape == (None, 1280)


def test_classifier_activation_softmax():
    keras.utils.set_random_seed(0)  # the builder's seed is the gate noise's: weights need this
    model = dk.DMNNResNet(classifier_activation="softmax", seed=0)
    x = images(4)
    probabilities = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    features = keras.Model(model.input, model.get_layer("avg_pool").output)(x)
    kernel, bias = model.get_layer("predictions").get_weights()
    logits = keras.ops.convert_to_numpy(features) @ kernel + bias
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))  # untrained logits are large
    np.testing.assert_allclose(probabilities, exp / exp.sum(axis=-1, keepdims=True), atol=1e-5)
    assert model.get_config()["classifier_activation"] == "softmax"
    with pytest.raises(ValueError, match="classifier_activation=None. Received: "
                                         "classifier_activation='softmax'"):
        model.distill_from(model)


def test_input_tensor_is_reused():
    inputs = keras.Input((40, 40, 3))
    backbone = dk.ResNet(input_tensor=inputs, include_top=False, pooling="avg")
    assert backbone.input is inputs
    assert backbone.get_config()["input_shape"] == (40, 40, 3)
    model = keras.Model(inputs, keras.layers.Dense(3)(backbone.output))
    out = model(np.zeros((2, 40, 40, 3), "float32"))
    assert tuple(out.shape) == (2, 3)


def test_weights_from_a_file(tmp_path):
    source = dk.DMNNResNet(seed=0)
    path = str(tmp_path / "model.weights.h5")
    source.save_weights(path)
    model = dk.DMNNResNet(weights=path, seed=1)
    x = images(2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)),
                               keras.ops.convert_to_numpy(source(x)), rtol=1e-5, atol=1e-5)
    assert "weights" not in model.get_config()  # a .keras round trip does not read the file again


def test_weights_from_a_preset_without_its_top():
    backbone = dk.DMNNResNet(groups=2, split="partition", difficulty_head="conv3_block1",
                             include_top=False, pooling="avg", weights="dmnn_resnet_cifar10")
    preset = dk.from_preset("dmnn_resnet_cifar10")
    x = images(2)
    features = keras.Model(preset.input, preset.get_layer("avg_pool").output)(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(backbone(x)),
                               keras.ops.convert_to_numpy(features), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": "imagenet"}, "weights must be None .*preset.* Received: weights='imagenet'"),
    ({"pooling": "min", "include_top": False}, r"pooling must be one of .* Received: pooling='min'"),
    ({"pooling": "avg"}, "pooling applies with include_top=False.*Received: pooling='avg' with include_top=True"),
    ({"classifier_activation": "softmax", "include_top": False},
     "classifier_activation applies with include_top=True"),
    ({"classifier_activation": "soft_max"}, "Received: classifier_activation='soft_max'"),
    ({"input_tensor": np.zeros((1, 32, 32, 3))}, "input_tensor must be a Keras tensor.*ndarray"),
    ({"input_tensor": keras.layers.Rescaling(1.0)(keras.Input((32, 32, 3)))},
     "input_tensor must come straight from keras.Input.*'rescaling"),
    ({"input_tensor": keras.Input((32, 32, 3)), "input_shape": (64, 64, 3)},
     r"Received: input_shape=\(64, 64, 3\), input_tensor of shape \(32, 32, 3\)"),
    ({"input_tensor": keras.Input((32, 32, 1))}, r"input_tensor must have .*\(None, 32, 32, 1\)"),
])
def test_bad_applications_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        dk.DMNNResNet(**kwargs)


def test_classes_points_to_num_classes():
    with pytest.raises(TypeError, match="'classes' .*did you mean 'num_classes'"):
        dk.DMNNResNet50(classes=10)


@pytest.mark.parametrize("sequential", [False, True])
def test_nested_backbone_trains_with_its_resource_loss_and_metrics(sequential):
    backbone = dk.DMNNResNet(include_top=False, pooling="avg", seed=0)
    if sequential:
        model = keras.Sequential([keras.Input((32, 32, 3)), backbone, keras.layers.Dense(10)])
    else:
        inputs = keras.Input((32, 32, 3))
        model = keras.Model(inputs, keras.layers.Dense(10)(backbone(inputs)))
    model.compile(optimizer="sgd", loss=LOSS, run_eagerly=True)
    x, y = images(8), np.arange(8) % 10
    before = [keras.ops.convert_to_numpy(w) for w in backbone.controllers[0].trainable_weights]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert {"flops_ratio", "execution_rate"} <= set(history.history)
    assert 0 < history.history["flops_ratio"][0] <= 1
    after = [keras.ops.convert_to_numpy(w) for w in backbone.controllers[0].trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))  # the gates train
    # The outer model's loss is the task loss plus the backbone's resource loss.
    logits = model(x)
    assert len(model.losses) == 1
    resource = float(keras.ops.convert_to_numpy(model.losses[0]))
    task = float(keras.ops.convert_to_numpy(LOSS(y, logits)))
    loss = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)["loss"]
    assert resource != 0
    np.testing.assert_allclose(loss, task + resource, rtol=1e-5)
