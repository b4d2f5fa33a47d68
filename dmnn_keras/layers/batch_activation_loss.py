"""The batch activation loss of channel gating (Herrmann, Bowen & Zabih)."""

import keras
from keras import ops

from dmnn_keras.flops import gateable_fraction
from dmnn_keras.layers.resource_loss import ResourceLoss


@keras.saving.register_keras_serializable(package="dmnn_keras")
class BatchActivationLoss(ResourceLoss):
    """`loss_weight * (t - B)^2`, B the batch's fraction of gateable MACs executed.

        B = (batch mean of executed_flops(image) - always_on_flops) / gateable_flops

    with executed FLOPs counted exactly, including the bilinear terms of
    channel gates (`pair_flops`: a convolution between two gated groups runs
    only when both are on), and `gateable_flops = full - always_on`. Only the
    batch mean is constrained, so individual images may use more or less.
    With `one_sided=True` only `B > t` is penalised: `loss_weight *
    max(B - t, 0)^2`. Same metrics (`flops_ratio` = executed / full MACs,
    `execution_rate`) as `ResourceLoss`.

    Args:
        flops_target, path_flops, always_on_flops, loss_weight, pair_flops:
            as `ResourceLoss` (`flops_target` is t).
        one_sided: bool.

    Returns:
        `outputs`, unchanged: the call, inputs included, is `ResourceLoss`'s.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import BatchActivationLoss
    layer = BatchActivationLoss(flops_target=0.5, path_flops=[[100, 100]],
                                always_on_flops=200, one_sided=True)
    logits, gates = np.zeros((2, 10), "float32"), np.array([[1, 1], [0, 0]], "float32")
    layer([logits, gates]).shape  # (2, 10)
    float(layer.losses[0])  # 0.0
    ```
    """

    def __init__(self, flops_target, path_flops, always_on_flops, loss_weight=1.0,
                 one_sided=False, **kwargs):
        super().__init__(flops_target, path_flops, always_on_flops, loss_weight, **kwargs)
        self.one_sided = bool(one_sided)

    def batch_activation(self, executed):
        """B from per-image executed MACs `[batch]`."""
        return gateable_fraction(self.flops_table, ops.mean(executed))

    def resource_loss(self, executed, rates):
        gap = self.batch_activation(executed) - ops.convert_to_tensor(self.target)
        if self.one_sided:
            gap = ops.relu(gap)
        return ops.square(gap)

    def get_config(self):
        config = super().get_config()
        config.update(one_sided=self.one_sided)
        return config
