"""Classify one image with an exported .tflite model: top-5 classes and the image's executed FLOPs.

    python recipes/predict.py --model M.tflite --image I.jpg [--labels labels.txt] [--num_threads 2]

The image is resized to the model's input size (bilinear) and passed as raw
pixels in [0, 255] (the models normalise themselves). `--labels`: one class
name per line, in class-index order (default: CIFAR-10 names for 10 classes,
else the class index).
"""

import os

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Path of a .tflite model written by dmnn_keras.export.to_tflite.")
flags.DEFINE_string("image", None, "Path of a JPEG/PNG/BMP/GIF image.")
flags.DEFINE_string("labels", None, "Optional text file with one class name per line.")
flags.DEFINE_integer("top_k", 5, "How many classes to print.")
flags.DEFINE_integer("num_threads", None, "Interpreter threads (default: LiteRT's choice).")

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


def predict(model_path, image_path, labels_path=None, top_k=5, num_threads=None):
    """Returns dict with `top` [(name, probability)], `executed_flops`, `gates` (or None)."""
    from ai_edge_litert.interpreter import Interpreter

    for name, path in (("model", model_path), ("image", image_path)):
        if not path or not os.path.isfile(path):
            raise ValueError(f"{name} must be an existing file. Received: --{name}={path!r}")
    interpreter = Interpreter(model_path=model_path, num_threads=num_threads)
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


def main(argv):
    del argv
    result = predict(FLAGS.model, FLAGS.image, FLAGS.labels, FLAGS.top_k, FLAGS.num_threads)
    for rank, (name, probability) in enumerate(result["top"], 1):
        print(f"{rank}. {name:<24s} {probability:.4f}")
    print(f"executed FLOPs (MACs): {result['executed_flops'] / 1e6:.2f} M")
    if result["gates"] is not None:
        gates = result["gates"]
        print(f"sub-blocks run: {int(gates.sum())} of {gates.size} ({gates.mean():.0%})")


if __name__ == "__main__":
    flags.mark_flags_as_required(["model", "image"])
    app.run(main)
