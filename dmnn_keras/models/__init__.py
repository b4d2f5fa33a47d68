"""Model builders of dmnn_keras."""

from dmnn_keras.models.aig import AIGMobileNetV2, AIGResNet, AIGResNet50, AIGResNet101
from dmnn_keras.models.channel_gated import (
    ChannelGatedResNet,
    ChannelGatedResNet50,
    ChannelGatedResNet101,
)
from dmnn_keras.models.dynamic_model import DynamicModel
from dmnn_keras.models.early_exit import EarlyExitModel
from dmnn_keras.models.gating import carried_active
from dmnn_keras.models.lcnet import LCNetResNet, LCNetResNet50, LCNetResNet101
from dmnn_keras.models.mobilenet_v2 import DMNNMobileNetV2, DynamicMobileNetV2, MobileNetV2
from dmnn_keras.models.resnet import (
    DMNNResNet,
    DMNNResNet50,
    DMNNResNet101,
    DynamicResNet,
    ResNet,
    ResNet50,
    ResNet101,
)
