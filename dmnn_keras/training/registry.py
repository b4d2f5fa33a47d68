"""The model registry: `--model` names -> builders of the library.

The names and what each builder accepts are data next to the models
(`dmnn_keras.models.catalog`: `MODEL_SPECS`, `ModelSpec`); this module calls
them from a training config. `build_model(config, num_classes, input_shape,
num_categories)` passes each builder only the arguments its spec accepts:
  * every builder: `num_classes`, `input_shape`;
  * `gated` (a gating method): `flops_target`, `resource_loss_weight`,
    `seed`, and, for DMNN builders (`multi_path`), `groups` and
    `num_categories` (ConvNet-AIG, channel gating and LC-Net have one path
    per block and no category heads);
  * `sized` (the builder has `stack_sizes`): `stack_sizes`, `width_multiplier`
    (small general ResNets);
  * `width_arg="alpha"`: `width_multiplier` passed as `alpha` when it is set
    (MobileNetV2 builders whose `defaults` do not fix it).
"""

from dmnn_keras.models.catalog import (
    FAMILY_STAGES, MODEL_SPECS, ModelSpec, build, get_model_spec,
)

# The registry's former names, kept for users of `dmnn_keras.training`.
MODELS = MODEL_SPECS
ModelEntry = ModelSpec


def get_model_entry(name):
    """Returns `MODELS[name]` (a `ModelSpec`); ValueError naming the allowed models otherwise."""
    return get_model_spec(name)


def static_twin_name(name):
    """The registry name of a DMNN model's static twin: `dmnn_resnet50` -> `resnet50`."""
    entry = get_model_entry(name)
    twin = name[len("dmnn_"):] if name.startswith("dmnn_") else None
    if not (entry.gated and entry.multi_path) or twin not in MODELS:
        raise ValueError(f"model must be a DMNN model (dmnn_*) with a static twin. Received: "
                         f"model={name!r}")
    return twin


def resource_loss_kwargs(config, dmnn=True):
    """The resource-loss and gate-signal arguments a config sets (None keeps the builder's defaults)."""
    names = ("resource_loss_weight", "dual_step") + (
        ("rate_loss", "uncertainty_spread", "difficulty_head") if dmnn else ())
    return {name: getattr(config, name) for name in names if getattr(config, name) is not None}


def build_model(config, num_classes, input_shape, num_categories=0):
    """Builds `config.model` for a dataset.

    Args:
        config: a `TrainConfig` (reads model, groups, flops_target,
            forced_gate_rate, resource_loss_weight, stack_sizes,
            width_multiplier, seed).
        num_classes: int.
        input_shape: `(H, W, 3)`.
        num_categories: 0, or the category count for category supervision
            (gated models only).
    """
    entry = get_model_entry(config.model)
    kwargs = dict(num_classes=num_classes, input_shape=tuple(input_shape))
    if entry.gated:
        kwargs.update(flops_target=config.flops_target, seed=config.seed)
        if entry.multi_path:
            kwargs.update(groups=config.groups, num_categories=num_categories,
                          forced_gate_rate=config.forced_gate_rate)
            if entry.family == "resnet":
                kwargs["split"] = config.block_split
                if config.switchable_norms:
                    kwargs["switchable_norms"] = True
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
    return build(config.model, **kwargs)
