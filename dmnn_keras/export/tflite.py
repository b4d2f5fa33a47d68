"""`to_tflite`: batch-1 TFLite models whose skipped sub-blocks really cost nothing."""

import os

import numpy as np
import tensorflow as tf

from dmnn_keras.export.graph import MODES, check_convertible, gate_layout, trace_model
from dmnn_keras.export.paths import check_output_path
from dmnn_keras.flops import model_flops_table

QUANTIZATIONS = (None, "float16", "dynamic_range", "int8")


def default_mode(model):
    """"dynamic" for models with gated blocks in their FLOPs table (gates, exits), "static" otherwise."""
    return "dynamic" if model_flops_table(model)["blocks"] else "static"


def inference_module(model, mode=None):
    """A `tf.Module` whose `serve(images [1, H, W, 3])` is the exported graph.

    Returns a dict with `logits` `[1, num_classes]`, `executed_flops` `[1]`
    and, for gated models, `gates` `[1, sum of groups]` (blocks in network order).
    """
    mode = default_mode(model) if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} or None. Received: mode={mode!r}")
    check_convertible(model)
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(
            f"Export needs a fixed input shape. Received: model input shape {model.inputs[0].shape}"
        )
    module = tf.Module()

    @tf.function(autograph=False, input_signature=[tf.TensorSpec((1,) + shape, tf.float32, name="images")])
    def serve(images):
        return trace_model(model, images, mode)

    module.serve = serve
    return module


def _converter(module, quantization, representative_dataset):
    concrete = module.serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic_range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(representative_dataset)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def _representative(dataset):
    """A generator factory yielding `[images [1, H, W, 3] float32]`."""

    def generate():
        source = dataset() if callable(dataset) else dataset
        if hasattr(source, "as_numpy_iterator"):
            source = source.as_numpy_iterator()
        for item in source:
            if isinstance(item, (tuple, list)):
                item = item[0]
            if isinstance(item, dict):
                item = next(iter(item.values()))
            images = np.asarray(item, np.float32)
            if images.ndim == 3:
                images = images[None]
            for image in images:
                yield [image[None]]

    return generate


def to_tflite(model, path, mode=None, quantization=None, representative_dataset=None):
    """Writes a batch-1 `.tflite` model of the inference pass of `model`.

    The graph is rebuilt from the Keras weights as constants, with BatchNorm
    folded into the convolutions; training-only parts (category heads, the
    resource loss, gate noise) are not exported.

    Args:
        model: a dmnn_keras model (or any functional Keras model whose layers
            have converters, see `dmnn_keras.export.register_converter`).
        path: the `.tflite` file to write.
        mode: "dynamic" (default for gated models): the controllers compute
            the gates and every sub-block runs inside `tf.cond` on its gate
            (TFLite `IF` ops), so skipped sub-blocks cost nothing; the weights
            of each sub-block are constants inside its branch so that XNNPACK
            delegates it. "static" (default otherwise): a plain graph; for a
            gated model every sub-block runs (equal to `force_gates(model, 1.0)`).
        quantization: None (float32), "float16" (float16 weights),
            "dynamic_range" (int8 weights, float activations) or "int8" (full
            integer: int8 weights and activations, float32 input and outputs;
            needs `representative_dataset`).
        representative_dataset: for "int8": a `tf.data.Dataset` of image
            batches or `(images, labels)` batches, an iterable of image arrays,
            or a callable returning one. 100-500 images are typical.

    Returns:
        dict with `path`, `size_bytes`, `mode`, `quantization`, `outputs`
        (output name -> shape) and `gate_layout` (`[(block name, groups)]`, the
        order of the `gates` output).

    Outputs of the TFLite model (signature "serving_default", input "images"
    `[1, H, W, 3]` float32 raw pixels in [0, 255]): `logits` `[1, num_classes]`
    (the model's output: for a backbone built with `include_top=False`, its
    features, e.g. `[1, C]` with `pooling="avg"`), `executed_flops` `[1]`
    (multiply-accumulates run for this image, as `dmnn_keras.profile` counts
    them) and, for gated models, `gates` `[1, sum of groups]`.

    Example:
    ```python
    import dmnn_keras as dk
    info = dk.to_tflite(dk.DMNNResNet(), "dmnn.tflite")
    info["outputs"]  # {"logits": (1, 10), "gates": (1, 16), "executed_flops": (1,)}
    info["mode"], info["gate_layout"][0]  # ("dynamic", ("conv2_block1", 4))
    ```
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"quantization must be one of {QUANTIZATIONS}. Received: quantization={quantization!r}"
        )
    if quantization == "int8" and representative_dataset is None:
        raise ValueError(
            "quantization='int8' needs representative_dataset (images to calibrate the "
            "activation ranges). Received: representative_dataset=None"
        )
    mode = default_mode(model) if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} or None. Received: mode={mode!r}")
    path = check_output_path(path)
    module = inference_module(model, mode)
    content = _converter(module, quantization, representative_dataset).convert()
    with open(path, "wb") as f:
        f.write(content)
    outputs = module.serve.get_concrete_function().structured_outputs
    return {
        "path": path,
        "size_bytes": len(content),
        "mode": mode,
        "quantization": quantization,
        "outputs": {k: tuple(v.shape) for k, v in outputs.items()},
        "gate_layout": gate_layout(model),
    }


def tflite_runner(path, num_threads=None):
    """`run(image [H, W, 3] or [1, H, W, 3]) -> dict of numpy outputs` with ai-edge-litert (XNNPACK)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=os.fspath(path), num_threads=num_threads)
    runner = interpreter.get_signature_runner("serving_default")

    def run(image):
        image = np.asarray(image, np.float32)
        if image.ndim == 3:
            image = image[None]
        return runner(images=image)

    run.interpreter = interpreter
    return run
