"""`gate_dynamics`: how much a trained model's gates (and its cost) vary from image to image.

A mean FLOPs ratio does not tell a dynamic model from a statically pruned one:
both can run 60% of the MACs. These statistics do: how many distinct
per-image costs and gate patterns occur, which gates never change, how wide
the per-image cost spreads, and whether hard (misclassified) images get more
compute than easy (confidently correct) ones.
"""

import numpy as np


def _softmax_max(logits):
    """Max softmax probability per row of `[N, classes]` logits (numerically stable)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return 1.0 / np.exp(shifted).sum(axis=-1)


def _mean_or_none(values):
    return float(values.mean()) if values.size else None


def _number(value):
    """Whether `value` is a real scalar (Python or numpy; not a bool, string or array)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_inputs(gates, executed_flops, full_flops, logits, labels, confident):
    if not hasattr(gates, "items"):
        raise ValueError(
            f"gates must be a dict block name -> [N, groups] array. Received: gates={type(gates).__name__}"
        )
    executed = np.asarray(executed_flops, dtype=np.float64)
    if executed.ndim != 1 or executed.shape[0] == 0:
        raise ValueError(
            f"executed_flops must be a non-empty [N] array. Received shape: {executed.shape}"
        )
    count = executed.shape[0]
    arrays = {}
    for name, value in gates.items():
        array = np.asarray(value)
        if array.ndim != 2 or array.shape[1] == 0:
            raise ValueError(
                f"gates[{name!r}] must be a [N, groups] array. Received shape: {array.shape}"
            )
        if array.shape[0] != count:
            raise ValueError(
                f"gates and executed_flops must cover the same N images. Received: "
                f"gates[{name!r}] shape {array.shape}, executed_flops shape {executed.shape}"
            )
        arrays[name] = array
    if not np.isfinite(executed).all():
        raise ValueError(
            f"executed_flops must be finite. Received {int((~np.isfinite(executed)).sum())} "
            "non-finite values"
        )
    if not _number(full_flops) or not float(full_flops) > 0:
        raise ValueError(f"full_flops must be a positive number. Received: full_flops={full_flops!r}")
    if not _number(confident) or not 0 < float(confident) <= 1:
        raise ValueError(f"confident must be in (0, 1]. Received: confident={confident!r}")
    if (logits is None) != (labels is None):
        raise ValueError(
            "logits and labels must be given together. Received: "
            f"logits={'None' if logits is None else 'an array'}, "
            f"labels={'None' if labels is None else 'an array'}"
        )
    if logits is not None:
        logits = np.asarray(logits, dtype=np.float64)
        labels = np.asarray(labels)
        if logits.ndim != 2 or logits.shape[0] != count or logits.shape[1] == 0:
            raise ValueError(
                f"logits must be a [N, classes] array with N = {count} (executed_flops). "
                f"Received shape: {logits.shape}"
            )
        if labels.shape != (count,):
            raise ValueError(
                f"labels must be a [N] array with N = {count} (executed_flops). "
                f"Received shape: {labels.shape}"
            )
    return arrays, executed, logits, labels


def gate_dynamics(gates, executed_flops, full_flops, logits=None, labels=None, confident=0.9):
    """How dynamic a model's gates are over a set of images.

    Args:
        gates: dict block name -> gates `[N, groups]` (0/1), as returned by
            `predict_gates` (empty for a static model).
        executed_flops: `[N]` MACs executed per image (`profile(...)["executed_flops"]`).
        full_flops: MACs per image with every sub-block on (`profile(...)["flops"]`).
        logits: optional `[N, classes]` logits, given together with `labels`.
        labels: optional `[N]` integer labels.
        confident: softmax max-probability threshold in (0, 1] for the
            "confidently correct" group.

    Returns:
        dict of plain ints / floats (JSON-able):
          * `distinct_costs`: distinct per-image executed MACs (rounded to an
            integer MAC); `distinct_patterns`: distinct gate patterns over all
            blocks together;
          * `constant_gates`: gates (every sub-block gate of every block)
            with the same value on every image, `total_gates`, and
            `constant_gate_share` = constant / total (0.0 without gates);
          * `flops_ratio_std` (population std), `flops_ratio_min`,
            `flops_ratio_max` of the per-image executed / full ratio;
          * `confident` (the threshold), `flops_ratio_correct_confident` and
            `flops_ratio_misclassified` (mean ratio of the images classified
            correctly with max probability >= `confident`, and of the
            misclassified ones; None when that group is empty), with
            `correct_confident_count` and `misclassified_count`; all four
            None without logits and labels.

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    gates = {"conv2_block1": np.array([[1, 1], [1, 0], [1, 0]]),
             "conv3_block1": np.array([[0, 1], [0, 1], [0, 0]])}
    logits = np.array([[4.0, 0.0], [0.0, 4.0], [1.0, 0.0]])
    stats = dk.gate_dynamics(gates, [80.0, 60.0, 40.0], 100, logits, labels=[0, 0, 0])
    stats["distinct_costs"], stats["constant_gates"], stats["total_gates"]  # (3, 2, 4)
    stats["flops_ratio_correct_confident"], stats["flops_ratio_misclassified"]  # (0.8, 0.6)
    ```
    """
    arrays, executed, logits, labels = _check_inputs(
        gates, executed_flops, full_flops, logits, labels, confident)
    ratio = executed / float(full_flops)
    if arrays:
        pattern = np.concatenate([a.reshape(len(executed), -1) for a in arrays.values()], axis=1)
        distinct_patterns = int(np.unique(pattern, axis=0).shape[0])
        constant = int(np.all(pattern == pattern[:1], axis=0).sum())
        total = int(pattern.shape[1])
    else:  # a static model: one (empty) pattern, no gates
        distinct_patterns, constant, total = 1, 0, 0
    result = {
        "distinct_costs": int(np.unique(np.rint(executed)).shape[0]),
        "distinct_patterns": distinct_patterns,
        "constant_gates": constant,
        "total_gates": total,
        "constant_gate_share": constant / total if total else 0.0,
        "flops_ratio_std": float(ratio.std()),
        "flops_ratio_min": float(ratio.min()),
        "flops_ratio_max": float(ratio.max()),
        "confident": float(confident),
        "flops_ratio_correct_confident": None,
        "flops_ratio_misclassified": None,
        "correct_confident_count": None,
        "misclassified_count": None,
    }
    if logits is not None:
        correct = np.argmax(logits, axis=-1) == labels
        easy = correct & (_softmax_max(logits) >= confident)
        result.update({
            "flops_ratio_correct_confident": _mean_or_none(ratio[easy]),
            "flops_ratio_misclassified": _mean_or_none(ratio[~correct]),
            "correct_confident_count": int(easy.sum()),
            "misclassified_count": int((~correct).sum()),
        })
    return result
