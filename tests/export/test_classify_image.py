"""`classify_image` converts grayscale and RGBA files to RGB, as its docstring says."""

import numpy as np
import tensorflow as tf

from dmnn_keras.export.predict import load_image


def test_grayscale_and_rgba_files_are_converted_to_rgb(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)
    alpha = rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)
    images = {}
    for name, pixels in {"rgb": rgb, "rgba": np.concatenate([rgb, alpha], -1), "gray": gray}.items():
        path = tmp_path / f"{name}.png"
        path.write_bytes(tf.io.encode_png(pixels).numpy())
        images[name] = load_image(str(path), 8, 8)  # what classify_image feeds the model
    np.testing.assert_array_equal(images["rgba"], rgb[None].astype("float32"))  # alpha dropped
    np.testing.assert_array_equal(images["gray"], np.repeat(gray, 3, -1)[None].astype("float32"))
