"""Deployment: TFLite (conditional execution at XNNPACK speed, quantization), SavedModel."""

from dmnn_keras.export.converters import (
    ExportContext,
    get_converter,
    register_converter,
    registered_layer_classes,
)
from dmnn_keras.export.tflite import QUANTIZATIONS, inference_module, tflite_runner, to_tflite
from dmnn_keras.export.predict import classify_image
from dmnn_keras.export.saved_model import to_saved_model
from dmnn_keras.export.batched import set_execution

# Converters of the gating methods' layers (ConvNet-AIG, channel gating, LC-Net) register on import.
from dmnn_keras.methods import register_export_converters  # noqa: E402

register_export_converters()
