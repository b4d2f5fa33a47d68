"""Layers of dmnn_keras."""

from dmnn_keras.layers.aig_controller import AIGController
from dmnn_keras.layers.batch_activation_loss import BatchActivationLoss
from dmnn_keras.layers.channel_gate import ChannelGate
from dmnn_keras.layers.channel_gated_block import ChannelGatedBlock
from dmnn_keras.layers.exit_cascade import ExitCascade
from dmnn_keras.layers.gate_controller import GateController
from dmnn_keras.layers.gumbel_gate import GumbelGate
from dmnn_keras.layers.lcnet import LCController
from dmnn_keras.layers.multi_path_block import MultiPathBlock, bottleneck_path_width
from dmnn_keras.layers.resource_loss import ResourceLoss
from dmnn_keras.layers.switchable_batch_norm import SwitchableBatchNorm
from dmnn_keras.layers.target_rate_loss import TargetRateLoss
