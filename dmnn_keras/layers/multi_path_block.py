"""Residual blocks split into parallel, individually gated sub-blocks."""

import math

import keras
from keras import layers, ops

from dmnn_keras.flops import sequential_flops
from dmnn_keras.keyword_arguments import LAYER_ARGUMENTS, check_keyword_arguments

BLOCK_KINDS = ("bottleneck", "inverted_residual")
EXECUTIONS = ("masked", "gather")  # "gather": dmnn_keras.export.batched
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
SPLITS = ("preserve", "partition", "cross")


def bottleneck_path_width(in_channels, width, out_channels, groups, divisor=4, split="preserve"):
    """Width of each of `groups` bottleneck sub-blocks.

    `split="partition"`: `width / groups`, the sub-blocks partition the
    static block's channels (the 3x3 keeps its `groups` diagonal blocks,
    ResNeXt-like), so a trained static block's weights have a place in them
    (`dmnn_keras.from_static`). `split="cross"`: the same channels, and the
    3x3 keeps its blocks between the sub-blocks that run together (a
    `ChannelGatedBlock(tie_gates=True)`: with every gate on, the static block).

    `split="preserve"` (the DMNN paper's): the width that keeps the block's
    parameters. A bottleneck `in -> width (1x1) -> width (3x3) -> out (1x1)` has
    `in*w + 9*w*w + w*out` convolution weights. Splitting it into `groups`
    sub-blocks of width `p` gives `groups * (in*p + 9*p*p + p*out)`. The rule:
    `p` is the positive root of the equality, rounded to the nearest multiple of
    `divisor` (at least `divisor`). With groups=1 it returns `width`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split!r}")
    if groups == 1:
        return width
    if split in ("partition", "cross"):
        if width % groups:
            raise ValueError(
                f"split={split!r} needs groups to divide the bottleneck width {width}. "
                f"Received: groups={groups}"
            )
        return width // groups
    original = in_channels * width + 9 * width * width + width * out_channels
    a, b, c = 9 * groups, groups * (in_channels + out_channels), -original
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return max(divisor, int(round(root / divisor)) * divisor)


def conv_layer(filters, kernel_size, strides, name, dtype=None):
    """The library's convolution before a BatchNorm: "same" padding, no bias, He-normal kernel."""
    return layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False,
        kernel_initializer="he_normal", name=name, dtype=dtype,
    )


def batch_norm_layer(name, dtype=None):
    """BatchNormalization with the library's momentum and epsilon (`BN_MOMENTUM`, `BN_EPSILON`)."""
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name,
                                     dtype=dtype)


def shortcut_kind(kind, in_channels, filters, strides):
    """The shortcut of a residual block: "identity", "projection" or None.

    "identity" when the block keeps the shape (stride 1 and `in_channels ==
    filters`); otherwise a "bottleneck" (ResNet) gets a "projection" (1x1 conv +
    BN) and an "inverted_residual" (MobileNetV2) none. A block with a shortcut
    may skip all its sub-blocks; one without must run at least one.

    Example: `shortcut_kind("inverted_residual", 16, 24, 2) is None`.
    """
    if strides == 1 and in_channels == filters:
        return "identity"
    return "projection" if kind == "bottleneck" else None


