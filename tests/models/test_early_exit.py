"""EarlyExitModel: the cascade's choice, its MACs, its loss, saving, calibration and bad input."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.flops import flops_table
from dmnn_keras.gates import gate_probe
from dmnn_keras.layers.exit_cascade import continuation_gates

EXITS = ("conv3_block1", "conv4_block1")


def backbone(seed=0):
    keras.utils.set_random_seed(seed)
    model = dk.ResNet(width_multiplier=0.125, input_shape=(32, 32, 3), num_classes=10)
    dense = model.get_layer("predictions")  # logits of a trained model's size (~10)
    dense.kernel.assign(dense.kernel.numpy() * 0.1)
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")


@pytest.fixture(scope="module")
def model():
    return dk.EarlyExitModel(backbone(), exits=EXITS)


def exit_logits(model, images):
    heads = keras.Model(model.inputs[0], model.exit_logits_tensors())
    return [np.asarray(t) for t in heads(images, training=False)]


def top(logits):
    return keras.ops.convert_to_numpy(keras.ops.max(keras.ops.softmax(logits), axis=-1))


def test_each_image_is_answered_by_its_first_confident_exit(model, images):
    first, second, final = exit_logits(model, images)
    threshold = float(np.quantile(top(first), 0.3))  # 70% of the images leave at the first exit
    model.confidence_threshold = threshold
    assert model.exit_cascade.confidence_threshold.numpy() == pytest.approx(threshold)
    logits = np.asarray(model(images))
    leaves_first = top(first) >= threshold
    leaves_second = ~leaves_first & (top(second) >= threshold)
    expected = np.where(leaves_first[:, None], first, np.where(leaves_second[:, None], second, final))
    np.testing.assert_array_equal(logits, expected)
    # Every classifier answers for some image.
    assert leaves_first.any() and leaves_second.any() and not (leaves_first | leaves_second).all()
    # Threshold 1: the whole backbone answers for every image; 0: the first exit answers.
    model.exit_cascade.set_threshold(1.0)
    np.testing.assert_allclose(model(images), model_backbone_logits(model, images), rtol=1e-6)
    model.exit_cascade.set_threshold(0.0)
    np.testing.assert_array_equal(model(images), first)


def model_backbone_logits(model, images):
    return keras.Model(model.inputs[0], model.exit_logits_tensors()[-1])(images, training=False)


def test_continuation_gates_stay_off_after_an_exit():
    confident, unsure = np.array([[9.0, 0.0]], "float32"), np.array([[0.0, 0.0]], "float32")
    gates = continuation_gates([np.concatenate([confident, unsure, unsure]),
                                np.concatenate([unsure, confident, unsure])], 0.9)
    # Image 0 leaves at exit 1 (and stays out though exit 2 is unsure), image 1 at exit 2.
    np.testing.assert_array_equal(gates, [[0, 0], [1, 0], [1, 1]])


def test_macs_per_image_are_those_up_to_its_exit(model, images):
    static = backbone()

    def up_to(block):  # the backbone's MACs up to a block's output, counted on its own
        return dk.profile(keras.Model(static.inputs[0], static.get_layer(block).output))["flops"]

    # Heads: 2x2-pooled features to 10 logits after stages 2 and 3 (64 and 128 channels).
    head_1, head_2 = 4 * 64 * 10, 4 * 128 * 10
    full = dk.profile(static)["flops"] + head_1 + head_2
    assert dk.profile(model)["flops"] == full
    first, second, _ = exit_logits(model, images)
    threshold = float(np.quantile(top(first), 0.3))
    model.exit_cascade.set_threshold(threshold)
    leaves_first = top(first) >= threshold
    leaves_second = ~leaves_first & (top(second) >= threshold)
    assert leaves_first.any() and leaves_second.any() and not (leaves_first | leaves_second).all()
    expected = np.where(leaves_first, up_to("conv3_block1") + head_1,
                        np.where(leaves_second, up_to("conv4_block1") + head_1 + head_2, full))
    stats = dk.profile(model, images)
    np.testing.assert_array_equal(stats["executed_flops"], expected)
    assert stats["path_rates"]["conv3_block1_exit"] == [float(np.mean(~leaves_first))]
    probe, names = gate_probe(model)
    assert names == ["conv3_block1_exit", "conv4_block1_exit"]
    assert [tuple(t.shape) for t in probe.outputs] == [(None, 10), (None, 1), (None, 1)]


def test_the_loss_adds_every_exit_and_distils_each_from_the_teacher(images):
    model = dk.EarlyExitModel(backbone(), exits=EXITS, exit_loss_weight=0.5)
    teacher = backbone(seed=1)
    model.distill_from(teacher, weight=2.0, temperature=3.0)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    labels = np.arange(len(images)) % 10
    outputs = model(images, training=True)
    loss = float(model.compute_loss(images, labels, outputs, training=True))

    def cross_entropy(logits):
        return float(np.mean(keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True)))

    t = np.asarray(teacher(images, training=False))

    def distill(logits):
        p = keras.ops.softmax(t / 3.0)
        kl = keras.ops.sum(p * (keras.ops.log_softmax(t / 3.0) - keras.ops.log_softmax(
            logits / 3.0)), axis=-1)
        return 9.0 * float(keras.ops.mean(kl))

    expected = cross_entropy(outputs["logits"]) + 2.0 * distill(outputs["logits"])
    for name in model.exit_names:
        expected += 0.5 * (cross_entropy(outputs[name]) + 2.0 * distill(outputs[name]))
    assert loss == pytest.approx(expected, rel=1e-5)
    # Sample weights weigh every exit as Keras weighs the final loss (sum over the batch size).
    weights = np.where(np.arange(len(images)) < 8, 2.0, 0.0).astype("float32")
    weighted = float(model.compute_loss(images, labels, outputs, sample_weight=weights,
                                        training=True))

    def weighted_cross_entropy(logits):
        return float(np.sum(weights * keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True)) / len(images))

    expected = weighted_cross_entropy(outputs["logits"]) + 2.0 * distill(outputs["logits"])
    for name in model.exit_names:
        expected += 0.5 * (weighted_cross_entropy(outputs[name]) + 2.0 * distill(outputs[name]))
    assert weighted == pytest.approx(expected, rel=1e-5)
    # Training moves the exit heads (their loss reaches them) and not the teacher.
    before = [model.get_layer(n).kernel.numpy().copy() for n in model.exit_names]
    teacher_before = teacher.get_layer("predictions").kernel.numpy().copy()
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(images, labels)
    assert all(not np.allclose(b, model.get_layer(n).kernel.numpy())
               for b, n in zip(before, model.exit_names))
    np.testing.assert_array_equal(teacher_before, teacher.get_layer("predictions").kernel.numpy())


def test_a_saved_model_keeps_its_exits_and_threshold(model, images, tmp_path):
    model.exit_cascade.set_threshold(0.42)
    model.save(tmp_path / "exits.keras")
    loaded = keras.models.load_model(tmp_path / "exits.keras")
    assert isinstance(loaded, dk.EarlyExitModel) and loaded.exit_names == model.exit_names
    assert loaded.confidence_threshold == pytest.approx(0.42)
    assert "compile_config" not in loaded.get_config()["backbone"]
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))


def test_calibration_sets_the_threshold_to_meet_the_target(model, images):
    result = dk.calibrate_flops(model, images, target=0.75, batches=1, batch_size=16,
                                tolerance=0.04)
    assert abs(dk.profile(model, images)["flops_ratio"] - 0.75) <= 0.04
    assert result["flops_ratio"] == pytest.approx(dk.profile(model, images)["flops_ratio"])
    assert float(model.exit_cascade.confidence_threshold.numpy()) == pytest.approx(
        result["confidence_threshold"])
    with pytest.raises(ValueError, match="target is needed"):
        dk.calibrate_flops(model, images)
    with pytest.raises(ValueError, match="bn_images"):
        dk.calibrate_flops(model, images, target=0.7, bn_images=images)
    with pytest.raises(ValueError, match=r"target must be reachable .* in \[0\.509, 1\]"):
        dk.calibrate_flops(model, images, target=0.2, batches=1, batch_size=16)


def test_bad_arguments_are_refused_by_name():
    static = backbone()
    with pytest.raises(ValueError, match=r"exits names layers .* \['conv9_block1'\]"):
        dk.EarlyExitModel(static, exits=("conv9_block1",))
    with pytest.raises(ValueError, match="exits must be a non-empty tuple"):
        dk.EarlyExitModel(static, exits="conv3_block1")
    with pytest.raises(ValueError, match=r"\[batch, H, W, C\] outputs.*avg_pool"):
        dk.EarlyExitModel(static, exits=("avg_pool",))
    with pytest.raises(ValueError, match="grid must divide"):
        dk.EarlyExitModel(static, exits=("conv3_block1",), grid=3)
    with pytest.raises(ValueError, match="exit_loss_weight must be a number >= 0"):
        dk.EarlyExitModel(static, exit_loss_weight=-1.0)
    with pytest.raises(ValueError, match="backbone must be a static network"):
        dk.EarlyExitModel(dk.DMNNResNet(groups=2))
    with pytest.raises(ValueError, match="classifier_activation=None"):
        dk.EarlyExitModel(dk.ResNet(classifier_activation="softmax"))
    with pytest.raises(ValueError, match=r"confidence_threshold must be a number in \[0, 1\]"):
        dk.EarlyExitModel(static, confidence_threshold=1.5)
    softmax = keras.Model(static.inputs[0], keras.layers.Softmax()(static.outputs[0]))
    with pytest.raises(ValueError, match="classifier_activation='softmax'"):
        dk.EarlyExitModel(softmax)
    from dmnn_keras.warm_start import start_exits_from

    with pytest.raises(ValueError, match="init_from must be a static model of this library with "
                                         "its classification head .*, or an early-exit model on "
                                         "one, to put exits on. Received: DynamicResNet"):
        start_exits_from(dk.DMNNResNet(groups=2), ("conv3_block1",), 10, (32, 32, 3))


def test_the_exit_heads_compute_in_the_backbone_dtype_policy():
    static = dk.ResNet(width_multiplier=0.125, input_shape=(32, 32, 3), num_classes=10,
                       dtype="mixed_bfloat16")
    model = dk.EarlyExitModel(static)
    assert model.get_layer("conv3_block1_exit").compute_dtype == "bfloat16"
    assert model.get_layer("conv3_block1_exit").variable_dtype == "float32"


def test_the_model_has_one_image_input_like_every_builder(model):
    assert tuple(model.input.shape) == (None, 32, 32, 3)
