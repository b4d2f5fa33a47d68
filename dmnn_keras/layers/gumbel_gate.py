"""Hard straight-through Gumbel-softmax gates."""

import keras
from keras import ops

from dmnn_keras.gate_decisions import GATE_DTYPE, hard_gates
from dmnn_keras.keyword_arguments import LAYER_ARGUMENTS, check_keyword_arguments


def gate_spec(shape):
    """The symbolic output of a gate: a float32 `KerasTensor` of `shape`."""
    return keras.KerasTensor(shape, dtype=GATE_DTYPE)


@keras.saving.register_keras_serializable(package="dmnn_keras")
class GumbelGate(keras.layers.Layer):
    """Turns gate logits into hard 0/1 decisions with a straight-through gradient.

    Each logit `l` is the log-odds of "on" of a two-way Gumbel-softmax
    (on/off). In training, logistic noise (the difference of two Gumbel
    samples) is added and the forward value is exactly
    `1[l + noise > 0]`, while the gradient is that of the soft sample
    `sigmoid((l + noise) / temperature)`. In inference (`training` False or
    None) the decision is deterministic, `1[l > 0]`, with no noise.

    The gates are float32 whatever the dtype policy (`compute_output_spec`
    declares it): the logits are cast to float32 first, so the noise, the
    temperature and the straight-through gradient keep float32 precision, and
    the FLOPs and resource losses that read the gates stay float32. Layers
    multiplying by the gates cast them to their own compute dtype (exact for 0
    and 1).

    Args:
        temperature: float > 0, temperature of the soft sample.
        min_active: 0 or 1. With 1, a sample whose gates are all off gets the
            gate with the largest logit turned on (for blocks that have no
            shortcut and would otherwise output nothing).
        seed: optional int seed of the noise.
        logit_bound: None, or a float > 0. In training, adds the loss
            `mean(relu(|logits| - logit_bound)^2)`, which keeps the logits
            where the straight-through gradient (sigmoid') is not vanishing;
            unbounded, they can run away until the gates stop training
            (`python -m benchmarks.gate_logits MODEL.keras` shows them).
            Training-only: inference is unchanged.
        information_weight: float >= 0. In training, adds
            `-information_weight * decision_information(logits)`: the mutual
            information between the images of the batch and their gates'
            decisions (see `decision_information`), rewarded so that a gate
            switches differently for different images instead of being on (or
            off) for all of them. 0: none. Training-only.

    Call args:
        logits: float tensor `[batch, groups]`.
        training: bool or None.

    Returns:
        Gates `[batch, groups]`, values exactly 0.0 or 1.0.

    Example:
    ```python
    import numpy as np
    from dmnn_keras import GumbelGate
    logits = np.array([[2.0, -1.0, 0.5]], "float32")
    np.asarray(GumbelGate()(logits))  # [[1.0, 0.0, 1.0]]
    np.asarray(GumbelGate(min_active=1)(-logits))  # [[0.0, 1.0, 0.0]]
    GumbelGate(seed=0)(logits, training=True).shape  # (1, 3)
    ```
    """

    def __init__(self, temperature=1.0, min_active=0, seed=None, logit_bound=None,
                 information_weight=0.0, **kwargs):
        check_keyword_arguments(self, GumbelGate, kwargs, LAYER_ARGUMENTS)
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(
                f"temperature must be > 0. Received: temperature={temperature}"
            )
        if min_active not in (0, 1):
            raise ValueError(
                f"min_active must be 0 or 1. Received: min_active={min_active}"
            )
        check_logit_bound(logit_bound)
        self.logit_bound = None if logit_bound is None else float(logit_bound)
        check_information_weight(information_weight)
        self.information_weight = float(information_weight)
        self.temperature = float(temperature)
        self.min_active = int(min_active)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.temperature_value = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.temperature),
            trainable=False, dtype="float32", autocast=False, name="temperature_value",
        )
        self.noise_scale = self.add_weight(
            shape=(), initializer="ones", trainable=False, dtype="float32", autocast=False,
            name="noise_scale",
        )
        self.built = True

    def call(self, logits, training=None):
        logits = ops.cast(logits, GATE_DTYPE)
        if training:
            if self.logit_bound is not None:
                excess = ops.relu(ops.abs(logits) - self.logit_bound)
                self.add_loss(ops.mean(ops.square(excess)))
            if self.information_weight:
                self.add_loss(-self.information_weight * decision_information(logits))
            uniform = keras.random.uniform(
                ops.shape(logits), minval=1e-6, maxval=1.0 - 1e-6,
                seed=self.seed_generator,
            )
            noise = ops.log(uniform) - ops.log(1.0 - uniform)
            noisy = logits + ops.cast(self.noise_scale, "float32") * noise
            soft = ops.sigmoid(noisy / ops.cast(self.temperature_value, "float32"))
            hard = hard_gates(noisy, self.min_active)
            # Forward: exactly `hard` (soft - soft == 0); backward: d soft.
            return hard + (soft - ops.stop_gradient(soft))
        return hard_gates(logits, self.min_active)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, logits, training=None):
        return gate_spec(logits.shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            temperature=self.temperature, min_active=self.min_active, seed=self.seed,
            logit_bound=self.logit_bound, information_weight=self.information_weight,
        )
        return config


def check_logit_bound(logit_bound):
    """Raises ValueError unless `logit_bound` is None or a number > 0."""
    if logit_bound is not None and (
        isinstance(logit_bound, bool) or not isinstance(logit_bound, (int, float))
        or not logit_bound > 0
    ):
        raise ValueError(
            f"logit_bound must be None or a number > 0. Received: logit_bound={logit_bound!r}"
        )


def decision_information(logits):
    """Mutual information (nats) between a batch's images and their gates' decisions, mean over gates.

    In training a gate with logit `l` is on with probability `p = sigmoid(l)`
    (logistic noise at full scale; the reward reads this `p` also while a
    schedule scales the noise down). Per gate, over the batch:
    `I = H(mean_i p_i) - mean_i H(p_i)`, with `H` the binary entropy: 0 for a
    gate on (or off) for every image, or one that is a coin flip for every
    image; `log 2` for a gate surely on for half of the images and surely
    off for the others.

    Args:
        logits: float tensor `[batch, groups]`.

    Returns:
        A scalar in `[0, log 2]`.
    """
    p = ops.sigmoid(ops.cast(logits, GATE_DTYPE))
    return ops.mean(binary_entropy(ops.mean(p, axis=0)) - ops.mean(binary_entropy(p), axis=0))


def binary_entropy(p):
    """`-(p log p + (1 - p) log(1 - p))` (nats), elementwise; p clipped away from 0 and 1."""
    p = ops.clip(p, 1e-7, 1.0 - 1e-7)
    return -(p * ops.log(p) + (1.0 - p) * ops.log(1.0 - p))


def check_information_weight(information_weight):
    """Raises ValueError unless `information_weight` is a number >= 0."""
    if isinstance(information_weight, bool) or not isinstance(
            information_weight, (int, float)) or not information_weight >= 0:
        raise ValueError("information_weight must be a number >= 0. "
                         f"Received: information_weight={information_weight!r}")
