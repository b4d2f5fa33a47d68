"""Converters of plain Keras layers (convolutions with their BatchNorm folded, pooling, Dense, ...)."""

import keras
import numpy as np
import tensorflow as tf

from dmnn_keras.export.batch_norm_folding import CONVOLUTIONS, bn_scale_shift, folded_conv_weights
from dmnn_keras.export.converters import get_converter, register_converter
from dmnn_keras.export.tf_ops import (
    apply_activation,
    apply_relu_layer,
    check_channels_last,
    dense,
    global_average_pool,
    numpy_weight,
)


def apply_conv(x, conv, bn=None):
    """A Conv2D / DepthwiseConv2D (+ folded BN, + its activation) with constant weights.

    Call it inside a `tf.cond` branch function to keep the weights inside the branch.
    """
    check_channels_last(conv)
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


def apply_sequence(x, sequence):
    """Plain layers one after another (Conv+BN folded), for sub-blocks."""
    i = 0
    while i < len(sequence):
        layer = sequence[i]
        nxt = sequence[i + 1] if i + 1 < len(sequence) else None
        if isinstance(layer, CONVOLUTIONS):
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
            outputs = converter(layer, [x], None)
            x = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        i += 1
    return x


@register_converter(keras.layers.InputLayer)
def _convert_input(layer, inputs, ctx):
    return inputs


@register_converter(keras.layers.Normalization)
def _convert_normalization(layer, inputs, ctx):
    if layer.invert:
        raise ValueError(f"Export does not support Normalization(invert=True): {layer.name!r}")
    mean = numpy_weight(layer.mean)
    std = np.maximum(np.sqrt(numpy_weight(layer.variance)), keras.backend.epsilon())
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
    if ctx is not None and ctx.is_folded(layer):
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
    check_channels_last(layer)
    return tf.nn.max_pool2d(inputs[0], layer.pool_size, layer.strides, layer.padding.upper())


@register_converter(keras.layers.AveragePooling2D)
def _convert_avg_pool(layer, inputs, ctx):
    check_channels_last(layer)
    return tf.nn.avg_pool2d(inputs[0], layer.pool_size, layer.strides, layer.padding.upper())


@register_converter(keras.layers.GlobalAveragePooling2D)
def _convert_gap(layer, inputs, ctx):
    check_channels_last(layer)
    return global_average_pool(inputs[0], keepdims=bool(layer.keepdims))


@register_converter(keras.layers.GlobalMaxPooling2D)
def _convert_gmp(layer, inputs, ctx):
    check_channels_last(layer)
    return tf.reduce_max(inputs[0], axis=[1, 2], keepdims=bool(layer.keepdims))


@register_converter(keras.layers.Dense)
def _convert_dense(layer, inputs, ctx):
    return dense(inputs[0], layer)


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
