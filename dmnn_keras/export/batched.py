"""Batched inference in Keras/TF that skips the work of gates that are off.

`MultiPathBlock(execution="gather")` runs `gather_execution` at inference: each
sub-block only on the samples whose gate is on, with TensorFlow's gather and
scatter ops (the layer itself stays backend-neutral).
"""

import tensorflow as tf

from dmnn_keras.gate_decisions import ON_THRESHOLD
from dmnn_keras.layers.multi_path_block import EXECUTIONS, MultiPathBlock

PATTERN_MAX_GROUPS = 4  # 2**groups patterns: beyond 16 the per-pattern ops cost more than they save
PATTERN_MIN_RATIO = 1.2  # pattern grouping when batch activations >= 1.2x the sub-block weights
STRATEGIES = ("pattern", "sub_block")


def set_execution(model, execution):
    """Sets `execution` ("masked" or "gather") on every `MultiPathBlock` of `model`, in place.

    "gather" runs each sub-block only on the samples whose gate is on (inference
    only; training still runs "masked"): per block and call it either sorts the
    samples by gate pattern and runs each pattern's sub-blocks on a contiguous
    slice (large activations), or gathers the samples of each sub-block
    (weights larger than the activations); see `MultiPathBlock`. The model's cached predict function is
    reset so that `predict` retraces. Outputs are unchanged (logits
    `[batch, num_classes]`). Eager calls run only the strategy each block
    picks; a graph (`predict`, `tf.function`) holds both strategies and every
    gate pattern of each block, so its first trace is slow (tens of seconds
    for `DMNNResNet()`'s `predict` on 2 CPU cores, where an eager call takes
    under a second).

    Args:
        model: a Keras model with `MultiPathBlock` layers (DMNN models).
        execution: "masked" or "gather".

    Returns:
        The number of blocks changed (int).

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.DMNNResNet()
    dk.export.set_execution(model, "gather")  # 4
    model(np.zeros((2, 32, 32, 3), "float32")).shape  # (2, 10)
    ```
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


def gather_execution(block, x, gates, strategy=None):
    """`block`'s output computing each sub-block only on the samples whose gate is on.

    "pattern" when the samples do not all share one on/off pattern, the batch's
    activations `batch*H*W*C` are at least `PATTERN_MIN_RATIO` times the
    sub-blocks' weights and `groups <= PATTERN_MAX_GROUPS`; else "sub_block"
    (see `MultiPathBlock`'s `execution`). In a graph with an unknown batch the
    choice is a `tf.cond` per call.

    Args:
        block: a built, gated `MultiPathBlock`.
        x: `[batch, H, W, C]` block input.
        gates: `[batch, groups]` gates (on where > `ON_THRESHOLD`).
        strategy: "pattern", "sub_block", or None to choose as above.

    Returns:
        `[batch, H / strides, W / strides, filters]`, the masked call's output
        (inference mode).
    """
    if strategy is not None and strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES} or None. "
                         f"Received: strategy={strategy!r}")
    if strategy is None and block.groups > PATTERN_MAX_GROUPS:
        strategy = "sub_block"
    if strategy is None:
        elements = tf.cast(tf.reduce_prod(tf.shape(x)), tf.float32)  # batch * H * W * C
        on = gates > ON_THRESHOLD
        mixed = tf.reduce_any(tf.not_equal(on, on[:1]))  # more than one on/off pattern
        by_pattern = tf.logical_and(elements >= PATTERN_MIN_RATIO * block.path_weights, mixed)
        static = tf.get_static_value(by_pattern)
        if static is None:  # decided per call in a graph
            return tf.cond(
                by_pattern,
                lambda: gather_by_pattern(block, x, gates),
                lambda: gather_by_sub_block(block, x, gates),
            )
        strategy = "pattern" if static else "sub_block"
    if strategy == "pattern":
        return gather_by_pattern(block, x, gates)
    return gather_by_sub_block(block, x, gates)


def empty_output(block, x, n):
    """Zeros `[n, H / strides, W / strides, filters]` for `block`'s input `x`."""
    size = lambda d: (d + block.strides - 1) // block.strides
    shape = tf.shape(x)
    return tf.zeros([n, size(shape[1]), size(shape[2]), block.filters], x.dtype)


def gather_by_sub_block(block, x, gates):
    """Each sub-block on the gathered samples that run it, scatter-added into the sum.

    A sub-block that no sample runs is skipped; one that every sample runs
    runs on the whole batch. Same args and output as `gather_execution`.
    """
    shortcut = block.run_shortcut(x, training=False)
    total = empty_output(block, x, tf.shape(x)[0]) if shortcut is None else shortcut
    batch = tf.shape(x)[0]
    for j in range(block.groups):
        on = gates[:, j] > ON_THRESHOLD
        count = tf.reduce_sum(tf.cast(on, tf.int32))

        def run_all(j=j, total=total):
            return total + block.run_path(x, j, training=False)

        def run_some(j=j, total=total, on=on):
            index = tf.where(on)  # [k, 1]
            y = block.run_path(tf.gather_nd(x, index), j, training=False)
            return tf.tensor_scatter_nd_add(total, index, y)

        def run_none(total=total):
            return tf.identity(total)

        total = tf.cond(
            tf.equal(count, batch), run_all,
            lambda run_some=run_some, run_none=run_none, count=count: tf.cond(
                tf.equal(count, 0), run_none, run_some
            ),
        )
    return block.activate(total)


def gather_by_pattern(block, x, gates):
    """Samples sorted by gate pattern; each pattern's sub-blocks run on its contiguous slice.

    `x` `[batch, H, W, C]` is permuted once so that samples with the same
    on/off pattern (one of `2**groups`) are adjacent; every pattern present
    runs its sub-blocks on its slice (sums stay small), and one gather
    restores the order. Activations are copied twice per block instead of
    once per sub-block; the weights are read once per pattern present. Same
    args and output as `gather_execution`.
    """
    patterns = 2 ** block.groups
    bits = tf.cast(gates > ON_THRESHOLD, tf.int32) * (2 ** tf.range(block.groups))[None, :]
    code = tf.reduce_sum(bits, axis=1)  # [batch]
    order = tf.argsort(code, stable=True)
    counts = tf.math.bincount(code, minlength=patterns, maxlength=patterns, dtype=tf.int32)
    starts = tf.cumsum(counts, exclusive=True)
    x_sorted = tf.gather(x, order)
    shortcut = block.run_shortcut(x_sorted, training=False)
    outputs = []
    for pattern in range(patterns):
        start, count = starts[pattern], counts[pattern]

        def run(pattern=pattern, start=start, count=count):
            xp = x_sorted[start:start + count]
            total = None if shortcut is None else shortcut[start:start + count]
            for j in range(block.groups):
                if pattern >> j & 1:
                    y = block.run_path(xp, j, training=False)
                    total = y if total is None else total + y
            if total is None:
                total = empty_output(block, x, count)
            return block.activate(total)

        if pattern == 0:  # no sub-block: slicing the shortcut costs nothing
            outputs.append(run())
        else:
            outputs.append(tf.cond(
                count > 0, run, lambda: empty_output(block, x, 0),
            ))
    return tf.gather(tf.concat(outputs, axis=0), tf.math.invert_permutation(order))
