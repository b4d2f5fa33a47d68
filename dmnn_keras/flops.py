"""Static FLOPs counting, in multiply-accumulates (MACs), the papers' unit.

Counted: every convolution (shortcut projections included), depthwise
convolution and dense layer. Not counted: BatchNorm (folded into the
convolution at inference), activations, additions and pooling, which
are elementwise and cost no multiply-accumulates.
"""

import keras


def conv_flops(output_hw, kernel_size, in_channels, out_channels, groups=1):
    """MACs of a convolution producing an `output_hw` map."""
    out_h, out_w = output_hw
    k_h, k_w = kernel_size
    return out_h * out_w * k_h * k_w * (in_channels // groups) * out_channels


def layer_flops(layer, input_shape):
    """MACs of one plain Keras layer applied to `input_shape` (batch first).

    Composite dmnn_keras layers are counted by their own `compute_flops`.
    """
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        out = layer.compute_output_shape(input_shape)
        channels = int(input_shape[-1])
        return conv_flops(
            out[1:3], layer.kernel_size, channels, channels * layer.depth_multiplier, channels
        )
    if isinstance(layer, keras.layers.Conv2D):
        out = layer.compute_output_shape(input_shape)
        return conv_flops(out[1:3], layer.kernel_size, int(input_shape[-1]), layer.filters, layer.groups)
    if isinstance(layer, keras.layers.Dense):
        positions = 1
        for dim in input_shape[1:-1]:
            positions *= int(dim)
        return positions * int(input_shape[-1]) * layer.units
    return 0


def sequential_flops(layers, input_shape):
    """MACs of `layers` applied one after another, and the output shape."""
    total = 0
    shape = tuple(input_shape)
    for layer in layers:
        total += layer_flops(layer, shape)
        shape = tuple(layer.compute_output_shape(shape))
    return total, shape
