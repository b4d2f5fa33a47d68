"""`ExitCascade`: which classifier of an early-exit network answers for each image."""

import keras
from keras import ops

from dmnn_keras.keyword_arguments import LAYER_ARGUMENTS, check_keyword_arguments


def check_confidence_threshold(value):
    """Raises ValueError unless `value` is a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError("confidence_threshold must be a number in [0, 1]. "
                         f"Received: confidence_threshold={value!r}")


def top_probability(logits):
    """The largest softmax probability of each image: `[batch, classes]` -> `[batch]` float32."""
    return ops.max(ops.softmax(ops.cast(logits, "float32"), axis=-1), axis=-1)


def continuation_gates(exit_logits, threshold, dtype="float32"):
    """`[batch, E]` 0/1 of `dtype`: gate k is 1 when the image goes on past exit k.

    An image leaves at the first of the E exits whose top softmax probability
    is at least `threshold`; every gate after that exit is 0 too.
    """
    going_on, gates = None, []
    threshold = ops.cast(threshold, "float32")
    for logits in exit_logits:
        below = ops.cast(top_probability(logits) < threshold, dtype)
        going_on = below if going_on is None else going_on * below
        gates.append(going_on)
    return ops.stack(gates, axis=-1)


@keras.saving.register_keras_serializable(package="dmnn_keras")
class ExitCascade(keras.layers.Layer):
    """Picks, per image, the logits of the first exit that is confident enough.

    In inference an image takes the logits of the first exit whose top
    softmax probability is >= `confidence_threshold`, else the final
    classifier's. In training it returns the final logits (every exit is
    trained on its own loss, `EarlyExitModel.compute_loss`).

    The threshold is a non-trainable weight (saved with the model; set by
    `dmnn_keras.calibrate_flops`). 0 sends every image out at the first exit,
    1 (in practice) runs every image through the whole network.

    Args:
        confidence_threshold: the initial threshold, a number in [0, 1].
        **kwargs: Keras layer arguments (`name`, ...).

    Call args:
        inputs: `[exit_1, ..., exit_E, final]`, logits `[batch, classes]` each.
        training: bool; True returns the final logits.

    Outputs: `(logits [batch, classes], gates [batch, E])`: gate k is 1 when
    the image goes on past exit k (`continuation_gates`): the segment after
    that exit runs, as a whole-block gate runs its block.

    Example:
    ```python
    import numpy as np
    from dmnn_keras.layers import ExitCascade
    first = np.array([[4.0, 0.0], [0.0, 0.1]], "float32")  # confident, unsure
    final = np.array([[0.0, 9.0], [0.0, 9.0]], "float32")
    logits, gates = ExitCascade(confidence_threshold=0.9)([first, final])
    np.asarray(logits).tolist()  # [[4.0, 0.0], [0.0, 9.0]]
    np.asarray(gates).tolist()  # [[0.0], [1.0]]
    ```
    """

    def __init__(self, confidence_threshold=0.9, **kwargs):
        check_keyword_arguments(self, ExitCascade, kwargs, LAYER_ARGUMENTS)
        super().__init__(**kwargs)
        check_confidence_threshold(confidence_threshold)
        self.initial_threshold = float(confidence_threshold)
        self.confidence_threshold = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_threshold),
            trainable=False, name="confidence_threshold", dtype="float32", autocast=False,
        )

    def call(self, inputs, training=None):
        *exits, final = inputs
        gates = continuation_gates(exits, self.confidence_threshold, self.compute_dtype)
        if training:
            return final, gates
        chosen = final
        for k in reversed(range(len(exits))):  # the earliest confident exit wins
            here = 1.0 - gates[:, k:k + 1] if k == 0 else gates[:, k - 1:k] * (1.0 - gates[:, k:k + 1])
            chosen = ops.where(ops.cast(here, "bool"), ops.cast(exits[k], chosen.dtype), chosen)
        return chosen, gates

    def set_threshold(self, value):
        """Sets the confidence threshold (a number in [0, 1])."""
        check_confidence_threshold(value)
        self.confidence_threshold.assign(float(value))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[-1]), (input_shape[-1][0], len(input_shape) - 1)

    def get_config(self):
        return {**super().get_config(), "confidence_threshold": self.initial_threshold}
