"""Channel gating builders (Herrmann, Bowen & Zabih): gated groups of filters,
batch activation loss, conditional (dependent=True) or pruning (dependent=False)."""

from dmnn_keras.models.resnet import RESNET_STACKS, DynamicResNet

CHANNEL_GATE_UNITS = 16


def ChannelGatedResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25,
                       input_shape=(32, 32, 3), num_classes=10, flops_target=0.5,
                       dependent=True, one_sided=False,
                       controller_units=CHANNEL_GATE_UNITS, **kwargs):
    """Channel-gated ResNet of any depth and width; defaults are a CPU-sized CIFAR model.

    Every bottleneck is a `ChannelGatedBlock`: its first 1x1 convolution has 8
    gates and its 3x3 convolution 4 (16/32/64/128 filters per gate in
    ResNet-50's stages, half that in the contracting 1x1; see
    `channel_gate_groups`), decided by a `ChannelGate` named
    `{block}_gate`. `BatchActivationLoss` pulls the batch's fraction of
    gateable MACs to `flops_target` (`one_sided=True`: only when above).

    Args:
        dependent: True: conditional computation (a gate network per block);
            False: pruning (one learned logit pair per gate, the same for
            every input; `dmnn_keras.prune` then gives a smaller static model).
        Others as `DynamicResNet`.
    """
    return DynamicResNet(stack_sizes=stack_sizes, width_multiplier=width_multiplier,
                         input_shape=input_shape, num_classes=num_classes, groups=1,
                         gating="channel", flops_target=flops_target, dependent=dependent,
                         one_sided=one_sided, controller_units=controller_units, **kwargs)


def ChannelGatedResNet50(dependent=True, flops_target=0.5, **kwargs):
    """Channel-gated ResNet-50 (224x224x3, 1000 classes by default)."""
    kwargs.setdefault("controller_units", CHANNEL_GATE_UNITS)
    return DynamicResNet(stack_sizes=RESNET_STACKS[50], groups=1, gating="channel",
                         flops_target=flops_target, dependent=dependent, **kwargs)


def ChannelGatedResNet101(dependent=True, flops_target=0.5, **kwargs):
    """Channel-gated ResNet-101 (224x224x3, 1000 classes by default)."""
    kwargs.setdefault("controller_units", CHANNEL_GATE_UNITS)
    return DynamicResNet(stack_sizes=RESNET_STACKS[101], groups=1, gating="channel",
                         flops_target=flops_target, dependent=dependent, **kwargs)
