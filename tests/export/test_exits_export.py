"""to_tflite of an EarlyExitModel: nested IFs, parity with Keras per image, the static graph."""

import os
import sys

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.export import to_tflite

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tflite_helpers import analyze, run_tflite  # noqa: E402


@pytest.fixture(scope="module")
def images():
    dataset = dk.data.load_dataset("cifar10", "test", batch_size=40, training=False,
                                   max_examples=40)
    return next(iter(dataset))[0].numpy()


@pytest.fixture(scope="module")
def model(images):
    keras.utils.set_random_seed(0)
    backbone = dk.ResNet(width_multiplier=0.125, input_shape=(32, 32, 3), num_classes=10)
    dense = backbone.get_layer("predictions")
    dense.kernel.assign(dense.kernel.numpy() * 0.1)  # logits of a trained model's size
    model = dk.EarlyExitModel(backbone, exits=("conv3_block1", "conv4_block1"))
    # A threshold that sends images out at each exit and through the whole network.
    for threshold in np.linspace(0.05, 0.95, 91):
        model.exit_cascade.set_threshold(float(threshold))
        rates = dk.profile(model, images)["path_rates"]
        past_first, past_second = rates["conv3_block1_exit"][0], rates["conv4_block1_exit"][0]
        if 0 < past_second < past_first < 1:
            return model
    raise AssertionError("no threshold splits the images over the three classifiers")


def test_each_image_runs_up_to_its_exit_as_in_keras(model, images, tmp_path):
    info = to_tflite(model, tmp_path / "exits.tflite")
    assert info["mode"] == "dynamic"
    assert info["gate_layout"] == [("conv3_block1_exit", 1), ("conv4_block1_exit", 1)]
    out = run_tflite(info["path"], images)
    gates, logits = dk.predict_gates(model, images, return_logits=True)
    np.testing.assert_array_equal(out["gates"], np.concatenate(list(gates.values()), axis=-1))
    scale = np.abs(logits).max()
    assert scale > 0.1 and np.abs(out["logits"] - logits).max() <= 1e-5 * scale
    np.testing.assert_allclose(out["executed_flops"], dk.profile(model, images)["executed_flops"],
                               rtol=1e-6)
    # One IF after each exit, the second inside the first's else branch: the layers after an
    # exit are in a branch subgraph with their own weights.
    report = analyze(info["path"])
    assert report.count(" IF(") == 2
    main_graph = report.split("Subgraph#1")[0]
    assert "CONV_2D" in main_graph  # the layers before the first exit
    assert main_graph.count("CONV_2D") < report.count("CONV_2D")


def test_the_static_graph_is_the_whole_backbone(model, images, tmp_path):
    static = to_tflite(model, tmp_path / "static.tflite", mode="static")
    dynamic = to_tflite(model, tmp_path / "dynamic.tflite")
    assert " IF(" not in analyze(static["path"])
    # The dynamic file adds the exit heads' weights and little else (no weight stored twice).
    heads = sum(int(np.prod(w.shape)) for name in model.exit_names
                for w in model.get_layer(name).weights)
    assert static["size_bytes"] < dynamic["size_bytes"] <= static["size_bytes"] + 4 * heads + 8192
    out = run_tflite(static["path"], images[:8])
    final = keras.Model(model.inputs[0], model.exit_logits_tensors()[-1])(images[:8]).numpy()
    assert np.abs(out["logits"] - final).max() <= 1e-5 * np.abs(final).max()
    np.testing.assert_array_equal(out["gates"], np.ones((8, 2)))
    heads = 4 * 64 * 10 + 4 * 128 * 10  # not computed: the backbone answers alone
    assert (out["executed_flops"] == dk.profile(model)["flops"] - heads).all()


def test_the_dynamic_graph_refuses_a_batch(model, images):
    import tensorflow as tf

    from dmnn_keras.export.graph import trace_model

    with pytest.raises(ValueError, match="needs a batch-1 graph"):
        tf.function(lambda x: trace_model(model, x, "dynamic"))(tf.constant(images[:2]))
