"""Exporting an `EarlyExitModel`: each segment after an exit runs inside a `tf.cond`.

In `mode="dynamic"` the graph computes the first exit; if its top softmax
probability reaches the confidence threshold it answers, else (the false
branch of a `tf.cond`) the next segment runs, and so on: an image that
leaves early runs none of the later layers. The later segments' weights are
created inside their branch functions (`dmnn_keras.export.graph`), so XNNPACK
delegates them. In `mode="static"` the backbone runs alone and its
classifier answers (gates all 1, the executed MACs the backbone's: the exit
heads are not computed).
"""

import numpy as np
import tensorflow as tf

from dmnn_keras.export.converters import register_converter
from dmnn_keras.export.tf_ops import numpy_weight
from dmnn_keras.export.walker import layers_for, walk
from dmnn_keras.flops import flops_table, model_flops_table
from dmnn_keras.layers.exit_cascade import ExitCascade, top_probability


@register_converter(ExitCascade)
def _convert_exit_cascade(layer, inputs, ctx):
    # Every exit on: the final logits, every image going on past every exit (mode="static").
    final = inputs[-1]
    return [final, tf.ones([tf.shape(final)[0], len(inputs) - 1])]


def _reached_flops(model):
    """MACs per image run by an image that leaves at each exit, then at the final classifier."""
    table = model_flops_table(model)
    return np.cumsum([table["always_on"]] + [b["paths"][0] for b in table["blocks"]])


def trace_exits(model, env, ctx):
    """The exported outputs of an `EarlyExitModel` (`env` holds the images).

    Returns dict `logits` `[1, classes]`, `gates` `[1, E]` (1: the image went
    on past that exit) and `executed_flops` `[1]`.
    """
    heads = model.exit_logits_tensors()
    count = len(heads) - 1
    images = env[id(model.inputs[0])]
    if ctx.dynamic and images.shape[0] != 1:
        raise ValueError("mode='dynamic' needs a batch-1 graph (each image decides where it "
                         f"leaves). Received: images of shape {tuple(images.shape)}")
    reached = _reached_flops(model)

    def answer(k, logits):
        gates = np.zeros((1, count), np.float32)
        gates[0, :k] = 1.0
        return logits, tf.constant(gates), tf.constant([reached[k]], tf.float32)

    if not ctx.dynamic:  # the backbone alone: the exit heads are not computed
        walk(layers_for(model, heads[-1:]), env, ctx)
        logits, gates, _ = answer(count, env[id(heads[-1])])
        backbone = flops_table(model.inputs[0], heads[-1:])["always_on"]
        return {"logits": logits, "gates": gates,
                "executed_flops": tf.constant([backbone], tf.float32)}
    threshold = float(numpy_weight(model.exit_cascade.confidence_threshold))

    def from_exit(k, env):
        env = dict(env)
        walk(layers_for(model, heads[k:k + 1]), env, ctx)
        logits = env[id(heads[k])]
        if k == count:
            return answer(k, logits)
        confident = top_probability(logits)[0] >= threshold  # the rule of ExitCascade
        return tf.cond(confident, lambda: answer(k, logits), lambda: from_exit(k + 1, env))

    logits, gates, flops = from_exit(0, env)
    return {"logits": logits, "gates": gates, "executed_flops": flops}
