"""ConvNet-AIG's target-rate loss."""

import keras
from keras import ops

from dmnn_keras.layers.resource_loss import ResourceLoss


@keras.saving.register_keras_serializable(package="dmnn_keras")
class TargetRateLoss(ResourceLoss):
    """`loss_weight * mean_l (t_l - z_l)^2` over the gated layers with `t_l < 1`.

    `z_l` is the fraction of the batch (and of the layer's gates) executing
    layer l, `t_l` its target rate (`rate_targets`, default `flops_target`
    for every layer). Layers whose target is 1 are left out of the loss, as
    in ConvNet-AIG. Same FLOPs accounting and metrics (`flops_ratio`,
    `execution_rate`) as `ResourceLoss`.

    Args:
        flops_target, path_flops, always_on_flops, loss_weight: as
            `ResourceLoss`.
        rate_targets: None, or one target in [0, 1] per gated block.

    Returns:
        `outputs`, unchanged: the call, inputs included, is `ResourceLoss`'s.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import TargetRateLoss
    layer = TargetRateLoss(flops_target=0.5, path_flops=[[100], [100]], always_on_flops=200,
                           rate_targets=[0.5, 1.0])
    logits, on, off = np.zeros((2, 10), "float32"), np.ones((2, 1)), np.zeros((2, 1))
    layer([logits, on, off]).shape  # (2, 10)
    float(layer.losses[0])  # 0.25
    ```
    """

    def __init__(self, flops_target, path_flops, always_on_flops, loss_weight=1.0,
                 rate_targets=None, **kwargs):
        super().__init__(flops_target, path_flops, always_on_flops, loss_weight, **kwargs)
        if rate_targets is None:
            rate_targets = [self.flops_target] * len(self.path_flops)
        rate_targets = [float(t) for t in rate_targets]
        if len(rate_targets) != len(self.path_flops) or not all(0.0 <= t <= 1.0 for t in rate_targets):
            raise ValueError(
                f"rate_targets must be {len(self.path_flops)} numbers in [0, 1] (one per gated "
                f"block). Received: rate_targets={rate_targets}"
            )
        self.rate_targets = rate_targets

    def resource_loss(self, executed, rates):
        kept = [i for i, t in enumerate(self.rate_targets) if t < 1.0]
        if not kept:
            return ops.zeros((), "float32")
        targets = ops.convert_to_tensor([self.rate_targets[i] for i in kept], "float32")
        return ops.mean(ops.square(targets - ops.take(rates, kept)))

    def get_config(self):
        config = super().get_config()
        config.update(rate_targets=self.rate_targets)
        return config
