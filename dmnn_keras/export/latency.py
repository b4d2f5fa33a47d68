"""Batch-1 TFLite latency of models side by side (LiteRT, XNNPACK), interleaved on the same images."""

import os
import statistics
import tempfile
import time

import numpy as np

from dmnn_keras.image_checks import check_images


def compare_latency(models, images, threads=1, rounds=3, warmup=10):
    """Per-image batch-1 TFLite latency of several models, measured alternately.

    Each Keras model is exported with `to_tflite` (dynamic models with their
    learned gates decided at run time, one `IF` per sub-block). Every round
    runs each image on every model in turn, the model that goes first
    rotating from image to image and round to round, so slow moments of a
    shared machine and the place in the order fall on all models alike; each
    image's time is its median over the rounds.

    Args:
        models: list of Keras models or `.tflite` paths.
        images: `[N, H, W, 3]` raw RGB pixels in [0, 255] (checked by
            `check_images`: finite, 3 channels).
        threads: LiteRT threads.
        rounds: passes over the images per model.
        warmup: images run once per model before timing.

    Returns:
        list (one per model) of dicts: `median_ms` (median of the per-image
        medians), `mean_ms` (their mean: the cost per image over the set) and
        `per_image_ms` `[N]`.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    from dmnn_keras.export.latency import compare_latency
    images = np.random.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    static, dynamic = compare_latency([dk.ResNet(), dk.DMNNResNet()], images, rounds=1)
    len(dynamic["per_image_ms"])  # 4
    ```
    """
    from ai_edge_litert.interpreter import Interpreter

    from dmnn_keras.export.tflite import to_tflite

    images = np.asarray(check_images(images), np.float32)
    if not len(images):
        raise ValueError(f"images must be a non-empty [N, H, W, 3] array. Received shape: {images.shape}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an int >= 1. Received: rounds={rounds!r}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, model in enumerate(models):
            if isinstance(model, (str, os.PathLike)):
                paths.append(os.fspath(model))
            else:
                paths.append(os.path.join(tmp, f"model_{i}.tflite"))
                to_tflite(model, paths[-1])
        runners = [Interpreter(model_path=p, num_threads=threads).get_signature_runner(
            "serving_default") for p in paths]
        for run in runners:
            for image in images[:warmup]:
                run(images=image[None])
        times = [[[] for _ in images] for _ in runners]
        for round_index in range(rounds):
            for i, image in enumerate(images):
                for k in range(len(runners)):
                    j = (k + i + round_index) % len(runners)
                    start = time.perf_counter()
                    runners[j](images=image[None])
                    times[j][i].append(time.perf_counter() - start)
    results = []
    for per_image in times:
        ms = np.array([1e3 * statistics.median(t) for t in per_image])
        results.append({"median_ms": float(np.median(ms)), "mean_ms": float(ms.mean()),
                        "per_image_ms": ms})
    return results
