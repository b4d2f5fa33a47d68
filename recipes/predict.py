"""Classify one image with a .tflite model or a trained preset: top-5 classes and executed FLOPs.

    python recipes/predict.py --model M.tflite --image I.jpg [--labels labels.txt] [--num_threads 2]
    python recipes/predict.py --model dmnn_resnet_cifar10 --image I.jpg

`--model` is a file written by `dmnn_keras.export.to_tflite`, or a trained
preset (a shipped preset's name or a directory written by
`dmnn_keras.save_to_preset`), exported to a temporary .tflite file first.

The image is resized to the model's input size (bilinear) and passed as raw
pixels in [0, 255] (the models normalise themselves). `--labels`: one class
name per line, in class-index order (default: CIFAR-10 names for 10 classes,
else the class index). Errors (a missing file, a .keras model instead of a
.tflite one, an undecodable image) are one line; see docs/troubleshooting.md.
"""

import os
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recipes import cli  # noqa: E402  (first: TensorFlow starts without its start-up logs)
from dmnn_keras.export.predict import classify_image, load_image  # noqa: E402
from dmnn_keras.training.model_files import ModelFileError, check_tflite_file  # noqa: E402

IMAGE_FORMATS = "JPEG, PNG, GIF (first frame), BMP, WebP or JPEG XL"  # tf.io.decode_image

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Path of a .tflite model written by dmnn_keras.export.to_tflite, "
                    "or a trained preset: a shipped preset's name (e.g. dmnn_resnet_cifar10) or "
                    "a preset directory.")
flags.DEFINE_string("image", None, f"Path of a {IMAGE_FORMATS} image.")
flags.DEFINE_string("labels", None, "Optional text file with one class name per line.")
flags.DEFINE_integer("top_k", 5, "How many classes to print.")
flags.DEFINE_integer("num_threads", None, "Interpreter threads (default: LiteRT's choice).")


def check_files():
    """Raises `cli.Failure` for a missing file or a model file that is not a .tflite FlatBuffer.

    A `--model` that is not a file is a preset (`classify_image` says if it is not one).
    """
    if os.path.isfile(FLAGS.model):
        try:
            check_tflite_file(FLAGS.model, "--model")
        except ModelFileError as error:
            raise cli.Failure(error) from None
    for name in ("image", "labels"):
        path = FLAGS[name].value
        if path is not None and not os.path.isfile(path):
            raise cli.Failure(f"--{name} must be an existing file. Received: --{name}={path!r}")


def check_image():
    """Raises `cli.Failure` unless `--image` decodes (the decoder `classify_image` uses)."""
    import tensorflow as tf

    try:
        load_image(FLAGS.image, 1, 1)
    except tf.errors.InvalidArgumentError:
        raise cli.Failure(f"cannot decode {FLAGS.image} as an image: the supported formats are "
                          f"{IMAGE_FORMATS}.") from None


def main(argv):
    del argv
    check_files()
    check_image()
    try:
        result = classify_image(FLAGS.model, FLAGS.image, FLAGS.labels, FLAGS.top_k,
                                FLAGS.num_threads)
    except ValueError as error:  # classify_image's checks of the preset, image and labels
        raise cli.Failure(error) from None
    for rank, (name, probability) in enumerate(result["top"], 1):
        print(f"{rank}. {name:<24s} {probability:.4f}")
    print(f"executed FLOPs (MACs): {result['executed_flops'] / 1e6:.2f} M")
    if result["gates"] is not None:
        gates = result["gates"]
        print(f"sub-blocks run: {int(gates.sum())} of {gates.size} ({gates.mean():.0%})")


if __name__ == "__main__":
    flags.mark_flags_as_required(["model", "image"])
    cli.run(main)
