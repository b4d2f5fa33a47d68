"""Re-implementing a Keras model's inference pass as a plain TensorFlow graph.

The exported graph never reads a Keras variable: every weight becomes a
`tf.constant` created from numpy *where it is used*. In `mode="dynamic"` each
gated sub-block runs inside `tf.cond` on its gate and creates its weights
inside the branch function, so the TFLite converter turns it into an `IF` op
whose branch subgraph holds its own constant weights (XNNPACK delegates such
branches; captured variables would become subgraph inputs that XNNPACK cannot
delegate, ~5x slower, measured). The else branch passes the running sum
through (`cond(g, lambda: acc + path(x), lambda: acc)`), which adds no
constant to the file (an else branch returning `zeros_like` did: 3.7x).

BatchNorm that directly follows a convolution (and is its only consumer) is
folded into it: `kernel * gamma / sqrt(var + eps)` and a bias.

Converters: a registry keyed by layer class (looked up along the MRO). A
converter is `fn(layer, inputs, ctx) -> tensor or list of tensors`, one per
output of the layer's node in the functional graph (trailing outputs that
inference does not need, such as category heads, may be omitted). Register a
new gating method's layers with::

    from dmnn_keras.export import register_converter

    @register_converter(MyGateLayer)
    def _convert_my_gate(layer, inputs, ctx):
        x = inputs[0]
        ...                              # plain TF ops, weights via ctx.const()
        return [gates, other_output]

    @register_converter(MyGatedBlock)
    def _convert_my_block(layer, inputs, ctx):
        x, gates = inputs
        ctx.record_gates(layer, gates)   # -> "gates" / "executed_flops" outputs
        if ctx.dynamic:
            ...                          # tf.cond per gate, weights created
                                         # inside the branch functions
        ...

`ctx.record_gates(layer, gates)` expects `layer.compute_flops()` to return
`{"always_on": MACs, "paths": [MACs per gate]}` and `gates` `[1, len(paths)]`;
the executed FLOPs are then `always_on + sum_l gates_l . paths_l`
(`dmnn_keras.flops.executed_flops`, as in `dmnn_keras.profile`). `ctx.fold_next_bn(conv_layer)` gives the
folded (kernel, bias) of a convolution and the BatchNorm after it.
"""

import keras
import numpy as np
import tensorflow as tf

from dmnn_keras.batch_norm import batch_norm_affine
from dmnn_keras.flops import executed_flops, model_flops_table
from dmnn_keras.gate_decisions import ON_THRESHOLD, forced_pattern, hard_gates
from dmnn_keras.layers.gate_controller import GateController
from dmnn_keras.layers.multi_path_block import MultiPathBlock
from dmnn_keras.layers.resource_loss import ResourceLoss

MODES = ("dynamic", "static")

_CONVERTERS = {}


def register_converter(layer_class):
    """Decorator: `fn(layer, inputs, ctx)` converts layers of `layer_class` (and subclasses)."""

    def decorator(fn):
        _CONVERTERS[layer_class] = fn
        return fn

    return decorator


def get_converter(layer):
    """The converter registered for the layer's class or its nearest base class, or None."""
    for cls in type(layer).__mro__:
        if cls in _CONVERTERS:
            return _CONVERTERS[cls]
    return None


def registered_layer_classes():
    """The layer classes that have a converter."""
    return tuple(_CONVERTERS)


# === Helpers on numpy weights ===


def _np(variable):
    with tf.init_scope():  # read the weight eagerly, even while a tf.function traces
        return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def bn_scale_shift(bn):
    """BatchNorm in inference as `x * scale + shift` (float32 numpy, per channel; see
    `batch_norm_affine`), read eagerly even while a tf.function traces."""
    with tf.init_scope():
        return batch_norm_affine(bn, np.float32)


def folded_conv_weights(conv, bn=None):
    """(kernel, bias or None) of a Conv2D/DepthwiseConv2D with `bn` folded in."""
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        kernel = _np(conv.kernel)  # [kh, kw, C, mult]
    else:
        kernel = _np(conv.kernel)  # [kh, kw, Cin/groups, Cout]
    bias = _np(conv.bias) if conv.use_bias else None
    if bn is None:
        return kernel, bias
    scale, shift = bn_scale_shift(bn)
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        k = kernel.shape
        kernel = (kernel.reshape(k[0], k[1], -1) * scale).reshape(k)
    else:
        kernel = kernel * scale
    bias = shift if bias is None else bias * scale + shift
    return kernel.astype(np.float32), bias.astype(np.float32)


