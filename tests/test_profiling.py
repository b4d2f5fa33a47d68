import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

import dmnn_keras as dk
from dmnn_keras.flops import model_flops_table


def tensorflow_profiler_flops(model, input_shape):
    """Float ops of convolutions and matmuls from TensorFlow's profiler registry.

    Each node's count comes from the statistics TF registers for its op type
    (the ones `tf.compat.v1.profiler` sums up).
    """
    function = tf.function(lambda x: model(x, training=False))
    graph = convert_variables_to_constants_v2(
        function.get_concrete_function(tf.TensorSpec((1,) + input_shape, tf.float32))).graph
    total = 0
    for op in graph.get_operations():
        if op.type in ("Conv2D", "MatMul", "DepthwiseConv2dNative"):
            total += tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value
    return total


@pytest.mark.parametrize("builder, input_shape", [
    (lambda: dk.ResNet(stack_sizes=(2, 1, 1, 1)), (32, 32, 3)),
    (lambda: dk.MobileNetV2(alpha=0.35, input_shape=(64, 64, 3), num_classes=10), (64, 64, 3)),
])
def test_static_flops_match_tensorflow_profiler(builder, input_shape):
    model = builder()
    # TF counts a multiply-accumulate as two float ops.
    assert tensorflow_profiler_flops(model, input_shape) == 2 * dk.profile(model)["flops"]


def test_profile_with_images():
    model = dk.DMNNResNet(seed=0)
    x = np.random.default_rng(0).uniform(0, 255, (12, 32, 32, 3)).astype("float32")
    report = dk.profile(model, x)
    gates, logits = dk.predict_gates(model, x, return_logits=True)
    table = dk.models.dynamic_model.flops_table(model.input, model.outputs)
    assert model_flops_table(model) == table and model_flops_table(model) is model_flops_table(model)
    # Precomputed gates and logits: the same report, with no inference.
    again = dk.profile(model, predictions=(gates, logits))
    assert again.keys() == report.keys()
    np.testing.assert_array_equal(again["executed_flops"], report["executed_flops"])
    assert again["path_rates"] == report["path_rates"]
    expected = table["always_on"] + sum(
        gates[b["name"]] @ np.asarray(b["paths"], float) for b in table["blocks"])
    np.testing.assert_allclose(report["executed_flops"], expected)
    assert report["flops_ratio"] == pytest.approx(expected.mean() / report["flops"])
    assert report["flops"] == table["always_on"] + sum(sum(b["paths"]) for b in table["blocks"])
    assert set(report["execution_rates"]) == {b.name for _, b in model.gated_blocks}
    forced = dk.profile(dk.force_gates(model, 0.0), x)
    assert forced["flops_ratio"] == pytest.approx(forced["always_on_flops"] / forced["flops"])


def test_profile_of_a_static_model_and_datasets():
    model = dk.ResNet()
    x = np.zeros((5, 32, 32, 3), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(5))).batch(2)
    report = dk.profile(model, dataset)
    assert report["flops_ratio"] == 1.0 and len(report["executed_flops"]) == 5
    assert report["controller_params"] == 0


def test_profile_rejects_bad_images_and_predictions():
    model = dk.DMNNResNet()
    with pytest.raises(ValueError, match="images"):
        dk.profile(model, np.zeros((32, 32, 3)))
    with pytest.raises(ValueError, match="predictions must be"):
        dk.profile(model, predictions=np.zeros((2, 10)))
    with pytest.raises(ValueError, match="gated blocks"):
        dk.profile(model, predictions=({"conv2_block1": np.ones((2, 4))}, np.zeros((2, 10))))
