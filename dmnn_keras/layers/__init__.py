"""Layers of dmnn_keras."""

from dmnn_keras.layers.gate_controller import GateController
from dmnn_keras.layers.gumbel_gate import GumbelGate
from dmnn_keras.layers.multi_path_block import MultiPathBlock, bottleneck_path_width
from dmnn_keras.layers.resource_loss import ResourceLoss