def block_output_shape(input_shape, gated, strides, filters):
    """Output shape of a (possibly gated) block: `[batch, ceil(H/s), ceil(W/s), filters]`."""
    x_shape = input_shape[0] if gated else input_shape
    size = lambda d: None if d is None else -(-d // strides)
    return (x_shape[0], size(x_shape[1]), size(x_shape[2]), filters)


@keras.saving.register_keras_serializable(package="dmnn_keras")
class MultiPathBlock(keras.layers.Layer):
    """`shortcut(x) + sum_j gate_j * sub_block_j(x)`, the DMNN block.

    Kinds:
      * "bottleneck" (ResNet v1.5): each sub-block is 1x1 conv (path_width),
        3x3 conv (path_width, stride here), 1x1 conv (filters), each with BN,
        ReLU between; shortcut = identity, or 1x1 conv + BN when the stride or
        channels change; ReLU after the sum.
      * "inverted_residual" (MobileNetV2): each sub-block is 1x1 expansion
        (path_width channels, the block's expansion ratio e split into `groups`
        parts of e/groups), 3x3 depthwise (stride here), linear 1x1 projection
        (filters), with BN and ReLU6. With `expand=False` (expansion ratio 1)
        sub-block j takes the j-th slice of the input channels instead of an
        expansion. Identity shortcut when stride 1 and channels equal, none
        otherwise.

    Args:
        kind: one of "bottleneck", "inverted_residual".
        filters: output channels.
        groups: number of sub-blocks.
        path_width: channels inside each sub-block.
        strides: 1 or 2.
        gated: if True the call takes `[x, gates]`; if False all sub-blocks run
            (static block: with groups=1 exactly the original block).
        expand: inverted_residual only; False for expansion ratio 1.
        execution: "masked" computes every sub-block and multiplies it by its
            gate (differentiable, batch-friendly). "gather" (inference only,
            TensorFlow backend, `dmnn_keras.export.batched`; training falls
            back to "masked") computes
            each sub-block only on the samples whose gate is on, in one of two
            ways chosen per call. "pattern" (when the samples do not all share
            one on/off pattern, the batch's activations `batch*H*W*C` are at
            least 1.2x the sub-blocks' weights, and groups <= 4): the samples
            are sorted by their on/off pattern, each pattern present runs its
            sub-blocks on its contiguous slice, and one gather restores the
            order. "sub_block" (otherwise): each
            sub-block is skipped when no sample needs it, run on the whole
            batch when all do, else run on the gathered samples and
            scatter-added into the running sum. Same outputs as "masked".
        **kwargs: `Layer` arguments; every sublayer gets the block's `dtype`
            policy (under "mixed_bfloat16" the convolutions compute in
            bfloat16, and the float32 gates are cast to it).

    Call args:
        inputs: `x` `[batch, H, W, C]`, or `[x, gates]` with gates
            `[batch, groups]` when gated.

    Returns:
        `[batch, H / strides, W / strides, filters]`.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import MultiPathBlock
    block = MultiPathBlock("bottleneck", filters=32, groups=4, path_width=4, strides=2)
    x = np.random.rand(2, 8, 8, 16).astype("float32")
    gates = np.array([[1, 0, 1, 0], [0, 0, 0, 0]], "float32")
    block([x, gates]).shape  # (2, 4, 4, 32)
    len(block.compute_flops()["paths"])  # 4
    ```
    """

    def __init__(
        self,
        kind,
        filters,
        groups,
        path_width,
        strides=1,
        gated=True,
        expand=True,
        execution="masked",
        **kwargs,
    ):
        check_keyword_arguments(self, MultiPathBlock, kwargs, LAYER_ARGUMENTS)
        super().__init__(**kwargs)
        if kind not in BLOCK_KINDS:
            raise ValueError(f"kind must be one of {BLOCK_KINDS}. Received: kind={kind!r}")
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups must be an int >= 1. Received: groups={groups}")
        if strides not in (1, 2):
            raise ValueError(f"strides must be 1 or 2. Received: strides={strides}")
        if execution not in EXECUTIONS:
            raise ValueError(
                f"execution must be one of {EXECUTIONS}. Received: execution={execution!r}"
            )
        self.kind = kind
        self.filters = filters
        self.groups = groups
        self.path_width = path_width
        self.strides = strides
        self.gated = gated
        self.expand = expand
        self.execution = execution

        # === Layers ===
        self.paths = [self._make_path(j) for j in range(groups)]
        self.shortcut = None  # created in build() once the input channels are known

    def _conv(self, filters, kernel_size, strides, name):
        return conv_layer(filters, kernel_size, strides, name, self.dtype_policy)

    def _bn(self, name):
        return batch_norm_layer(name, self.dtype_policy)

    def _relu(self, name, max_value=None):
        return layers.ReLU(max_value, name=name, dtype=self.dtype_policy)

    def _make_path(self, j):
        p = f"path{j}_"
        if self.kind == "bottleneck":
            return [
                self._conv(self.path_width, 1, 1, p + "1_conv"), self._bn(p + "1_bn"),
                self._relu(p + "1_relu"),
                self._conv(self.path_width, 3, self.strides, p + "2_conv"), self._bn(p + "2_bn"),
                self._relu(p + "2_relu"),
                self._conv(self.filters, 1, 1, p + "3_conv"), self._bn(p + "3_bn"),
            ]
        path = []
        if self.expand:
            path += [
                self._conv(self.path_width, 1, 1, p + "expand"), self._bn(p + "expand_bn"),
                self._relu(p + "expand_relu", 6.0),
            ]
        path += [
            layers.DepthwiseConv2D(
                3, strides=self.strides, padding="same", use_bias=False,
                depthwise_initializer="he_normal", name=p + "depthwise",
                dtype=self.dtype_policy,
            ),
            self._bn(p + "depthwise_bn"),
            self._relu(p + "depthwise_relu", 6.0),
            self._conv(self.filters, 1, 1, p + "project"), self._bn(p + "project_bn"),
        ]
        return path

    def build(self, input_shape):
        x_shape = tuple(input_shape[0]) if self.gated else tuple(input_shape)
        if len(x_shape) != 4:
            raise ValueError(
                f"MultiPathBlock expects a 4D input [batch, H, W, C]. Received shape: {x_shape}"
            )
        in_channels = int(x_shape[-1])
        if self.kind == "inverted_residual" and not self.expand:
            if in_channels % self.groups or in_channels // self.groups != self.path_width:
                raise ValueError(
                    f"groups must divide the {in_channels} input channels into paths of "
                    f"path_width={self.path_width}. Received: groups={self.groups}"
                )
        self.in_channels = in_channels
        shortcut = shortcut_kind(self.kind, in_channels, self.filters, self.strides)
        self.has_identity = shortcut == "identity"
        if shortcut == "projection" and self.shortcut is None:
            self.shortcut = [
                self._conv(self.filters, 1, self.strides, "shortcut_conv"),
                self._bn("shortcut_bn"),
            ]
        path_input = self._path_input_shape(x_shape)
        self.path_flops = []
        for path in self.paths:
            flops, _ = self._build_sequence(path, path_input)
            self.path_flops.append(flops)
        self.shortcut_flops = self._build_sequence(self.shortcut, x_shape)[0] if self.shortcut else 0
        self.built = True

    def _path_input_shape(self, x_shape):
        if self.kind == "inverted_residual" and not self.expand:
            return x_shape[:-1] + (self.path_width,)
        return x_shape

    @staticmethod
    def _build_sequence(sequence, shape):
        flops, _ = sequential_flops(sequence, shape)
        for layer in sequence:
            layer.build(shape)
            shape = tuple(layer.compute_output_shape(shape))
        return flops, shape

    @property
    def has_shortcut(self):
        """Whether the block has a shortcut that always runs (`shortcut_kind` is not None)."""
        return self.has_identity or self.shortcut is not None

    def compute_flops(self):
        """`{"always_on": MACs, "paths": [MACs of each sub-block]}` per sample."""
        return {"always_on": self.shortcut_flops, "paths": list(self.path_flops)}

    def path_input(self, x, j):
        """The input of sub-block j (a channel slice for expand=False)."""
        if self.kind == "inverted_residual" and not self.expand:
            return x[..., j * self.path_width:(j + 1) * self.path_width]
        return x

    def run_path(self, x, j, training=None):
        """Sub-block j on the block input `x`."""
        y = self.path_input(x, j)
        for layer in self.paths[j]:
            y = layer(y, training=training)
        return y

    def run_shortcut(self, x, training=None):
        """The always-on part: identity, projection, or None."""
        if self.shortcut is not None:
            for layer in self.shortcut:
                x = layer(x, training=training)
            return x
        return x if self.has_identity else None

    def combine(self, shortcut, paths_sum):
        """Adds the shortcut and applies the block's final activation."""
        return self.activate(paths_sum if shortcut is None else shortcut + paths_sum)

    def call(self, inputs, training=None):
        if self.gated:
            x, gates = inputs
            gates = ops.cast(gates, self.compute_dtype)
        else:
            x, gates = inputs, None
        if gates is not None and self.execution == "gather" and not training:
            from dmnn_keras.export.batched import gather_execution  # TensorFlow only

            return gather_execution(self, x, gates)
        total = None
        for j in range(self.groups):
            y = self.run_path(x, j, training)
            if gates is not None:
                y = y * gates[:, j, None, None, None]
            total = y if total is None else total + y
        return self.combine(self.run_shortcut(x, training), total)

    @property
    def path_weights(self):
        """Number of weights in all sub-blocks (what each group of samples re-reads)."""
        return sum(layer.count_params() for path in self.paths for layer in path)

    def activate(self, total):
        """The block's final activation on shortcut + sub-blocks: ReLU (bottleneck) or none."""
        return ops.relu(total) if self.kind == "bottleneck" else total

    def compute_output_shape(self, input_shape):
        return block_output_shape(input_shape, self.gated, self.strides, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            kind=self.kind, filters=self.filters, groups=self.groups,
            path_width=self.path_width, strides=self.strides, gated=self.gated,
            expand=self.expand, execution=self.execution,
        )
        return config
