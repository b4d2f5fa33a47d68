"""Model builders of dmnn_keras."""

from dmnn_keras.models.dynamic_model import DynamicModel
from dmnn_keras.models.resnet import (
    DMNNResNet, DMNNResNet50, DMNNResNet101, DynamicResNet, ResNet, ResNet50, ResNet101,
)
from dmnn_keras.models.mobilenet_v2 import DMNNMobileNetV2, DynamicMobileNetV2, MobileNetV2
