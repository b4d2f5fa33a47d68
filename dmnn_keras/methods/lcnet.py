"""LC-Net (Xia, Yin, Dai & Jha): an `LCController` (L-Net layer gate + C-Net channel-group
gates, each with a scale) per `ChannelGatedBlock(layer_gate=True)`, library `ResourceLoss`."""

from dmnn_keras.layers.channel_gated_block import ChannelGatedBlock
from dmnn_keras.layers.lcnet import LCController
from dmnn_keras.methods.aig import gate_network_kwargs
from dmnn_keras.methods.base import GatingMethod
from dmnn_keras.methods.channel import ChannelGating


class LCNet(ChannelGating):
    """Channel gating's block with a layer gate; gates depend on the input (no pruning rule).

    Export: `LCController` and `ChannelGatedBlock` converters.
    """

    name = "lcnet"
    layer_gate = True

    def controller(self, wiring, name, gate_groups):
        return LCController(gate_groups,
                            **gate_network_kwargs(wiring, name, wiring.config.forced_gate_rate))

    def loss_layer(self, config, **loss_kwargs):
        return GatingMethod.loss_layer(self, config, **loss_kwargs)  # ResourceLoss

    def export_converters(self):
        from dmnn_keras.export import method_converters

        return {LCController: method_converters.convert_lc_controller,
                ChannelGatedBlock: method_converters.convert_channel_gated_block}

    def input_independent(self, controller):
        return False
