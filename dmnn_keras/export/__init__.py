"""Deployment: TFLite (conditional execution at XNNPACK speed, quantization), SavedModel."""

from dmnn_keras.export.graph import (
    ExportContext,
    get_converter,
    register_converter,
    registered_layer_classes,
)
from dmnn_keras.export.tflite import QUANTIZATIONS, inference_module, tflite_runner, to_tflite
from dmnn_keras.export.saved_model import to_saved_model
from dmnn_keras.export.batched import set_execution
