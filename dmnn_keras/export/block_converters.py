"""Converters of the library's own layers: `GateController`, `MultiPathBlock`, `ResourceLoss`.

In `mode="dynamic"` each gated sub-block of a `MultiPathBlock` runs inside
`tf.cond` on its gate (`conditional_sum`); in `mode="static"` every
sub-block runs. The gating methods' layers have their converters in
`dmnn_keras.export.method_converters`.
"""

import tensorflow as tf

from dmnn_keras.export.converters import register_converter
from dmnn_keras.export.keras_converters import apply_sequence
from dmnn_keras.export.tf_ops import dense, global_average_pool, numpy_weight, runtime_zeros
from dmnn_keras.gate_decisions import ON_THRESHOLD, constant_gates, forced_pattern, hard_gates
from dmnn_keras.layers.gate_controller import GateController
from dmnn_keras.layers.multi_path_block import MultiPathBlock
from dmnn_keras.layers.resource_loss import ResourceLoss, prediction_uncertainty


@register_converter(ResourceLoss)
def _convert_resource_loss(layer, inputs, ctx):
    return inputs[0]  # training-only: the loss; passes the logits through


def known_gates(layer):
    """The gates of a GateController known at export: G values 1.0, 0.0 or None (decided per input).

    Forced gates (`force_gates`) are all known; otherwise the gates that are
    constants of the weights (`constant_gates`, made by `fix_constant_gates`).
    """
    if layer.forced_rate is not None:
        return tuple(forced_pattern(layer.forced_rate, (layer.groups,), layer.min_active))
    with tf.init_scope():  # read eagerly while a tf.function traces
        kernel, bias = layer.logit_weights()
    return constant_gates(kernel, bias, layer.gate.min_active)


def controller_gates(layer, hidden, known, difficulty=None):
    """Deterministic inference gates `[batch, G]` of a GateController from its hidden state.

    `difficulty`: the difficulty head's logits `[batch, classes]` (a controller
    with `difficulty_input`), else None. The gates in `known` (`known_gates`)
    take their value for every input; the logits are computed only if some
    gate is decided per input.
    """
    batch = [tf.shape(hidden)[0]]
    if all(value is not None for value in known):
        return tf.tile(tf.constant([known], tf.float32), [batch[0], 1])
    # One always-on gate is a constant: the converter then drops the `IF` and the
    # block runs as a plain graph.
    logits = dense(hidden, layer.logits_dense)
    if difficulty is not None:
        uncertainty = tf.convert_to_tensor(prediction_uncertainty(difficulty))  # keras ops on TF
        logits = logits + dense(uncertainty[:, None], layer.difficulty_dense)
    gates = hard_gates(logits, layer.gate.min_active)
    if all(value is None for value in known):
        return gates
    return tf.stack([gates[:, j] if value is None else tf.fill(batch, value)
                     for j, value in enumerate(known)], axis=1)


@register_converter(GateController)
def _convert_gate_controller(layer, inputs, ctx):
    inputs = list(inputs)
    difficulty = inputs.pop() if layer.difficulty_input else None
    x = inputs[0]
    previous = inputs[1] if len(inputs) > 1 else None
    if not ctx.dynamic:
        # Static graph: every sub-block runs, as with force_gates(model, 1.0).
        batch = tf.shape(x)[0]
        return [tf.ones([batch, layer.groups]), tf.zeros([batch, layer.hidden_units])]
    hidden = dense(global_average_pool(x), layer.input_dense)
    if layer.has_state_input and previous is not None:
        hidden = hidden + dense(previous, layer.state_dense)
    known = known_gates(layer)
    gates = controller_gates(layer, hidden, known, difficulty)
    ctx.set_known_gates(gates, known)  # their sub-blocks run without tf.cond (conditional_sum)
    return [gates, hidden]  # the category head (training only) is never exported


def conditional_sum(x, shortcut, gates, path_fns, out_shape, known=None):
    """`shortcut + sum_j gate_j path_j(x)` with one `tf.cond` per sub-block whose gate is decided.

    Args:
        x: the block input `[1, H, W, C]`.
        shortcut: `[1, H', W', F]`, or None (the sum then starts at the first
            sub-block, or at zeros computed at run time if it is off).
        gates: `[1, G]` 0/1 floats.
        path_fns: G functions `x -> [1, H', W', F]` that create their weights
            inside (they run inside the branch functions).
        out_shape: `[1, H', W', F]` (used when `shortcut` is None).
        known: None, or G values known at export (`ExportContext.known_gates`):
            1.0 (the sub-block runs, no `tf.cond`), 0.0 (left out) or None.

    The running sum is passed through each `tf.cond`
    (`cond(g, lambda: acc + path(x), lambda: acc)`), so nothing but the branch
    weights is stored. (Moving the block's ReLU into the last IF's ADD was not
    consistently faster across runs: benchmarks/tflite_block_cost.py.)
    """
    total = shortcut
    known = (None,) * len(path_fns) if known is None else known
    for j, fn in enumerate(path_fns):
        if known[j] is not None:
            if known[j] > ON_THRESHOLD:
                total = fn(x) if total is None else total + fn(x)
            continue
        on = gates[0, j] > ON_THRESHOLD
        if total is None:
            # No shortcut: the first sub-block starts the sum; if it is off
            # the sum starts at zeros computed at run time (no constant).
            total = tf.cond(on, (lambda fn: lambda: fn(x))(fn), lambda: runtime_zeros(x, out_shape))
        else:
            total = tf.cond(
                on, (lambda fn, acc: lambda: acc + fn(x))(fn, total),
                (lambda acc: lambda: tf.identity(acc))(total),
            )
    return runtime_zeros(x, out_shape) if total is None else total  # None: every sub-block left out


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
        out = conditional_sum(x, shortcut, gates, path_fns, out_shape, ctx.known_gates(gates))
        return tf.nn.relu(out) if layer.kind == "bottleneck" else out
    out = total if shortcut is None else shortcut + total
    return tf.nn.relu(out) if layer.kind == "bottleneck" else out
