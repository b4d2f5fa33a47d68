"""ConvNet-AIG builders (Veit & Belongie): a learned on/off gate per residual block."""

from dmnn_keras.models.builders import gating_defaults
from dmnn_keras.models.mobilenet_v2 import mobilenet_v2_builder
from dmnn_keras.models.resnet import deep_resnet_builders, resnet_builder

AIG_CONTROLLER_UNITS = 16
_AIG = {"groups": 1, "gating": "aig"}
_UNITS = {"controller_units": AIG_CONTROLLER_UNITS}
_DESCRIBED = {"flops_target": "target execution rate of every block, in (0, 1].",
              "controller_units": "hidden units of each gate network (16)."}

AIGResNet = resnet_builder(
    "AIGResNet", __name__, _AIG, {**gating_defaults("flops_target"), **_UNITS}, title="ConvNet-AIG ResNet",
    about="Every bottleneck is a one-path `MultiPathBlock` gated by an `AIGController` (GAP -> "
          "Dense(16) -> BN -> ReLU -> Dense(2), ~85% open at the start); `TargetRateLoss` "
          "pulls every block's execution rate to `flops_target`. `stochastic_inference=True` "
          "keeps the gates random at test time, as the original. `dependent=False` learns "
          "input-independent block gates (block pruning).",
    described=_DESCRIBED, kwargs_examples=("dependent", "stochastic_inference"),
    returns="; one gate `[batch, 1]` per bottleneck", gate_width=1)
AIGResNet50, AIGResNet101 = deep_resnet_builders(
    "AIGResNet", __name__, _AIG, gating_defaults("flops_target"), "ConvNet-AIG ResNet",
    described=_DESCRIBED, defaults=_UNITS)
AIGMobileNetV2 = mobilenet_v2_builder(
    "AIGMobileNetV2", __name__, _AIG, {"alpha": 1.0, **gating_defaults("flops_target")},
    "ConvNet-AIG MobileNetV2: blocks with an identity shortcut get a gate (10 of 17 at alpha 1.0).",
    gated_blocks=11, described=_DESCRIBED, defaults=_UNITS,
    note="# 11 of 17: at this width and stem block_1 (8 -> 8 channels, stride 1) has one too")
