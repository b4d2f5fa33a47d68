import numpy as np
import pytest
import tensorflow as tf

from dmnn_keras.layers import GumbelGate


def test_training_gates_are_exactly_binary_with_soft_gradient():
    gate = GumbelGate(temperature=1.0, seed=3)
    logits = tf.Variable(np.linspace(-3, 3, 64, dtype="float32").reshape(16, 4))
    with tf.GradientTape() as tape:
        gates = gate(logits, training=True)
        loss = tf.reduce_sum(gates * tf.range(4, dtype="float32"))
    values = gates.numpy()
    assert set(np.unique(values)) <= {0.0, 1.0}
    assert 0 < values.mean() < 1
    grad = tape.gradient(loss, logits).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_inference_is_deterministic_threshold():
    gate = GumbelGate()
    logits = np.array([[-1.0, 0.5, 2.0, -0.1]], "float32")
    for training in (False, None):
        np.testing.assert_array_equal(gate(logits, training=training).numpy(), [[0, 1, 1, 0]])


def test_training_noise_follows_sigmoid_probability():
    gate = GumbelGate(seed=0)
    logits = np.full((4000, 1), 1.0, "float32")
    rate = gate(logits, training=True).numpy().mean()
    assert abs(rate - 1 / (1 + np.exp(-1.0))) < 0.03


def test_min_active_turns_on_the_best_gate():
    gate = GumbelGate(min_active=1)
    logits = np.array([[-3.0, -1.0, -2.0], [1.0, -1.0, 2.0]], "float32")
    np.testing.assert_array_equal(gate(logits).numpy(), [[0, 1, 0], [1, 0, 1]])


@pytest.mark.parametrize("kwargs", [{"temperature": 0.0}, {"min_active": 2}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        GumbelGate(**kwargs)
