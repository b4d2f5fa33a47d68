"""Channel gating builders (Herrmann, Bowen & Zabih): gated groups of filters,
batch activation loss, conditional (dependent=True) or pruning (dependent=False)."""

from dmnn_keras.models.dynamic_model import small_input_shape
from dmnn_keras.models.resnet import RESNET_STACKS, DynamicResNet

CHANNEL_GATE_UNITS = 16


def ChannelGatedResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25,
                       input_shape=None, num_classes=10, flops_target=0.5,
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
        stack_sizes, width_multiplier, input_shape, num_classes, flops_target,
            one_sided, controller_units: as `DynamicResNet`, with small CIFAR
            defaults (16 gate-network units).
        dependent: True: conditional computation (a gate network per block);
            False: pruning (one learned logit pair per gate, the same for
            every input; `dmnn_keras.prune` then gives a smaller static model).
        **kwargs: other `DynamicResNet` arguments; `groups` is 1, `gating`
            "channel".

    Returns:
        A `DynamicResNet`: images `[batch, 32, 32, 3]` -> logits `[batch, 10]`
        with the defaults; 12 channel gates `[batch, 12]` per bottleneck
        (8 for the first 1x1 convolution, 4 for the 3x3).

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.ChannelGatedResNet(dependent=False)
    images = np.zeros((2, 32, 32, 3), "float32")
    model(images).shape  # (2, 10)
    dk.predict_gates(model, images)["conv2_block1"].shape  # (2, 12)
    ```
    """
    return DynamicResNet(stack_sizes=stack_sizes, width_multiplier=width_multiplier,
                         input_shape=small_input_shape(input_shape, kwargs),
                         num_classes=num_classes, groups=1,
                         gating="channel", flops_target=flops_target, dependent=dependent,
                         one_sided=one_sided, controller_units=controller_units, **kwargs)


def ChannelGatedResNet50(dependent=True, flops_target=0.5, **kwargs):
    """Channel-gated ResNet-50 (224x224x3, 1000 classes by default).

    Args:
        dependent, flops_target: as `ChannelGatedResNet`.
        **kwargs: other `DynamicResNet` arguments (e.g. `input_shape`,
            `num_classes`, `controller_units`, default 16).

    Returns:
        A `DynamicResNet`: images `[batch, 224, 224, 3]` -> logits
        `[batch, 1000]` by default.

    Example:
    ```python
    import dmnn_keras as dk
    model = dk.ChannelGatedResNet50(dependent=False)
    model.output_shape  # (None, 1000)
    ```
    """
    kwargs.setdefault("controller_units", CHANNEL_GATE_UNITS)
    return DynamicResNet(stack_sizes=RESNET_STACKS[50], groups=1, gating="channel",
                         flops_target=flops_target, dependent=dependent, **kwargs)


def ChannelGatedResNet101(dependent=True, flops_target=0.5, **kwargs):
    """Channel-gated ResNet-101 (224x224x3, 1000 classes by default).

    Args:
        dependent, flops_target: as `ChannelGatedResNet`.
        **kwargs: other `DynamicResNet` arguments (e.g. `input_shape`,
            `num_classes`, `controller_units`, default 16).

    Returns:
        A `DynamicResNet`: images `[batch, 224, 224, 3]` -> logits
        `[batch, 1000]` by default.

    Example:
    ```python
    import dmnn_keras as dk
    model = dk.ChannelGatedResNet101(dependent=False)
    model.output_shape  # (None, 1000)
    ```
    """
    kwargs.setdefault("controller_units", CHANNEL_GATE_UNITS)
    return DynamicResNet(stack_sizes=RESNET_STACKS[101], groups=1, gating="channel",
                         flops_target=flops_target, dependent=dependent, **kwargs)
