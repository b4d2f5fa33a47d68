"""ConvNet-AIG builders (Veit & Belongie): a learned on/off gate per residual block."""

from dmnn_keras.models.dynamic_model import small_input_shape
from dmnn_keras.models.mobilenet_v2 import DynamicMobileNetV2
from dmnn_keras.models.resnet import RESNET_STACKS, DynamicResNet

AIG_CONTROLLER_UNITS = 16


def AIGResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25, input_shape=None,
              num_classes=10, flops_target=0.5, controller_units=AIG_CONTROLLER_UNITS, **kwargs):
    """ConvNet-AIG ResNet of any depth and width; defaults are a CPU-sized CIFAR model.

    Every bottleneck is a one-path `MultiPathBlock` gated by an
    `AIGController` (GAP -> Dense(16) -> BN -> ReLU -> Dense(2), ~85% open at
    the start); `TargetRateLoss` pulls every block's execution rate to
    `flops_target`. `stochastic_inference=True` keeps the gates random at
    test time, as the original. `dependent=False` learns input-independent
    block gates (block pruning).

    Args:
        stack_sizes, width_multiplier, input_shape, num_classes, flops_target:
            as `DynamicResNet`, with small CIFAR defaults
            (`input_shape` (32, 32, 3) unless `input_tensor` is given).
        controller_units: hidden units of each gate network (16).
        **kwargs: other `DynamicResNet` arguments (e.g. `dependent`,
            `stochastic_inference`); `groups` is 1, `gating` "aig".

    Returns:
        A `DynamicResNet`: images `[batch, 32, 32, 3]` -> logits `[batch, 10]`
        with the defaults; one gate `[batch, 1]` per bottleneck.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.AIGResNet()
    images = np.zeros((2, 32, 32, 3), "float32")
    model(images).shape  # (2, 10)
    dk.predict_gates(model, images)["conv2_block1"].shape  # (2, 1)
    ```
    """
    return DynamicResNet(stack_sizes=stack_sizes, width_multiplier=width_multiplier,
                         input_shape=small_input_shape(input_shape, kwargs),
                         num_classes=num_classes, groups=1,
                         gating="aig", flops_target=flops_target,
                         controller_units=controller_units, **kwargs)


def AIGResNet50(flops_target=0.5, **kwargs):
    """ConvNet-AIG ResNet-50 (224x224x3, 1000 classes by default).

    Args:
        flops_target: target execution rate of every block, in (0, 1].
        **kwargs: other `DynamicResNet` arguments (e.g. `input_shape`,
            `num_classes`, `controller_units`, default 16).

    Returns:
        A `DynamicResNet`: images `[batch, 224, 224, 3]` -> logits
        `[batch, 1000]` by default.

    Example:
    ```python
    import dmnn_keras as dk
    model = dk.AIGResNet50(flops_target=0.5)
    model.output_shape  # (None, 1000)
    ```
    """
    kwargs.setdefault("controller_units", AIG_CONTROLLER_UNITS)
    return DynamicResNet(stack_sizes=RESNET_STACKS[50], groups=1, gating="aig",
                         flops_target=flops_target, **kwargs)


def AIGResNet101(flops_target=0.5, **kwargs):
    """ConvNet-AIG ResNet-101 (224x224x3, 1000 classes by default).

    Args:
        flops_target: target execution rate of every block, in (0, 1].
        **kwargs: other `DynamicResNet` arguments (e.g. `input_shape`,
            `num_classes`, `controller_units`, default 16).

    Returns:
        A `DynamicResNet`: images `[batch, 224, 224, 3]` -> logits
        `[batch, 1000]` by default.

    Example:
    ```python
    import dmnn_keras as dk
    model = dk.AIGResNet101(flops_target=0.5)
    model.output_shape  # (None, 1000)
    ```
    """
    kwargs.setdefault("controller_units", AIG_CONTROLLER_UNITS)
    return DynamicResNet(stack_sizes=RESNET_STACKS[101], groups=1, gating="aig",
                         flops_target=flops_target, **kwargs)


def AIGMobileNetV2(alpha=1.0, flops_target=0.5, **kwargs):
    """ConvNet-AIG MobileNetV2: blocks with an identity shortcut get a gate (10 of 17 at alpha 1.0).

    Args:
        alpha, flops_target: as `DynamicMobileNetV2`.
        **kwargs: other `DynamicMobileNetV2` arguments (e.g. `input_shape`,
            `num_classes`; `controller_units` defaults to 16).

    Returns:
        A `DynamicMobileNetV2`: images `[batch, 224, 224, 3]` -> logits
        `[batch, 1000]` by default, `[batch, num_classes]` in general.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.AIGMobileNetV2(alpha=0.35, input_shape=(32, 32, 3), num_classes=10)
    model(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 10)
    # 11 of 17: at this width and stem block_1 (8 -> 8 channels, stride 1) has one too
    len(model.gated_blocks)  # 11
    ```
    """
    kwargs.setdefault("controller_units", AIG_CONTROLLER_UNITS)
    return DynamicMobileNetV2(alpha=alpha, groups=1, gating="aig", flops_target=flops_target,
                              **kwargs)
