"""Running and inspecting exported .tflite files in tests."""

import contextlib
import io

import numpy as np
import tensorflow as tf

from dmnn_keras.export import tflite_runner


def run_tflite(path, images):
    """Every output of the model at `path` over `images`, one image at a time, concatenated."""
    run = tflite_runner(path)
    outputs = [run(image) for image in images]
    return {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}


def analyze(path):
    """The TFLite analyzer's report of the model at `path` (ops per subgraph)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        tf.lite.experimental.Analyzer.analyze(model_path=path, gpu_compatibility_check=False)
    return buffer.getvalue()
