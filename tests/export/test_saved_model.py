"""to_saved_model: a TF Serving signature that takes a batch and matches Keras."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf

import dmnn_keras as dk
from dmnn_keras.export import to_saved_model


def test_saved_model_round_trip(tmp_path):
    model = dk.DMNNResNet(seed=0)
    for controller in model.controllers:  # gates that vary per image
        controller.logits_dense.bias.assign(np.zeros(controller.groups, "float32"))
        controller.logits_dense.kernel.assign(controller.logits_dense.kernel.numpy() * 30)
    images = np.random.RandomState(0).uniform(0, 255, (5, 32, 32, 3)).astype("float32")
    path = to_saved_model(model, str(tmp_path / "serving"))
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    gates, logits = dk.predict_gates(model, images, return_logits=True)
    np.testing.assert_allclose(out["logits"].numpy(), logits, atol=1e-4)
    np.testing.assert_array_equal(out["gates"].numpy(), np.concatenate(list(gates.values()), -1))
    np.testing.assert_allclose(
        out["executed_flops"].numpy(), dk.profile(model, images)["executed_flops"], rtol=1e-6
    )
    # Any batch size.
    single = loaded.serve(tf.constant(images[:1]))
    np.testing.assert_allclose(single["logits"].numpy(), logits[:1], atol=1e-4)
    # Served from 8 threads at once: the same outputs, bit for bit.
    with ThreadPoolExecutor(8) as pool:
        outputs = list(pool.map(lambda _: loaded.serve(tf.constant(images)), range(8)))
    for concurrent in outputs:
        for key in ("logits", "gates", "executed_flops"):
            np.testing.assert_array_equal(concurrent[key].numpy(), out[key].numpy())


def test_saved_model_static_and_errors(tmp_path):
    model = dk.ResNet()
    images = np.random.RandomState(1).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    loaded = tf.saved_model.load(to_saved_model(model, str(tmp_path / "static")))
    out = loaded.serve(tf.constant(images))
    np.testing.assert_allclose(out["logits"].numpy(), model(images).numpy(), atol=1e-4)
    assert "gates" not in out
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="path"):
        to_saved_model(model, str(tmp_path / "file"))
    with pytest.raises(ValueError, match="path"):
        to_saved_model(model, str(tmp_path / "no" / "such" / "dir"))
