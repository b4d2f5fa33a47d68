"""Batched inference in Keras/TF that skips the work of gates that are off."""

from dmnn_keras.layers.multi_path_block import EXECUTIONS, MultiPathBlock


def set_execution(model, execution):
    """Sets `execution` ("masked" or "gather") on every `MultiPathBlock` of `model`, in place.

    "gather" runs each sub-block only on the samples whose gate is on (inference
    only; training still runs "masked"). The model's cached predict function is
    reset so that `predict` retraces. Returns the number of blocks changed.
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
