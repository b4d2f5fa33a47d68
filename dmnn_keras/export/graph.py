"""Re-implementing a Keras model's inference pass as a plain TensorFlow graph (the walker).

The exported graph never reads a Keras variable: every weight becomes a
`tf.constant` created from numpy *where it is used*. In `mode="dynamic"` each
gated sub-block runs inside `tf.cond` on its gate and creates its weights
inside the branch function, so the TFLite converter turns it into an `IF` op
whose branch subgraph holds its own constant weights (XNNPACK delegates such
branches; captured variables would become subgraph inputs that XNNPACK cannot
delegate, ~5x slower, measured). The else branch passes the running sum
through (`cond(g, lambda: acc + path(x), lambda: acc)`), which adds no
constant to the file (an else branch returning `zeros_like` did: 3.7x).

`trace_model` walks the functional graph layer by layer and calls each
layer's converter. The parts, one job each:

  * `converters`: the converter registry and `ExportContext` (how to write
    and register a converter);
  * `batch_norm_folding`: which BatchNorm is folded into which convolution;
  * `tf_ops`: plain TF ops with constant weights that converters share;
  * `keras_converters`: plain Keras layers;
  * `block_converters`: `GateController`, `MultiPathBlock`, `ResourceLoss`;
  * `method_converters`: the gating methods' layers (registered by
    `dmnn_keras.methods`).
"""

import keras
import tensorflow as tf

# Imported for their converters, which register on import.
from dmnn_keras.export import block_converters, keras_converters  # noqa: F401
from dmnn_keras.export.batch_norm_folding import folded_batch_norms
from dmnn_keras.export.converters import ExportContext, get_converter
from dmnn_keras.export.exits import trace_exits
from dmnn_keras.export.walker import walk
from dmnn_keras.flops import executed_flops, model_flops_table
from dmnn_keras.models.dynamic_model import logits_tensor

MODES = ("dynamic", "static")


def check_convertible(model):
    """Raises ValueError naming every layer that has no converter."""
    if not isinstance(model, keras.Operation) or not hasattr(model, "operations"):
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
            "dmnn_keras.export.register_converter(LayerClass) (see dmnn_keras.export.converters)."
        )


def trace_model(model, images, mode):
    """Runs the model's inference pass on `images` with plain TF ops (inside a tf.function).

    Returns:
        dict with `logits`, `gates` (concatenated `[batch, sum G]`, only for
        gated models) and `executed_flops` `[batch]`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
    ctx = ExportContext(mode, folded_batch_norms(model))
    env = {id(model.inputs[0]): images}
    if getattr(model, "exit_names", None):
        return trace_exits(model, env, ctx)
    walk(model.layers, env, ctx)
    logits = env[id(logits_tensor(model))]
    batch = tf.shape(images)[0]
    gates_by_block = {layer.name: gates for layer, gates in ctx.gates}
    outputs = {"logits": logits}
    if ctx.gates:
        outputs["gates"] = tf.concat([g for _, g in ctx.gates], axis=-1)
    outputs["executed_flops"] = executed_flops(model_flops_table(model), gates_by_block, batch)
    return outputs


def gate_layout(model):
    """`[(block name, number of gates)]` in the order of the `gates` output (the FLOPs table's blocks)."""
    return [(block["name"], len(block["paths"])) for block in model_flops_table(model)["blocks"]]