def _check_channels_last(layer):
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ValueError(
            f"Export supports channels_last only. Received: layer {layer.name!r} with "
            f"data_format={layer.data_format!r}"
        )


def apply_conv(x, conv, bn=None):
    """A Conv2D / DepthwiseConv2D (+ folded BN, + its activation) with constant weights.

    Call it inside a `tf.cond` branch function to keep the weights inside the branch.
    """
    _check_channels_last(conv)
    kernel, bias = folded_conv_weights(conv, bn)
    strides = (1,) + tuple(conv.strides) + (1,)
    padding = conv.padding.upper()
    dilations = tuple(conv.dilation_rate)
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        y = tf.nn.depthwise_conv2d(
            x, tf.constant(kernel), strides, padding,
            dilations=dilations if max(dilations) > 1 else None,
        )
    else:
        if getattr(conv, "groups", 1) != 1:
            raise ValueError(
                f"Export does not support grouped Conv2D. Received: layer {conv.name!r} "
                f"with groups={conv.groups}"
            )
        y = tf.nn.conv2d(x, tf.constant(kernel), strides, padding, dilations=dilations)
    if bias is not None:
        y = tf.nn.bias_add(y, tf.constant(bias))
    return apply_activation(y, conv.activation) if bn is None else y


def apply_activation(y, activation):
    """A Keras activation function on a TF tensor (the common ones as TFLite-fusable ops)."""
    name = getattr(activation, "__name__", "")
    if name == "linear":
        return y
    if name == "relu":
        return tf.nn.relu(y)
    if name == "relu6":
        return tf.nn.relu6(y)
    if name == "sigmoid":
        return tf.sigmoid(y)
    if name == "softmax":
        return tf.nn.softmax(y)
    return activation(y)


def apply_relu_layer(y, layer):
    """A `keras.layers.ReLU` (max_value, negative_slope, threshold)."""
    max_value = None if layer.max_value is None else float(layer.max_value)
    if float(layer.negative_slope) == 0.0 and float(layer.threshold) == 0.0:
        if max_value is None:
            return tf.nn.relu(y)
        if max_value == 6.0:
            return tf.nn.relu6(y)
        return tf.clip_by_value(y, 0.0, max_value)
    return keras.activations.relu(
        y, negative_slope=layer.negative_slope, max_value=layer.max_value,
        threshold=layer.threshold,
    )


def apply_sequence(x, sequence):
    """Plain layers one after another (Conv+BN folded), for sub-blocks."""
    i = 0
    while i < len(sequence):
        layer = sequence[i]
        nxt = sequence[i + 1] if i + 1 < len(sequence) else None
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            if isinstance(nxt, keras.layers.BatchNormalization):
                x = apply_conv(x, layer, nxt)
                i += 2
                continue
            x = apply_conv(x, layer)
        elif isinstance(layer, keras.layers.BatchNormalization):
            scale, shift = bn_scale_shift(layer)
            x = x * tf.constant(scale) + tf.constant(shift)
        elif isinstance(layer, keras.layers.ReLU):
            x = apply_relu_layer(x, layer)
        else:
            converter = get_converter(layer)
            if converter is None:
                raise ValueError(f"No export converter for sublayer {layer.name!r} ({type(layer).__name__})")
            x = _single(converter(layer, [x], None))
        i += 1
    return x


