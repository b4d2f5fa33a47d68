"""The gate decisions shared by layers, pruning and export: hard gates and forced patterns."""

import numpy as np
import pytest

from dmnn_keras import AIGController, ChannelGate, GateController, GumbelGate
from dmnn_keras.gate_decisions import carried_active, forced_pattern, hard_gates, set_one_hot


def reference_gates(scores, min_active):
    """`1[s > 0]`; with min_active, an all-off row gets its first largest score on."""
    hard = (scores > 0).astype("float32")
    if min_active:
        for row, s in zip(hard, scores):
            if not row.any():
                row[np.argmax(s)] = 1.0
    return hard


@pytest.mark.parametrize("groups", [1, 2, 5])
@pytest.mark.parametrize("min_active", [0, 1])
def test_hard_gates(groups, min_active):
    rng = np.random.default_rng(groups)
    scores = rng.normal(-1.0, 1.0, (64, groups)).astype("float32")
    scores[0] = -2.0  # a tie: the first gate wins
    expected = reference_gates(scores, min_active)
    assert (scores <= 0).all(axis=1).sum() > 1  # the min_active fallback is exercised
    np.testing.assert_array_equal(hard_gates(scores, min_active), expected)
    np.testing.assert_array_equal(GumbelGate(min_active=min_active)(scores), expected)


def test_forced_pattern_rounds_halves_up():
    # Python's round sent 0.5 and 2.5 to 0 and 2 (half to even); the carried rule rounds up.
    assert forced_pattern(0.5, (1,)) == [1.0]
    assert forced_pattern(0.5, (5,)) == [1.0] * 3 + [0.0] * 2
    assert forced_pattern(0.125, (8, 4)) == [1.0] + [0.0] * 7 + [1.0] + [0.0] * 3
    assert forced_pattern(0.0, (3,), min_active=1) == [1.0, 0.0, 0.0]
    for rate in np.linspace(0.0, 1.0, 17):
        for size in (1, 2, 3, 4, 8):
            assert sum(forced_pattern(rate, (size,))) == carried_active(rate, size, 0, 0.0)[0]
    x = np.zeros((2, 4, 4, 8), "float32")
    np.testing.assert_array_equal(GateController(5, forced_rate=0.5)(x)[0], [[1, 1, 1, 0, 0]] * 2)
    channel = ChannelGate(12, segments=(8, 4), dependent=False, forced_rate=0.125)
    np.testing.assert_array_equal(channel(x)[0][0], forced_pattern(0.125, (8, 4)))
    np.testing.assert_array_equal(channel.static_gates(), forced_pattern(0.125, (8, 4)))


def test_static_gates_of_pruning_mode():
    controller = AIGController(3, dependent=False, min_active=1)
    controller(np.zeros((1, 4, 4, 8), "float32"))
    controller.gate_logits.assign([[0.0, -1.0], [0.0, -0.5], [0.0, -3.0]])  # all off
    np.testing.assert_array_equal(controller.static_gates(), [0, 1, 0])


def test_set_one_hot_reads_the_on_gates_as_bits():
    gates = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], "float32")
    np.testing.assert_array_equal(np.asarray(set_one_hot(gates)), np.eye(4, dtype="float32"))
