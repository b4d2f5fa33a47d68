"""Callbacks that schedule the gates during `fit`: target annealing, gate noise, BN recalibration.

  * `FlopsTargetSchedule`: the resource loss's target goes linearly from 1.0
    (every sub-block on, the warm-started network) to the model's
    `flops_target` over the first epochs (DynConv and LAUDNet anneal their
    bounds over the first third of training); optionally corrected afterwards
    by the gap between the training batches' FLOPs ratio and the inference
    ratio on clean images, so the weights train at the inference operating point.
  * `GateNoiseSchedule`: the Gumbel temperature annealed geometrically, and
    the gate noise switched off for the last epochs so that training runs
    the gates inference will run (DynConv does it for the last 20%).
  * `BatchNormRecalibration`: `recalibrate_batch_norm` when training ends.
  * `FlopsCalibration`: `calibrate_flops` (one gate-threshold shift that meets
    the target, then BatchNorm recalibration) when training ends.
  * `ConstantGateFixing`: `fix_constant_gates` (gates that no calibration
    image switches become constants, folded away at export) when training ends.
"""

import keras

from dmnn_keras.batch_norm import recalibrate_batch_norm
from dmnn_keras.gates import fix_constant_gates, gumbel_gates, sublayers
from dmnn_keras.flops_calibration import (
    InferenceFlopsRatio, calibrate_flops, calibration_array, shift_gate_thresholds,
)
from dmnn_keras.image_checks import check_batches
from dmnn_keras.layers.resource_loss import ResourceLoss


MIN_TARGET = 0.05  # the lowest training target a correction may set


def resource_losses(model):
    """Every `ResourceLoss` (and subclass) inside `model`, nested models included."""
    return sublayers(model, ResourceLoss)


def _check_epochs(name, value, allow_zero=False):
    low = 0 if allow_zero else 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (
        not allow_zero and value == 0
    ):
        allowed = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a number {allowed}. Received: {name}={value!r}")


def _check_fits(callback, name, value, epochs):
    if epochs is not None and value > epochs:
        raise ValueError(
            f"{type(callback).__name__}: {name}={value:g} is longer than the run "
            f"(epochs={epochs})."
        )


