"""A ResNet bottleneck whose inner channels are gated in groups of filters."""

import keras
from keras import ops

from dmnn_keras.flops import conv_flops
from dmnn_keras.gate_decisions import set_one_hot
from dmnn_keras.keyword_arguments import LAYER_ARGUMENTS, check_keyword_arguments
from dmnn_keras.layers.multi_path_block import (
    batch_norm_layer,
    block_output_shape,
    conv_layer,
    shortcut_kind,
)
from dmnn_keras.layers.switchable_batch_norm import SwitchableBatchNorm


def channel_gate_groups(width, gates=(8, 4)):
    """Gates of the two inner convolutions of a bottleneck of `width` channels.

    Herrmann et al. gate ResNet-50 with 16/32/64/128 filters per gate in the
    four stages (bottleneck widths 64/128/256/512, i.e. 4 gates per
    convolution) and half as many filters per gate in the contracting layers.
    We read "contracting" as the first 1x1 convolution of a bottleneck, which
    contracts `4 * width` channels to `width` (8 gates), and give the 3x3
    convolution 4 gates. For widths that 8 or 4 do not divide (narrow
    models), the largest divisor of `width` not above the default is used, so
    filters per gate scale down with the width.
    """
    def largest_divisor(limit):
        return max(d for d in range(1, min(limit, width) + 1) if width % d == 0)

    return tuple(largest_divisor(g) for g in gates)


