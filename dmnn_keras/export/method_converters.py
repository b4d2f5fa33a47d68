"""Export converters of ConvNet-AIG, channel gating and LC-Net layers.

Each method of `dmnn_keras.methods` lists its converters (`export_converters`);
`dmnn_keras.export` registers them on import. Gates
are deterministic in the export (`stochastic_inference` is a Keras-only
option). In `mode="static"` every gate is on (as `force_gates(model, 1.0)`;
LC-Net keeps its learned scales). In `mode="dynamic"` (batch 1):

  * `AIGController` / `ChannelGate`: the gate network in plain TF ops, or
    constant gates for input-independent (pruning-mode or forced) gates.
  * AIG blocks are one-path `MultiPathBlock`s: the existing converter runs
    the residual branch inside `tf.cond`.
  * `ChannelGatedBlock`: each filter group of conv 1 and conv 2 is a
    `tf.cond` (its weights constants inside the branch; off -> zeros computed
    at run time), and conv 3 accumulates the contribution of each on conv-2
    group, so off groups of conv 1, conv 2 and conv 3 cost nothing. Conv 2
    still reads the zero channels of off conv-1 groups (its input sparsity is
    not exploited: that would need a gather of channels). With a layer gate
    (LC-Net) the whole branch is inside one more `tf.cond`. With tied gates
    (the DMNN's `split="cross"`) the gates choose which set of sub-blocks
    runs: a `tf.cond` per set, in a row, each a dense bottleneck of that
    set's channels (conv 2 restricted to them in and out).
"""

import numpy as np
import tensorflow as tf

from dmnn_keras.export.batch_norm_folding import bn_scale_shift, folded_conv_weights
from dmnn_keras.export.tf_ops import dense, global_average_pool, runtime_zeros
from dmnn_keras.gate_decisions import ON_THRESHOLD, hard_gates, set_one_hot


def _hidden(controller, x):
    h = dense(global_average_pool(x), controller.hidden_dense)
    scale, shift = bn_scale_shift(controller.hidden_bn)
    return tf.nn.relu(h * tf.constant(scale) + tf.constant(shift))


def _log_odds(controller, hidden):
    pair = tf.reshape(dense(hidden, controller.logits_dense), [-1, controller.groups, 2])
    return pair[..., 1] - pair[..., 0]


def _gates(controller, x, hidden=None):
    """Deterministic inference gates `[batch, groups]` of an `AIGController`."""
    batch = tf.shape(x)[0]
    if controller.forced_rate is not None or not controller.dependent:
        with tf.init_scope():  # read the logits eagerly while tracing
            pattern = np.asarray(controller.static_gates(), np.float32)[None]
        return tf.tile(tf.constant(pattern), [batch, 1])
    log_odds = _log_odds(controller, _hidden(controller, x) if hidden is None else hidden)
    return hard_gates(log_odds, controller.min_active)


def convert_aig_controller(layer, inputs, ctx):
    """`AIGController` / `ChannelGate` -> `[gates, gates]` (all on in static mode)."""
    x = inputs[0]
    if not ctx.dynamic:
        gates = tf.ones([tf.shape(x)[0], layer.groups])
    else:
        gates = _gates(layer, x)
    return [gates, gates]


def convert_lc_controller(layer, inputs, ctx):
    """`LCController` -> `[effective gates, gated scales]` (scales only in static mode)."""
    x = inputs[0]
    h_l, h_c = _hidden(layer.l_net, x), _hidden(layer.c_net, x)
    s_l = 1.0 + tf.tanh(dense(h_l, layer.l_scale))
    s_c = 1.0 + tf.tanh(dense(h_c, layer.c_scale))
    if not ctx.dynamic:
        ones = tf.ones([tf.shape(x)[0], layer.groups])
        return [ones, tf.concat([s_l, s_c], axis=-1)]
    l, c = _gates(layer.l_net, x, h_l), _gates(layer.c_net, x, h_c)
    return [tf.concat([l, l * c], axis=-1), tf.concat([l * s_l, c * s_c], axis=-1)]


