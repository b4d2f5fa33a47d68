"""Warm start: a DMNN built from a trained static network, every weight copied where it has a place."""

import keras
import numpy as np

from dmnn_keras.batch_norm import recentre_batch_norm
from dmnn_keras.gates import first_batches
from dmnn_keras.keras_compat import nested_layers
from dmnn_keras.layers.channel_gated_block import ChannelGatedBlock
from dmnn_keras.layers.gumbel_gate import GumbelGate
from dmnn_keras.layers.multi_path_block import MultiPathBlock
from dmnn_keras.layers.resource_loss import ResourceLoss
from dmnn_keras.methods import GatingConfig
from dmnn_keras.models.early_exit import EarlyExitModel
from dmnn_keras.models.gating import DIFFICULTY_SUFFIX

# How each sub-block layer takes its part of the static block's layer (by name suffix):
# "out" slices output channels, "in" input channels, "in_out" both (the 3x3's diagonal block),
# "channels" a per-channel layer, "depthwise" a depthwise kernel's channels, and "sum" is the
# BatchNorm after the sub-blocks' last convolution, whose outputs are summed.
PATH_SLICES = {
    "1_conv": "out", "1_bn": "channels", "2_conv": "in_out", "2_bn": "channels",
    "3_conv": "in", "3_bn": "sum",
    "expand": "out", "expand_bn": "channels", "depthwise": "depthwise",
    "depthwise_bn": "channels", "project": "in", "project_bn": "sum",
}


def _path_role(layer, j):
    prefix = f"path{j}_"
    return PATH_SLICES.get(layer.name[len(prefix):]) if layer.name.startswith(prefix) else None


def _sliced(weights, role, part, groups):
    """The part `part` of `groups` of a static layer's weights for one sub-block."""
    def piece(array, axis):
        size = array.shape[axis] // groups
        index = [slice(None)] * array.ndim
        index[axis] = slice(part * size, (part + 1) * size)
        return array[tuple(index)]

    if role == "out":
        return [piece(weights[0], -1)]
    if role == "in":
        return [piece(weights[0], -2)]
    if role == "in_out":
        return [piece(piece(weights[0], -1), -2)]
    if role == "depthwise":
        return [piece(weights[0], -2)]
    if role == "channels":
        return [piece(w, 0) for w in weights]
    # "sum": every sub-block's BN keeps gamma and variance, and takes 1/groups of beta and mean,
    # so that the sum of the sub-blocks' BN outputs is the static BN of the summed convolutions.
    gamma, beta, mean, variance = weights
    return [gamma, beta / groups, mean / groups, variance]


def copy_static_block(static_block, block):
    """Copies a static `MultiPathBlock` (one path) into the `groups` sub-blocks of `block`.

    The sub-blocks must partition the static block's inner channels
    (`path_width * groups == static path_width`): sub-block j takes the j-th
    slice of the first convolution's output channels, the j-th diagonal block
    of a dense 3x3 (the off-diagonal blocks have no place and are dropped),
    the j-th slice of the depthwise kernel and of the last convolution's
    input channels, and the per-channel BatchNorms' slices. The BatchNorm
    after the last convolution is shared out so that, in inference with every
    sub-block on, the block computes exactly the static block when the
    dropped 3x3 blocks are zero (always, for MobileNetV2).
    """
    if static_block.groups != 1 or static_block.kind != block.kind:
        raise ValueError(
            f"Block {block.name!r}: the static model's block must be a one-path {block.kind!r} "
            f"block. Received: groups={static_block.groups}, kind={static_block.kind!r}"
        )
    if block.path_width * block.groups != static_block.path_width:
        raise ValueError(
            f"Block {block.name!r}: {block.groups} sub-blocks of width {block.path_width} do not "
            f"partition the static block's width {static_block.path_width}. Build the DMNN with "
            "split='partition' (dmnn_keras.from_static does)."
        )
    for j, path in enumerate(block.paths):
        for static_layer, layer in zip(static_block.paths[0], path):
            role = _path_role(layer, j)
            if role is None:
                continue
            layer.set_weights(_sliced(static_layer.get_weights(), role, j, block.groups))
    for static_layer, layer in zip(static_block.shortcut or (), block.shortcut or ()):
        layer.set_weights(static_layer.get_weights())


# The layer of a `ChannelGatedBlock` that takes each layer of a static bottleneck's path.
CROSS_LAYERS = {"1_conv": "conv1", "1_bn": "bn1", "2_conv": "conv2", "2_bn": "bn2",
                "3_conv": "conv3", "3_bn": "bn3"}


