"""dmnn_keras: dynamic-inference CNNs for Keras 3."""

from dmnn_keras import data, layers
from dmnn_keras.gates import force_gates, predict_gates
from dmnn_keras.layers import GateController, GumbelGate, MultiPathBlock, ResourceLoss
from dmnn_keras.models import (
    DMNNMobileNetV2,
    DMNNResNet,
    DMNNResNet50,
    DMNNResNet101,
    DynamicMobileNetV2,
    DynamicModel,
    DynamicResNet,
    MobileNetV2,
    ResNet,
    ResNet50,
    ResNet101,
)
from dmnn_keras.profiling import profile

__version__ = "0.1.0"
