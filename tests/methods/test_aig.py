"""ConvNet-AIG: the gate network, the target-rate loss, the builders."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.layers.aig_controller import AIGController
from dmnn_keras.layers.target_rate_loss import TargetRateLoss
from dmnn_keras.models.aig import AIGMobileNetV2, AIGResNet


def test_gates_are_binary_and_start_85_percent_open():
    controller = AIGController(1, seed=0)
    x = np.random.default_rng(0).random((4000, 4, 4, 8)).astype("float32")
    gates, values = controller(x, training=True)
    gates = gates.numpy()
    assert set(np.unique(gates)) <= {0.0, 1.0}
    assert abs(gates.mean() - 0.85) < 0.03
    np.testing.assert_array_equal(values.numpy(), gates)
    assert controller(x)[0].numpy().min() == 1.0  # deterministic inference: all open
    # GAP -> Dense(16) -> BN -> ReLU -> Dense(2): 8*16 + 16*2 MACs.
    assert controller.compute_flops() == 8 * 16 + 16 * 2
    assert [w.path.split("/")[-2] for w in controller.trainable_weights][:1] == ["hidden_dense"]


def test_stochastic_inference_and_forced_rate():
    x = np.random.default_rng(0).random((2000, 4, 4, 8)).astype("float32")
    stochastic = AIGController(1, stochastic_inference=True, seed=0)
    assert 0.75 < stochastic(x)[0].numpy().mean() < 0.95
    forced = AIGController(4, segments=(2, 2), forced_rate=0.5)
    np.testing.assert_array_equal(forced(x[:2])[0].numpy(), [[1, 0, 1, 0]] * 2)


def test_pruning_mode_is_input_independent():
    controller = AIGController(3, dependent=False)
    x = np.random.default_rng(0).random((5, 4, 4, 8)).astype("float32")
    controller(x)
    controller.gate_logits.assign([[0.0, 1.0], [0.0, -1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(controller(x)[0].numpy(), [[1, 0, 1]] * 5)
    np.testing.assert_array_equal(controller.static_gates(), [1, 0, 1])
    assert controller.compute_flops() == 0


def test_target_rate_loss_leaves_out_layers_with_target_one():
    loss = TargetRateLoss(0.5, path_flops=[[10.0], [20.0], [30.0]], always_on_flops=40.0,
                          loss_weight=2.0, rate_targets=[0.5, 1.0, 0.25])
    outputs = np.zeros((4, 3), "float32")
    gates = [np.array([[1], [1], [0], [1]], "float32"), np.zeros((4, 1), "float32"),
             np.array([[1], [0], [0], [0]], "float32")]
    loss([outputs] + gates)
    # layers 0 and 2: (0.5 - 0.75)^2 and (0.25 - 0.25)^2; layer 1 (target 1) left out.
    np.testing.assert_allclose(float(loss.losses[0]), 2.0 * (0.0625 + 0.0) / 2, rtol=1e-6)
    with pytest.raises(ValueError, match="rate_targets"):
        TargetRateLoss(0.5, path_flops=[[1.0]], always_on_flops=1.0, rate_targets=[0.5, 0.5])


def test_rate_moves_toward_its_target(make_images, toy_fit):
    keras.utils.set_random_seed(2)
    model = AIGResNet(stack_sizes=(2, 1, 1, 1), flops_target=0.3, resource_loss_weight=8.0,
                      seed=2)
    assert isinstance(model.resource_loss, TargetRateLoss)
    assert [b.name for _, b in model.gated_blocks] == [
        "conv2_block1", "conv2_block2", "conv3_block1", "conv4_block1", "conv5_block1"]
    history, profiled = toy_fit(model, epochs=10)
    rates = history["execution_rate"]
    assert rates[0] > 0.6 and rates[-1] < 0.45, rates
    assert profiled["flops_ratio"] < 0.8
    assert set(np.unique(np.concatenate(
        list(dk.predict_gates(model, make_images(16)).values())))) <= {0.0, 1.0}


def test_profile_force_gates_and_round_trip(tmp_path, make_images):
    model = AIGResNet(seed=0)
    x = make_images(8)
    full = dk.profile(model, x)
    assert full["flops_ratio"] == 1.0 and full["controller_params"] > 0
    off = dk.profile(dk.force_gates(model, 0.0), x)
    assert off["flops_ratio"] == pytest.approx(off["always_on_flops"] / off["flops"])
    half = dk.predict_gates(dk.force_gates(model, 0.5), x)  # one gate per block: alternate
    assert [float(g[0, 0]) for g in half.values()] == [1.0, 0.0, 1.0, 0.0][:len(half)]
    path = str(tmp_path / "aig.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model) and loaded.gating == "aig"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_mobilenet_v2_gates_only_blocks_with_a_shortcut(make_images):
    model = AIGMobileNetV2(alpha=0.35, input_shape=(32, 32, 3), num_classes=10, seed=0)
    names = [b.name for _, b in model.gated_blocks]
    with_identity = [layer.name for layer in model.layers
                     if isinstance(layer, dk.MultiPathBlock) and layer.has_identity]
    assert names == with_identity and "block_0" not in names and "block_2" in names
    assert dk.profile(dk.force_gates(model, 0.0), make_images(2))["flops_ratio"] < 0.7


def test_bad_arguments():
    with pytest.raises(ValueError, match="groups=1"):
        dk.DynamicResNet(gating="aig", groups=4, stack_sizes=(1, 1, 1, 1),
                         width_multiplier=0.25, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="initial_open"):
        AIGController(1, initial_open=1.0)
    with pytest.raises(ValueError, match="segments"):
        AIGController(3, segments=(1, 1))
    with pytest.raises(ValueError, match="forced_rate"):
        AIGController(1, forced_rate=2.0)
