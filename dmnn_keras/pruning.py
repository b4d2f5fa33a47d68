"""`prune`: a pruning-mode gated model -> a physically smaller static Keras model."""

import keras
import numpy as np

from dmnn_keras.batch_norm import batch_norm_affine
from dmnn_keras.gate_decisions import ON_THRESHOLD
from dmnn_keras.layers.multi_path_block import MultiPathBlock
from dmnn_keras.layers.resource_loss import ResourceLoss


def _clone(layer, name=None, **overrides):
    config = layer.get_config()
    config.update(overrides)
    if name is not None:
        config["name"] = name
    return type(layer).from_config(config)


def _apply(layer, x, weights):
    y = layer(x)
    layer.set_weights([np.asarray(w, dtype="float32") for w in weights])
    return y


def _bias_add(x, constant, name):
    """`x + constant` (per channel) as a 1x1 depthwise convolution with unit kernel."""
    channels = int(x.shape[-1])
    layer = keras.layers.DepthwiseConv2D(1, use_bias=True, name=name)
    return _apply(layer, x, [np.ones((1, 1, channels, 1)), constant])


def _shortcut_plus(block, x, name, constant):
    """The block's shortcut of `x`, plus a per-channel constant (folded when possible)."""
    if block.shortcut is not None:
        conv, bn = block.shortcut
        y = _apply(_clone(conv, name + "_0_conv"), x, conv.get_weights())
        if constant is None:
            return _apply(_clone(bn, name + "_0_bn"), y, bn.get_weights())
        # BN beta absorbs the constant (a BN with center=False gets a beta).
        read = keras.ops.convert_to_numpy
        beta = (read(bn.beta) if bn.center else 0.0) + constant
        weights = [read(bn.gamma)] if bn.scale else []
        weights += [beta, read(bn.moving_mean), read(bn.moving_variance)]
        return _apply(_clone(bn, name + "_0_bn", center=True), y, weights)
    if constant is not None and np.any(constant != 0):
        return _bias_add(x, constant, name + "_bias")
    return x


def prune_channel_block(block, gates, x):
    """Static bottleneck with only the on filter groups of a `ChannelGatedBlock`."""
    name = block.name
    if block.layer_gate:
        raise ValueError(
            f"prune supports channel gating and AIG block gates. Received: {name} with a "
            "layer gate (LC-Net), which is input-dependent"
        )
    s1, s2 = block.segment_slices()
    g1, g2 = block.gate_groups
    k1, k2 = block.width // g1, block.width // g2
    idx1 = np.flatnonzero(np.repeat(gates[s1], k1) > ON_THRESHOLD)
    idx2 = np.flatnonzero(np.repeat(gates[s2], k2) > ON_THRESHOLD)
    constant = None
    if len(idx1) and len(idx2):
        w1 = block.conv1.get_weights()[0][..., idx1]
        y = _apply(_clone(block.conv1, name + "_1_conv", filters=len(idx1)), x, [w1])
        y = _apply(_clone(block.bn1, name + "_1_bn"), y, [w[idx1] for w in block.bn1.get_weights()])
        y = keras.layers.ReLU(name=name + "_1_relu")(y)
        w2 = block.conv2.get_weights()[0][:, :, idx1][..., idx2]
        y = _apply(_clone(block.conv2, name + "_2_conv", filters=len(idx2)), y, [w2])
        y = _apply(_clone(block.bn2, name + "_2_bn"), y, [w[idx2] for w in block.bn2.get_weights()])
        y = keras.layers.ReLU(name=name + "_2_relu")(y)
        w3 = block.conv3.get_weights()[0][:, :, idx2, :]
        y = _apply(_clone(block.conv3, name + "_3_conv"), y, [w3])
        branch = _apply(_clone(block.bn3, name + "_3_bn"), y, block.bn3.get_weights())
    else:
        # The branch is a constant map: no input channel reaches conv 3 (all conv-2
        # groups off: BN3(0)), or conv 2 sees only zeros (all conv-1 groups off:
        # its on channels are ReLU(BN2(0)), a constant that the 1x1 conv 3 maps
        # to a constant). Fold it into the shortcut.
        scale3, shift3 = batch_norm_affine(block.bn3, np.float64)
        pre3 = np.zeros(block.filters)
        if len(idx2):
            scale2, shift2 = batch_norm_affine(block.bn2, np.float64)
            channels2 = np.maximum(shift2, 0.0)[idx2]
            pre3 = channels2 @ block.conv3.get_weights()[0][0, 0][idx2].astype(np.float64)
        constant = (scale3 * pre3 + shift3).astype("float32")
        branch = None
    shortcut = _shortcut_plus(block, x, name, constant)
    out = shortcut if branch is None else keras.layers.Add(name=name + "_add")([shortcut, branch])
    return keras.layers.ReLU(name=name + "_out")(out)


