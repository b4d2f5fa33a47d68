"""LC-Net builders (Xia, Yin, Dai & Jha): per-block L-Net (layer skip + scale) and
C-Net (channel-group skip + scale), trained jointly with the resource loss.
Design choices: `dmnn_keras.layers.lcnet`."""

from dmnn_keras.models.builders import gating_defaults
from dmnn_keras.models.resnet import deep_resnet_builders, resnet_builder

LCNET_UNITS = 16
_LCNET = {"groups": 1, "gating": "lcnet"}
_DESCRIBED = {"flops_target": "target of the resource loss, in (0, 1].",
              "controller_units": "hidden units of L-Net and C-Net (16)."}

LCNetResNet = resnet_builder(
    "LCNetResNet", __name__, _LCNET, {**gating_defaults("flops_target"), "controller_units": LCNET_UNITS},
    title="LC-Net ResNet", described=_DESCRIBED,
    about="Every bottleneck is a `ChannelGatedBlock(layer_gate=True)` driven by an "
          "`LCController` named `{block}_gate`; the library's `ResourceLoss` pulls the "
          "execution rates and the FLOPs ratio to `flops_target`.",
    returns="; 13 effective gates `[batch, 13]` per bottleneck (the layer gate, then 8 + 4 "
            "channel-group gates)", gate_width=13)
LCNetResNet50, LCNetResNet101 = deep_resnet_builders(
    "LCNetResNet", __name__, _LCNET, gating_defaults("flops_target"), "LC-Net ResNet",
    described=_DESCRIBED, defaults={"controller_units": LCNET_UNITS})