def copy_static_block_whole(static_block, block):
    """Copies a static bottleneck `MultiPathBlock` (one path) into a `ChannelGatedBlock` unchanged.

    With every gate on, `block` then computes exactly the static block (the
    DMNN's `split="cross"`).
    """
    if static_block.groups != 1 or static_block.kind != "bottleneck" or (
            block.width != static_block.path_width):
        raise ValueError(
            f"Block {block.name!r}: the static model's block must be a one-path bottleneck of "
            f"width {block.width}. Received: groups={static_block.groups}, "
            f"kind={static_block.kind!r}, width={static_block.path_width}"
        )
    for static_layer in static_block.paths[0]:
        name = static_layer.name[len("path0_"):]
        if name in CROSS_LAYERS:
            layer = getattr(block, CROSS_LAYERS[name])
            for target in getattr(layer, "norms", [layer]):  # a SwitchableBatchNorm: every set
                target.set_weights(static_layer.get_weights())
    for static_layer, layer in zip(static_block.shortcut or (), block.shortcut or ()):
        layer.set_weights(static_layer.get_weights())


def copy_static_weights(static_model, model):
    """Copies every weight of `static_model` that has a place in `model` (matched by layer name).

    Blocks go through `copy_static_block` (`copy_static_block_whole` for the
    `ChannelGatedBlock`s of `split="cross"`); other layers (stem, shortcuts,
    head) must have the same weight shapes. The gate controllers and the
    resource loss have no static counterpart and keep their initial values.

    Args:
        static_model: a trained static model (e.g. `dmnn_keras.ResNet()`).
        model: a model of the same architecture whose blocks partition the
            static ones (see `copy_static_block`).

    Returns:
        the names of the layers copied.

    Example:
    ```python
    import dmnn_keras as dk
    static = dk.ResNet()
    model = dk.DMNNResNet(groups=4, split="partition")
    dk.copy_static_weights(static, model)[:3]  # ['conv1_conv', 'conv1_bn', 'conv2_block1']
    ```

    Raises:
        ValueError: a layer with weights of other shapes (e.g. a different
            number of classes), or a block that cannot take the static one.
    """
    static_layers = {layer.name: layer for layer in static_model.layers}
    copied = []
    for layer in model.layers:
        static = static_layers.get(layer.name)
        if static is None or not static.weights:
            continue
        if isinstance(layer, MultiPathBlock) and isinstance(static, MultiPathBlock):
            copy_static_block(static, layer)
        elif isinstance(layer, ChannelGatedBlock) and isinstance(static, MultiPathBlock):
            copy_static_block_whole(static, layer)
        else:
            shapes = [tuple(w.shape) for w in layer.get_weights()]
            static_shapes = [tuple(w.shape) for w in static.get_weights()]
            if shapes != static_shapes:
                raise ValueError(
                    f"Layer {layer.name!r} has weights of shapes {shapes}, the static model's "
                    f"{static_shapes}: the two models must share the architecture (and the "
                    "number of classes)."
                )
            layer.set_weights(static.get_weights())
        copied.append(layer.name)
    return copied


def rebalance_sub_blocks(model, images, batches=10, batch_size=128):
    """Centres each sub-block's BatchNorms on the statistics it really sees, keeping inference.

    After `copy_static_block`, a dense 3x3 lost its off-diagonal blocks, so
    the BatchNorm after it no longer sees the static statistics; and the
    BatchNorm after each sub-block's last convolution holds a share of the
    static one, whose training-mode batch statistics would rescale every
    sub-block. For each gated block in order, this measures on `images` (in
    inference, every sub-block run) the statistics entering each sub-block's
    BatchNorms and re-centres them with `recentre_batch_norm`: the network's
    inference function is unchanged, and training starts from it.

    Args:
        model: a DMNN after `copy_static_weights`.
        images: array or dataset of training images (see `predict_gates`).
        batches: number of batches measured.
        batch_size: batch size for arrays.
    """
    data = first_batches(images, batches, batch_size)
    for _, block in getattr(model, "gated_blocks", []):
        if not isinstance(block, MultiPathBlock):
            continue
        probe = keras.Model(model.inputs[0], block.input[0])  # called with a tensor, not a list
        inputs = [probe(x, training=False) for x in data]
        for j, path in enumerate(block.paths):
            for index, layer in enumerate(path):
                if not isinstance(layer, keras.layers.BatchNormalization):
                    continue
                moments = []
                for x in inputs:
                    y = block.path_input(x, j)
                    for before in path[:index]:
                        y = before(y, training=False)
                    y = keras.ops.convert_to_numpy(y).reshape(-1, y.shape[-1]).astype(np.float64)
                    moments.append((y.mean(0), (y ** 2).mean(0)))
                mean = np.mean([m for m, _ in moments], axis=0)
                variance = np.maximum(np.mean([s for _, s in moments], axis=0) - mean ** 2, 0.0)
                recentre_batch_norm(layer, mean, variance)


