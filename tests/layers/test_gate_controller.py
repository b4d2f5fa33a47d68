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


def test_difficulty_input_opens_gates_for_uncertain_images():
    controller = GateController(2, hidden_units=4, difficulty_input=True, seed=0)
    x = np.random.rand(2, 4, 4, 8).astype("float32")
    head = np.array([[30.0] + [0.0] * 9, [0.0] * 10], "float32")  # confident, then uniform
    controller([x, head])
    # Gate logits = hidden part (0) + bias + u * w: u = 0 for the confident image, 1 for the other.
    controller.logits_dense.kernel.assign(np.zeros((4, 2), "float32"))
    controller.logits_dense.bias.assign(np.array([-4.0, 4.0], "float32"))
    controller.difficulty_dense.kernel.assign(np.array([[8.0, -8.0]], "float32"))
    gates, hidden = controller([x, head])
    np.testing.assert_array_equal(gates.numpy(), [[0, 1], [1, 0]])
    np.testing.assert_allclose(controller.logits_from_hidden(hidden, head).numpy(),
                               [[-4, 4], [4, -4]], atol=1e-3)
    assert hidden.shape == (2, 4)
    # With a previous state, the difficulty logits come last.
    state = GateController(2, hidden_units=4, difficulty_input=True)
    assert state([x, hidden, head])[0].shape == (2, 2) and state.has_state_input
    # One more multiply-accumulate per gate; the weights of a constant gate are all zero.
    assert controller.compute_flops() == 8 * 4 + 4 * 2 + 2
    kernel, bias = controller.logit_weights()
    assert kernel.shape == (5, 2) and kernel[4].tolist() == [8.0, -8.0]
    controller.set_logit_weights(np.zeros((5, 2), "float32"), np.array([1.0, -1.0], "float32"))
    np.testing.assert_array_equal(controller([x, head])[0].numpy(), [[1, 0], [1, 0]])
    clone = GateController.from_config(controller.get_config())
    assert clone.difficulty_input and clone.get_config() == controller.get_config()


def test_difficulty_input_errors():
    with pytest.raises(ValueError, match="difficulty_input must be True or False"):
        GateController(2, difficulty_input="yes")
    with pytest.raises(ValueError, match=r"difficulty_logits\] or \[x, previous_hidden"):
        GateController(2, difficulty_input=True)(np.zeros((2, 4, 4, 8), "float32"))
    with pytest.raises(ValueError, match=r"difficulty_logits must be \[batch, classes\]"):
        GateController(2, difficulty_input=True)(
            [np.zeros((2, 4, 4, 8), "float32"), np.zeros((2, 4, 4, 8), "float32")])