def _single(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


# === Context ===


class ExportContext:
    """State shared by converters while one model is traced.

    Attributes:
        mode: "dynamic" or "static".
        dynamic: `mode == "dynamic"`.
        gates: list of `(layer, gates [1, G])` recorded by gated blocks, in order.
    """

    def __init__(self, mode, folded_bns):
        self.mode = mode
        self.dynamic = mode == "dynamic"
        self.gates = []
        self._folded_bns = folded_bns  # conv name -> BN layer folded into it

    def record_gates(self, layer, gates):
        """Registers the gates `[1, G]` a gated layer executed (for the outputs)."""
        self.gates.append((layer, gates))

    def fold_next_bn(self, conv):
        """The BatchNorm layer folded into `conv` (None if none)."""
        return self._folded_bns.get(conv.name)

    @staticmethod
    def const(array):
        """A float32 `tf.constant` (create it where it is used, e.g. inside a branch)."""
        return tf.constant(np.asarray(array, dtype=np.float32))


# === Converters of plain Keras layers ===


@register_converter(keras.layers.InputLayer)
def _convert_input(layer, inputs, ctx):
    return inputs


@register_converter(keras.layers.Normalization)
def _convert_normalization(layer, inputs, ctx):
    if layer.invert:
        raise ValueError(f"Export does not support Normalization(invert=True): {layer.name!r}")
    mean = _np(layer.mean)
    std = np.maximum(np.sqrt(_np(layer.variance)), keras.backend.epsilon())
    return (inputs[0] - tf.constant(mean)) / tf.constant(std.astype(np.float32))


@register_converter(keras.layers.Rescaling)
def _convert_rescaling(layer, inputs, ctx):
    return inputs[0] * float(layer.scale) + float(layer.offset)


@register_converter(keras.layers.Conv2D)
def _convert_conv(layer, inputs, ctx):
    bn = ctx.fold_next_bn(layer) if ctx is not None else None
    return apply_conv(inputs[0], layer, bn)


@register_converter(keras.layers.BatchNormalization)
def _convert_bn(layer, inputs, ctx):
    if ctx is not None and any(bn is layer for bn in ctx._folded_bns.values()):
        return inputs[0]  # already folded into the convolution before it
    if layer.axis not in (-1, len(layer.input.shape) - 1):
        raise ValueError(f"Export supports channels-last BatchNormalization only: {layer.name!r}")
    scale, shift = bn_scale_shift(layer)
    return inputs[0] * tf.constant(scale) + tf.constant(shift)


@register_converter(keras.layers.ReLU)
def _convert_relu(layer, inputs, ctx):
    return apply_relu_layer(inputs[0], layer)


@register_converter(keras.layers.Activation)
def _convert_activation(layer, inputs, ctx):
    return apply_activation(inputs[0], layer.activation)


@register_converter(keras.layers.MaxPooling2D)
def _convert_max_pool(layer, inputs, ctx):
    _check_channels_last(layer)
    return tf.nn.max_pool2d(inputs[0], layer.pool_size, layer.strides, layer.padding.upper())


@register_converter(keras.layers.AveragePooling2D)
def _convert_avg_pool(layer, inputs, ctx):
    _check_channels_last(layer)
    return tf.nn.avg_pool2d(inputs[0], layer.pool_size, layer.strides, layer.padding.upper())


@register_converter(keras.layers.GlobalAveragePooling2D)
def _convert_gap(layer, inputs, ctx):
    _check_channels_last(layer)
    return global_average_pool(inputs[0], keepdims=bool(layer.keepdims))


def global_average_pool(x, keepdims=False):
    """Mean over H and W of `[N, H, W, C]`: `[N, C]` (or `[N, 1, 1, C]` with keepdims).

    With static H and W it is an AVERAGE_POOL_2D over the whole map, which XNNPACK
    runs faster than TFLite's MEAN (benchmarks/tflite_block_cost.py); the gate
    controllers pool every block's input, so this is on the critical path.
    """
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        return tf.reduce_mean(x, axis=[1, 2], keepdims=keepdims)
    pooled = tf.nn.avg_pool2d(x, [height, width], 1, "VALID")
    return pooled if keepdims else tf.reshape(pooled, [-1, x.shape[3]])


@register_converter(keras.layers.GlobalMaxPooling2D)
def _convert_gmp(layer, inputs, ctx):
    _check_channels_last(layer)
    return tf.reduce_max(inputs[0], axis=[1, 2], keepdims=bool(layer.keepdims))


@register_converter(keras.layers.Dense)
def _convert_dense(layer, inputs, ctx):
    return dense(inputs[0], layer)


def dense(x, layer):
    """A Keras Dense layer (2D input) with constant weights."""
    y = tf.matmul(x, tf.constant(_np(layer.kernel)))
    if layer.use_bias:
        y = y + tf.constant(_np(layer.bias))
    return apply_activation(y, layer.activation)


@register_converter(keras.layers.Flatten)
def _convert_flatten(layer, inputs, ctx):
    return tf.reshape(inputs[0], [tf.shape(inputs[0])[0], -1])


@register_converter(keras.layers.Dropout)
def _convert_identity(layer, inputs, ctx):
    return inputs[0]


@register_converter(keras.layers.Add)
def _convert_add(layer, inputs, ctx):
    return tf.add_n(list(inputs))


@register_converter(keras.layers.Multiply)
def _convert_multiply(layer, inputs, ctx):
    out = inputs[0]
    for t in inputs[1:]:
        out = out * t
    return out


@register_converter(keras.layers.Concatenate)
def _convert_concatenate(layer, inputs, ctx):
    return tf.concat(list(inputs), axis=layer.axis)


@register_converter(keras.layers.ZeroPadding2D)
def _convert_zero_padding(layer, inputs, ctx):
    (top, bottom), (left, right) = layer.padding
    return tf.pad(inputs[0], [[0, 0], [top, bottom], [left, right], [0, 0]])


# === Converters of dmnn_keras layers ===


@register_converter(ResourceLoss)
def _convert_resource_loss(layer, inputs, ctx):
    return inputs[0]  # training-only: the loss; passes the logits through


def controller_gates(layer, logits):
    """Deterministic inference gates `[batch, G]` of a GateController from its logits `[batch, G]`.

    Forced gates only read the batch size of `logits`.
    """
    if layer.forced_rate is not None:
        pattern = forced_pattern(layer.forced_rate, (layer.groups,), layer.min_active)
        return tf.tile(tf.constant([pattern], tf.float32), [tf.shape(logits)[0], 1])
    # One always-on gate is a constant: the converter then drops the `IF` and the
    # block runs as a plain graph.
    return hard_gates(logits, layer.gate.min_active)


@register_converter(GateController)
def _convert_gate_controller(layer, inputs, ctx):
    x = inputs[0]
    previous = inputs[1] if len(inputs) > 1 else None
    if not ctx.dynamic:
        # Static graph: every sub-block runs, as with force_gates(model, 1.0).
        batch = tf.shape(x)[0]
        return [tf.ones([batch, layer.groups]), tf.zeros([batch, layer.hidden_units])]
    hidden = dense(global_average_pool(x), layer.input_dense)
    if layer.has_state_input and previous is not None:
        hidden = hidden + dense(previous, layer.state_dense)
    if layer.forced_rate is not None:
        gates = controller_gates(layer, hidden[:, :1])
    else:
        gates = controller_gates(layer, dense(hidden, layer.logits_dense))
    return [gates, hidden]  # the category head (training only) is never exported


def _runtime_zeros(x, shape):
    """Zeros of `shape` computed from `x` at run time (not folded into a constant buffer)."""
    scalar = tf.reshape(tf.slice(x, [0] * len(x.shape), [1] * len(x.shape)), []) * 0.0
    return tf.broadcast_to(scalar, shape)


def conditional_sum(x, shortcut, gates, path_fns, out_shape):
    """`shortcut + sum_j gate_j path_j(x)` with one `tf.cond` per sub-block.

    Args:
        x: the block input `[1, H, W, C]`.
        shortcut: `[1, H', W', F]`, or None (the sum then starts at the first
            sub-block, or at zeros computed at run time if it is off).
        gates: `[1, G]` 0/1 floats.
        path_fns: G functions `x -> [1, H', W', F]` that create their weights
            inside (they run inside the branch functions).
        out_shape: `[1, H', W', F]` (used when `shortcut` is None).

    The running sum is passed through each `tf.cond`
    (`cond(g, lambda: acc + path(x), lambda: acc)`), so nothing but the branch
    weights is stored. (Moving the block's ReLU into the last IF's ADD was not
    consistently faster across runs: benchmarks/tflite_block_cost.py.)
    """
    total = shortcut
    for j, fn in enumerate(path_fns):
        on = gates[0, j] > ON_THRESHOLD
        if total is None:
            # No shortcut: the first sub-block starts the sum; if it is off
            # the sum starts at zeros computed at run time (no constant).
            total = tf.cond(on, (lambda fn: lambda: fn(x))(fn), lambda: _runtime_zeros(x, out_shape))
        else:
            total = tf.cond(
                on, (lambda fn, acc: lambda: acc + fn(x))(fn, total),
                (lambda acc: lambda: tf.identity(acc))(total),
            )
    return total


@register_converter(MultiPathBlock)
def _convert_multi_path_block(layer, inputs, ctx):
    if layer.gated:
        x, gates = inputs[0], inputs[1]
    else:
        x, gates = inputs[0], None
    if gates is not None:
        ctx.record_gates(layer, gates)
    shortcut = layer.run_shortcut(x) if layer.has_identity else None
    if layer.shortcut is not None:
        shortcut = apply_sequence(x, layer.shortcut)
    path_fns = [
        (lambda j: (lambda t: apply_sequence(layer.path_input(t, j), layer.paths[j])))(j)
        for j in range(layer.groups)
    ]
    if gates is None or not ctx.dynamic:
        total = None
        for fn in path_fns:
            y = fn(x)
            total = y if total is None else total + y
    else:
        shape_in = tuple(x.shape)
        out_shape = [int(d) for d in layer.compute_output_shape(
            [shape_in, (shape_in[0], layer.groups)] if layer.gated else shape_in)]
        if any(d is None for d in out_shape) or x.shape[0] != 1:
            raise ValueError(
                "mode='dynamic' needs a batch-1 graph with static shapes. "
                f"Received: input shape {tuple(x.shape)} at block {layer.name!r}"
            )
        out = conditional_sum(x, shortcut, gates, path_fns, out_shape)
        return tf.nn.relu(out) if layer.kind == "bottleneck" else out
    out = total if shortcut is None else shortcut + total
    return tf.nn.relu(out) if layer.kind == "bottleneck" else out


# === Walking the functional graph ===


def _folded_batch_norms(model):
    """conv name -> the BatchNorm directly after it (its only consumer)."""
    consumers = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for t in node.input_tensors:
                consumers.setdefault(id(t), []).append(layer)
    folded = {}
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            continue
        if len(layer._inbound_nodes) != 1:
            continue
        (out,) = layer._inbound_nodes[0].output_tensors
        users = consumers.get(id(out), [])
        if len(users) == 1 and isinstance(users[0], keras.layers.BatchNormalization):
            bn = users[0]
            if len(bn._inbound_nodes) == 1 and bn.axis in (-1, 3):
                folded[layer.name] = bn
    return folded


def _logits_tensor(model):
    struct = getattr(model, "_outputs_struct", model.outputs)
    if isinstance(struct, dict):
        return struct["logits"]
    if isinstance(struct, (list, tuple)):
        return struct[0]
    return struct


def check_convertible(model):
    """Raises ValueError naming every layer that has no converter."""
    if not hasattr(model, "_inbound_nodes") or not hasattr(model, "operations"):
        raise ValueError(
            f"model must be a functional Keras model. Received: {type(model).__name__}"
        )
    missing = [
        f"{layer.name} ({type(layer).__name__})" for layer in model.layers
        if get_converter(layer) is None
    ]
    if missing:
        raise ValueError(
            "No export converter for layers: " + ", ".join(missing) + ". Register one with "
            "dmnn_keras.export.register_converter(LayerClass) (see dmnn_keras.export.graph)."
        )


def trace_model(model, images, mode):
    """Runs the model's inference pass on `images` with plain TF ops (inside a tf.function).

    Returns:
        dict with `logits`, `gates` (concatenated `[batch, sum G]`, only for
        gated models) and `executed_flops` `[batch]`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
    ctx = ExportContext(mode, _folded_batch_norms(model))
    env = {id(model.inputs[0]): images}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            ins = node.input_tensors
            outs = node.output_tensors
            if not ins or any(id(t) not in env for t in ins):
                continue
            if all(id(t) in env for t in outs):
                continue
            result = get_converter(layer)(layer, [env[id(t)] for t in ins], ctx)
            result = list(result) if isinstance(result, (list, tuple)) else [result]
            for t, value in zip(outs, result):
                env[id(t)] = value
    logits = env[id(_logits_tensor(model))]
    batch = tf.shape(images)[0]
    gates_by_block = {layer.name: gates for layer, gates in ctx.gates}
    outputs = {"logits": logits}
    if ctx.gates:
        outputs["gates"] = tf.concat([g for _, g in ctx.gates], axis=-1)
    outputs["executed_flops"] = executed_flops(model_flops_table(model), gates_by_block, batch)
    return outputs


def gate_layout(model):
    """`[(block name, number of gates)]` in the order of the `gates` output."""
    return [(block.name, int(block.groups)) for _, block in getattr(model, "gated_blocks", [])]