@keras.saving.register_keras_serializable(package="dmnn_keras")
class ChannelGatedBlock(keras.layers.Layer):
    """`ReLU(shortcut(x) + [l *] BN3(conv3(m2 * ReLU(BN2(conv2(m1 * ReLU(BN1(conv1(x)))))))))`.

    A ResNet v1.5 bottleneck (`1x1 width -> 3x3 width (stride) -> 1x1
    filters`, BN after each, shortcut identity or 1x1 conv + BN) whose first
    two convolutions' outputs are multiplied, after their ReLU, by per-sample
    masks `m1`, `m2` that repeat one value per group of `width / gate_groups[k]`
    filters. With binary gates, an off group is exactly zero, so the executed
    MACs are

        conv1: sum_i g1_i * H W C_in k1                (linear)
        conv2: sum_ij g1_i g2_j * H' W' 9 k1 k2        (bilinear: both groups on)
        conv3: sum_j g2_j * H' W' k2 filters           (linear)

    which `compute_flops()` returns as `{"always_on": shortcut MACs, "paths":
    linear MACs per gate, "pairs": [[i, j, MACs], ...]}` (the protocol used
    by `flops_table`, `ResourceLoss` and `profile`).

    With `layer_gate=True` (LC-Net) the first gate value `l` multiplies the
    whole residual branch (skip + scale of the layer); the FLOPs then count
    the effective channel gates `l * g`, which the controller provides.

    With `tie_gates=True` (the DMNN's `split="cross"`) the two convolutions
    share `G = gate_groups[0] = gate_groups[1]` gates: gate i runs sub-block i
    (group i of conv 1, of conv 2 and of conv 3's input), and conv 2 keeps
    its blocks between sub-blocks that run together. With every gate on it is
    the static bottleneck. Its MACs: `paths[i]` = conv 1, conv 3 and the
    3x3 within group i (`g_i * g_i = g_i`), `pairs` = `[i, j, 3x3 MACs of
    group i into group j]` for `i != j`. Its BatchNorms 2 and 3 see sums over
    the sub-blocks that run, so their statistics depend on the set:
    `switchable_norms=True` gives each set its own (slimmable networks'
    switchable BatchNorm), which the DMNN's cross split uses.

    Args:
        filters: output channels (4 * width in ResNet).
        width: channels of the two inner convolutions.
        strides: 1 or 2 (in the 3x3 convolution, v1.5).
        gate_groups: (gates of conv 1, gates of conv 2); each must divide width.
        layer_gate: whether the gate values start with a layer gate.
        tie_gates: conv 1 and conv 2 share their gates (see above).
        switchable_norms: with `tie_gates`, BatchNorms 2 and 3 are
            `SwitchableBatchNorm`s: each image uses the BatchNorm of its set
            of running sub-blocks (`2 ** G` sets), whose sums they normalise.
        gated: False: a plain bottleneck (every channel on), call takes `x`.
        **kwargs: `Layer` arguments; every sublayer gets the block's `dtype`
            policy, and the gate values are cast to its compute dtype.

    Call args:
        inputs: `[x, values]`, values `[batch, num_gates]` = `[l] + g1 + g2`
            (0/1 gates, or gates times scales for LC-Net); with `tie_gates`,
            the `G` gates of the sub-blocks.

    Returns:
        `[batch, H / strides, W / strides, filters]`.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import ChannelGatedBlock
    block = ChannelGatedBlock(filters=64, width=16, strides=2, gate_groups=(8, 4))
    x = np.random.rand(2, 8, 8, 32).astype("float32")
    values = np.ones((2, 12), "float32")  # 8 gates of conv 1, then 4 of conv 2
    block([x, values]).shape  # (2, 4, 4, 64)
    ```
    """

    def __init__(self, filters, width, strides=1, gate_groups=(8, 4), layer_gate=False,
                 gated=True, tie_gates=False, switchable_norms=False, **kwargs):
        check_keyword_arguments(self, ChannelGatedBlock, kwargs, LAYER_ARGUMENTS)
        super().__init__(**kwargs)
        if strides not in (1, 2):
            raise ValueError(f"strides must be 1 or 2. Received: strides={strides}")
        gate_groups = tuple(int(g) for g in gate_groups)
        if len(gate_groups) != 2 or any(g < 1 or width % g for g in gate_groups):
            raise ValueError(
                f"gate_groups must be two ints >= 1 dividing width={width}. "
                f"Received: gate_groups={gate_groups}"
            )
        if tie_gates and (gate_groups[0] != gate_groups[1] or layer_gate):
            raise ValueError(
                "tie_gates=True needs two equal gate_groups and no layer gate. Received: "
                f"gate_groups={gate_groups}, layer_gate={layer_gate}"
            )
        self.filters = filters
        self.width = width
        self.strides = strides
        self.gate_groups = gate_groups
        self.layer_gate = bool(layer_gate)
        self.gated = gated
        self.tie_gates = bool(tie_gates)
        if switchable_norms and not self.tie_gates:
            raise ValueError("switchable_norms=True needs tie_gates=True (a BatchNorm per set of "
                             f"sub-blocks). Received: tie_gates={tie_gates}")
        self.switchable_norms = bool(switchable_norms)
        self.num_gates = (gate_groups[0] if self.tie_gates
                          else int(self.layer_gate) + sum(gate_groups))

        # === Layers ===
        policy = self.dtype_policy  # sublayers compute in the block's dtype
        self.conv1 = conv_layer(width, 1, 1, "1_conv", policy)
        self.bn1 = batch_norm_layer("1_bn", policy)
        self.conv2 = conv_layer(width, 3, strides, "2_conv", policy)
        self.bn2 = self._summed_norm("2_bn")
        self.conv3 = conv_layer(filters, 1, 1, "3_conv", policy)
        self.bn3 = self._summed_norm("3_bn")
        self.shortcut = None  # created in build() once the input channels are known

    def build(self, input_shape):
        x_shape = tuple(input_shape[0]) if self.gated else tuple(input_shape)
        if len(x_shape) != 4:
            raise ValueError(
                f"ChannelGatedBlock expects a 4D input [batch, H, W, C]. Received shape: {x_shape}"
            )
        if self.gated and int(input_shape[1][-1]) != self.num_gates:
            raise ValueError(
                f"{self.name} expects {self.num_gates} gate values. "
                f"Received gates of shape {input_shape[1]}"
            )
        self.in_channels = int(x_shape[-1])
        shortcut = shortcut_kind("bottleneck", self.in_channels, self.filters, self.strides)
        self.has_identity = shortcut == "identity"
        if shortcut == "projection" and self.shortcut is None:
            self.shortcut = [
                conv_layer(self.filters, 1, self.strides, "shortcut_conv", self.dtype_policy),
                batch_norm_layer("shortcut_bn", self.dtype_policy),
            ]
        shape = x_shape
        for layer in (self.conv1, self.bn1, self.conv2, self.bn2, self.conv3, self.bn3):
            if isinstance(layer, SwitchableBatchNorm):
                layer.build([shape, (None, layer.num_sets)])
                continue
            layer.build(shape)
            shape = tuple(layer.compute_output_shape(shape))
        if self.shortcut:
            self.shortcut[0].build(x_shape)
            self.shortcut[1].build(shape)
        self.input_hw = tuple(int(d) for d in x_shape[1:3])
        self.output_hw = tuple(-(-d // self.strides) for d in self.input_hw)
        self.built = True

    @property
    def has_shortcut(self):
        return True

    @property
    def groups(self):
        """Number of gate values the block takes (the export's gate layout reads it)."""
        return self.num_gates

    def segment_slices(self):
        """`(slice of conv-1 gates, slice of conv-2 gates)` in the gate values."""
        start = int(self.layer_gate)
        g1, g2 = self.gate_groups
        if self.tie_gates:
            return slice(0, g1), slice(0, g2)
        return slice(start, start + g1), slice(start + g1, start + g1 + g2)

    def compute_flops(self):
        """`{"always_on", "paths", "pairs"}` MACs per sample (see the class docstring)."""
        g1, g2 = self.gate_groups
        k1, k2 = self.width // g1, self.width // g2
        s1, s2 = self.segment_slices()
        conv1 = conv_flops(self.input_hw, (1, 1), self.in_channels, k1)
        conv3 = conv_flops(self.output_hw, (1, 1), k2, self.filters)
        pair = conv_flops(self.output_hw, (3, 3), k1, k2)
        if self.tie_gates:
            paths = [conv1 + conv3 + pair] * g1
            pairs = [[i, j, pair] for i in range(g1) for j in range(g2) if i != j]
        else:
            paths = [0] * int(self.layer_gate) + [conv1] * g1 + [conv3] * g2
            pairs = [[s1.start + i, s2.start + j, pair] for i in range(g1) for j in range(g2)]
        shortcut = (
            conv_flops(self.output_hw, (1, 1), self.in_channels, self.filters)
            if self.shortcut else 0
        )
        return {"always_on": shortcut, "paths": paths, "pairs": pairs}

    def _mask(self, values, segment, groups):
        mask = ops.repeat(values[:, segment], self.width // groups, axis=1)
        return mask[:, None, None, :]

    def _summed_norm(self, name):
        """BatchNorm 2 or 3, which see sums over the sub-blocks that run: one per set if switchable."""
        if self.switchable_norms:
            return SwitchableBatchNorm(2 ** self.gate_groups[0], name=name, dtype=self.dtype_policy)
        return batch_norm_layer(name, self.dtype_policy)

    def _norm_by_set(self, values, batch):
        """`norm(bn, x, training)`: `bn(x)`, with switchable norms `bn([x, each image's set])`."""
        if not self.switchable_norms:
            return lambda bn, x, training: bn(x, training=training)
        if values is None:  # a plain bottleneck: every sub-block runs
            values = ops.ones((batch, self.gate_groups[0]))
        one_hot = set_one_hot(values)
        return lambda bn, x, training: bn([x, one_hot], training=training)

    def run_shortcut(self, x, training=None):
        if self.shortcut is None:
            return x
        return self.shortcut[1](self.shortcut[0](x), training=training)

    def call(self, inputs, training=None):
        if self.gated:
            x, values = inputs
            values = ops.cast(values, self.compute_dtype)
        else:
            x, values = inputs, None
        s1, s2 = self.segment_slices()
        norm = self._norm_by_set(values, ops.shape(x)[0])
        y = ops.relu(self.bn1(self.conv1(x), training=training))
        if values is not None:
            y = y * self._mask(values, s1, self.gate_groups[0])
        y = ops.relu(norm(self.bn2, self.conv2(y), training))
        if values is not None:
            y = y * self._mask(values, s2, self.gate_groups[1])
        y = norm(self.bn3, self.conv3(y), training)
        if values is not None and self.layer_gate:
            y = y * values[:, 0, None, None, None]
        return ops.relu(self.run_shortcut(x, training) + y)

    def compute_output_shape(self, input_shape):
        return block_output_shape(input_shape, self.gated, self.strides, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, width=self.width, strides=self.strides,
            gate_groups=list(self.gate_groups), layer_gate=self.layer_gate, gated=self.gated,
            tie_gates=self.tie_gates, switchable_norms=self.switchable_norms,
        )
        return config
