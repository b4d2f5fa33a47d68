"""Plain TensorFlow ops that converters build with constant weights read from Keras layers.

Every weight becomes a `tf.constant` created from numpy where it is used, so a
converter that calls these inside a `tf.cond` branch function keeps the
weights inside the branch (see `dmnn_keras.export.graph`).
"""

import keras
import numpy as np
import tensorflow as tf


def numpy_weight(variable):
    """A Keras weight as a float32 numpy array, read eagerly even while a tf.function traces."""
    with tf.init_scope():
        return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def check_channels_last(layer):
    """Raises ValueError unless `layer` (a convolution or pooling layer) is channels_last."""
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ValueError(
            f"Export supports channels_last only. Received: layer {layer.name!r} with "
            f"data_format={layer.data_format!r}"
        )


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


def dense(x, layer):
    """A Keras Dense layer on `x` `[N, D]` with constant weights: `[N, units]`."""
    y = tf.matmul(x, tf.constant(numpy_weight(layer.kernel)))
    if layer.use_bias:
        y = y + tf.constant(numpy_weight(layer.bias))
    return apply_activation(y, layer.activation)


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


def runtime_zeros(x, shape):
    """Zeros of `shape` computed from `x` at run time (not folded into a constant buffer)."""
    scalar = tf.reshape(tf.slice(x, [0] * len(x.shape), [1] * len(x.shape)), []) * 0.0
    return tf.broadcast_to(scalar, shape)