class FlopsTargetSchedule(keras.callbacks.Callback):
    """Anneals the resource loss's target from `start` to the model's `flops_target`.

    At step s of epoch e (fraction `f = (e + s / steps) / epochs`, capped at
    1) the target is `start + f * (flops_target - start)`; after `epochs` it is
    `flops_target`. Set per batch on every `ResourceLoss` of the model.

    With `images` (un-augmented training images), the training target is
    also *corrected* once the annealing is over. Training meets its target on
    augmented, noisy batches, on which the gates run less than at inference
    (0.03-0.10 of the FLOPs on the CIFAR-10 benchmark), so the weights would
    train at a lower cost than the one inference runs. At the end of every
    epoch that reaches the end of the annealing, the callback measures the
    epoch's training FLOPs ratio `r_train` (the `flops_ratio` metric) and the
    inference ratio `r_clean` on `images`, and sets the next epochs' target
    to `flops_target + r_train - r_clean` (kept in [0.05, 1]). The rule is
    stateless, not an integral of the miss: the resource loss's Lagrange
    multiplier already integrates the training miss, and a second
    integrator wound the target down to 0.41-0.46 for a 0.59 target. The
    corrected target lives in the loss's `target` variable, so a resumed run
    continues from it. `corrections` lists `(epoch, r_train, r_clean, target,
    shift)`.

    With `shift_gates=True` each correction also shifts every gate threshold
    (`shift_gate_thresholds`, the shift `calibrate_flops` makes after
    training) so that the inference ratio on `images` meets `flops_target`
    right away: the weights then train at inference's operating point instead
    of being moved to it after training, when one shift of 0.04-0.07 of the
    FLOPs cost the CIFAR-10 benchmark rows up to 7 points.

    Args:
        epochs: float > 0, length of the annealing in epochs (at most the run's).
        start: float in (0, 1], the target at the start (1.0: all on).
        images: None, or images (array, or dataset of images or
            `(images, labels)`) for the correction.
        batches: batches of `images` measured per correction.
        batch_size: batch size for arrays.
        shift_gates: also shift the gate thresholds at each correction
            (DMNN `GateController`s; needs `images`).

    Example:
    ```python
    import dmnn_keras as dk
    from dmnn_keras.training import FlopsTargetSchedule
    schedule = FlopsTargetSchedule(epochs=2)
    schedule.target_at(1.0, flops_target=0.5)  # 0.75 after one epoch of two
    ```
    """

    def __init__(self, epochs, start=1.0, images=None, batches=10, batch_size=128,
                 shift_gates=False):
        super().__init__()
        _check_epochs("epochs", epochs)
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0 < start <= 1:
            raise ValueError(f"start must be a number in (0, 1]. Received: start={start!r}")
        self.epochs = float(epochs)
        self.start = float(start)
        self.images = None if images is None else calibration_array(images, batches, batch_size)
        if shift_gates and images is None:
            raise ValueError("shift_gates=True measures the inference FLOPs ratio on `images`. "
                             "Received: images=None")
        self.batch_size = batch_size
        self.shift_gates = bool(shift_gates)
        self.offset = 0.0
        # (epoch, training FLOPs ratio, inference ratio, next target, threshold shift)
        self.corrections = []
        self._epoch = 0

    def target_at(self, epoch, flops_target):
        """The target after `epoch` (float) epochs, before any correction."""
        fraction = min(max(epoch / self.epochs, 0.0), 1.0)
        return self.start + fraction * (flops_target - self.start)

    def on_train_begin(self, logs=None):
        self.losses = resource_losses(self.model)
        if not self.losses:
            raise ValueError("FlopsTargetSchedule needs a gated model (with a resource loss). "
                             f"Received: {self.model.name!r} without one")
        _check_fits(self, "epochs", self.epochs, self.params.get("epochs"))
        self._meter = None
        if self.images is not None:
            if len(self.losses) != 1:
                raise ValueError("FlopsTargetSchedule(images=...) corrects one resource loss. "
                                 f"Received: a model with {len(self.losses)}")
            self._meter = InferenceFlopsRatio(self.model, self.images, self.batch_size)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._meter is not None and epoch >= self.epochs:
            # The offset set so far is in the variable (restored with it after an interruption).
            loss = self.losses[0]
            self.offset = float(loss.target.numpy()) - loss.flops_target
        self._set(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        steps = self.params.get("steps") or 0
        if steps and self._epoch + batch / steps <= self.epochs:
            self._set(self._epoch + batch / steps)

    def on_epoch_end(self, epoch, logs=None):
        if self._meter is not None and epoch + 1 >= self.epochs:
            self._correct(epoch, logs or {})
        self._set(epoch + 1)  # a run as long as the schedule ends on the final target

    def _correct(self, epoch, logs):
        if "flops_ratio" not in logs:
            raise ValueError("FlopsTargetSchedule(images=...) needs the `flops_ratio` training "
                             f"metric in the epoch logs. Received: logs with {sorted(logs)}")
        flops_target = self.losses[0].flops_target
        trained, inferred = float(logs["flops_ratio"]), self._meter()
        self.offset = min(max(trained - inferred, MIN_TARGET - flops_target), 1.0 - flops_target)
        shift = 0.0
        if self.shift_gates:
            shift, _ = shift_gate_thresholds(self.model, self._meter, flops_target)
        self.corrections.append((epoch, trained, inferred, flops_target + self.offset, shift))

    def _set(self, epoch):
        offset = self.offset if epoch >= self.epochs else 0.0
        for loss in self.losses:
            loss.target.assign(self.target_at(epoch, loss.flops_target) + offset)


class GateNoiseSchedule(keras.callbacks.Callback):
    """Anneals the Gumbel temperature and switches the gate noise off for the last epochs.

    In epoch e of E (0-based) every `GumbelGate`'s temperature is
    `start * (end / start) ** (e / max(E - 1, 1))` (geometric; unchanged when
    `start_temperature` is None), and its noise scale is 0 in the last
    `noise_off_epochs` epochs (training then runs the inference decision
    `logit > 0`, with the straight-through gradient of the sigmoid), 1 before.

    Args:
        start_temperature, end_temperature: None, or floats > 0 (both or neither).
        noise_off_epochs: int >= 0, at most the run's epochs.

    Example:
    ```python
    from dmnn_keras.training import GateNoiseSchedule
    schedule = GateNoiseSchedule(5.0, 0.1, noise_off_epochs=1)
    schedule.values_at(0, 4), schedule.values_at(3, 4)  # ((5.0, 1.0), (0.1, 0.0))
    ```
    """

    def __init__(self, start_temperature=None, end_temperature=None, noise_off_epochs=0):
        super().__init__()
        if (start_temperature is None) != (end_temperature is None):
            raise ValueError(
                "start_temperature and end_temperature must be given together. Received: "
                f"start_temperature={start_temperature!r}, end_temperature={end_temperature!r}"
            )
        for name, value in (("start_temperature", start_temperature),
                            ("end_temperature", end_temperature)):
            if value is not None and (not isinstance(value, (int, float)) or not value > 0):
                raise ValueError(f"{name} must be None or a number > 0. Received: {name}={value!r}")
        if isinstance(noise_off_epochs, bool) or not isinstance(noise_off_epochs, int) or (
            noise_off_epochs < 0
        ):
            raise ValueError(
                f"noise_off_epochs must be an int >= 0. Received: noise_off_epochs={noise_off_epochs!r}"
            )
        self.start_temperature = start_temperature
        self.end_temperature = end_temperature
        self.noise_off_epochs = noise_off_epochs

    def values_at(self, epoch, epochs):
        """`(temperature or None, noise_scale)` in epoch `epoch` (0-based) of `epochs`."""
        temperature = None
        if self.start_temperature is not None:
            fraction = epoch / max(epochs - 1, 1)
            temperature = self.start_temperature * (
                self.end_temperature / self.start_temperature) ** fraction
        noise = 0.0 if epoch >= epochs - self.noise_off_epochs else 1.0
        return temperature, noise

    def on_train_begin(self, logs=None):
        self.gates = gumbel_gates(self.model)
        if not self.gates:
            raise ValueError("GateNoiseSchedule needs a gated model. "
                             f"Received: {self.model.name!r} without Gumbel gates")
        _check_fits(self, "noise_off_epochs", self.noise_off_epochs, self.params.get("epochs"))

    def on_epoch_begin(self, epoch, logs=None):
        temperature, noise = self.values_at(epoch, self.params.get("epochs") or epoch + 1)
        for gate in self.gates:
            gate.noise_scale.assign(noise)
            if temperature is not None:
                gate.temperature_value.assign(temperature)


class BatchNormRecalibration(keras.callbacks.Callback):
    """Runs `dmnn_keras.recalibrate_batch_norm` on the model when `fit` ends.

    Args:
        images: training images (array, or dataset of images or `(images, labels)`).
        batches: number of batches used.
    """

    def __init__(self, images, batches=50):
        super().__init__()
        check_batches(batches)
        self.images = images
        self.batches = batches
        self.images_used = 0

    def on_train_end(self, logs=None):
        self.images_used = recalibrate_batch_norm(self.model, self.images, self.batches)


class FlopsCalibration(keras.callbacks.Callback):
    """Runs `dmnn_keras.calibrate_flops` on the model when `fit` ends.

    Args:
        images: training images (array, or dataset of images or `(images, labels)`)
            for the threshold: un-augmented, like the images inference sees.
        batches: number of batches used (for the threshold and the BatchNorm statistics).
        bn_images: None (`images`), or images for the BatchNorm statistics: the
            augmented training batches (see `calibrate_flops`).
        target: None (a DMNN's own `flops_target`) or the FLOPs ratio to meet
            (needed for an `EarlyExitModel`).

    After `fit`, `result` holds what `calibrate_flops` returned.
    """

    def __init__(self, images, batches=20, bn_images=None, target=None):
        super().__init__()
        check_batches(batches)
        self.images = images
        self.bn_images = bn_images
        self.batches = batches
        self.target = target
        self.result = None

    def on_train_end(self, logs=None):
        self.result = calibrate_flops(self.model, self.images, target=self.target,
                                      batches=self.batches, bn_images=self.bn_images)


class ConstantGateFixing(keras.callbacks.Callback):
    """Runs `dmnn_keras.fix_constant_gates` on the model when `fit` ends.

    Put it after a `FlopsCalibration` in the callback list: the gates are fixed
    at the calibrated thresholds.

    Args:
        images: un-augmented training images (array, or dataset of images or
            `(images, labels)`), like the images inference sees.
        batches: number of batches used.
        batch_size: batch size for arrays.

    After `fit`, `fixed` holds what `fix_constant_gates` returned (block name
    -> per gate 1.0, 0.0 or None).
    """

    def __init__(self, images, batches=20, batch_size=128):
        super().__init__()
        check_batches(batches)
        self.images, self.batches, self.batch_size = images, batches, batch_size
        self.fixed = None

    def on_train_end(self, logs=None):
        images = calibration_array(self.images, self.batches, self.batch_size)
        self.fixed = fix_constant_gates(self.model, images, self.batch_size)
