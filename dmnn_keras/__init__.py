"""dmnn_keras: dynamic-inference CNNs for Keras 3."""

from dmnn_keras import data, export, layers, presets, training
from dmnn_keras.batch_norm import recalibrate_batch_norm
from dmnn_keras.export import to_saved_model, to_tflite
from dmnn_keras.flops_calibration import calibrate_flops
from dmnn_keras.gate_statistics import gate_dynamics
from dmnn_keras.gates import bound_gate_logits, force_gates, predict_gates
from dmnn_keras.layers import (
    AIGController,
    BatchActivationLoss,
    ChannelGate,
    ChannelGatedBlock,
    GateController,
    GumbelGate,
    LCController,
    MultiPathBlock,
    ResourceLoss,
    TargetRateLoss,
)
from dmnn_keras.models import (
    AIGMobileNetV2,
    AIGResNet,
    AIGResNet50,
    AIGResNet101,
    ChannelGatedResNet,
    ChannelGatedResNet50,
    ChannelGatedResNet101,
    DMNNMobileNetV2,
    DMNNResNet,
    DMNNResNet50,
    DMNNResNet101,
    DynamicMobileNetV2,
    DynamicModel,
    DynamicResNet,
    LCNetResNet,
    LCNetResNet50,
    LCNetResNet101,
    MobileNetV2,
    ResNet,
    ResNet50,
    ResNet101,
)
from dmnn_keras.presets import from_preset, save_to_preset
from dmnn_keras.profiling import profile
from dmnn_keras.pruning import prune
from dmnn_keras.warm_start import copy_static_weights, from_static

__version__ = "0.1.0"
