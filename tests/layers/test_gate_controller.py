import numpy as np
import pytest

from dmnn_keras.layers import GateController


def test_shapes_state_and_category_head():
    first = GateController(4, num_categories=3, seed=1)
    second = GateController(4, seed=2)
    x = np.random.rand(5, 8, 8, 16).astype("float32")
    gates, hidden, categories = first(x)
    assert gates.shape == (5, 4) and hidden.shape == (5, 32) and categories.shape == (5, 3)
    gates2, hidden2 = second([x, hidden])
    assert second.has_state_input and not first.has_state_input
    assert not first.state_dense.built
    # GAP -> 16x32 + logits 32x4 (+ state 32x32 for the second).
    assert first.compute_flops() == 16 * 32 + 32 * 4
    assert second.compute_flops() == 16 * 32 + 32 * 4 + 32 * 32


def test_gates_start_mostly_on():
    controller = GateController(4, seed=0)
    x = np.random.rand(256, 8, 8, 16).astype("float32")
    assert controller(x, training=True)[0].numpy().mean() > 0.75
    assert controller(x)[0].numpy().mean() > 0.9


def test_forced_rate():
    controller = GateController(4, forced_rate=0.5)
    gates = controller(np.random.rand(3, 4, 4, 8).astype("float32"))[0].numpy()
    np.testing.assert_array_equal(gates, [[1, 1, 0, 0]] * 3)


def test_config_round_trip():
    controller = GateController(3, hidden_units=16, num_categories=5, forced_rate=0.25, name="c")
    clone = GateController.from_config(controller.get_config())
    assert clone.get_config() == controller.get_config()


@pytest.mark.parametrize("kwargs, name", [
    ({"groups": 0}, "groups"), ({"groups": 2, "forced_rate": 1.5}, "forced_rate")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GateController(**kwargs)


def test_rejects_non_image_input():
    with pytest.raises(ValueError, match="4D"):
        GateController(2)(np.zeros((2, 8), "float32"))
