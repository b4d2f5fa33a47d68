"""LC-Net: L-Net (layer skip + scale) and C-Net (channel-group skip + scale)."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.layers.channel_gated_block import ChannelGatedBlock
from dmnn_keras.layers.lcnet import LCController
from dmnn_keras.models.lcnet import LCNetResNet
from dmnn_keras.pruning import prune


def test_controller_outputs_effective_gates_and_scaled_values():
    keras.utils.set_random_seed(0)
    controller = LCController((8, 4), seed=0)
    x = np.random.default_rng(0).random((512, 4, 4, 16)).astype("float32")
    gates, values = [keras.ops.convert_to_numpy(t) for t in controller(x, training=True)]
    assert gates.shape == values.shape == (512, 13)
    assert set(np.unique(gates)) <= {0.0, 1.0}
    layer_off = gates[:, 0] == 0
    assert layer_off.any() and not gates[layer_off, 1:].any()  # skipping a layer skips its channels
    np.testing.assert_array_equal(values[:, 0] != 0, gates[:, 0] == 1)
    assert (values[:, 1:][gates[:, 1:] == 1] > 0).all()
    # Scales are 1 + tanh(.), in (0, 2), and start near 1.
    on = values[gates[:, 0] == 1, 0]
    assert ((on > 0) & (on < 2)).all() and abs(on.mean() - 1.0) < 0.05
    # L-Net and C-Net: GAP -> Dense(16) -> BN -> ReLU -> Dense(2 per gate), + scale heads.
    assert controller.compute_flops() == (16 * 16 + 16 * 2) + (16 * 16 + 16 * 24) + 16 * 13
    np.testing.assert_array_equal(
        LCController((2, 2), forced_rate=0.5)(x[:1])[0], [[1, 1, 0, 1, 0]])


def test_layer_gate_skips_the_whole_branch():
    x = np.random.default_rng(0).random((2, 8, 8, 64)).astype("float32")
    block = ChannelGatedBlock(64, 16, gate_groups=(8, 4), layer_gate=True)
    values = np.ones((2, 13), "float32")
    values[:, 0] = 0.0
    np.testing.assert_allclose(block([x, values]), x, atol=1e-6)  # ReLU(x + 0), x >= 0
    values[:, 0] = 2.0
    full = np.ones((2, 13), "float32")
    branch = keras.ops.convert_to_numpy(block([x, full])) - x  # valid where the sum > 0
    assert np.abs(keras.ops.convert_to_numpy(block([x, values])) - x).sum() > np.abs(branch).sum()


def test_resource_loss_moves_rates_toward_the_target(make_images, toy_fit):
    keras.utils.set_random_seed(5)
    model = LCNetResNet(flops_target=0.3, resource_loss_weight=8.0, seed=5)
    assert isinstance(model.get_layer("conv3_block1_gate"), LCController)
    assert type(model.resource_loss) is dk.ResourceLoss
    history, profiled = toy_fit(model, epochs=8)
    ratios, rates = history["flops_ratio"], history["execution_rate"]
    assert ratios[0] > 0.6 and ratios[-1] < ratios[0] - 0.15, ratios
    assert rates[-1] < rates[0]
    assert profiled["flops_ratio"] < 0.85


def test_profile_force_gates_and_round_trip(tmp_path, make_images):
    model = LCNetResNet(seed=0)
    x = make_images(2)
    assert dk.profile(model, x)["flops_ratio"] == 1.0
    off = dk.profile(dk.force_gates(model, 0.0), x)
    assert off["flops_ratio"] == pytest.approx(off["always_on_flops"] / off["flops"])
    # Any rate > 0 keeps every layer gate on and forces the channel gates as channel
    # gating does (2 of 8, 1 of 4 at 0.25), so the share of gates on stays ~rate.
    # (Rounding the layer gates per block would turn them all off at 0.25; carrying
    # them from block to block would run [0, 1, 0, 0] of the layers, ~rate^2 in all.)
    quarter = dk.predict_gates(dk.force_gates(model, 0.25), x[:1])
    assert len(quarter) == 4 and {name: g[0].tolist() for name, g in quarter.items()} == {
        name: [1.0] + [1.0] * 2 + [0.0] * 6 + [1.0] + [0.0] * 3 for name in quarter}
    path = str(tmp_path / "lcnet.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.gating == "lcnet"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    with pytest.raises(ValueError, match="input-independent"):
        prune(model)


def test_bad_arguments():
    with pytest.raises(ValueError, match="gate_groups"):
        LCController((8,))
    with pytest.raises(ValueError, match="forced_rate"):
        LCController((2, 2), forced_rate=-0.1)
