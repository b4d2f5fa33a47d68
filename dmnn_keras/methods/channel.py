"""Channel gating (Herrmann, Bowen & Zabih): a `ChannelGate` per `ChannelGatedBlock`,
batch activation loss; conditional (dependent=True) or pruning (dependent=False)."""

from dmnn_keras.layers.aig_controller import AIGController
from dmnn_keras.layers.batch_activation_loss import BatchActivationLoss
from dmnn_keras.layers.channel_gate import ChannelGate
from dmnn_keras.layers.channel_gated_block import ChannelGatedBlock, channel_gate_groups
from dmnn_keras.methods.aig import aig_input_independent, gate_network_kwargs
from dmnn_keras.methods.base import GatingMethod


class ChannelGating(GatingMethod):
    """Gated filter groups of a bottleneck's two inner convolutions (ResNet only).

    Export: `ChannelGate` (as `AIGController`) and `ChannelGatedBlock`
    converters; pruning: off filter groups removed.
    """

    name = "channel"
    block_kinds = ("bottleneck",)
    layer_gate = False

    def block(self, wiring, x, stage, name, kind, filters, groups, path_width, strides=1,
              expand=True):
        gate_groups = channel_gate_groups(path_width)
        block = ChannelGatedBlock(filters, path_width, strides=strides, gate_groups=gate_groups,
                                  layer_gate=self.layer_gate, name=name, dtype=wiring.dtype)
        gates, values = self.controller(wiring, name, gate_groups)(x)
        wiring.gates.append(gates)
        return block([x, values])

    def controller(self, wiring, name, gate_groups):
        """The gate network of block `name` whose convolutions have `gate_groups` gates."""
        return ChannelGate(sum(gate_groups), dependent=wiring.config.dependent,
                           segments=gate_groups,
                           **gate_network_kwargs(wiring, name, wiring.config.forced_gate_rate))

    def loss_layer(self, config, **loss_kwargs):
        return BatchActivationLoss(config.flops_target, one_sided=config.one_sided,
                                   **loss_kwargs)

    def export_converters(self):
        from dmnn_keras.export import method_converters

        return {AIGController: method_converters.convert_aig_controller,
                ChannelGatedBlock: method_converters.convert_channel_gated_block}

    def input_independent(self, controller):
        return aig_input_independent(controller)

    def prune_block(self, block, gates, x):
        from dmnn_keras.pruning import prune_channel_block

        return prune_channel_block(block, gates, x)
