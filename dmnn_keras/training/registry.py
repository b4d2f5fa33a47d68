"""The model registry: `--model` names -> builders of the library.

One dict, `MODELS`, maps a name to a `ModelEntry`. Adding a builder is one
line, e.g.::

    MODELS["aig_resnet50"] = ModelEntry(dk.AIGResNet50, family="resnet", gated=True)

`build_model(config, num_classes, input_shape, num_categories)` passes each
builder only the arguments its entry accepts:
  * every builder: `num_classes`, `input_shape`;
  * `gated=True`: `flops_target`, `resource_loss_weight`, `seed`, and, for
    DMNN builders (`multi_path=True`), `groups` and `num_categories`
    (ConvNet-AIG, channel gating and LC-Net have one path per block and no
    category heads);
  * `sized=True`: `stack_sizes`, `width_multiplier` (small general ResNets);
  * `width_arg="alpha"`: `width_multiplier` passed as `alpha` when it is set
    (MobileNetV2).
"""

import dataclasses
from typing import Callable, Optional

from dmnn_keras.models import (
    AIGMobileNetV2,
    AIGResNet,
    AIGResNet50,
    AIGResNet101,
    ChannelGatedResNet,
    ChannelGatedResNet50,
    ChannelGatedResNet101,
    LCNetResNet,
    LCNetResNet50,
    LCNetResNet101,
    DMNNMobileNetV2,
    DMNNResNet,
    DMNNResNet50,
    DMNNResNet101,
    MobileNetV2,
    ResNet,
    ResNet50,
    ResNet101,
)

from dmnn_keras.models.mobilenet_v2 import MOBILENET_V2_SPEC
from dmnn_keras.models.resnet import RESNET_STACKS

# Stages of each family: a per-stage `groups` has one int per stage.
FAMILY_STAGES = {"resnet": len(RESNET_STACKS[50]), "mobilenet": len(MOBILENET_V2_SPEC)}


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """How to call one builder from a training config.

    Attributes:
        builder: the model function or class.
        family: "resnet" or "mobilenet"; picks the preset weight decay.
        gated: the builder takes flops_target, resource_loss_weight and seed.
        multi_path: a gated builder that also takes groups and num_categories (DMNN).
        sized: the builder takes `stack_sizes` and `width_multiplier`.
        width_arg: None, or the name under which `width_multiplier` is passed.
        defaults: fixed keyword arguments (e.g. `alpha=1.4`).
    """

    builder: Callable
    family: str
    gated: bool
    multi_path: bool = True
    sized: bool = False
    width_arg: Optional[str] = None
    defaults: dict = dataclasses.field(default_factory=dict)


MODELS = {
    "dmnn_resnet": ModelEntry(DMNNResNet, "resnet", gated=True, sized=True),
    "resnet": ModelEntry(ResNet, "resnet", gated=False, sized=True),
    "dmnn_resnet50": ModelEntry(DMNNResNet50, "resnet", gated=True),
    "dmnn_resnet101": ModelEntry(DMNNResNet101, "resnet", gated=True),
    "resnet50": ModelEntry(ResNet50, "resnet", gated=False),
    "resnet101": ModelEntry(ResNet101, "resnet", gated=False),
    "dmnn_mobilenet_v2": ModelEntry(DMNNMobileNetV2, "mobilenet", gated=True, width_arg="alpha"),
    "dmnn_mobilenet_v2_140": ModelEntry(
        DMNNMobileNetV2, "mobilenet", gated=True, defaults={"alpha": 1.4}),
    "mobilenet_v2": ModelEntry(MobileNetV2, "mobilenet", gated=False, width_arg="alpha"),
    "mobilenet_v2_140": ModelEntry(MobileNetV2, "mobilenet", gated=False, defaults={"alpha": 1.4}),
    # ConvNet-AIG, channel gating (conditional and pruning) and LC-Net.
    "aig_resnet": ModelEntry(AIGResNet, "resnet", gated=True, multi_path=False, sized=True),
    "aig_resnet50": ModelEntry(AIGResNet50, "resnet", gated=True, multi_path=False),
    "aig_resnet101": ModelEntry(AIGResNet101, "resnet", gated=True, multi_path=False),
    "aig_mobilenet_v2": ModelEntry(AIGMobileNetV2, "mobilenet", gated=True, multi_path=False,
                                   width_arg="alpha"),
    "channel_gated_resnet": ModelEntry(ChannelGatedResNet, "resnet", gated=True,
                                       multi_path=False, sized=True),
    "channel_gated_resnet50": ModelEntry(ChannelGatedResNet50, "resnet", gated=True,
                                         multi_path=False),
    "channel_gated_resnet101": ModelEntry(ChannelGatedResNet101, "resnet", gated=True,
                                          multi_path=False),
    "channel_pruned_resnet": ModelEntry(ChannelGatedResNet, "resnet", gated=True,
                                        multi_path=False, sized=True,
                                        defaults={"dependent": False}),
    "channel_pruned_resnet50": ModelEntry(ChannelGatedResNet50, "resnet", gated=True,
                                          multi_path=False, defaults={"dependent": False}),
    "lcnet_resnet": ModelEntry(LCNetResNet, "resnet", gated=True, multi_path=False, sized=True),
    "lcnet_resnet50": ModelEntry(LCNetResNet50, "resnet", gated=True, multi_path=False),
    "lcnet_resnet101": ModelEntry(LCNetResNet101, "resnet", gated=True, multi_path=False),
}