def from_static(static_model, groups=4, flops_target=0.5, calibration_images=None,
                calibration_batches=10, split="partition", **kwargs):
    """A DMNN built from a trained static `DynamicResNet` / `DynamicMobileNetV2`, warm-started.

    Builds the same architecture with `gating="dmnn"` and sub-blocks that
    partition every block (`split="partition"` for ResNets, or `"cross"`,
    whose all-on network is the static one; MobileNetV2's sub-blocks always
    partition), copies every weight with `copy_static_weights`,
    and, given `calibration_images`, re-centres the sub-blocks' BatchNorms
    (`rebalance_sub_blocks`). With every gate on, the DMNN then computes the
    static network with its 3x3 convolutions reduced to their `groups`
    diagonal blocks (exactly the static network when those are zero, or
    for MobileNetV2; with `split="cross"`, exactly the static network). Gates
    start mostly on (controller bias 2.0).

    Args:
        static_model: a static model of this library (`gating=None`, groups 1).
        groups: sub-blocks per block, an int or one per stage.
        flops_target: the DMNN's target FLOPs ratio (it replaces the one of
            a `gating_config` in `kwargs`).
        calibration_images: None, or training images (array or dataset) for
            `rebalance_sub_blocks`.
        calibration_batches: batches measured by `rebalance_sub_blocks`.
        split: a ResNet's split, "partition" or "cross".
        **kwargs: other arguments of the DMNN builder (e.g. `dual_step`,
            `resource_loss_weight`, `seed`, or them all as `gating_config`).

    Returns:
        the DMNN (`DynamicResNet` or `DynamicMobileNetV2`), same inputs
        `[batch, H, W, 3]` and logits `[batch, num_classes]` as the static model.

    Example:
    ```python
    import dmnn_keras as dk
    static = dk.ResNet()  # a trained static twin in practice (width 16 in stage 1)
    model = dk.from_static(static, groups=4, flops_target=0.5)
    model.get_layer("conv2_block1").path_width  # 4
    ```
    """
    from dmnn_keras.models.mobilenet_v2 import DynamicMobileNetV2
    from dmnn_keras.models.resnet import DynamicResNet

    if not isinstance(static_model, (DynamicResNet, DynamicMobileNetV2)):
        raise ValueError(
            "static_model must be a DynamicResNet or DynamicMobileNetV2 of this library. "
            f"Received: {type(static_model).__name__}"
        )
    config = static_model.get_config()
    if config.get("gating") is not None:
        raise ValueError(
            f"static_model must be static (gating=None). Received: gating={config['gating']!r}"
        )
    config.pop("name", None)
    config.pop("trainable", None)
    gating_config = kwargs.pop("gating_config", None)
    if gating_config is not None:  # replaces the static model's gating fields
        config.update(GatingConfig.coerce(gating_config).get_config())
    config.update(gating="dmnn", groups=groups, flops_target=flops_target, **kwargs)
    if split not in ("partition", "cross"):
        raise ValueError("split must be 'partition' or 'cross' (the splits a static block's "
                         f"weights have a place in). Received: split={split!r}")
    if isinstance(static_model, DynamicResNet):
        config["split"] = split
    elif split != "partition":
        raise ValueError("split='cross' is for ResNets; a MobileNetV2's sub-blocks partition its "
                         f"blocks. Received: split={split!r} for a {type(static_model).__name__}")
    model = type(static_model)(**config)
    copy_static_weights(static_model, model)
    if calibration_images is not None:
        rebalance_sub_blocks(model, calibration_images, calibration_batches)
    return model


HEAD_LAYER = "predictions"


def _is_class_head(layer_name):
    """Whether a layer has one output per class: the classifier, or a DMNN's difficulty head."""
    return layer_name == HEAD_LAYER or layer_name.endswith(DIFFICULTY_SUFFIX)


# Layers whose weights are training state that starts over with every run instead of being
# copied: the resource loss's target and Lagrange multiplier, the gates' temperature and noise.
RUN_STATE_LAYERS = (ResourceLoss, GumbelGate)


