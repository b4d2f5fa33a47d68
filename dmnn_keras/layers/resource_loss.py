"""The resource loss over all gates of a network, and its metrics."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dmnn_keras")
class ResourceLoss(keras.layers.Layer):
    """Adds the DMNN resource loss and tracks `flops_ratio` and `execution_rate`.

    Sits on the main path (it returns its first input unchanged) so that it
    sees the gates of every block in one place. With `t = flops_target`:

        rate_l  = mean over batch and sub-blocks of block l's gates
        ratio   = batch mean of executed_flops(image) / full_flops
        loss    = loss_weight * (mean_l (rate_l - t)^2 + (ratio - t)^2)

    `executed_flops(image) = always_on_flops + sum_l sum_j gate_lj * path_flops[l][j]`.
    The metrics `flops_ratio` and `execution_rate` (mean of rate_l) appear in
    `model.fit` logs.

    Args:
        flops_target: float in (0, 1].
        path_flops: list over gated blocks of lists of per-sub-block MACs.
        always_on_flops: MACs that run for every image (stem, shortcuts,
            controllers, head, ungated blocks).
        loss_weight: lambda, the weight of the whole resource loss.

    Call args:
        inputs: `[outputs, gates_1, ..., gates_L]`, gates_l `[batch, groups_l]`.

    Returns:
        `outputs`, unchanged.
    """

    def __init__(self, flops_target, path_flops, always_on_flops, loss_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        check_flops_target(flops_target)
        self.flops_target = float(flops_target)
        self.path_flops = [[float(f) for f in block] for block in path_flops]
        self.always_on_flops = float(always_on_flops)
        self.loss_weight = float(loss_weight)
        self.full_flops = self.always_on_flops + sum(sum(b) for b in self.path_flops)
        self.flops_ratio_tracker = keras.metrics.Mean(name="flops_ratio")
        self.execution_rate_tracker = keras.metrics.Mean(name="execution_rate")

    def executed_flops(self, gates_list):
        """Executed MACs per image `[batch]` from the gates of every block."""
        total = self.always_on_flops
        for gates, flops in zip(gates_list, self.path_flops):
            total = total + ops.sum(
                ops.cast(gates, "float32") * ops.convert_to_tensor(flops, "float32"), axis=-1
            )
        return total

    def call(self, inputs, training=None):
        outputs, gates_list = inputs[0], list(inputs[1:])
        if not gates_list:
            return outputs
        ratio = ops.mean(self.executed_flops(gates_list)) / self.full_flops
        rates = ops.stack([ops.mean(ops.cast(g, "float32")) for g in gates_list])
        t = self.flops_target
        loss = ops.mean(ops.square(rates - t)) + ops.square(ratio - t)
        self.add_loss(self.loss_weight * loss)
        self.flops_ratio_tracker.update_state(ratio)
        self.execution_rate_tracker.update_state(ops.mean(rates))
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            flops_target=self.flops_target, path_flops=self.path_flops,
            always_on_flops=self.always_on_flops, loss_weight=self.loss_weight,
        )
        return config


def check_flops_target(flops_target):
    """Raises ValueError unless 0 < flops_target <= 1."""
    if not isinstance(flops_target, (int, float)) or not 0.0 < flops_target <= 1.0:
        raise ValueError(
            f"flops_target must be a number in (0, 1]. Received: flops_target={flops_target!r}"
        )
