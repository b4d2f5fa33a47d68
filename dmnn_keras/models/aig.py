"""ConvNet-AIG builders (Veit & Belongie): a learned on/off gate per residual block."""

from dmnn_keras.models.mobilenet_v2 import DynamicMobileNetV2
from dmnn_keras.models.resnet import RESNET_STACKS, DynamicResNet

AIG_CONTROLLER_UNITS = 16


def AIGResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25, input_shape=(32, 32, 3),
              num_classes=10, flops_target=0.5, controller_units=AIG_CONTROLLER_UNITS, **kwargs):
    """ConvNet-AIG ResNet of any depth and width; defaults are a CPU-sized CIFAR model.

    Every bottleneck is a one-path `MultiPathBlock` gated by an
    `AIGController` (GAP -> Dense(16) -> BN -> ReLU -> Dense(2), ~85% open at
    the start); `TargetRateLoss` pulls every block's execution rate to
    `flops_target`. `stochastic_inference=True` keeps the gates random at
    test time, as the original. `dependent=False` learns input-independent
    block gates (block pruning). Other arguments as `DynamicResNet`.
    """
    return DynamicResNet(stack_sizes=stack_sizes, width_multiplier=width_multiplier,
                         input_shape=input_shape, num_classes=num_classes, groups=1,
                         gating="aig", flops_target=flops_target,
                         controller_units=controller_units, **kwargs)


def AIGResNet50(flops_target=0.5, **kwargs):
    """ConvNet-AIG ResNet-50 (224x224x3, 1000 classes by default)."""
    kwargs.setdefault("controller_units", AIG_CONTROLLER_UNITS)
    return DynamicResNet(stack_sizes=RESNET_STACKS[50], groups=1, gating="aig",
                         flops_target=flops_target, **kwargs)


def AIGResNet101(flops_target=0.5, **kwargs):
    """ConvNet-AIG ResNet-101 (224x224x3, 1000 classes by default)."""
    kwargs.setdefault("controller_units", AIG_CONTROLLER_UNITS)
    return DynamicResNet(stack_sizes=RESNET_STACKS[101], groups=1, gating="aig",
                         flops_target=flops_target, **kwargs)


def AIGMobileNetV2(alpha=1.0, flops_target=0.5, **kwargs):
    """ConvNet-AIG MobileNetV2: blocks with an identity shortcut get a gate (10 of 17)."""
    kwargs.setdefault("controller_units", AIG_CONTROLLER_UNITS)
    return DynamicMobileNetV2(alpha=alpha, groups=1, gating="aig", flops_target=flops_target,
                              **kwargs)