def start_from(init_from, num_classes, input_shape, groups=4, flops_target=0.5,
               calibration_images=None, calibration_batches=10, split="partition", **kwargs):
    """The DMNN a training run starts from: a trained model of this library, fitted to new data.

    `init_from` is built again for `num_classes` classes and `input_shape`
    images, and every weight is copied except the classification head
    (`predictions`) when the class count differs: that head starts freshly
    initialised, and so does a DMNN's difficulty head (`{block}_difficulty`,
    one logit per class; its controllers read it from the first step and the
    run trains it with the labels). Then a static model becomes a DMNN
    through `from_static` (`groups`, `flops_target`, the calibration and
    `kwargs`); a DMNN keeps its architecture, gates and controllers (and
    category heads), takes
    `flops_target` and `kwargs` (e.g. `resource_loss_weight`, `seed`), and
    starts its run state over (resource-loss target and multiplier, gate
    temperature and noise scale). A DMNN trained with forced gates that
    `kwargs` free (`forced_gate_rate=None`, e.g. pre-trained all-on) starts
    its controllers fresh too: they never took part in training.

    Args:
        init_from: a trained `DynamicResNet` / `DynamicMobileNetV2` with its
            classification head (static or DMNN).
        num_classes: classes of the new data.
        input_shape: `(H, W, 3)` of the new data.
        groups, flops_target, calibration_images, calibration_batches, split:
            as in `from_static` (they apply to static models).
        **kwargs: other arguments of the DMNN builder; `num_categories` is
            ignored for a DMNN (it keeps its controllers).

    Returns:
        `(model, replaced)`: the DMNN, and `{layer name: "old shapes -> new
        shapes"}` of the layers made new (empty when the class count is the same).

    Example:
    ```python
    import dmnn_keras as dk
    from dmnn_keras.warm_start import start_from
    model, replaced = start_from(dk.DMNNResNet(num_classes=10), 3, (32, 32, 3))
    replaced  # {'predictions': '[(512, 10), (10,)] -> [(512, 3), (3,)]'}
    model.output_shape  # (None, 3)
    ```
    """
    head = {layer.name: layer for layer in init_from.layers}.get(HEAD_LAYER)
    if not hasattr(init_from, "get_config") or not isinstance(head, keras.layers.Dense):
        raise ValueError(
            f"init_from must be a model of this library with its classification head "
            f"({HEAD_LAYER!r}) to fine-tune on {num_classes} classes. Received: "
            f"{type(init_from).__name__} {init_from.name!r} without one"
        )
    config = init_from.get_config()
    static = config.get("gating") is None
    changes = dict(num_classes=int(num_classes), input_shape=tuple(input_shape))
    if not static:
        kwargs.pop("num_categories", None)
        changes.update(flops_target=flops_target, **kwargs)
    # Controllers trained under forced gates never decided anything (weight decay only shrank
    # them): a run that frees the gates starts them fresh, as from a static model.
    freed = (config.get("forced_gate_rate") is not None and "forced_gate_rate" in changes
             and changes["forced_gate_rate"] is None)
    model, replaced = _rebuild(init_from, changes, fresh_controllers=freed)
    if static:
        model = from_static(model, groups, flops_target, calibration_images, calibration_batches,
                            split=split, **kwargs)
    return model, replaced


