"""Gate decisions: hard 0/1 gates from scores, and the forced patterns of `force_gates`.

The one home of these rules: the Keras layers, the pruning and both
exporters call them, so a model, its pruned copy and its TFLite/SavedModel
graph decide alike. Backend-neutral (`keras.ops`, numpy inputs accepted).
"""

import math

from keras import ops

# Gates are float32 under every dtype policy (see `GumbelGate`).
GATE_DTYPE = "float32"
# Gates are exactly 0.0 or 1.0; a gate value above this is "on".
ON_THRESHOLD = 0.5
# The gate-logit bias of a fixed gate (`fix_constant_gates`), with its kernel column zero:
# beyond any `calibrate_flops` shift (30) and any Gumbel noise in training.
FIXED_GATE_LOGIT = 100.0


def hard_gates(scores, min_active=0):
    """Deterministic gates `1[scores > 0]`, with at least `min_active` gate on per sample.

    Args:
        scores: float tensor or array `[batch, groups]`: logits, or logits
            plus noise in training.
        min_active: 0 or 1. With 1, a sample whose scores are all <= 0 gets
            the gate of its largest score (the first of ties) turned on; a block of one gate is
            then always on (a constant, which exporters fold away).

    Returns:
        Gates `[batch, groups]`, float32, values exactly 0.0 or 1.0.

    Example:
    ```python
    import numpy as np
    from dmnn_keras.gate_decisions import hard_gates
    scores = np.array([[2.0, -1.0, 0.5], [-2.0, -1.0, -3.0]], "float32")
    np.asarray(hard_gates(scores)).tolist()  # [[1, 0, 1], [0, 0, 0]]
    np.asarray(hard_gates(scores, min_active=1)).tolist()  # [[1, 0, 1], [0, 1, 0]]
    ```
    """
    hard = ops.cast(scores > 0, GATE_DTYPE)
    if not min_active:
        return hard
    if scores.shape[-1] == 1:
        return ops.ones_like(hard)  # the only gate can never be off
    # The first largest score, one-hot. (Not `ops.argmax`: on TensorFlow it adds
    # a BitwiseAnd, which the TFLite runtime lacks.)
    is_max = scores >= ops.max(scores, axis=-1, keepdims=True)
    first = ops.cumsum(ops.cast(is_max, "int32"), axis=-1) == 1
    best = ops.cast(ops.logical_and(is_max, first), GATE_DTYPE)
    none_on = ops.max(hard, axis=-1, keepdims=True) < ON_THRESHOLD
    return ops.where(none_on, best, hard)


def carried_active(rate, groups, min_active, carry):
    """Sub-blocks a block runs at a forced `rate`, with the rounding error carried along.

    `k = round(rate * groups + carry)`, halves rounded up, clipped to
    [min_active, groups]; the new carry is what that rounding left out.
    Applied block after block (error diffusion), blocks with one sub-block
    alternate on and off and the share of sub-blocks on stays `rate` overall
    (plain rounding would turn every one-sub-block block off at rate 0.5).
    With `carry=0.0` it is the rounding of one segment (`forced_pattern`).

    Returns:
        `(k, new_carry)`.

    Example: `carried_active(0.5, 1, 0, 0.0) == (1, -0.5)`, then
    `carried_active(0.5, 1, 0, -0.5) == (0, 0.0)`.
    """
    want = rate * groups + carry
    active = int(min(max(math.floor(want + 0.5), 0), groups))
    active = max(active, int(min_active))
    return active, want - active


def forced_pattern(rate, sizes, min_active=0):
    """The forced gates of one controller: in each segment, its first k gates on.

    k = `carried_active(rate, size, min_active, 0.0)` per segment: round(rate *
    size), halves rounded up, at least `min_active`. (`force_gates` carries
    the rounding error from block to block itself and hands each controller
    a rate whose k is exact.)

    Args:
        rate: float in [0, 1].
        sizes: segment sizes (ints >= 1), e.g. `(groups,)`, or the gates of
            a bottleneck's two convolutions.
        min_active: 0 or 1.

    Returns:
        list of `sum(sizes)` floats, 1.0 (on) or 0.0.

    Example:
    ```python
    from dmnn_keras.gate_decisions import forced_pattern
    forced_pattern(0.5, (4,))  # [1.0, 1.0, 0.0, 0.0]
    forced_pattern(0.5, (3, 1))  # [1.0, 1.0, 0.0, 1.0]
    forced_pattern(0.0, (2,), min_active=1)  # [1.0, 0.0]
    ```
    """
    pattern = []
    for size in sizes:
        active, _ = carried_active(rate, size, min_active, 0.0)
        pattern += [1.0] * active + [0.0] * (size - active)
    return pattern


def set_one_hot(gates):
    """Each image's set of on gates, one-hot: `[batch, G]` gates -> `[batch, 2**G]`, float32.

    The set's index reads the on gates as bits, gate i as `2**i` (all on:
    `2**G - 1`), as the tied-gate export numbers its branches.
    """
    groups = int(gates.shape[-1])
    bits = ops.cast(ops.convert_to_tensor(gates) > ON_THRESHOLD, "int32")
    index = ops.sum(bits * ops.convert_to_tensor([2 ** i for i in range(groups)], "int32"), axis=1)
    return ops.one_hot(index, 2 ** groups, dtype=GATE_DTYPE)


def tile_pattern(pattern, batch_size):
    """`pattern` `[groups]` repeated for every sample: gates `[batch_size, groups]`, float32."""
    return ops.tile(ops.convert_to_tensor([pattern], GATE_DTYPE), [batch_size, 1])


def constant_gates(kernel, bias, min_active=0):
    """Which gates of a controller are constants of its weights: their logit is the bias alone.

    A gate whose logit kernel column is all zero has the logit `bias_j` for
    every input (`fix_constant_gates` makes such columns): it is on iff
    `bias_j > 0`. An always-off gate is constant only if `min_active` can never
    turn it on: `min_active` is 0, or some gate is always on.

    Args:
        kernel: `[hidden_units, groups]` logit kernel (numpy).
        bias: `[groups]` logit bias.
        min_active: 0 or 1 (see `hard_gates`).

    Returns:
        tuple of `groups` values: 1.0 (always on), 0.0 (always off) or None
        (decided per input).

    Example:
    ```python
    import numpy as np
    from dmnn_keras.gate_decisions import constant_gates
    kernel = np.array([[0.0, 0.5, 0.0]], "float32")
    constant_gates(kernel, np.array([100.0, 0.0, -100.0]))  # (1.0, None, 0.0)
    constant_gates(kernel, np.array([-100.0, 0.0, -100.0]), min_active=1)  # (None, None, None)
    ```
    """
    fixed = [None if (kernel[:, j] != 0).any() else float(bias[j] > 0)
             for j in range(kernel.shape[1])]
    if min_active and 1.0 not in fixed:
        return tuple(None for _ in fixed)
    return tuple(fixed)
