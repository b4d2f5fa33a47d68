"""Channel gating builders (Herrmann, Bowen & Zabih): gated groups of filters,
batch activation loss, conditional (dependent=True) or pruning (dependent=False)."""

from dmnn_keras.models.builders import gating_defaults
from dmnn_keras.models.resnet import deep_resnet_builders, resnet_builder

CHANNEL_GATE_UNITS = 16
_CHANNEL = {"groups": 1, "gating": "channel"}
_DESCRIBED = {
    "dependent": "True: conditional computation (a gate network per block); False: pruning "
                 "(one learned logit pair per gate, the same for every input; "
                 "`dmnn_keras.prune` then gives a smaller static model).",
    "controller_units": "hidden units of each gate network (16).",
}

ChannelGatedResNet = resnet_builder(
    "ChannelGatedResNet", __name__, _CHANNEL,
    {**gating_defaults("flops_target", "dependent", "one_sided"),
     "controller_units": CHANNEL_GATE_UNITS},
    title="Channel-gated ResNet", described=_DESCRIBED, example_args="dependent=False",
    about="Every bottleneck is a `ChannelGatedBlock`: its first 1x1 convolution has 8 gates "
          "and its 3x3 convolution 4 (16/32/64/128 filters per gate in ResNet-50's stages, "
          "half that in the contracting 1x1; see `channel_gate_groups`), decided by a "
          "`ChannelGate` named `{block}_gate`. `BatchActivationLoss` pulls the batch's "
          "fraction of gateable MACs to `flops_target` (`one_sided=True`: only when above).",
    returns="; 12 channel gates `[batch, 12]` per bottleneck (8 for the first 1x1 convolution, "
            "4 for the 3x3)", gate_width=12)
ChannelGatedResNet50, ChannelGatedResNet101 = deep_resnet_builders(
    "ChannelGatedResNet", __name__, _CHANNEL, gating_defaults("dependent", "flops_target"),
    "Channel-gated ResNet", described=_DESCRIBED, defaults={"controller_units": CHANNEL_GATE_UNITS},
    example_args="dependent=False")
