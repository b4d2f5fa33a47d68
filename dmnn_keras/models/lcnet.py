"""LC-Net builders (Xia, Yin, Dai & Jha): per-block L-Net (layer skip + scale) and
C-Net (channel-group skip + scale), trained jointly with the resource loss.
Design choices: `dmnn_keras.layers.lcnet`."""

from dmnn_keras.models.dynamic_model import small_input_shape
from dmnn_keras.models.resnet import RESNET_STACKS, DynamicResNet

LCNET_UNITS = 16


def LCNetResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25, input_shape=None,
                num_classes=10, flops_target=0.5, controller_units=LCNET_UNITS, **kwargs):
    """LC-Net ResNet of any depth and width; defaults are a CPU-sized CIFAR model.

    Every bottleneck is a `ChannelGatedBlock(layer_gate=True)` driven by an
    `LCController` named `{block}_gate`; the library's `ResourceLoss` pulls
    the execution rates and the FLOPs ratio to `flops_target`.

    Args:
        stack_sizes, width_multiplier, input_shape, num_classes, flops_target:
            as `DynamicResNet`, with small CIFAR defaults
            (`input_shape` (32, 32, 3) unless `input_tensor` is given).
        controller_units: hidden units of L-Net and C-Net (16).
        **kwargs: other `DynamicResNet` arguments; `groups` is 1, `gating`
            "lcnet".

    Returns:
        A `DynamicResNet`: images `[batch, 32, 32, 3]` -> logits `[batch, 10]`
        with the defaults; 13 effective gates `[batch, 13]` per bottleneck
        (the layer gate, then 8 + 4 channel-group gates).

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.LCNetResNet()
    images = np.zeros((2, 32, 32, 3), "float32")
    model(images).shape  # (2, 10)
    dk.predict_gates(model, images)["conv2_block1"].shape  # (2, 13)
    ```
    """
    return DynamicResNet(stack_sizes=stack_sizes, width_multiplier=width_multiplier,
                         input_shape=small_input_shape(input_shape, kwargs),
                         num_classes=num_classes, groups=1,
                         gating="lcnet", flops_target=flops_target,
                         controller_units=controller_units, **kwargs)


def LCNetResNet50(flops_target=0.5, **kwargs):
    """LC-Net ResNet-50 (224x224x3, 1000 classes by default).

    Args:
        flops_target: target of the resource loss, in (0, 1].
        **kwargs: other `DynamicResNet` arguments (e.g. `input_shape`,
            `num_classes`, `controller_units`, default 16).

    Returns:
        A `DynamicResNet`: images `[batch, 224, 224, 3]` -> logits
        `[batch, 1000]` by default.

    Example:
    ```python
    import dmnn_keras as dk
    model = dk.LCNetResNet50(flops_target=0.5)
    model.output_shape  # (None, 1000)
    ```
    """
    kwargs.setdefault("controller_units", LCNET_UNITS)
    return DynamicResNet(stack_sizes=RESNET_STACKS[50], groups=1, gating="lcnet",
                         flops_target=flops_target, **kwargs)


def LCNetResNet101(flops_target=0.5, **kwargs):
    """LC-Net ResNet-101 (224x224x3, 1000 classes by default).

    Args:
        flops_target: target of the resource loss, in (0, 1].
        **kwargs: other `DynamicResNet` arguments (e.g. `input_shape`,
            `num_classes`, `controller_units`, default 16).

    Returns:
        A `DynamicResNet`: images `[batch, 224, 224, 3]` -> logits
        `[batch, 1000]` by default.

    Example:
    ```python
    import dmnn_keras as dk
    model = dk.LCNetResNet101(flops_target=0.5)
    model.output_shape  # (None, 1000)
    ```
    """
    kwargs.setdefault("controller_units", LCNET_UNITS)
    return DynamicResNet(stack_sizes=RESNET_STACKS[101], groups=1, gating="lcnet",
                         flops_target=flops_target, **kwargs)
