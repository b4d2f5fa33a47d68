"""Switchable BatchNorm: one set of BatchNorm statistics and affine weights per sub-network.

Slimmable networks (Yu et al., 2018) share convolutions between widths but
give each width its own BatchNorm, because the statistics of a sum of
channels depend on which channels run. A DMNN block whose sub-blocks share a
convolution (`split="cross"`) is in the same place, per image: here each
image picks its BatchNorm by the set of sub-blocks it runs.
"""

import keras
import numpy as np
from keras import ops

from dmnn_keras.layers.multi_path_block import batch_norm_layer


@keras.saving.register_keras_serializable(package="dmnn_keras")
class SwitchableBatchNorm(keras.layers.Layer):
    """`BN_s(x)` per image, `s` the image's set: `norms[s]` holds that set's weights.

    In training each set is normalised with the batch statistics of its own
    images, and only the sets that occur in the batch update their moving
    statistics (a set with no image keeps its own). In inference each image
    uses its set's moving statistics, so a model whose images all pick set
    `s` computes exactly `norms[s]` in inference.

    Args:
        num_sets: how many sets (e.g. `2 ** G` for the on/off patterns of G gates).
        **kwargs: `Layer` arguments.

    Call args:
        inputs: `[x, sets]`: `x` `[batch, H, W, C]`, `sets` `[batch, num_sets]`
            one-hot (each image's set).
        training: batch statistics (True) or moving ones.

    Returns:
        `[batch, H, W, C]`.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import SwitchableBatchNorm
    norm = SwitchableBatchNorm(num_sets=4)
    x = np.random.rand(2, 8, 8, 16).astype("float32")
    sets = np.eye(4, dtype="float32")[[3, 1]]  # image 0 runs set 3, image 1 set 1
    norm([x, sets]).shape  # (2, 8, 8, 16)
    ```
    """

    def __init__(self, num_sets, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_sets, bool) or not isinstance(num_sets, int) or num_sets < 1:
            raise ValueError(f"num_sets must be an int >= 1. Received: num_sets={num_sets!r}")
        self.num_sets = num_sets
        self.norms = [batch_norm_layer(f"set{s}_bn", self.dtype_policy) for s in range(num_sets)]
        self.batches_seen = None  # [S] while recalibrating (`count_batches`), else None

    def count_batches(self, counting):
        """Starts (True) or stops (False) exact averaging; returns the batches each set was in.

        While counting (eager calls only, as `recalibrate_batch_norm` makes),
        a set's moving statistics become the exact mean of its batch
        statistics over the batches it occurs in, whatever the momentum.
        """
        seen = self.batches_seen
        self.batches_seen = np.zeros(self.num_sets) if counting else None
        return seen

    def build(self, input_shape):
        x_shape, sets_shape = (tuple(shape) for shape in input_shape)
        if len(x_shape) != 4 or len(sets_shape) != 2 or sets_shape[-1] != self.num_sets:
            raise ValueError(
                f"{self.name} expects [x [batch, H, W, C], sets [batch, {self.num_sets}]]. "
                f"Received shapes: {x_shape}, {sets_shape}")
        for norm in self.norms:
            norm.build(x_shape)
        self.built = True

    def _stacked(self, name):
        return ops.stack([ops.cast(getattr(norm, name), "float32") for norm in self.norms])

    def call(self, inputs, training=None):
        x, sets = inputs
        x = ops.cast(x, "float32")  # (statistics in float32, as keras' BatchNormalization)
        sets = ops.cast(sets, "float32")
        if training and self.trainable:
            counts = ops.sum(sets, axis=0)  # [S] images per set
            share = sets / ops.maximum(counts, 1.0)  # [B, S]: averages over a set's images
            means = ops.einsum("bs,bc->sc", share, ops.mean(x, axis=(1, 2)))
            squares = ops.einsum("bs,bc->sc", share, ops.mean(ops.square(x), axis=(1, 2)))
            variances = ops.maximum(squares - ops.square(means), 0.0)
            present = ops.expand_dims(counts > 0, -1)
            seen = self.batches_seen
            if seen is not None:  # exact means: keep seen / (seen + 1) of the old value
                keeps = seen / (seen + 1.0)
                self.batches_seen = seen + (ops.convert_to_numpy(counts) > 0)
            for s, norm in enumerate(self.norms):
                keep = norm.momentum if seen is None else float(keeps[s])
                for moving, batch in ((norm.moving_mean, means[s]),
                                      (norm.moving_variance, variances[s])):
                    moving.assign(ops.where(present[s], moving * keep + batch * (1.0 - keep),
                                            moving))
        else:
            means, variances = self._stacked("moving_mean"), self._stacked("moving_variance")
        epsilon = self.norms[0].epsilon
        scale = self._stacked("gamma") * ops.rsqrt(variances + epsilon)  # [S, C]
        shift = self._stacked("beta") - means * scale
        y = x * ops.matmul(sets, scale)[:, None, None, :] + ops.matmul(sets, shift)[:, None, None, :]
        return ops.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(num_sets=self.num_sets)
        return config
