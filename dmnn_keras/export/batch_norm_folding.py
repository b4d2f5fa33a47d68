"""Which BatchNorms the export folds into the convolution before them, and the folded weights.

A BatchNorm that directly follows a convolution (and is its only consumer)
is folded into it: `kernel * scale` and `bias * scale + shift`, the formula
of `dmnn_keras.batch_norm.fold_batch_norm`.
"""

import keras
import tensorflow as tf

from dmnn_keras.batch_norm import batch_norm_affine, fold_batch_norm
from dmnn_keras.export.tf_ops import numpy_weight
from dmnn_keras.keras_compat import layer_calls

CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def bn_scale_shift(bn):
    """BatchNorm in inference as `x * scale + shift` (float32 numpy `[C]` each; see
    `batch_norm_affine`), read eagerly even while a tf.function traces."""
    with tf.init_scope():
        return batch_norm_affine(bn, "float32")


def folded_conv_weights(conv, bn=None):
    """(kernel, bias or None) of a Conv2D/DepthwiseConv2D with `bn` folded in.

    The kernel is `[kh, kw, C_in/groups, C_out]` (Conv2D) or `[kh, kw, C, multiplier]`
    (DepthwiseConv2D), float32; with `bn` the bias is `[C_out]`.
    """
    kernel = numpy_weight(conv.kernel)
    bias = numpy_weight(conv.bias) if conv.use_bias else None
    if bn is None:
        return kernel, bias
    with tf.init_scope():
        return fold_batch_norm(kernel, bias, bn,
                               depthwise=isinstance(conv, keras.layers.DepthwiseConv2D))


def folded_batch_norms(model):
    """`{conv name: the BatchNorm directly after it (its only consumer)}` in a functional model."""
    consumers = {}
    for layer in model.layers:
        for inputs, _ in layer_calls(layer):
            for t in inputs:
                consumers.setdefault(id(t), []).append(layer)
    folded = {}
    for layer in model.layers:
        if not isinstance(layer, CONVOLUTIONS):
            continue
        calls = layer_calls(layer)
        if len(calls) != 1:
            continue
        (out,) = calls[0][1]
        users = consumers.get(id(out), [])
        if len(users) == 1 and isinstance(users[0], keras.layers.BatchNormalization):
            bn = users[0]
            if len(layer_calls(bn)) == 1 and bn.axis in (-1, 3):
                folded[layer.name] = bn
    return folded