def start_exits_from(init_from, exits, num_classes, input_shape, exit_loss_weight=1.0):
    """The early-exit network a training run starts from: a trained model of this library, fitted to new data.

    The static network (`init_from` itself, or an `EarlyExitModel`'s
    backbone) is built again for `num_classes` classes and `input_shape`
    images with every weight copied, except the classifier (`predictions`)
    when the class count differs: it starts freshly initialised. Exits go
    after the blocks `exits`; an early-exit `init_from` keeps its exit grid
    and confidence threshold, and its heads on the same blocks keep their
    weights unless the class count differs (then they start fresh too, and
    are listed in `replaced`).

    Args:
        init_from: a trained static `DynamicResNet` / `DynamicMobileNetV2`
            with its classification head, or an `EarlyExitModel` on one.
        exits: the blocks to put exits after (as `EarlyExitModel`'s `exits`).
        num_classes: classes of the new data.
        input_shape: `(H, W, 3)` of the new data.
        exit_loss_weight: as in `EarlyExitModel`.

    Returns:
        `(model, replaced)`: the `EarlyExitModel`, and `{layer name: "old
        shapes -> new shapes"}` of the class heads made new.

    Example:
    ```python
    import dmnn_keras as dk
    from dmnn_keras.warm_start import start_exits_from
    static = dk.ResNet(stack_sizes=(1, 1, 1, 1), width_multiplier=0.25, num_classes=10)
    model, replaced = start_exits_from(static, ("conv3_block1",), 3, (32, 32, 3))
    replaced  # {'predictions': '[(512, 10), (10,)] -> [(512, 3), (3,)]'}
    ```
    """
    grid, threshold, heads = 2, 0.9, {}
    if isinstance(init_from, EarlyExitModel):
        config = init_from.get_config()
        grid, threshold = config["grid"], init_from.confidence_threshold
        heads = {name: init_from.get_layer(name) for name in init_from.exit_names}
        backbone = keras.saving.deserialize_keras_object(config["backbone"])
        for layer in backbone.layers:  # the exit model shares its backbone's layers
            layer.set_weights(init_from.get_layer(layer.name).get_weights())
        init_from = backbone
    static = {layer.name: layer for layer in init_from.layers}.get(HEAD_LAYER)
    if not hasattr(init_from, "get_config") or getattr(init_from, "gated_blocks", None) or \
            not isinstance(static, keras.layers.Dense):
        raise ValueError(
            f"init_from must be a static model of this library with its classification head "
            f"({HEAD_LAYER!r}), or an early-exit model on one, to put exits on. Received: "
            f"{type(init_from).__name__} {init_from.name!r}"
        )
    backbone, replaced = _rebuild(
        init_from, dict(num_classes=int(num_classes), input_shape=tuple(input_shape)))
    model = EarlyExitModel(backbone, exits=exits, grid=grid, exit_loss_weight=exit_loss_weight,
                           confidence_threshold=threshold)
    for name in model.exit_names:
        old, new = heads.get(name), model.get_layer(name)
        if old is None:
            continue
        shapes = [tuple(w.shape) for w in old.weights], [tuple(w.shape) for w in new.weights]
        if shapes[0] == shapes[1]:
            new.set_weights(old.get_weights())
        else:
            replaced[name] = f"{shapes[0]} -> {shapes[1]}"
    return model, replaced


def with_classes(model, num_classes):
    """`model` built again for `num_classes` classes: keras-hub's `from_preset(..., num_classes=n)`.

    Every weight is copied except those of the class heads (the classifier,
    a DMNN's difficulty head, an early-exit model's exit heads), which start
    freshly initialised when the class count differs. A DMNN's run state
    starts over, as in `start_from`.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1. Received: num_classes={num_classes!r}")
    if isinstance(model, EarlyExitModel):
        config = model.get_config()
        return start_exits_from(model, config["exits"], num_classes, tuple(model.input_shape[1:]),
                                config["exit_loss_weight"])[0]
    return _rebuild(model, dict(num_classes=num_classes))[0]


def _rebuild(model, changes, fresh_controllers=False):
    """`model` built from its config with `changes`; copies every weight that still fits.

    With `fresh_controllers`, the gate controllers keep their initial
    weights. Returns `(new_model, {layer name: "old shapes -> new shapes"})`;
    a layer other than a class head (`_is_class_head`) whose weights do not
    fit is a ValueError.
    """
    config = {k: v for k, v in model.get_config().items() if k not in ("name", "trainable")}
    new = type(model)(**{**config, **changes})
    old = {v.path: v for v in model.weights}
    run_state = {id(v) for layer in nested_layers(new) if isinstance(layer, RUN_STATE_LAYERS)
                 for v in layer.weights}
    if fresh_controllers:
        run_state |= {id(v) for layer in new.controllers for v in layer.weights}
    shapes = {}
    for variable in new.weights:
        if id(variable) in run_state:
            continue
        source = old.get(variable.path)
        layer = variable.path.split("/")[0]
        if source is not None and tuple(source.shape) == tuple(variable.shape):
            variable.assign(source)
            continue
        if not _is_class_head(layer):
            raise ValueError(
                f"init_from must have the architecture it is built again with: weight "
                f"{variable.path!r} has shape {None if source is None else tuple(source.shape)}, "
                f"needed {tuple(variable.shape)}. Received: changes {changes}"
            )
        shapes[layer] = (
            [tuple(w.shape) for w in model.get_layer(layer).weights],
            [tuple(w.shape) for w in new.get_layer(layer).weights],
        )
    return new, {name: f"{old} -> {new}" for name, (old, new) in shapes.items()}
