"""`profile`: parameters and FLOPs of a model, full and as executed on images."""

import numpy as np

from dmnn_keras.flops import executed_flops_per_image, full_flops, model_flops_table
from dmnn_keras.gates import image_batches, predict_gates


def _count(weights):
    return int(sum(np.prod(w.shape) for w in weights))


def profile(model, images=None, batch_size=64, predictions=None):
    """Parameters and multiply-accumulates of `model`, optionally per image.

    Args:
        model: a dmnn_keras model (any functional Keras model works for the
            static counts).
        images: optional `[N, H, W, 3]` array or dataset of RGB pixels in
            [0, 255]; NaN/inf, 1- or 4-channel images are a ValueError (see
            `predict_gates`).
        batch_size: batch size for image arrays.
        predictions: optional `(gates, logits)` that `predict_gates(model,
            images, return_logits=True)` returned; given, `images` is not
            needed and no inference runs (the per-image entries come from them).

    Returns:
        dict with
          * `params`: trainable parameters of the inference model (category
            heads excluded), `controller_params`: those of the controllers;
          * `flops`: MACs per image with every sub-block on,
            `always_on_flops`: the part that never skips;
          * with images or predictions: `executed_flops` `[N]` MACs per image, `executed_flops_mean`,
            `flops_ratio` (mean executed / full), `execution_rates`
            (block name -> fraction of its gates on) and `path_rates`
            (block name -> per gate rate). Executed MACs follow each block's
            `compute_flops()` (linear in the gates, plus bilinear `pairs` for
            channel gating).

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.DMNNResNet()
    stats = dk.profile(model)
    stats["params"], stats["flops"]  # (542_410, 8_236_288)
    images = np.random.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    stats = dk.profile(model, images)
    stats["executed_flops"].shape  # (4,)
    dk.profile(dk.force_gates(model, 1.0), images)["flops_ratio"]  # 1.0
    ```
    (An untrained model's gates start mostly on, so its own ratio is close
    to, but not always exactly, 1.0.)
    """
    table = model_flops_table(model)
    full = full_flops(table)
    heads = [
        w for c in getattr(model, "controllers", [])
        if getattr(c, "category_dense", None) is not None
        for w in c.category_dense.trainable_weights
    ]
    result = {
        "params": _count(model.trainable_weights) - _count(heads),
        "controller_params": _count(
            w for c in getattr(model, "controllers", []) for w in c.trainable_weights
        ) - _count(heads),
        "flops": int(full),
        "always_on_flops": int(table["always_on"]),
    }
    if images is None and predictions is None:
        return result
    if predictions is not None:
        gates, count = _check_predictions(predictions, table)
    elif table["blocks"]:
        gates, count = predict_gates(model, images, batch_size), None
    else:
        gates, count = {}, sum(len(batch) for batch in image_batches(images, batch_size))
    executed = executed_flops_per_image(table, gates, count)
    result["execution_rates"] = {name: float(g.mean()) for name, g in gates.items()}
    result["path_rates"] = {name: g.mean(axis=0).tolist() for name, g in gates.items()}
    result["executed_flops"] = executed
    result["executed_flops_mean"] = float(executed.mean())
    result["flops_ratio"] = float(executed.mean() / full)
    return result


def _check_predictions(predictions, table):
    """`(gates, number of images)` from `profile`'s `predictions`, or a ValueError."""
    if not (isinstance(predictions, (tuple, list)) and len(predictions) == 2
            and isinstance(predictions[0], dict)):
        raise ValueError("predictions must be (gates, logits) as returned by "
                         "predict_gates(model, images, return_logits=True). "
                         f"Received: {type(predictions).__name__}")
    gates, logits = predictions
    names = sorted(b["name"] for b in table["blocks"])
    if sorted(gates) != names:
        raise ValueError(f"predictions' gates must have the model's gated blocks {names}. "
                         f"Received: {list(gates)}")
    return gates, len(logits)
