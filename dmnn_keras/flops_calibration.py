"""Hitting the FLOPs target exactly: one shift of every gate threshold, found by bisection."""

import numpy as np

from dmnn_keras.batch_norm import recalibrate_batch_norm
from dmnn_keras.flops import executed_flops_per_image, full_flops, model_flops_table
from dmnn_keras.gates import first_batches, gate_probe, image_batches, probe_outputs
from dmnn_keras.layers.gate_controller import GateController

SHIFT_RANGE = 30.0


def _controllers(model):
    controllers = [c for c in getattr(model, "controllers", []) if isinstance(c, GateController)]
    if not controllers:
        raise ValueError("model must be a DMNN with GateControllers. "
                         f"Received: {getattr(model, 'name', model)!r} without any")
    return controllers


def _shift(controllers, delta):
    for c in controllers:
        c.logits_dense.bias.assign(c.logits_dense.bias.numpy() + np.float32(delta))


def calibration_array(images, batches, batch_size):
    """Up to `batches` batches of `images` (array or dataset) as one float32 array (N, H, W, C)."""
    return np.concatenate(first_batches(images, batches, batch_size))


class InferenceFlopsRatio:
    """Callable: the inference FLOPs ratio of `model` on fixed images (graph built once).

    `InferenceFlopsRatio(model, images, batch_size)()` is the mean over `images`
    (N, H, W, C) of executed FLOPs / the model's full FLOPs, gates as in `predict`.
    """

    def __init__(self, model, images, batch_size):
        self.table = model_flops_table(model)
        self.full = full_flops(self.table)
        self.probe, self.names = gate_probe(model)
        self.images, self.batch_size = images, batch_size

    def __call__(self):
        # Called once per bisection step on the same images: one graph, traced once.
        outputs = probe_outputs(self.probe, image_batches(self.images, self.batch_size),
                                compiled=True)
        gates = dict(zip(self.names, outputs[1:]))
        return float(executed_flops_per_image(self.table, gates).mean() / self.full)


def _bisect(meter, controllers, target, tolerance, steps):
    """Shifts every gate logit by one delta so the inference FLOPs ratio `meter()` is `target`."""
    low, high, applied = -SHIFT_RANGE, SHIFT_RANGE, 0.0
    ratio = meter()
    for _ in range(steps):
        if abs(ratio - target) <= tolerance:
            break
        middle = (low + high) / 2.0
        _shift(controllers, middle - applied)
        applied = middle
        ratio = meter()
        if ratio > target:  # the executed share rises with the shift
            high = middle
        else:
            low = middle
    return applied, ratio


def shift_gate_thresholds(model, meter, target, tolerance=0.005, steps=24):
    """Shifts every `GateController`'s gate-logit bias by one delta so `meter()` meets `target`.

    `meter`: an `InferenceFlopsRatio` of `model`. Returns `(delta, ratio after it)`.
    """
    return _bisect(meter, _controllers(model), float(target), tolerance, steps)


def first_exit_share(model):
    """The share of an `EarlyExitModel`'s full MACs an image leaving at its first exit runs."""
    table = model_flops_table(model)
    return table["always_on"] / full_flops(table)


def set_exit_threshold(model, meter, target, tolerance=0.005, steps=24):
    """Bisects an `EarlyExitModel`'s confidence threshold in [0, 1] so `meter()` meets `target`.

    A higher threshold sends fewer images out early, so the ratio rises with it.
    A target below the share that every image leaving at the first exit runs
    is a ValueError. Returns `(threshold, ratio after it)`.
    """
    lowest = first_exit_share(model)
    if target < lowest - tolerance:
        raise ValueError(f"target must be reachable by this early-exit model: in [{lowest:.3f}, 1] "
                         f"(every image leaving at its first exit runs {lowest:.3f} of its MACs). "
                         f"Received: target={target!r}")
    cascade = model.exit_cascade
    low, high = 0.0, 1.0
    threshold = float(cascade.confidence_threshold.numpy())
    ratio = meter()
    for _ in range(steps):
        if abs(ratio - target) <= tolerance:
            break
        if ratio > target:
            high = threshold
        else:
            low = threshold
        threshold = (low + high) / 2.0
        cascade.set_threshold(threshold)
        ratio = meter()
    return threshold, ratio


