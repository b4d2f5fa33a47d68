"""BatchNorm: recalibration with inference gates, re-centring that keeps a function, and the
inference affine map that pruning and export fold into neighbouring layers."""

import keras
import numpy as np

from dmnn_keras.gates import gumbel_gates, image_batches, sublayers
from dmnn_keras.layers.switchable_batch_norm import SwitchableBatchNorm


def batch_norm_layers(model):
    """Every `keras.layers.BatchNormalization` inside `model`, sublayers included."""
    return sublayers(model, keras.layers.BatchNormalization)


def batch_norm_affine(bn, dtype="float32"):
    """A BatchNormalization in inference as `x * scale + shift`, per channel.

    `scale = gamma / sqrt(moving_variance + epsilon)`,
    `shift = beta - moving_mean * scale`; gamma is 1 with `scale=False`, beta
    0 with `center=False`. Weights are read eagerly (inside a `tf.function`,
    call it under `tf.init_scope()`).

    Args:
        bn: a built `keras.layers.BatchNormalization`.
        dtype: numpy dtype of the arithmetic and the results.

    Returns:
        `(scale, shift)`, numpy arrays `[channels]` of `dtype`.
    """
    def read(variable):
        return np.asarray(keras.ops.convert_to_numpy(variable), dtype)

    mean, variance = read(bn.moving_mean), read(bn.moving_variance)
    gamma = read(bn.gamma) if bn.scale else np.ones_like(mean)
    beta = read(bn.beta) if bn.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance + bn.epsilon)
    return scale, beta - mean * scale


def fold_batch_norm(kernel, bias, bn, depthwise=False):
    """A convolution's weights with the BatchNorm after it folded in (`batch_norm_affine`).

    `kernel * scale` per output channel and `bias * scale + shift` (`shift`
    when the convolution has no bias), in float32. Weights are read eagerly
    (inside a `tf.function`, call it under `tf.init_scope()`).

    Args:
        kernel: float32 array `[kh, kw, C_in, C_out]`, or `[kh, kw, C, multiplier]`
            with `depthwise=True` (output channel `c * multiplier + m`).
        bias: float32 array `[C_out]`, or None.
        bn: a built `keras.layers.BatchNormalization` over the `C_out` channels.
        depthwise: whether `kernel` is a `DepthwiseConv2D` kernel.

    Returns:
        `(kernel, bias)`, float32 arrays of the shapes of a kernel and `[C_out]`.
    """
    scale, shift = batch_norm_affine(bn, np.float32)
    if depthwise:
        k = kernel.shape
        kernel = (kernel.reshape(k[0], k[1], -1) * scale).reshape(k)
    else:
        kernel = kernel * scale
    bias = shift if bias is None else bias * scale + shift
    return kernel.astype(np.float32), bias.astype(np.float32)


def recalibrate_batch_norm(model, images, batches=None, batch_size=128):
    """Re-estimates every BatchNorm's moving statistics with the inference-time gates.

    After gated training the moving statistics were collected with noisy
    training gates, while inference runs the deterministic ones (US-Nets'
    post-training BN recalibration). This resets every BatchNorm's moving
    mean and variance and replaces them by their exact average over the
    given batches, computed in training mode (batch statistics) with the gate
    noise switched off, so every block sees the gates it will see in
    inference. Nothing but the moving statistics changes: every other weight
    (gate-noise state included) is restored afterwards.

    Args:
        model: a dmnn_keras model (static models work too).
        images: `[N, H, W, 3]` array or a dataset of images or `(images, labels)`
            batches, raw pixels; use training images (augmented or not).
        batches: None (every batch) or the number of batches to use.
        batch_size: batch size for image arrays.

    Returns:
        the number of images used.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.DMNNResNet()
    images = np.random.uniform(0, 255, (64, 32, 32, 3)).astype("float32")
    dk.recalibrate_batch_norm(model, images, batch_size=32)  # 64
    ```
    """
    if batches is not None and (isinstance(batches, bool) or not isinstance(batches, int)
                                or batches < 1):
        raise ValueError(f"batches must be None or an int >= 1. Received: batches={batches!r}")
    norms = batch_norm_layers(model)
    moving = {id(v) for bn in norms for v in (bn.moving_mean, bn.moving_variance)}
    kept = [(v, np.array(v.numpy())) for v in model.variables if id(v) not in moving]
    old_moving = [(v, np.array(v.numpy())) for v in model.variables if id(v) in moving]
    momenta = [bn.momentum for bn in norms]
    gates = gumbel_gates(model)
    switchable = sublayers(model, SwitchableBatchNorm)
    for layer in switchable:  # a set's exact mean over the batches it occurs in
        layer.count_batches(True)
    for bn in norms:
        bn.moving_mean.assign(np.zeros(bn.moving_mean.shape, "float32"))
        bn.moving_variance.assign(np.zeros(bn.moving_variance.shape, "float32"))
    for gate in gates:
        gate.noise_scale.assign(0.0)
    count = 0
    try:
        for step, batch in enumerate(image_batches(images, batch_size)):
            if batches is not None and step >= batches:
                break
            for bn in norms:  # moving = moving * k / (k + 1) + batch / (k + 1): the exact mean
                bn.momentum = step / (step + 1.0)
            model(np.asarray(batch, "float32"), training=True)
            count += len(batch)
    except BaseException:  # e.g. a NaN batch: the model keeps its old statistics
        kept += old_moving
        raise
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
        for layer in switchable:  # a set no image ran keeps its statistics
            unseen = {id(v) for seen, bn in zip(layer.count_batches(False), layer.norms)
                      if not seen for v in (bn.moving_mean, bn.moving_variance)}
            kept += [(v, value) for v, value in old_moving if id(v) in unseen]
        for variable, value in kept:
            variable.assign(value)
    if not count:
        raise ValueError("images must hold at least one image. Received: an empty dataset")
    return count


def recentre_batch_norm(bn, mean, variance):
    """Moves `bn`'s moving statistics to `mean`, `variance` keeping its inference function.

    A BatchNorm computes `gamma * (x - m) / s + beta` in inference, with
    `s = sqrt(v + epsilon)`. With the new statistics `(m', v')` it sets
    `gamma' = gamma * s' / s` and `beta' = beta + gamma * (m' - m) / s`, so
    inference is unchanged while training (batch statistics close to
    `(m', v')`) computes nearly the same function.

    Args:
        bn: a built `keras.layers.BatchNormalization` (scale and center on).
        mean, variance: arrays `[channels]`.
    """
    gamma, beta, m, v = [np.asarray(w, np.float64) for w in bn.get_weights()]
    mean, variance = np.asarray(mean, np.float64), np.asarray(variance, np.float64)
    s, s_new = np.sqrt(v + bn.epsilon), np.sqrt(variance + bn.epsilon)
    bn.set_weights([
        (gamma * s_new / s).astype("float32"),
        (beta + gamma * (mean - m) / s).astype("float32"),
        mean.astype("float32"),
        variance.astype("float32"),
    ])
