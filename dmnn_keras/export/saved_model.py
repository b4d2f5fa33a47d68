"""SavedModel export for TF Serving: a batch signature with logits, gates and executed FLOPs."""


import keras
import tensorflow as tf

from dmnn_keras.export.paths import check_output_path
from dmnn_keras.flops import executed_flops, model_flops_table
from dmnn_keras.gates import gate_probe


def to_saved_model(model, path):
    """Writes a SavedModel with a `serving_default` signature taking a batch of images.

    Inference only (category heads, gate noise and the resource loss are left
    out); sub-blocks run as the model's blocks are configured (`execution`).

    Args:
        model: a dmnn_keras model.
        path: the SavedModel directory.

    Returns:
        The path. Load with `tf.saved_model.load(path)`; call
        `loaded.serve(images)` or `loaded.signatures["serving_default"](images=...)`
        with images `[batch, H, W, 3]` float32 raw pixels; outputs `logits`
        `[batch, num_classes]`, `executed_flops` `[batch]` and, for gated
        models, `gates` `[batch, sum of groups]`.

    Example:
    ```python
    import numpy as np
    import tensorflow as tf
    import dmnn_keras as dk
    dk.to_saved_model(dk.DMNNResNet(), "dmnn_saved_model")
    loaded = tf.saved_model.load("dmnn_saved_model")
    outputs = loaded.serve(np.zeros((2, 32, 32, 3), "float32"))
    outputs["logits"].shape, outputs["gates"].shape  # ((2, 10), (2, 16))
    outputs["executed_flops"].shape  # (2,)
    ```
    """
    path = check_output_path(path, directory=True)
    table = model_flops_table(model)
    probe, names = gate_probe(model)
    shape = tuple(model.inputs[0].shape[1:])

    def serve(images):
        results = probe(images, training=False)
        results = results if isinstance(results, (list, tuple)) else [results]
        logits, gates = results[0], list(results[1:])
        batch = tf.shape(images)[0]
        outputs = {"logits": logits}
        if gates:
            outputs["gates"] = tf.concat(gates, axis=-1)
        outputs["executed_flops"] = executed_flops(table, dict(zip(names, gates)), batch)
        return outputs

    archive = keras.export.ExportArchive()
    archive.track(probe)
    archive.add_endpoint(
        "serve", serve, input_signature=[tf.TensorSpec((None,) + shape, tf.float32, name="images")]
    )
    archive.write_out(path, verbose=False)
    return path
