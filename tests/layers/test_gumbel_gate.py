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


@pytest.mark.parametrize("kwargs", [{"temperature": 0.0}, {"min_active": 2}, {"logit_bound": 0.0},
                                    {"logit_bound": "4"}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        GumbelGate(**kwargs)


def test_logit_bound_adds_the_squared_excess_in_training_only():
    gate = GumbelGate(logit_bound=4.0, seed=0)
    logits = tf.Variable([[6.0, -1.0, -7.0, 3.0]])
    with tf.GradientTape() as tape:
        gate(logits, training=True)
        (penalty,) = gate.losses
    # excess over |4|: [2, 0, 3, 0] -> mean of squares 13 / 4
    assert float(penalty) == pytest.approx(3.25)
    np.testing.assert_allclose(tape.gradient(penalty, logits).numpy(), [[1.0, 0.0, -1.5, 0.0]])
    gate(logits, training=False)
    assert not gate.losses  # inference adds nothing
    assert GumbelGate.from_config(gate.get_config()).logit_bound == 4.0


@pytest.mark.parametrize("bound, largest", [(None, 4.0), (1.5, 2.0)])
def test_logit_bound_stops_logits_running_away(bound, largest):
    # A task that always wants the gate on pushes its logit up through the
    # straight-through gradient; bounded, it stays near the bound.
    gate = GumbelGate(logit_bound=bound, seed=0)
    logits = tf.Variable(np.zeros((64, 1), "float32"))
    for _ in range(300):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(gate(logits, training=True)) + sum(gate.losses)
        logits.assign_sub(20.0 * tape.gradient(loss, logits))
    top = float(tf.reduce_max(logits))
    assert (top > largest) if bound is None else (top < largest)
