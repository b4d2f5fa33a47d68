"""Classifying one image with an exported .tflite model (LiteRT)."""

import os
import tempfile

import numpy as np

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck")


def load_image(path, height, width):
    """The image as float32 [1, height, width, 3] in [0, 255]."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32), (height, width))
    return tf.clip_by_value(image, 0.0, 255.0).numpy()[None]


def read_labels(path, num_classes):
    if path is None:
        return list(CIFAR10_NAMES) if num_classes == 10 else [str(i) for i in range(num_classes)]
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    if len(names) != num_classes:
        raise ValueError(
            f"labels must list {num_classes} class names. Received: {len(names)} lines in {path}"
        )
    return names


def tflite_file(model, directory):
    """`model` as a .tflite path: the file itself, or the preset it names exported into `directory`."""
    if model and os.path.isfile(model):
        return model
    from dmnn_keras.export.tflite import to_tflite
    from dmnn_keras.presets import from_preset

    try:
        keras_model = from_preset(model)
    except ValueError as error:
        raise ValueError(f"model must be an existing .tflite file or a preset. {error}") from None
    path = os.path.join(directory, "model.tflite")
    to_tflite(keras_model, path)
    return path


def classify_image(model_path, image_path, labels_path=None, top_k=5, num_threads=None):
    """Top classes and executed FLOPs of one image under a .tflite model or a trained preset.

    Args:
        model_path: a file written by `dmnn_keras.export.to_tflite`, or a
            preset (a shipped preset's name such as "dmnn_resnet_cifar10", or
            a directory written by `dmnn_keras.save_to_preset`), exported to a
            temporary .tflite file first.
        image_path: a JPEG/PNG/BMP/GIF image, decoded to RGB (grayscale is
            repeated to 3 channels; an alpha channel is dropped, transparent
            pixels keep their stored colour) and resized bilinearly to the
            model's input, pixels in [0, 255].
        labels_path: optional text file, one class name per line (default:
            the CIFAR-10 names for 10 classes, else "0", "1", ...).
        top_k: number of classes returned.
        num_threads: None or int, threads of the LiteRT interpreter.

    Returns:
        dict with `top` [(name, probability)] (top_k entries), `executed_flops`
        (MACs of this image) and `gates` `[sum G]` (None for static models).

    Example:
    ```python
    import dmnn_keras as dk
    dk.to_tflite(dk.DMNNResNet(), "dmnn.tflite")
    result = dk.export.classify_image("dmnn.tflite", "cat.png", top_k=3)
    len(result["top"]), result["gates"].shape  # (3, (16,))
    ```
    """
    from ai_edge_litert.interpreter import Interpreter

    if not image_path or not os.path.isfile(image_path):
        raise ValueError(f"image must be an existing file. Received: --image={image_path!r}")
    with tempfile.TemporaryDirectory() as directory:
        interpreter = Interpreter(model_path=tflite_file(model_path, directory),
                                  num_threads=num_threads)
        runner = interpreter.get_signature_runner("serving_default")
        shape = runner.get_input_details()["images"]["shape"]
        outputs = runner(images=load_image(image_path, int(shape[1]), int(shape[2])))
    logits = outputs["logits"][0].astype(np.float64)
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    names = read_labels(labels_path, len(logits))
    order = np.argsort(-probabilities)[:top_k]
    return {
        "top": [(names[i], float(probabilities[i])) for i in order],
        "executed_flops": float(outputs["executed_flops"][0]),
        "gates": outputs["gates"][0] if "gates" in outputs else None,
    }
