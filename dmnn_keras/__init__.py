"""dmnn_keras: dynamic-inference CNNs for Keras 3.

`dmnn_keras.data`, `.export` and `.training` (and `to_tflite`,
`to_saved_model`) load on first use: they bring TensorFlow Datasets, the TFLite
converter and matplotlib, which building and running a model does not need.
"""

from dmnn_keras import layers, presets
from dmnn_keras.batch_norm import recalibrate_batch_norm
from dmnn_keras.flops_calibration import calibrate_flops
from dmnn_keras.gate_statistics import gate_dynamics
from dmnn_keras.gates import (
    all_gates_on, bound_gate_logits, fix_constant_gates, force_gates, predict_gates,
    reward_gate_information,
)
from dmnn_keras.methods import GatingConfig
from dmnn_keras.layers import (
    AIGController,
    BatchActivationLoss,
    ChannelGate,
    ChannelGatedBlock,
    ExitCascade,
    GateController,
    GumbelGate,
    LCController,
    MultiPathBlock,
    ResourceLoss,
    SwitchableBatchNorm,
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
    EarlyExitModel,
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
from dmnn_keras.lazy_imports import lazy_attributes as _lazy_attributes

# Registers WarmupSchedule, so that load_model restores the optimizer of a trained model.
from dmnn_keras.training import schedules as _schedules  # noqa: F401

__getattr__, __dir__ = _lazy_attributes(__name__, {
    "data": "dmnn_keras.data",
    "export": "dmnn_keras.export",
    "training": "dmnn_keras.training",
    "to_saved_model": "dmnn_keras.export",
    "to_tflite": "dmnn_keras.export",
})

__version__ = "0.1.0"
