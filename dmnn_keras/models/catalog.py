"""Named models as data: `MODEL_SPECS` maps a name to its builder and what it gates; `build(name)`.

The recipes' `--model` names are these names. What a builder accepts is read
from the data, not declared: the gating method (`spec.gating`, see
`dmnn_keras.methods`) says whether it takes `flops_target` and friends and
whether it has sub-blocks (`groups`, category heads); its signature says
whether it takes `stack_sizes`/`width_multiplier` (the small ResNets) or an
`alpha` that `defaults` does not fix (MobileNetV2). Adding a model is one line:

    MODEL_SPECS["aig_resnet50"] = ModelSpec(AIGResNet50, "resnet", "aig")
"""

import dataclasses
import inspect
from typing import Callable, Optional

from dmnn_keras.methods import get_method
from dmnn_keras.models.aig import AIGMobileNetV2, AIGResNet, AIGResNet50, AIGResNet101
from dmnn_keras.models.channel_gated import (
    ChannelGatedResNet,
    ChannelGatedResNet50,
    ChannelGatedResNet101,
)
from dmnn_keras.models.lcnet import LCNetResNet, LCNetResNet50, LCNetResNet101
from dmnn_keras.models.mobilenet_v2 import MOBILENET_V2_SPEC, DMNNMobileNetV2, MobileNetV2
from dmnn_keras.models.resnet import (
    RESNET_STACKS,
    DMNNResNet,
    DMNNResNet50,
    DMNNResNet101,
    ResNet,
    ResNet50,
    ResNet101,
)

# Stages of each family: a per-stage `groups` has one int per stage.
FAMILY_STAGES = {"resnet": len(RESNET_STACKS[50]), "mobilenet": len(MOBILENET_V2_SPEC)}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One named model.

    Attributes:
        builder: the model function or class.
        family: "resnet" or "mobilenet"; picks the preset weight decay and
            the number of stages of a per-stage `groups`.
        gating: None (static) or the `gating=` name of the builder's method.
        defaults: fixed keyword arguments (e.g. `alpha=1.4`).
    """

    builder: Callable
    family: str
    gating: Optional[str]
    defaults: dict = dataclasses.field(default_factory=dict)

    @property
    def gated(self):
        """The builder takes flops_target, resource_loss_weight and seed."""
        return self.gating is not None

    @property
    def multi_path(self):
        """The builder takes groups (and, if gated, num_categories): static or DMNN models."""
        return self.gating is None or get_method(self.gating).multi_path

    @property
    def sized(self):
        """The builder takes `stack_sizes` and `width_multiplier` (small general ResNets)."""
        return "stack_sizes" in inspect.signature(self.builder).parameters

    @property
    def width_arg(self):
        """None, or the argument under which `width_multiplier` is passed (`alpha`)."""
        free = "alpha" in inspect.signature(self.builder).parameters
        return "alpha" if free and "alpha" not in self.defaults else None


MODEL_SPECS = {
    "dmnn_resnet": ModelSpec(DMNNResNet, "resnet", "dmnn"),
    "resnet": ModelSpec(ResNet, "resnet", None),
    "dmnn_resnet50": ModelSpec(DMNNResNet50, "resnet", "dmnn"),
    "dmnn_resnet101": ModelSpec(DMNNResNet101, "resnet", "dmnn"),
    "resnet50": ModelSpec(ResNet50, "resnet", None),
    "resnet101": ModelSpec(ResNet101, "resnet", None),
    "dmnn_mobilenet_v2": ModelSpec(DMNNMobileNetV2, "mobilenet", "dmnn"),
    "dmnn_mobilenet_v2_140": ModelSpec(DMNNMobileNetV2, "mobilenet", "dmnn", {"alpha": 1.4}),
    "mobilenet_v2": ModelSpec(MobileNetV2, "mobilenet", None),
    "mobilenet_v2_140": ModelSpec(MobileNetV2, "mobilenet", None, {"alpha": 1.4}),
    # ConvNet-AIG, channel gating (conditional and pruning) and LC-Net.
    "aig_resnet": ModelSpec(AIGResNet, "resnet", "aig"),
    "aig_resnet50": ModelSpec(AIGResNet50, "resnet", "aig"),
    "aig_resnet101": ModelSpec(AIGResNet101, "resnet", "aig"),
    "aig_mobilenet_v2": ModelSpec(AIGMobileNetV2, "mobilenet", "aig"),
    "channel_gated_resnet": ModelSpec(ChannelGatedResNet, "resnet", "channel"),
    "channel_gated_resnet50": ModelSpec(ChannelGatedResNet50, "resnet", "channel"),
    "channel_gated_resnet101": ModelSpec(ChannelGatedResNet101, "resnet", "channel"),
    "channel_pruned_resnet": ModelSpec(ChannelGatedResNet, "resnet", "channel",
                                       {"dependent": False}),
    "channel_pruned_resnet50": ModelSpec(ChannelGatedResNet50, "resnet", "channel",
                                         {"dependent": False}),
    "lcnet_resnet": ModelSpec(LCNetResNet, "resnet", "lcnet"),
    "lcnet_resnet50": ModelSpec(LCNetResNet50, "resnet", "lcnet"),
    "lcnet_resnet101": ModelSpec(LCNetResNet101, "resnet", "lcnet"),
}


def get_model_spec(name):
    """Returns `MODEL_SPECS[name]`; ValueError naming the allowed models otherwise."""
    if name not in MODEL_SPECS:
        raise ValueError(f"model must be one of {sorted(MODEL_SPECS)}. Received: model={name!r}")
    return MODEL_SPECS[name]


def build(name, **overrides):
    """Builds the model named `name` (a key of `MODEL_SPECS`) with its defaults and `overrides`.

    Args:
        name: e.g. "dmnn_resnet", "aig_resnet50", "channel_pruned_resnet".
        **overrides: arguments of its builder (e.g. `num_classes`,
            `flops_target`); they replace the spec's `defaults`.

    Returns:
        The builder's model (a `DynamicResNet` or `DynamicMobileNetV2`).

    Example:
    ```python
    from dmnn_keras.models.catalog import build
    model = build("channel_pruned_resnet", num_classes=4)
    model.output_shape, model.dependent  # ((None, 4), False)
    ```
    """
    spec = get_model_spec(name)
    return spec.builder(**{**spec.defaults, **overrides})
