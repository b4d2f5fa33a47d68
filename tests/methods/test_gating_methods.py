"""The gating-method registry: a method defined here plugs in with one `register_method` line."""

import keras
import numpy as np
import pytest

import dmnn_keras as dk
from dmnn_keras.layers.aig_controller import AIGController
from dmnn_keras.layers.multi_path_block import MultiPathBlock
from dmnn_keras.methods import METHODS, GatingMethod, get_method, register_method
from dmnn_keras.pruning import prune_multi_path_block


class LearnedBlockDrop(GatingMethod):
    """Toy method: one input-independent learned on/off gate per block, the DMNN resource loss."""

    name = "toy_block_drop"

    def block(self, wiring, x, stage, name, kind, filters, groups, path_width, strides=1,
              expand=True):
        controller = AIGController(1, dependent=False, hidden_units=4,
                                   seed=wiring.controller_seed(), name=name + "_gate",
                                   dtype=wiring.dtype)
        gates, values = controller(x)
        wiring.gates.append(gates)
        return MultiPathBlock(kind=kind, filters=filters, groups=1, path_width=path_width,
                              strides=strides, expand=expand, gated=True, name=name,
                              dtype=wiring.dtype)([x, values])

    def input_independent(self, controller):
        return True

    def prune_block(self, block, gates, x):
        return prune_multi_path_block(block, gates, x)


@pytest.fixture(name="toy_method")
def toy_method_fixture():
    with pytest.raises(ValueError, match="gating must be one of"):
        get_method(LearnedBlockDrop.name)
    yield register_method(LearnedBlockDrop())
    del METHODS[LearnedBlockDrop.name]


def test_a_method_defined_outside_the_library_builds_runs_and_prunes(toy_method, make_images):
    keras.utils.set_random_seed(0)
    model = dk.DynamicResNet(gating=toy_method.name, groups=1, stack_sizes=(1, 1, 1, 1),
                             width_multiplier=0.25, input_shape=(32, 32, 3), num_classes=10,
                             flops_target=0.6)
    assert [c.name for c in model.controllers][0] == "conv2_block1_gate"
    assert len(model.gated_blocks) == 4 and type(model.resource_loss) is dk.ResourceLoss
    x = make_images(2)
    model(x, training=True)
    assert len(model.losses) == 1 and np.isfinite(float(model.losses[0]))
    np.testing.assert_allclose(dk.prune(model)(x), model(x), atol=1e-4)
    with pytest.raises(ValueError, match="groups=1"):
        dk.DynamicResNet(gating=toy_method.name, groups=2)


def test_register_method_rejects_non_methods():
    with pytest.raises(ValueError, match="GatingMethod"):
        register_method("aig")
    assert list(METHODS) == ["dmnn", "aig", "channel", "lcnet"]
