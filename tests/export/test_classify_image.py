"""`classify_image` converts grayscale and RGBA files to RGB, as its docstring says."""

import numpy as np
import pytest
import tensorflow as tf

import dmnn_keras as dk
from dmnn_keras.export.predict import classify_image


def test_grayscale_and_rgba_files_are_converted_to_rgb(tmp_path):
    model_path = str(tmp_path / "m.tflite")
    dk.to_tflite(dk.ResNet(), model_path)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (32, 32, 1), dtype=np.uint8)
    alpha = rng.integers(0, 256, (32, 32, 1), dtype=np.uint8)
    files = {
        "rgb": rgb, "rgba": np.concatenate([rgb, alpha], -1),
        "gray": gray, "gray_as_rgb": np.repeat(gray, 3, axis=-1),
    }
    results = {}
    for name, pixels in files.items():
        path = tmp_path / f"{name}.png"
        path.write_bytes(tf.io.encode_png(pixels).numpy())
        results[name] = classify_image(model_path, str(path), top_k=3)
    for converted, reference in (("rgba", "rgb"), ("gray", "gray_as_rgb")):
        assert [n for n, _ in results[converted]["top"]] == [n for n, _ in results[reference]["top"]]
        assert [p for _, p in results[converted]["top"]] == pytest.approx(
            [p for _, p in results[reference]["top"]], abs=1e-6)
