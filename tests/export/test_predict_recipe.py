"""recipes/predict.py on an exported model and a real CIFAR-10 JPEG."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import dmnn_keras as dk
from dmnn_keras.export import to_tflite

from dmnn_keras.export.predict import CIFAR10_NAMES, classify_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_predict_top5_and_flops(tmp_path):
    model = dk.DMNNResNet(seed=0)
    image = next(iter(dk.data.load_dataset("cifar10", "test", batch_size=1, training=False,
                                           max_examples=1)))[0][0]
    jpeg = tmp_path / "image.png"  # lossless, so the pixels match exactly
    jpeg.write_bytes(tf.io.encode_png(tf.cast(image, tf.uint8)).numpy())
    to_tflite(model, str(tmp_path / "m.tflite"))
    result = classify_image(str(tmp_path / "m.tflite"), str(jpeg))
    logits = model(image[None], training=False).numpy()[0]
    assert [name for name, _ in result["top"]] == [CIFAR10_NAMES[i] for i in np.argsort(-logits)[:5]]
    assert result["executed_flops"] == pytest.approx(dk.profile(model, image[None].numpy())["executed_flops"][0])
    with pytest.raises(ValueError, match="image"):
        classify_image(str(tmp_path / "m.tflite"), str(tmp_path / "missing.jpg"))


def test_predict_takes_a_preset_name(tmp_path):
    """The recipe exports the preset to a temporary .tflite: the Keras preset's class and MACs."""
    image = next(iter(dk.data.load_dataset("cifar10", "test", batch_size=1, training=False,
                                           max_examples=1)))[0][0]
    png = tmp_path / "image.png"
    png.write_bytes(tf.io.encode_png(tf.cast(image, tf.uint8)).numpy())
    with pytest.raises(ValueError, match=r"\.tflite file or a preset\. Unknown preset 'nope'"):
        classify_image("nope", str(png))
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", "predict.py"), "--model",
         "dmnn_resnet_cifar10", "--image", str(png)],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = dk.from_preset("dmnn_resnet_cifar10")
    top = CIFAR10_NAMES[int(np.argmax(model(image[None], training=False)[0]))]
    macs = dk.profile(model, image[None].numpy())["executed_flops"][0] / 1e6
    assert proc.stdout.startswith(f"1. {top} ")
    assert f"executed FLOPs (MACs): {macs:.2f} M" in proc.stdout and " of 8 (" in proc.stdout