def prune_multi_path_block(block, gates, x):
    """Static one-path `MultiPathBlock` (AIG): the path when its gate is on, else nothing."""
    name = block.name
    if block.groups != 1:
        raise ValueError(
            f"prune supports one-path blocks (AIG). Received: {name} with groups={block.groups}"
        )
    branch = None
    if gates is None or gates[0] > ON_THRESHOLD:
        branch = x
        for layer in block.paths[0]:
            sub = layer.name.split("_", 1)[1]  # path0_1_conv -> 1_conv
            branch = _apply(_clone(layer, f"{name}_{sub}"), branch, layer.get_weights())
    shortcut = _shortcut_plus(block, x, name, None) if block.has_shortcut else None
    if branch is None and shortcut is None:
        raise ValueError(f"{name} has no shortcut and its gate is off: nothing to output")
    if branch is None:
        out = shortcut
    elif shortcut is None:
        out = branch
    else:
        out = keras.layers.Add(name=name + "_add")([shortcut, branch])
    if block.kind == "bottleneck":
        out = keras.layers.ReLU(name=name + "_out")(out)
    return out


def prune(model):
    """A static Keras model with the off filters (or blocks) of a pruning-mode model removed.

    `model` must be a dmnn_keras model whose gates do not depend on the input:
    channel gating with `dependent=False` (`ChannelGatedResNet(dependent=False)`),
    AIG with `dependent=False` (whole blocks), or any such model after
    `force_gates`. In inference its gates are fixed, so every off group of
    filters is removed for good: its filters from the convolution that makes
    it, its BatchNorm channels, and the matching input channels of the next
    convolution. Because channel gates multiply post-ReLU activations, an off
    channel is exactly zero and contributes nothing. A constant is left only
    when a whole convolution is off (all of a block's conv-2 groups, or all
    its conv-1 groups); the residual branch is then a constant map, which is
    folded into the shortcut BatchNorm's beta (projection shortcuts) or a
    1x1 depthwise bias (identity shortcuts). Skipped AIG blocks become their
    shortcut.

    The result is a plain functional `keras.Model` (Conv2D, BatchNormalization,
    ReLU, Add, ... only; no gates, no resource loss) with the same inference
    outputs (up to float rounding), fewer parameters and fewer FLOPs; it
    exports with the static TFLite path. Layer names follow Keras
    applications: `{block}_1_conv`, `{block}_1_bn`, ..., `{block}_0_conv`
    (projection), `{block}_add`, `{block}_out`.

    Args:
        model: a gated dmnn_keras model with input-independent gates.

    Returns:
        `keras.Model` named `{model.name}_pruned`: images `[batch, H, W, 3]`
        -> logits `[batch, num_classes]`, as `model` in inference.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.force_gates(dk.ChannelGatedResNet(dependent=False), 0.5)
    static = dk.prune(model)
    images = np.random.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.allclose(static(images), model(images), atol=1e-3)  # True
    dk.profile(static)["flops"] < dk.profile(model)["flops"]  # True
    ```
    """
    controllers = {c.name: c for c in getattr(model, "controllers", [])}
    if not controllers:
        raise ValueError(
            f"prune needs a gated dmnn_keras model. Received: {type(model).__name__} "
            f"named {model.name!r} without gate controllers"
        )
    from dmnn_keras.methods import get_method  # the methods import this module's block rules

    method = get_method(model.gating)
    for controller in controllers.values():
        if not method.input_independent(controller):
            raise ValueError(
                "prune needs input-independent gates (pruning mode: dependent=False, or "
                f"force_gates). Received: {controller.name} ({type(controller).__name__}) "
                "whose gates depend on the input"
            )
    inputs = keras.Input(shape=model.inputs[0].shape[1:], dtype=model.inputs[0].dtype,
                         name=model.inputs[0].name)
    tensors = {id(model.inputs[0]): inputs}

    def mapped(tensor, layer):
        if id(tensor) not in tensors:
            raise ValueError(
                f"prune supports chain-shaped models (each layer fed by the previous one). "
                f"Received: layer {layer.name!r} fed by an unsupported tensor"
            )
        return tensors[id(tensor)]

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer.name in controllers:
            continue
        if isinstance(layer, ResourceLoss):
            tensors[id(layer.output)] = mapped(layer.input[0], layer)
        elif getattr(layer, "gated", False):
            gates = controllers[layer.name + "_gate"].static_gates()
            tensors[id(layer.output)] = method.prune_block(
                layer, gates, mapped(layer.input[0], layer)
            )
        elif isinstance(layer, MultiPathBlock):
            tensors[id(layer.output)] = prune_multi_path_block(
                layer, None, mapped(layer.input, layer)
            )
        else:
            if isinstance(layer.input, (list, tuple)):
                raise ValueError(
                    f"prune supports chain-shaped models. Received: layer {layer.name!r} "
                    f"with {len(layer.input)} inputs"
                )
            clone = _clone(layer)
            tensors[id(layer.output)] = _apply(clone, mapped(layer.input, layer), layer.get_weights())
    output = model.outputs[0]
    return keras.Model(inputs, mapped(output, model), name=model.name + "_pruned")
