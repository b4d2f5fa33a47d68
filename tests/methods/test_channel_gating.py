"""Channel gating: the gated bottleneck's exact FLOPs, the batch activation loss,
conditional and pruning modes, and `dmnn_keras.prune`."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.layers import channel_gated_block
from dmnn_keras.layers.batch_activation_loss import BatchActivationLoss
from dmnn_keras.layers.channel_gate import ChannelGate
from dmnn_keras.layers.channel_gated_block import ChannelGatedBlock, channel_gate_groups
from dmnn_keras.layers.multi_path_block import MultiPathBlock
from dmnn_keras.models.channel_gated import ChannelGatedResNet
from dmnn_keras.pruning import prune


def test_gate_groups_follow_the_paper_and_scale_down():
    # ResNet-50 widths 64..512: 8 gates on the contracting 1x1 (8..64 filters each),
    # 4 on the 3x3 (16..128 filters each).
    assert [channel_gate_groups(w) for w in (64, 128, 256, 512)] == [(8, 4)] * 4
    assert channel_gate_groups(6) == (6, 3) and channel_gate_groups(16) == (8, 4)


def test_block_flops_are_exact_and_match_the_static_bottleneck():
    x = np.random.default_rng(0).random((3, 8, 8, 32)).astype("float32")
    block = ChannelGatedBlock(64, 16, strides=2, gate_groups=(8, 4))
    static = MultiPathBlock("bottleneck", 64, 1, 16, strides=2, gated=False)
    block([x, np.ones((3, 12), "float32")])
    static(x)
    flops = block.compute_flops()
    full = flops["always_on"] + sum(flops["paths"]) + sum(f for _, _, f in flops["pairs"])
    reference = static.compute_flops()
    assert full == reference["always_on"] + sum(reference["paths"])
    # Same weights, all gates on -> the plain bottleneck.
    static.set_weights([w for w in block.get_weights()])
    np.testing.assert_allclose(block([x, np.ones((3, 12), "float32")]), static(x), atol=1e-5)
    # Executed MACs by hand for one gate pattern: conv1 4x8x8x32x2 per group (8 groups
    # of 2 filters), conv2 4x4x9x2x4 per (i, j) pair, conv3 4x4x4x64 per conv-2 group.
    gates = np.array([[1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0]], "float32")
    table = {"paths": flops["paths"], "pairs": flops["pairs"]}
    from dmnn_keras.models.dynamic_model import executed_block_flops
    expected = 3 * 8 * 8 * 32 * 2 + 3 * 2 * 4 * 4 * 9 * 2 * 4 + 2 * 4 * 4 * 4 * 64
    assert executed_block_flops(table, gates)[0] == expected


def test_off_groups_are_zero():
    x = np.random.default_rng(0).random((2, 8, 8, 64)).astype("float32")
    block = ChannelGatedBlock(64, 16, gate_groups=(8, 4))
    gates = np.ones((2, 12), "float32")
    gates[:, 8:] = 0.0  # every conv-2 group off: the branch is the constant BN3(0)
    out = keras.ops.convert_to_numpy(block([x, gates]))
    bn3 = block.bn3
    constant = keras.ops.convert_to_numpy(bn3(np.zeros((1, 1, 1, 64), "float32")))
    np.testing.assert_allclose(out, np.maximum(x + constant, 0), atol=1e-5)


def test_batch_activation_loss_and_one_sided_option():
    kwargs = dict(path_flops=[[10.0, 10.0]], always_on_flops=100.0, loss_weight=3.0,
                  pair_flops=[[[0, 1, 20.0]]])
    outputs = np.zeros((2, 3), "float32")
    gates = np.array([[1, 1], [1, 0]], "float32")  # executed 140 and 110 -> B = 25/40
    two_sided = BatchActivationLoss(0.25, **kwargs)
    one_sided = BatchActivationLoss(0.25, one_sided=True, **kwargs)
    assert two_sided.gateable_flops == 40.0
    for layer in (two_sided, one_sided):
        layer([outputs, gates])
        np.testing.assert_allclose(float(layer.losses[0]), 3.0 * (0.625 - 0.25) ** 2, rtol=1e-6)
    low = BatchActivationLoss(0.9, one_sided=True, **kwargs)
    low([outputs, gates])
    assert float(low.losses[0]) == 0.0
    high = BatchActivationLoss(0.9, **kwargs)
    high([outputs, gates])
    np.testing.assert_allclose(float(high.losses[0]), 3.0 * (0.625 - 0.9) ** 2, rtol=1e-6)


@pytest.mark.parametrize("dependent", [True, False])
def test_flops_ratio_moves_toward_the_target(dependent, make_images, toy_fit):
    keras.utils.set_random_seed(3)
    model = ChannelGatedResNet(dependent=dependent, flops_target=0.2,
                               resource_loss_weight=8.0, seed=3)
    assert isinstance(model.resource_loss, BatchActivationLoss)
    assert isinstance(model.get_layer("conv2_block1_gate"), ChannelGate)
    # Pruning-mode logits are plain weights with small gradients: Adam moves them in a
    # few dozen steps (SGD at this learning rate would need hundreds).
    optimizer = None if dependent else keras.optimizers.Adam(0.05)
    history, profiled = toy_fit(model, epochs=8, optimizer=optimizer)
    ratios = history["flops_ratio"]
    assert ratios[0] > 0.75 and ratios[-1] < ratios[0] - 0.15, ratios
    assert profiled["flops_ratio"] < 0.8
    gates = dk.predict_gates(model, make_images(16))
    values = np.concatenate(list(gates.values()), axis=1)
    assert set(np.unique(values)) <= {0.0, 1.0}
    if not dependent:  # pruning mode: the same gates for every input
        assert (values == values[:1]).all()


def _random_pruning_model(stack_sizes, seed):
    rng = np.random.default_rng(seed)
    model = ChannelGatedResNet(stack_sizes=stack_sizes, dependent=False, seed=seed)
    for weight in model.weights:  # non-trivial BatchNorm statistics
        if weight.path.endswith(("moving_mean", "beta")):
            weight.assign(rng.normal(0, 0.3, weight.shape))
        elif weight.path.endswith(("moving_variance", "gamma")):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
    for controller in model.controllers:
        logits = keras.ops.convert_to_numpy(controller.gate_logits)
        logits[:, 1] = rng.choice([-1.0, 1.0], len(logits), p=[0.4, 0.6])
        controller.gate_logits.assign(logits)
    return model


def _set_on(model, name, conv1_on, conv2_on):
    controller = model.get_layer(name + "_gate")
    logits = keras.ops.convert_to_numpy(controller.gate_logits)
    logits[:8, 1], logits[8:, 1] = (1.0 if conv1_on else -1.0), (1.0 if conv2_on else -1.0)
    controller.gate_logits.assign(logits)


def test_prune_gives_the_same_outputs_with_fewer_params_and_flops(make_images):
    model = _random_pruning_model((2, 2, 1, 1), seed=4)
    _set_on(model, "conv2_block2", True, False)  # identity block, conv 2 all off
    _set_on(model, "conv3_block2", False, True)  # identity block, conv 1 all off
    _set_on(model, "conv4_block1", False, False)  # projection block, everything off
    pruned = prune(model)
    assert isinstance(pruned, keras.Model) and not isinstance(pruned, dk.DynamicModel)
    assert pruned.name == model.name + "_pruned"
    assert not any(isinstance(l, (ChannelGatedBlock, ChannelGate)) for l in pruned.layers)
    x = make_images(8)
    np.testing.assert_allclose(pruned(x), model(x), atol=1e-4)
    before, after = dk.profile(model, x), dk.profile(pruned)
    assert after["params"] < before["params"]
    assert after["flops"] <= before["executed_flops_mean"] < before["flops"]
    names = {l.name for l in pruned.layers}
    assert {"conv2_block1_1_conv", "conv2_block1_0_conv", "conv2_block2_bias",
            "conv5_block1_out"} <= names
    assert "conv2_block2_1_conv" not in names and "conv4_block1_2_conv" not in names


def test_prune_folds_batch_norms_without_gamma_or_beta(monkeypatch, make_images):
    """The constant branches fold through BatchNorms built with scale=False / center=False."""
    options = {"1_bn": dict(scale=False, center=False), "2_bn": dict(scale=False),
               "3_bn": dict(center=False), "shortcut_bn": dict(center=False)}
    monkeypatch.setattr(channel_gated_block, "batch_norm_layer", lambda name, dtype=None: (
        keras.layers.BatchNormalization(name=name, dtype=dtype, **options[name])))
    model = _random_pruning_model((1, 1, 1, 1), seed=5)
    _set_on(model, "conv2_block1", True, False)  # BN3(0) joins the shortcut BN, which has no beta
    _set_on(model, "conv3_block1", False, True)  # ReLU(BN2(0)) through conv 3
    x = make_images(2)
    np.testing.assert_allclose(prune(model)(x), model(x), atol=1e-4)


def test_prune_rejects_input_dependent_gates():
    with pytest.raises(ValueError, match="input-independent"):
        prune(ChannelGatedResNet(dependent=True))
    with pytest.raises(ValueError, match="gated"):
        prune(dk.ResNet())


def test_force_gates_profile_and_round_trip(tmp_path, make_images):
    model = ChannelGatedResNet(seed=0)
    x = make_images(8)
    half = dk.profile(dk.force_gates(model, 0.5), x)
    # Half of each convolution's groups: conv1, conv3 halve, conv2 quarters.
    assert 0.3 < half["flops_ratio"] < 0.7
    assert half["path_rates"]["conv2_block1"] == [1.0] * 4 + [0.0] * 4 + [1.0] * 2 + [0.0] * 2
    path = str(tmp_path / "channel.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.gating == "channel" and loaded.dependent
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)
    # A forced model has input-independent gates, so it prunes too.
    forced = dk.force_gates(model, 0.5)
    np.testing.assert_allclose(prune(forced).predict(x, verbose=0),
                               forced.predict(x, verbose=0), atol=1e-4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="gate_groups"):
        ChannelGatedBlock(64, 16, gate_groups=(3, 4))
    with pytest.raises(ValueError, match=r"tie_gates=True needs two equal gate_groups.*\(2, 4\)"):
        ChannelGatedBlock(64, 16, gate_groups=(2, 4), tie_gates=True)
    with pytest.raises(ValueError, match="no layer gate.*layer_gate=True"):
        ChannelGatedBlock(64, 16, gate_groups=(2, 2), tie_gates=True, layer_gate=True)
    with pytest.raises(ValueError, match="gating"):
        dk.DynamicMobileNetV2(gating="channel", groups=1, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="groups=1"):
        dk.DynamicResNet(gating="channel", groups=4, stack_sizes=(1, 1, 1, 1),
                         width_multiplier=0.25, input_shape=(32, 32, 3))
