"""Batched inference in Keras/TF that skips the work of gates that are off."""

from dmnn_keras.layers.multi_path_block import EXECUTIONS, MultiPathBlock


def set_execution(model, execution):
    """Sets `execution` ("masked" or "gather") on every `MultiPathBlock` of `model`, in place.

    "gather" runs each sub-block only on the samples whose gate is on (inference
    only; training still runs "masked"): per block and call it either sorts the
    samples by gate pattern and runs each pattern's sub-blocks on a contiguous
    slice (large activations), or gathers the samples of each sub-block
    (weights larger than the activations); see `MultiPathBlock`. The model's cached predict function is
    reset so that `predict` retraces. Outputs are unchanged (logits
    `[batch, num_classes]`).

    Args:
        model: a Keras model with `MultiPathBlock` layers (DMNN models).
        execution: "masked" or "gather".

    Returns:
        The number of blocks changed (int).

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.DMNNResNet()
    dk.export.set_execution(model, "gather")  # 4
    model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0).shape  # (2, 10)
    ```
    """
    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {EXECUTIONS}. Received: execution={execution!r}")
    count = 0
    for layer in model.layers:
        if isinstance(layer, MultiPathBlock):
            layer.execution = execution
            count += 1
    if hasattr(model, "predict_function"):
        model.predict_function = None
    return count