def _masked_branch(layer, x, values):
    """The residual branch with masks (every group computed)."""
    s1, s2 = layer.segment_slices()
    g1, g2 = layer.gate_groups

    def mask(segment, groups):
        return tf.repeat(values[:, segment], layer.width // groups, axis=1)[:, None, None, :]

    y = _conv(x, layer.conv1, layer.bn1, None, relu=True) * mask(s1, g1)
    if not layer.switchable_norms:
        y = _conv(y, layer.conv2, layer.bn2, None, relu=True) * mask(s2, g2)
        return _conv(y, layer.conv3, layer.bn3, None, relu=False)
    sets = set_one_hot(values)  # [batch, 2**G]: each image's set of sub-blocks

    def switched(y, bn):  # each image's set's BatchNorm, in inference
        scale, shift = (tf.constant(np.stack(a)) for a in zip(*map(bn_scale_shift, bn.norms)))
        return y * (sets @ scale)[:, None, None, :] + (sets @ shift)[:, None, None, :]

    y = tf.nn.relu(switched(_conv(y, layer.conv2, None, None, relu=False), layer.bn2))
    return switched(_conv(y * mask(s2, g2), layer.conv3, None, None, relu=False), layer.bn3)


def _conv(x, conv, bn, out_channels, relu, in_channels=None, bias=True):
    """Conv + folded BN with constant weights, restricted to channels.

    `out_channels`, `in_channels`: None (all), or what numpy indexes the
    channels with (a slice, or an array of indices); `bias=False` leaves the
    folded bias out.
    """
    kernel, folded_bias = folded_conv_weights(conv, bn)
    if in_channels is not None:
        kernel = kernel[:, :, in_channels, :]
    if out_channels is not None:
        kernel = kernel[..., out_channels]
        folded_bias = None if folded_bias is None else folded_bias[out_channels]
    y = tf.nn.conv2d(x, tf.constant(kernel), (1,) + tuple(conv.strides) + (1,), "SAME")
    if bias and folded_bias is not None:
        y = tf.nn.bias_add(y, tf.constant(folded_bias))
    return tf.nn.relu(y) if relu else y


def _dynamic_branch(layer, x, values, binary):
    """The residual branch with one `tf.cond` per filter group (batch 1)."""
    s1, s2 = layer.segment_slices()
    g1, g2 = layer.gate_groups
    k1, k2 = layer.width // g1, layer.width // g2
    h, w = layer.input_hw
    oh, ow = layer.output_hw

    def group(inp, conv, bn, index, k, channel_range, shape):
        on = binary[0, index] > ON_THRESHOLD
        return tf.cond(
            on,
            lambda: _conv(inp, conv, bn, channel_range, relu=True) * values[0, index],
            lambda: runtime_zeros(inp, shape),
        )

    y1 = tf.concat([
        group(x, layer.conv1, layer.bn1, s1.start + i, k1, slice(i * k1, (i + 1) * k1),
              [1, h, w, k1])
        for i in range(g1)
    ], axis=-1)
    y2 = [
        group(y1, layer.conv2, layer.bn2, s2.start + j, k2, slice(j * k2, (j + 1) * k2),
              [1, oh, ow, k2])
        for j in range(g2)
    ]
    _, shift3 = bn_scale_shift(layer.bn3)
    total = runtime_zeros(x, [1, oh, ow, layer.filters]) + tf.constant(shift3)
    kernel3, _ = folded_conv_weights(layer.conv3, layer.bn3)
    for j in range(g2):
        on = binary[0, s2.start + j] > ON_THRESHOLD

        def add(acc=total, j=j):
            k = kernel3[:, :, j * k2:(j + 1) * k2, :]
            return acc + tf.nn.conv2d(y2[j], tf.constant(k), 1, "SAME")

        total = tf.cond(on, add, (lambda acc: lambda: tf.identity(acc))(total))
    return total


def _tied_dynamic_branch(layer, x, shortcut, binary, known):
    """The block's sum before its ReLU with tied gates (batch 1): a `tf.cond` per set of on groups.

    The on groups, read as the bits of an index, choose one of `2**G - 1`
    `tf.cond`s in a row; the set S's adds `conv3_S(conv2_SS(conv1_S(x)))`
    (BN folded, constants created in the branch) to the running sum
    `shortcut + BN3's shift`, which the other branches pass on. Only the sets
    that agree with the gates `known` at export get one (`ExportContext.known_gates`);
    a single such set runs without `tf.cond`. Each set's branch holds its
    own weights: the file grows with the number of sets.
    """
    groups = layer.gate_groups[0]
    k = layer.width // groups
    index = tf.reduce_sum(binary[0] * tf.constant([2.0 ** i for i in range(groups)]))
    switchable = layer.switchable_norms

    def norm(bn, on):  # the set's own BatchNorm (switchable norms), else the one BatchNorm
        return bn.norms[sum(2 ** i for i in on)] if switchable else bn

    def run(on, total):
        channels = np.concatenate([np.arange(i * k, (i + 1) * k) for i in on])
        y = _conv(x, layer.conv1, layer.bn1, channels, relu=True)
        y = _conv(y, layer.conv2, norm(layer.bn2, on), channels, relu=True, in_channels=channels)
        y = _conv(y, layer.conv3, norm(layer.bn3, on), None, relu=False, in_channels=channels,
                  bias=False)  # (BN 3's shift is in the running sum)
        if switchable:  # the set's shift in place of the empty set's
            y = tf.nn.bias_add(y, tf.constant(shift3(on) - shift3(())))
        return total + y

    def shift3(on):
        return bn_scale_shift(norm(layer.bn3, on))[1]

    total = shortcut + tf.constant(shift3(()))  # (no sub-block on: the empty set's shift)
    patterns = [p for p in range(2 ** groups) if all(
        value is None or (value > ON_THRESHOLD) == bool(p >> i & 1)
        for i, value in enumerate(known))]
    sets = [tuple(i for i in range(groups) if p >> i & 1) for p in patterns]
    if len(sets) == 1:
        return run(sets[0], total) if sets[0] else total
    if len(sets) == 2 and sets[0]:  # a gate known on: one of two sets, one tf.cond
        return tf.cond(tf.equal(index, float(patterns[0])), lambda: run(sets[0], total),
                       lambda: run(sets[1], total))
    for pattern, on in zip(patterns, sets):
        if on:  # (no group on: the running sum as it is)
            total = tf.cond(tf.equal(index, float(pattern)),
                            (lambda on, acc: lambda: run(on, acc))(on, total),
                            (lambda acc: lambda: tf.identity(acc))(total))
    return total


def convert_channel_gated_block(layer, inputs, ctx):
    """`ChannelGatedBlock`: masked branch (static) or one `tf.cond` per filter group (dynamic)."""
    x = inputs[0]
    values = inputs[1] if layer.gated else tf.ones([tf.shape(x)[0], layer.num_gates])
    binary = tf.cast(tf.not_equal(values, 0.0), tf.float32)
    if layer.layer_gate:
        binary = tf.concat([binary[:, :1], binary[:, :1] * binary[:, 1:]], axis=-1)
    if layer.gated:
        ctx.record_gates(layer, binary)
    if layer.shortcut is None:
        shortcut = x
    else:
        shortcut = _conv(x, layer.shortcut[0], layer.shortcut[1], None, relu=False)
    if not ctx.dynamic or not layer.gated:
        branch = _masked_branch(layer, x, values)
        if layer.layer_gate:
            branch = branch * values[:, 0, None, None, None]
        return tf.nn.relu(shortcut + branch)
    if x.shape[0] != 1:
        raise ValueError(
            "mode='dynamic' needs a batch-1 graph with static shapes. "
            f"Received: input shape {tuple(x.shape)} at block {layer.name!r}"
        )
    if layer.tie_gates:
        known = ctx.known_gates(inputs[1])
        return tf.nn.relu(_tied_dynamic_branch(layer, x, shortcut, binary, known))
    if not layer.layer_gate:
        return tf.nn.relu(shortcut + _dynamic_branch(layer, x, values, binary))
    return tf.cond(
        binary[0, 0] > ON_THRESHOLD,
        lambda: tf.nn.relu(shortcut + values[0, 0] * _dynamic_branch(layer, x, values, binary)),
        lambda: tf.nn.relu(shortcut),
    )
