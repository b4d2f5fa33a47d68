"""ConvNet-AIG (Veit & Belongie): an `AIGController` on/off gate per one-path block."""

from dmnn_keras.layers.aig_controller import AIGController
from dmnn_keras.layers.multi_path_block import MultiPathBlock, shortcut_kind
from dmnn_keras.layers.target_rate_loss import TargetRateLoss
from dmnn_keras.methods.base import GatingMethod


def gate_network_kwargs(wiring, name, forced_rate):
    """Arguments shared by the gate networks of AIG, channel gating and LC-Net for block `name`.

    `forced_rate`: the block's forced rate (AIG carries the rounding from block
    to block, `GateWiring.forced_rate`; channel gates round per convolution).
    """
    return dict(wiring.controller_kwargs(name, forced_rate),
                stochastic_inference=wiring.config.stochastic_inference)


def aig_input_independent(controller):
    """An `AIGController` (or `ChannelGate`) in pruning mode or with forced gates."""
    return isinstance(controller, AIGController) and (
        not controller.dependent or controller.forced_rate is not None
    )


class AIG(GatingMethod):
    """Whole-block gates; `TargetRateLoss` pulls each block's rate to the target.

    Blocks without a shortcut always run. Export: `AIGController` converter;
    pruning: a skipped block becomes its shortcut.
    """

    name = "aig"

    def block(self, wiring, x, stage, name, kind, filters, groups, path_width, strides=1,
              expand=True):
        has_shortcut = shortcut_kind(kind, x.shape[-1], filters, strides) is not None
        block_kwargs = dict(kind=kind, filters=filters, groups=1, path_width=path_width,
                            strides=strides, expand=expand, name=name, dtype=wiring.dtype)
        if not has_shortcut:
            # Skipping a block without a shortcut would output nothing: it always runs.
            return MultiPathBlock(gated=False, **block_kwargs)(x)
        kwargs = gate_network_kwargs(wiring, name, forced_rate=wiring.forced_rate(1, 0))
        controller = AIGController(1, dependent=wiring.config.dependent, **kwargs)
        gates, values = controller(x)
        wiring.gates.append(gates)
        return MultiPathBlock(gated=True, **block_kwargs)([x, values])

    def loss_layer(self, config, **loss_kwargs):
        return TargetRateLoss(config.flops_target, **loss_kwargs)

    def export_converters(self):
        from dmnn_keras.export import method_converters

        return {AIGController: method_converters.convert_aig_controller}

    def input_independent(self, controller):
        return aig_input_independent(controller)

    def prune_block(self, block, gates, x):
        from dmnn_keras.pruning import prune_multi_path_block

        return prune_multi_path_block(block, gates, x)
