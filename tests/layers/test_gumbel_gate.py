import numpy as np
import pytest
import tensorflow as tf

from dmnn_keras.layers import GumbelGate
from dmnn_keras.layers.gumbel_gate import decision_information


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
                                    {"logit_bound": "4"}, {"information_weight": -0.1},
                                    {"information_weight": True}])
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


def test_decision_information_is_zero_for_constant_or_random_gates_and_log2_for_decisive_ones():
    half = np.array([[20.0], [-20.0]] * 8, "float32")  # surely on for half the images, off for half
    for constant in (20.0, 0.0, -3.0):  # always on, a coin flip for every image, mostly off
        assert float(decision_information(np.full((16, 1), constant, "float32"))) == pytest.approx(
            0.0, abs=1e-5)
    assert float(decision_information(half)) == pytest.approx(np.log(2), abs=1e-5)
    # mean over gates: one decisive gate and one constant one
    both = np.concatenate([half, np.full((16, 1), 20.0, "float32")], axis=1)
    assert float(decision_information(both)) == pytest.approx(np.log(2) / 2, abs=1e-5)


def test_information_weight_adds_minus_weight_times_the_information_in_training_only():
    gate = GumbelGate(information_weight=0.5, seed=0)
    logits = np.array([[20.0, 20.0], [-20.0, 20.0]], "float32")
    gate(logits, training=True)
    (reward,) = gate.losses
    assert float(reward) == pytest.approx(-0.5 * np.log(2) / 2, abs=1e-5)
    gate(logits, training=False)
    assert not gate.losses
    assert GumbelGate.from_config(gate.get_config()).information_weight == 0.5
    GumbelGate(information_weight=0.0)(logits, training=True)  # no loss at 0
    assert not GumbelGate(information_weight=0.0).losses


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_information_reward_makes_a_constant_gate_depend_on_the_image(weight):
    # A gate logit `a * feature + b` over images whose feature is -1 or +1, starting on for
    # every image (b = 3, a = 0.1). Its decisions can only come to differ between the two
    # kinds of images through the reward; without it nothing moves the logit.
    feature = tf.constant([[-1.0], [1.0]] * 32)
    a, b = tf.Variable(0.1), tf.Variable(3.0)
    gate = GumbelGate(information_weight=weight, seed=0)
    for _ in range(200):
        with tf.GradientTape() as tape:
            gate(a * feature + b, training=True)
            loss = sum(gate.losses) if gate.losses else tf.constant(0.0)
        grads = tape.gradient(loss, [a, b])
        if weight:
            for variable, grad in zip((a, b), grads):
                variable.assign_sub(2.0 * grad)
    decisions = gate(a * feature + b, training=False).numpy()[:2, 0]
    if weight:
        assert decisions.tolist() in ([0.0, 1.0], [1.0, 0.0])
    else:
        assert decisions.tolist() == [1.0, 1.0]
