"""Classify one image with an exported .tflite model: top-5 classes and the image's executed FLOPs.

    python recipes/predict.py --model M.tflite --image I.jpg [--labels labels.txt] [--num_threads 2]

The image is resized to the model's input size (bilinear) and passed as raw
pixels in [0, 255] (the models normalise themselves). `--labels`: one class
name per line, in class-index order (default: CIFAR-10 names for 10 classes,
else the class index).
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dmnn_keras.export.predict import classify_image  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Path of a .tflite model written by dmnn_keras.export.to_tflite.")
flags.DEFINE_string("image", None, "Path of a JPEG/PNG/BMP/GIF image.")
flags.DEFINE_string("labels", None, "Optional text file with one class name per line.")
flags.DEFINE_integer("top_k", 5, "How many classes to print.")
flags.DEFINE_integer("num_threads", None, "Interpreter threads (default: LiteRT's choice).")


def main(argv):
    del argv
    result = classify_image(FLAGS.model, FLAGS.image, FLAGS.labels, FLAGS.top_k, FLAGS.num_threads)
    for rank, (name, probability) in enumerate(result["top"], 1):
        print(f"{rank}. {name:<24s} {probability:.4f}")
    print(f"executed FLOPs (MACs): {result['executed_flops'] / 1e6:.2f} M")
    if result["gates"] is not None:
        gates = result["gates"]
        print(f"sub-blocks run: {int(gates.sum())} of {gates.size} ({gates.mean():.0%})")


if __name__ == "__main__":
    flags.mark_flags_as_required(["model", "image"])
    app.run(main)
