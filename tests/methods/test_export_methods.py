"""Export parity of AIG, channel gating and LC-Net (dynamic TFLite graph vs Keras)."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk
import dmnn_keras.export.method_converters  # noqa: F401  (registers the converters)
from dmnn_keras.export import inference_module, tflite_runner, to_tflite
from dmnn_keras.models.aig import AIGResNet
from dmnn_keras.models.channel_gated import ChannelGatedResNet
from dmnn_keras.models.lcnet import LCNetResNet

pytestmark = pytest.mark.slow  # 40 s or more per file: run first (tests/conftest.py)


def _spread_gates(model, seed):
    """Random gate-network biases so that some gates are off and some on."""
    rng = np.random.default_rng(seed)
    for controller in model.controllers:
        nets = [controller] if not hasattr(controller, "c_net") else [controller.l_net, controller.c_net]
        for net in nets:
            if net.dependent:
                bias = net.logits_dense.bias.numpy()
                bias[1::2] = rng.normal(0.5, 0.5, len(bias) // 2)  # input-dependent gates
                net.logits_dense.bias.assign(bias)
                kernel = rng.normal(0, 0.5, net.logits_dense.kernel.shape).astype("float32")
                net.logits_dense.kernel.assign(kernel)
            else:
                logits = net.gate_logits.numpy()
                logits[:, 1] = rng.choice([-1.0, 1.0], len(logits), p=[0.3, 0.7])
                net.gate_logits.assign(logits)
    return model


@pytest.mark.parametrize("builder", [
    lambda: AIGResNet(stack_sizes=(2, 1, 1, 1), seed=0),
    lambda: ChannelGatedResNet(stack_sizes=(2, 1, 1, 1), seed=0),
    lambda: ChannelGatedResNet(dependent=False, seed=0),
    lambda: LCNetResNet(stack_sizes=(2, 1, 1, 1), seed=0),
], ids=["aig", "channel", "channel_pruning", "lcnet"])
def test_dynamic_graph_matches_keras(builder, make_images):
    keras.utils.set_random_seed(0)  # builders' `seed` is the gate noise's: weights need this
    model = _spread_gates(builder(), seed=1)
    serve = inference_module(model, "dynamic").serve
    images = make_images(3, seed=2)
    gates = dk.predict_gates(model, images)
    expected_gates = np.concatenate(list(gates.values()), axis=1)
    assert 0 < expected_gates.mean() < 1
    logits = model.predict(images, verbose=0)
    executed = dk.profile(model, images)["executed_flops"]
    for i in range(len(images)):
        out = serve(images[i:i + 1])
        np.testing.assert_allclose(out["logits"].numpy()[0], logits[i], atol=1e-4, rtol=1e-4)
        np.testing.assert_array_equal(out["gates"].numpy()[0], expected_gates[i])
        # Bilinear (channel-pair) FLOPs terms included, as in profile.
        assert out["executed_flops"].numpy()[0] == pytest.approx(executed[i], rel=1e-6)


def test_static_graph_runs_every_gate(make_images):
    model = _spread_gates(ChannelGatedResNet(seed=0), seed=1)
    out = inference_module(model, "static").serve(make_images(1))
    reference = dk.force_gates(model, 1.0).predict(make_images(1), verbose=0)
    np.testing.assert_allclose(out["logits"].numpy(), reference, atol=1e-4, rtol=1e-4)


def test_channel_gating_tflite_parity(tmp_path, make_images):
    model = _spread_gates(ChannelGatedResNet(seed=0), seed=3)
    path = str(tmp_path / "channel.tflite")
    to_tflite(model, path)
    run = tflite_runner(path)
    images = make_images(2, seed=4)
    logits = model.predict(images, verbose=0)
    gates = np.concatenate(list(dk.predict_gates(model, images).values()), axis=1)
    for i in range(len(images)):
        out = run(images[i])
        np.testing.assert_allclose(out["logits"][0], logits[i], atol=1e-3, rtol=1e-3)
        np.testing.assert_array_equal(out["gates"][0], gates[i])


def test_saved_model_executed_flops_include_channel_pairs(tmp_path, make_images):
    import tensorflow as tf

    from dmnn_keras.export import to_saved_model

    model = _spread_gates(ChannelGatedResNet(seed=0), seed=5)
    images = make_images(3, seed=6)
    to_saved_model(model, str(tmp_path / "saved"))
    serve = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    out = serve(images=tf.constant(images))
    np.testing.assert_allclose(out["executed_flops"].numpy(),
                               dk.profile(model, images)["executed_flops"], rtol=1e-6)