def calibrate_flops(model, images, target=None, batches=20, batch_size=128, tolerance=0.005,
                    steps=24, recalibrate_bn=True, bn_images=None):
    """Shifts every controller's gate logits by one constant so the FLOPs ratio meets `target`.

    Training meets the target only on average over noisy training gates; in
    inference a gate is on when its logit is positive, and the two can differ
    by 0.1 or more. This adds the same `delta` to the gate-logit bias of every
    `GateController`, found by bisection so that the inference FLOPs ratio on
    `images` is within `tolerance` of `target`; then (by default) re-estimates
    the BatchNorm statistics with the new gates (`recalibrate_batch_norm`, on
    `bn_images`) and bisects once more. Images keep their own decisions (each
    image still compares its own logits with the shifted threshold).

    Which images: the threshold on images like the ones inference will see
    (un-augmented training images: gates run 0.03-0.10 less on augmented
    ones), the BatchNorm statistics on the images training used (augmented:
    re-estimated on clean images they cost the CIFAR-10 benchmark rows 3.0 and 3.6
    points, `benchmarks/calibration_sensitivity.py`).

    An `EarlyExitModel` has no gates to shift: its confidence threshold is
    bisected instead (`set_exit_threshold`), and nothing else changes (every
    image runs the same layers up to its exit, so BatchNorm is left alone).

    Args:
        model: a DMNN (`GateController`s) or an `EarlyExitModel`.
        images: calibration images (array, or dataset of images or
            `(images, labels)`), e.g. training images.
        target: the FLOPs ratio; None: the model's `flops_target` (a DMNN's).
        batches: batches of `images` used.
        batch_size: batch size for arrays.
        tolerance: acceptable |ratio - target| on the calibration images.
        steps: bisection steps at most.
        recalibrate_bn: re-estimate BatchNorm statistics after the shift.
        bn_images: images for the BatchNorm statistics (array or dataset);
            None: `images`.

    Returns:
        dict `delta` (the shift applied; for an early-exit model
        `confidence_threshold` instead), `flops_ratio` (on the calibration
        images after it), `images` (how many).

    Example:
    ```python
    import numpy as np
    import dmnn_keras as dk
    model = dk.DMNNResNet(flops_target=0.6)
    images = np.random.uniform(0, 255, (64, 32, 32, 3)).astype("float32")
    result = dk.calibrate_flops(model, images, batch_size=32, recalibrate_bn=False)
    abs(result["flops_ratio"] - 0.6) < 0.05  # True
    ```
    """
    exits = bool(getattr(model, "exit_names", None))
    if not exits:
        _controllers(model)  # a DMNN, before the images are read
    if target is None and exits:
        raise ValueError("target is needed for an early-exit model (it has no flops_target). "
                         "Received: target=None")
    if target is None:
        target = model.resource_loss.flops_target
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
        raise ValueError(f"target must be None or a number in (0, 1]. Received: target={target!r}")
    if exits and bn_images is not None:
        raise ValueError("bn_images is for a DMNN's BatchNorm recalibration: an early-exit model "
                         "keeps its BatchNorm. Received: bn_images with an EarlyExitModel")
    if exits:
        data = calibration_array(images, batches, batch_size)
        threshold, ratio = set_exit_threshold(
            model, InferenceFlopsRatio(model, data, batch_size), float(target), tolerance, steps)
        return {"confidence_threshold": float(threshold), "flops_ratio": float(ratio),
                "images": int(len(data))}
    if bn_images is not None and not recalibrate_bn:
        raise ValueError("bn_images is for the BatchNorm recalibration. Received: bn_images with "
                         "recalibrate_bn=False")
    data = calibration_array(images, batches, batch_size)
    meter = InferenceFlopsRatio(model, data, batch_size)
    delta, ratio = shift_gate_thresholds(model, meter, target, tolerance, steps)
    if recalibrate_bn:
        bn_data = data if bn_images is None else calibration_array(bn_images, batches, batch_size)
        recalibrate_batch_norm(model, bn_data, batch_size=batch_size)
        more, ratio = shift_gate_thresholds(model, meter, target, tolerance, steps)
        delta += more
    return {"delta": float(delta), "flops_ratio": float(ratio), "images": int(len(data))}
