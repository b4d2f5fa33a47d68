"""Every public layer of `dmnn_keras.layers` passes Keras' own layer test harness.

`run_layer_test` (keras.src.testing) checks the config and serialization round
trips, building, symbolic and eager calls, a `fit` step and, with
`dtype="mixed_float16"`, that every output has the dtype `compute_output_spec`
declares and every weight stays float32. Each gating method's controller,
gate, block and loss is listed; inputs are tiny.
"""

import pytest
from keras.src.testing import TestCase

import dmnn_keras.layers as dk_layers


class Harness(TestCase):
    def runTest(self):  # unittest needs a test method to instantiate the case
        pass


X = (2, 4, 4, 8)  # a block input [batch, H, W, C]
LOSS_ARGS = dict(flops_target=0.5, path_flops=[[10.0, 10.0]], always_on_flops=20.0)

# (layer, init kwargs, input shape, expected output shape); several inputs are a tuple of shapes
CASES = {
    "gumbel_gate": ("GumbelGate", dict(seed=0), (2, 3), (2, 3)),
    "gate_controller": ("GateController", dict(groups=2, hidden_units=4, num_categories=3),
                        (X, (2, 4)), ((2, 2), (2, 4), (2, 3))),
    "gate_controller_difficulty": ("GateController", dict(groups=2, hidden_units=4,
                                                          difficulty_input=True),
                                   (X, (2, 4), (2, 10)), ((2, 2), (2, 4))),
    "multi_path_bottleneck": ("MultiPathBlock", dict(kind="bottleneck", filters=16, groups=2,
                                                     path_width=4, strides=2),
                              (X, (2, 2)), (2, 2, 2, 16)),
    "multi_path_inverted_residual": ("MultiPathBlock", dict(
        kind="inverted_residual", filters=8, groups=2, path_width=4, expand=False,
        gated=False), X, X),
    "resource_loss": ("ResourceLoss", dict(LOSS_ARGS, dual_step=0.01, rate_loss="bounded"),
                      ((2, 5), (2, 2)), (2, 5)),
    "aig_controller": ("AIGController", dict(groups=1, hidden_units=4, seed=0),
                       X, ((2, 1), (2, 1))),
    "aig_controller_pruning": ("AIGController", dict(groups=2, dependent=False),
                               X, ((2, 2), (2, 2))),
    "target_rate_loss": ("TargetRateLoss", dict(LOSS_ARGS, rate_targets=[0.5]),
                         ((2, 5), (2, 2)), (2, 5)),
    "channel_gate": ("ChannelGate", dict(groups=6, segments=(4, 2), hidden_units=4),
                     X, ((2, 6), (2, 6))),
    "channel_gated_block": ("ChannelGatedBlock", dict(filters=16, width=4, strides=2,
                                                      gate_groups=(4, 2)),
                            (X, (2, 6)), (2, 2, 2, 16)),
    "batch_activation_loss": ("BatchActivationLoss", dict(
        LOSS_ARGS, pair_flops=[[[0, 1, 5.0]]], one_sided=True), ((2, 5), (2, 2)), (2, 5)),
    "lc_controller": ("LCController", dict(gate_groups=(4, 2), hidden_units=4),
                      X, ((2, 7), (2, 7))),
    "exit_cascade": ("ExitCascade", dict(confidence_threshold=0.5), ((2, 10), (2, 10), (2, 10)),
                     ((2, 10), (2, 2))),
    "cross_gated_block": ("ChannelGatedBlock", dict(filters=16, width=4, strides=2,
                                                    gate_groups=(2, 2), tie_gates=True),
                          (X, (2, 2)), (2, 2, 2, 16)),
    "cross_switchable_gated_block": ("ChannelGatedBlock", dict(
        filters=16, width=4, strides=2, gate_groups=(2, 2), tie_gates=True,
        switchable_norms=True), (X, (2, 2)), (2, 2, 2, 16)),
    "switchable_batch_norm": ("SwitchableBatchNorm", dict(num_sets=4), (X, (2, 4)), X),
    "lc_gated_block": ("ChannelGatedBlock", dict(filters=8, width=4, gate_groups=(4, 2),
                                                 layer_gate=True),
                       (X, (2, 7)), X),
}


def test_every_public_layer_has_a_case():
    public = {name for name in dir(dk_layers) if isinstance(getattr(dk_layers, name), type)}
    assert public == {case[0] for case in CASES.values()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_layer_test(case):
    name, init_kwargs, input_shape, output_shape = CASES[case]
    Harness().run_layer_test(
        getattr(dk_layers, name),
        init_kwargs=init_kwargs,
        input_shape=input_shape,
        expected_output_shape=output_shape,
        run_training_check=True,
        run_mixed_precision_check=True,
    )