def get_model_entry(name):
    """Returns `MODELS[name]`; ValueError naming the allowed models otherwise."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}. Received: model={name!r}")
    return MODELS[name]


def static_twin_name(name):
    """The registry name of a DMNN model's static twin: `dmnn_resnet50` -> `resnet50`."""
    entry = get_model_entry(name)
    twin = name[len("dmnn_"):] if name.startswith("dmnn_") else None
    if not (entry.gated and entry.multi_path) or twin not in MODELS:
        raise ValueError(f"model must be a DMNN model (dmnn_*) with a static twin. Received: "
                         f"model={name!r}")
    return twin


def resource_loss_kwargs(config, dmnn=True):
    """The resource-loss arguments a config sets (None fields keep the builder's defaults)."""
    names = ("resource_loss_weight", "dual_step") + (("rate_loss",) if dmnn else ())
    return {name: getattr(config, name) for name in names if getattr(config, name) is not None}


def build_model(config, num_classes, input_shape, num_categories=0):
    """Builds `config.model` for a dataset.

    Args:
        config: a `TrainConfig` (reads model, groups, flops_target,
            resource_loss_weight, stack_sizes, width_multiplier, seed).
        num_classes: int.
        input_shape: `(H, W, 3)`.
        num_categories: 0, or the category count for category supervision
            (gated models only).
    """
    entry = get_model_entry(config.model)
    kwargs = dict(entry.defaults, num_classes=num_classes, input_shape=tuple(input_shape))
    if entry.gated:
        kwargs.update(flops_target=config.flops_target, seed=config.seed)
        if entry.multi_path:
            kwargs.update(groups=config.groups, num_categories=num_categories)
            if entry.family == "resnet":
                kwargs["split"] = config.block_split
        kwargs.update(resource_loss_kwargs(config, entry.multi_path))
    if num_categories and not (entry.gated and entry.multi_path):
        raise ValueError(
            "category_supervision needs a DMNN model (its controllers have category heads). "
            f"Received: model={config.model!r}"
        )
    if entry.sized:
        if config.stack_sizes is not None:
            kwargs["stack_sizes"] = tuple(config.stack_sizes)
        if config.width_multiplier is not None:
            kwargs["width_multiplier"] = config.width_multiplier
    else:
        if config.stack_sizes is not None:
            raise ValueError(
                f"stack_sizes applies to the models {sorted(n for n, e in MODELS.items() if e.sized)}. "
                f"Received: stack_sizes={config.stack_sizes!r} with model={config.model!r}"
            )
        if config.width_multiplier is not None:
            if not entry.width_arg:
                raise ValueError(
                    f"width_multiplier does not apply to model={config.model!r}. "
                    f"Received: width_multiplier={config.width_multiplier!r}"
                )
            kwargs[entry.width_arg] = config.width_multiplier
    return entry.builder(**kwargs)
